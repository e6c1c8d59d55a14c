#!/bin/sh
# Regenerates the test certificates of channel_binding.rs and their expected RFC 5929
# end-point hashes. Run from this folder; needs OpenSSL 3. Keys are thrown away.
set -eu
keys=$(mktemp -d)
trap 'rm -rf "$keys"' EXIT
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$keys/rsa" 2>/dev/null
for curve in P-256 P-384 P-521; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:$curve -out "$keys/$curve"
done
openssl genpkey -algorithm ED25519 -out "$keys/ed25519"
openssl genpkey -algorithm ED448 -out "$keys/ed448"
openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:2048 \
    -pkeyopt dsa_paramgen_q_bits:256 -out "$keys/dsa-params" 2>/dev/null
openssl genpkey -paramfile "$keys/dsa-params" -out "$keys/dsa"

: >end-point-hashes.txt
# cert NAME KEY HASH [openssl req options]: a self-signed certificate NAME.der, and the line
# "NAME.der HASH HEX" in end-point-hashes.txt, HEX being openssl's digest of the DER bytes.
cert() {
    name=$1 key=$2 hash=$3
    shift 3
    openssl req -x509 -new -key "$keys/$key" -subj "/CN=$name.kerbside.test" -days 36500 \
        -outform DER -out "$name.der" "$@"
    if [ "$hash" = none ]; then
        echo "$name.der none" >>end-point-hashes.txt
    else
        hex=$(openssl dgst "-$hash" -binary "$name.der" | od -An -v -tx1 | tr -d ' \n')
        echo "$name.der $hash $hex" >>end-point-hashes.txt
    fi
}
cert rsa-sha256 rsa sha256 -sha256
cert rsa-sha512 rsa sha512 -sha512
cert rsa-sha1 rsa sha256 -sha1
cert rsa-md5 rsa sha256 -md5
cert rsa-pss-sha384 rsa sha384 -sha384 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest
cert rsa-pss-sha1 rsa sha256 -sha1 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:20
cert ecdsa-p256-sha1 P-256 sha256 -sha1
cert ecdsa-p384-sha384 P-384 sha384 -sha384
cert ecdsa-p521-sha512 P-521 sha512 -sha512
cert dsa-sha256 dsa sha256 -sha256
cert ed25519 ed25519 none
cert ed448 ed448 none
