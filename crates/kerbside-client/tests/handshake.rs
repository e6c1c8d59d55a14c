//! The client against purpose-built misbehaving servers, with a real KDC: a server
//! that closes the connection between legs (the failure this project started from),
//! one that answers 401 forever, one that forges its final token, and a good one
//! to count connections and 401s.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use kerbside_client::{
    AuthSettings, Client, ClientConfig, Error, Event, Outcome, Preemptive, RequestBody,
};
use kerbside_gssapi::{AcceptStep, AcceptorConfig, NegotiateAcceptor};
use kerbside_proto::{MutualAuth, PlainHttpAuth, SchemeKind, SchemePolicy};
use kerbside_testkit::TestRealm;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// What the test server does with one request.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    close: bool,
}

#[derive(Default)]
struct Counts {
    connections: AtomicU32,
    requests: AtomicU32,
    with_token: AtomicU32,
    body_bytes: AtomicU32,
}

/// A small HTTP/1.1 server whose behaviour is a function of (connection number,
/// request number on it, the token sent if any).
async fn serve<F>(handler: F) -> (u16, Arc<Counts>)
where
    F: Fn(u32, u32, Option<Vec<u8>>) -> Reply + Send + Sync + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let counts = Arc::new(Counts::default());
    let handler = Arc::new(handler);
    let c = counts.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let conn_no = c.connections.fetch_add(1, Ordering::SeqCst) + 1;
            let handler = handler.clone();
            let c = c.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut reader = BufReader::new(read);
                let mut req_no = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    req_no += 1;
                    c.requests.fetch_add(1, Ordering::SeqCst);
                    let (mut len, mut token, mut expect) = (0usize, None, false);
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).await.unwrap();
                        let h = h.trim_end();
                        if h.is_empty() {
                            break;
                        }
                        let (n, v) = h.split_once(':').unwrap();
                        match n.trim().to_ascii_lowercase().as_str() {
                            "content-length" => len = v.trim().parse().unwrap(),
                            "expect" => expect = true,
                            "authorization" => {
                                // Other schemes count as no token.
                                if let Some(b64) = v.trim().strip_prefix("Negotiate ") {
                                    token = Some(
                                        base64::engine::general_purpose::STANDARD
                                            .decode(b64)
                                            .unwrap(),
                                    );
                                }
                            }
                            _ => {}
                        }
                    }
                    if token.is_some() {
                        c.with_token.fetch_add(1, Ordering::SeqCst);
                    }
                    let reply = handler(conn_no, req_no, token);
                    let read_body = !(expect && reply.status == 401);
                    if expect && read_body {
                        write
                            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                            .await
                            .unwrap();
                    }
                    if read_body {
                        let mut body = vec![0; len];
                        reader.read_exact(&mut body).await.unwrap();
                        c.body_bytes.fetch_add(len as u32, Ordering::SeqCst);
                    }
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\ncontent-length: {}\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    for (n, v) in &reply.headers {
                        head.push_str(&format!("{n}: {v}\r\n"));
                    }
                    let close = reply.close || !read_body;
                    if close {
                        head.push_str("connection: close\r\n");
                    }
                    head.push_str("\r\n");
                    head.push_str(&reply.body);
                    if write.write_all(head.as_bytes()).await.is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    (port, counts)
}

fn challenge() -> Reply {
    Reply {
        status: 401,
        headers: vec![("www-authenticate".into(), "Negotiate".into())],
        body: "who are you?".into(),
        close: false,
    }
}

/// Accepts a token with the realm's keytab and answers 200 with the final token.
fn accept(acceptor: &NegotiateAcceptor, token: &[u8], tamper: bool) -> Reply {
    match acceptor.accept(token) {
        Ok(AcceptStep::Done {
            principal,
            token: Some(mut fin),
            ..
        }) => {
            if tamper {
                let last = fin.len() - 1;
                fin[last] ^= 1;
            }
            Reply {
                status: 200,
                headers: vec![(
                    "www-authenticate".into(),
                    format!(
                        "Negotiate {}",
                        base64::engine::general_purpose::STANDARD.encode(fin)
                    ),
                )],
                body: format!("hello {principal}"),
                close: false,
            }
        }
        other => panic!("token not accepted: {other:?}"),
    }
}

fn client(preemptive: Preemptive, mutual: MutualAuth) -> Client {
    Client::new(ClientConfig {
        auth: AuthSettings {
            schemes: SchemePolicy {
                enabled: vec![SchemeKind::Negotiate],
                allow_downgrade: false,
                plain_http: PlainHttpAuth::Any,
            },
            preemptive,
            mutual,
            ..AuthSettings::default()
        },
        ..ClientConfig::default()
    })
    .unwrap()
}

async fn get(client: &Client, port: u16) -> Result<(u16, Outcome, String), Error> {
    let request = http::Request::get(format!("http://localhost:{port}/"))
        .body(RequestBody::empty())
        .unwrap();
    let response = client.send(request, &|_: &Event| {}).await?;
    let status = response.status().as_u16();
    let outcome = response.extensions().get::<Outcome>().cloned().unwrap();
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    Ok((status, outcome, String::from_utf8_lossy(&body).into_owned()))
}

