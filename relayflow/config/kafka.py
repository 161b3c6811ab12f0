"""Kafka settings: where the brokers are, how clients connect, and the schema registry."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from relayflow.config.base import EnvSettings

__all__ = ["KafkaSaslMechanism", "KafkaSecurityProtocol", "KafkaSettings",
           "SchemaRegistrySettings", "redacted_url"]

KafkaSecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
"""How Kafka clients connect: TLS or not, SASL or not (Kafka's ``security.protocol``)."""
KafkaSaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
"""SASL mechanisms relayflow's clients speak (Kafka's ``sasl.mechanism``)."""

_TLS = frozenset({"SSL", "SASL_SSL"})
_SASL = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
_PEM_FILES = ("kafka_ssl_ca_file", "kafka_ssl_cert_file", "kafka_ssl_key_file")


class KafkaSettings(EnvSettings):
    """Kafka: the cluster every client connects to, and how (TLS, SASL).

    Attributes:
        kafka_bootstrap_servers: Comma-separated ``host:port`` list of Kafka brokers.
        kafka_consumer_group: Consumer group id of the bridge.
        kafka_security_protocol: ``PLAINTEXT`` (default), ``SSL`` (TLS, optionally
            with a client certificate), ``SASL_PLAINTEXT`` or ``SASL_SSL`` (SASL
            over TLS: what managed Kafka services require).
        kafka_sasl_mechanism: ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512``;
            required with the SASL protocols.
        kafka_sasl_username: SASL user (the principal ACLs name); required with SASL.
        kafka_sasl_password: SASL password; required with SASL. Never shown.
        kafka_sasl_plain_without_tls: Allow the ``PLAIN`` mechanism over
            ``SASL_PLAINTEXT``, which sends the password in clear to anyone on
            the path. Off: that combination stops every process at start; use
            ``SASL_SSL``, or a SCRAM mechanism. Only for a broker on a trusted
            network that cannot do better.
        kafka_ssl_ca_file: PEM file of the CA(s) that signed the brokers'
            certificates; unset: the system's trust store.
        kafka_ssl_cert_file: PEM client certificate (chain), for brokers that
            demand one (mTLS); its key in the same file or ``kafka_ssl_key_file``.
        kafka_ssl_key_file: PEM private key of the client certificate.
        kafka_ssl_key_password: Password of an encrypted ``kafka_ssl_key_file``. Never shown.
        kafka_ssl_check_hostname: Check that the broker's certificate names the
            host connected to (on by default; the certificate chain is checked either way).
    """

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_consumer_group: str = "relayflow-bridge"
    kafka_security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: KafkaSaslMechanism | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_plain_without_tls: bool = False
    kafka_ssl_ca_file: Path | None = None
    kafka_ssl_cert_file: Path | None = None
    kafka_ssl_key_file: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True

    @field_validator(*_PEM_FILES)
    @classmethod
    def _readable_pem(cls, path: Path | None) -> Path | None:
        if path is None:
            return None
        try:
            head = path.read_bytes()[:1 << 16]
        except OSError as error:
            raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
        if b"-----BEGIN " not in head:
            raise ValueError(f"{path} is not a PEM file (no -----BEGIN line)")
        return path

    @model_validator(mode="after")
    def _kafka_security_combines(self) -> Self:
        problem = self._sasl_problem() or self._tls_problem()
        if problem:
            raise ValueError(problem)
        return self

    def _sasl_problem(self) -> str | None:
        named = f"RELAYFLOW_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
        sasl = {"kafka_sasl_mechanism": self.kafka_sasl_mechanism,
                "kafka_sasl_username": self.kafka_sasl_username,
                "kafka_sasl_password": self.kafka_sasl_password}
        for field, value in sasl.items():
            if self.kafka_security_protocol in _SASL and (
                    not value or (isinstance(value, SecretStr) and not value.get_secret_value())):
                return f"RELAYFLOW_{field.upper()} is required with {named}"
            if self.kafka_security_protocol not in _SASL and value is not None:
                return (f"RELAYFLOW_{field.upper()} is set, but {named} uses no SASL "
                        "(SASL_PLAINTEXT or SASL_SSL do)")
        if (self.kafka_security_protocol == "SASL_PLAINTEXT"
                and self.kafka_sasl_mechanism == "PLAIN" and not self.kafka_sasl_plain_without_tls):
            return ("RELAYFLOW_KAFKA_SASL_MECHANISM=PLAIN with "
                    f"{named} sends the password in clear; use SASL_SSL or a SCRAM "
                    "mechanism (RELAYFLOW_KAFKA_SASL_PLAIN_WITHOUT_TLS=true allows it)")
        return None

    def _tls_problem(self) -> str | None:
        named = f"RELAYFLOW_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol}"
        if self.kafka_security_protocol not in _TLS:
            for field in (*_PEM_FILES, "kafka_ssl_key_password"):
                if getattr(self, field) is not None:
                    return (f"RELAYFLOW_{field.upper()} is set, but {named} uses no TLS "
                            "(SSL or SASL_SSL do)")
        if self.kafka_ssl_key_file is not None and self.kafka_ssl_cert_file is None:
            return ("RELAYFLOW_KAFKA_SSL_KEY_FILE is set without RELAYFLOW_KAFKA_SSL_CERT_FILE "
                    "(the certificate it belongs to)")
        if self.kafka_ssl_key_password is not None and self.kafka_ssl_cert_file is None:
            return ("RELAYFLOW_KAFKA_SSL_KEY_PASSWORD is set without a client key "
                    "(RELAYFLOW_KAFKA_SSL_CERT_FILE / RELAYFLOW_KAFKA_SSL_KEY_FILE)")
        return None


def redacted_url(url: str) -> str:
    """``url`` with the password of its user info, if any, replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    user_info, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in user_info:
        return url
    user = user_info.split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class SchemaRegistrySettings(EnvSettings):
    """Schema registry: a Confluent-compatible one, if used.

    Its client is built by ``relayflow.kafka.schema_registry.schema_registry``.

    Attributes:
        schema_registry_url: A Confluent-compatible schema registry
            (``http(s)://[user:secret@]host:port``). When set, outcomes are
            framed in the Confluent wire format with ids from it (subject: the
            record's full name), and Confluent-framed input records are decoded
            with the schema it holds for their id. Single-object encoded
            records are accepted either way.
        schema_registry_timeout_seconds: Timeout of each registry request.
        schema_registry_subject_strategy: Where schemas are registered, as
            Confluent's strategies name it: ``record`` (the full name, the
            default), ``topic`` (``<topic>-value``) or ``topic-record``
            (``<topic>-<full name>``). Every format (Avro, JSON Schema,
            Protobuf) follows it.
    """

    schema_registry_url: str | None = None
    schema_registry_timeout_seconds: float = Field(default=5.0, gt=0)
    schema_registry_subject_strategy: Literal["record", "topic", "topic-record"] = "record"

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Fields for ``repr`` and ``str``: ``SecretStr`` ones masked, and the registry's password.

        The schema registry URL may carry basic-auth credentials (``user:secret@``).
        """
        for name, value in super().__repr_args__():
            yield name, (redacted_url(value) if name == "schema_registry_url" and value
                         else value)
