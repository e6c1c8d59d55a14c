//! The client over TLS against purpose-built servers with a real KDC and a real
//! acceptor: an HTTP/2 server that answers `HTTP_1_1_REQUIRED` (the client must fall
//! back to HTTP/1.1 and remember it), Negotiate per request over one HTTP/2
//! connection, and an acceptor that checks the `tls-server-end-point` channel
//! bindings (RFC 5929) of its own certificate.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONNECTION, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kerbside_client::{
    AuthSettings, Client, ClientConfig, Error, Event, Observer, Outcome, Preemptive, RequestBody,
    TlsSettings,
};
use kerbside_gssapi::{AcceptStep, AcceptorConfig, GssError, NegotiateAcceptor, Problem};
use kerbside_proto::channel_binding::tls_server_end_point;
use kerbside_proto::scheme::negotiate::client::MutualOutcome;
use kerbside_proto::{MutualAuth, PlainHttpAuth, SchemeKind, SchemePolicy};
use kerbside_testkit::{TestCa, TestCert, TestRealm};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const H2: &[u8] = b"h2";
const H1: &[u8] = b"http/1.1";

/// What the server does with HTTP/2 connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnH2 {
    /// Negotiate as over HTTP/1.1.
    Serve,
    /// Reset every stream with `HTTP_1_1_REQUIRED`.
    RequireH1,
    /// Answer 401 Negotiate, and reset a stream that carries a token with
    /// `HTTP_1_1_REQUIRED` (IIS's behaviour for connection-based authentication).
    RequireH1ForTokens,
}

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    version: Version,
    with_token: bool,
}

/// What a test server does, and what it saw.
struct ServerState {
    acceptor: NegotiateAcceptor,
    /// Channel bindings handed to GSSAPI with every token (`None`: not checked).
    bindings: Option<Vec<u8>>,
    h2: OnH2,
    /// Close the connection after a successful authentication (`Connection: close`).
    close_after_auth: bool,
    /// The protocol of each TLS connection, in the order they came.
    connections: Mutex<Vec<&'static str>>,
    /// HTTP/2 streams reset with `HTTP_1_1_REQUIRED`.
    resets: Mutex<u32>,
    /// HTTP/1.1 connections the server has finished with (closed).
    h1_closed: Mutex<u32>,
    requests: Mutex<Vec<Seen>>,
    /// What the acceptor said about each token.
    accepted: Mutex<Vec<Result<String, GssError>>>,
}

impl ServerState {
    fn new(realm: &TestRealm) -> Self {
        Self {
            acceptor: NegotiateAcceptor::new(&AcceptorConfig {
                keytab: Some(realm.keytab().to_owned()),
                acceptor_name: None,
            })
            .unwrap(),
            bindings: None,
            h2: OnH2::Serve,
            close_after_auth: false,
            connections: Mutex::default(),
            resets: Mutex::default(),
            h1_closed: Mutex::default(),
            requests: Mutex::default(),
            accepted: Mutex::default(),
        }
    }

    /// Negotiate, one leg per request: 401 without a token, 200 with the final token
    /// when the acceptor takes it, 401 again when it does not.
    fn handle<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        let token = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Negotiate "))
            .map(|b64| {
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .unwrap()
            });
        self.requests.lock().unwrap().push(Seen {
            version: request.version(),
            with_token: token.is_some(),
        });
        let Some(token) = token else {
            return challenge();
        };
        let step = self
            .acceptor
            .context()
            .step(&token, self.bindings.as_deref());
        let (principal, fin) = match step {
            Ok(AcceptStep::Done {
                principal,
                token: Some(fin),
                ..
            }) => (principal, fin),
            Ok(other) => panic!("a single-leg Kerberos exchange expected, got {other:?}"),
            Err(e) => {
                self.accepted.lock().unwrap().push(Err(e));
                return challenge();
            }
        };
        self.accepted.lock().unwrap().push(Ok(principal.clone()));
        let mut response = Response::builder().status(StatusCode::OK).header(
            WWW_AUTHENTICATE,
            format!(
                "Negotiate {}",
                base64::engine::general_purpose::STANDARD.encode(fin)
            ),
        );
        if self.close_after_auth {
            response = response.header(CONNECTION, "close");
        }
        response
            .body(Full::new(Bytes::from(format!("hello {principal}"))))
            .unwrap()
    }

    fn connections(&self) -> Vec<&'static str> {
        self.connections.lock().unwrap().clone()
    }

    fn requests(&self) -> Vec<Seen> {
        self.requests.lock().unwrap().clone()
    }

    fn accepted(&self) -> Vec<Result<String, GssError>> {
        self.accepted.lock().unwrap().clone()
    }
}

