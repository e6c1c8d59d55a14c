#!/usr/bin/env bash
# Builds the Debian package, target/debian/kerbside_VERSION-1_amd64.deb: the release
# binary, manual pages (docs/man), completions (packaging/completions), an example
# /etc/kerbside/gate.toml and systemd units (packaging/systemd). Needs cargo-deb
# (scripts/install-deps.sh installs it).
#
#   KERBSIDE_PACKAGE_OUT=DIR        where the .deb goes (default target/debian)
#   KERBSIDE_PACKAGE_PROFILE=dev    package target/debug/kerbside as built, without building
#                                   (the package test does this; not for release)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-deb >/dev/null; then
  echo "package.sh: cargo-deb is missing: run scripts/install-deps.sh (or cargo install cargo-deb)" >&2
  exit 1
fi
out="${KERBSIDE_PACKAGE_OUT:-target/debian}"
mkdir -p "$out"
if [ "${KERBSIDE_PACKAGE_PROFILE:-release}" = dev ]; then
  if [ ! -x target/debug/kerbside ]; then
    echo "package.sh: no target/debug/kerbside: run cargo build -p kerbside first" >&2
    exit 1
  fi
  # cargo-deb warns that dev builds are not for release; they are not, they are for tests.
  cargo deb -p kerbside --profile dev --no-build --fast --output "$out" 2> >(grep -v 'dev profile\|To enable debug symbols' >&2)
else
  cargo deb -p kerbside --locked --output "$out"
fi
