//! `kerbside tunnel`: real Mercurial clones and pushes through a local plain-HTTP
//! port, to a repository behind `kerbside gate` (HTTPS, Negotiate), with alice's
//! ticket and no password. Requests a web page could have made the browser send
//! (another Host, another Origin, Sec-Fetch-Site cross-site or same-site, an absolute
//! target naming another host) get 403 from curl's point of view and never reach the
//! upstream; the tunnel's own names (and those given with --allowed-host) get through.
#![allow(clippy::unwrap_used)]

mod common;

use common::{hg, kerbside, run_ok, text, EchoUpstream, GateProcess, HgServe, RecordingUpstream};
use kerbside_testkit::{TestCa, TestRealm};

fn tunnel(realm: &TestRealm, to: &str, ca: &std::path::Path, extra: &[&str]) -> GateProcess {
    let mut cmd = kerbside(realm);
    cmd.args(["tunnel", "--listen", "127.0.0.1:0", "--to", to, "--cacert"])
        .arg(ca)
        .args(extra);
    GateProcess::from_command(cmd)
}

#[test]
fn hg_clones_and_pushes_through_the_tunnel_and_the_gate() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let served = HgServe::start(realm.dir());
    let gate = GateProcess::start(&realm, Some(&cert), &served.url(), &[]);
    let tunnel = tunnel(&realm, &gate.url("/"), ca.ca_pem_path(), &[]);

    let work = realm.dir().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = hg(&work)
        .args(["clone", &tunnel.url("/"), "clone"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?}\n--- tunnel:\n{}\n--- gate:\n{}\n--- hg serve:\n{}",
        text(&out),
        tunnel.log(),
        gate.log(),
        served.errors()
    );
    let clone = work.join("clone");
    assert_eq!(
        std::fs::read_to_string(clone.join("README")).unwrap(),
        "hello from the server\n"
    );
    std::fs::write(clone.join("NEW"), "pushed through kerbside\n").unwrap();
    run_ok(hg(&clone).args(["commit", "-A", "-m", "second"]));
    run_ok(hg(&clone).args(["push"]));
    let log = run_ok(hg(&served.repo).args(["log", "-T", "{desc}\\n"]));
    assert_eq!(log, "second\nfirst\n");
    assert!(
        gate.log().contains("principal=alice@EXAMPLE.TEST"),
        "{}",
        gate.log()
    );
}

#[test]
fn the_tunnel_passes_bodies_and_errors_through_and_stays_on_loopback() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let tunnel = tunnel(&realm, &gate.url("/prefix"), ca.ca_pem_path(), &[]);

    // curl without any Kerberos: the tunnel authenticates for it.
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "--noproxy",
            "*",
            "-H",
            "X-Remote-User: mallory",
            "-d",
            "a=1",
        ])
        .arg(tunnel.url("/x?y=z"))
        .output()
        .unwrap();
    let body = text(&out).0;
    assert!(body.contains("users=alice@EXAMPLE.TEST\n"), "{body}");
    assert!(body.contains("path=/prefix/x?y=z\n"), "{body}");
    assert!(body.contains("body=a=1\n"), "{body}");

    // Without a ticket the local tool gets a 401 that says why.
    let no_ticket = {
        let mut cmd = kerbside(&realm);
        cmd.env("KRB5CCNAME", format!("FILE:{}/none", realm.dir().display()))
            .args(["tunnel", "--listen", "127.0.0.1:0", "--to", &gate.url("/")])
            .arg("--cacert")
            .arg(ca.ca_pem_path());
        GateProcess::from_command(cmd)
    };
    let out = std::process::Command::new("curl")
        .args(["-s", "--noproxy", "*", "-w", "\n%{http_code}"])
        .arg(no_ticket.url("/"))
        .output()
        .unwrap();
    let body = text(&out).0;
    assert!(body.contains("run kinit"), "{body}");
    assert!(body.ends_with("401"), "{body}");

    let out = kerbside(&realm)
        .args(["tunnel", "--listen", "0.0.0.0:0", "--to", &gate.url("/")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("--allow-remote"), "{:?}", text(&out));
}

/// curl to the tunnel at `path` with `args`; the status code.
fn curl_status(tunnel: &GateProcess, path: &str, args: &[&str]) -> String {
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--noproxy",
            "*",
        ])
        .args(["--max-time", "30"])
        .args(args)
        .arg(tunnel.url(path))
        .output()
        .unwrap();
    text(&out).0
}

