#!/bin/sh
# The forward-proxy benchmark of issue 13, in one command: kerbside proxy (release
# build), cntlm (Debian's) and px (PyPI's px-proxy, in target/px-venv) in front of the
# same Squid, and Squid used directly as the reference, with the same lighttpd origin:
# keep-alive GETs at 4 and 64 clients (requests/s, the proxy's CPU µs per request),
# CONNECT+TLS+GET per second, MB/s through one tunnel against direct, and 1000
# tunnels open at once (kerbside proxy and Squid). Rewrites the "Forward proxy"
# section of BENCHMARKS.md and its plot, docs/bench-proxy.svg. Not part of the
# test suite. Needs the Debian
# packages of scripts/install-deps.sh (krb5-kdc, squid, lighttpd, cntlm); touches nothing
# outside temporary directories, target/ and free loopback ports.
#
#   scripts/bench-proxy.sh               # 5 s per cell
#   SECS=10 scripts/bench-proxy.sh
set -eu
cd "$(dirname "$0")/.."
: "${SECS:=5}"
target=${CARGO_TARGET_DIR:-target}
for tool in /usr/sbin/lighttpd /usr/sbin/squid /usr/sbin/krb5kdc /usr/sbin/cntlm; do
    [ -x "$tool" ] || { echo "bench-proxy.sh: $tool is missing: run scripts/install-deps.sh" >&2; exit 1; }
done
if [ ! -x "$target/px-venv/bin/px" ]; then
    /usr/bin/python3 -m venv "$target/px-venv"
    "$target/px-venv/bin/pip" install --quiet px-proxy
fi
cargo build --release -p kerbside --bin kerbside --example bench_proxy
# 1000 tunnels at once: about 2000 descriptors each for the proxy, Squid and this
# load generator. The soft limit goes up to the hard one (never down).
hard=$(ulimit -Hn)
ulimit -Sn "$hard" 2>/dev/null || true
if [ "$hard" != unlimited ] && [ "$hard" -lt 8192 ]; then
    echo "bench-proxy.sh: the open-file limit is $hard; 1000 tunnels need 8192 (ulimit -Hn)" >&2
    exit 1
fi
exec "$target/release/examples/bench_proxy" \
    --kerbside "$target/release/kerbside" \
    --cntlm /usr/sbin/cntlm --px "$target/px-venv/bin/px" \
    --secs "$SECS" --out BENCHMARKS.md --svg docs/bench-proxy.svg \
    --command "scripts/bench-proxy.sh (SECS=$SECS)"
