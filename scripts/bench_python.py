#!/usr/bin/env python3
"""A second load generator for issue 15: Negotiate tokens made the way Python clients
make them (python-gssapi, MIT's initiator, a fresh SPNEGO context per request), sent
over keep-alive HTTPS connections by several processes at once.

Each worker process holds one keep-alive connection (http.client) and, for every
request, makes a new gssapi.SecurityContext for HTTP@HOST (tickets from the client's
ticket cache or client keytab in the environment: KRB5CCNAME / KRB5_CLIENT_KTNAME),
sends `Authorization: Negotiate <token>`, reads the whole answer and checks it (status
200 and the mutual-authentication token when the server sends one). The server's CPU
(utime+stime of --server-pid from /proc) is read at the start and the end of the timed
window, so the figure is the server's CPU per successful request, as `kerbside bench
--server-pid` reports it. Prints one JSON line.

    target/peers-venv/bin/python scripts/bench_python.py https://localhost:PORT/bench.txt \
        --cacert ca.pem --server-pid PID -c 2 -d 3

Token making runs inside the timed window (as in a real client), so the rate is bounded
by the client's CPU; the figure per request is the server's and does not depend on it.
"""

import argparse
import base64
import http.client
import json
import multiprocessing
import os
import ssl
import sys
import time
import urllib.parse


def cpu_ticks(pid):
    """utime+stime of `pid` in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def worker(url, cacert, service, start_at, stop_at, out):
    import gssapi  # imported in each process: MIT's library state is per process

    u = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context(cafile=cacert) if u.scheme == "https" else None
    name = gssapi.Name(service, gssapi.NameType.hostbased_service)
    spnego = gssapi.Mechanism.from_sasl_name("SPNEGO")
    ok = errors = 0
    first_error = None
    conn = None
    while time.time() < start_at:
        time.sleep(0.001)
    while time.time() < stop_at:
        try:
            if conn is None:
                if ctx is not None:
                    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10)
                else:
                    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            sec = gssapi.SecurityContext(name=name, mech=spnego, usage="initiate")
            token = sec.step()
            conn.request(
                "GET",
                u.path or "/",
                headers={"Authorization": "Negotiate " + base64.b64encode(token).decode()},
            )
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"status {resp.status}")
            answer = resp.getheader("WWW-Authenticate", "")
            if answer.startswith("Negotiate "):
                sec.step(base64.b64decode(answer.split(" ", 1)[1]))
            ok += 1
        except Exception as e:  # counted, never hidden
            errors += 1
            first_error = first_error or repr(e)
            if conn is not None:
                conn.close()
            conn = None
    out.put((ok, errors, first_error))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url")
    p.add_argument("--cacert")
    p.add_argument("--service", help="GSSAPI service name (default HTTP@<url host>)")
    p.add_argument("--server-pid", type=int)
    p.add_argument("-c", "--connections", type=int, default=2)
    p.add_argument("-d", "--duration", type=float, default=3.0)
    a = p.parse_args()
    service = a.service or "HTTP@" + urllib.parse.urlsplit(a.url).hostname
    out = multiprocessing.Queue()
    start_at = time.time() + 1.0  # every process started and imported before the window
    stop_at = start_at + a.duration
    procs = [
        multiprocessing.Process(
            target=worker, args=(a.url, a.cacert, service, start_at, stop_at, out)
        )
        for _ in range(a.connections)
    ]
    for pr in procs:
        pr.start()
    while time.time() < start_at:
        time.sleep(0.001)
    cpu0 = cpu_ticks(a.server_pid) if a.server_pid else None
    t0 = time.time()
    results = [out.get(timeout=a.duration + 30) for _ in procs]
    cpu1 = cpu_ticks(a.server_pid) if a.server_pid else None
    wall = time.time() - t0
    for pr in procs:
        pr.join(timeout=10)
    ok = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    report = {
        "generator": "python-gssapi",
        "connections": a.connections,
        "ok": ok,
        "errors": errors,
        "requests_per_s": round(ok / wall, 1),
        "first_error": next((r[2] for r in results if r[2]), None),
    }
    if cpu0 is not None:
        hz = os.sysconf("SC_CLK_TCK")
        report["server_cpu_us_per_request"] = round((cpu1 - cpu0) / hz * 1e6 / max(ok, 1), 1)
    print(json.dumps(report))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
