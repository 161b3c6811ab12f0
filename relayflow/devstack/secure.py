"""The secured dev broker: a throwaway CA, SCRAM users, a SASL_SSL listener and ACLs.

``relayflow dev up --secure`` (or ``RELAYFLOW_KAFKA_DEV_SECURE=true``) formats a
new broker this way; the stack's folder then says it is secured (its secrets
folder exists), so later ``up``/``status``/``down`` need no flag.

* ``<data_dir>/kafka/secrets`` (mode 0700, every file 0600): a CA made for this
  stack (``ca.pem``, ``ca-key.pem``), the broker's key and certificate
  (``broker.pem``: for 127.0.0.1 and localhost, so every broker of the stack
  can use it), one client certificate for mTLS (``client.pem``,
  ``client-key.pem``), the SCRAM passwords (``users.json``) and, per principal,
  a ``<principal>.env`` with the ``RELAYFLOW_KAFKA_*`` lines that connect as it.
  Nothing prints a password.
* Principals (SCRAM-SHA-512 users, created by ``StorageTool format --add-scram``;
  the listener also takes PLAIN, Confluent Cloud's mechanism, for the same
  users and passwords):
  ``admin`` (super user: the broker itself, topic creation, ACLs, the dev
  stack's own checks), ``bridge``, ``worker`` and ``tools`` (tests and
  operator commands), plus the producers an application declares for some of
  its input topics (``InputProducers``: the reference application's
  ``approvals``, the only writer of ``approvals.decisions``); ``acl_plan``
  says what each may do.
* Listeners: ``SASL_SSL`` for clients and between brokers (client certificates
  required), ``CONTROLLER`` plaintext on loopback. Its principal is
  ``ANONYMOUS``, which is therefore a super user too: only the broker's link to
  its KRaft controller uses it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from relayflow.application import Application
from relayflow.config.settings import Settings
from relayflow.devstack.process import StackError
from schemas.topics import DLQ_SUFFIX, Topic

__all__ = ["ADMIN", "CLUSTER", "GROUP", "MECHANISM", "MECHANISMS", "PRINCIPALS", "TOPIC", "Acl",
           "DevSecrets", "InputProducers", "acl_plan", "create_acls", "input_producers",
           "principals", "write_ca"]

ADMIN = "admin"
"""The super user: the broker between brokers, and the dev stack's own tooling."""
TOOLS = "tools"
"""Tests and operator commands; writes the input topics no declared producer owns.

It reads without a consumer group (``tail``, ``dlq list``, ``verify``) and may
describe the bridge's groups, never join or commit them."""
PRINCIPALS = (ADMIN, TOOLS, "bridge", "worker")
"""The SCRAM users every secured dev broker has (an application may declare more)."""
MECHANISM = "SCRAM-SHA-512"
"""The mechanism between brokers and in every principal's settings."""
MECHANISMS = (MECHANISM, "PLAIN")
"""What the client listener accepts: PLAIN too, as managed services use it."""
_VALID = dt.timedelta(days=365)

# Kafka's protocol codes (org.apache.kafka.common.acl / resource).
TOPIC, GROUP, CLUSTER = 2, 3, 4
"""Kafka's resource type codes (``Acl.resource_type``)."""
_LITERAL, _PREFIXED = 3, 4
_ALLOW = 3
_OPERATIONS = {"READ": 3, "WRITE": 4, "CREATE": 5, "DESCRIBE": 8}
_RESOURCES = {TOPIC: "topic", GROUP: "group", CLUSTER: "cluster"}


@runtime_checkable
class InputProducers(Protocol):
    """Principals an application declares as the only writers of some of its input topics.

    One of ``Application.extensions``: on the secured dev broker each such
    principal is a SCRAM user of its own, and only it may write its topics.
    Input topics no producer is declared for are written by ``tools``.
    """

    @property
    def input_producers(self) -> Mapping[str, str]:
        """Input topic → the principal that alone may write it."""
        ...


def input_producers(app: Application) -> Mapping[str, str]:
    """The producers ``app`` declares (``InputProducers``), or none."""
    declared = app.extension(InputProducers)
    return {} if declared is None else dict(declared.input_producers)


def principals(producers: Mapping[str, str]) -> tuple[str, ...]:
    """The SCRAM users of a secured dev broker: ``PRINCIPALS`` and the declared producers."""
    return (*PRINCIPALS, *sorted(set(producers.values()) - set(PRINCIPALS)))


