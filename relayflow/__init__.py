"""relayflow's top layer: settings, the composition root, applications, CLI, dev stack, tools.

Nothing below imports it (``tests/unit/test_layers.py``).
"""
