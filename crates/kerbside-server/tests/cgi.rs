//! The CGI host against shell scripts, Mercurial's hgweb and `git http-backend`,
//! each behind a loopback HTTP/1 server that sets the extensions the gate would set
//! (the authentication layer itself is tested elsewhere).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use kerbside_server::cgi::CgiConfig;
use kerbside_server::usermap::UserMap;
use support::{command, full, get, log_line, run, run_status, script, send, serve, wait_gone};

const ALICE: &str = "alice@EXAMPLE.TEST";

fn strip_realm() -> UserMap {
    UserMap::StripRealm { realms: vec![] }
}

const PRINT_ENV: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\nenv\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn program_sees_the_rfc3875_variables() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "env.cgi", PRINT_ENV);
    let mut config = CgiConfig::new(&program, "/cgi/");
    config.user_map = strip_realm();
    config.env = vec![("EXTRA".into(), "from config".into())];
    let server = serve(config.clone(), Some(ALICE), false).await;
    let port = server.addr.port().to_string();

    let request = Request::get(server.url("/cgi/some%20dir/caf%C3%A9?a=1&b=%20"))
        .header("X-Foo", "bar")
        .header("X-Multi", "one")
        .header("X-Multi", "two")
        .header("Authorization", "Negotiate c2VjcmV0")
        .header("Proxy-Authorization", "Basic c2VjcmV0")
        .header("X_Remote_User", "mallory")
        .header("Proxy", "http://evil.test/")
        .header("Expect", "100-continue")
        .body(support::empty())
        .unwrap();
    let answer = send(request).await;
    assert_eq!(answer.status, StatusCode::OK);
    let env = answer.variables();
    let var = |name: &str| env.get(name).map(String::as_str);
    assert_eq!(var("GATEWAY_INTERFACE"), Some("CGI/1.1"));
    assert_eq!(
        var("SERVER_SOFTWARE"),
        Some(concat!("kerbside/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(var("SERVER_NAME"), Some("127.0.0.1"));
    assert_eq!(var("SERVER_PORT"), Some(port.as_str()));
    assert_eq!(var("SERVER_PROTOCOL"), Some("HTTP/1.1"));
    assert_eq!(var("REQUEST_METHOD"), Some("GET"));
    assert_eq!(var("SCRIPT_NAME"), Some("/cgi"));
    assert_eq!(var("PATH_INFO"), Some("/some dir/café"));
    assert_eq!(var("QUERY_STRING"), Some("a=1&b=%20"));
    assert_eq!(
        var("REQUEST_URI"),
        Some("/cgi/some%20dir/caf%C3%A9?a=1&b=%20")
    );
    assert_eq!(var("REMOTE_ADDR"), Some("127.0.0.1"));
    assert!(var("REMOTE_PORT").is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p > 0)));
    assert_eq!(var("AUTH_TYPE"), Some("Negotiate"));
    assert_eq!(var("REMOTE_USER"), Some("alice"));
    assert_eq!(var("HTTP_X_FOO"), Some("bar"));
    assert_eq!(var("HTTP_X_MULTI"), Some("one, two"));
    assert_eq!(var("HTTP_HOST"), Some(server.addr.to_string().as_str()));
    assert_eq!(var("HTTPS"), None);
    assert_eq!(var("PATH"), Some("/usr/local/bin:/usr/bin:/bin"));
    assert_eq!(var("EXTRA"), Some("from config"));
    for hidden in [
        "HTTP_AUTHORIZATION",
        "HTTP_PROXY_AUTHORIZATION",
        "HTTP_X_REMOTE_USER",
        "HTTP_PROXY",
        "HTTP_EXPECT",
        "CONTENT_LENGTH",
        "CONTENT_TYPE",
        // Nothing of the test process's environment leaks in.
        "HOME",
        "CARGO_PKG_NAME",
    ] {
        assert_eq!(var(hidden), None, "{hidden} must not be set");
    }
    // The program runs in its own directory.
    assert_eq!(var("PWD"), dir.path().to_str());

    // A body with a type.
    let request = Request::post(server.url("/cgi"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(full("a=1"))
        .unwrap();
    let env = send(request).await.variables();
    assert_eq!(env.get("CONTENT_LENGTH").map(String::as_str), Some("3"));
    assert_eq!(
        env.get("CONTENT_TYPE").map(String::as_str),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(env.get("REQUEST_METHOD").map(String::as_str), Some("POST"));
    assert_eq!(env.get("PATH_INFO"), None);

    // Over TLS.
    let tls = serve(config.clone(), Some(ALICE), true).await;
    let env = get(&tls.url("/cgi/")).await.variables();
    assert_eq!(env.get("HTTPS").map(String::as_str), Some("on"));
    assert_eq!(env.get("PATH_INFO").map(String::as_str), Some("/"));

    // Without the Authenticated extension, nobody is claimed.
    let anonymous = serve(config, None, false).await;
    let env = get(&anonymous.url("/cgi/x")).await.variables();
    assert_eq!(env.get("REMOTE_USER"), None);
    assert_eq!(env.get("AUTH_TYPE"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_principals_and_paths_never_run_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let program = script(
        dir.path(),
        "touch.cgi",
        &format!(
            "#!/bin/sh\ntouch '{}'\nprintf 'Content-Type: text/plain\\n\\nok'\n",
            marker.display()
        ),
    );
    let mut config = CgiConfig::new(&program, "/cgi");
    config.user_map = "strip-realm:OTHER.TEST".parse().unwrap();
    let server = serve(config.clone(), Some(ALICE), false).await;
    assert_eq!(
        get(&server.url("/cgi/x")).await.status,
        StatusCode::FORBIDDEN
    );

    config.user_map = strip_realm();
    let server = serve(config, Some(ALICE), false).await;
    assert_eq!(
        get(&server.url("/elsewhere")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&server.url("/cgix")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&server.url("/cgi/a/%2e%2e/b")).await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&server.url("/cgi/a%00")).await.status,
        StatusCode::BAD_REQUEST
    );
    assert!(!marker.exists(), "the program must not have run");
    let answer = get(&server.url("/cgi")).await;
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (StatusCode::OK, "ok")
    );
    assert!(marker.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cgi_headers_become_the_response() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(
        dir.path(),
        "head.cgi",
        "#!/bin/sh\ncase \"$QUERY_STRING\" in\n\
         status) printf 'Status: 418 Teapot\\r\\nContent-Type: text/plain\\r\\nX-A: 1\\r\\nX-A: 2\\r\\n\\r\\nshort and stout' ;;\n\
         redirect) printf 'Location: http://example.test/elsewhere\\n\\n' ;;\n\
         big) printf 'Content-Type: application/octet-stream\\n\\n'; head -c 1000000 /dev/zero ;;\n\
         esac\n",
    );
    let server = serve(CgiConfig::new(&program, ""), Some(ALICE), false).await;
    let answer = get(&server.url("/?status")).await;
    assert_eq!(answer.status.as_u16(), 418);
    assert_eq!(answer.headers["content-type"], "text/plain");
    assert_eq!(answer.headers.get_all("x-a").iter().count(), 2);
    assert_eq!(answer.text(), "short and stout");
    let answer = get(&server.url("/?redirect")).await;
    assert_eq!(answer.status, StatusCode::FOUND);
    assert_eq!(answer.headers["location"], "http://example.test/elsewhere");
    let answer = get(&server.url("/?big")).await;
    assert_eq!(answer.body.unwrap().len(), 1_000_000);
}

/// Mercurial over hgweb: clone, push as a user in `allow-push`, refused for others,
/// and `push_ssl` honoured through `HTTPS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mercurial_clone_and_push_through_hgweb() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let repo = home.join("repo");
    run(command("hg", home).arg("init").arg(&repo)).await;
    std::fs::write(repo.join("README"), "hello\n").unwrap();
    run(command("hg", home)
        .arg("-R")
        .arg(&repo)
        .args(["commit", "-A", "-m", "first"]))
    .await;
    // push_ssl stays at its default (true): pushes need HTTPS=on.
    std::fs::write(repo.join(".hg/hgrc"), "[web]\nallow-push = alice\n").unwrap();
    let hgweb = script(
        home,
        "hgweb.cgi",
        &format!(
            "#!/usr/bin/python3\n\
             from mercurial import demandimport; demandimport.enable()\n\
             from mercurial.hgweb import hgweb, wsgicgi\n\
             application = hgweb(b{:?})\n\
             wsgicgi.launch(application)\n",
            repo.to_str().unwrap()
        ),
    );
    let mut config = CgiConfig::new(&hgweb, "/hg");
    config.user_map = strip_realm();
    config.env = vec![
        (
            "HGRCPATH".into(),
            home.join("empty-hgrc").display().to_string(),
        ),
        ("HGENCODING".into(), "UTF-8".into()),
    ];
    let server = serve(config.clone(), Some(ALICE), true).await;

    let clone = home.join("clone");
    run(command("hg", home)
        .args(["clone", &server.url("/hg/")])
        .arg(&clone))
    .await;
    assert_eq!(
        std::fs::read_to_string(clone.join("README")).unwrap(),
        "hello\n"
    );
    let hg_in_clone = || {
        let mut c = command("hg", home);
        c.arg("-R")
            .arg(&clone)
            .args(["--config", "ui.interactive=false"]);
        c
    };
    std::fs::write(clone.join("README"), "hello again\n").unwrap();
    run(hg_in_clone().args(["commit", "-m", "second, by alice"])).await;
    run(hg_in_clone().arg("push")).await;
    let log = run(command("hg", home)
        .arg("-R")
        .arg(&repo)
        .args(["log", "-T", "{desc}\n"]))
    .await;
    assert!(log.contains("second, by alice"), "{log}");

    // bob is not in allow-push: hgweb answers 401 (the gate makes that a 403).
    let as_bob = serve(config.clone(), Some("bob@EXAMPLE.TEST"), true).await;
    std::fs::write(clone.join("README"), "bob was here\n").unwrap();
    run(hg_in_clone().args(["commit", "-m", "third, by bob"])).await;
    let (ok, _, stderr) = run_status(hg_in_clone().args(["push", &as_bob.url("/hg/")])).await;
    assert!(!ok, "bob's push must fail");
    assert!(
        as_bob.statuses().contains(&StatusCode::UNAUTHORIZED),
        "{:?}\n{stderr}",
        as_bob.statuses()
    );

    // Over plain HTTP (no HTTPS=on) hgweb's push_ssl refuses alice too.
    let plain = serve(config, Some(ALICE), false).await;
    let (ok, _, stderr) = run_status(hg_in_clone().args(["push", &plain.url("/hg/")])).await;
    assert!(!ok, "a push without HTTPS must fail");
    assert!(
        plain.statuses().contains(&StatusCode::FORBIDDEN),
        "{:?}\n{stderr}",
        plain.statuses()
    );
    let log = run(command("hg", home)
        .arg("-R")
        .arg(&repo)
        .args(["log", "-T", "{desc}\n"]))
    .await;
    assert!(!log.contains("third, by bob"), "{log}");
}

/// git over `git http-backend`: clone, then a push (receive-pack is on because
/// REMOTE_USER is set), large enough that git sends it chunked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn git_clone_and_push_through_http_backend() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let root = home.join("srv");
    std::fs::create_dir(&root).unwrap();
    let bare = root.join("repo.git");
    run(command("git", home)
        .args(["init", "--bare", "--initial-branch=main"])
        .arg(&bare))
    .await;
    let mut config = CgiConfig::new("/usr/lib/git-core/git-http-backend", "/git");
    config.user_map = strip_realm();
    config.env = vec![
        ("GIT_PROJECT_ROOT".into(), root.display().to_string()),
        ("GIT_HTTP_EXPORT_ALL".into(), "1".into()),
    ];
    let server = serve(config.clone(), Some(ALICE), false).await;

    let clone = home.join("clone");
    run(command("git", home)
        .args(["clone", &server.url("/git/repo.git")])
        .arg(&clone))
    .await;
    let git_in_clone = || {
        let mut c = command("git", home);
        c.arg("-C").arg(&clone);
        c
    };
    std::fs::write(clone.join("README"), "hello\n").unwrap();
    // Incompressible data, over git's 1 MiB http.postBuffer: sent chunked.
    let mut noise = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open("/dev/urandom").unwrap(), 3 << 20),
        &mut noise,
    )
    .unwrap();
    std::fs::write(clone.join("noise.bin"), &noise).unwrap();
    run(git_in_clone().args(["checkout", "-b", "main"])).await;
    run(git_in_clone().args(["add", "."])).await;
    run(git_in_clone().args(["commit", "-m", "first, by alice"])).await;
    let (ok, _, trace) = run_status(
        git_in_clone()
            .env("GIT_TRACE_CURL", "1")
            .env("GIT_TRACE_CURL_NO_DATA", "1")
            .args(["push", "origin", "main"]),
    )
    .await;
    assert!(ok, "push failed:\n{trace}");
    assert!(
        trace.contains("Transfer-Encoding: chunked"),
        "git was expected to send the pack chunked:\n{}",
        trace
            .lines()
            .filter(|l| l.contains("=> Send header"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let log =
        run(command("git", home)
            .arg("--git-dir")
            .arg(&bare)
            .args(["log", "--format=%s", "main"]))
        .await;
    assert_eq!(log.trim(), "first, by alice");
    let stored = run(command("git", home).arg("--git-dir").arg(&bare).args([
        "cat-file",
        "-s",
        "main:noise.bin",
    ]))
    .await;
    assert_eq!(stored.trim(), noise.len().to_string());

    // A second clone (protocol v2) sees the commit.
    let again = home.join("again");
    run(command("git", home)
        .args([
            "-c",
            "protocol.version=2",
            "clone",
            &server.url("/git/repo.git"),
        ])
        .arg(&again))
    .await;
    assert_eq!(
        std::fs::read_to_string(again.join("README")).unwrap(),
        "hello\n"
    );

    // Anonymous: http-backend refuses receive-pack without REMOTE_USER.
    let anonymous = serve(config, None, false).await;
    std::fs::write(clone.join("README"), "anonymous\n").unwrap();
    run(git_in_clone().args(["commit", "-am", "second"])).await;
    let (ok, _, _) =
        run_status(git_in_clone().args(["push", &anonymous.url("/git/repo.git"), "main"])).await;
    assert!(!ok, "an anonymous push must fail");
    assert!(
        anonymous.statuses().contains(&StatusCode::FORBIDDEN),
        "{:?}",
        anonymous.statuses()
    );
}

fn pid_in(path: &Path) -> u32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_without_headers_in_time_gets_504_and_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    std::fs::create_dir(&pids).unwrap();
    let program = script(
        dir.path(),
        "sleep.cgi",
        &format!(
            "#!/bin/sh\necho $$ > {p}/shell\nsleep 1000 &\necho $! > {p}/sleep\nwait\n",
            p = pids.display()
        ),
    );
    let mut config = CgiConfig::new(&program, "");
    config.timeout = Duration::from_secs(1);
    let server = serve(config, Some(ALICE), false).await;
    let started = Instant::now();
    let answer = get(&server.url("/")).await;
    let elapsed = started.elapsed();
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    // The program and its child (same process group) are gone.
    for name in ["shell", "sleep"] {
        let pid = pid_in(&pids.join(name));
        assert!(
            wait_gone(pid, Duration::from_secs(3)).await,
            "{name} ({pid}) still runs"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_not_finished_in_time_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    let program = script(
        dir.path(),
        "slow.cgi",
        &format!(
            "#!/bin/sh\necho $$ > {}\nprintf 'Content-Type: text/plain\\n\\nstarted'\nexec sleep 1000\n",
            pid_file.display()
        ),
    );
    let mut config = CgiConfig::new(&program, "");
    config.timeout = Duration::from_secs(1);
    let server = serve(config, Some(ALICE), false).await;
    let started = Instant::now();
    let answer = get(&server.url("/")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.body.is_err(), "the body must be cut");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(wait_gone(pid_in(&pid_file), Duration::from_secs(3)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_garbled_programs_get_502() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("exit1", "#!/bin/sh\nexit 1\n"),
        ("exit0", "#!/bin/sh\nexit 0\n"),
        (
            "fail-after-partial",
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\n'\nexit 3\n",
        ),
        (
            "garbage",
            "#!/bin/sh\nprintf 'this is not a header\\n\\nbody'\n",
        ),
        (
            "bad-status",
            "#!/bin/sh\nprintf 'Status: nope\\nContent-Type: text/plain\\n\\n'\n",
        ),
        (
            "no-cgi-field",
            "#!/bin/sh\nprintf 'X-Only: 1\\n\\nbody'\n",
        ),
        (
            "huge-head",
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\n'\nwhile :; do printf 'X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\\n'; done\n",
        ),
    ];
    for (name, text) in cases {
        let program = script(dir.path(), name, text);
        let mut config = CgiConfig::new(&program, "");
        config.timeout = Duration::from_secs(20);
        let server = serve(config, Some(ALICE), false).await;
        let started = Instant::now();
        let answer = get(&server.url("/")).await;
        assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{name}");
        assert!(started.elapsed() < Duration::from_secs(5), "{name}");
    }
    assert!(
        log_line(&["exit1", "exit status: 1", "before sending headers"])
            .await
            .is_some(),
        "the 502 is logged with the program and its exit status"
    );
    let err = kerbside_server::cgi::CgiService::new(CgiConfig::new(dir.path().join("none"), ""))
        .unwrap_err();
    assert!(err.message().contains("none"), "{err}");
    std::fs::write(dir.path().join("plain"), "").unwrap();
    let err = kerbside_server::cgi::CgiService::new(CgiConfig::new(dir.path().join("plain"), ""))
        .unwrap_err();
    assert!(err.message().contains("not executable"), "{err}");
}

const SLOW: &str = "#!/bin/sh\nsleep 1\nprintf 'Content-Type: text/plain\\n\\n'\ndate +%s.%N\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_max_concurrent_requests_wait_for_a_slot() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "slow.cgi", SLOW);
    let mut config = CgiConfig::new(&program, "");
    config.max_concurrent = 1;
    let server = serve(config, Some(ALICE), false).await;
    let url = server.url("/");
    let started = Instant::now();
    let (a, b) = tokio::join!(get(&url), get(&url));
    assert_eq!((a.status, b.status), (StatusCode::OK, StatusCode::OK));
    // One after the other: about two seconds in all, and the answers (times at
    // which each program finished) a second apart.
    assert!(started.elapsed() >= Duration::from_millis(1900));
    let (ta, tb): (f64, f64) = (
        a.text().trim().parse().unwrap(),
        b.text().trim().parse().unwrap(),
    );
    assert!((ta - tb).abs() >= 0.9, "{ta} {tb}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_slot_within_the_queue_timeout_gets_503() {
    let dir = tempfile::tempdir().unwrap();
    let started = dir.path().join("started");
    let program = script(
        dir.path(),
        "slow.cgi",
        &SLOW.replacen("\n", &format!("\ntouch '{}'\n", started.display()), 1),
    );
    let mut config = CgiConfig::new(&program, "");
    config.max_concurrent = 1;
    config.queue_timeout = Duration::from_millis(200);
    let server = serve(config, Some(ALICE), false).await;
    let url = server.url("/");
    let first = tokio::spawn({
        let url = url.clone();
        async move { get(&url).await.status }
    });
    // Once the first program runs, the only slot is taken.
    for _ in 0..100 {
        if started.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.exists(), "the first program did not start");
    let second = get(&url).await;
    assert_eq!(second.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(second.headers.contains_key("retry-after"));
    assert_eq!(first.await.unwrap(), StatusCode::OK);
    // The slot is free again.
    assert_eq!(get(&url).await.status, StatusCode::OK);
}

const HASH_STDIN: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\n\\n'\necho \"$CONTENT_LENGTH\"\nsha256sum | cut -d' ' -f1\n";

async fn sha256(dir: &Path, data: &[u8]) -> String {
    let file = dir.join("expected");
    std::fs::write(&file, data).unwrap();
    let out = run(command("sha256sum", dir).arg(&file)).await;
    out.split_whitespace().next().unwrap().to_owned()
}

fn payload(len: usize) -> Vec<u8> {
    (0..len as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_3_mib_body_reaches_the_program_intact() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "hash.cgi", HASH_STDIN);
    let server = serve(CgiConfig::new(&program, ""), Some(ALICE), false).await;
    let data = payload(3 << 20);
    let expected = sha256(dir.path(), &data).await;
    let answer = send(
        Request::post(server.url("/"))
            .body(full(data.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), format!("{}\n{expected}\n", data.len()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_is_spooled_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(dir.path(), "hash.cgi", HASH_STDIN);
    let mut config = CgiConfig::new(&program, "");
    config.max_body = 2 << 20;
    let server = serve(config, Some(ALICE), false).await;
    let data = payload(1_500_000);
    let expected = sha256(dir.path(), &data).await;
    let chunked = |data: Vec<u8>| {
        let frames: Vec<Result<Frame<Bytes>, kerbside_server::BoxError>> = data
            .chunks(100_000)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames)).boxed()
    };
    let answer = send(
        Request::post(server.url("/"))
            .body(chunked(data.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.text(), format!("{}\n{expected}\n", data.len()));

    // Over max_body: 413, before the program runs.
    let answer = send(
        Request::post(server.url("/"))
            .body(chunked(payload(3 << 20)))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_error_is_logged_line_by_line_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let program = script(
        dir.path(),
        "chatty.cgi",
        "#!/bin/sh\necho 'first complaint' >&2\nhead -c 100000 /dev/zero | tr '\\0' x >&2\necho >&2\nprintf 'no newline at the end' >&2\nprintf 'Content-Type: text/plain\\n\\nok'\n",
    );
    let server = serve(CgiConfig::new(&program, ""), Some(ALICE), false).await;
    assert_eq!(get(&server.url("/")).await.text(), "ok");
    let line = log_line(&["chatty.cgi", "first complaint"]).await;
    assert!(line.is_some_and(|l| l.contains("WARN")));
    let long = log_line(&["chatty.cgi", "xxxx"]).await.unwrap();
    assert!(
        long.contains("[cut]") && long.len() < 3000,
        "{}",
        long.len()
    );
    assert!(log_line(&["chatty.cgi", "no newline at the end"])
        .await
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_program_is_killed_when_the_client_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    std::fs::create_dir(&pids).unwrap();
    let program = script(
        dir.path(),
        "forever.cgi",
        &format!(
            "#!/bin/sh\necho $$ > {p}/$QUERY_STRING\n\
             if [ \"$QUERY_STRING\" = body ]; then printf 'Content-Type: text/plain\\n\\nstarted\\n'; fi\n\
             exec sleep 1000\n",
            p = pids.display()
        ),
    );
    let server = serve(CgiConfig::new(&program, ""), Some(ALICE), false).await;
    let wait_for_pid = |name: &'static str| {
        let path = pids.join(name);
        async move {
            for _ in 0..100 {
                if let Ok(text) = std::fs::read_to_string(&path) {
                    if let Ok(pid) = text.trim().parse::<u32>() {
                        return pid;
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the program did not start");
        }
    };

    // Gone while the program streams its body.
    let response = support::client()
        .request(
            Request::get(server.url("/?body"))
                .body(support::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let pid = wait_for_pid("body").await;
    drop(response);
    assert!(
        wait_gone(pid, Duration::from_secs(5)).await,
        "killed when the client left during the body"
    );

    // Gone before the program sent its headers.
    let (tcp, pending) = {
        let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(
            &mut tcp,
            b"GET /?head HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        )
        .await
        .unwrap();
        (tcp, wait_for_pid("head"))
    };
    let pid = pending.await;
    drop(tcp);
    assert!(
        wait_gone(pid, Duration::from_secs(5)).await,
        "killed when the client left before the headers"
    );
}
