#!/bin/sh
# The benchmark of issue 5, in one command: the gate (release build) in every auth mode
# over HTTP and HTTPS, Apache 2 + mod_auth_gssapi as a reverse proxy in the matching
# modes, both in front of the same lighttpd upstream, a second load generator whose tokens
# come from python-gssapi (scripts/bench_python.py, the peers venv), and a bare
# gss_accept_sec_context loop; writes BENCHMARKS.md and docs/bench/cpu-per-request.svg. About 6 minutes on 2
# cores. Needs the Debian packages of scripts/install-deps.sh (krb5-kdc, apache2,
# libapache2-mod-auth-gssapi, lighttpd); touches nothing outside temporary directories
# and free loopback ports.
#
#   scripts/bench.sh                      # 5 rounds of 3 s per cell
#   ROUNDS=9 ROUND_SECS=5 scripts/bench.sh
set -eu
cd "$(dirname "$0")/.."
: "${ROUNDS:=5}" "${ROUND_SECS:=3}"
target=${CARGO_TARGET_DIR:-target}
python=${PEERS_PYTHON:-$target/peers-venv/bin/python}
for tool in /usr/sbin/lighttpd /usr/sbin/apache2 /usr/sbin/krb5kdc "$python"; do
    [ -x "$tool" ] || { echo "bench.sh: $tool is missing: run scripts/install-deps.sh" >&2; exit 1; }
done
cargo build --release -p kerbside --bin kerbside --example bench_suite
cargo build --release -p kerbside-gssapi --example accept_loop
# Up to 1000 connections at once (memory per idle connection), both ends in this machine.
ulimit -n 8192 2>/dev/null || true
exec "$target/release/examples/bench_suite" \
    --kerbside "$target/release/kerbside" \
    --accept-loop "$target/release/examples/accept_loop" \
    --python "$python" \
    --rounds "$ROUNDS" --round-secs "$ROUND_SECS" \
    --out BENCHMARKS.md --svg docs/bench/cpu-per-request.svg \
    --command "scripts/bench.sh (ROUNDS=$ROUNDS ROUND_SECS=$ROUND_SECS)"
