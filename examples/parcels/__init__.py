"""Parcels: a small application whose events are not Avro, one format per event type.

A ``ParcelShipped`` (Protobuf, ``schemas/parcels.proto``) starts a
``ParcelWorkflow`` that waits for ``ParcelDelivered`` (JSON, validated by the
JSON Schema ``schemas/ParcelDelivered.json``); it ends with ``ParcelClosed``
(Protobuf), ``DELIVERED`` or ``LOST``. Run it with
``relayflow run --app examples.parcels.app:APP``.
"""
