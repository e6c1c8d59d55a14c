//! `kerbside gate --forward-auth PATH`: the gate as the authentication service of
//! Debian's nginx (`auth_request`) and Debian's Caddy 2.6 (`forward_auth`), each in
//! front of an upstream that echoes the request head it received. Configured as
//! docs/forward-auth.md says (kerbside-testkit's `Nginx` and `Caddy`).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{curl, kerbside, metric, text, GateProcess, HeadEchoUpstream};
use kerbside_testkit::{
    Caddy, CaddyOptions, Nginx, NginxOptions, TestCa, TestCert, TestRealm, FORWARD_AUTH_PATH,
};

/// Access rules: `/admin` for alice only, `/public` for anyone, `/reports` read-only
/// (GET), the rest for anyone authenticated.
const RULES: &str = r#"
[[access]]
path = "/public"
anonymous = true
[[access]]
path = "/reports"
methods = ["GET"]
authenticated = true
[[access]]
path = "/reports"
deny = true
[[access]]
path = "/admin"
users = ["alice@EXAMPLE.TEST"]
[[access]]
path = "/"
authenticated = true
"#;

/// A gate whose only mount is the forward-auth endpoint, with [`RULES`] and `extra`
/// settings in its configuration file; `args` added to its command line.
fn gate(realm: &TestRealm, config: &str, args: &[&str]) -> GateProcess {
    let file = realm.dir().join(format!(
        "gate-{}.toml",
        kerbside_testkit::free_port().unwrap()
    ));
    std::fs::write(&file, format!("{config}\n{RULES}")).unwrap();
    let mut cmd = kerbside(realm);
    cmd.args([
        "gate",
        "--listen",
        "127.0.0.1:0",
        "--metrics",
        "127.0.0.1:0",
    ])
    .arg("--keytab")
    .arg(realm.keytab())
    .args(["--forward-auth", FORWARD_AUTH_PATH])
    .arg("--config")
    .arg(&file)
    .args(args);
    GateProcess::from_command(cmd)
}

/// The gate's address for a front proxy's configuration.
fn gate_addr(gate: &GateProcess) -> String {
    gate.url.replace("localhost", "127.0.0.1")
}

/// Bob's ticket cache (alice has one from the realm).
fn bob_ccache(realm: &TestRealm) -> String {
    let path = realm.dir().join("bob.ccache");
    if !path.exists() {
        realm.kinit("bob", "bob-password", &path).unwrap();
    }
    format!("FILE:{}", path.display())
}

/// `curl -i` with the response head and body on stdout.
fn curl_i(realm: &TestRealm, ca: &Path) -> Command {
    let mut cmd = curl(realm, ca);
    cmd.arg("-i");
    cmd
}

