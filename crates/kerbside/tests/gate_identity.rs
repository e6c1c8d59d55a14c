//! Identity headers and names (issue 10, points 2 and 6), with `kerbside gate` run as a
//! process behind TLS in connection mode with Negotiate, NTLM, Digest and Basic:
//!
//! - a client's copies of the identity, signature and scheme headers, in any spelling
//!   (`X_Remote_User`, `x-remote_user`...), never reach a proxy upstream or a CGI program:
//!   checked with an upstream that echoes the raw header lines it received, with Python's
//!   `wsgiref` (which, like CGI, Rack and PHP, reads `_` and `-` alike and joins
//!   duplicates), and with a CGI program that prints its environment;
//! - a user logged in with NTLM, Digest or Basic is named as the users file spells the
//!   name, whatever case or domain the client typed (curl, requests-ntlm), and the scheme
//!   reaches the upstream in `--scheme-header` and CGI in `AUTH_TYPE`.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{curl, kerbside, text, with_password_on_stdin, GateProcess};
use kerbside_testkit::{run_password_client, TestCa, TestCert, TestRealm};

const DIGEST_REALM: &str = "gate@example.test";

/// An upstream that answers each request with `identity=<each x-remote-user value, |
/// separated>`, `request: <its request line>` and then the raw header lines it received,
/// names as sent.
struct RawHeadersUpstream {
    port: u16,
}

