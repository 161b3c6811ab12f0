"""Temporal: TLS and API-key credentials, the payload encryption codec and its codec server."""
