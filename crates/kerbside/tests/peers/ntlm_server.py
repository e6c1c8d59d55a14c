#!/usr/bin/env python3
"""A connection-bound NTLM web server on pyspnego's pure-Python NTLM acceptor: a peer for
kerbside's NTLM client that shares no code with gss-ntlmssp. kerbside-testkit's
`PyNtlmServer` runs it with the interpreter of the peers venv (scripts/install-deps.sh).

    ntlm_server.py --users FILE [--cert CERT --key KEY] [--negotiate] [--channel-bindings]
                   [--close-after-challenge] [--log FILE] [--port N]

Accounts come from FILE (`DOMAIN:user:password` lines), handed to pyspnego as
`NTLM_USER_FILE`. The server binds 127.0.0.1 (port 0: any free one) and prints
`listening port=N scheme=http|https` on stdout once it accepts connections.

The exchange, all on one connection (NTLM authenticates the connection, not a request):

    GET /private/                      -> 401, WWW-Authenticate: NTLM (and Negotiate with --negotiate)
    Authorization: NTLM <NEGOTIATE>    -> 401, WWW-Authenticate: NTLM <CHALLENGE>
    Authorization: NTLM <AUTHENTICATE> -> 200, X-Remote-User: EXAMPLE\\alice
    GET /private/ (no header)          -> 200 as the same user: the connection is authenticated

A failed AUTHENTICATE (wrong password, unknown user, bad MIC or channel binding) gets a
401 with fresh challenges. `Negotiate` carries NTLMSSP inside SPNEGO (pyspnego's own
SPNEGO; Kerberos is not offered). Paths: `/public/...` needs no authentication; a POST
anywhere else answers `<sha256 hex> <length>\\n` of its body; other requests answer
"kerbside private page\\n". Every response carries `X-Connection-Id`.

--close-after-challenge: after sending the CHALLENGE 401, close the connection (no
`Connection: close` header): a server that drops the connection mid-handshake.

--channel-bindings (HTTPS): require the client's NTLMv2 response to carry
`tls-server-end-point` channel bindings of this server's certificate (all zeros, "no
bindings", is still accepted, as Windows does by default).

--log FILE: one line per request, written just before its response is sent:

    conn=1 scheme=https method=GET path=/private/ auth=- leg=none status=401 user=-
    conn=1 scheme=https method=GET path=/private/ auth=NTLM leg=negotiate status=401 user=-
    conn=1 scheme=https method=GET path=/private/ auth=NTLM leg=authenticate status=200 user=EXAMPLE\\alice

`conn` numbers connections from 1; `auth` is the scheme of the Authorization header;
`leg` is negotiate, authenticate, failed (with error=... at the end), bound (let in by
the connection's earlier login), public or none.
"""

import argparse
import base64
import hashlib
import http.server
import itertools
import os
import socket
import ssl
import sys
import threading

import spnego
from spnego.channel_bindings import GssChannelBindings
from spnego.exceptions import SpnegoError

PRIVATE_BODY = b"kerbside private page\n"
PUBLIC_BODY = b"kerbside public page\n"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", required=True, help="DOMAIN:user:password lines")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert", help="PEM certificate (HTTPS)")
    parser.add_argument("--key", help="PEM private key (HTTPS)")
    parser.add_argument("--negotiate", action="store_true", help="also offer Negotiate (SPNEGO with NTLM)")
    parser.add_argument("--channel-bindings", action="store_true")
    parser.add_argument("--close-after-challenge", action="store_true")
    parser.add_argument("--log", help="one line per request")
    args = parser.parse_args(argv)
    if bool(args.cert) != bool(args.key):
        parser.error("--cert and --key go together")
    if args.channel_bindings and not args.cert:
        parser.error("--channel-bindings needs HTTPS (--cert, --key)")
    return args


def message_type(raw):
    """The NTLMSSP message type (1, 2, 3) of `raw`, or None if it is not a bare NTLM message."""
    if len(raw) >= 12 and raw[:8] == b"NTLMSSP\0":
        return int.from_bytes(raw[8:12], "little")
    return None