impl RawHeadersUpstream {
    fn start() -> Self {
        let port = common::serve_each_connection(|stream| {
            let _ = echo_headers(stream);
        });
        Self { port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

fn echo_headers(stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut lines = Vec::new();
        let mut identities = Vec::new();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end().to_owned();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.to_ascii_lowercase().as_str() {
                    "x-remote-user" => identities.push(value.trim().to_owned()),
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
            lines.push(line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let text = format!(
            "identity={}\nrequest: {}\n{}\n",
            identities.join("|"),
            request_line.trim_end(),
            lines.join("\n")
        );
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        )?;
        writer.flush()?;
    }
}

/// A WSGI application under Python's `wsgiref.simple_server` (Debian's Python), answering
/// with its `HTTP_*` environment, one `NAME=value` line each, sorted.
struct WsgiPeer {
    child: Child,
    port: u16,
}

const WSGI_APP: &str = r#"
import sys
from wsgiref.simple_server import make_server, WSGIRequestHandler

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

def app(environ, start_response):
    lines = sorted("%s=%s" % (k, v) for k, v in environ.items() if k.startswith("HTTP_"))
    body = ("\n".join(lines) + "\n").encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]

server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
"#;

impl WsgiPeer {
    fn start(dir: &Path) -> Self {
        let script = dir.join("wsgi_headers.py");
        std::fs::write(&script, WSGI_APP).unwrap();
        let mut child = Command::new("/usr/bin/python3")
            .arg(&script)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("/usr/bin/python3 (Debian's Python, with wsgiref) is needed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("wsgiref did not start: {line:?}"));
        Self { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for WsgiPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The CGI program: its identity variables and every `HTTP_*` variable, sorted.
const CGI: &str = "#!/bin/sh\n\
printf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
echo \"REMOTE_USER=$REMOTE_USER\"\n\
echo \"AUTH_TYPE=$AUTH_TYPE\"\n\
env | grep '^HTTP_' | sort\n";

struct Site {
    realm: TestRealm,
    ca: TestCa,
    _cert: TestCert,
    _raw: RawHeadersUpstream,
    _wsgi: WsgiPeer,
    gate: GateProcess,
}

/// Users files: NTLM `alice` (any domain) and `EXAMPLE\Bob`; Digest and Basic `alice`.
fn users_files(realm: &TestRealm) -> (PathBuf, PathBuf, PathBuf) {
    let dir = realm.dir();
    let ntlm = dir.join("ntlm-users");
    for (user, password) in [
        ("alice", "alice-password"),
        ("EXAMPLE\\Bob", "bob-password"),
    ] {
        with_password_on_stdin(
            realm,
            &["ntlm-passwd".as_ref(), ntlm.as_os_str(), user.as_ref()],
            password,
        );
    }
    let digest = dir.join("digest-users");
    with_password_on_stdin(
        realm,
        &[
            "digest-passwd".as_ref(),
            digest.as_os_str(),
            "alice".as_ref(),
            DIGEST_REALM.as_ref(),
        ],
        "alice-password",
    );
    let basic = dir.join("htpasswd");
    let status = Command::new("htpasswd")
        .args(["-c", "-b", "-B"])
        .arg(&basic)
        .args(["alice", "alice-password"])
        .stderr(Stdio::null())
        .status()
        .expect("Apache's htpasswd is needed");
    assert!(status.success());
    std::fs::set_permissions(&basic, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    (ntlm, digest, basic)
}

/// `/raw` (the raw-headers upstream), `/wsgi` (wsgiref), `/cgi` (the CGI program); their
/// `public` subpaths anonymous, the rest for any authenticated client.
fn site() -> Site {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let raw = RawHeadersUpstream::start();
    let wsgi = WsgiPeer::start(realm.dir());
    let (ntlm, digest, basic) = users_files(&realm);
    let program = realm.dir().join("identity.cgi");
    std::fs::write(&program, CGI).unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let config = realm.dir().join("gate-identity.toml");
    std::fs::write(
        &config,
        format!(
            r#"
tls-cert = {cert:?}
tls-key = {key:?}
auth = "connection"
ntlm-users = {ntlm:?}
digest-users = {digest:?}
digest-realm = "{DIGEST_REALM}"
basic-users = {basic:?}
scheme-header = "X-Remote-Auth-Type"
user-map = "strip-realm:{realm_name}"

[[mount]]
path = "/raw"
upstream = "{raw}"

[[mount]]
path = "/wsgi"
upstream = "{wsgi}"

[[mount]]
path = "/cgi"
cgi = {program:?}

[[access]]
path = "/"
authenticated = true

[[access]]
path = "/raw/public"
anonymous = true

[[access]]
path = "/wsgi/public"
anonymous = true

[[access]]
path = "/cgi/public"
anonymous = true
"#,
            cert = cert.cert_pem_path(),
            key = cert.key_pem_path(),
            raw = raw.url(),
            wsgi = wsgi.url(),
            realm_name = realm.realm(),
        ),
    )
    .unwrap();
    let mut cmd = kerbside(&realm);
    cmd.args(["gate", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--keytab")
        .arg(realm.keytab());
    let gate = GateProcess::from_command(cmd);
    Site {
        realm,
        ca,
        _cert: cert,
        _raw: raw,
        _wsgi: wsgi,
        gate,
    }
}

/// What a hostile client adds to its requests.
const SPOOFED: &[&str] = &[
    "X_Remote_User: mallory",
    "x-remote_user: mallory",
    "X-REMOTE-USER: mallory",
    "x_remote-user: mallory",
    "x_remote_user_signature: v1 t=1 sig=forged",
    "X-Remote-User-Signature: v1 t=1 sig=forged",
    "X_Remote_Auth_Type: Basic",
    "x-remote-auth-type: Basic",
    "X_Forwarded_For: 6.6.6.6",
    "X-Forwarded-For: 10.0.0.1",
    "X-Remote-Users: kept",
];

impl Site {
    /// curl over HTTP/1.1 with `auth` (curl's options; none: anonymous) and `headers`;
    /// the status and the body.
    fn curl(&self, auth: &[&str], headers: &[&str], path: &str) -> (u16, String) {
        let mut cmd = curl(&self.realm, self.ca.ca_pem_path());
        if auth.is_empty() || auth[0] != "--negotiate" {
            cmd.env(
                "KRB5CCNAME",
                format!("FILE:{}/no-ticket", self.realm.dir().display()),
            );
        }
        cmd.args(["--http1.1", "-w", "\n%{http_code}"]).args(auth);
        for header in headers {
            cmd.arg("-H").arg(header);
        }
        let out = cmd.arg(self.gate.url(path)).output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "curl {path}: {stderr}");
        let (body, status) = stdout.rsplit_once('\n').unwrap();
        (status.parse().unwrap(), body.to_owned())
    }

    fn ok(&self, auth: &[&str], headers: &[&str], path: &str) -> String {
        let (status, body) = self.curl(auth, headers, path);
        assert_eq!(status, 200, "{auth:?} {path}: {body}\n{}", self.gate.log());
        body
    }
}

/// The header lines of a raw-headers answer whose name reads as `name` to CGI/WSGI.
fn lines_named<'a>(body: &'a str, name: &str) -> Vec<&'a str> {
    body.lines()
        .skip(1)
        .filter(|line| {
            line.split_once(':').is_some_and(|(n, _)| {
                kerbside_server::identity_headers::same_variable(n.trim(), name)
            })
        })
        .collect()
}

/// The value of `NAME=` in a `NAME=value` listing, if the variable is set.
fn variable<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix('='))
}

const NEGOTIATE: &[&str] = &["--negotiate", "-u", ":"];

#[test]
fn spelled_identity_headers_never_reach_a_proxy_upstream() {
    let site = site();
    let alice = site.realm.principal("alice");

    // Anonymous, on a public path: none of the gate's headers, in any spelling.
    let body = site.ok(&[], SPOOFED, "/raw/public/x");
    assert!(body.starts_with("identity=\n"), "{body}");
    for name in [
        "x-remote-user",
        "x-remote-user-signature",
        "x-remote-auth-type",
    ] {
        assert_eq!(
            lines_named(&body, name),
            Vec::<&str>::new(),
            "{name}: {body}"
        );
    }
    assert_eq!(
        lines_named(&body, "x-remote-users"),
        ["x-remote-users: kept"]
    );
    assert_eq!(
        lines_named(&body, "x-forwarded-for"),
        ["x-forwarded-for: 10.0.0.1, 127.0.0.1"],
        "{body}"
    );

    // Logged in: the gate's header alone, with the scheme.
    let body = site.ok(NEGOTIATE, SPOOFED, "/raw/x");
    assert_eq!(
        lines_named(&body, "x-remote-user"),
        [format!("x-remote-user: {alice}")],
        "{body}"
    );
    assert_eq!(
        lines_named(&body, "x-remote-auth-type"),
        ["x-remote-auth-type: Negotiate"],
        "{body}"
    );
    assert_eq!(
        lines_named(&body, "x-remote-user-signature"),
        Vec::<&str>::new()
    );

    // Python's wsgiref reads X_Remote_User and X-Remote-User as one variable and joins
    // copies with a comma: it sees only the gate's value.
    let body = site.ok(&[], SPOOFED, "/wsgi/public/x");
    assert_eq!(variable(&body, "HTTP_X_REMOTE_USER"), None, "{body}");
    assert_eq!(variable(&body, "HTTP_X_REMOTE_AUTH_TYPE"), None, "{body}");
    assert_eq!(
        variable(&body, "HTTP_X_REMOTE_USER_SIGNATURE"),
        None,
        "{body}"
    );
    assert_eq!(
        variable(&body, "HTTP_X_REMOTE_USERS"),
        Some("kept"),
        "{body}"
    );
    let body = site.ok(NEGOTIATE, SPOOFED, "/wsgi/x");
    assert_eq!(
        variable(&body, "HTTP_X_REMOTE_USER"),
        Some(alice.as_str()),
        "{body}"
    );
    assert_eq!(
        variable(&body, "HTTP_X_REMOTE_AUTH_TYPE"),
        Some("Negotiate"),
        "{body}"
    );
    assert_eq!(
        variable(&body, "HTTP_X_REMOTE_USER_SIGNATURE"),
        None,
        "{body}"
    );
    assert_eq!(
        variable(&body, "HTTP_X_FORWARDED_FOR"),
        Some("10.0.0.1, 127.0.0.1"),
        "{body}"
    );

    assert!(
        site.gate
            .log()
            .contains("removed a client's copy of an identity header"),
        "{}",
        site.gate.log()
    );
}

#[test]
fn spelled_identity_headers_never_reach_a_cgi_program() {
    let site = site();
    let alice = site.realm.principal("alice");
    let body = site.ok(&[], SPOOFED, "/cgi/public/x");
    assert_eq!(variable(&body, "REMOTE_USER"), Some(""), "{body}");
    assert_eq!(variable(&body, "AUTH_TYPE"), Some(""), "{body}");
    for name in [
        "HTTP_X_REMOTE_USER",
        "HTTP_X_REMOTE_USER_SIGNATURE",
        "HTTP_X_REMOTE_AUTH_TYPE",
    ] {
        assert_eq!(variable(&body, name), None, "{name}: {body}");
    }
    assert_eq!(
        variable(&body, "HTTP_X_REMOTE_USERS"),
        Some("kept"),
        "{body}"
    );

    let body = site.ok(NEGOTIATE, SPOOFED, "/cgi/x");
    // user-map strip-realm:EXAMPLE.TEST
    assert_eq!(variable(&body, "REMOTE_USER"), Some("alice"), "{body}");
    assert!(alice.starts_with("alice@"));
    assert_eq!(variable(&body, "AUTH_TYPE"), Some("Negotiate"), "{body}");
    assert_eq!(variable(&body, "HTTP_X_REMOTE_USER"), None, "{body}");
    assert_eq!(variable(&body, "HTTP_X_REMOTE_AUTH_TYPE"), None, "{body}");
}

#[test]
fn users_are_named_as_the_users_file_spells_them_with_their_scheme() {
    let site = site();
    // NTLM compares names case-insensitively (NTOWFv2 upper-cases the user), and a bare
    // entry takes any domain: all are the file's `alice`.
    for login in [
        "alice:alice-password",
        "ALICE:alice-password",
        "Alice:alice-password",
        "OTHERDOMAIN\\alice:alice-password",
        "otherdomain\\ALICE:alice-password",
    ] {
        let auth = ["--ntlm", "-u", login];
        let body = site.ok(&auth, &[], "/raw/x");
        assert!(body.starts_with("identity=alice\n"), "{login}: {body}");
        assert_eq!(
            lines_named(&body, "x-remote-auth-type"),
            ["x-remote-auth-type: NTLM"]
        );
        let body = site.ok(&auth, &[], "/cgi/x");
        assert_eq!(
            variable(&body, "REMOTE_USER"),
            Some("alice"),
            "{login}: {body}"
        );
        assert_eq!(variable(&body, "AUTH_TYPE"), Some("NTLM"), "{body}");
    }
    // A domain-qualified entry is named with its domain as the file writes it, and is
    // only for that domain.
    for login in ["EXAMPLE\\Bob:bob-password", "example\\BOB:bob-password"] {
        let body = site.ok(&["--ntlm", "-u", login], &[], "/raw/x");
        assert!(
            body.starts_with("identity=EXAMPLE\\Bob\n"),
            "{login}: {body}"
        );
    }
    for login in ["OTHER\\bob:bob-password", "bob:bob-password"] {
        assert_eq!(
            site.curl(&["--ntlm", "-u", login], &[], "/raw/x").0,
            401,
            "{login}"
        );
    }
    // requests-ntlm (pyspnego) with another spelling: the same name.
    let facts = run_password_client(&[
        "requests-ntlm",
        &site.gate.url("/raw/x"),
        "--user",
        "SOMEWHERE\\ALICE",
        "--password",
        "alice-password",
        "--ca",
        site.ca.ca_pem_path().to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(facts.get("status"), "200", "{}", facts.raw);
    assert_eq!(facts.get("body"), "identity=alice", "{}", facts.raw);

    // Digest hashes the name as typed, and Basic's htpasswd is case-sensitive as Apache's:
    // only the file's spelling logs in, and it is passed on as is.
    for (scheme, option) in [("Digest", "--digest"), ("Basic", "--basic")] {
        let auth = [option, "-u", "alice:alice-password"];
        let body = site.ok(&auth, &[], "/raw/x");
        assert!(body.starts_with("identity=alice\n"), "{scheme}: {body}");
        assert_eq!(
            lines_named(&body, "x-remote-auth-type"),
            [format!("x-remote-auth-type: {scheme}")]
        );
        let body = site.ok(&auth, &[], "/cgi/x");
        assert_eq!(variable(&body, "REMOTE_USER"), Some("alice"), "{body}");
        assert_eq!(variable(&body, "AUTH_TYPE"), Some(scheme), "{body}");
        for other in ["ALICE:alice-password", "Alice:alice-password"] {
            assert_eq!(
                site.curl(&[option, "-u", other], &[], "/raw/x").0,
                401,
                "{scheme} {other}"
            );
        }
    }

    // Digest's uri= is the target as the client sent it, before the gate made the path
    // canonical: a login on a non-canonical spelling still verifies.
    let auth = ["--digest", "--path-as-is", "-u", "alice:alice-password"];
    let body = site.ok(&auth, &[], "/raw/./%78//y");
    assert!(body.starts_with("identity=alice\n"), "{body}");

    // Negotiate: the principal as the KDC names it, to proxy mounts; CGI gets what the
    // user map (strip-realm:EXAMPLE.TEST) makes of it. The map is for principals: the
    // users-file names above reached CGI as they are.
    let body = site.ok(NEGOTIATE, &[], "/raw/x");
    let alice = site.realm.principal("alice");
    assert!(body.starts_with(&format!("identity={alice}\n")), "{body}");
    let body = site.ok(NEGOTIATE, &[], "/cgi/x");
    assert_eq!(variable(&body, "REMOTE_USER"), Some("alice"), "{body}");
    assert_eq!(variable(&body, "AUTH_TYPE"), Some("Negotiate"), "{body}");
}

#[test]
fn a_scheme_header_that_reads_as_the_identity_header_is_refused() {
    let realm = TestRealm::start().unwrap();
    let out = kerbside(&realm)
        .args([
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
            "--keytab",
        ])
        .arg(realm.keytab())
        .args(["--scheme-header", "X_Remote_User"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("would be read as the identity header"),
        "{stderr}"
    );
}

#[test]
fn x_forwarded_host_is_the_gates_over_http2_too() {
    let site = site();
    let authority = site.gate.url.trim_start_matches("https://").to_owned();
    for version in ["--http1.1", "--http2"] {
        let out = curl(&site.realm, site.ca.ca_pem_path())
            .env(
                "KRB5CCNAME",
                format!("FILE:{}/no-ticket", site.realm.dir().display()),
            )
            .args([version, "-w", "\n%{http_version}"])
            .args(["-H", "X-Forwarded-Host: evil.example"])
            .args(["-H", "X-Forwarded-Proto: http"])
            .arg(site.gate.url("/raw/public/x"))
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        let (body, used) = stdout.rsplit_once('\n').unwrap();
        assert_eq!(used, if version == "--http2" { "2" } else { "1.1" });
        assert_eq!(
            lines_named(body, "x-forwarded-host"),
            [format!("x-forwarded-host: {authority}")],
            "{version}: {body}"
        );
        assert_eq!(
            lines_named(body, "x-forwarded-proto"),
            ["x-forwarded-proto: https"],
            "{version}: {body}"
        );
    }
}

#[test]
fn the_identity_signature_covers_the_target_the_upstream_receives() {
    let realm = TestRealm::start().unwrap();
    let raw = RawHeadersUpstream::start();
    let key = realm.dir().join("identity.key");
    let key_bytes: Vec<u8> = (0..32u8).map(|b| b.wrapping_mul(41)).collect();
    std::fs::write(&key, &key_bytes).unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    // The upstream is mounted under its own prefix, and the client's path is not canonical.
    let gate = GateProcess::start(
        &realm,
        None,
        &format!("{}/app", raw.url()),
        &["--identity-key", key.to_str().unwrap()],
    );
    let out = curl(&realm, Path::new("/dev/null"))
        .args([
            "--negotiate",
            "-u",
            ":",
            "--path-as-is",
            "-X",
            "POST",
            "-d",
            "",
        ])
        .arg(gate.url("/x/../%79?z=1"))
        .output()
        .unwrap();
    let (body, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        lines_named(&body, "request"),
        ["request: POST /app/y?z=1 HTTP/1.1"],
        "{body}"
    );
    let line = lines_named(&body, "x-remote-user-signature");
    let value = line[0].split_once(':').unwrap().1.trim();
    let t: u64 = value
        .split(' ')
        .find_map(|p| p.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap();
    let expected = kerbside_server::IdentitySigner::new(key_bytes)
        .unwrap()
        .sign(&realm.principal("alice"), t, "POST", "/app/y?z=1");
    assert_eq!(value, expected, "{body}");
}
