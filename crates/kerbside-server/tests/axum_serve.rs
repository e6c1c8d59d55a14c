//! Connection mode and NTLM through a real `axum::serve` with
//! `into_make_service_with_connect_info::<PerConnection>()` on a loopback socket, logged
//! into by real peers: curl `--negotiate` against the test realm's KDC, curl `--ntlm`
//! and Python's requests-ntlm against a users file. Two requests on one connection
//! need one handshake (curl's `-v` shows one `Authorization` header, the layer's
//! counters one handshake and one reuse); a second connection is not logged in.
#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use axum::routing::get;
use axum::Router;
use kerbside_gssapi::{AcceptorConfig, NegotiateAcceptor};
use kerbside_proto::scheme::ntlm::crypto::nt_hash;
use kerbside_proto::scheme::ntlm::users::format_line;
use kerbside_server::metrics::GateMetrics;
use kerbside_server::passwords::NtlmSettings;
use kerbside_server::{AuthMode, Authenticated, ConnectionSupply, NegotiateLayer, PerConnection};
use kerbside_testkit::{require_peers_python, run_curl_env, CurlRun, TestRealm, ALICE};

async fn private(who: Authenticated) -> String {
    format!("hello {} {}\n", who.principal, who.scheme.name())
}

/// Serves `layer` in front of `/private` with `axum::serve` and axum's connect-info,
/// on a free loopback port, on a runtime of its own (it lives as long as the test
/// process).
fn serve(layer: NegotiateLayer) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new()
        .route("/private", get(private))
        .route_layer(layer);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<PerConnection>(),
            )
            .await
            .unwrap();
        });
    });
    addr
}

/// curl `args` (the URLs last), without the machine's proxy and CA settings, with
/// `env` added.
fn curl(args: &[&str], env: &[(&str, &OsStr)]) -> CurlRun {
    let run = run_curl_env(args, None, env)
        .unwrap_or_else(|e| panic!("cannot run curl (Debian package curl): {e}"));
    assert!(run.exit.success(), "curl {args:?}: {}", run.stderr);
    run
}

/// The status of a request on a fresh connection without credentials.
fn status_without_credentials(url: &str) -> u16 {
    curl(&[url], &[]).status
}

/// The value of one counter line of the layer's metrics.
fn counter(metrics: &GateMetrics, line_start: &str) -> u64 {
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The layer counted one handshake and one request that rode on its connection; a
/// new connection is not logged in.
fn one_login_then_a_stranger(metrics: &GateMetrics, url: &str) {
    let text = metrics.encode();
    assert_eq!(
        counter(metrics, "kerbside_gate_handshakes_total{result=\"ok\"} "),
        1,
        "{text}"
    );
    assert_eq!(
        counter(metrics, "kerbside_gate_connection_reuse_total "),
        1,
        "{text}"
    );
    assert_eq!(status_without_credentials(url), 401);
}

/// Request lines curl sent with this header (curl -v: `> Authorization: ...`).
fn sent(verbose: &str, header: &str) -> usize {
    verbose
        .lines()
        .filter(|l| {
            l.strip_prefix("> ")
                .is_some_and(|h| h.to_ascii_lowercase().starts_with(header))
        })
        .count()
}

#[test]
fn curl_negotiate_logs_in_once_per_connection_through_axum_serve() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let acceptor = NegotiateAcceptor::new(&AcceptorConfig {
        keytab: Some(realm.keytab().to_owned()),
        acceptor_name: None,
    })
    .unwrap();
    let metrics = GateMetrics::new();
    let layer = NegotiateLayer::builder()
        .acceptor(acceptor)
        .mode(AuthMode::Connection)
        .per_connection(ConnectionSupply::AxumConnectInfo)
        .metrics(metrics.clone())
        .build()
        .unwrap();
    let addr = serve(layer);
    let url = format!("http://{addr}/private");

    // Two URLs on one curl command line: one connection, reused.
    let env = realm.env();
    let env: Vec<(&str, &OsStr)> = env
        .iter()
        .filter_map(|(k, v)| Some((k.to_str()?, v.as_os_str())))
        .collect();
    let run = curl(&["-v", "--negotiate", "-u", ":", &url, &url], &env);
    // The first page in the body file, the second's status last.
    assert_eq!(
        run.body, "hello alice@EXAMPLE.TEST Negotiate\n",
        "{}",
        run.stderr
    );
    // curl sends its token at once (Negotiate is the only scheme it may use).
    assert_eq!(run.statuses(), [200, 200], "{:?}", run.responses);
    assert!(
        run.stderr.contains("Re-using existing connection"),
        "one connection: {}",
        run.stderr
    );
    // One token, on the first request; the second rode on the connection.
    assert_eq!(
        sent(&run.stderr, "authorization: negotiate"),
        1,
        "{}",
        run.stderr
    );
    assert!(
        run.responses[0]
            .to_ascii_lowercase()
            .contains("persistent-auth: true"),
        "{:?}",
        run.responses
    );
    one_login_then_a_stranger(&metrics, &url);
}

