"""The Kafka contract as an AsyncAPI 3 document, and its HTML page."""
