#!/usr/bin/env bash
# The main job, end to end, on this machine and nothing else:
#   a throwaway Kerberos realm (MIT KDC on a free loopback port), a real Mercurial
#   repository served by `hg serve`, `kerbside gate` in front of it over HTTPS with the
#   realm's keytab, and `kerbside fetch` reading the repository through the gate as
#   alice -- with her Kerberos ticket, no password.
# Everything lives in a temporary directory and is stopped and removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "Installing what is missing (Debian packages) and building kerbside"
scripts/install-deps.sh
cargo build -q -p kerbside
kerbside="$root/target/debug/kerbside"

work=$(mktemp -d /tmp/kerbside-demo.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Only this script's processes see the realm; nothing system-wide changes.
export KRB5_CONFIG="$work/krb5.conf" KRB5_KDC_PROFILE="$work/kdc.conf"
export KRB5CCNAME="FILE:$work/alice.ccache" KRB5RCACHEDIR="$work"
unset CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
realm=EXAMPLE.TEST
kdc_port=$(free_port)

say "Starting a throwaway realm $realm (KDC on 127.0.0.1:$kdc_port)"
cat > "$KRB5_CONFIG" <<CONF
[libdefaults]
  default_realm = $realm
  dns_lookup_kdc = false
  dns_lookup_realm = false
  dns_canonicalize_hostname = false
  rdns = false
[realms]
  $realm = {
    kdc = 127.0.0.1:$kdc_port
  }
[domain_realm]
  localhost = $realm
CONF
cat > "$KRB5_KDC_PROFILE" <<CONF
[kdcdefaults]
  kdc_listen = 127.0.0.1:$kdc_port
  kdc_tcp_listen = 127.0.0.1:$kdc_port
[realms]
  $realm = {
    database_name = $work/principal
    key_stash_file = $work/stash
    acl_file = $work/kadm5.acl
  }
[logging]
  kdc = FILE:$work/kdc.log
CONF
: > "$work/kadm5.acl"
/usr/sbin/kdb5_util create -s -r "$realm" -P "master-$RANDOM$RANDOM" >/dev/null
/usr/sbin/krb5kdc -n -P "$work/kdc.pid" 2>/dev/null & pids+=($!)
for _ in $(seq 50); do grep -q "commencing operation" "$work/kdc.log" 2>/dev/null && break; sleep 0.1; done
kadmin() { /usr/sbin/kadmin.local -r "$realm" -q "$1" >/dev/null 2>"$work/kadmin.err" || { cat "$work/kadmin.err"; exit 1; }; }
kadmin "addprinc -pw alice-password alice"
kadmin "addprinc -randkey HTTP/localhost"
kadmin "ktadd -k $work/http.keytab HTTP/localhost"
echo "alice-password" | kinit alice >/dev/null
klist | sed 's/^/   /'

say "Making a TLS certificate for localhost (private CA)"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=kerbside demo CA" \
  -keyout "$work/ca.key" -out "$work/ca.pem" -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$work/key.pem" \
  -out "$work/req.pem" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' > "$work/ext"
openssl x509 -req -in "$work/req.pem" -CA "$work/ca.pem" -CAkey "$work/ca.key" \
  -CAcreateserial -days 2 -extfile "$work/ext" -out "$work/cert.pem" 2>/dev/null

say "Creating a Mercurial repository and serving it with hg serve (the upstream)"
hg init "$work/repo"
printf 'Published with kerbside: Kerberos in, no passwords.\n' > "$work/repo/README"
hg -R "$work/repo" add -q "$work/repo/README"
hg -R "$work/repo" commit -q -u "alice <alice@example.test>" -m "first commit"
hg_port=$(free_port)
hg serve -R "$work/repo" -a 127.0.0.1 -p "$hg_port" -d --pid-file "$work/hg.pid" \
  --config web.allow-push='*' --config web.push_ssl=false >/dev/null
pids+=("$(cat "$work/hg.pid")")

say "Starting kerbside gate (HTTPS, keytab $work/http.keytab) in front of hg serve"
"$kerbside" gate --listen 127.0.0.1:0 --tls-cert "$work/cert.pem" --tls-key "$work/key.pem" \
  --keytab "$work/http.keytab" --upstream "http://127.0.0.1:$hg_port" 2>"$work/gate.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$work/gate.log" && break; sleep 0.05; done
gate=$(sed -n 's/.*listening on \(https:[^,]*\),.*/\1/p' "$work/gate.log" | head -1)
gate=${gate/127.0.0.1/localhost}
[ -n "$gate" ] || { cat "$work/gate.log"; exit 1; }
echo "   gate at $gate"

say "Without a ticket: the gate answers 401 and kerbside says what to do"
KRB5CCNAME="FILE:$work/nobody.ccache" "$kerbside" fetch --negotiate --cacert "$work/ca.pem" \
  "$gate/?cmd=capabilities" 2>&1 | sed 's/^/   /' || true

say "Plain HTTP would expose the ticket: kerbside refuses unless told otherwise"
"$kerbside" gate --listen 127.0.0.1:0 --keytab "$work/http.keytab" \
  --upstream "http://127.0.0.1:$hg_port" 2>"$work/plain-gate.log" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$work/plain-gate.log" && break; sleep 0.05; done
plain=$(sed -n 's/.*listening on \(http:[^,]*\),.*/\1/p' "$work/plain-gate.log" | head -1)
"$kerbside" fetch --negotiate "${plain/127.0.0.1/localhost}/raw-file/tip/README" 2>&1 | sed 's/^/   /' || true

say "As alice, with her Kerberos ticket (kerbside fetch --negotiate -v)"
"$kerbside" fetch --negotiate --mutual required -v --cacert "$work/ca.pem" \
  "$gate/raw-file/tip/README" 2>&1 | sed 's/^/   /'

say "The Mercurial wire protocol through the gate (capabilities)"
"$kerbside" fetch --negotiate --fail --cacert "$work/ca.pem" "$gate/?cmd=capabilities" \
  | tr ' ' '\n' | head -5 | sed 's/^/   /'
echo

say "What the gate logged"
sed 's/^/   /' "$work/gate.log" | grep -v "^   $" | tail -6

grep -q "authenticated.*alice@EXAMPLE.TEST" "$work/gate.log" || { echo "demo: alice was not authenticated" >&2; exit 1; }
say "Done: alice read the repository through kerbside gate with Kerberos, no password."