/// The layer's NTLM users file: alice, mode 600.
fn ntlm_layer(dir: &Path, metrics: &GateMetrics) -> NegotiateLayer {
    let path = dir.join("ntlm-users");
    let line = format_line(&ALICE.ntlm_name(), &nt_hash(ALICE.password)).unwrap();
    std::fs::write(&path, format!("{line}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    NegotiateLayer::builder()
        .ntlm(NtlmSettings::load(&path, false).unwrap())
        .mode(AuthMode::Connection)
        .per_connection(ConnectionSupply::AxumConnectInfo)
        .metrics(metrics.clone())
        .build()
        .unwrap()
}

#[test]
fn curl_ntlm_logs_in_once_per_connection_through_axum_serve() {
    let dir = tempfile::tempdir().unwrap();
    let metrics = GateMetrics::new();
    let addr = serve(ntlm_layer(dir.path(), &metrics));
    let url = format!("http://{addr}/private");
    let login = format!("{}:{}", ALICE.ntlm_name(), ALICE.password);

    let run = curl(&["-v", "--ntlm", "-u", &login, &url, &url], &[]);
    assert_eq!(run.body, "hello EXAMPLE\\alice NTLM\n", "{}", run.stderr);
    assert_eq!(run.statuses(), [401, 200, 200], "{:?}", run.responses);
    assert!(
        run.stderr.contains("Re-using existing connection"),
        "{}",
        run.stderr
    );
    // NEGOTIATE and AUTHENTICATE on the first request's legs, nothing on the second.
    assert_eq!(
        sent(&run.stderr, "authorization: ntlm"),
        2,
        "{}",
        run.stderr
    );
    one_login_then_a_stranger(&metrics, &url);
}

#[test]
fn requests_ntlm_logs_in_once_per_pooled_connection_through_axum_serve() {
    let python = require_peers_python();
    let dir = tempfile::tempdir().unwrap();
    let metrics = GateMetrics::new();
    let addr = serve(ntlm_layer(dir.path(), &metrics));
    let url = format!("http://{addr}/private");
    // One requests.Session: its pool keeps the connection; the second GET goes out
    // without credentials and needs none.
    let script = r#"
import sys, requests
from requests_ntlm import HttpNtlmAuth
url, user, password = sys.argv[1:4]
s = requests.Session()
s.trust_env = False
s.auth = HttpNtlmAuth(user, password)
for _ in range(2):
    r = s.get(url, timeout=10)
    sent = r.request.headers.get("Authorization", "-").split(" ")[0]
    print(r.status_code, len(r.history), sent, r.text.strip())
"#;
    let mut cmd = Command::new(&python);
    cmd.args(["-c", script, &url, &ALICE.ntlm_name(), ALICE.password]);
    let out = cmd.output().unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    let lines: Vec<&str> = out.lines().collect();
    // First: the bare 401, the CHALLENGE, then 200 with the AUTHENTICATE; second:
    // straight through, nothing sent.
    assert_eq!(
        lines,
        [
            "200 2 NTLM hello EXAMPLE\\alice NTLM",
            "200 0 - hello EXAMPLE\\alice NTLM"
        ],
        "{out}\n{err}"
    );
    one_login_then_a_stranger(&metrics, &url);
}