fn challenge() -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(WWW_AUTHENTICATE, "Negotiate")
        .body(Full::new(Bytes::from_static(b"who are you?")))
        .unwrap()
}

fn tls_acceptor(cert: &TestCert, alpn: &[&[u8]]) -> TlsAcceptor {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.cert_der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_der().to_vec())),
        )
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsAcceptor::from(Arc::new(config))
}

/// A TLS server on a free loopback port that offers `alpn` and serves HTTP/2 or
/// HTTP/1.1, as the client chose, with `state`. Returns the port.
async fn serve(cert: &TestCert, alpn: &[&[u8]], state: Arc<ServerState>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = tls_acceptor(cert, alpn);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (tls, state) = (tls.clone(), state.clone());
            tokio::spawn(async move {
                let Ok(stream) = tls.accept(tcp).await else {
                    return;
                };
                let h2 = stream.get_ref().1.alpn_protocol() == Some(H2);
                state
                    .connections
                    .lock()
                    .unwrap()
                    .push(if h2 { "HTTP/2" } else { "HTTP/1.1" });
                if h2 && state.h2 != OnH2::Serve {
                    require_h1(stream, &state).await;
                    return;
                }
                let service = {
                    let state = state.clone();
                    service_fn(move |request: Request<Incoming>| {
                        std::future::ready(Ok::<_, Infallible>(state.handle(&request)))
                    })
                };
                let io = TokioIo::new(stream);
                let _ = if h2 {
                    http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, service)
                        .await
                } else {
                    let served = http1::Builder::new().serve_connection(io, service).await;
                    *state.h1_closed.lock().unwrap() += 1;
                    served
                };
            });
        }
    });
    port
}

/// An HTTP/2 connection (the `h2` crate's server) that resets streams with
/// `HTTP_1_1_REQUIRED` (RFC 9113 §7): all of them, or those with a token.
async fn require_h1<IO>(io: IO, state: &ServerState)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Ok(mut conn) = h2::server::handshake(io).await else {
        return;
    };
    while let Some(Ok((request, mut respond))) = conn.accept().await {
        let with_token = request.headers().contains_key(AUTHORIZATION);
        state.requests.lock().unwrap().push(Seen {
            version: request.version(),
            with_token,
        });
        if state.h2 == OnH2::RequireH1ForTokens && !with_token {
            let challenge = Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(WWW_AUTHENTICATE, "Negotiate")
                .body(())
                .unwrap();
            let _ = respond.send_response(challenge, true);
        } else {
            respond.send_reset(h2::Reason::HTTP_1_1_REQUIRED);
            *state.resets.lock().unwrap() += 1;
        }
    }
}

/// Keeps every event.
#[derive(Default)]
struct Recorder(Mutex<Vec<Event>>);

impl Observer for Recorder {
    fn event(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    /// The events so far; the recorder starts empty again.
    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// `(connection number, protocol)` of each `Connected` event.
fn connected(events: &[Event]) -> Vec<(u64, &'static str)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Connected { conn, protocol, .. } => Some((*conn, *protocol)),
            _ => None,
        })
        .collect()
}

fn position(events: &[Event], pred: impl Fn(&Event) -> bool) -> Option<usize> {
    events.iter().position(pred)
}

fn response_lines(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Response { line, .. } => Some(line.clone()),
            _ => None,
        })
        .collect()
}