fn acceptor(realm: &TestRealm) -> Arc<NegotiateAcceptor> {
    Arc::new(
        NegotiateAcceptor::new(&AcceptorConfig {
            keytab: Some(realm.keytab().to_owned()),
            acceptor_name: None,
        })
        .unwrap(),
    )
}

#[tokio::test]
async fn a_server_that_closes_between_legs_costs_one_restart() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let acc = acceptor(&realm);
    // Every 401 comes with `Connection: close` (the original failure).
    let (port, counts) = serve(move |_, _, token| match token {
        None => Reply {
            close: true,
            ..challenge()
        },
        Some(t) => accept(&acc, &t, false),
    })
    .await;
    let client = client(Preemptive::Learned, MutualAuth::Required);
    let (status, outcome, body) = get(&client, port).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "hello alice@EXAMPLE.TEST"));
    // One connection for the 401, a fresh one where the token went first.
    assert_eq!(counts.connections.load(Ordering::SeqCst), 2);
    assert_eq!(
        outcome.challenges, 0,
        "the retry sent its token without a 401"
    );

    // Without preemptive tokens it cannot work, and the error says why.
    let stubborn = client_never();
    let err = get(&stubborn, port).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("closed the connection in the middle of the Negotiate exchange"),
        "{err}"
    );
}

fn client_never() -> Client {
    client(Preemptive::Never, MutualAuth::Optional)
}

#[tokio::test]
async fn a_server_that_answers_401_forever_is_given_up_on() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let (port, counts) = serve(|_, _, _| challenge()).await;
    let err = get(&client_never(), port).await.unwrap_err();
    assert!(err.is_auth());
    assert!(
        err.to_string().contains("rejected the Kerberos token"),
        "{err}"
    );
    assert!(counts.requests.load(Ordering::SeqCst) <= 2);

    // A server that keeps sending continuation tokens hits the leg limit.
    let (port, counts) = serve(|_, _, _| Reply {
        headers: vec![("www-authenticate".into(), "Negotiate oQcwBaADCgEB".into())],
        ..challenge()
    })
    .await;
    let err = get(&client_never(), port).await.unwrap_err();
    assert!(err.is_auth(), "{err}");
    assert!(counts.requests.load(Ordering::SeqCst) <= 5, "{err}");
}

#[tokio::test]
async fn a_forged_final_token_fails_mutual_authentication() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let acc = acceptor(&realm);
    let (port, _) = serve(move |_, _, token| match token {
        None => challenge(),
        Some(t) => accept(&acc, &t, true),
    })
    .await;
    let err = get(&client(Preemptive::Never, MutualAuth::Optional), port)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("mutual authentication failed"),
        "{err}"
    );
}

#[tokio::test]
async fn over_plain_http_no_token_goes_before_a_401_and_the_connection_is_reused() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let acc = acceptor(&realm);
    // Per-request server: a token on every request.
    let (port, counts) = serve(move |_, _, token| match token {
        None => challenge(),
        Some(t) => accept(&acc, &t, false),
    })
    .await;
    // What was learned (the origin wants Negotiate) does not send a token before
    // the 401 over plain http://: every request meets its 401 (the tests over TLS,
    // in h2_and_bindings.rs, show learned preemption there).
    let client = client(Preemptive::Learned, MutualAuth::Required);
    for _ in 0..3 {
        let (status, outcome, _) = get(&client, port).await.unwrap();
        assert_eq!((status, outcome.challenges), (200, 1));
    }
    assert_eq!(
        counts.connections.load(Ordering::SeqCst),
        1,
        "one connection for all"
    );
    assert_eq!(counts.with_token.load(Ordering::SeqCst), 3);
    assert_eq!(counts.requests.load(Ordering::SeqCst), 6);

    // Nor does --negotiate-preemptive.
    let eager = client_with(Preemptive::Always);
    let events = std::sync::Mutex::new(Vec::new());
    let request = http::Request::get(format!("http://localhost:{port}/"))
        .body(RequestBody::empty())
        .unwrap();
    let response = eager
        .send(request, &|e: &Event| events.lock().unwrap().push(e.clone()))
        .await
        .unwrap();
    let outcome = response.extensions().get::<Outcome>().cloned().unwrap();
    assert_eq!((response.status().as_u16(), outcome.challenges), (200, 1));
    let events = events.into_inner().unwrap();
    assert!(
        events.iter().any(|e| matches!(e, Event::Notice { message }
            if message.contains("no Negotiate token before a 401 over plain http://"))),
        "{events:#?}"
    );
}

fn client_with(preemptive: Preemptive) -> Client {
    client(preemptive, MutualAuth::Required)
}

