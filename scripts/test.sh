#!/usr/bin/env bash
# Every check kerbside has, on a fresh Debian 12 machine: installs the Debian packages,
# then formatting, lints, every test (unit, property, a real MIT KDC, curl, Apache +
# mod_auth_gssapi), and the demo as a last end-to-end check.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# Tests run their own realms, CAs and servers: the machine's CA and proxy settings must
# not leak into them.
unset CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR GIT_SSL_CAINFO
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked 2>&1 | tee /tmp/kerbside-test.log
echo "== demo"
scripts/demo.sh >/tmp/kerbside-demo.log 2>&1 || { cat /tmp/kerbside-demo.log; echo "demo failed" >&2; exit 1; }
tail -1 /tmp/kerbside-demo.log