fn status_of(out: &Output) -> u16 {
    let (stdout, _) = text(out);
    // The last status line (curl --negotiate shows the 401 first).
    stdout
        .lines()
        .rfind(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// What the upstream received, lower-cased header lines, from its echo.
fn upstream_headers(out: &Output) -> Vec<String> {
    let (stdout, _) = text(out);
    let body = stdout.rsplit("\r\n\r\n").next().unwrap_or("");
    body.lines().map(|l| l.to_ascii_lowercase()).collect()
}

fn header_values<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .filter(|(n, _)| n.trim() == name)
        .map(|(_, v)| v.trim())
        .collect()
}

/// The checks every front must pass: curl --negotiate logs in and the upstream sees
/// alice (and the original request), spoofed identity headers in both spellings never
/// reach it, a bad token and no token get 401 with the Negotiate challenge, bob is
/// refused `/admin` (the rules see the original URI) but not `/app`.
fn front_proxy_checks(
    realm: &TestRealm,
    ca: &Path,
    url: &dyn Fn(&str) -> String,
    logs: &dyn Fn() -> String,
) {
    let out = curl_i(realm, ca)
        .args(["--negotiate", "-u", ":"])
        .args(["-H", "X-Remote-User: mallory@EXAMPLE.TEST"])
        .args(["-H", "X_Remote_User: mallory@EXAMPLE.TEST"])
        .args(["-H", "X-Kerbside-User: mallory"])
        .args(["-H", "X-Kerbside-Groups: admins"])
        .arg(url("/app/page?x=1"))
        .output()
        .unwrap();
    let report = format!("{:?}\n{}", text(&out), logs());
    assert_eq!(status_of(&out), 200, "{report}");
    let seen = upstream_headers(&out);
    assert!(
        seen.first()
            .is_some_and(|l| l.starts_with("get /app/page?x=1 ")),
        "{report}"
    );
    assert_eq!(
        header_values(&seen, "x-remote-user"),
        ["alice@example.test"],
        "{report}"
    );
    assert!(
        !seen
            .iter()
            .any(|l| l.contains("mallory") || l.contains("admins")),
        "a spoofed identity reached the upstream: {report}"
    );
    assert!(
        !seen.iter().any(|l| l.starts_with("authorization")),
        "{report}"
    );
    // The gate's final (mutual) token reaches the client.
    let (stdout, _) = text(&out);
    let head = stdout.split("\r\n\r\n").next().unwrap_or("");
    assert!(
        head.lines().any(|l| l
            .to_ascii_lowercase()
            .starts_with("www-authenticate: negotiate ")),
        "{report}"
    );

    // The method the rules see is the client's: POST to the read-only /reports is
    // refused, GET is not.
    for (method, status) in [("POST", 403), ("GET", 200)] {
        let out = curl_i(realm, ca)
            .args(["--negotiate", "-u", ":", "-X", method, "-d", "x=1"])
            .arg(url("/reports/q"))
            .output()
            .unwrap();
        assert_eq!(
            status_of(&out),
            status,
            "{method}: {:?}\n{}",
            text(&out),
            logs()
        );
    }

    // A malformed Authorization header gets 403 (nginx would turn a 400 into 500).
    let out = curl_i(realm, ca)
        .args(["-H", "Authorization: Negotiate !!!not-base64"])
        .arg(url("/app/page"))
        .output()
        .unwrap();
    assert_eq!(status_of(&out), 403, "{:?}\n{}", text(&out), logs());

    // Anonymous where the rules allow it: no identity reaches the upstream, not even
    // the client's.
    let out = curl_i(realm, ca)
        .args(["-H", "X-Remote-User: mallory@EXAMPLE.TEST"])
        .arg(url("/public/page"))
        .output()
        .unwrap();
    let report = format!("{:?}\n{}", text(&out), logs());
    assert_eq!(status_of(&out), 200, "{report}");
    let seen = upstream_headers(&out);
    assert!(
        header_values(&seen, "x-remote-user")
            .iter()
            .all(|v| v.is_empty()),
        "{report}"
    );
    assert!(!seen.iter().any(|l| l.contains("mallory")), "{report}");

    for bad in [
        None,
        Some("Negotiate YIIBmAYGKwYBBQUCoIIBjDCCAYigGDAWBgkqhkiC9xIBAgIGCSqGSIb3EgECAg=="),
    ] {
        let mut cmd = curl_i(realm, ca);
        if let Some(bad) = bad {
            cmd.args(["-H", &format!("Authorization: {bad}")]);
        }
        let out = cmd.arg(url("/app/page")).output().unwrap();
        let report = format!("{bad:?}: {:?}\n{}", text(&out), logs());
        assert_eq!(status_of(&out), 401, "{report}");
        let (stdout, _) = text(&out);
        let challenges: Vec<String> = stdout
            .lines()
            .map(|l| l.to_ascii_lowercase().trim().to_owned())
            .filter(|l| l.starts_with("www-authenticate:"))
            .collect();
        assert_eq!(challenges, ["www-authenticate: negotiate"], "{report}");
    }

    // Dot segments, encoded or not, cannot take bob past the rule on /admin.
    let bob = bob_ccache(realm);
    let out = curl_i(realm, ca)
        .env("KRB5CCNAME", &bob)
        .args(["--negotiate", "-u", ":", "--path-as-is"])
        .arg(url("/app/%2e%2e/admin/users"))
        .output()
        .unwrap();
    let report = format!("{:?}\n{}", text(&out), logs());
    assert_eq!(status_of(&out), 403, "{report}");
    assert!(!text(&out).0.contains("X-Remote-User"), "{report}");

    let out = curl_i(realm, ca)
        .env("KRB5CCNAME", &bob)
        .args(["--negotiate", "-u", ":"])
        .arg(url("/admin/users"))
        .output()
        .unwrap();
    assert_eq!(status_of(&out), 403, "{:?}\n{}", text(&out), logs());
    let out = curl_i(realm, ca)
        .env("KRB5CCNAME", &bob)
        .args(["--negotiate", "-u", ":"])
        .arg(url("/app/"))
        .output()
        .unwrap();
    let report = format!("{:?}\n{}", text(&out), logs());
    assert_eq!(status_of(&out), 200, "{report}");
    assert_eq!(
        header_values(&upstream_headers(&out), "x-remote-user"),
        ["bob@example.test"],
        "{report}"
    );
    let out = curl_i(realm, ca)
        .args(["--negotiate", "-u", ":"])
        .arg(url("/admin/users"))
        .output()
        .unwrap();
    assert_eq!(status_of(&out), 200, "{:?}\n{}", text(&out), logs());
}

#[test]
fn nginx_auth_request_logs_curl_in_and_keeps_spoofed_identities_out() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let upstream = HeadEchoUpstream::start(std::time::Duration::ZERO);
    let gate = gate(&realm, "", &[]);
    let nginx = Nginx::start(NginxOptions {
        gate: &gate_addr(&gate),
        upstream: &upstream.url(),
        cert: None,
    })
    .unwrap();
    front_proxy_checks(&realm, ca.ca_pem_path(), &|p| nginx.url(p), &|| {
        format!("gate:\n{}\nnginx:\n{}", gate.log(), nginx.error_log())
    });
    assert!(
        gate.log().contains("access denied"),
        "bob's refusal is logged: {}",
        gate.log()
    );
}

