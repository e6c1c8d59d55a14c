//! The Squid harness against curl: Negotiate to the proxy, plain HTTP and CONNECT through it.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::thread;

use kerbside_testkit::{
    Apache, ApacheOptions, Squid, SquidOptions, TestCa, TestRealm, PRIVATE_BODY, PUBLIC_BODY,
};

const ORIGIN_BODY: &str = "origin ok\n";

/// A plain HTTP origin on 127.0.0.1 that answers every request with 200 [`ORIGIN_BODY`] and
/// closes the connection. The thread lives until the test process ends.
fn start_origin() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            // The request head ends with an empty line; GETs have no body.
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" || line == "\n" {
                    break;
                }
                line.clear();
            }
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{ORIGIN_BODY}",
                ORIGIN_BODY.len()
            );
        }
    });
    port
}

/// Every response curl saw (including 407s and the proxy's `200 Connection established`), the
/// final status and the final body.
struct Outcome {
    status: u16,
    headers: String,
    body: String,
    stderr: String,
}

impl Outcome {
    /// The value of `name` in any response block.
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// curl through `squid` with `--proxy-negotiate -U :`, `ccache` as the ticket cache, trusting
/// only `ca` (when given), plus `args`.
fn curl(
    realm: &TestRealm,
    squid: &Squid,
    ccache: &str,
    ca: Option<&Path>,
    args: &[&str],
    url: &str,
) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("headers");
    let body = dir.path().join("body");
    let mut cmd: Command = realm.command("curl");
    cmd.args([
        "--silent",
        "--show-error",
        "--proxy",
        &squid.url(),
        "--proxy-negotiate",
        "-U",
        ":",
    ])
    .arg("--dump-header")
    .arg(&headers)
    .arg("--output")
    .arg(&body)
    .args(["--write-out", "%{http_code}"])
    .args(args)
    .arg(url)
    .env("KRB5CCNAME", ccache)
    .env_remove("CURL_CA_BUNDLE")
    .env_remove("SSL_CERT_FILE")
    .env_remove("SSL_CERT_DIR");
    for var in [
        "http_proxy",
        "https_proxy",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    if let Some(ca) = ca {
        cmd.arg("--cacert").arg(ca);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Outcome {
        status: stdout.trim().parse().unwrap_or(0),
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        body: std::fs::read_to_string(&body).unwrap_or_default(),
        stderr: format!(
            "curl exit {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

fn alice(realm: &TestRealm) -> String {
    format!("FILE:{}", realm.user_ccache("alice").display())
}

fn no_ticket(realm: &TestRealm) -> String {
    format!("FILE:{}", realm.dir().join("empty.ccache").display())
}

#[test]
fn curl_authenticates_to_squid_for_a_plain_http_origin() {
    let realm = TestRealm::start().unwrap();
    let squid = Squid::start(&realm, SquidOptions::default()).unwrap();
    assert_eq!(squid.url(), format!("http://localhost:{}", squid.port()));
    let origin = format!("http://127.0.0.1:{}/", start_origin());

    let ok = curl(&realm, &squid, &alice(&realm), None, &[], &origin);
    assert_eq!(
        ok.status,
        200,
        "{}\n{}\n{}",
        ok.stderr,
        ok.headers,
        squid.cache_log()
    );
    assert_eq!(ok.body, ORIGIN_BODY);
    let log = squid.wait_access_log(|log| log.contains("user=alice@EXAMPLE.TEST"));
    assert!(
        log.contains(&format!("\"GET {origin}\" 200 user=alice@EXAMPLE.TEST")),
        "{log}"
    );

    let denied = curl(&realm, &squid, &no_ticket(&realm), None, &[], &origin);
    assert_eq!(denied.status, 407, "{}\n{}", denied.stderr, denied.headers);
    assert_eq!(
        denied.header("Proxy-Authenticate"),
        Some("Negotiate"),
        "{}",
        denied.headers
    );
    assert_ne!(denied.body, ORIGIN_BODY);
}

#[test]
fn curl_tunnels_through_squid_to_apache_and_authenticates_to_both() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let apache = Apache::start(&realm, &ca.issue(&[]), ApacheOptions::default()).unwrap();
    let squid = Squid::start(&realm, SquidOptions::default()).unwrap();
    let ca_pem = Some(ca.ca_pem_path());

    let public = curl(
        &realm,
        &squid,
        &alice(&realm),
        ca_pem,
        &[],
        &apache.url("/public/"),
    );
    assert_eq!(
        public.status,
        200,
        "{}\n{}\n{}",
        public.stderr,
        public.headers,
        squid.cache_log()
    );
    assert_eq!(public.body, PUBLIC_BODY);

    let private = curl(
        &realm,
        &squid,
        &alice(&realm),
        ca_pem,
        &["--negotiate", "-u", ":"],
        &apache.url("/private/"),
    );
    assert_eq!(
        private.status,
        200,
        "{}\n{}\n{}\n{}",
        private.stderr,
        private.headers,
        squid.cache_log(),
        apache.error_log()
    );
    assert_eq!(
        private.header("X-Remote-User"),
        Some("alice@EXAMPLE.TEST"),
        "{}",
        private.headers
    );
    assert_eq!(private.body, PRIVATE_BODY);

    let connect = format!(
        "\"CONNECT localhost:{}\" 200 user=alice@EXAMPLE.TEST",
        apache.port()
    );
    let log = squid.wait_access_log(|log| log.matches(&connect).count() >= 2);
    assert_eq!(log.matches(&connect).count(), 2, "{log}");
    assert!(
        apache.access_log().contains("user=alice@EXAMPLE.TEST"),
        "{}",
        apache.access_log()
    );

    // No ticket: the tunnel itself is refused.
    let denied = curl(
        &realm,
        &squid,
        &no_ticket(&realm),
        ca_pem,
        &[],
        &apache.url("/public/"),
    );
    assert_eq!(
        denied.header("Proxy-Authenticate"),
        Some("Negotiate"),
        "{}\n{}",
        denied.stderr,
        denied.headers
    );
    assert_ne!(denied.body, PUBLIC_BODY);
}

#[test]
fn open_squid_proxies_without_authentication() {
    let realm = TestRealm::start().unwrap();
    let squid = Squid::start(
        &realm,
        SquidOptions {
            require_auth: false,
            ..SquidOptions::default()
        },
    )
    .unwrap();
    let origin = format!("http://127.0.0.1:{}/", start_origin());
    let ok = curl(&realm, &squid, &no_ticket(&realm), None, &[], &origin);
    assert_eq!(
        ok.status,
        200,
        "{}\n{}\n{}",
        ok.stderr,
        ok.headers,
        squid.cache_log()
    );
    assert_eq!(ok.body, ORIGIN_BODY);
    assert_eq!(ok.header("Proxy-Authenticate"), None, "{}", ok.headers);
    let log = squid.wait_access_log(|log| log.contains(" 200 user=-"));
    assert!(
        log.contains(&format!("\"GET {origin}\" 200 user=-")),
        "{log}"
    );
}

#[test]
fn dropping_squid_stops_it_and_its_helpers() {
    let realm = TestRealm::start().unwrap();
    let squid = Squid::start(&realm, SquidOptions::default()).unwrap();
    let (pid, port, dir) = (squid.pid(), squid.port(), squid.dir().to_path_buf());
    // Authenticate once so the helpers have certainly started.
    let origin = format!("http://127.0.0.1:{}/", start_origin());
    assert_eq!(
        curl(&realm, &squid, &alice(&realm), None, &[], &origin).status,
        200
    );
    let helpers = helper_pids(&dir);
    assert!(
        !helpers.is_empty(),
        "no negotiate_kerberos_auth found for {}",
        dir.display()
    );
    drop(squid);
    assert!(!Path::new(&format!("/proc/{pid}")).exists());
    for helper in helpers {
        // Gone, or a zombie waiting for init to reap it.
        let state = std::fs::read_to_string(format!("/proc/{helper}/stat")).unwrap_or_default();
        let state = state.rsplit_once(") ").map(|(_, rest)| &rest[..1]);
        assert!(
            matches!(state, None | Some("Z")),
            "helper {helper} still runs: {:?} {:?}",
            std::fs::read_to_string(format!("/proc/{helper}/stat")),
            std::fs::read(format!("/proc/{helper}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).into_owned())
        );
    }
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(!dir.exists());
}

/// The helpers started for the Squid in `dir` (their command line names its keytab).
fn helper_pids(dir: &Path) -> Vec<u32> {
    let keytab = dir.join("http.keytab");
    let keytab = keytab.to_str().unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline);
            (cmdline.contains("negotiate_kerberos_auth") && cmdline.contains(keytab)).then_some(pid)
        })
        .collect()
}

#[test]
#[ignore = "prints the proxy's logs and the headers curl saw, for debugging the harness"]
fn show_logs() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let apache = Apache::start(&realm, &ca.issue(&[]), ApacheOptions::default()).unwrap();
    let squid = Squid::start(&realm, SquidOptions::default()).unwrap();
    let origin = format!("http://127.0.0.1:{}/", start_origin());
    let ca_pem = Some(ca.ca_pem_path());
    for (ccache, args, url) in [
        (alice(&realm), &[][..], origin.clone()),
        (no_ticket(&realm), &[][..], origin.clone()),
        (
            alice(&realm),
            &["--negotiate", "-u", ":"][..],
            apache.url("/private/"),
        ),
        (no_ticket(&realm), &[][..], apache.url("/public/")),
    ] {
        let r = curl(&realm, &squid, &ccache, ca_pem, args, &url);
        println!(
            "=== {url} {args:?} {ccache}\n{} {}\n{}",
            r.status, r.stderr, r.headers
        );
    }
    println!(
        "{}",
        std::fs::read_to_string(squid.dir().join("squid.conf")).unwrap()
    );
    println!("{}", squid.cache_log());
    println!("{}", squid.access_log());
    println!("{}", apache.access_log());
}
