"""Client workers for the scale-out tests (tests/scale_out.rs): threads that send requests
through a load balancer with requests + requests-gssapi (Negotiate, python-gssapi) or
requests-ntlm (NTLM, pyspnego), and record every request with its outcome.

    load_clients.py --url URL --ca CA --out FILE --stop FILE --max-seconds S \
        --worker SCHEME:USER[:SECRET]:PER_CONNECTION [--worker ...]

SCHEME is `negotiate` (SECRET: the user's ticket cache, `FILE:...`; a fresh token per
request, sent on the first request) or `negotiate-connection` (the same credentials,
but the token only after a 401, so later requests on the connection carry none and the
gate names the user from the connection) or `ntlm` (SECRET: the password; USER is
`DOMAIN\\user`). Each worker opens a connection, sends PER_CONNECTION requests on it,
closes it, and starts again until the file STOP exists or S seconds have passed.

Each request is one JSON line in OUT: worker, connection and request numbers, start and
end (seconds since the epoch), status (0 on an exception), the `x-remote-user` values the
echo upstream sent back, the user the worker logs in as, and the error if any.
"""

import argparse
import json
import os
import threading
import time

import gssapi
import requests
from requests_gssapi import OPTIONAL, HTTPSPNEGOAuth
from requests_ntlm import HttpNtlmAuth


def auth_for(scheme, user, secret):
    if scheme in ("negotiate", "negotiate-connection"):
        creds = gssapi.Credentials(usage="initiate", store={"ccache": secret})
        return HTTPSPNEGOAuth(
            creds=creds,
            mutual_authentication=OPTIONAL,
            opportunistic_auth=scheme == "negotiate",
        )
    if scheme == "ntlm":
        return HttpNtlmAuth(user, secret)
    raise SystemExit(f"unknown scheme {scheme!r}")


def echoed_users(body):
    """The `x-remote-user` lines of the request head the upstream echoed."""
    users = []
    for line in body.splitlines():
        name, _, value = line.partition(":")
        if name.strip().lower() == "x-remote-user":
            users.append(value.strip())
    return users


def worker(index, spec, args, deadline, records, lock):
    scheme, user, secret, per_connection = spec
    connection = 0
    while time.time() < deadline and not os.path.exists(args.stop):
        connection += 1
        with requests.Session() as session:
            session.verify = args.ca
            session.trust_env = False
            session.auth = auth_for(scheme, user, secret)
            for n in range(per_connection):
                start = time.time()
                record = {
                    "worker": index,
                    "connection": connection,
                    "request": n,
                    "start": start,
                    "as": user,
                }
                try:
                    r = session.get(
                        f"{args.url}?w={index}&c={connection}&n={n}",
                        timeout=(5, 15),
                    )
                    record["status"] = r.status_code
                    record["users"] = echoed_users(r.text)
                except Exception as e:  # every failure is an outcome to record
                    record["status"] = 0
                    record["users"] = []
                    record["error"] = f"{type(e).__name__}: {e}"
                record["end"] = time.time()
                with lock:
                    records.append(record)
                if record["status"] != 200:
                    break


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--stop", required=True)
    p.add_argument("--max-seconds", type=float, default=60)
    p.add_argument("--worker", action="append", default=[])
    args = p.parse_args()
    specs = []
    for w in args.worker:
        scheme, user, rest = w.split(":", 2)
        secret, per_connection = rest.rsplit(":", 1)
        specs.append((scheme, user, secret, int(per_connection)))
    deadline = time.time() + args.max_seconds
    records, lock = [], threading.Lock()
    threads = [
        threading.Thread(target=worker, args=(i, s, args, deadline, records, lock))
        for i, s in enumerate(specs)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(args.out, "w") as out:
        for r in records:
            out.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
