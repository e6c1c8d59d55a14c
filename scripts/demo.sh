#!/usr/bin/env bash
# The main job, end to end, on this machine and nothing else:
#   a throwaway Kerberos realm (MIT KDC on a free loopback port), a real Mercurial
#   repository published through hgweb.cgi behind `kerbside gate` (HTTPS, the realm's
#   keytab), and alice cloning, committing and pushing through `kerbside tunnel` with
#   her Kerberos ticket -- no password anywhere. bob may read but not push.
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
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_listening() { # LOG -> prints the URL the kerbside process listens on
  for _ in $(seq 200); do
    url=$(sed -n 's/.*listening on \(https\{0,1\}:\/\/[^,]*\),.*/\1/p' "$1" | head -1)
    [ -n "$url" ] && { echo "${url/127.0.0.1/localhost}"; return; }
    sleep 0.05
  done
  cat "$1" >&2; exit 1
}

# Only this script's processes see the realm; nothing system-wide changes.
export KRB5_CONFIG="$work/krb5.conf" KRB5_KDC_PROFILE="$work/kdc.conf"
export KRB5CCNAME="FILE:$work/alice.ccache" KRB5RCACHEDIR="$work"
unset CURL_CA_BUNDLE SSL_CERT_FILE SSL_CERT_DIR http_proxy https_proxy HTTP_PROXY HTTPS_PROXY
export HGRCPATH="" HGPLAIN=1
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
kadmin "addprinc -pw bob-password bob"
kadmin "addprinc -randkey HTTP/localhost"
kadmin "ktadd -k $work/http.keytab HTTP/localhost"
echo "alice-password" | kinit alice >/dev/null
echo "bob-password" | kinit -c "FILE:$work/bob.ccache" bob >/dev/null
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

say "A Mercurial repository published with hgweb.cgi; only alice may push"
hg init "$work/repo"
printf 'Published with kerbside: Kerberos in, no passwords.\n' > "$work/repo/README"
hg -R "$work/repo" add -q "$work/repo/README"
hg -R "$work/repo" commit -q -u "admin <admin@example.test>" -m "first commit"
printf '[web]\nallow-push = alice\n' > "$work/repo/.hg/hgrc"
cat > "$work/hgweb.cgi" <<CGI
#!/usr/bin/python3
from mercurial import demandimport; demandimport.enable()
from mercurial.hgweb import hgweb, wsgicgi
wsgicgi.launch(hgweb(b"$work/repo"))
CGI
chmod +x "$work/hgweb.cgi"
cat > "$work/gate.toml" <<CONF
listen = "127.0.0.1:0"
tls-cert = "$work/cert.pem"
tls-key = "$work/key.pem"
keytab = "$work/http.keytab"
auth = "cookie"
session-key = "$work/session.key"
user-map = "strip-realm:$realm"

[[mount]]
path = "/hg"
cgi = "$work/hgweb.cgi"
env = { HGRCPATH = "" }
CONF
sed 's/^/   /' "$work/gate.toml"

say "Checking the gate's configuration with a real round trip (kerbside gate --check)"
echo "bob-password" > "$work/bob.password"
"$kerbside" gate --config "$work/gate.toml" --check --check-principal bob \
  --check-password-file "$work/bob.password" --check-spn HTTP@localhost | sed 's/^/   /'

say "Starting kerbside gate"
"$kerbside" gate --config "$work/gate.toml" 2>"$work/gate.log" & pids+=($!)
gate=$(wait_listening "$work/gate.log")
echo "   gate at $gate"

say "Without a ticket: kerbside says what to do"
KRB5CCNAME="FILE:$work/nobody.ccache" "$kerbside" fetch --negotiate --cacert "$work/ca.pem" \
  "$gate/hg/?cmd=capabilities" 2>&1 | sed 's/^/   /' || true

say "alice's tunnel: Mercurial speaks plain HTTP to it, it speaks Kerberos to the gate"
"$kerbside" tunnel --listen 127.0.0.1:0 --to "$gate/hg" --cacert "$work/ca.pem" \
  2>"$work/tunnel-alice.log" & pids+=($!)
alice_tunnel=$(wait_listening "$work/tunnel-alice.log")
echo "   $alice_tunnel -> $gate/hg"

say "alice clones, commits and pushes -- no password"
hg clone -q "$alice_tunnel/" "$work/alice-clone"
printf 'A change from alice.\n' >> "$work/alice-clone/README"
hg -R "$work/alice-clone" commit -q -u "alice <alice@example.test>" -m "alice was here"
hg -R "$work/alice-clone" push 2>&1 | sed 's/^/   /'
echo "   the published repository now has:"
hg -R "$work/repo" log -T '     {rev}: {desc} ({author})\n'

say "bob may clone, but his push is refused (403: not in allow-push)"
KRB5CCNAME="FILE:$work/bob.ccache" "$kerbside" tunnel --listen 127.0.0.1:0 --to "$gate/hg" \
  --cacert "$work/ca.pem" 2>"$work/tunnel-bob.log" & pids+=($!)
bob_tunnel=$(wait_listening "$work/tunnel-bob.log")
hg clone -q "$bob_tunnel/" "$work/bob-clone"
printf 'A change from bob.\n' >> "$work/bob-clone/README"
hg -R "$work/bob-clone" commit -q -u "bob <bob@example.test>" -m "bob tries"
if hg -R "$work/bob-clone" push >"$work/bob-push.log" 2>&1; then
  echo "demo: bob's push should have been refused" >&2; exit 1
fi
sed 's/^/   /' "$work/bob-push.log"

say "What the gate logged"
grep -E "authenticated|refused|403" "$work/gate.log" | sed 's/^/   /' | tail -8

grep -q "alice was here" <(hg -R "$work/repo" log -T '{desc}\n') \
  || { echo "demo: alice's commit is not in the published repository" >&2; exit 1; }
! grep -q "bob tries" <(hg -R "$work/repo" log -T '{desc}\n') \
  || { echo "demo: bob's commit must not be in the published repository" >&2; exit 1; }
say "Done: alice cloned and pushed with Kerberos, no password; bob's push was refused."
