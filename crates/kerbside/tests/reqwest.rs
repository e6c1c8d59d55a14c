//! kerbside-reqwest against the gate run as a process (TLS with the test CA, a
//! token on every request): alice gets in, the upstream sees her, a body is sent
//! again after the 401, and the second request to the origin carries its token
//! from the start, which the gate's own metrics count.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{metric, EchoUpstream, GateProcess};
use kerbside_reqwest::{Mutual, MutualOutcome, NegotiateMiddleware, NegotiateOutcome};
use kerbside_testkit::{rustls_client_config, TestCa, TestRealm};
use reqwest_middleware::ClientWithMiddleware;

/// reqwest (rustls with ring) trusting only the test CA, with the middleware.
fn client(ca: &TestCa, middleware: NegotiateMiddleware) -> ClientWithMiddleware {
    let inner = reqwest::Client::builder()
        .tls_backend_preconfigured(rustls_client_config(Some(ca)))
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    reqwest_middleware::ClientBuilder::new(inner)
        .with(middleware)
        .build()
}

#[tokio::test]
async fn the_gate_lets_alice_in_and_her_second_request_skips_the_401() {
    let realm = TestRealm::start().unwrap();
    let ca = TestCa::new();
    let upstream = EchoUpstream::start();
    let gate = GateProcess::start(
        &realm,
        Some(&ca.issue(&[])),
        &upstream.url(),
        &["--metrics", "127.0.0.1:0"],
    );
    let _env = realm.enter();
    let middleware = NegotiateMiddleware::builder()
        .mutual(Mutual::Required)
        .build()
        .unwrap();
    let client = client(&ca, middleware);

    let mut outcomes = Vec::new();
    for body in ["first", "second"] {
        let response = client
            .post(gate.url("/upload"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", gate.log());
        outcomes.push(
            response
                .extensions()
                .get::<NegotiateOutcome>()
                .cloned()
                .unwrap(),
        );
        let echoed = response.text().await.unwrap();
        assert!(
            echoed.contains("users=alice@EXAMPLE.TEST\n"),
            "the upstream saw: {echoed}"
        );
        // The body went again with the token after the first 401.
        assert!(echoed.contains(&format!("body={body}\n")), "{echoed}");
        assert!(!echoed.contains("LEAKED-AUTHORIZATION"), "{echoed}");
    }
    assert!(outcomes.iter().all(|o| o.mutual == MutualOutcome::Verified));
    assert_eq!(
        outcomes.iter().map(|o| o.preemptive).collect::<Vec<_>>(),
        [false, true]
    );
    let m = gate.metrics();
    assert_eq!(
        metric(&m, r#"kerbside_gate_handshakes_total{result="ok"}"#),
        2.0,
        "{m}"
    );
    // One 401 for the two requests: the second carried its token unasked.
    assert_eq!(
        metric(&m, r#"kerbside_gate_responses_total{class="4xx"}"#),
        1.0,
        "{m}"
    );
}
