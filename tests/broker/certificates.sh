#!/usr/bin/env bash
# A test CA and a server certificate it signed, for 127.0.0.1 and localhost, valid for
# two days, made with openssl in DIR: ca.pem (the CA), server.key + server.crt, and
# broker.pem (key and certificate in one file, as Kafka's PEM keystore wants them).
#
#   certificates.sh DIR
set -euo pipefail
dir=${1:?usage: certificates.sh DIR}
command -v openssl >/dev/null || { echo "certificates.sh: openssl not found: apt-get install openssl" >&2; exit 1; }
mkdir -p "$dir"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=pipewatch test CA" \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$dir/san.ext"
openssl x509 -req -days 2 -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -extfile "$dir/san.ext" -out "$dir/server.crt" 2>/dev/null
cat "$dir/server.key" "$dir/server.crt" > "$dir/broker.pem"
