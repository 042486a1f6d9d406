#!/usr/bin/env sh
# Development certificates for the TLS overlay (docker-compose.tls.yml): a throw-away CA, the RabbitMQ
# server certificate, and one client certificate per user name given (its CN is the RabbitMQ user name,
# as a SITHS function certificate's CN is in production). NEVER use these outside a developer's machine.
#
#   ./make-dev-certs.sh [OUT_DIR] [CLIENT_CN...]     default: this directory; hmc-broker websesam-skane websesam-halland sesam2
set -eu
out=${1:-$(dirname "$0")}
[ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- hmc-broker websesam-skane websesam-halland sesam2
mkdir -p "$out"
cd "$out"
days=30

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days "$days" -subj "/O=HMC Broker development/CN=HMC dev CA" \
  -keyout ca-key.pem -out ca.pem 2>/dev/null

openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/O=HMC Broker development/CN=rabbitmq" \
  -keyout server-key.pem -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:rabbitmq,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days "$days" \
  -extfile server.ext -out server.pem 2>/dev/null

printf 'extendedKeyUsage=clientAuth\n' > client.ext
for cn in "$@"; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/O=HMC Broker development/CN=$cn" \
    -keyout "client-$cn-key.pem" -out "client-$cn.csr" 2>/dev/null
  openssl x509 -req -in "client-$cn.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days "$days" \
    -extfile client.ext -out "client-$cn.pem" 2>/dev/null
done
rm -f ./*.csr ./*.ext ./*.srl
# RabbitMQ runs as uid 999 in its image and must read its key: world-readable, acceptable for these
# development keys only (production: owned by 999, mode 0400). The CA and client keys stay private.
chmod 0644 ca.pem server.pem server-key.pem ./client-*.pem
chmod 0600 ca-key.pem ./client-*-key.pem
# The broker's key is read in its container by uid 10001 (compose mounts certs/ there): dev only again.
[ -f client-hmc-broker-key.pem ] && chmod 0644 client-hmc-broker-key.pem
echo "dev certificates in $out: ca.pem server.pem server-key.pem, client-<cn>.pem for: $*"