/// The `channel_binding` of each `Scheme` event, with its target.
fn schemes(events: &[Event]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Scheme {
                target,
                channel_binding,
                ..
            } => Some((target.clone(), *channel_binding)),
            _ => None,
        })
        .collect()
}

fn client(ca: &TestCa, channel_binding: bool) -> Client {
    Client::new(ClientConfig {
        tls: TlsSettings {
            ca_file: Some(ca.ca_pem_path().to_owned()),
            insecure: false,
        },
        auth: AuthSettings {
            schemes: SchemePolicy {
                enabled: vec![SchemeKind::Negotiate],
                allow_downgrade: false,
                plain_http: PlainHttpAuth::Refuse,
            },
            mutual: MutualAuth::Required,
            channel_binding,
            preemptive: Preemptive::Learned,
            ..AuthSettings::default()
        },
        http2: true,
        ..ClientConfig::default()
    })
    .unwrap()
}

/// GET `https://localhost:{port}/`: status, outcome and body.
async fn get(
    client: &Client,
    port: u16,
    observer: &dyn Observer,
) -> Result<(u16, Outcome, String), Error> {
    let request = Request::get(format!("https://localhost:{port}/"))
        .body(RequestBody::empty())
        .unwrap();
    let response = client.send(request, observer).await?;
    let status = response.status().as_u16();
    let outcome = response.extensions().get::<Outcome>().cloned().unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Ok((status, outcome, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test]
async fn http_1_1_required_falls_back_once_and_is_remembered() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let state = Arc::new(ServerState {
        h2: OnH2::RequireH1,
        // A new connection for the second request: only then does it show which
        // protocol the client offers for this origin now.
        close_after_auth: true,
        ..ServerState::new(&realm)
    });
    let port = serve(&cert, &[H2, H1], state.clone()).await;
    let client = client(&ca, true);
    let events = Recorder::default();

    let (status, outcome, body) = get(&client, port, &events).await.unwrap();
    let first = events.take();
    assert_eq!(
        (status, body.as_str()),
        (200, "hello alice@EXAMPLE.TEST"),
        "{first:#?}"
    );
    assert_eq!(outcome.negotiate, Some(MutualOutcome::Verified));
    // HTTP/2 first (both were offered), then one retry on an HTTP/1.1 connection.
    let conns = connected(&first);
    assert_eq!(
        conns.iter().map(|c| c.1).collect::<Vec<_>>(),
        ["HTTP/2", "HTTP/1.1"],
        "{first:#?}"
    );
    let retries: Vec<usize> = first
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Event::Retrying { .. }))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(retries.len(), 1, "{first:#?}");
    let Event::Retrying { reason } = &first[retries[0]] else {
        unreachable!()
    };
    assert!(reason.contains("HTTP_1_1_REQUIRED"), "{reason}");
    let h1_connected = position(
        &first,
        |e| matches!(e, Event::Connected { protocol, .. } if *protocol == "HTTP/1.1"),
    )
    .unwrap();
    assert!(retries[0] < h1_connected, "{first:#?}");
    let lines = response_lines(&first);
    assert_eq!(
        lines,
        ["HTTP/1.1 401 Unauthorized", "HTTP/1.1 200 OK"],
        "no response came over HTTP/2: {first:#?}"
    );
    assert_eq!(
        outcome.connection, conns[1].0,
        "the final response's connection"
    );
    assert_eq!(schemes(&first), [("HTTP@localhost".to_owned(), true)]);
    assert_eq!(*state.resets.lock().unwrap(), 1);

    // The origin was remembered: the next request, on a new connection (the
    // server closed the last one), offers only HTTP/1.1 and is not reset. Wait for
    // that close, so the request does not meet the old connection on its way out.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while *state.h1_closed.lock().unwrap() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server never closed the HTTP/1.1 connection"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, outcome, _) = get(&client, port, &events).await.unwrap();
    let second = events.take();
    assert_eq!(status, 200, "{second:#?}");
    assert_eq!(outcome.negotiate, Some(MutualOutcome::Verified));
    assert_eq!(
        connected(&second).iter().map(|c| c.1).collect::<Vec<_>>(),
        ["HTTP/1.1"],
        "{second:#?}"
    );
    // (A `Retrying` for a stale pooled connection would be harmless here; one for
    // HTTP_1_1_REQUIRED would mean the origin was forgotten.)
    assert!(
        !second
            .iter()
            .any(|e| matches!(e, Event::Retrying { reason } if reason.contains("HTTP_1_1"))),
        "{second:#?}"
    );
    assert!(response_lines(&second)
        .iter()
        .all(|l| l.starts_with("HTTP/1.1 ")));
    assert_eq!(
        state.connections(),
        ["HTTP/2", "HTTP/1.1", "HTTP/1.1"],
        "one HTTP/2 connection in all"
    );
    assert_eq!(*state.resets.lock().unwrap(), 1);
}

