#!/usr/bin/env python3
"""Third-party Python SPNEGO clients for kerbside's interop tests (tests/python_peers.rs).

Run with the interpreter of the peers venv that scripts/install-deps.sh makes, and the
test realm's environment (KRB5_CONFIG, KRB5CCNAME). Prints what happened as `key=value`
lines on stdout (the Rust side has no JSON parser); each `users=...` line of the echo
upstream's body comes out as `<prefix>.upstream.users=...`. Tokens are never printed.

    spnego_peers.py requests-gssapi URL --ca CA --mutual required|optional [--count N]
                    [--channel-bindings] [--fresh-connections]
    spnego_peers.py pyspnego URL --ca CA [--channel-bindings wrong|right] [--tamper-final]
"""

import argparse
import base64
import http.client
import re
import ssl
import sys
import urllib.parse

NEGOTIATE = re.compile(r"Negotiate\s+([A-Za-z0-9+/=]+)", re.I)


def final_token(headers):
    """The token of a `WWW-Authenticate: Negotiate <token>` header, or None."""
    for value in headers:
        match = NEGOTIATE.search(value)
        if match:
            return base64.b64decode(match.group(1))
    return None


def emit(facts):
    """Prints `facts` as sorted `key=value` lines; booleans as true/false."""
    for key in sorted(facts):
        value = facts[key]
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif value is None:
            value = ""
        text = str(value)
        assert "\n" not in text, (key, text)
        print("%s=%s" % (key, text))


def upstream_facts(prefix, body):
    """The echo upstream's `name=value` body lines as `<prefix>.upstream.<name>` facts."""
    facts = {}
    for line in body.splitlines():
        name, sep, value = line.partition("=")
        if sep:
            facts["%s.upstream.%s" % (prefix, name)] = value
    return facts


def requests_gssapi(args):
    """A requests.Session with HTTPSPNEGOAuth doing `count` GETs of the URL."""
    import requests
    import requests_gssapi
    from requests_gssapi.exceptions import MutualAuthenticationError

    mutual = {
        "required": requests_gssapi.REQUIRED,
        "optional": requests_gssapi.OPTIONAL,
    }[args.mutual]
    auth = requests_gssapi.HTTPSPNEGOAuth(
        mutual_authentication=mutual,
        channel_bindings="tls-server-end-point" if args.channel_bindings else None,
    )
    session = requests.Session()
    session.trust_env = False  # no proxies, no netrc
    session.verify = args.ca
    session.auth = auth
    facts = {"client": "requests-gssapi"}
    for n in range(1, args.count + 1):
        prefix = "request%d" % n
        if args.fresh_connections:
            session.close()  # drops the pooled connections, keeps the cookies
        try:
            response = session.get(args.url, timeout=30)
        except MutualAuthenticationError as e:
            facts[prefix + ".error"] = "MutualAuthenticationError: %s" % e
            continue
        facts[prefix + ".status"] = response.status_code
        facts[prefix + ".history"] = ",".join(str(r.status_code) for r in response.history)
        facts[prefix + ".final_token"] = final_token([response.headers.get("www-authenticate", "")]) is not None
        facts.update(upstream_facts(prefix, response.text))
    context = auth.context.get(urllib.parse.urlparse(args.url).hostname)
    import gssapi

    complete = context is not None and context.complete
    facts["cookies"] = ",".join(sorted(c.name for c in session.cookies))
    facts["context.complete"] = complete
    facts["context.mutual"] = complete and gssapi.RequirementFlag.mutual_authentication in context.actual_flags
    facts["context.target"] = str(context.target_name) if complete else None
    emit(facts)


def pyspnego(args):
    """pyspnego's own (pure Python) SPNEGO over GSSAPI Kerberos: one GET with the token,
    then the server's final token fed back into the context (mutual authentication)."""
    import spnego
    from spnego.channel_bindings import GssChannelBindings
    from cryptography import x509

    url = urllib.parse.urlparse(args.url)
    tls = ssl.create_default_context(cafile=args.ca)
    conn = http.client.HTTPSConnection(url.hostname, url.port, context=tls, timeout=30)
    conn.connect()

    bindings = None
    if args.channel_bindings:
        cert = x509.load_der_x509_certificate(conn.sock.getpeercert(binary_form=True))
        digest = cert.fingerprint(cert.signature_hash_algorithm)
        if args.channel_bindings == "wrong":
            digest = bytes(b ^ 0xFF for b in digest)
        bindings = GssChannelBindings(application_data=b"tls-server-end-point:" + digest)

    ctx = spnego.client(
        hostname=url.hostname,
        service="HTTP",
        protocol="negotiate",
        options=spnego.NegotiateOptions.use_negotiate,
        channel_bindings=bindings,
    )
    token = ctx.step()
    conn.request(
        "GET",
        url.path or "/",
        headers={"Authorization": "Negotiate " + base64.b64encode(token).decode()},
    )
    response = conn.getresponse()
    body = response.read().decode("utf-8", "replace")
    final = final_token(response.headers.get_all("WWW-Authenticate") or [])
    facts = {
        "client": "pyspnego %s" % type(ctx).__name__,
        "request1.status": response.status,
        "final_token": final is not None,
        "complete": False,
        "error": None,
    }
    facts.update(upstream_facts("request1", body))
    if final is not None:
        if args.tamper_final:
            # Flip the last byte: inside the Kerberos AP-REP or the mechListMIC.
            final = final[:-1] + bytes([final[-1] ^ 0x01])
        try:
            ctx.step(final)
            facts["complete"] = ctx.complete
        except Exception as e:  # spnego.exceptions.SpnegoError and friends
            facts["error"] = "%s: %s" % (type(e).__name__, str(e).replace("\n", " "))
    conn.close()
    emit(facts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="client", required=True)
    r = sub.add_parser("requests-gssapi")
    r.add_argument("url")
    r.add_argument("--ca", required=True)
    r.add_argument("--mutual", choices=["required", "optional"], required=True)
    r.add_argument("--count", type=int, default=3)
    r.add_argument("--channel-bindings", action="store_true")
    r.add_argument("--fresh-connections", action="store_true")
    p = sub.add_parser("pyspnego")
    p.add_argument("url")
    p.add_argument("--ca", required=True)
    p.add_argument("--channel-bindings", choices=["right", "wrong"])
    p.add_argument("--tamper-final", action="store_true")
    args = parser.parse_args()
    {"requests-gssapi": requests_gssapi, "pyspnego": pyspnego}[args.client](args)


if __name__ == "__main__":
    sys.exit(main())