@dataclass(frozen=True, slots=True)
class Acl:
    """One ALLOW rule for a principal.

    Attributes:
        principal: The SCRAM user (``User:<principal>`` to Kafka).
        operation: ``READ``, ``WRITE``, ``CREATE`` or ``DESCRIBE``.
        resource_type: Kafka's resource type code (topic 2, group 3, cluster 4).
        name: The resource (``*`` for every one, ``kafka-cluster`` for the cluster).
        prefixed: ``name`` is a prefix, not a literal name.
    """

    principal: str
    operation: str
    resource_type: int
    name: str
    prefixed: bool = False

    def __str__(self) -> str:
        """E.g. ``bridge: READ group prefixed relayflow-bridge``."""
        kind = _RESOURCES[self.resource_type] + (" prefixed" if self.prefixed else "")
        return f"{self.principal}: {self.operation} {kind} {self.name}"


def acl_plan(topics: Iterable[Topic], group_prefix: str,
             producers: Mapping[str, str] | None = None) -> list[Acl]:
    """What each principal of the secured dev broker may do with an application's topics.

    * ``bridge``: read the input topics and its consumer groups (names starting
      with ``group_prefix``), write the dead-letter topics and the reply
      topics, read and write the parked-keys topic.
    * ``worker``: write the outcome topics (not the reply topics: the bridge answers).
    * each declared producer (``producers``; the reference application's
      ``approvals``): write its input topics (no one else may).
    * ``tools``: write the other input topics and the parked-keys topic (DLQ
      replay and release), read every topic without a group, describe the
      bridge's groups (their committed offsets) and the cluster. It may not
      READ any group: that would let it join the bridge's group and commit
      past records it never handled.

    Args:
        topics: Every topic of the application (``Application.all_topics()``).
        group_prefix: Start of the bridge's consumer group names.
        producers: Input topic → the principal that alone writes it
            (``input_producers``); default none: ``tools`` writes every input topic.
    """
    owners = producers or {}
    plan: list[Acl] = []

    def allow(principal: str, operation: str, topic: str) -> None:
        plan.append(Acl(principal, operation, TOPIC, topic))

    for topic in topics:
        if topic.inbound:
            allow("bridge", "READ", topic.name)
            allow(owners.get(topic.name, TOOLS), "WRITE", topic.name)
        elif topic.name.endswith(DLQ_SUFFIX) or topic.replies:
            allow("bridge", "WRITE", topic.name)
        elif topic.compacted:  # the parked keys
            for operation, principal in (("READ", "bridge"), ("WRITE", "bridge"),
                                         ("WRITE", TOOLS)):
                allow(principal, operation, topic.name)
        else:
            allow("worker", "WRITE", topic.name)
    plan += [Acl("bridge", "READ", GROUP, group_prefix, prefixed=True),
             Acl(TOOLS, "READ", TOPIC, "*"),
             Acl(TOOLS, "DESCRIBE", GROUP, group_prefix, prefixed=True),
             Acl(TOOLS, "DESCRIBE", CLUSTER, "kafka-cluster")]
    return plan


async def create_acls(admin: Any, acls: Sequence[Acl]) -> None:
    """Create ``acls`` through a started aiokafka admin client (existing ones stay as they are).

    Raises:
        StackError: The broker refused one.
    """
    from aiokafka.protocol.admin import CreateAclsRequest  # noqa: PLC0415

    for acl in acls:
        # aiokafka's admin client has no ACL call yet; its protocol layer has the request.
        response = await admin._send_request(CreateAclsRequest(  # noqa: SLF001
            acl.resource_type, acl.name, _PREFIXED if acl.prefixed else _LITERAL,
            f"User:{acl.principal}", "*", _OPERATIONS[acl.operation], _ALLOW))
        for code, message in response.creation_responses:
            if code:
                raise StackError(f"creating the ACL {acl} failed: error {code} {message}")


