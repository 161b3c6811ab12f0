"""Kafka: the clients' configuration, reading and sending records, the schema registry client."""