#[test]
fn caddy_forward_auth_logs_curl_in_and_keeps_spoofed_identities_out() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let upstream = HeadEchoUpstream::start(std::time::Duration::ZERO);
    let gate = gate(&realm, "", &[]);
    let caddy = Caddy::start(CaddyOptions {
        gate: &gate_addr(&gate),
        upstream: &upstream.url(),
        cert: None,
        gate_ca: None,
    })
    .unwrap();
    front_proxy_checks(&realm, ca.ca_pem_path(), &|p| caddy.url(p), &|| {
        format!("gate:\n{}\ncaddy:\n{}", gate.log(), caddy.log())
    });
}

/// Asks the gate's endpoint directly, from `source`, about `GET /app`.
fn ask_directly(realm: &TestRealm, ca: &Path, gate: &GateProcess, source: &str) -> Output {
    curl_i(realm, ca)
        .args(["--interface", source])
        .args(["-H", "X-Original-URI: /app", "-H", "X-Original-Method: GET"])
        .arg(
            gate.url(FORWARD_AUTH_PATH)
                .replace("localhost", "127.0.0.1"),
        )
        .output()
        .unwrap()
}

#[test]
fn only_trusted_front_proxies_may_ask() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let gate = gate(&realm, "", &["--forward-auth-trusted", "127.0.0.1/32"]);
    let out = ask_directly(&realm, ca.ca_pem_path(), &gate, "127.0.0.2");
    assert_eq!(status_of(&out), 403, "{:?}\n{}", text(&out), gate.log());
    assert!(
        gate.wait_for_log(|l| l.contains("127.0.0.2 is not a trusted front proxy")),
        "{}",
        gate.log()
    );
    let metrics = gate.metrics();
    assert_eq!(
        metric(
            &metrics,
            "kerbside_gate_handshake_failures_total{reason=\"forward_auth_untrusted\"}"
        ),
        1.0,
        "{metrics}"
    );
    let out = ask_directly(&realm, ca.ca_pem_path(), &gate, "127.0.0.1");
    assert_eq!(status_of(&out), 401, "{:?}\n{}", text(&out), gate.log());
    // A subrequest that does not name the original request is refused in words.
    let out = curl_i(&realm, ca.ca_pem_path())
        .arg(gate.url(FORWARD_AUTH_PATH))
        .output()
        .unwrap();
    assert_eq!(status_of(&out), 403, "{:?}", text(&out));
    assert!(
        gate.wait_for_log(|l| l.contains("did not say which request")),
        "{}",
        gate.log()
    );
}

