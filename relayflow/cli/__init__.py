"""Command-line front ends: one module per command group, over ``relayflow.operate``."""