#[tokio::test]
async fn a_connection_bound_server_is_asked_once_per_connection() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let acc = acceptor(&realm);
    // Authenticated connections stay so (IIS-like): remembered per connection.
    let authed = Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let (port, counts) = serve(move |conn, _, token| {
        let mut authed = authed.lock().unwrap();
        match token {
            Some(t) => {
                authed.insert(conn);
                let mut r = accept(&acc, &t, false);
                r.headers.push(("persistent-auth".into(), "true".into()));
                r
            }
            None if authed.contains(&conn) => Reply {
                status: 200,
                headers: vec![],
                body: "still you".into(),
                close: false,
            },
            None => challenge(),
        }
    })
    .await;
    let client = client_with(Preemptive::Learned);
    for _ in 0..3 {
        get(&client, port).await.unwrap();
    }
    assert_eq!(counts.connections.load(Ordering::SeqCst), 1);
    assert_eq!(
        counts.with_token.load(Ordering::SeqCst),
        1,
        "one token for three requests"
    );
    assert_eq!(
        counts.requests.load(Ordering::SeqCst),
        4,
        "one 401, then three requests"
    );
}

#[tokio::test]
async fn a_large_body_is_sent_once_through_the_handshake() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let acc = acceptor(&realm);
    let (port, counts) = serve(move |_, _, token| match token {
        None => challenge(),
        Some(t) => accept(&acc, &t, false),
    })
    .await;
    let client = client_with(Preemptive::Never);
    let size = 3 * 1024 * 1024 + 17;
    let data = Bytes::from(vec![b'x'; size]);
    let request = http::Request::post(format!("http://localhost:{port}/upload"))
        .body(RequestBody::from(data))
        .unwrap();
    let response = client.send(request, &|_: &Event| {}).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        counts.body_bytes.load(Ordering::SeqCst) as usize,
        size,
        "sent exactly once"
    );
    assert_eq!(counts.with_token.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_ticket_that_appears_later_is_used_without_a_new_client() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let acc = acceptor(&realm);
    let (port, _) = serve(move |_, _, token| match token {
        None => challenge(),
        Some(t) => accept(&acc, &t, false),
    })
    .await;
    let ccache = realm.dir().join("later.ccache");
    std::env::set_var("KRB5CCNAME", format!("FILE:{}", ccache.display()));
    let client = client_with(Preemptive::Learned);
    let err = get(&client, port).await.unwrap_err();
    assert!(err.to_string().contains("run kinit"), "{err}");
    realm.kinit("bob", "bob-password", &ccache).unwrap();
    let (status, _, body) = get(&client, port).await.unwrap();
    assert_eq!((status, body.as_str()), (200, "hello bob@EXAMPLE.TEST"));
}

#[tokio::test]
async fn schemes_without_credentials_or_not_enabled_are_refused_in_words() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let (port, _) = serve(|_, _, _| Reply {
        headers: vec![("www-authenticate".into(), "Basic realm=\"old\"".into())],
        ..challenge()
    })
    .await;
    let anyauth = Client::new(ClientConfig {
        auth: AuthSettings {
            schemes: SchemePolicy {
                enabled: SchemeKind::ALL.to_vec(),
                allow_downgrade: false,
                plain_http: PlainHttpAuth::Any,
            },
            ..AuthSettings::default()
        },
        ..ClientConfig::default()
    })
    .unwrap();
    let err = get(&anyauth, port).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("no user name and password for localhost"),
        "{err}"
    );
    // With a password, Basic is answered; this server refuses everything.
    let with_password = Client::new(ClientConfig {
        auth: AuthSettings {
            schemes: SchemePolicy {
                enabled: SchemeKind::ALL.to_vec(),
                allow_downgrade: false,
                plain_http: PlainHttpAuth::Any,
            },
            passwords: kerbside_client::CredentialSources::new()
                .with_command_line("alice", "secret"),
            ..AuthSettings::default()
        },
        ..ClientConfig::default()
    })
    .unwrap();
    let err = get(&with_password, port).await.unwrap_err();
    assert!(
        err.to_string().contains("refused the Basic credentials"),
        "{err}"
    );
    let err = get(&client_never(), port).await.unwrap_err();
    assert!(err.to_string().contains("--anyauth"), "{err}");
}

#[tokio::test]
async fn a_request_is_not_held_up_by_a_busy_authenticated_connection() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let acc = acceptor(&realm);
    // Bodies larger than the socket buffers: a response that is not read keeps
    // its connection busy.
    let (port, counts) = serve(move |_, _, token| match token {
        None => challenge(),
        Some(t) => Reply {
            body: "x".repeat(8 * 1024 * 1024),
            ..accept(&acc, &t, false)
        },
    })
    .await;
    let client = client_with(Preemptive::Learned);
    // The first response's body is left unread: its connection is still busy.
    let request = http::Request::get(format!("http://localhost:{port}/big"))
        .body(RequestBody::empty())
        .unwrap();
    let busy = client.send(request, &|_: &Event| {}).await.unwrap();
    assert_eq!(busy.status(), 200);
    let second = tokio::time::timeout(std::time::Duration::from_secs(5), get(&client, port))
        .await
        .expect("the second request must not wait for the first one's connection")
        .unwrap();
    assert_eq!(second.0, 200);
    assert_eq!(counts.connections.load(Ordering::SeqCst), 2);
    drop(busy);
}