#[test]
fn connection_bound_modes_are_refused_at_start() {
    let realm = TestRealm::start().unwrap();
    let out = kerbside(&realm)
        .args(["gate", "--listen", "127.0.0.1:0", "--auth", "connection"])
        .arg("--keytab")
        .arg(realm.keytab())
        .args(["--forward-auth", FORWARD_AUTH_PATH])
        .output()
        .unwrap();
    let (_, err) = text(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("forward-auth cannot work with --auth connection"),
        "{err}"
    );
}

/// Cookie mode through a front: the first request logs in with a token and gets the
/// cookie, the second carries only the cookie, which the upstream never sees.
fn cookie_checks(realm: &TestRealm, ca: &Path, gate: &GateProcess, url: &dyn Fn(&str) -> String) {
    let jar = realm.dir().join(format!(
        "cookies-{}",
        kerbside_testkit::free_port().unwrap()
    ));
    let out = curl_i(realm, ca)
        .args(["--negotiate", "-u", ":", "-c"])
        .arg(&jar)
        .arg(url("/app/1"))
        .output()
        .unwrap();
    let report = format!("{:?}\n{}", text(&out), gate.log());
    assert_eq!(status_of(&out), 200, "{report}");
    assert!(
        text(&out)
            .0
            .to_ascii_lowercase()
            .contains("set-cookie: kerbside_session="),
        "{report}"
    );
    // No --negotiate: only the cookie can log in.
    let out = curl_i(realm, ca)
        .arg("-b")
        .arg(&jar)
        .arg(url("/app/2"))
        .output()
        .unwrap();
    let report = format!("{:?}\n{}", text(&out), gate.log());
    assert_eq!(status_of(&out), 200, "{report}");
    let seen = upstream_headers(&out);
    assert_eq!(
        header_values(&seen, "x-remote-user"),
        ["alice@example.test"],
        "{report}"
    );
    assert!(
        !header_values(&seen, "cookie")
            .iter()
            .any(|c| c.contains("kerbside")),
        "{report}"
    );
    let metrics = gate.metrics();
    assert_eq!(
        metric(&metrics, "kerbside_gate_handshakes_total{result=\"ok\"}"),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "kerbside_gate_session_hits_total"),
        1.0,
        "{metrics}"
    );
}

fn cookie_gate(realm: &TestRealm) -> GateProcess {
    let key = realm.dir().join("session.key");
    gate(
        realm,
        "",
        &["--auth", "cookie", "--session-key", key.to_str().unwrap()],
    )
}

#[test]
fn with_a_session_cookie_the_second_request_needs_no_token_through_nginx() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let upstream = HeadEchoUpstream::start(std::time::Duration::ZERO);
    let gate = cookie_gate(&realm);
    let nginx = Nginx::start(NginxOptions {
        gate: &gate_addr(&gate),
        upstream: &upstream.url(),
        cert: None,
    })
    .unwrap();
    cookie_checks(&realm, ca.ca_pem_path(), &gate, &|p| nginx.url(p));
}

#[test]
fn with_a_session_cookie_the_second_request_needs_no_token_through_caddy() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let upstream = HeadEchoUpstream::start(std::time::Duration::ZERO);
    let gate = cookie_gate(&realm);
    let caddy = Caddy::start(CaddyOptions {
        gate: &gate_addr(&gate),
        upstream: &upstream.url(),
        cert: None,
        gate_ca: None,
    })
    .unwrap();
    cookie_checks(&realm, ca.ca_pem_path(), &gate, &|p| caddy.url(p));
}

/// kerbside fetch sends channel bindings (of nginx's certificate) by default.
fn fetch_through_nginx(realm: &TestRealm, ca: &TestCa, nginx: &Nginx) -> Output {
    kerbside(realm)
        .args(["fetch", "--negotiate", "--cacert"])
        .arg(ca.ca_pem_path())
        .arg(nginx.url("/app/fetched"))
        .output()
        .unwrap()
}

fn nginx_tls(gate: &GateProcess, upstream: &HeadEchoUpstream, cert: &TestCert) -> Nginx {
    Nginx::start(NginxOptions {
        gate: &gate_addr(gate),
        upstream: &upstream.url(),
        cert: Some(cert),
    })
    .unwrap()
}