class DevSecrets:
    """The secrets folder of a secured dev broker.

    Args:
        folder: ``<data_dir>/kafka/secrets``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @property
    def ca_file(self) -> Path:
        """The CA certificate (PEM) clients trust."""
        return self.folder / "ca.pem"

    @property
    def broker_keystore(self) -> Path:
        """The broker's private key and certificate chain (PEM)."""
        return self.folder / "broker.pem"

    @property
    def client_cert(self) -> Path:
        """The client certificate (PEM) every client presents (mTLS)."""
        return self.folder / "client.pem"

    @property
    def client_key(self) -> Path:
        """The client certificate's private key (PEM)."""
        return self.folder / "client-key.pem"

    @property
    def users_file(self) -> Path:
        """The SCRAM passwords, by principal (JSON)."""
        return self.folder / "users.json"

    def exists(self) -> bool:
        """True once ``generate`` completed (the stack is secured)."""
        return self.users_file.exists()

    def env_file(self, principal: str) -> Path:
        """The ``RELAYFLOW_KAFKA_*`` lines that connect as ``principal``."""
        return self.folder / f"{principal}.env"

    def users(self) -> dict[str, str]:
        """Every principal's SCRAM password."""
        users: dict[str, str] = json.loads(self.users_file.read_text())
        return users

    def password(self, principal: str) -> str:
        """The SCRAM password of ``principal``."""
        return self.users()[principal]

    def generate(self, users: Iterable[str] = PRINCIPALS) -> None:
        """Make the CA, the broker and client certificates, the passwords and the env files.

        Args:
            users: The principals to make (``principals``: the framework's and
                the application's declared producers).
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        ca, ca_key = write_ca(self.folder)
        broker_key = ec.generate_private_key(ec.SECP256R1())
        broker = _signed(ca, ca_key, broker_key, "relayflow dev broker",
                         [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
                         [x509.DNSName("localhost"),
                          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        _write(self.broker_keystore, _pem_key(broker_key) + _pem(broker) + _pem(ca))
        client_key = ec.generate_private_key(ec.SECP256R1())
        client = _signed(ca, ca_key, client_key, "relayflow dev client",
                         [ExtendedKeyUsageOID.CLIENT_AUTH], [])
        _write(self.client_cert, _pem(client) + _pem(ca))
        _write(self.client_key, _pem_key(client_key))
        passwords = {principal: secrets.token_urlsafe(24) for principal in dict.fromkeys(users)}
        for principal, password in passwords.items():
            _write(self.env_file(principal), "".join(
                f"{name}={value}\n"
                for name, value in self.client_env(principal, password=password).items()))
        # Written last: its presence means the folder is complete.
        _write(self.users_file, json.dumps(passwords, indent=2))

    def client_env(self, principal: str, *, password: str | None = None) -> dict[str, str]:
        """The ``RELAYFLOW_KAFKA_*`` variables that connect as ``principal`` (password included)."""
        return {
            "RELAYFLOW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "RELAYFLOW_KAFKA_SASL_MECHANISM": MECHANISM,
            "RELAYFLOW_KAFKA_SASL_USERNAME": principal,
            "RELAYFLOW_KAFKA_SASL_PASSWORD": password or self.password(principal),
            "RELAYFLOW_KAFKA_SSL_CA_FILE": str(self.ca_file),
            "RELAYFLOW_KAFKA_SSL_CERT_FILE": str(self.client_cert),
            "RELAYFLOW_KAFKA_SSL_KEY_FILE": str(self.client_key),
        }

    def client_settings(self, settings: Settings, principal: str) -> Settings:
        """``settings`` connecting to the secured broker as ``principal``."""
        env = self.client_env(principal)
        fields = {name.removeprefix("RELAYFLOW_").lower(): value for name, value in env.items()}
        # Validated like the environment would be: the files must be readable.
        return Settings.model_validate({**settings.model_dump(), **fields})

    def scram_arguments(self) -> list[str]:
        """``StorageTool format`` arguments that create every principal's SCRAM credential."""
        return [argument for principal, password in self.users().items() for argument in (
            "--add-scram", f"{MECHANISM}=[name={principal},password={password}]")]

    def server_properties(self, port: int, controller_port: int,
                          advertised_port: int) -> dict[str, str]:
        """The broker's listener, TLS, SASL and authorizer properties (with the passwords).

        Args:
            port: The SASL_SSL listener's port.
            controller_port: The plaintext controller listener's port (loopback).
            advertised_port: The port clients are told to use.
        """
        jaas = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
                f'username="{ADMIN}" password="{self.password(ADMIN)}";')
        # PLAIN checks passwords against user_<name> options of its own login module.
        plain = ("org.apache.kafka.common.security.plain.PlainLoginModule required " + " ".join(
            f'user_{principal}="{password}"' for principal, password in self.users().items())
            + ";")
        return {
            "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"SASL_SSL://127.0.0.1:{advertised_port}",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "SASL_SSL",
            "sasl.enabled.mechanisms": ",".join(MECHANISMS),
            "sasl.mechanism.inter.broker.protocol": MECHANISM,
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": jaas,
            "listener.name.sasl_ssl.plain.sasl.jaas.config": plain,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.broker_keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            # KIP-684: on a SASL_SSL listener only the listener's own setting demands certificates.
            "listener.name.sasl_ssl.ssl.client.auth": "required",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{ADMIN};User:ANONYMOUS",
        }


def write_ca(folder: Path, name: str = "relayflow dev CA",
             ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Make a new CA: ``folder/ca.pem`` and ``folder/ca-key.pem`` (0600).

    Returns:
        Its certificate and key.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + _VALID)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / "ca.pem", _pem(cert))
    _write(folder / "ca-key.pem", _pem_key(key))
    return cert, key


def _signed(ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
            key: ec.EllipticCurvePrivateKey, name: str, usages: list[x509.ObjectIdentifier],
            names: list[x509.GeneralName]) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .issuer_name(ca.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + _VALID)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   ca_key.public_key()), critical=False))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    # Unencrypted PKCS#8: what Kafka's PEM keystore reads when no key password is set.
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _write(path: Path, text: str) -> None:
    """Write a file only its owner can read, from its creation on."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    path.chmod(0o600)

