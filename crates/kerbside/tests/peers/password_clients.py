#!/usr/bin/env python3
"""Third-party Python clients of the password schemes for kerbside's interop tests:
requests-ntlm (NTLM over requests, pyspnego underneath) and httpx's DigestAuth.

Run with the interpreter of the peers venv that scripts/install-deps.sh makes. Prints what
happened as sorted `key=value` lines on stdout (the Rust side has no JSON parser); secrets are
never printed.

    password_clients.py requests-ntlm URL --user 'EXAMPLE\\alice' --password P [--ca CA]
                        [--post-bytes N] [--count N]
    password_clients.py httpx-digest URL --user alice --password P [--ca CA] [--post-bytes N]

Facts: `status` (of the last response), `statuses` (every response the client saw, the
final ones of each request, comma-separated), `remote_user` (the X-Remote-User header),
`connection_id` (X-Connection-Id), `body` (the first line of the last body),
`challenges` (the WWW-Authenticate headers of the first 401, `|`-separated), `error`
(an exception, if the client failed).
--post-bytes N sends a POST of N bytes (b"kerbside" repeated) and prints `sent_sha256`.
--count N makes N requests in one session (one connection where the client can).
"""

import argparse
import hashlib
import ssl
import sys


def emit(facts):
    for key in sorted(facts):
        value = facts[key]
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif value is None:
            value = "-"
        print("%s=%s" % (key, " ".join(str(value).split()) if key != "body" else value))


def post_body(n):
    return (b"kerbside" * (n // 8 + 1))[:n]


def first_line(text):
    return text.splitlines()[0] if text else ""


def requests_ntlm(args, facts):
    import requests
    import requests_ntlm as rn

    session = requests.Session()
    session.auth = rn.HttpNtlmAuth(args.user, args.password)
    session.verify = args.ca or True
    session.trust_env = False
    statuses = []
    response = None
    for _ in range(args.count):
        if args.post_bytes is not None:
            response = session.post(args.url, data=post_body(args.post_bytes))
        else:
            response = session.get(args.url)
        for earlier in response.history:
            statuses.append(earlier.status_code)
            if earlier.status_code == 401 and "challenges" not in facts:
                facts["challenges"] = "|".join(earlier.raw.headers.getlist("WWW-Authenticate"))
        statuses.append(response.status_code)
    if response.status_code == 401 and "challenges" not in facts:
        facts["challenges"] = "|".join(response.raw.headers.getlist("WWW-Authenticate"))
    return response.status_code, response.headers, response.text, statuses


def httpx_digest(args, facts):
    import httpx

    verify = ssl.create_default_context(cafile=args.ca) if args.ca else True
    statuses = []
    with httpx.Client(auth=httpx.DigestAuth(args.user, args.password), verify=verify, trust_env=False) as client:
        response = None
        for _ in range(args.count):
            if args.post_bytes is not None:
                response = client.post(args.url, content=post_body(args.post_bytes))
            else:
                response = client.get(args.url)
            for earlier in response.history:
                statuses.append(earlier.status_code)
                if earlier.status_code == 401 and "challenges" not in facts:
                    facts["challenges"] = "|".join(earlier.headers.get_list("WWW-Authenticate"))
            statuses.append(response.status_code)
        if response.status_code == 401 and "challenges" not in facts:
            facts["challenges"] = "|".join(response.headers.get_list("WWW-Authenticate"))
        return response.status_code, response.headers, response.text, statuses


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("client", choices=["requests-ntlm", "httpx-digest"])
    parser.add_argument("url")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--ca")
    parser.add_argument("--post-bytes", type=int)
    parser.add_argument("--count", type=int, default=1)
    args = parser.parse_args(argv)

    facts = {"client": args.client}
    if args.post_bytes is not None:
        facts["sent_sha256"] = hashlib.sha256(post_body(args.post_bytes)).hexdigest()
    run = requests_ntlm if args.client == "requests-ntlm" else httpx_digest
    try:
        status, headers, text, statuses = run(args, facts)
    except Exception as e:  # the test wants the words, not a traceback
        facts["error"] = "%s: %s" % (type(e).__name__, e)
        emit(facts)
        return 1
    facts.update(
        status=status,
        statuses=",".join(map(str, statuses)),
        remote_user=headers.get("X-Remote-User"),
        connection_id=headers.get("X-Connection-Id"),
        body=first_line(text),
    )
    emit(facts)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