#[test]
fn kerbside_fetch_with_channel_bindings_logs_in_through_nginx_with_tls() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let front = ca.issue(&["localhost", "127.0.0.1"]);
    let other = ca.issue(&["localhost"]);
    let upstream = HeadEchoUpstream::start(std::time::Duration::ZERO);

    // Without forward-auth-cert the bindings are not checked.
    let gate_plain = gate(&realm, "", &[]);
    let nginx = nginx_tls(&gate_plain, &upstream, &front);
    let out = fetch_through_nginx(&realm, &ca, &nginx);
    let report = format!("{:?}\n{}", text(&out), gate_plain.log());
    assert!(out.status.success(), "{report}");
    assert!(
        text(&out).0.contains("X-Remote-User: alice@EXAMPLE.TEST"),
        "{report}"
    );
    drop(nginx);

    // With the front's certificate they are checked, and match.
    let cert_path = front.cert_pem_path().to_str().unwrap().to_owned();
    let gate_bound = gate(&realm, "", &["--forward-auth-cert", &cert_path]);
    let nginx = nginx_tls(&gate_bound, &upstream, &front);
    let out = fetch_through_nginx(&realm, &ca, &nginx);
    let report = format!("{:?}\n{}", text(&out), gate_bound.log());
    assert!(out.status.success(), "{report}");
    assert!(
        text(&out).0.contains("X-Remote-User: alice@EXAMPLE.TEST"),
        "{report}"
    );
    drop(nginx);

    // Checked against another certificate, they do not match: refused.
    let other_path = other.cert_pem_path().to_str().unwrap().to_owned();
    let gate_other = gate(&realm, "", &["--forward-auth-cert", &other_path]);
    let nginx = nginx_tls(&gate_other, &upstream, &front);
    let out = fetch_through_nginx(&realm, &ca, &nginx);
    let report = format!("{:?}\n{}", text(&out), gate_other.log());
    assert!(!out.status.success(), "{report}");
    assert!(!text(&out).0.contains("alice"), "{report}");
}

/// Has headless Firefox (profile trusting `ca`, Negotiate with localhost) load `url`
/// and take a screenshot; returns a report for failure messages. Fails if Firefox
/// does not finish within 90 seconds.
fn firefox_visit(realm: &TestRealm, ca: &TestCa, url: &str, tag: &str) -> String {
    let home = realm.dir().join(format!("firefox-home-{tag}"));
    let profile = realm.dir().join(format!("firefox-profile-{tag}"));
    std::fs::create_dir_all(&home).unwrap();
    common::firefox::make_profile(&profile, ca, true);
    let screenshot = realm.dir().join(format!("page-{tag}.png"));
    let mut cmd = Command::new("firefox-esr");
    common::clean_env(&mut cmd);
    cmd.envs(realm.env())
        .env("HOME", &home)
        .env("MOZ_HEADLESS", "1")
        .env("MOZ_CRASHREPORTER_DISABLE", "1")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .args(["--headless", "--no-remote", "--profile"])
        .arg(&profile)
        .arg("--screenshot")
        .arg(&screenshot)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("firefox-esr: {e}: run scripts/install-deps.sh"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let report = format!("firefox {status:?}: {:?}", text(&out));
    assert!(status.is_some(), "firefox timed out: {report}");
    let png = std::fs::read(&screenshot).unwrap_or_default();
    assert!(png.starts_with(b"\x89PNG"), "no screenshot: {report}");
    report
}

/// The page and its stylesheet reached the upstream from Firefox as alice, and
/// nothing reached it as anyone else.
fn assert_firefox_was_alice(seen: &[common::RecordedRequest], report: &str) {
    for path in ["/intranet/page.html", "/intranet/style.css"] {
        let request = seen
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("{path} never reached the upstream: {seen:#?}\n{report}"));
        assert!(request.user_agent.contains("Firefox/"), "{report}");
    }
    assert!(
        seen.iter().all(|r| r.users == ["alice@EXAMPLE.TEST"]),
        "{seen:#?}\n{report}"
    );
}

