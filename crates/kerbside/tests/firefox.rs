//! Interop with a browser: headless Firefox ESR loads a page through `kerbside gate`
//! with alice's ticket and no prompt, the way a user on an intranet would.
//!
//! A fresh profile trusts `localhost` for Negotiate (`network.negotiate-auth.trusted-uris`)
//! and the test CA (imported with NSS's certutil); Firefox finds the realm through
//! `KRB5_CONFIG` and alice's ticket through `KRB5CCNAME`. The proof is on the upstream's
//! side: it received the page and its stylesheet from a Firefox User-Agent as
//! alice@EXAMPLE.TEST; the gate's metrics count the handshakes of each authentication
//! mode. Without `firefox-esr` and `certutil` the tests fail, naming the packages to install.
//!
//! The other way round, `kerbside tunnel` must serve the user's tools and not the pages
//! in the user's browser: pages on another site (127.0.0.2) and on another port of the
//! tunnel's host make Firefox send a form POST and `fetch()`es (CORS and no-CORS, GET
//! and POST) to the tunnel; the upstream behind it receives none of them, the tunnel
//! logs each refusal, and the user's own visit to the tunnel's address gets through.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::firefox::{self, make_profile, Run, Shot, FIREFOX_TIMEOUT};
use common::{clean_env, metric, text, GateProcess, RecordedRequest, RecordingUpstream};
use kerbside_testkit::{require_tool, TestCa, TestRealm};

/// Fails the test, naming what to install, when Firefox or `certutil` is missing.
fn require_firefox() {
    require_tool("firefox-esr", "firefox-esr");
    require_tool("certutil", "libnss3-tools");
}

/// A gate in front of a recording upstream, and what one headless Firefox run saw.
struct Visit {
    seen: Vec<RecordedRequest>,
    handshakes: f64,
    refused: f64,
    session_hits: f64,
    connection_reuse: f64,
    responses_4xx: f64,
    report: String,
}

/// Starts a gate with `gate_args` and has headless Firefox load [`PAGE`] through it
/// and take a screenshot; with `negotiate` unset, stops Firefox once it was refused.
fn visit(gate_args: &[&str], negotiate: bool) -> Visit {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost", "127.0.0.1"]);
    let upstream = RecordingUpstream::start();
    let mut args = vec!["--metrics", "127.0.0.1:0"];
    args.extend_from_slice(gate_args);
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &args);

    let screenshot = realm.dir().join("page.png");
    let refused = |text: &str| metric(text, "kerbside_gate_responses_total{class=\"4xx\"}") >= 1.0;
    let url = gate.url(PAGE);
    let shot = Shot {
        dir: realm.dir(),
        ca: &ca,
        negotiate,
        extra: &[],
        png: &screenshot,
        url: &url,
    };
    let Run {
        status,
        stdout,
        stderr,
        took,
    } = firefox::screenshot(&shot, realm.env(), || {
        if !negotiate && refused(&gate.metrics()) {
            // Firefox got its 401. Headless --screenshot never finishes on an error
            // response without a body (it shows its own error page instead), so give
            // Firefox time to come back with a token, then stop it.
            std::thread::sleep(Duration::from_secs(3));
            return true;
        }
        false
    });
    eprintln!("firefox {gate_args:?} took {took:?}");

    let seen = upstream.requests();
    let metrics = gate.metrics();
    let report = format!(
        "firefox {status:?} after {took:?}\nstdout: {stdout}\nstderr: {stderr}\n\
         upstream saw: {seen:#?}\ngate log:\n{}\nmetrics:\n{metrics}",
        gate.log()
    );
    assert!(status.is_some(), "firefox timed out: {report}");
    if negotiate {
        let png = std::fs::read(&screenshot)
            .unwrap_or_else(|e| panic!("no screenshot {}: {e}: {report}", screenshot.display()));
        assert!(png.starts_with(b"\x89PNG"), "{report}");
        if let Some(keep) = std::env::var_os("KERBSIDE_KEEP_SCREENSHOT") {
            // KERBSIDE_KEEP_SCREENSHOT=/tmp/firefox- keeps /tmp/firefox-cookie.png...
            let mode = gate_args
                .iter()
                .skip_while(|a| **a != "--auth")
                .nth(1)
                .unwrap_or(&"per-request");
            std::fs::write(format!("{}{mode}.png", keep.to_string_lossy()), &png).unwrap();
        }
    }
    Visit {
        handshakes: metric(&metrics, "kerbside_gate_handshakes_total{result=\"ok\"}"),
        refused: metric(
            &metrics,
            "kerbside_gate_handshakes_total{result=\"refused\"}",
        ),
        session_hits: metric(&metrics, "kerbside_gate_session_hits_total"),
        connection_reuse: metric(&metrics, "kerbside_gate_connection_reuse_total"),
        responses_4xx: metric(&metrics, "kerbside_gate_responses_total{class=\"4xx\"}"),
        seen,
        report,
    }
}