def end_point_bindings(cert_path):
    """RFC 5929 tls-server-end-point bindings for the certificate at `cert_path`."""
    with open(cert_path) as f:
        der = ssl.PEM_cert_to_DER_cert(f.read())
    # SHA-256 for SHA-1/MD5/SHA-256-signed certificates; the test CA signs with ECDSA-SHA256.
    return GssChannelBindings(application_data=b"tls-server-end-point:" + hashlib.sha256(der).digest())


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, args):
        self.args = args
        self.connections = itertools.count(1)
        self.log_lock = threading.Lock()
        self.log_file = open(args.log, "a", buffering=1) if args.log else None
        self.bindings = end_point_bindings(args.cert) if args.channel_bindings else None
        self.tls = None
        if args.cert:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(args.cert, args.key)
            self.tls.set_alpn_protocols(["http/1.1"])
        super().__init__(("127.0.0.1", args.port), Handler)

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls:
            # The handshake happens on the handler's thread (do_handshake_on_connect on first read).
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def log(self, line):
        if self.log_file:
            with self.log_lock:
                self.log_file.write(line + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kerbside-pyntlm"

    def setup(self):
        self.tls_failed = False
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError):
                self.tls_failed = True
        super().setup()
        self.conn_id = next(self.server.connections)
        self.context = None
        self.context_scheme = None
        self.user = None

    def handle(self):
        if not self.tls_failed:
            super().handle()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def offers(self):
        offers = ["NTLM"]
        if self.server.args.negotiate:
            offers.insert(0, "Negotiate")
        return offers

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def respond(self, status, body, headers=(), leg="none", auth="-", error=None):
        # Logged before the response goes out, so a client that has the response finds the line.
        line = "conn=%d scheme=%s method=%s path=%s auth=%s leg=%s status=%d user=%s" % (
            self.conn_id,
            "https" if self.server.tls else "http",
            self.command,
            self.path,
            auth,
            leg,
            status,
            self.user or "-",
        )
        if error:
            line += " error=" + " ".join(str(error).split())
        self.server.log(line)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if self.user:
            self.send_header("X-Remote-User", self.user)
        self.send_header("X-Connection-Id", str(self.conn_id))
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def unauthorized(self, leg="none", auth="-", error=None):
        headers = [("WWW-Authenticate", offer) for offer in self.offers()]
        self.respond(401, b"authentication required\n", headers, leg=leg, auth=auth, error=error)

    def ok_body(self, body):
        if self.command == "POST":
            return ("%s %d\n" % (hashlib.sha256(body).hexdigest(), len(body))).encode()
        return PRIVATE_BODY

    def handle_any(self):
        body = self.read_body()
        if self.path.startswith("/public/"):
            self.respond(200, PUBLIC_BODY, leg="public")
            return
        authorization = self.headers.get("Authorization", "")
        scheme, _, token = authorization.strip().partition(" ")
        scheme = next((o for o in self.offers() if o.lower() == scheme.lower()), None)
        if scheme is None or not token.strip():
            if self.user:
                self.respond(200, self.ok_body(body), leg="bound")
            else:
                self.unauthorized(auth=authorization.partition(" ")[0] or "-")
            return
        try:
            raw = base64.b64decode(token.strip(), validate=True)
        except ValueError as e:
            self.unauthorized(leg="failed", auth=scheme, error="bad base64: %s" % e)
            return

        kind = message_type(raw)
        # A NEGOTIATE (or any first SPNEGO token) starts over: a new login on this connection.
        if self.context is None or self.context_scheme != scheme or kind == 1 or (scheme == "Negotiate" and raw[:1] == b"\x60"):
            self.user = None
            options = spnego.NegotiateOptions.use_ntlm if scheme == "NTLM" else spnego.NegotiateOptions.use_negotiate
            self.context = spnego.server(
                protocol="ntlm" if scheme == "NTLM" else "negotiate",
                options=options,
                channel_bindings=self.server.bindings,
            )
            self.context_scheme = scheme
        leg = {1: "negotiate", 3: "authenticate"}.get(kind, "spnego")
        try:
            out = self.context.step(raw)
        except (SpnegoError, ValueError, KeyError, IndexError, TypeError) as e:
            self.context = None
            self.unauthorized(leg="failed", auth=scheme, error="%s: %s" % (type(e).__name__, e))
            return

        if not self.context.complete:
            challenge = "%s %s" % (scheme, base64.b64encode(out or b"").decode())
            self.respond(401, b"authentication continues\n", [("WWW-Authenticate", challenge)], leg=leg, auth=scheme)
            if self.server.args.close_after_challenge:
                self.close_connection = True
                try:
                    self.request.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return

        self.user = self.context.client_principal
        headers = []
        if out:
            headers.append(("WWW-Authenticate", "%s %s" % (scheme, base64.b64encode(out).decode())))
        self.respond(200, self.ok_body(body), headers, leg="authenticate" if kind == 3 else "spnego", auth=scheme)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = handle_any


def main(argv):
    args = parse_args(argv)
    os.environ["NTLM_USER_FILE"] = os.path.abspath(args.users)
    server = Server(args)
    print(
        "listening port=%d scheme=%s" % (server.server_address[1], "https" if server.tls else "http"),
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
