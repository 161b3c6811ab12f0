"""Example applications built on relayflow (not part of the installed distribution)."""
