//! One canonical path (issue 10, point 1): `kerbside gate` run as a process in front of two
//! proxy mounts and a CGI mount whose access rules differ, and a matrix of path spellings
//! sent by curl (`--path-as-is`) and over raw TCP (where curl would rewrite the path).
//! Checked: the status, what each upstream or the CGI program received (path,
//! `PATH_INFO`, `SCRIPT_NAME`, `REQUEST_URI`), that refused requests reached nothing, and
//! what the log says.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{curl, kerbside, text, GateProcess, RecordingUpstream};
use kerbside_testkit::TestRealm;

/// The CGI program: prints its path variables, and appends a line to `runs` each time it
/// runs, so a test can tell it never ran.
const CGI: &str = "#!/bin/sh\n\
echo \"$REQUEST_URI\" >> \"$RUNS_FILE\"\n\
printf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
printf 'PATH_INFO=%s\\nSCRIPT_NAME=%s\\nREQUEST_URI=%s\\nQUERY_STRING=%s\\nREMOTE_USER=%s\\n' \
\"$PATH_INFO\" \"$SCRIPT_NAME\" \"$REQUEST_URI\" \"$QUERY_STRING\" \"$REMOTE_USER\"\n";

struct Site {
    realm: TestRealm,
    public: RecordingUpstream,
    admin: RecordingUpstream,
    runs: PathBuf,
    gate: GateProcess,
}

/// `/public` (anonymous) and `/admin` (alice only) proxied to their own upstreams; `/cgi`
/// for any authenticated principal, with `/cgi/open` anonymous. Nothing else is allowed.
fn site() -> Site {
    let realm = TestRealm::start().unwrap();
    let public = RecordingUpstream::start();
    let admin = RecordingUpstream::start();
    let dir = realm.dir();
    let program = dir.join("paths.cgi");
    std::fs::write(&program, CGI).unwrap();
    std::fs::set_permissions(
        &program,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let runs = dir.join("cgi-runs");
    std::fs::write(&runs, "").unwrap();
    let config = dir.join("gate-paths.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[mount]]
path = "/public"
upstream = "{public}"

[[mount]]
path = "/admin"
upstream = "{admin}"

[[mount]]
path = "/cgi"
cgi = {program:?}
env = {{ RUNS_FILE = {runs:?} }}

[[access]]
path = "/public"
anonymous = true

[[access]]
path = "/admin"
users = ["{alice}"]

[[access]]
path = "/cgi"
authenticated = true

[[access]]
path = "/cgi/open"
anonymous = true
"#,
            public = public.url(),
            admin = admin.url(),
            alice = realm.principal("alice"),
        ),
    )
    .unwrap();
    let mut cmd = kerbside(&realm);
    cmd.args([
        "gate",
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
        "--config",
    ])
    .arg(&config)
    .arg("--keytab")
    .arg(realm.keytab());
    let gate = GateProcess::from_command(cmd);
    Site {
        realm,
        public,
        admin,
        runs,
        gate,
    }
}

impl Site {
    /// `curl --path-as-is` on `target`, anonymously or as alice (Negotiate); the status and
    /// the body.
    fn get(&self, target: &str, as_alice: bool) -> (u16, String) {
        let mut cmd = curl(&self.realm, Path::new("/dev/null"));
        if as_alice {
            cmd.args(["--negotiate", "-u", ":"]);
        } else {
            cmd.env(
                "KRB5CCNAME",
                format!("FILE:{}/no-ticket", self.realm.dir().display()),
            );
        }
        let out = cmd
            .args(["--path-as-is", "-w", "\n%{http_code}"])
            .arg(self.gate.url(target))
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "curl {target}: {stderr}");
        let (body, status) = stdout.rsplit_once('\n').unwrap();
        (status.parse().unwrap(), body.to_owned())
    }

    fn port(&self) -> u16 {
        self.gate.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Sends `request_line` and a Host header over raw TCP; the status.
    fn raw(&self, request_line: &[u8]) -> u16 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port())).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut request = request_line.to_vec();
        request.extend_from_slice(b"\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        stream.write_all(&request).unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let head = String::from_utf8_lossy(&answer);
        head.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {head:?}"))
    }

    /// The paths each upstream received, and the `REQUEST_URI`s the CGI program ran for.
    fn reached(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let paths = |u: &RecordingUpstream| u.requests().into_iter().map(|r| r.path).collect();
        let runs = std::fs::read_to_string(&self.runs).unwrap();
        (
            paths(&self.public),
            paths(&self.admin),
            runs.lines().map(str::to_owned).collect(),
        )
    }
}

