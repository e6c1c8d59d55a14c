//! The gate's limits, run as a process against real clients (curl, raw TCP): it
//! refuses to start unable to authenticate anyone, cuts off stalled upstreams (504),
//! caps connections, backs off when accept fails, bounds request bodies (413), and
//! answers an oversized header with 431 over HTTP/1.1 and HTTP/2 alike, and reads the
//! unread body of a request it refuses so the connection can carry the next leg.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{
    clean_env, curl, kerbside, metric, text, EchoUpstream, GateProcess, HeadEchoUpstream,
    RecordingUpstream,
};
use kerbside_testkit::{TestCa, TestRealm};

/// One realm for the whole binary.
fn realm() -> &'static TestRealm {
    static REALM: OnceLock<TestRealm> = OnceLock::new();
    REALM.get_or_init(|| TestRealm::start().unwrap())
}

/// Runs `kerbside gate ARGS` that must refuse to start; gives its exit code and
/// standard error. The gate is killed if it is still running after 10 s.
fn gate_refuses(realm: &TestRealm, env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let upstream = EchoUpstream::start();
    let mut cmd = kerbside(realm);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .args(["gate", "--listen", "127.0.0.1:0", "--upstream"])
        .arg(upstream.url())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the gate started although it cannot authenticate anyone: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn gate_without_a_keytab_refuses_to_start() {
    let realm = realm();
    let missing = realm.dir().join("no-such.keytab");
    let missing_env = format!("FILE:{}", missing.display());
    // No --keytab, and KRB5_KTNAME names a file that does not exist.
    let (code, err) = gate_refuses(realm, &[("KRB5_KTNAME", &missing_env)], &[]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
    assert!(err.contains("ktadd") && err.contains("--keytab"), "{err}");
    // An explicit --keytab that does not exist.
    let (code, err) = gate_refuses(realm, &[], &["--keytab", missing.to_str().unwrap()]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

#[test]
fn gate_with_an_empty_keytab_refuses_to_start() {
    let realm = realm();
    let empty = realm.dir().join("empty.keytab");
    std::fs::write(&empty, b"").unwrap();
    let (code, err) = gate_refuses(realm, &[], &["--keytab", empty.to_str().unwrap()]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&empty.display().to_string()), "{err}");
    assert!(err.contains("holds no keys"), "{err}");
}

#[test]
fn gate_with_a_keytab_for_another_principal_refuses_to_start() {
    let realm = realm();
    let other = realm.dir().join("other.keytab");
    if !other.exists() {
        realm.add_service("HTTP/other").unwrap();
        realm.export_keytab(&["HTTP/other"], &other).unwrap();
    }
    let (code, err) = gate_refuses(
        realm,
        &[],
        &[
            "--keytab",
            other.to_str().unwrap(),
            "--acceptor",
            "HTTP@localhost",
        ],
    );
    assert_ne!(code, 0, "{err}");
    assert!(err.contains(&other.display().to_string()), "{err}");
    assert!(err.contains("HTTP/localhost"), "{err}");
    // The same keytab serves when the acceptor is the principal it holds.
    let upstream = EchoUpstream::start();
    let mut cmd = kerbside(realm);
    cmd.args(["gate", "--listen", "127.0.0.1:0", "--upstream"])
        .arg(upstream.url())
        .args([
            "--keytab",
            other.to_str().unwrap(),
            "--acceptor",
            "HTTP@other",
        ]);
    let gate = common::GateProcess::from_command(cmd);
    drop(gate);
}

/// curl for plain-HTTP gates (`--auth none`): no proxy, no CA overrides.
fn plain_curl() -> Command {
    let mut cmd = Command::new("curl");
    clean_env(&mut cmd);
    cmd.args(["--silent", "--show-error", "--noproxy", "*"]);
    cmd
}

/// A gate with `--auth none` in front of `upstream`, with metrics, and `extra` flags.
fn open_gate(upstream: &str, extra: &[&str]) -> GateProcess {
    let mut cmd = kerbside(realm());
    cmd.args(["gate", "--auth", "none", "--listen", "127.0.0.1:0"])
        .args(["--metrics", "127.0.0.1:0", "--upstream", upstream])
        .args(extra);
    GateProcess::from_command(cmd)
}

/// An upstream that accepts connections and never answers (nor reads).
fn stalled_upstream() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    url
}

/// Runs curl with `-w` for the status; gives (status, body, seconds taken).
fn curl_status(cmd: &mut Command) -> (String, String, f64) {
    let started = Instant::now();
    let out = cmd.args(["-w", "\nstatus=%{http_code}"]).output().unwrap();
    let took = started.elapsed().as_secs_f64();
    let (stdout, stderr) = text(&out);
    let (body, status) = stdout
        .rsplit_once("\nstatus=")
        .unwrap_or_else(|| panic!("{stderr}"));
    (status.to_owned(), body.to_owned(), took)
}

#[test]
fn a_stalled_upstream_gets_the_client_a_504_and_is_counted() {
    let upstream = stalled_upstream();
    let gate = open_gate(&upstream, &["--upstream-timeout", "2"]);
    let (status, body, took) = curl_status(plain_curl().args(["-m", "30", &gate.url("/x")]));
    assert_eq!(status, "504", "{body}\n{}", gate.log());
    assert!(body.contains("did not answer in time"), "{body}");
    // Bounded by the timeout (2 s), with slack for a loaded machine; never curl's 30.
    assert!((1.5..20.0).contains(&took), "took {took} s");
    assert!(
        gate.wait_for_log(|l| l.contains("upstream-timeout") && l.contains("504")),
        "{}",
        gate.log()
    );
    let metrics = gate.metrics();
    assert_eq!(
        metric(&metrics, "kerbside_gate_upstream_timeouts_total"),
        1.0,
        "{metrics}"
    );
    // A refused connection is a 502, counted apart.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let gate = open_gate(&closed, &[]);
    let (status, body, _) = curl_status(plain_curl().args(["-m", "30", &gate.url("/")]));
    assert_eq!(status, "502", "{body}");
    assert!(body.contains("Bad gateway"), "{body}");
    assert_eq!(
        metric(&gate.metrics(), "kerbside_gate_upstream_failures_total"),
        1.0
    );
}

#[test]
fn a_mount_timeout_overrides_the_gates() {
    // An upstream that answers after 3 s: too slow for the gate's 1 s, in time for the
    // patient mount's 30 s.
    let upstream = HeadEchoUpstream::start(Duration::from_secs(3));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "auth = \"none\"\nupstream-timeout = 1\n\
             [[mount]]\npath = \"/patient\"\nupstream = \"{0}\"\nupstream-timeout = 30\n\
             [[mount]]\npath = \"/\"\nupstream = \"{0}\"\n",
            upstream.url()
        ),
    )
    .unwrap();
    let mut cmd = kerbside(realm());
    cmd.args(["gate", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config);
    let gate = GateProcess::from_command(cmd);
    let (status, body, _) = curl_status(plain_curl().args(["-m", "60", &gate.url("/hasty")]));
    assert_eq!(status, "504", "{body}\n{}", gate.log());
    let (status, body, _) = curl_status(plain_curl().args(["-m", "60", &gate.url("/patient/x")]));
    assert_eq!(status, "200", "{body}\n{}", gate.log());
    assert!(body.starts_with("GET /patient/x "), "{body}");
}

/// Reads from `stream` until a status line arrives or `within` passes; `None` if
/// nothing came.
fn read_status(stream: &mut TcpStream, within: Duration) -> Option<String> {
    stream.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while !got.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    (!got.is_empty()).then(|| {
        String::from_utf8_lossy(&got)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    })
}

#[test]
fn connections_beyond_max_connections_wait_until_one_closes() {
    let upstream = EchoUpstream::start();
    let gate = open_gate(&upstream.url(), &["--max-connections", "2"]);
    let addr = gate.url.strip_prefix("http://").unwrap().to_owned();
    let first = TcpStream::connect(&addr).unwrap();
    let mut second = TcpStream::connect(&addr).unwrap();
    // The second is served (so both are accepted and hold their places).
    second
        .write_all(b"GET /second HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let status = read_status(&mut second, Duration::from_secs(10));
    assert!(
        status.as_deref().unwrap_or("").contains(" 200 "),
        "{status:?}"
    );
    // The third connects (the kernel's backlog) but is not served while two are open.
    let mut third = TcpStream::connect(&addr).unwrap();
    third
        .write_all(b"GET /third HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    assert_eq!(read_status(&mut third, Duration::from_secs(1)), None);
    assert!(
        gate.wait_for_log(|l| l.contains("reached max-connections")),
        "{}",
        gate.log()
    );
    drop(first);
    let status = read_status(&mut third, Duration::from_secs(10));
    assert!(
        status.as_deref().unwrap_or("").contains(" 200 "),
        "{status:?}"
    );
    assert_eq!(
        gate.log().matches("reached max-connections").count(),
        1,
        "{}",
        gate.log()
    );
}

/// User and system CPU time of a process so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which is in parentheses): utime is the 14th
    // field of the line, stime the 15th.
    let rest = stat.rsplit_once(')').unwrap().1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn out_of_file_descriptors_the_gate_backs_off_and_recovers() {
    let upstream = EchoUpstream::start();
    let mut cmd = Command::new("prlimit");
    clean_env(&mut cmd);
    cmd.envs(realm().env())
        .arg("--nofile=40:40")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_kerbside"))
        .args(["gate", "--auth", "none", "--listen", "127.0.0.1:0"])
        .args(["--metrics", "127.0.0.1:0", "--upstream", &upstream.url()]);
    let gate = GateProcess::from_command(cmd);
    let addr = gate.url.strip_prefix("http://").unwrap().to_owned();
    let metrics_url = gate.metrics_url();
    let metrics_addr = metrics_url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();
    // Idle connections until the gate has no descriptors left to accept with.
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(TcpStream::connect(&addr).unwrap());
        if gate.log().contains("cannot accept a connection") {
            break;
        }
    }
    assert!(
        gate.wait_for_log(
            |l| l.contains("cannot accept a connection") && l.contains("out of file descriptors")
        ),
        "{}",
        gate.log()
    );
    // The metrics listener, out of descriptors too, backs off the same way.
    held.push(TcpStream::connect(&metrics_addr).unwrap());
    assert!(
        gate.wait_for_log(|l| l
            .lines()
            .any(|line| line.contains("cannot accept") && line.contains("metrics"))),
        "{}",
        gate.log()
    );
    // Still out of descriptors: no busy loop (this is a check for spinning, not for
    // speed: a spinning gate burns a whole core, about 100 ticks a second).
    let before = cpu_ticks(gate.pid());
    std::thread::sleep(Duration::from_secs(2));
    let spent = cpu_ticks(gate.pid()) - before;
    assert!(
        spent < 60,
        "the gate spent {spent} ticks in 2 s while out of descriptors"
    );
    // Once the connections close, it serves again.
    drop(held);
    let (status, body, _) = curl_status(plain_curl().args(["-m", "30", &gate.url("/again")]));
    assert_eq!(status, "200", "{body}\n{}", gate.log());
}

/// Files under `dir` the process `pid` holds open (spooled bodies are unnamed
/// temporary files there: they show as `dir/#123 (deleted)`).
fn open_files_under(pid: u32, dir: &Path) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

#[test]
fn request_bodies_over_max_body_get_413_before_they_cost_anything() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let runs = dir.path().join("runs.log");
    let cgi = script(
        dir.path(),
        "record.cgi",
        &format!(
            "#!/bin/sh\necho \"$REQUEST_METHOD $CONTENT_LENGTH\" >> {}\nn=$(wc -c)\nprintf 'Content-Type: text/plain\\n\\nread %s\\n' \"$n\"\n",
            runs.display()
        ),
    );
    let recording = RecordingUpstream::start();
    let echo = EchoUpstream::start();
    let stalled = stalled_upstream();
    let config = dir.path().join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "auth = \"none\"\nmax-body = \"100K\"\n\
             [[mount]]\npath = \"/cgi\"\ncgi = \"{}\"\n\
             [[mount]]\npath = \"/echo\"\nupstream = \"{}\"\n\
             [[mount]]\npath = \"/stall\"\nupstream = \"{stalled}\"\n\
             [[mount]]\npath = \"/big\"\nupstream = \"{}\"\nmax-body = \"1M\"\n\
             [[mount]]\npath = \"/\"\nupstream = \"{}\"\n",
            cgi.display(),
            echo.url(),
            echo.url(),
            recording.url()
        ),
    )
    .unwrap();
    let mut cmd = kerbside(realm());
    cmd.env("TMPDIR", &spool)
        .args([
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(&config);
    let gate = GateProcess::from_command(cmd);
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![b'x'; 300 * 1024]).unwrap();
    let small = dir.path().join("small.bin");
    std::fs::write(&small, vec![b'y'; 50 * 1024]).unwrap();
    let upload = |url: &str, file: &Path, chunked: bool| {
        let mut cmd = plain_curl();
        cmd.args(["-m", "30", "-H", "Expect:", "--data-binary"])
            .arg(format!("@{}", file.display()));
        if chunked {
            cmd.args(["-H", "Transfer-Encoding: chunked"]);
        }
        curl_status(cmd.arg(url))
    };

    // A Content-Length over the limit: 413 from the gate; neither the CGI program
    // nor the upstream hears of it.
    let (status, body, _) = upload(&gate.url("/cgi/x"), &big, false);
    assert_eq!(status, "413", "{body}\n{}", gate.log());
    assert!(body.contains("too large"), "{body}");
    let (status, body, _) = upload(&gate.url("/up"), &big, false);
    assert_eq!(status, "413", "{body}\n{}", gate.log());
    assert!(!runs.exists(), "the CGI program ran");
    assert!(
        recording.requests().is_empty(),
        "{:?}",
        recording.requests()
    );

    // Without a length (chunked): cut at the limit, 413, and nothing stays spooled.
    let (status, body, _) = upload(&gate.url("/cgi/x"), &big, true);
    assert_eq!(status, "413", "{body}\n{}", gate.log());
    assert!(!runs.exists(), "the CGI program ran");
    let (status, body, _) = upload(&gate.url("/stall"), &big, true);
    assert_eq!(status, "413", "{body}\n{}", gate.log());
    assert_eq!(open_files_under(gate.pid(), &spool), 0);
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "spool files left behind"
    );
    assert_eq!(
        metric(
            &gate.metrics(),
            "kerbside_gate_request_bodies_too_large_total"
        ),
        4.0
    );

    // Under the limit (and under a mount's own larger limit), bodies pass, chunked or not.
    for chunked in [false, true] {
        let (status, body, _) = upload(&gate.url("/cgi/x"), &small, chunked);
        assert_eq!(status, "200", "{body}\n{}", gate.log());
        assert_eq!(body.trim(), format!("read {}", 50 * 1024));
        let (status, body, _) = upload(&gate.url("/echo"), &small, chunked);
        assert_eq!(status, "200", "{body}\n{}", gate.log());
        assert!(body.contains(&"y".repeat(50 * 1024)), "{body}");
        let (status, body, _) = upload(&gate.url("/big"), &big, chunked);
        assert_eq!(status, "200", "{body}\n{}", gate.log());
        assert!(body.contains(&"x".repeat(300 * 1024)));
    }
}

