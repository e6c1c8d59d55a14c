//! The Digest peers against third-party clients: Apache mod_auth_digest (MD5) and lighttpd
//! (SHA-256) with `curl --digest` and Python httpx's DigestAuth; lighttpd as a plain static
//! upstream.
#![allow(clippy::unwrap_used)]

use kerbside_testkit::{
    require_peers_python, run_curl, run_password_client, ApacheScheme, Lighttpd, LighttpdOptions,
    SchemeApache, SchemeApacheOptions, TestCa, ALICE, BENCH_BODY, PRIVATE_BODY, PUBLIC_BODY,
};

/// `alice:password` for curl's `-u`.
fn curl_user(password: &str) -> String {
    format!("{}:{password}", ALICE.name)
}

#[test]
fn apache_digest_md5_lets_curl_in_and_refuses_a_wrong_password() {
    let ca = TestCa::new();
    let apache = SchemeApache::start(
        &ca.issue(&[]),
        SchemeApacheOptions {
            scheme: ApacheScheme::Digest,
            plain_http: true,
        },
    )
    .unwrap();
    let ca_pem = Some(ca.ca_pem_path());
    let user = curl_user(ALICE.password);

    let run = run_curl(&["--digest", "-u", &user, &apache.url("/private/")], ca_pem).unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", apache.error_log());
    assert_eq!(run.statuses(), [401, 200]);
    assert_eq!(run.header("X-Remote-User"), ["alice"]);
    assert_eq!(run.body, PRIVATE_BODY);
    let challenge = run.first_challenges("WWW-Authenticate").join("|");
    assert!(
        challenge.starts_with("Digest realm=\"kerbside test realm\"")
            && challenge.contains("algorithm=MD5")
            && challenge.contains("qop=\"auth\""),
        "{challenge}"
    );

    let run = run_curl(
        &["--digest", "-u", &user, &apache.url("/private/whoami")],
        ca_pem,
    )
    .unwrap();
    assert_eq!(run.body, "user=alice\nauth=Digest\n", "{run:?}");

    // A POST: curl sends the body once the challenge is answered.
    let body: String = "0123456789".repeat(3000);
    let run = run_curl(
        &[
            "--digest",
            "-u",
            &user,
            "--data-binary",
            &body,
            &apache.plain_url("/private/upload"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", apache.error_log());
    assert_eq!(run.body, format!("{} 30000\n", sha256_hex(&body)));

    let run = run_curl(
        &[
            "--digest",
            "-u",
            &curl_user("wrong-password"),
            &apache.url("/private/"),
        ],
        ca_pem,
    )
    .unwrap();
    assert_eq!(run.status, 401, "{run:?}");
    assert!(
        apache.access_entries().iter().any(|e| e.status == 200
            && e.user.as_deref() == Some("alice")
            && e.auth_scheme.as_deref() == Some("Digest")),
        "{}",
        apache.access_log()
    );
}

#[test]
fn lighttpd_digest_sha256_lets_curl_and_httpx_in_and_refuses_a_wrong_password() {
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let lighttpd = Lighttpd::start(LighttpdOptions {
        plain_http: true,
        ..LighttpdOptions::digest(&cert)
    })
    .unwrap();
    let ca_pem = Some(ca.ca_pem_path());
    let user = curl_user(ALICE.password);

    let run = run_curl(
        &["--digest", "-u", &user, &lighttpd.url("/private/whoami")],
        ca_pem,
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", lighttpd.error_log());
    assert_eq!(run.statuses(), [401, 200]);
    assert_eq!(run.body, "user=alice\nauth=Digest\n");
    let challenge = run.first_challenges("WWW-Authenticate").join("|");
    assert!(
        challenge.starts_with("Digest realm=\"kerbside test realm\"")
            && challenge.contains("algorithm=SHA-256")
            && challenge.contains("qop=\"auth\""),
        "{challenge}"
    );

    let run = run_curl(
        &[
            "--digest",
            "-u",
            &user,
            "--data-binary",
            "kerbside",
            &lighttpd.plain_url("/private/upload"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", lighttpd.error_log());
    assert_eq!(run.body, format!("{} 8\n", sha256_hex("kerbside")));

    let run = run_curl(
        &[
            "--digest",
            "-u",
            &curl_user("wrong-password"),
            &lighttpd.url("/private/"),
        ],
        ca_pem,
    )
    .unwrap();
    assert_eq!(run.status, 401, "{run:?}");

    let log = lighttpd.wait_access_log(|log| log.contains("\" 200 user=alice"));
    assert!(log.contains("\" 200 user=alice"), "{log}");

    // httpx's DigestAuth: SHA-256, a GET then a POST.
    require_peers_python();
    let ca_path = ca.ca_pem_path().to_str().unwrap();
    let httpx = |url: &str, password: &str, extra: &[&str]| {
        let mut args = vec![
            "httpx-digest",
            url,
            "--user",
            ALICE.name,
            "--password",
            password,
            "--ca",
            ca_path,
        ];
        args.extend(extra);
        run_password_client(&args).unwrap()
    };
    let facts = httpx(&lighttpd.url("/private/whoami"), ALICE.password, &[]);
    assert_eq!(facts.get("status"), "200", "{}", facts.raw);
    assert_eq!(facts.get("statuses"), "401,200", "{}", facts.raw);
    assert_eq!(facts.get("body"), "user=alice", "{}", facts.raw);
    let facts = httpx(
        &lighttpd.url("/private/upload"),
        ALICE.password,
        &["--post-bytes", "4096"],
    );
    assert_eq!(facts.get("status"), "200", "{}", facts.raw);
    assert_eq!(
        facts.get("body"),
        format!("{} 4096", facts.get("sent_sha256"))
    );
    let facts = httpx(&lighttpd.url("/private/whoami"), "wrong-password", &[]);
    assert_eq!(facts.get("status"), "401", "{}", facts.raw);
}

#[test]
fn lighttpd_upstream_serves_the_bench_file_without_authentication() {
    let lighttpd = Lighttpd::start(LighttpdOptions::upstream()).unwrap();
    let run = run_curl(&[&lighttpd.plain_url("/bench")], None).unwrap();
    assert_eq!(run.status, 200, "{run:?}\n{}", lighttpd.error_log());
    assert_eq!(run.body.len(), 96);
    assert_eq!(run.body, BENCH_BODY);
    let run = run_curl(&[&lighttpd.plain_url("/private/")], None).unwrap();
    assert_eq!((run.status, run.body.as_str()), (200, PRIVATE_BODY));
    let run = run_curl(&[&lighttpd.plain_url("/public/")], None).unwrap();
    assert_eq!((run.status, run.body.as_str()), (200, PUBLIC_BODY));
    let run = run_curl(&[&lighttpd.plain_url("/private/whoami")], None).unwrap();
    assert_eq!(run.body, "user=\nauth=\n");
}

/// The hex SHA-256 of `text`, by coreutils.
fn sha256_hex(text: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}