#[test]
fn the_tunnel_refuses_what_a_web_page_could_have_sent() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = RecordingUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let tunnel = tunnel(&realm, &gate.url("/"), ca.ca_pem_path(), &[]);
    let port = tunnel.url.rsplit(':').next().unwrap().trim_end_matches('/');
    let own_origin = format!("Origin: http://localhost:{port}");
    let rebound = format!("Host: evil.example:{port}");
    let ip_url = format!("http://127.0.0.1:{port}/by-ip");
    let absolute = format!("http://evil.example:{port}/absolute");

    // The user's tools.
    assert_eq!(
        curl_status(&tunnel, "/tool", &[]),
        "200",
        "{}",
        tunnel.log()
    );
    assert_eq!(
        curl_status(&tunnel, "/own-origin", &["-H", &own_origin, "-d", "x"]),
        "200"
    );
    assert_eq!(
        curl_status(&tunnel, "/typed", &["-H", "Sec-Fetch-Site: none"]),
        "200"
    );
    assert_eq!(
        curl_status(&tunnel, "/http10", &["-0", "-H", "Host:"]),
        "200"
    );
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--noproxy",
            "*",
        ])
        .arg(&ip_url)
        .output()
        .unwrap();
    assert_eq!(text(&out).0, "200");

    // What a web page can make the browser send.
    let refused: [(&str, Vec<&str>); 6] = [
        ("/rebound", vec!["-H", &rebound]),
        (
            "/cross-origin",
            vec!["-H", "Origin: http://127.0.0.2:9000", "-d", "x"],
        ),
        ("/null-origin", vec!["-H", "Origin: null", "-d", "x"]),
        ("/same-site", vec!["-H", "Sec-Fetch-Site: same-site"]),
        ("/cross-site", vec!["-H", "Sec-Fetch-Site: cross-site"]),
        ("/absolute-target", vec!["--request-target", &absolute]),
    ];
    for (path, args) in &refused {
        assert_eq!(curl_status(&tunnel, path, args), "403", "{path}");
    }
    assert!(
        tunnel.wait_for_log(|l| l.matches("refused, not forwarded").count() >= refused.len()),
        "each refusal is logged: {}",
        tunnel.log()
    );
    let seen: Vec<String> = upstream.requests().into_iter().map(|r| r.path).collect();
    for path in ["/tool", "/own-origin", "/typed", "/http10", "/by-ip"] {
        assert!(seen.iter().any(|p| p == path), "{path} not in {seen:?}");
    }
    assert_eq!(seen.len(), 5, "nothing else was forwarded: {seen:?}");
    let log = tunnel.log();
    assert!(log.contains("DNS rebinding"), "{log}");
    assert!(log.contains("a web page sent this request"), "{log}");
}

#[test]
fn the_tunnel_answers_to_names_it_is_given() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = RecordingUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let tunnel = tunnel(
        &realm,
        &gate.url("/"),
        ca.ca_pem_path(),
        &[
            "--allowed-host",
            "build-host",
            "--allowed-host",
            "localhost:9000",
        ],
    );
    let port = tunnel.url.rsplit(':').next().unwrap().trim_end_matches('/');
    let by_name = format!("Host: build-host:{port}");
    assert_eq!(curl_status(&tunnel, "/by-name", &["-H", &by_name]), "200");
    assert_eq!(
        curl_status(&tunnel, "/forwarded", &["-H", "Host: localhost:9000"]),
        "200",
        "as through ssh -L 9000:localhost:PORT"
    );
    assert_eq!(
        curl_status(&tunnel, "/other", &["-H", "Host: other-host"]),
        "403"
    );
    let seen: Vec<String> = upstream.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(seen, ["/by-name", "/forwarded"]);
}

#[test]
fn the_tunnel_keeps_requests_inside_its_prefix() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = RecordingUpstream::start();
    let gate = GateProcess::start(&realm, Some(&cert), &upstream.url(), &[]);
    let tunnel = tunnel(&realm, &gate.url("/inner"), ca.ca_pem_path(), &[]);

    assert_eq!(curl_status(&tunnel, "/a/b", &[]), "200", "{}", tunnel.log());
    for path in [
        "/../secret",
        "/a/../../secret",
        "/%2e%2e/secret",
        "/.%2E/secret",
        "/..%2fsecret",
        "/..%5csecret",
    ] {
        assert_eq!(
            curl_status(&tunnel, path, &["--path-as-is"]),
            "400",
            "{path}: {}",
            tunnel.log()
        );
    }
    assert!(
        tunnel.wait_for_log(|l| l.matches("has a .. segment").count() >= 6),
        "each refusal is logged: {}",
        tunnel.log()
    );
    let seen: Vec<String> = upstream.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        seen,
        ["/inner/a/b"],
        "only the request inside the prefix went on"
    );
}