#[test]
fn a_cgi_request_waiting_for_its_slot_spools_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir(&spool).unwrap();
    let runs = dir.path().join("runs.log");
    let release = dir.path().join("release");
    let cgi = script(
        dir.path(),
        "slow.cgi",
        &format!(
            "#!/bin/sh\nn=$(wc -c)\necho \"start $n\" >> {runs}\nwhile [ ! -e {release} ]; do sleep 0.05; done\nprintf 'Content-Type: text/plain\\n\\nread %s\\n' \"$n\"\n",
            runs = runs.display(),
            release = release.display()
        ),
    );
    let config = dir.path().join("gate.toml");
    std::fs::write(
        &config,
        format!(
            "auth = \"none\"\n[[mount]]\npath = \"/\"\ncgi = \"{}\"\nmax-concurrent = 1\n",
            cgi.display()
        ),
    )
    .unwrap();
    let mut cmd = kerbside(realm());
    cmd.env("TMPDIR", &spool)
        .args([
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ])
        .arg("--config")
        .arg(&config);
    let gate = GateProcess::from_command(cmd);
    let body = dir.path().join("body.bin");
    std::fs::write(&body, vec![b'z'; 200 * 1024]).unwrap();
    let upload = || {
        let mut cmd = plain_curl();
        cmd.args([
            "-m",
            "60",
            "-H",
            "Expect:",
            "-H",
            "Transfer-Encoding: chunked",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .args(["-w", "\nstatus=%{http_code}"])
        .arg(gate.url("/"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let first = upload();
    // The first request has spooled its body and its program runs (holding the slot).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !std::fs::read_to_string(&runs).is_ok_and(|r| r.contains("start")) {
        assert!(
            Instant::now() < deadline,
            "the first upload never ran: {}",
            gate.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = upload();
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(&gate.metrics(), "kerbside_gate_active_connections") < 2.0 {
        assert!(
            Instant::now() < deadline,
            "the second upload never connected"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // While the first runs, the second's body is not read: no spool file appears.
    let window = Instant::now() + Duration::from_secs(2);
    while Instant::now() < window {
        assert_eq!(
            open_files_under(gate.pid(), &spool),
            0,
            "the waiting request spooled its body"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&release, b"").unwrap();
    for child in [first, second] {
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(
            stdout.contains("status=200"),
            "{stdout}\n{stderr}\n{}",
            gate.log()
        );
        assert!(stdout.contains(&format!("read {}", 200 * 1024)), "{stdout}");
    }
    let runs = std::fs::read_to_string(&runs).unwrap();
    assert_eq!(runs.lines().count(), 2, "{runs}");
}

#[test]
fn oversized_headers_get_431_over_http11_and_over_http2_when_curl_sends_them() {
    let realm = realm();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let upstream = EchoUpstream::start();
    let mut cmd = kerbside(realm);
    // h2's frame log shows whether a request's HEADERS ever reached the gate.
    cmd.env("RUST_LOG", "info,h2::codec::framed_read=debug")
        .args(["gate", "--listen", "127.0.0.1:0", "--keytab"])
        .arg(realm.keytab())
        .args(["--upstream", &upstream.url(), "--tls-cert"])
        .arg(cert.cert_pem_path())
        .arg("--tls-key")
        .arg(cert.key_pem_path());
    let gate = GateProcess::from_command(cmd);
    let header_file = |name: &str, lines: Vec<String>| {
        let path = realm.dir().join(format!("headers-{name}"));
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        format!("@{}", path.display())
    };
    let hundred = header_file("100k", vec![format!("X-Big: {}", "a".repeat(100 * 1024))]);
    // 63 fields of 1000 bytes: over the gate's 64 KiB as HTTP/2 counts a header list
    // (name + value + 32 per field), under the 64 KiB block curl's nghttp2 will send.
    let just_over = header_file(
        "63x1000",
        (0..63)
            .map(|i| format!("X-H{i:02}: {}", "a".repeat(1000)))
            .collect(),
    );
    let twenty = header_file("20k", vec![format!("X-Big: {}", "a".repeat(20 * 1024))]);
    // An Active Directory user's ticket with a large PAC: about 15 KB of token.
    let ticket = header_file(
        "15k-token",
        vec![format!(
            "Authorization: Negotiate {}",
            "YII".repeat(5 * 1024)
        )],
    );
    let fetch = |version: &str, header: &str, negotiate: bool| {
        let mut cmd = curl(realm, ca.ca_pem_path());
        cmd.args([version, "-v", "-o", "/dev/null", "-H", header])
            .args(["-w", "status=%{http_code} version=%{http_version}"]);
        if negotiate {
            cmd.args(["--negotiate", "-u", ":"]);
        }
        let out = cmd.arg(gate.url("/big")).output().unwrap();
        let (stdout, stderr) = text(&out);
        (out.status.code(), stdout, stderr)
    };
    let received_headers = || gate.log().matches("received frame=Headers").count();

    for version in ["--http1.1", "--http2"] {
        let shown = if version == "--http2" { "2" } else { "1.1" };
        let (code, status, err) = fetch(version, &twenty, true);
        assert_eq!(
            (code, status),
            (Some(0), format!("status=200 version={shown}")),
            "{version}: {err}\n{}",
            gate.log()
        );
        // The big token is read (and refused as a token), not refused as too large.
        let (code, status, err) = fetch(version, &ticket, false);
        assert_eq!(code, Some(0), "{version}: {err}");
        assert!(
            status.starts_with("status=400 ") || status.starts_with("status=401 "),
            "{version}: {status}"
        );
    }
    let (code, status, err) = fetch("--http2", &just_over, false);
    assert_eq!(
        (code, status.as_str()),
        (Some(0), "status=431 version=2"),
        "{err}\n{}",
        gate.log()
    );
    let (code, status, err) = fetch("--http1.1", &hundred, false);
    assert_eq!(
        (code, status.as_str()),
        (Some(0), "status=431 version=1.1"),
        "{err}"
    );
    // Over HTTP/2 curl (nghttp2 keeps header blocks it sends under 64 KiB) does not
    // send 100 KB of headers at all: it resets the stream itself (REFUSED_STREAM),
    // retries, and reports a dead connection. No HEADERS frame reaches the gate, so
    // no server can answer it; curl --http1.1 shows the 431.
    let before = received_headers();
    let (code, status, err) = fetch("--http2", &hundred, false);
    assert_eq!(
        (code, status.as_str()),
        (Some(56), "status=000 version=0"),
        "{err}"
    );
    assert!(err.contains("REFUSED_STREAM"), "{err}");
    assert_eq!(received_headers(), before, "{}", gate.log());

    // A client that does send 100 KB of headers over HTTP/2 (httpx with h2) gets the
    // 431, as curl --http1.1 does.
    let python = kerbside_testkit::require_peers_python();
    let script = "import httpx, sys\n\
        c = httpx.Client(http2=True, verify=sys.argv[2])\n\
        r = c.get(sys.argv[1], headers={'x-big': 'a' * 100 * 1024})\n\
        print(r.http_version, r.status_code)\n";
    let out = Command::new(python)
        .args(["-c", script, &gate.url("/big")])
        .arg(ca.ca_pem_path())
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(stdout.trim(), "HTTP/2 431", "{stderr}\n{}", gate.log());
}

#[test]
fn an_upstream_that_stalls_in_the_middle_of_its_answer_is_cut_off() {
    // Answers the head and half the body it announced, then holds the connection.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfifty bytes of a hundred.........................");
            held.push(stream);
        }
    });
    let gate = open_gate(&upstream, &["--upstream-timeout", "2"]);
    let started = Instant::now();
    let out = plain_curl()
        .args(["-m", "30", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(gate.url("/"))
        .output()
        .unwrap();
    let took = started.elapsed().as_secs_f64();
    let (status, err) = text(&out);
    // The head came through; the body was cut: curl fails, but not at its own 30 s.
    assert_eq!(status, "200", "{err}");
    assert!(!out.status.success(), "{err}");
    assert_ne!(out.status.code(), Some(28), "curl timed out itself: {err}");
    assert!(took < 20.0, "took {took} s");
    assert!(
        gate.wait_for_log(|l| l.contains("stopped sending its response")),
        "{}",
        gate.log()
    );
    assert_eq!(
        metric(&gate.metrics(), "kerbside_gate_upstream_timeouts_total"),
        1.0
    );
}

#[test]
fn a_password_only_gate_starts_without_a_keytab_and_says_so() {
    let realm = realm();
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("digest.users");
    common::with_password_on_stdin(
        realm,
        &[
            "digest-passwd".as_ref(),
            users.as_os_str(),
            "carol".as_ref(),
            "Gate".as_ref(),
        ],
        "carol-password",
    );
    let missing = format!("FILE:{}", dir.path().join("no.keytab").display());
    let upstream = EchoUpstream::start();
    let mut cmd = kerbside(realm);
    cmd.env("KRB5_KTNAME", &missing)
        .args([
            "gate",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.url(),
        ])
        .arg("--digest-users")
        .arg(&users)
        .args(["--digest-realm", "Gate"]);
    let gate = GateProcess::from_command(cmd);
    assert!(
        gate.wait_for_log(|l| l.contains("Kerberos (Negotiate) is off")),
        "{}",
        gate.log()
    );
    // Digest works; Negotiate is not offered.
    let out = plain_curl()
        .args(["--digest", "-u", "carol:carol-password", "-D", "-"])
        .arg(gate.url("/"))
        .output()
        .unwrap();
    let (stdout, err) = text(&out);
    assert!(
        stdout.contains("users=carol"),
        "{stdout}\n{err}\n{}",
        gate.log()
    );
    assert!(!stdout.contains("Negotiate"), "{stdout}");
}

#[test]
fn a_client_that_stops_sending_its_body_gets_408_not_a_hang() {
    let upstream = EchoUpstream::start();
    let gate = open_gate(&upstream.url(), &["--upstream-timeout", "2"]);
    let addr = gate.url.strip_prefix("http://").unwrap().to_owned();
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\nten bytes.",
        )
        .unwrap();
    let status = read_status(&mut stream, Duration::from_secs(20));
    assert!(
        status.as_deref().unwrap_or("").contains(" 408 "),
        "{status:?}\n{}",
        gate.log()
    );
    // The client's slowness is not counted against the upstream.
    assert_eq!(
        metric(&gate.metrics(), "kerbside_gate_upstream_timeouts_total"),
        0.0
    );
}

#[test]
fn headers_an_upstream_names_in_connection_stay_on_its_hop() {
    // An upstream whose answer names two of its headers as hop-by-hop.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nConnection: x-hop-one, X-Hop-Two\r\nX-Hop-One: 1\r\n\
                  X-Hop-Two: 2\r\nX-End-To-End: 3\r\nContent-Length: 2\r\n\r\nok",
            );
        }
    });
    let gate = open_gate(&upstream, &[]);
    let out = plain_curl()
        .args(["-m", "30", "-D", "-", "-o", "/dev/null"])
        .arg(gate.url("/"))
        .output()
        .unwrap();
    let (head, err) = text(&out);
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}{err}");
    assert!(head.contains("x-end-to-end: 3"), "{head}");
    assert!(!head.contains("x-hop-one"), "{head}");
    assert!(!head.contains("x-hop-two"), "{head}");
}

/// Reads one HTTP/1.1 response (head and a `Content-Length` body) from `stream`; gives
/// its head, lower-cased, or `None` if the connection ended first.
fn read_response(stream: &mut TcpStream) -> Option<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(head)
}

