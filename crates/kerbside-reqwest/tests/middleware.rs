//! The middleware against real peers: Apache + mod_auth_gssapi (HTTPS and plain
//! HTTP), and a small server with a real GSSAPI acceptor whose final token the test
//! forges. Each test holds the realm's environment guard (GSSAPI runs in-process).

#![allow(clippy::unwrap_used)]

mod support;

use kerbside_gssapi::{AcceptStep, InitiatorConfig, NegotiateInitiator};
use kerbside_proto::{Mechanism, Step};
use kerbside_reqwest::{
    ClientCredentials, Error, Mutual, MutualOutcome, NegotiateMiddleware, NegotiateOutcome,
};
use kerbside_testkit::{Apache, ApacheOptions, TestCa, PRIVATE_BODY};
use support::{client, realm, wait_for, FinalToken, NegotiateServer};

fn outcome(response: &reqwest::Response) -> NegotiateOutcome {
    response
        .extensions()
        .get::<NegotiateOutcome>()
        .cloned()
        .expect("the middleware records what it did")
}

#[tokio::test]
async fn apache_over_https_lets_alice_in_and_the_second_token_goes_first() {
    let realm = realm();
    let ca = TestCa::new();
    let apache = Apache::start(&realm, &ca.issue(&[]), ApacheOptions::default()).unwrap();
    let _env = realm.enter();
    let middleware = NegotiateMiddleware::builder()
        .mutual(Mutual::Required)
        .build()
        .unwrap();
    let client = client(Some(&ca), middleware);
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let response = client.get(apache.url("/private/")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-remote-user"], "alice@EXAMPLE.TEST");
        outcomes.push(outcome(&response));
        assert_eq!(response.text().await.unwrap(), PRIVATE_BODY);
    }
    assert!(outcomes.iter().all(|o| o.mutual == MutualOutcome::Verified));
    assert_eq!(outcomes[0].target, "HTTP@localhost");
    assert_eq!(
        outcomes.iter().map(|o| o.preemptive).collect::<Vec<_>>(),
        [false, true]
    );
    // Apache's own log: one 401, then two requests that carried a token.
    let entries = wait_for("three lines in Apache's access log", || {
        let e = apache.access_entries();
        (e.len() >= 3).then_some(e)
    });
    let seen: Vec<(u16, Option<&str>)> = entries
        .iter()
        .map(|e| (e.status, e.auth_scheme.as_deref()))
        .collect();
    assert_eq!(
        seen,
        [
            (401, None),
            (200, Some("Negotiate")),
            (200, Some("Negotiate"))
        ]
    );
}

