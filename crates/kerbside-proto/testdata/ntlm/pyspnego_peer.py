#!/usr/bin/env python3
"""One side of an NTLM or SPNEGO/NTLM exchange on pyspnego's pure-Python implementation, for
kerbside-proto's interop test (tests/ntlm_pyspnego.rs). Tokens travel as lines on stdin/stdout:

    pyspnego_peer.py initiator|acceptor ntlm|negotiate

The peer prints `TOKEN <base64>` while its context is incomplete and `DONE <base64 or ->
<user>` once complete, and reads one base64 token (or `-`) per line. Errors print `ERROR ...`
and exit 1. The initiator authenticates as $PEER_USER (`DOMAIN\\user`) with $PEER_PASSWORD,
for HTTP/$PEER_HOST; the acceptor reads accounts from $NTLM_USER_FILE (`DOMAIN:user:password`).
$PEER_CB, if set, is the channel-bindings application data in hex.
"""
import base64
import os
import sys

import spnego
from spnego.channel_bindings import GssChannelBindings


def emit(kind, token, extra=""):
    text = base64.b64encode(token).decode() if token else "-"
    print(f"{kind} {text} {extra}".rstrip(), flush=True)


def read_token():
    line = sys.stdin.readline()
    if not line:
        sys.exit(0)
    line = line.strip()
    return None if line == "-" else base64.b64decode(line)


def main():
    role, protocol = sys.argv[1], sys.argv[2]
    options = (
        spnego.NegotiateOptions.use_negotiate
        if protocol == "negotiate"
        else spnego.NegotiateOptions.use_ntlm
    )
    cb = None
    if os.environ.get("PEER_CB"):
        cb = GssChannelBindings(application_data=bytes.fromhex(os.environ["PEER_CB"]))
    if role == "initiator":
        user = os.environ["PEER_USER"]
        nt_hash = spnego._ntlm_raw.crypto.ntowfv1(os.environ["PEER_PASSWORD"])
        # An NTLM-only credential, so that Negotiate offers NTLMSSP alone.
        cred = spnego.NTLMHash(username=user, nt_hash=nt_hash.hex().upper())
        ctx = spnego.client(
            cred,
            hostname=os.environ.get("PEER_HOST", "www.example.com"),
            service="HTTP",
            protocol=protocol,
            options=options,
            channel_bindings=cb,
        )
        emit("TOKEN", ctx.step())
    else:
        ctx = spnego.server(protocol=protocol, options=options, channel_bindings=cb)
    while not ctx.complete:
        out = ctx.step(read_token())
        if ctx.complete:
            who = ctx.client_principal if role == "acceptor" else ""
            emit("DONE", out, who or "")
        else:
            emit("TOKEN", out)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - reported to the Rust side
        print(f"ERROR {type(e).__name__}: {e}".replace("\n", " "), flush=True)
        sys.exit(1)