#[tokio::test]
async fn http_1_1_required_for_the_token_only_as_iis_does() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let state = Arc::new(ServerState {
        h2: OnH2::RequireH1ForTokens,
        ..ServerState::new(&realm)
    });
    let port = serve(&cert, &[H2, H1], state.clone()).await;
    let client = client(&ca, true);
    let events = Recorder::default();

    let (status, outcome, body) = get(&client, port, &events).await.unwrap();
    let log = events.take();
    assert_eq!(
        (status, body.as_str()),
        (200, "hello alice@EXAMPLE.TEST"),
        "{log:#?}"
    );
    assert_eq!(outcome.negotiate, Some(MutualOutcome::Verified));
    assert_eq!(
        connected(&log).iter().map(|c| c.1).collect::<Vec<_>>(),
        ["HTTP/2", "HTTP/1.1"],
        "{log:#?}"
    );
    assert_eq!(
        response_lines(&log),
        ["HTTP/2.0 401 Unauthorized", "HTTP/1.1 200 OK"],
        "{log:#?}"
    );
    assert_eq!(
        log.iter()
            .filter(|e| matches!(e, Event::Retrying { .. }))
            .count(),
        1,
        "{log:#?}"
    );
    // A token for each connection, both bound to the TLS channel.
    assert_eq!(
        schemes(&log),
        [
            ("HTTP@localhost".to_owned(), true),
            ("HTTP@localhost".to_owned(), true)
        ]
    );
    // The 401 over HTTP/2 taught the client that the origin wants Negotiate: the
    // HTTP/1.1 request carries a (new) token at once.
    assert_eq!(outcome.challenges, 0, "{log:#?}");
    assert_eq!(
        state.requests(),
        [
            Seen {
                version: Version::HTTP_2,
                with_token: false
            },
            Seen {
                version: Version::HTTP_2,
                with_token: true
            },
            Seen {
                version: Version::HTTP_11,
                with_token: true
            },
        ]
    );
    assert_eq!(*state.resets.lock().unwrap(), 1);
    assert_eq!(
        state.accepted().len(),
        1,
        "the reset token was never accepted"
    );
}

