//! The Apache harness against curl: Negotiate with the realm's tickets over HTTPS.
#![allow(clippy::unwrap_used)]

use kerbside_testkit::{Apache, ApacheOptions, TestCa, TestRealm, PRIVATE_BODY, PUBLIC_BODY};

/// The status line's code, the headers and the body of one curl request.
#[derive(Debug)]
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
    let mut all = curl_all(realm, ca, ccache, &[], &[url], apache);
    // With authentication there are two responses (401 then 200); keep the last one.
    all.pop().unwrap()
}

/// `curl --negotiate -u : ARGS URL…` in one process (so on one connection where curl can):
/// every response, including the 401s curl answered, in order. The last response has the
/// last URL's body.
fn curl_all(
    realm: &TestRealm,
    ca: &TestCa,
    ccache: &str,
    args: &[&str],
    urls: &[&str],
    apache: &Apache,
) -> Vec<Response> {
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
    .args(args)
    .args(["--write-out", "%{http_code}\n"]);
    for url in urls {
        cmd.arg("--output").arg(&body).arg(url);
    }
    cmd.env("KRB5CCNAME", ccache)
        .env_remove("CURL_CA_BUNDLE")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "curl {urls:?} failed ({}): {}{}\n--- apache ---\n{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr),
        apache.error_log()
    );
    let all_headers = std::fs::read_to_string(&headers).unwrap();
    let mut responses: Vec<Response> = all_headers
        .split("\r\n\r\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| Response {
            status: block
                .split(' ')
                .nth(1)
                .and_then(|code| code.parse().ok())
                .unwrap_or(0),
            headers: block.trim().to_owned(),
            body: String::new(),
        })
        .collect();
    let codes: Vec<&str> = stdout.lines().collect();
    assert_eq!(codes.len(), urls.len(), "{stdout}");
    assert_eq!(
        responses.last().map(|r| r.status.to_string()),
        codes.last().map(|c| (*c).to_owned()),
        "{all_headers}"
    );
    if let Some(last) = responses.last_mut() {
        last.body = std::fs::read_to_string(&body).unwrap_or_default();
    }
    responses
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
        ..ApacheOptions::default()
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

#[test]
fn session_cookie_lets_a_client_in_without_a_ticket() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let opts = ApacheOptions {
        sessions: true,
        ..ApacheOptions::default()
    };
    let apache = Apache::start(&realm, &ca.issue(&[]), opts).unwrap();
    let url = apache.url("/private/");
    let jar = apache.dir().join("cookies.txt");
    let jar = jar.to_str().unwrap();

    let first = curl_all(
        &realm,
        &ca,
        &ccache_of(&realm, "alice"),
        &["-c", jar, "-b", jar],
        &[&url],
        &apache,
    );
    let ok = first.last().unwrap();
    assert_eq!(ok.status, 200, "{}\n{}", ok.headers, apache.error_log());
    let cookie = ok.header("Set-Cookie").unwrap_or_default();
    assert!(cookie.starts_with("gssapi_session="), "{}", ok.headers);
    assert!(cookie.contains("path=/private"), "{cookie}");
    assert!(cookie.contains("httponly"), "{cookie}");
    assert!(cookie.contains("secure"), "{cookie}");
    let jar_text = std::fs::read_to_string(jar).unwrap();
    assert!(jar_text.contains("gssapi_session"), "{jar_text}");

    // No ticket at all: only the cookie can let alice in.
    let no_ticket = format!("FILE:{}", realm.dir().join("empty.ccache").display());
    let second = curl_all(&realm, &ca, &no_ticket, &["-b", jar], &[&url], &apache);
    assert_eq!(
        second.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200],
        "{}\n{}",
        auth_headers(&second),
        apache.error_log()
    );
    assert_eq!(
        second[0].header("X-Remote-User"),
        Some("alice@EXAMPLE.TEST")
    );
    assert_eq!(second[0].body, PRIVATE_BODY);

    let entries = apache.access_entries();
    let last = entries.last().unwrap();
    assert_eq!(
        (
            last.status,
            last.user.as_deref(),
            last.auth_scheme.as_deref()
        ),
        (200, Some("alice@EXAMPLE.TEST"), None),
        "{}",
        apache.access_log()
    );
    assert!(last.new_connection(), "{}", apache.access_log());
}