#[tokio::test]
async fn plain_http_apache_gets_no_token_unless_its_host_is_allowed() {
    let realm = realm();
    let ca = TestCa::new();
    let opts = ApacheOptions {
        plain_http: true,
        ..ApacheOptions::default()
    };
    let apache = Apache::start(&realm, &ca.issue(&[]), opts).unwrap();
    let _env = realm.enter();
    let url = apache.plain_url("/private/");

    let refusing = client(None, NegotiateMiddleware::builder().build().unwrap());
    let err = refusing.get(&url).send().await.unwrap_err();
    let ours = Error::of(&err).expect("the middleware's error");
    assert!(ours.is_plain_http(), "{ours:?}");
    let text = err.to_string();
    assert!(
        text.contains("over plain HTTP") && text.contains("allow_http_auth(\"localhost\")"),
        "{text}"
    );
    let entries = wait_for("one line in Apache's access log", || {
        let e = apache.access_entries();
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (entries[0].status, entries[0].auth_scheme.as_deref()),
        (401, None)
    );

    let allowing = client(
        None,
        NegotiateMiddleware::builder()
            .allow_http_auth("localhost")
            .build()
            .unwrap(),
    );
    let response = allowing.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-remote-user"], "alice@EXAMPLE.TEST");
}

/// The final token of an exchange the server ran with someone else: well-formed,
/// from the right service, and useless for this client's context.
fn final_token_of_another_exchange(realm: &kerbside_testkit::TestRealm) -> Vec<u8> {
    let mut other = NegotiateInitiator::new(&InitiatorConfig::for_host("127.0.0.1")).unwrap();
    let Step::Continue(token) = other.step(None).unwrap() else {
        panic!("a first token")
    };
    match support::acceptor(realm).accept(&token).unwrap() {
        AcceptStep::Done {
            token: Some(final_token),
            ..
        } => final_token,
        step => panic!("the other exchange did not finish with a token: {step:?}"),
    }
}

fn allowing_plain(mutual: Mutual) -> NegotiateMiddleware {
    NegotiateMiddleware::builder()
        .mutual(mutual)
        .allow_http_auth("127.0.0.1")
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_forged_final_token_is_refused_unless_mutual_authentication_is_off() {
    let realm = realm();
    let _env = realm.enter();
    let forgeries = [
        ("garbage", b"not a token at all".to_vec()),
        (
            "another exchange's",
            final_token_of_another_exchange(&realm),
        ),
    ];
    for (what, forged) in forgeries {
        let server = NegotiateServer::start(&realm, FinalToken::Forged(forged));
        for mutual in [Mutual::Required, Mutual::Optional] {
            let err = client(None, allowing_plain(mutual))
                .get(server.url("/"))
                .send()
                .await
                .expect_err(what);
            let ours = Error::of(&err).expect("the middleware's error");
            assert!(ours.is_mutual_auth(), "{what}, {mutual}: {ours:?}");
            assert!(
                err.to_string()
                    .contains("final Negotiate token did not verify"),
                "{what}, {mutual}: {err}"
            );
        }
        let response = client(None, allowing_plain(Mutual::Off))
            .get(server.url("/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(outcome(&response).mutual, MutualOutcome::NotChecked);
        // Every attempt reached the server with a token after its 401.
        let tokens = server
            .authorizations()
            .iter()
            .filter(|a| a.as_deref().is_some_and(|a| a.starts_with("Negotiate ")))
            .count();
        assert_eq!(tokens, 3, "{what}");
    }
    // The honest server's own token verifies.
    let server = NegotiateServer::start(&realm, FinalToken::Genuine);
    let response = client(None, allowing_plain(Mutual::Required))
        .get(server.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(&response).mutual, MutualOutcome::Verified);
    assert_eq!(response.text().await.unwrap(), "alice@EXAMPLE.TEST");
}

#[tokio::test]
async fn a_missing_final_token_fails_only_when_mutual_authentication_is_required() {
    let realm = realm();
    let _env = realm.enter();
    let server = NegotiateServer::start(&realm, FinalToken::Missing);
    let err = client(None, allowing_plain(Mutual::Required))
        .get(server.url("/"))
        .send()
        .await
        .unwrap_err();
    assert!(
        Error::of(&err).is_some_and(Error::is_mutual_auth),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("sent no final Negotiate token")
            && err.to_string().contains("Mutual::Optional"),
        "{err}"
    );
    let response = client(None, allowing_plain(Mutual::Optional))
        .get(server.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(&response).mutual, MutualOutcome::NotSent);
}

#[tokio::test]
async fn without_a_ticket_the_error_says_run_kinit_and_no_token_is_sent() {
    let realm = realm();
    let _env = realm.enter();
    let server = NegotiateServer::start(&realm, FinalToken::Genuine);
    let nowhere = format!("FILE:{}/no-such-ccache", realm.dir().display());
    let middleware = NegotiateMiddleware::builder()
        .allow_http_auth("127.0.0.1")
        .credentials(ClientCredentials::Ccache(nowhere))
        .build()
        .unwrap();
    let err = client(None, middleware)
        .get(server.url("/"))
        .send()
        .await
        .unwrap_err();
    assert!(Error::of(&err).is_some_and(Error::is_no_ticket), "{err:?}");
    assert!(err.to_string().contains("run kinit"), "{err}");
    assert_eq!(server.authorizations(), [None]);
}

#[tokio::test]
async fn a_streamed_body_is_answered_only_when_the_token_goes_first() {
    let realm = realm();
    let _env = realm.enter();
    let server = NegotiateServer::start(&realm, FinalToken::Genuine);
    let stream = || reqwest::Body::wrap(http_body_util::Full::new(bytes::Bytes::from("data")));
    let err = client(None, allowing_plain(Mutual::Required))
        .post(server.url("/upload"))
        .body(stream())
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(Error::of(&err), Some(Error::BodyNotReplayable { .. })),
        "{err:?}"
    );
    assert!(err.to_string().contains("cannot be sent again"), "{err}");

    let preemptive = NegotiateMiddleware::builder()
        .mutual(Mutual::Required)
        .allow_http_auth("127.0.0.1")
        .preemptive("127.0.0.1")
        .build()
        .unwrap();
    let response = client(None, preemptive)
        .post(server.url("/upload"))
        .body(stream())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(outcome(&response).preemptive);
    let seen = server.authorizations();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen[1]
        .as_deref()
        .is_some_and(|a| a.starts_with("Negotiate ")));
}

#[tokio::test]
async fn an_explicit_service_name_is_asked_for_and_an_unknown_one_is_named() {
    let realm = realm();
    let _env = realm.enter();
    let server = NegotiateServer::start(&realm, FinalToken::Genuine);
    let named = |name: &str| {
        NegotiateMiddleware::builder()
            .mutual(Mutual::Required)
            .allow_http_auth("127.0.0.1")
            .spn("127.0.0.1", name)
            .build()
            .unwrap()
    };
    // The keytab also holds HTTP/localhost: a ticket for it is accepted here.
    let response = client(None, named("HTTP/localhost@EXAMPLE.TEST"))
        .get(server.url("/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(outcome(&response).target, "HTTP/localhost@EXAMPLE.TEST");

    let err = client(None, named("HTTP/nowhere.example.test@EXAMPLE.TEST"))
        .get(server.url("/"))
        .send()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("HTTP/nowhere.example.test@EXAMPLE.TEST")
            && text.contains("the KDC does not know the service principal"),
        "{text}"
    );
}