/// Where an allowed request went and with which path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reached {
    Public(&'static str),
    Admin(&'static str),
}

#[test]
fn proxy_mounts_see_one_canonical_path() {
    let site = site();
    let cases: &[(&str, bool, u16, Option<Reached>)] = &[
        // dot segments in every spelling, out of a protected mount into a public one
        (
            "/admin/../public/x",
            false,
            200,
            Some(Reached::Public("/public/x")),
        ),
        (
            "/admin/%2e%2e/public/x",
            false,
            200,
            Some(Reached::Public("/public/x")),
        ),
        (
            "/admin/%2E%2E/public/x",
            false,
            200,
            Some(Reached::Public("/public/x")),
        ),
        (
            "/admin/.%2e/public/x",
            false,
            200,
            Some(Reached::Public("/public/x")),
        ),
        (
            "/admin/%2E./public/x",
            false,
            200,
            Some(Reached::Public("/public/x")),
        ),
        // ...and from a public mount into a protected one: judged, routed and forwarded as /admin
        ("/public/../admin/x", false, 401, None),
        ("/public/%2e%2e/admin/x", false, 401, None),
        (
            "/public/%2e%2e/admin/x",
            true,
            200,
            Some(Reached::Admin("/admin/x")),
        ),
        ("//admin/x", false, 401, None),
        ("/./admin/x", false, 401, None),
        ("/%61dmin/x", false, 401, None),
        ("/%61dmin/x", true, 200, Some(Reached::Admin("/admin/x"))),
        // merged slashes, decoded unreserved characters, upper-case escapes, raw query
        ("/public//x", false, 200, Some(Reached::Public("/public/x"))),
        (
            "/%70ublic/%78",
            false,
            200,
            Some(Reached::Public("/public/x")),
        ),
        (
            "/public/caf%c3%a9",
            false,
            200,
            Some(Reached::Public("/public/caf%C3%A9")),
        ),
        (
            "/public/x?q=/../admin&r=%2e%2e",
            false,
            200,
            Some(Reached::Public("/public/x?q=/../admin&r=%2e%2e")),
        ),
        // no canonical form: 400, nothing forwarded
        ("/public/..%2fadmin", false, 400, None),
        ("/public/a%2Fb", false, 400, None),
        ("/public/a%5cb", false, 400, None),
        ("/public/a%00b", false, 400, None),
        ("/public/a%01b", false, 400, None),
        ("/public/a%7fb", false, 400, None),
        ("/public/a%0d%0aX-Injected:%20yes", false, 400, None),
        ("/../public/x", false, 400, None),
        ("/public/%2e%2e/%2e%2e/admin", false, 400, None),
        ("/public/..;/admin/x", false, 400, None),
        ("/admin;x/secret", true, 400, None),
        ("/public/%c0%ae%c0%ae/admin", false, 400, None),
        ("/public/%zz", false, 400, None),
        ("/admin/%2e%2e/public/a%2fb", true, 400, None),
    ];
    for &(target, as_alice, status, reached) in cases {
        let before = site.reached();
        let (got, body) = site.get(target, as_alice);
        assert_eq!(got, status, "{target}: {body}\n{}", site.gate.log());
        let after = site.reached();
        let new = |b: &[String], a: &[String]| a[b.len()..].to_vec();
        let (public, admin, cgi) = (
            new(&before.0, &after.0),
            new(&before.1, &after.1),
            new(&before.2, &after.2),
        );
        assert!(cgi.is_empty(), "{target} ran the CGI program");
        match reached {
            Some(Reached::Public(path)) => {
                assert_eq!((public, admin), (vec![path.to_owned()], vec![]), "{target}")
            }
            Some(Reached::Admin(path)) => {
                assert_eq!((public, admin), (vec![], vec![path.to_owned()]), "{target}")
            }
            None => assert_eq!(
                (public, admin),
                (vec![], vec![]),
                "{target} reached an upstream"
            ),
        }
        if status == 400 {
            assert!(body.contains("Bad request path"), "{target}: {body}");
        }
    }
    // The 400s are counted with the gate's other answers.
    let refusals = cases.iter().filter(|case| case.2 >= 400).count();
    let metrics = site.gate.metrics();
    assert_eq!(
        common::metric(&metrics, r#"kerbside_gate_responses_total{class="4xx"}"#),
        refusals as f64,
        "{metrics}"
    );
    let log = site.gate.log();
    assert!(
        log.contains("request path refused (has an encoded slash (%2F)); answering 400")
            && log.contains("/public/..%2fadmin"),
        "{log}"
    );
    // The gate's own log names the canonical path it judged.
    assert!(log.contains("path=/admin/x"), "{log}");
    assert!(!log.contains("path=/public/%2e%2e/admin/x"), "{log}");
    // Alice reached /admin once through each spelling, under her name.
    let admin = site.admin.requests();
    assert_eq!(admin.len(), 2);
    assert!(admin
        .iter()
        .all(|r| r.users == [site.realm.principal("alice")]));
}

#[test]
fn raw_requests_curl_would_rewrite_are_refused() {
    let site = site();
    for (line, status) in [
        (&b"GET /public/a\\b HTTP/1.1"[..], 400),
        (b"GET /public/\\..\\admin HTTP/1.1", 400),
        (b"GET /public/a\x01b HTTP/1.1", 400),
        (b"GET /public/a\x7fb HTTP/1.1", 400),
        (b"OPTIONS * HTTP/1.1", 400),
        (b"GET public/x HTTP/1.1", 400),
        (b"GET /public/x/../../admin/x HTTP/1.1", 401),
        (b"GET /public/./x HTTP/1.1", 200),
        (b"GET http://localhost/admin/../public/y HTTP/1.1", 200),
    ] {
        assert_eq!(
            site.raw(line),
            status,
            "{}\n{}",
            String::from_utf8_lossy(line),
            site.gate.log()
        );
    }
    let public: Vec<String> = site.public.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(public, ["/public/x", "/public/y"]);
    assert!(site.admin.requests().is_empty());
    assert!(site
        .gate
        .log()
        .contains("request path refused (is the asterisk form (OPTIONS *)"));
}

#[test]
fn cgi_sees_the_canonical_path_in_every_variable() {
    let site = site();
    // allowed anonymously only under /cgi/open, once canonical
    let (status, body) = site.get("/cgi/x/%2e%2e/open/a%20b//c?z=%2e%2e", false);
    assert_eq!(status, 200, "{body}\n{}", site.gate.log());
    assert!(body.contains("PATH_INFO=/open/a b/c\n"), "{body}");
    assert!(body.contains("SCRIPT_NAME=/cgi\n"), "{body}");
    assert!(
        body.contains("REQUEST_URI=/cgi/open/a%20b/c?z=%2e%2e\n"),
        "{body}"
    );
    assert!(body.contains("QUERY_STRING=z=%2e%2e\n"), "{body}");

    // routed to the CGI mount from a proxy mount's prefix
    let (status, body) = site.get("/public/../cgi/open/%79", false);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("PATH_INFO=/open/y\n"), "{body}");
    assert!(body.contains("REQUEST_URI=/cgi/open/y\n"), "{body}");
    assert!(site.public.requests().is_empty());

    // out of the anonymous part: asked to log in, the program never runs
    let runs = site.reached().2.len();
    for target in ["/cgi/open/%2e%2e/secret", "/cgi/open/..", "/cgi//secret"] {
        assert_eq!(site.get(target, false).0, 401, "{target}");
    }
    // no canonical form: 400, the program never runs
    for target in [
        "/cgi/open/a%2fb",
        "/cgi/open/a%00",
        "/cgi/open/%5c..%5csecret",
    ] {
        assert_eq!(site.get(target, false).0, 400, "{target}");
    }
    assert_eq!(site.reached().2.len(), runs);

    // logged in, under the canonical path, with her name
    let (status, body) = site.get("/cgi/open/%2E%2E/secret/./%2e", true);
    assert_eq!(status, 200, "{body}\n{}", site.gate.log());
    assert!(body.contains("PATH_INFO=/secret/\n"), "{body}");
    assert!(body.contains("REQUEST_URI=/cgi/secret/\n"), "{body}");
    assert!(body.contains("REMOTE_USER=alice"), "{body}");
}

#[test]
fn http2_requests_get_the_same_canonical_path() {
    let site = site();
    for (target, expected) in [
        ("/admin/%2E%2e/public/h2", "2 200"),
        ("/public/a%2fb", "2 400"),
        ("/public/%2e%2e/admin/h2", "2 401"),
    ] {
        let out = curl(&site.realm, Path::new("/dev/null"))
            .env(
                "KRB5CCNAME",
                format!("FILE:{}/no-ticket", site.realm.dir().display()),
            )
            .args([
                "--http2-prior-knowledge",
                "--path-as-is",
                "-v",
                "-o",
                "/dev/null",
            ])
            .args(["-w", "%{http_version} %{http_code}"])
            .arg(site.gate.url(target))
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(stdout, expected, "{target}: {stderr}\n{}", site.gate.log());
    }
    let public: Vec<String> = site.public.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(public, ["/public/h2"]);
    assert!(site.admin.requests().is_empty());
}
