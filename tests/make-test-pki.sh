#!/bin/sh
# Creates a throwaway PKI in DIR for the tests (never committed): root CA -> intermediate CA
# -> profile signers with an RSA-2048 and an ECDSA P-256 key, plus a key that matches no
# certificate and a pass-phrase-protected key. Everything is valid for two days.
set -eu
dir=$1
cd "$dir"
exec 2>openssl.log
printf 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' >ca.ext
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' >leaf.ext

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout root.key \
  -out root.pem -days 2 -subj "/CN=mailconfd test root" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout intermediate.key \
  -out intermediate.csr -subj "/CN=mailconfd test intermediate"
openssl x509 -req -in intermediate.csr -CA root.pem -CAkey root.key -set_serial 2 -days 2 \
  -extfile ca.ext -out intermediate.pem

signer() {  # NAME KEYSPEC...
  name=$1
  shift
  openssl req -new -newkey "$@" -nodes -keyout "$name.key" -out "$name.csr" \
    -subj "/CN=profiles.example.net/O=mailconfd test $name"
  openssl x509 -req -in "$name.csr" -CA intermediate.pem -CAkey intermediate.key \
    -set_serial "$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')" -days 2 -extfile leaf.ext \
    -out "$name.pem"
}
signer rsa rsa:2048
signer ec ec -pkeyopt ec_paramgen_curve:P-256
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key
openssl pkey -in ec.key -aes-256-cbc -passout pass:test -out encrypted.key
cp intermediate.pem chain.pem
