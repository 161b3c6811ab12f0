#!/usr/bin/env bash
# Creates compose/secrets/, every file docker-compose.secure.yml mounts as a Docker secret:
# a CA and certificates for Kafka (broker: kafka, localhost) and for the Temporal TLS
# terminator (temporal-tls, localhost), client certificates, a SCRAM password per
# principal, the broker's JAAS file, the admin tools' client properties, payload keys,
# Grafana's admin password.
# Throwaway material for trying the secured stack; bring your own in production.
# The folder is 0700 (only you, on this machine); its files are 0644 so the containers'
# users can read the files mounted into them.
set -euo pipefail
cd "$(dirname "$0")"
if [ -e secrets ]; then
    echo "compose/secrets exists already; remove it to start over" >&2
    exit 1
fi
mkdir -m 0700 secrets
cd secrets

new_ca() {  # <file stem> <common name>
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 365 \
        -subj "/CN=$2" -keyout "$1-key.pem" -out "$1.pem" 2>/dev/null
}

issue() {  # <file stem> <CA stem> <common name> <extensions>
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -subj "/CN=$3" \
        -keyout "$1-key.pem" -out "$1.csr" 2>/dev/null
    openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2-key.pem" -CAcreateserial -days 365 \
        -extfile <(printf '%b' "$4") -out "$1-cert.pem" 2>/dev/null
    rm "$1.csr"
}

server="extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName="
client="extendedKeyUsage=clientAuth\n"

new_ca kafka-ca "relayflow compose Kafka CA"
issue kafka-broker kafka-ca "kafka" "${server}DNS:kafka,DNS:localhost"
issue kafka-client kafka-ca "relayflow client" "$client"
# Kafka's PEM keystores and relayflow's RELAYFLOW_KAFKA_SSL_CERT_FILE: key and chain in one file.
cat kafka-broker-key.pem kafka-broker-cert.pem kafka-ca.pem > kafka-broker.pem
cat kafka-client-key.pem kafka-client-cert.pem > kafka-client.pem
rm kafka-broker-key.pem kafka-broker-cert.pem kafka-client-key.pem kafka-client-cert.pem

new_ca temporal-ca "relayflow compose Temporal CA"
issue temporal-server temporal-ca "temporal-tls" "${server}DNS:temporal-tls,DNS:localhost"
issue temporal-client temporal-ca "relayflow client" "$client"
mv temporal-server-cert.pem temporal-server.pem
mv temporal-client-cert.pem temporal-client.pem
rm -f ./*.srl kafka-ca-key.pem temporal-ca-key.pem  # no more certificates from these CAs

for user in admin bridge worker approvals tools; do
    openssl rand -hex 24 | tr -d '\n' > "kafka-$user-password"
done
admin_password=$(cat kafka-admin-password)
cat > kafka-server-jaas.conf <<JAAS
KafkaServer {
  org.apache.kafka.common.security.scram.ScramLoginModule required
  username="admin"
  password="$admin_password";
};
JAAS
cat > kafka-admin-client.properties <<PROPERTIES
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_password";
ssl.truststore.type=PEM
ssl.truststore.location=/run/secrets/kafka-ca.pem
ssl.keystore.type=PEM
ssl.keystore.location=/run/secrets/kafka-client.pem
PROPERTIES
echo "compose-1:$(openssl rand -base64 32)" > payload-keys
openssl rand -hex 24 | tr -d '\n' > grafana-admin-password  # Grafana's user "admin"
chmod 0644 ./*
echo "secrets written to $(pwd)"
