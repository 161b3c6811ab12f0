"""relayflow: settings, command line and local dev stack shared by the bridge and the worker."""