#[tokio::test]
async fn negotiate_per_request_over_one_http2_connection() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let state = Arc::new(ServerState::new(&realm));
    // The server offers only h2: every request must go over HTTP/2.
    let port = serve(&cert, &[H2], state.clone()).await;
    let client = client(&ca, true);
    let events = Recorder::default();

    let (status, first, body) = get(&client, port, &events).await.unwrap();
    let log = events.take();
    assert_eq!(
        (status, body.as_str()),
        (200, "hello alice@EXAMPLE.TEST"),
        "{log:#?}"
    );
    assert_eq!(first.negotiate, Some(MutualOutcome::Verified));
    assert_eq!(first.challenges, 1);
    assert_eq!(connected(&log), [(first.connection, "HTTP/2")], "{log:#?}");
    assert_eq!(
        response_lines(&log),
        ["HTTP/2.0 401 Unauthorized", "HTTP/2.0 200 OK"]
    );
    assert_eq!(
        schemes(&log),
        [("HTTP@localhost".to_owned(), true)],
        "the TLS channel binding is passed on HTTP/2 too"
    );
    assert!(
        log.iter().any(|e| matches!(
            e,
            Event::Authenticated {
                mutual: MutualOutcome::Verified,
                legs: 1,
                connection_bound: false,
                ..
            }
        )),
        "an HTTP/2 connection is never taken as authenticated: {log:#?}"
    );
    assert!(
        !log.iter().any(|e| matches!(e, Event::Retrying { .. })),
        "{log:#?}"
    );

    // Three at once: each carries its own token (learned: no 401 first), all on the
    // one HTTP/2 connection.
    let (a, b, c) = tokio::join!(
        get(&client, port, &events),
        get(&client, port, &events),
        get(&client, port, &events)
    );
    let log = events.take();
    for (status, outcome, _) in [a.unwrap(), b.unwrap(), c.unwrap()] {
        assert_eq!(status, 200, "{log:#?}");
        assert_eq!(outcome.negotiate, Some(MutualOutcome::Verified));
        assert_eq!(outcome.challenges, 0, "{log:#?}");
        assert_eq!(outcome.connection, first.connection);
    }
    assert!(connected(&log).is_empty(), "no new connection: {log:#?}");
    assert_eq!(
        log.iter()
            .filter(|e| matches!(e, Event::Reusing { .. }))
            .count(),
        3
    );
    assert_eq!(state.connections(), ["HTTP/2"]);
    let seen = state.requests();
    assert!(
        seen.iter().all(|s| s.version == Version::HTTP_2),
        "{seen:?}"
    );
    assert_eq!(
        seen.iter().map(|s| s.with_token).collect::<Vec<_>>(),
        [false, true, true, true, true],
        "one 401, then a token with every request"
    );
    assert_eq!(state.accepted().iter().filter(|a| a.is_ok()).count(), 4);
}

/// A TLS HTTP/1.1 server whose acceptor checks `bindings`, and a client with
/// `client_binding`: the result, the events, and what the acceptor said.
async fn bound_exchange(
    realm: &TestRealm,
    ca: &TestCa,
    cert: &TestCert,
    bindings: Option<Vec<u8>>,
    client_binding: bool,
) -> (
    Result<(u16, Outcome, String), Error>,
    Vec<Event>,
    Vec<Result<String, GssError>>,
) {
    let state = Arc::new(ServerState {
        bindings,
        ..ServerState::new(realm)
    });
    let port = serve(cert, &[H1], state.clone()).await;
    let events = Recorder::default();
    let result = get(&client(ca, client_binding), port, &events).await;
    (result, events.take(), state.accepted())
}