/// The page Firefox loads; it links `style.css` beside it.
const PAGE: &str = "/intranet/page.html";

/// Asserts the page and its stylesheet reached the upstream from Firefox as alice (no
/// prompt: headless Firefox cannot answer one, so the request would never be sent),
/// and nothing reached it as anyone else.
fn assert_firefox_was_alice(visit: &Visit) {
    let report = &visit.report;
    for path in [PAGE, "/intranet/style.css"] {
        let request = visit
            .seen
            .iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("{path} never reached the upstream: {report}"));
        assert!(request.user_agent.contains("Firefox/"), "{report}");
        assert_eq!(request.users, ["alice@EXAMPLE.TEST"], "{report}");
    }
    assert!(
        visit.seen.iter().all(|r| r.users == ["alice@EXAMPLE.TEST"]),
        "{report}"
    );
}

#[test]
fn firefox_loads_a_page_as_alice_with_a_token_on_every_request() {
    require_firefox();
    let visit = visit(&[], true);
    assert_firefox_was_alice(&visit);
    // Per-request mode: every request the upstream saw cost one handshake.
    assert_eq!(
        visit.handshakes,
        visit.seen.len() as f64,
        "{}",
        visit.report
    );
}

#[test]
fn firefox_loads_a_page_as_alice_on_one_authenticated_connection() {
    require_firefox();
    // Firefox picks HTTP/2 by ALPN; the gate resets its stream with HTTP_1_1_REQUIRED
    // (Firefox's nsHttp log shows "RST_STREAM Reason Code 13") and Firefox retries over
    // HTTP/1.1, where the connection can carry the authentication.
    let visit = visit(&["--auth", "connection"], true);
    assert_firefox_was_alice(&visit);
    assert_eq!(visit.handshakes, 1.0, "{}", visit.report);
    assert_eq!(
        visit.connection_reuse,
        visit.seen.len() as f64 - 1.0,
        "{}",
        visit.report
    );
}

#[test]
fn firefox_loads_a_page_as_alice_with_a_session_cookie() {
    require_firefox();
    let key = tempfile::tempdir().unwrap();
    let key = key.path().join("session.key");
    let visit = visit(
        &["--auth", "cookie", "--session-key", key.to_str().unwrap()],
        true,
    );
    assert_firefox_was_alice(&visit);
    assert_eq!(visit.handshakes, 1.0, "{}", visit.report);
    assert_eq!(
        visit.session_hits,
        visit.seen.len() as f64 - 1.0,
        "{}",
        visit.report
    );
}

#[test]
fn firefox_without_negotiate_trust_gets_nothing_through() {
    require_firefox();
    // The same run without network.negotiate-auth.trusted-uris: Firefox does not send
    // its ticket, so the gate answers 401 and forwards nothing. This is what makes the
    // runs above proof that Firefox's Negotiate did the work.
    let visit = visit(&[], false);
    assert!(visit.seen.is_empty(), "{}", visit.report);
    assert!(visit.responses_4xx >= 1.0, "{}", visit.report);
    assert_eq!(visit.handshakes, 0.0, "{}", visit.report);
    assert_eq!(visit.refused, 0.0, "{}", visit.report);
}

/// A page on another local origin that, once loaded, makes the browser send requests to
/// the tunnel at `tunnel` (a form POST into a frame, `fetch()` in `cors` and `no-cors`
/// modes, GET and POST) and then reports what it saw to its own `/done`.
fn attack_page(tunnel: &str, tag: &str) -> String {
    format!(
        r#"<!doctype html>
<title>a page on another site</title>
<iframe name="sink"></iframe>
<form id="form" method="POST" action="{tunnel}/attack-{tag}-form" target="sink">
<input name="a" value="1"></form>
<script>
const T = "{tunnel}/attack-{tag}";
const frame = document.querySelector("iframe");
const form = new Promise(resolve => {{
  frame.onload = () => {{
    try {{ if (frame.contentWindow.location.href === "about:blank") return; }} catch (e) {{}}
    resolve("form:loaded");
  }};
  setTimeout(() => resolve("form:no-answer"), 15000);
}});
document.getElementById("form").submit();
const outcome = (name, p) => p.then(r => name + ":" + r.type + "-" + r.status, e => name + ":error");
Promise.all([
  form,
  outcome("cors-post", fetch(T + "-cors-post", {{method: "POST", mode: "cors", body: "x"}})),
  outcome("cors-get", fetch(T + "-cors-get", {{mode: "cors"}})),
  outcome("no-cors-post", fetch(T + "-no-cors-post", {{method: "POST", mode: "no-cors", body: "x"}})),
  outcome("no-cors-get", fetch(T + "-no-cors-get", {{mode: "no-cors"}})),
]).then(results => fetch("/done?" + encodeURIComponent(results.join(" "))));
</script>
"#
    )
}

