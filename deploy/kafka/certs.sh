#!/usr/bin/env bash
# Certificates for a development/test broker with TLS (kafka.sh, KAFKA_SECURE=1):
# a CA of its own, and a certificate for the broker on 127.0.0.1/localhost signed
# by it. Written into DIR (kafka.sh uses $KAFKA_DATA/certs), never into the
# repository; a DIR that already holds them is left as it is.
#
# Usage: certs.sh DIR
#
#   ca.pem            the CA certificate: what Python clients trust
#                     (NORMWACHT_KAFKA_SSL_CAFILE)
#   ca.key            the CA's key: whoever has it can make certificates the broker
#                     trusts, so it stays in DIR (mode 600)
#   broker.pem/.key   the broker's certificate (CN=normwacht-broker; SAN 127.0.0.1 and
#                     localhost; server and client use) and key
#   broker.p12        PKCS12 keystore for the broker: its key, certificate and the CA
#   truststore.p12    PKCS12 truststore for the broker: the CA
#   store.password    the password of both stores (random)
#
# The broker also uses its certificate as a client (mutual TLS on the controller
# listener), where it authenticates as User:CN=normwacht-broker.
#
# Needs openssl and the JDK's keytool.
set -euo pipefail

[[ $# -eq 1 ]] || {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
}
dir=$1
days=825

[[ -f $dir/truststore.p12 ]] && exit 0
command -v openssl >/dev/null || { echo "certs.sh: openssl not found" >&2; exit 1; }
command -v keytool >/dev/null || { echo "certs.sh: keytool (JDK) not found" >&2; exit 1; }

mkdir -p "$dir"
# Into a fresh folder, then moved: an interrupted run never looks complete.
tmp=$(mktemp -d "$dir/.certs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
umask 077

password=$(head -c 18 /dev/urandom | base64 | tr -d '+/=\n')
printf '%s' "$password" >"$tmp/store.password"

openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days "$days" \
  -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -subj "/CN=Normwacht development CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -new -newkey rsa:2048 -nodes -sha256 \
  -keyout "$tmp/broker.key" -out "$tmp/broker.csr" -subj "/CN=normwacht-broker" 2>/dev/null
cat >"$tmp/broker.ext" <<'EXT'
basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EXT
openssl x509 -req -sha256 -days "$days" -in "$tmp/broker.csr" \
  -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" -CAcreateserial \
  -extfile "$tmp/broker.ext" -out "$tmp/broker.pem" 2>/dev/null

openssl pkcs12 -export -name broker -in "$tmp/broker.pem" -inkey "$tmp/broker.key" \
  -certfile "$tmp/ca.pem" -out "$tmp/broker.p12" -passout "pass:$password"
keytool -importcert -noprompt -alias normwacht-ca -file "$tmp/ca.pem" \
  -keystore "$tmp/truststore.p12" -storetype PKCS12 -storepass "$password" >/dev/null 2>&1

rm -f "$tmp/broker.csr" "$tmp/broker.ext" "$tmp/ca.srl"
chmod 644 "$tmp/ca.pem" "$tmp/broker.pem"
# The truststore last: its presence says the folder is complete.
for name in ca.pem ca.key broker.pem broker.key broker.p12 store.password truststore.p12; do
  mv "$tmp/$name" "$dir/$name"
done
