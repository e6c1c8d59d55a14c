#!/bin/sh
# The scale-out benchmark of issue 15, in one command: 1, 2 and 3 gates (release build,
# HTTPS, PROXY v2, replay cache in one Redis) behind HAProxy in TCP mode with health
# checks, loaded with `kerbside bench` (per-request and handshake modes): CPU per request
# of the gates, HAProxy and Redis, and errors; and one gate with its memory replay cache
# against one with Redis (the cost of the Redis check per login). Rewrites the "Many
# gates behind HAProxy" section of BENCHMARKS.md. Not part of the test suite. About 5
# minutes on 2 cores (7 with ROUNDS=5). Needs the Debian packages of scripts/install-deps.sh (krb5-kdc,
# haproxy, redis-server, lighttpd); touches nothing outside temporary directories and
# free loopback ports.
#
#   scripts/bench-scale.sh                        # 3 rounds of 4 s per cell
#   ROUNDS=5 SECS=5 CONNECTIONS=12 scripts/bench-scale.sh
set -eu
cd "$(dirname "$0")/.."
: "${ROUNDS:=3}" "${SECS:=4}" "${CONNECTIONS:=12}"
target=${CARGO_TARGET_DIR:-target}
for tool in /usr/sbin/lighttpd /usr/sbin/haproxy /usr/bin/redis-server /usr/sbin/krb5kdc; do
    [ -x "$tool" ] || { echo "bench-scale.sh: $tool is missing: run scripts/install-deps.sh" >&2; exit 1; }
done
cargo build --release -p kerbside --bin kerbside --example bench_scale
ulimit -n 8192 2>/dev/null || true
exec "$target/release/examples/bench_scale" \
    --kerbside "$target/release/kerbside" \
    --rounds "$ROUNDS" --secs "$SECS" --connections "$CONNECTIONS" \
    --out BENCHMARKS.md \
    --command "scripts/bench-scale.sh (ROUNDS=$ROUNDS SECS=$SECS CONNECTIONS=$CONNECTIONS)"
