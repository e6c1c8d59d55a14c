//! The client against a real Apache + mod_auth_gssapi in its three set-ups (a token
//! on every request, `GssapiConnectionBound`, `GssapiUseSessions`), counting the
//! connections, 401s and tokens each costs in Apache's own access log; and a
//! several-MiB POST through a handshake to a CGI that hashes what it received.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use http_body_util::BodyExt;
use kerbside_client::{
    AuthSettings, Client, ClientConfig, Event, Outcome, RequestBody, TlsSettings,
};
use kerbside_proto::scheme::negotiate::client::MutualOutcome;
use kerbside_proto::{SchemeKind, SchemePolicy};
use kerbside_testkit::{Apache, ApacheOptions, TestCa, TestRealm, PRIVATE_BODY};

fn client(ca: &TestCa) -> Client {
    Client::new(ClientConfig {
        tls: TlsSettings {
            ca_file: Some(ca.ca_pem_path().to_owned()),
            insecure: false,
        },
        auth: AuthSettings {
            schemes: SchemePolicy::only(&[SchemeKind::Negotiate]),
            ..AuthSettings::default()
        },
        ..ClientConfig::default()
    })
    .unwrap()
}

async fn get(client: &Client, url: &str) -> Outcome {
    let request = http::Request::get(url).body(RequestBody::empty()).unwrap();
    let response = client.send(request, &|_: &Event| {}).await.unwrap();
    assert_eq!(response.status(), 200);
    let outcome = response.extensions().get::<Outcome>().cloned().unwrap();
    assert_eq!(
        response.headers()["x-remote-user"],
        "alice@EXAMPLE.TEST",
        "identity"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, PRIVATE_BODY.as_bytes());
    outcome
}

struct Costs {
    connections: usize,
    challenges: usize,
    tokens: usize,
}

/// What Apache's access log says the requests cost, once it holds the lines of the
/// `successes` final `200`s the client received.
fn costs(apache: &Apache, successes: usize) -> Costs {
    let entries = apache.wait_access_entries(|entries| {
        entries.iter().filter(|e| e.status == 200).count() >= successes
    });
    Costs {
        connections: entries.iter().filter(|e| e.new_connection()).count(),
        challenges: entries.iter().filter(|e| e.status == 401).count(),
        tokens: entries
            .iter()
            .filter(|e| e.auth_scheme.as_deref() == Some("Negotiate"))
            .count(),
    }
}

async fn three_requests(opts: ApacheOptions) -> (Vec<Outcome>, Costs) {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let apache = Apache::start(&realm, &ca.issue(&[]), opts).unwrap();
    let _env = realm.enter();
    let client = client(&ca);
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(get(&client, &apache.url("/private/")).await);
    }
    (outcomes, costs(&apache, 3))
}

#[tokio::test]
async fn per_request_apache_costs_one_probe_then_tokens_go_first() {
    let (outcomes, costs) = three_requests(ApacheOptions::default()).await;
    let challenges: Vec<u32> = outcomes.iter().map(|o| o.challenges).collect();
    // First request: 401 then token. Second: the client tries the authenticated
    // connection without a token (401) and learns Apache wants one per request.
    // Third: the token goes first.
    assert_eq!(challenges, [1, 1, 0]);
    assert!(outcomes
        .iter()
        .all(|o| o.negotiate == Some(MutualOutcome::Verified)));
    assert_eq!(
        (costs.connections, costs.challenges, costs.tokens),
        (1, 2, 3)
    );
}

#[tokio::test]
async fn connection_bound_apache_is_asked_once() {
    let (outcomes, costs) = three_requests(ApacheOptions {
        connection_bound: true,
        ..ApacheOptions::default()
    })
    .await;
    let challenges: Vec<u32> = outcomes.iter().map(|o| o.challenges).collect();
    assert_eq!(challenges, [1, 0, 0]);
    assert_eq!(
        (costs.connections, costs.challenges, costs.tokens),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn connection_bound_apache_that_signals_persistent_auth() {
    let (outcomes, costs) = three_requests(ApacheOptions {
        connection_bound: true,
        persistent_auth: true,
        ..ApacheOptions::default()
    })
    .await;
    assert!(outcomes[1..].iter().all(|o| o.challenges == 0));
    assert_eq!(
        (costs.connections, costs.challenges, costs.tokens),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn session_cookie_apache_needs_one_token() {
    let (outcomes, costs) = three_requests(ApacheOptions {
        sessions: true,
        ..ApacheOptions::default()
    })
    .await;
    let challenges: Vec<u32> = outcomes.iter().map(|o| o.challenges).collect();
    assert_eq!(challenges, [1, 0, 0]);
    // The cookie carries the session: one token in all.
    assert_eq!(
        (costs.connections, costs.challenges, costs.tokens),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn a_large_post_reaches_apache_once_and_intact() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let apache = Apache::start(&realm, &ca.issue(&[]), ApacheOptions::default()).unwrap();
    let _env = realm.enter();
    let client = client(&ca);
    let size = 5 * 1024 * 1024 + 3;
    let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
    let digest = {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&data).unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8(out.stdout).unwrap()[..64].to_owned()
    };
    let request = http::Request::post(apache.url("/private/upload"))
        .body(RequestBody::from(Bytes::from(data)))
        .unwrap();
    let response = client.send(request, &|_: &Event| {}).await.unwrap();
    assert_eq!(response.status(), 200, "{}", apache.error_log());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(String::from_utf8_lossy(&body), format!("{digest} {size}\n"));
    let costs = costs(&apache, 1);
    assert_eq!(costs.challenges, 1);
    let received: u64 = apache.access_entries().iter().map(|e| e.bytes_in).sum();
    assert!(
        received < size as u64 + 64 * 1024,
        "the body must cross the wire once: Apache received {received} bytes for a {size}-byte body"
    );
}