/// An HTTP server on `ip` serving `page` at `/` and recording the query of each
/// `/done` request (the page's report).
struct PageServer {
    url: String,
    reports: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl PageServer {
    fn start(ip: &str, page: String) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = reports.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                let mut reader = BufReader::new(&stream);
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                loop {
                    let mut header = String::new();
                    match reader.read_line(&mut header) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if header.trim().is_empty() => break,
                        Ok(_) => {}
                    }
                }
                let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let (status, body) = match target.split_once("/done?") {
                    Some((_, query)) => {
                        sink.lock().unwrap().push(query.to_owned());
                        ("204 No Content", String::new())
                    }
                    None if target == "/" => ("200 OK", page.clone()),
                    None => ("404 Not Found", String::new()),
                };
                let _ = write!(
                    &stream,
                    "HTTP/1.1 {status}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { url, reports }
    }

    fn reports(&self) -> Vec<String> {
        self.reports.lock().unwrap().clone()
    }
}

#[test]
fn web_pages_in_firefox_cannot_use_the_tunnel() {
    require_firefox();
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = RecordingUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let mut cmd = common::kerbside(&realm);
    cmd.args(["tunnel", "--listen", "127.0.0.1:0", "--to", &gate.url("/")])
        .arg("--cacert")
        .arg(ca.ca_pem_path());
    let tunnel = GateProcess::from_command(cmd);
    let tunnel_ip = tunnel.url.replace("localhost", "127.0.0.1");
    let tunnel_ip = tunnel_ip.trim_end_matches('/');
    // Another site (127.0.0.2), and another port of the tunnel's own host.
    let cross_site = PageServer::start("127.0.0.2", attack_page(tunnel_ip, "cross-site"));
    let same_site = PageServer::start("127.0.0.1", attack_page(tunnel_ip, "same-site"));

    let home = realm.dir().join("firefox-home");
    let profile = realm.dir().join("firefox-profile");
    std::fs::create_dir_all(&home).unwrap();
    make_profile(&profile, &ca, false);
    let mut cmd = Command::new("firefox-esr");
    clean_env(&mut cmd);
    cmd.envs(realm.env())
        .env("HOME", &home)
        .env("MOZ_HEADLESS", "1")
        .env("MOZ_CRASHREPORTER_DISABLE", "1")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .args(["--headless", "--no-remote", "--profile"])
        .arg(&profile)
        .arg(format!("{}/", cross_site.url))
        .arg(format!("{}/", same_site.url))
        // The user opening the tunnel's address: that is the user, and it gets through.
        .arg(tunnel.url("/typed-by-the-user"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut firefox = cmd.spawn().unwrap();
    let started = Instant::now();
    let typed = |seen: &[RecordedRequest]| {
        seen.iter()
            .any(|r| r.path == "/typed-by-the-user" && r.user_agent.contains("Firefox/"))
    };
    while started.elapsed() < FIREFOX_TIMEOUT
        && (cross_site.reports().is_empty()
            || same_site.reports().is_empty()
            || !typed(&upstream.requests()))
    {
        if firefox.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", firefox.id())])
        .stderr(Stdio::null())
        .status();
    let out = firefox.wait_with_output().unwrap();
    let seen = upstream.requests();
    let report = format!(
        "after {:?}: cross-site page said {:?}, same-site page said {:?}\nupstream saw: \
         {seen:#?}\ntunnel log:\n{}\nfirefox: {:?}",
        started.elapsed(),
        cross_site.reports(),
        same_site.reports(),
        tunnel.log(),
        text(&out)
    );
    assert_eq!(cross_site.reports().len(), 1, "{report}");
    assert_eq!(same_site.reports().len(), 1, "{report}");
    assert!(typed(&seen), "the user's own visit got through: {report}");
    assert!(
        seen.iter().all(|r| !r.path.contains("attack")),
        "nothing a page sent was forwarded: {report}"
    );
    let attacks = 5;
    assert!(
        tunnel.wait_for_log(|l| l.matches("refused, not forwarded").count() >= 2 * attacks),
        "each of the pages' requests was refused and logged: {report}"
    );
    // The pages saw refusals: the form's frame loaded the 403, CORS failed.
    for reports in [cross_site.reports(), same_site.reports()] {
        assert!(reports[0].contains("form%3Aloaded"), "{report}");
        assert!(reports[0].contains("cors-post%3Aerror"), "{report}");
    }
}

/// kerbside-server as a library: headless Firefox opens the protected page of
/// `examples/axum.rs` (served over TLS by its own accept loop with `PerConnection`) as
/// alice, with no prompt; the app's handler saw Firefox's User-Agent and alice.
#[test]
fn firefox_logs_in_to_the_axum_example() {
    require_firefox();
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost", "127.0.0.1"]);
    let app = common::example_app::start(&realm, Some(&cert));
    let screenshot = realm.dir().join("private.png");
    let url = app.url("/private");
    let shot = Shot {
        dir: realm.dir(),
        ca: &ca,
        negotiate: true,
        extra: &[],
        png: &screenshot,
        url: &url,
    };
    let Run {
        status,
        stdout,
        stderr,
        ..
    } = firefox::screenshot(&shot, realm.env(), || false);
    let report = format!(
        "firefox {status:?}\nstdout: {stdout}\nstderr: {stderr}\napp log:\n{}",
        app.log()
    );
    assert!(status.is_some(), "firefox timed out: {report}");
    let png = std::fs::read(&screenshot)
        .unwrap_or_else(|e| panic!("no screenshot {}: {e}: {report}", screenshot.display()));
    assert!(png.starts_with(b"\x89PNG"), "{report}");
    // The handler ran for Firefox as alice (it logs each page it serves).
    assert!(
        app.wait_for_log(|log| log.lines().any(|l| l.contains("private page served")
            && l.contains("alice@EXAMPLE.TEST")
            && l.contains("Firefox/"))),
        "{report}"
    );
}

/// The gate's whoami page in Firefox: it logs in with alice's ticket, the page is
/// rendered (the screenshot is kept in the test's output directory as
/// `whoami-firefox.png`), and its text, read back from the picture with tesseract (OCR),
/// names alice, the scheme and the session-cookie mode.
#[test]
fn firefox_shows_the_whoami_page() {
    require_firefox();
    let tesseract = require_tool("tesseract", "tesseract-ocr");
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost", "127.0.0.1"]);
    let upstream = RecordingUpstream::start();
    let key = realm.dir().join("whoami-session.key");
    let key_arg = key.to_string_lossy().into_owned();
    let gate = GateProcess::start(
        &realm,
        Some(&cert),
        &upstream.url(),
        &["--auth", "cookie", "--session-key", &key_arg],
    );
    let out_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let screenshot = out_dir.join("whoami-firefox.png");
    let _ = std::fs::remove_file(&screenshot);
    let url = gate.url("/.kerbside/whoami");
    let shot = Shot {
        dir: realm.dir(),
        ca: &ca,
        negotiate: true,
        extra: &["--window-size", "1200,700"],
        png: &screenshot,
        url: &url,
    };
    let Run {
        status,
        stdout,
        stderr,
        ..
    } = firefox::screenshot(&shot, realm.env(), || false);
    let report = format!(
        "firefox {status:?}: {stdout}\n{stderr}\ngate log:\n{}",
        gate.log()
    );
    assert!(status.is_some(), "firefox timed out: {report}");
    let png = std::fs::read(&screenshot)
        .unwrap_or_else(|e| panic!("no screenshot {}: {e}: {report}", screenshot.display()));
    assert!(png.starts_with(b"\x89PNG"), "{report}");
    let ocr = Command::new(tesseract)
        .arg(&screenshot)
        .arg("stdout")
        .output()
        .unwrap();
    let seen = String::from_utf8_lossy(&ocr.stdout).into_owned();
    eprintln!("whoami in Firefox ({}):\n{seen}", screenshot.display());
    for words in ["alice@EXAMPLE.TEST", "Negotiate", "cookie", "User name"] {
        assert!(
            seen.contains(words),
            "{words:?} not on the page: {seen}\n{report}"
        );
    }
    // The upstream never saw the page's request: the gate answered it.
    assert!(upstream.requests().is_empty(), "{report}");
}