#[test]
fn firefox_logs_in_through_nginx() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost", "127.0.0.1"]);
    let upstream = common::RecordingUpstream::start();
    let gate = gate(&realm, "", &[]);
    let nginx = Nginx::start(NginxOptions {
        gate: &gate_addr(&gate),
        upstream: &upstream.url(),
        cert: Some(&cert),
    })
    .unwrap();
    let report = firefox_visit(&realm, &ca, &nginx.url("/intranet/page.html"), "nginx");
    let report = format!(
        "{report}\ngate:\n{}\nnginx:\n{}",
        gate.log(),
        nginx.error_log()
    );
    assert_firefox_was_alice(&upstream.requests(), &report);
}

#[test]
fn firefox_logs_in_through_caddy() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost", "127.0.0.1"]);
    let upstream = common::RecordingUpstream::start();
    let gate = gate(&realm, "", &[]);
    let caddy = Caddy::start(CaddyOptions {
        gate: &gate_addr(&gate),
        upstream: &upstream.url(),
        cert: Some(&cert),
        gate_ca: None,
    })
    .unwrap();
    let report = firefox_visit(&realm, &ca, &caddy.url("/intranet/page.html"), "caddy");
    let report = format!("{report}\ngate:\n{}\ncaddy:\n{}", gate.log(), caddy.log());
    assert_firefox_was_alice(&upstream.requests(), &report);
}

#[test]
fn nginx_passes_the_mapped_user_and_groups() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let upstream = HeadEchoUpstream::start(std::time::Duration::ZERO);
    let groups = realm.dir().join("groups");
    std::fs::write(
        &groups,
        "admins: alice@EXAMPLE.TEST\nops: alice@EXAMPLE.TEST, bob@EXAMPLE.TEST\nnobody:\n",
    )
    .unwrap();
    let config = format!(
        "user-map = \"strip-realm\"\ngroups = \"{}\"",
        groups.display()
    );
    let gate = gate(&realm, &config, &[]);
    let nginx = Nginx::start(NginxOptions {
        gate: &gate_addr(&gate),
        upstream: &upstream.url(),
        cert: None,
    })
    .unwrap();
    let out = curl_i(&realm, ca.ca_pem_path())
        .args(["--negotiate", "-u", ":"])
        .args(["-H", "X-Kerbside-Groups: nobody"])
        .arg(nginx.url("/app/"))
        .output()
        .unwrap();
    let report = format!("{:?}\n{}", text(&out), gate.log());
    assert_eq!(status_of(&out), 200, "{report}");
    let seen = upstream_headers(&out);
    assert_eq!(
        header_values(&seen, "x-remote-user"),
        ["alice@example.test"],
        "{report}"
    );
    assert_eq!(
        header_values(&seen, "x-kerbside-user"),
        ["alice"],
        "{report}"
    );
    assert_eq!(
        header_values(&seen, "x-kerbside-groups"),
        ["admins,ops"],
        "{report}"
    );
}

#[test]
fn digest_users_log_in_through_caddy_for_the_original_uri() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let upstream = HeadEchoUpstream::start(std::time::Duration::ZERO);
    let users = realm.dir().join("digest-users");
    common::with_password_on_stdin(
        &realm,
        &[
            "digest-passwd".as_ref(),
            users.as_os_str(),
            "alice".as_ref(),
            "intranet".as_ref(),
        ],
        "alice-password",
    );
    let gate = gate(
        &realm,
        "",
        &[
            "--digest-users",
            users.to_str().unwrap(),
            "--digest-realm",
            "intranet",
        ],
    );
    let caddy = Caddy::start(CaddyOptions {
        gate: &gate_addr(&gate),
        upstream: &upstream.url(),
        cert: None,
        gate_ca: None,
    })
    .unwrap();
    // Caddy passes every challenge of the 401 (Negotiate, Digest) to the client; the
    // Digest response covers GET /app/d?x=1, which the gate checks from
    // X-Forwarded-Method and X-Forwarded-Uri.
    let out = curl_i(&realm, ca.ca_pem_path())
        .args(["--digest", "-u", "alice:alice-password"])
        .arg(caddy.url("/app/d?x=1"))
        .output()
        .unwrap();
    let report = format!("{:?}\n{}\n{}", text(&out), gate.log(), caddy.log());
    assert_eq!(status_of(&out), 200, "{report}");
    assert!(
        text(&out)
            .0
            .to_ascii_lowercase()
            .contains("www-authenticate: digest "),
        "{report}"
    );
    let seen = upstream_headers(&out);
    assert!(seen[0].starts_with("get /app/d?x=1 "), "{report}");
    assert_eq!(header_values(&seen, "x-remote-user"), ["alice"], "{report}");
    let out = curl_i(&realm, ca.ca_pem_path())
        .args(["--digest", "-u", "alice:wrong"])
        .arg(caddy.url("/app/d"))
        .output()
        .unwrap();
    assert_eq!(status_of(&out), 401, "{:?}", text(&out));
}

