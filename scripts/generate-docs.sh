#!/usr/bin/env bash
# Regenerates what is generated from the clap definitions and committed: the manual pages
# (docs/man) and the shell completions (packaging/completions). Tests fail when they are
# stale (cargo test -p kerbside --bin kerbside).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -p kerbside --locked --quiet
bin=target/debug/kerbside
rm -f docs/man/*.1
"$bin" man --out docs/man
"$bin" completions bash >packaging/completions/kerbside.bash
"$bin" completions zsh >packaging/completions/_kerbside
"$bin" completions fish >packaging/completions/kerbside.fish
