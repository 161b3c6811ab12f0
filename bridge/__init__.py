"""The Kafka → Temporal bridge: routes, consumer, dead-letter topic, commit discipline."""