#[test]
fn persistent_auth_header_follows_connection_binding() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let alice = ccache_of(&realm, "alice");

    // Bound and signalled: curl trusts `Persistent-Auth: true` and sends the second request on
    // the same connection without a token; the server lets it in as alice.
    let opts = ApacheOptions {
        connection_bound: true,
        persistent_auth: true,
        ..ApacheOptions::default()
    };
    let apache = Apache::start(&realm, &cert, opts).unwrap();
    let url = apache.url("/private/");
    let r = curl_all(&realm, &ca, &alice, &[], &[&url, &url], &apache);
    assert_eq!(
        r.iter().map(|r| r.status).collect::<Vec<_>>(),
        [200, 200],
        "{}",
        auth_headers(&r)
    );
    for response in &r {
        assert_eq!(
            response.header("Persistent-Auth"),
            Some("true"),
            "{}",
            response.headers
        );
        assert_eq!(response.header("X-Remote-User"), Some("alice@EXAMPLE.TEST"));
    }
    let entries = apache.access_entries();
    assert_eq!(entries.len(), 2, "{}", apache.access_log());
    assert_eq!(entries[0].client_port, entries[1].client_port);
    assert_eq!((entries[0].keepalive, entries[1].keepalive), (0, 1));
    assert_eq!(entries[0].auth_scheme.as_deref(), Some("Negotiate"));
    assert_eq!(entries[1].auth_scheme, None, "{}", apache.access_log());
    assert_eq!(entries[1].user.as_deref(), Some("alice@EXAMPLE.TEST"));
    drop(apache);

    // Signalled but not bound: `Persistent-Auth: false`, and every request carries a token.
    let opts = ApacheOptions {
        persistent_auth: true,
        ..ApacheOptions::default()
    };
    let apache = Apache::start(&realm, &cert, opts).unwrap();
    let url = apache.url("/private/");
    let r = curl_all(&realm, &ca, &alice, &[], &[&url, &url], &apache);
    assert!(
        r.iter()
            .all(|r| r.header("Persistent-Auth") == Some("false")),
        "{}",
        auth_headers(&r)
    );
    let entries = apache.access_entries();
    assert!(
        entries
            .iter()
            .all(|e| e.auth_scheme.as_deref() == Some("Negotiate")),
        "{}",
        apache.access_log()
    );
    drop(apache);

    // Bound, not signalled (the default for the option): no Persistent-Auth header at all.
    let opts = ApacheOptions {
        connection_bound: true,
        ..ApacheOptions::default()
    };
    let apache = Apache::start(&realm, &cert, opts).unwrap();
    let url = apache.url("/private/");
    let r = curl_all(&realm, &ca, &alice, &[], &[&url, &url], &apache);
    assert!(
        r.iter()
            .all(|r| r.status == 200 && r.header("Persistent-Auth").is_none()),
        "{}",
        auth_headers(&r)
    );
}

/// The headers that matter for a client's cost accounting, one response per line.
fn auth_headers(responses: &[Response]) -> String {
    let names = [
        "WWW-Authenticate",
        "Persistent-Auth",
        "Set-Cookie",
        "X-Remote-User",
        "Connection",
    ];
    responses
        .iter()
        .map(|r| {
            let shown: Vec<String> = names
                .iter()
                .filter_map(|n| r.header(n).map(|v| format!("{n}: {}", shorten(v))))
                .collect();
            format!("{} [{}]", r.status, shown.join("; "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn shorten(value: &str) -> String {
    if value.len() > 40 {
        format!("{}…", &value[..40])
    } else {
        value.to_owned()
    }
}

#[test]
#[ignore = "prints what each mod_auth_gssapi mode sends, for the docs"]
fn show_headers_per_mode() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let alice = ccache_of(&realm, "alice");
    for (name, opts) in [
        ("default", ApacheOptions::default()),
        (
            "connection_bound",
            ApacheOptions {
                connection_bound: true,
                ..ApacheOptions::default()
            },
        ),
        (
            "persistent_auth",
            ApacheOptions {
                persistent_auth: true,
                ..ApacheOptions::default()
            },
        ),
        (
            "connection_bound+persistent_auth",
            ApacheOptions {
                connection_bound: true,
                persistent_auth: true,
                ..ApacheOptions::default()
            },
        ),
        (
            "sessions",
            ApacheOptions {
                sessions: true,
                ..ApacheOptions::default()
            },
        ),
    ] {
        let apache = Apache::start(&realm, &cert, opts).unwrap();
        let url = apache.url("/private/");
        let jar = apache.dir().join("jar");
        let jar = jar.to_str().unwrap();
        let r = curl_all(
            &realm,
            &ca,
            &alice,
            &["-c", jar, "-b", jar],
            &[&url, &url],
            &apache,
        );
        println!(
            "=== {name}: curl --negotiate -u : URL URL\n{}",
            auth_headers(&r)
        );
        let none = format!("FILE:{}", realm.dir().join("no-such.ccache").display());
        let r = curl_all(&realm, &ca, &none, &[], &[&url], &apache);
        println!("--- without a ticket\n{}", auth_headers(&r));
        println!("--- access log\n{}", apache.access_log());
    }
}
