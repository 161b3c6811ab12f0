"""The composition root: the one place that builds clients, the bridge and the worker."""