#[test]
fn basic_users_log_in_through_caddy_to_a_gate_with_tls() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let gate_cert = ca.issue(&["localhost", "127.0.0.1"]);
    let upstream = HeadEchoUpstream::start(std::time::Duration::ZERO);
    let htpasswd = realm.dir().join("htpasswd");
    let status = Command::new("htpasswd")
        .args(["-c", "-b", "-B"])
        .arg(&htpasswd)
        .args(["alice", "alice-password"])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("htpasswd (apache2-utils): {e}"));
    assert!(status.success());
    std::fs::set_permissions(
        &htpasswd,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    // Basic carries a password: the gate takes it over TLS only, also from the front.
    let gate = gate(
        &realm,
        "",
        &[
            "--basic-users",
            htpasswd.to_str().unwrap(),
            "--tls-cert",
            gate_cert.cert_pem_path().to_str().unwrap(),
            "--tls-key",
            gate_cert.key_pem_path().to_str().unwrap(),
        ],
    );
    let caddy = Caddy::start(CaddyOptions {
        gate: &gate_addr(&gate),
        upstream: &upstream.url(),
        cert: None,
        gate_ca: Some(ca.ca_pem_path()),
    })
    .unwrap();
    let out = curl_i(&realm, ca.ca_pem_path())
        .args(["--basic", "-u", "alice:alice-password"])
        .arg(caddy.url("/app/b"))
        .output()
        .unwrap();
    let report = format!("{:?}\n{}\n{}", text(&out), gate.log(), caddy.log());
    assert_eq!(status_of(&out), 200, "{report}");
    let seen = upstream_headers(&out);
    assert_eq!(header_values(&seen, "x-remote-user"), ["alice"], "{report}");
    assert!(
        !seen.iter().any(|l| l.starts_with("authorization")),
        "{report}"
    );
    let out = curl_i(&realm, ca.ca_pem_path())
        .args(["--basic", "-u", "alice:wrong"])
        .arg(caddy.url("/app/b"))
        .output()
        .unwrap();
    let report = format!("{:?}\n{}", text(&out), gate.log());
    assert_eq!(status_of(&out), 401, "{report}");
    assert!(
        text(&out)
            .0
            .to_ascii_lowercase()
            .contains("www-authenticate: basic realm="),
        "{report}"
    );
}

#[test]
fn the_endpoint_answers_identity_scheme_and_final_token_and_refuses_paths_with_no_canonical_form() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let gate = gate(&realm, "", &["--scheme-header", "X-Remote-Scheme"]);
    let ask = |target: &str| {
        curl_i(&realm, ca.ca_pem_path())
            .args(["--negotiate", "-u", ":"])
            .args(["-H", &format!("X-Original-URI: {target}")])
            .args(["-H", "X-Original-Method: GET"])
            .arg(gate.url(FORWARD_AUTH_PATH))
            .output()
            .unwrap()
    };
    let out = ask("/app/x?y=1");
    let report = format!("{:?}\n{}", text(&out), gate.log());
    assert_eq!(status_of(&out), 200, "{report}");
    let head = text(&out).0.to_ascii_lowercase();
    assert!(
        head.contains("x-remote-user: alice@example.test\r\n"),
        "{report}"
    );
    assert!(head.contains("x-remote-scheme: negotiate\r\n"), "{report}");
    assert!(head.contains("www-authenticate: negotiate "), "{report}");
    let out = ask("/app;jsessionid=1/x");
    let report = format!("{:?}\n{}", text(&out), gate.log());
    assert_eq!(status_of(&out), 403, "{report}");
    assert!(
        gate.wait_for_log(|l| l.contains("forward-auth request refused: the original request path")),
        "{}",
        gate.log()
    );
}