/// A request the gate refuses itself (401) comes with a body nobody reads. The gate
/// reads and drops a small one, even when it arrives after the 401 is decided, so the
/// client's next leg can come on the same connection (as Apache does); a large body, or
/// one the client will send only after `100 Continue`, gets `Connection: close` on the
/// 401, so no client sends its next leg into a connection the gate is closing.
#[test]
fn a_refused_requests_body_is_read_so_the_connection_can_carry_the_next_leg() {
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(realm(), None, &upstream.url(), &["--auth", "connection"]);
    let addr = gate.url.strip_prefix("http://").unwrap().to_owned();

    // The head first; the body 300 ms later, long after the gate decided on its 401.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 40000\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    stream.write_all(&[b'k'; 40000]).unwrap();
    let first = read_response(&mut stream).unwrap();
    assert!(first.starts_with("http/1.1 401"), "{first}");
    assert!(!first.contains("connection: close"), "{first}");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let second = read_response(&mut stream);
    assert!(
        second
            .as_deref()
            .is_some_and(|h| h.starts_with("http/1.1 401")),
        "the connection did not carry a second request: {second:?}\n{}",
        gate.log()
    );

    // Over 1 MiB: not read, and the 401 says the connection ends.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10000000\r\n\r\n")
        .unwrap();
    let big = read_response(&mut stream).unwrap();
    assert!(
        big.starts_with("http/1.1 401") && big.contains("connection: close"),
        "{big}"
    );

    // Expect: 100-continue: the body is not asked for.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .write_all(
            b"POST /upload HTTP/1.1\r\nHost: localhost\r\nContent-Length: 10\r\n\
              Expect: 100-continue\r\n\r\n",
        )
        .unwrap();
    let expecting = read_response(&mut stream).unwrap();
    assert!(
        expecting.starts_with("http/1.1 401") && expecting.contains("connection: close"),
        "{expecting}"
    );
}
