"""A small entity application for tests: a tally per key that adds up amounts.

Its state makes the entity guarantees checkable: ``total`` and ``count`` are
exact only if every event is applied once, and ``out_of_order`` counts events
whose sequence number did not follow the previous one's.
"""
