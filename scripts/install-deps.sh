#!/usr/bin/env bash
# Installs the Debian 12 packages kerbside builds and tests with, if any is missing.
# Also makes target/peers-venv, the Python SPNEGO clients of tests/python_peers.rs.
# Daemons the packages would start (krb5-kdc, apache2, nginx, caddy, ...) are kept from starting by
# a temporary policy-rc.d: tests run their own private instances.
set -euo pipefail

# compiler, and bindgen for libgssapi-sys
names=(build-essential pkg-config libclang-dev clang)
# MIT Kerberos: GSSAPI, kinit, a KDC
names+=(libkrb5-dev krb5-user krb5-kdc krb5-admin-server)
# interop peers: Apache + mod_auth_gssapi, curl; certificates for the demo
names+=(apache2 libapache2-mod-auth-gssapi squid curl openssl ca-certificates)
# NTLM and Digest peers: gss-ntlmssp (NTLMSSP for GSSAPI: Apache's NTLM, curl's SPNEGO/NTLM),
# lighttpd (Digest SHA-256 with an htdigest file), apache2-utils (htdigest, htpasswd)
names+=(gss-ntlmssp lighttpd lighttpd-mod-openssl apache2-utils)
# forward-auth peers: nginx (auth_request) and Caddy (forward_auth) in front of an upstream
names+=(nginx caddy haproxy redis-server)
# the demo publishes a Mercurial repository
names+=(mercurial)
# clock-skew tests run a server with a shifted clock
names+=(faketime)
# interop peers: headless Firefox ESR, certutil to trust the test CA in its profile
names+=(firefox-esr libnss3-tools fonts-dejavu-core tesseract-ocr tesseract-ocr-eng)
# Active Directory: a Samba AD domain controller as a throwaway fixture (TestDomain); the last
# three are only Recommends of samba, and provisioning fails without them
names+=(samba winbind smbclient samba-ad-provision samba-dsdb-modules samba-vfs-modules)
# interop peers: Python SPNEGO clients in a venv (gssapi builds against libkrb5-dev)
names+=(python3 python3-venv python3-dev)
# scripts/bench-proxy.sh: cntlm, the forward proxy kerbside proxy is measured against (px
# comes from PyPI into target/px-venv, made by that script)
names+=(cntlm)
# the Debian package's test: build (cargo-deb), check (lintian), install into a fresh root
names+=(debootstrap lintian)
# npm for the registry test through kerbside proxy (tests/forward_proxy_registries.rs):
# Debian's, unless an npm is on PATH already (NodeSource's nodejs bundles one, and
# Debian's npm package would conflict with it)
command -v npm >/dev/null || names+=(npm)

# The Python peers' venv (tests/python_peers.rs): made with the first python3 on PATH,
# remade when crates/kerbside/tests/peers/requirements.txt or that python changes.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
peers_venv() {
  local venv="$root/target/peers-venv"
  local requirements="$root/crates/kerbside/tests/peers/requirements.txt"
  local stamp
  stamp="$(sha256sum "$requirements" | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version)' | head -n1)"
  if [ -x "$venv/bin/python" ] && [ "$(cat "$venv/.installed" 2>/dev/null)" = "$stamp" ]; then
    echo "install-deps: Python peers venv present ($venv)"
    return
  fi
  echo "install-deps: making the Python peers venv in $venv (builds gssapi and krb5: a few minutes)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  printf '%s' "$stamp" >"$venv/.installed"
}

# cargo-deb builds the Debian package (scripts/package.sh); pinned, as its options change.
CARGO_DEB_VERSION=3.8.0
cargo_tools() {
  if command -v cargo-deb >/dev/null && [ "$(cargo-deb --version 2>/dev/null)" = "cargo-deb $CARGO_DEB_VERSION" ]; then
    echo "install-deps: cargo-deb $CARGO_DEB_VERSION present"
    return
  fi
  command -v cargo >/dev/null || { echo "install-deps: cargo is not on PATH: install Rust (rustup)" >&2; return 1; }
  echo "install-deps: installing cargo-deb $CARGO_DEB_VERSION (a few minutes)"
  cargo install --quiet --locked cargo-deb --version "$CARGO_DEB_VERSION"
}

missing=()
for p in "${names[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all Debian packages present"
  peers_venv
  cargo_tools
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
made_policy=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  made_policy=1
fi
cleanup() { [ -n "$made_policy" ] && $sudo rm -f /usr/sbin/policy-rc.d; true; }
trap cleanup EXIT
$sudo apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
peers_venv
cargo_tools

# Debian's samba and winbind packages enable their services: the test domain runs its own
# Samba and needs the LDAP ports and /run/samba/winbindd, so stop any that started anyway.
for service in samba-ad-dc smbd nmbd winbind; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$service" 2>/dev/null; then
    echo "install-deps: stopping and disabling $service (tests run their own Samba)"
    $sudo systemctl disable --now "$service" || true
  fi
done
if pgrep -x samba >/dev/null || pgrep -x winbindd >/dev/null || pgrep -x smbd >/dev/null; then
  echo "install-deps: a Samba daemon is running outside the tests; stop it before running them" >&2
fi

command -v cargo >/dev/null || echo "install-deps: cargo is not on PATH: install Rust (rustup) to build kerbside" >&2
