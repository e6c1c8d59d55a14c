//! The Apache harness against curl: Negotiate with the realm's tickets over HTTPS.
#![allow(clippy::unwrap_used)]

use kerbside_testkit::{Apache, ApacheOptions, TestCa, TestRealm, PRIVATE_BODY, PUBLIC_BODY};

/// The status line's code, the headers and the body of one curl request.
struct Response {
    status: u16,
    headers: String,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// `curl --negotiate -u :` with the realm's environment and `ccache` as the ticket cache,
/// trusting only the test CA.
fn curl(realm: &TestRealm, ca: &TestCa, ccache: &str, url: &str, apache: &Apache) -> Response {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("headers");
    let body = dir.path().join("body");
    let mut cmd = realm.command("curl");
    cmd.args([
        "--silent",
        "--show-error",
        "--negotiate",
        "-u",
        ":",
        "--noproxy",
        "*",
    ])
    .arg("--cacert")
    .arg(ca.ca_pem_path())
    .arg("--dump-header")
    .arg(&headers)
    .arg("--output")
    .arg(&body)
    .args(["--write-out", "%{http_code}"])
    .arg(url)
    .env("KRB5CCNAME", ccache)
    .env_remove("CURL_CA_BUNDLE")
    .env_remove("SSL_CERT_FILE")
    .env_remove("SSL_CERT_DIR");
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl {url} failed ({}): {}{}\n--- apache ---\n{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr),
        apache.error_log()
    );
    // With authentication there are two responses (401 then 200); keep the last one's headers.
    let all_headers = std::fs::read_to_string(&headers).unwrap();
    let last = all_headers
        .split("\r\n\r\n")
        .filter(|block| !block.trim().is_empty())
        .last()
        .unwrap_or_default()
        .to_owned();
    Response {
        status: stdout.trim().parse().unwrap(),
        headers: last,
        body: std::fs::read_to_string(&body).unwrap_or_default(),
    }
}

fn ccache_of(realm: &TestRealm, user: &str) -> String {
    format!("FILE:{}", realm.user_ccache(user).display())
}

#[test]
fn curl_negotiates_with_apache_over_https() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let apache = Apache::start(&realm, &ca.issue(&[]), ApacheOptions::default()).unwrap();
    let url = apache.url("/private/");
    assert_eq!(url, format!("https://localhost:{}/private/", apache.port()));
    assert_eq!(apache.plain_port(), None);

    let ok = curl(&realm, &ca, &ccache_of(&realm, "alice"), &url, &apache);
    assert_eq!(ok.status, 200, "{}\n{}", ok.headers, apache.error_log());
    assert_eq!(
        ok.header("X-Remote-User"),
        Some("alice@EXAMPLE.TEST"),
        "{}",
        ok.headers
    );
    assert_eq!(ok.body, PRIVATE_BODY);

    // No ticket: the server's challenge cannot be answered.
    let missing = format!("FILE:{}", realm.dir().join("no-such.ccache").display());
    let denied = curl(&realm, &ca, &missing, &url, &apache);
    assert_eq!(denied.status, 401, "{}", denied.headers);
    assert_eq!(
        denied.header("WWW-Authenticate"),
        Some("Negotiate"),
        "{}",
        denied.headers
    );
    assert_eq!(denied.header("X-Remote-User"), None, "{}", denied.headers);

    // Another user, from a cache made by the harness.
    realm
        .kinit("bob", "bob-password", &realm.user_ccache("bob"))
        .unwrap();
    let bob = curl(&realm, &ca, &ccache_of(&realm, "bob"), &url, &apache);
    assert_eq!(bob.status, 200, "{}\n{}", bob.headers, apache.error_log());
    assert_eq!(bob.header("X-Remote-User"), Some("bob@EXAMPLE.TEST"));

    let public = curl(&realm, &ca, &missing, &apache.url("/public/"), &apache);
    assert_eq!(public.status, 200);
    assert_eq!(public.body, PUBLIC_BODY);

    assert!(
        apache.access_log().contains("user=alice@EXAMPLE.TEST"),
        "{}",
        apache.access_log()
    );
}

#[test]
fn plain_http_listener_and_connection_bound_auth() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let opts = ApacheOptions {
        connection_bound: true,
        plain_http: true,
    };
    let apache = Apache::start(&realm, &ca.issue(&[]), opts).unwrap();
    let alice = ccache_of(&realm, "alice");
    for url in [apache.plain_url("/private/"), apache.url("/private/")] {
        let ok = curl(&realm, &ca, &alice, &url, &apache);
        assert_eq!(
            ok.status,
            200,
            "{url}: {}\n{}",
            ok.headers,
            apache.error_log()
        );
        assert_eq!(ok.header("X-Remote-User"), Some("alice@EXAMPLE.TEST"));
    }
    let conf = std::fs::read_to_string(apache.dir().join("httpd.conf")).unwrap();
    assert!(conf.contains("GssapiConnectionBound On"), "{conf}");
}

#[test]
fn dropping_apache_stops_it() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let apache = Apache::start(&realm, &ca.issue(&[]), ApacheOptions::default()).unwrap();
    let (pid, port, dir) = (apache.pid(), apache.port(), apache.dir().to_path_buf());
    drop(apache);
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(!dir.exists());
}

#[test]
#[ignore = "prints the server's logs, for debugging the harness"]
fn show_logs() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let apache = Apache::start(&realm, &ca.issue(&[]), ApacheOptions::default()).unwrap();
    let r = curl(
        &realm,
        &ca,
        &ccache_of(&realm, "alice"),
        &apache.url("/private/"),
        &apache,
    );
    println!("{}\n{}", r.status, r.headers);
    println!("{}", apache.error_log());
    println!(
        "{}",
        std::fs::read_to_string(apache.dir().join("httpd.conf")).unwrap()
    );
    println!("{}", realm.kdc_log());
}
