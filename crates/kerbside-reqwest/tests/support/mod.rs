//! Fixtures for the middleware's tests: one shared realm, a reqwest client that
//! trusts the test CA, and a small Negotiate server (a real GSSAPI acceptor) whose
//! final token the test chooses.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use base64::Engine as _;
use kerbside_gssapi::{AcceptStep, AcceptorConfig, NegotiateAcceptor};
use kerbside_reqwest::NegotiateMiddleware;
use kerbside_testkit::{rustls_client_config, TestCa, TestRealm, TestRequest};
use reqwest_middleware::ClientWithMiddleware;

/// The test binary's realm: started by the first test that needs it, shared by
/// those running at the same time, stopped when the last one drops it.
pub fn realm() -> Arc<TestRealm> {
    static SHARED: Mutex<Weak<TestRealm>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(realm) = slot.upgrade() {
        return realm;
    }
    let realm = Arc::new(TestRealm::start().expect("start the test realm"));
    *slot = Arc::downgrade(&realm);
    realm
}

/// A reqwest client (rustls with ring) that trusts only `ca`, through `middleware`.
pub fn client(ca: Option<&TestCa>, middleware: NegotiateMiddleware) -> ClientWithMiddleware {
    let inner = reqwest::Client::builder()
        .tls_backend_preconfigured(rustls_client_config(ca))
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    reqwest_middleware::ClientBuilder::new(inner)
        .with(middleware)
        .build()
}

/// Polls `f` until it returns `Some` or 10 s have passed.
pub fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Which final token [`NegotiateServer`] sends with its `200`.
#[derive(Debug, Clone)]
pub enum FinalToken {
    /// The acceptor's own (what an honest server sends).
    Genuine,
    /// None at all.
    Missing,
    /// These bytes instead (garbage, or a token of another exchange).
    Forged(Vec<u8>),
}

/// A plain-HTTP server that asks for Negotiate, checks the token with a real
/// GSSAPI acceptor (the realm's keytab), answers `200` with the principal as body
/// and the chosen final token, and records each request's `Authorization`.
pub struct NegotiateServer {
    pub port: u16,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl NegotiateServer {
    /// Starts it; the acceptor's credentials are loaded now (hold the realm's guard).
    pub fn start(realm: &TestRealm, final_token: FinalToken) -> Self {
        let acceptor = acceptor(realm);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (sink, acceptor, final_token) =
                    (sink.clone(), acceptor.clone(), final_token.clone());
                std::thread::spawn(move || {
                    let _ = serve(stream, &sink, &acceptor, &final_token);
                });
            }
        });
        Self { port, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The `Authorization` header of each request received so far.
    pub fn authorizations(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

pub fn acceptor(realm: &TestRealm) -> NegotiateAcceptor {
    NegotiateAcceptor::new(&AcceptorConfig {
        keytab: Some(realm.keytab().to_owned()),
        acceptor_name: None,
    })
    .unwrap()
}

fn serve(
    stream: TcpStream,
    seen: &Mutex<Vec<Option<String>>>,
    acceptor: &NegotiateAcceptor,
    final_token: &FinalToken,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let b64 = base64::engine::general_purpose::STANDARD;
    while let Some(request) = TestRequest::read(&mut reader)? {
        let authorization = request.header("authorization").map(str::to_owned);
        seen.lock().unwrap().push(authorization.clone());
        let accepted = authorization
            .as_deref()
            .and_then(|a| a.strip_prefix("Negotiate "))
            .and_then(|t| b64.decode(t).ok())
            .and_then(|t| acceptor.accept(&t).ok());
        let answer = match accepted {
            Some(AcceptStep::Done {
                principal, token, ..
            }) => {
                let token = match final_token {
                    FinalToken::Genuine => token,
                    FinalToken::Missing => None,
                    FinalToken::Forged(t) => Some(t.clone()),
                };
                let header = token
                    .map(|t| format!("WWW-Authenticate: Negotiate {}\r\n", b64.encode(t)))
                    .unwrap_or_default();
                format!(
                    "HTTP/1.1 200 OK\r\n{header}Content-Length: {}\r\n\r\n{principal}",
                    principal.len()
                )
            }
            _ => "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\n\
                  Content-Length: 0\r\n\r\n"
                .to_owned(),
        };
        writer.write_all(answer.as_bytes())?;
        writer.flush()?;
    }
    Ok(())
}