#[tokio::test]
async fn channel_bindings_of_the_tls_certificate() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let right = tls_server_end_point(cert.cert_der()).unwrap();
    let other = ca.issue(&["other.example.test"]);
    let wrong = tls_server_end_point(other.cert_der()).unwrap();
    assert_ne!(right, wrong);

    // (a) The acceptor checks the bindings of its own certificate: the client's
    // match (it hashes the certificate it was sent).
    let (result, events, accepted) =
        bound_exchange(&realm, &ca, &cert, Some(right.clone()), true).await;
    let (status, outcome, body) = result.unwrap();
    assert_eq!((status, body.as_str()), (200, "hello alice@EXAMPLE.TEST"));
    assert_eq!(outcome.negotiate, Some(MutualOutcome::Verified));
    assert_eq!(schemes(&events), [("HTTP@localhost".to_owned(), true)]);
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0].as_ref().unwrap(), "alice@EXAMPLE.TEST");

    // (b) Bindings of another certificate (a token relayed from another TLS
    // channel looks like this): MIT refuses the token with GSS_S_BAD_BINDINGS, and
    // the client, answered with a bare 401, fails.
    let (result, events, accepted) = bound_exchange(&realm, &ca, &cert, Some(wrong), true).await;
    let err = result.unwrap_err();
    assert!(err.is_auth(), "{err}");
    assert!(
        err.to_string().contains("rejected the Kerberos token"),
        "{err}"
    );
    assert!(
        err.to_string().contains("--channel-binding off"),
        "the error points at the bindings: {err}"
    );
    assert_eq!(schemes(&events), [("HTTP@localhost".to_owned(), true)]);
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    let refusal = accepted[0].as_ref().unwrap_err();
    assert_eq!(
        refusal.problem(),
        Problem::ChannelBindings,
        "MIT said: {refusal} ({}), major {:#x} minor {}",
        refusal.detail(),
        refusal.major(),
        refusal.minor()
    );

    // (c) A client that passes no bindings, to an acceptor that checks them: MIT
    // accepts. An initiator without bindings puts all-zero bindings in the
    // authenticator's checksum, and MIT's acceptor takes those as "the client did
    // not bind" rather than as a mismatch (RFC 4121 §4.1.1.2 leaves it to the
    // acceptor). It would insist only if the client had announced it binds
    // (KERB_AP_OPTIONS_CBT, MIT's `client_aware_channel_bindings`), which a
    // client passing no bindings does not. So `channel_binding: false` works with
    // MIT servers that check bindings; the protection comes from clients that bind.
    let (result, events, accepted) = bound_exchange(&realm, &ca, &cert, Some(right), false).await;
    let (status, outcome, _) = result.unwrap();
    assert_eq!(status, 200);
    assert_eq!(outcome.negotiate, Some(MutualOutcome::Verified));
    assert_eq!(schemes(&events), [("HTTP@localhost".to_owned(), false)]);
    assert_eq!(accepted.len(), 1);
    assert!(accepted[0].is_ok(), "{accepted:?}");

    // (d) And the common case: a client that binds, to an acceptor that does not
    // check (Apache's default, our gate): accepted.
    let (result, events, accepted) = bound_exchange(&realm, &ca, &cert, None, true).await;
    assert_eq!(result.unwrap().0, 200);
    assert_eq!(schemes(&events), [("HTTP@localhost".to_owned(), true)]);
    assert!(accepted[0].is_ok(), "{accepted:?}");
}

/// A large POST over HTTP/2: the first try (no token) is answered 401 before the body
/// is sent; the body then goes once, with the token, on the same connection (only the
/// stream was lost).
#[tokio::test]
async fn a_large_body_over_http2_goes_once_on_the_same_connection() {
    let realm = TestRealm::start().unwrap();
    let _env = realm.enter();
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let state = Arc::new(ServerState::new(&realm));
    let received = Arc::new(Mutex::new(Vec::<usize>::new()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let tls = tls_acceptor(&cert, &[H2]);
    {
        let (state, received) = (state.clone(), received.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                state.connections.lock().unwrap().push("HTTP/2");
                let (tls, state, received) = (tls.clone(), state.clone(), received.clone());
                tokio::spawn(async move {
                    let Ok(stream) = tls.accept(tcp).await else {
                        return;
                    };
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (state, received) = (state.clone(), received.clone());
                        async move {
                            if !request.headers().contains_key(AUTHORIZATION) {
                                return Ok::<_, Infallible>(challenge());
                            }
                            let (parts, body) = request.into_parts();
                            let bytes = http_body_util::BodyExt::collect(body)
                                .await
                                .map(|b| b.to_bytes().len())
                                .unwrap_or(0);
                            received.lock().unwrap().push(bytes);
                            Ok(state.handle(&Request::from_parts(parts, ())))
                        }
                    });
                    let _ = http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    }
    let client = client(&ca, true);
    let size = 3 * 1024 * 1024 + 5;
    let request = http::Request::post(format!("https://localhost:{port}/upload"))
        .body(kerbside_client::RequestBody::from(vec![7u8; size]))
        .unwrap();
    let response = client.send(request, &|_: &Event| {}).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        *received.lock().unwrap(),
        [size],
        "the body arrived once, whole"
    );
    assert_eq!(
        state.connections(),
        ["HTTP/2"],
        "one connection for both tries"
    );
}
