//! The authentication layer: `Authorization: Negotiate` checked against a keytab, in
//! one of four modes (none, per request, per connection, session cookie), with access
//! rules deciding who may do what.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use http::header::{HeaderValue, AUTHORIZATION, COOKIE, SET_COOKIE, WWW_AUTHENTICATE};
use http::{Request, Response, StatusCode, Version};
use kerbside_gssapi::{AcceptStep, GssError, NegotiateAcceptor};
use kerbside_proto::scheme::negotiate::server::{challenge, read_authorization, Presented};
use kerbside_proto::server_decision::{
    self, after_rules, client_status, persistent_auth, AfterRules, ConnectionLogin,
    ExpectNegotiate, Failure, KerberosOutcome, Login, NegotiateRoute, NtlmSetup, Remember,
    RequestFacts, RuleVerdict, SessionState, Setup, Source, Start, Verdict, Verified,
};
use tokio::sync::Semaphore;
use tower_layer::Layer;
use tower_service::Service;

use crate::access::{AccessRules, Decision};
use crate::body::BoxError;
use crate::identity::Authenticated;
use crate::metrics::{reason_label, GateMetrics};
use crate::per_connection::{ConnectionAuth, ConnectionSupply, PerConnection, TlsChannel};
use crate::session::SessionCodec;

mod config;
mod identify;
mod password_schemes;
mod refusal;
mod session_cookie;

pub use config::{
    AuthMode, BasicFallback, ChannelBindingPolicy, NegotiateConfig, SharedReplayConfig,
};
use identify::carry_out;
use refusal::{http11_required, refuse};
pub use refusal::{http11_required_as_error, Http11Required};
use session_cookie::{clear_cookie, strip_cookie};

/// A [`Layer`] that authenticates requests with Negotiate.
///
/// Requests without credentials get `401` with `WWW-Authenticate: Negotiate` (unless
/// the access rules let them in anonymously); malformed `Authorization` headers get
/// `400`. Accepted requests reach the inner service with an [`Authenticated`]
/// extension and without their `Authorization` header; the acceptor's final token
/// is added to the response as `WWW-Authenticate: Negotiate <token>`. If the inner
/// service answers `401` to an authenticated request (hgweb does for a user missing
/// from `allow-push`), the client gets `403` instead of a challenge it would answer
/// forever.
#[derive(Debug, Clone)]
pub struct NegotiateLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: NegotiateConfig,
    /// What proto's decisions read of `config`.
    setup: Setup,
    /// How the builder was told requests carry their [`PerConnection`].
    supply: Option<ConnectionSupply>,
    handshakes: Semaphore,
    /// The acceptor with replays caught in memory (and kept in the replay cache
    /// file) instead of MIT's file replay cache (see
    /// `NegotiateAcceptor::with_replay_file`); `None` falls back to `config.acceptor`.
    memory_acceptor: Option<NegotiateAcceptor>,
    /// Active Directory accounts of recent logins, from their PACs.
    domain_accounts: crate::ad_account::DomainAccounts,
}

impl NegotiateLayer {
    /// A per-request layer checking tokens with this acceptor.
    pub fn new(acceptor: NegotiateAcceptor) -> Self {
        Self::with_config(NegotiateConfig::per_request(acceptor))
    }

    /// A layer with every setting given, unchecked (the gate's way in;
    /// [`NegotiateLayer::builder`] checks them together).
    pub fn with_config(config: NegotiateConfig) -> Self {
        Self::with_supply(config, None)
    }

    /// A layer told how requests carry their [`PerConnection`] (for its log).
    pub(crate) fn with_supply(
        mut config: NegotiateConfig,
        supply: Option<ConnectionSupply>,
    ) -> Self {
        let permits = config.max_handshakes.max(1);
        // A list of names or {HOSTNAME} is decided per request, on the ticket's service.
        if config.acceptor_names.gssapi_name().is_none()
            && config.acceptor_names != kerbside_proto::acceptor_names::AcceptorNames::Any
        {
            config.acceptor = config.acceptor.take().map(|a| a.reporting_service(true));
        }
        Self {
            shared: Arc::new(Shared {
                memory_acceptor: config
                    .acceptor
                    .as_ref()
                    .and_then(|a| memory_acceptor(a, &config)),
                setup: Shared::setup(&config),
                supply,
                config,
                handshakes: Semaphore::new(permits),
                domain_accounts: Default::default(),
            }),
        }
    }
}

/// Whether the domain vouched for `login`'s name, so its Active Directory account (kept
/// at login) applies: Kerberos, or NTLM (also inside Negotiate) when the domain controller
/// checks it (`--ntlm-winbind`, which leaves no NTLM users file).
fn vouched_by_domain(config: &NegotiateConfig, login: &Login) -> bool {
    use kerbside_proto::SchemeKind;
    login.kerberos
        || (config.ntlm.as_ref().is_some_and(|n| n.is_domain())
            && matches!(login.scheme, SchemeKind::Ntlm | SchemeKind::Negotiate))
}

/// How the login was made, for the request's extensions (no credential in it).
fn login_details(
    source: kerbside_proto::server_decision::Source,
    opened: &Option<Result<Option<crate::session::Session>, crate::session::SessionError>>,
) -> crate::identity::LoginDetails {
    use crate::identity::LoginVia;
    use kerbside_proto::server_decision::Source;
    let via = match source {
        Source::Credentials => LoginVia::Credentials,
        Source::Connection => LoginVia::Connection,
        Source::SessionCookie => LoginVia::SessionCookie,
    };
    let session_expires = match (via, opened) {
        (LoginVia::SessionCookie, Some(Ok(Some(session)))) => {
            Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(session.expires))
        }
        _ => None,
    };
    crate::identity::LoginDetails {
        via,
        session_expires,
    }
}

/// The acceptor that checks replays in memory: with the replay cache file, or, when a
/// shared cache is configured, in memory and in the shared cache (the file would only
/// remember this gate's logins). `None` leaves replays to MIT's (slower) file cache.
fn memory_acceptor(
    acceptor: &kerbside_gssapi::NegotiateAcceptor,
    config: &NegotiateConfig,
) -> Option<kerbside_gssapi::NegotiateAcceptor> {
    let skew = kerbside_gssapi::ReplayCache::DEFAULT_CLOCK_SKEW;
    match &config.shared_replay {
        Some(shared) => match acceptor.with_memory_replay_cache(skew) {
            Ok(memory) => {
                Some(memory.with_shared_replay(shared.store.clone(), shared.when_unavailable, skew))
            }
            Err(e) => {
                tracing::error!(
                    "the shared replay cache cannot be used (no memory replay cache: {e}); \
                     replays to other gates are not caught"
                );
                None
            }
        },
        None => acceptor
            .with_replay_file(skew, config.replay_cache.as_deref())
            .map_err(|e| tracing::warn!("replays are checked by MIT's (slower) file cache: {e}"))
            .ok(),
    }
}

impl<S> Layer<S> for NegotiateLayer {
    type Service = NegotiateService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        NegotiateService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service made by [`NegotiateLayer`].
#[derive(Debug, Clone)]
pub struct NegotiateService<S> {
    inner: S,
    shared: Arc<Shared>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Shared {
    fn metrics(&self) -> Option<&GateMetrics> {
        self.config.metrics.as_ref()
    }

    /// Counts a failure proto named.
    fn count(&self, failure: Option<Failure>) {
        if let (Some(m), Some(failure)) = (self.metrics(), failure) {
            m.failure(failure.label());
        }
    }

    /// What proto's decisions need to know about the configuration.
    fn setup(config: &NegotiateConfig) -> Setup {
        Setup {
            mode: config.mode.into(),
            kerberos: config.acceptor.is_some(),
            ntlm: config.ntlm.as_ref().map(|n| NtlmSetup {
                in_negotiate: n.in_negotiate,
            }),
            digest: config.digest.is_some(),
            basic_users: config.basic_users.is_some(),
            basic_kdc: config.basic_fallback.is_some(),
            sessions: config.sessions.is_some(),
            binding: config.channel_binding.into(),
        }
    }

    /// Accepts one token, within the handshake limit: GSSAPI's answer, or the
    /// outcome when no handshake could run (no keytab, the limiter closed).
    async fn accept(
        self: &Arc<Self>,
        token: &[u8],
        conn: Option<Arc<ConnectionAuth>>,
        binding: Option<Arc<Vec<u8>>>,
    ) -> Result<Result<AcceptStep, GssError>, KerberosOutcome> {
        let Some(acceptor) = self
            .memory_acceptor
            .clone()
            .or_else(|| self.config.acceptor.clone())
        else {
            return Err(KerberosOutcome::Refused);
        };
        let Ok(_permit) = self.handshakes.acquire().await else {
            return Err(KerberosOutcome::Unavailable);
        };
        let started = Instant::now();
        // The accept runs here, on the runtime's worker thread (one per core), not on
        // the blocking pool: it reads only the keytab and memory, never the network,
        // takes about 0.1 ms, and the hop to a blocking thread and back cost some 50 µs
        // of CPU per login (BENCHMARKS.md). The semaphore above bounds the waiters.
        // A pending multi-leg exchange of this connection continues; otherwise a
        // fresh context.
        let mut ctx = conn
            .as_ref()
            .and_then(|c| c.lock().pending.take())
            .unwrap_or_else(|| acceptor.context());
        let result = ctx.step(token, binding.as_deref().map(Vec::as_slice));
        if let (Ok(AcceptStep::Done { principal, .. }), Some(credential)) =
            (&result, ctx.take_delegated())
        {
            // Kept only if the gate keeps delegated credentials; otherwise released here.
            if let Some(store) = &self.config.delegation {
                store.keep(principal, &credential);
            }
        }
        if let (Ok(AcceptStep::Continue(_)), Some(conn)) = (&result, &conn) {
            conn.lock().pending = Some(ctx);
        }
        if let Some(m) = self.metrics() {
            m.handshake(
                matches!(result, Ok(AcceptStep::Done { .. })),
                started.elapsed(),
            );
        }
        Ok(result)
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for NegotiateService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: http_body::Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Send,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    /// The inner service's: every answer of the layer is a response (axum's
    /// `Router::layer` needs `Infallible` here, and gets it from its routes).
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service that was polled ready handles this request; a clone takes its
        // place for the next one (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        // Only the head is looked at while authenticating; the body waits (and is
        // never read for a request that is refused).
        let (mut head, body) = request.into_parts();
        let mut unread = Some(body);
        let expects_continue = head
            .headers
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let h1 = head.version < Version::HTTP_2;
        Box::pin(async move {
            let unread = &mut unread;
            let mut result = async {
                let config = &shared.config;
                let method = head.method.clone();
                let path = head.uri.path().to_owned();
                let query = head.uri.query().map(str::to_owned);
                let h2 = head.version == Version::HTTP_2;
                let connection = PerConnection::from_extensions(&head.extensions);
                let conn = connection.map(|c| c.auth().clone());
                // A TlsChannel of the request (forward-auth: the front proxy's certificate)
                // takes the place of the connection's own.
                let binding = match head.extensions.get::<TlsChannel>() {
                    Some(channel) => channel.binding.clone(),
                    None => connection.and_then(|c| c.binding().cloned()),
                };
                let facts = RequestFacts {
                    h2,
                    per_connection: connection.is_some(),
                    binding: binding.is_some(),
                };
                let authorization = read_authorization(
                    head.headers
                        .get_all(AUTHORIZATION)
                        .iter()
                        .map(HeaderValue::as_bytes),
                );
                let setup = &shared.setup;
                if setup.needs_connection() && connection.is_none() {
                    // The builder refuses such a layer without a ConnectionSupply; this is
                    // the last defence (a server that did not do what it said, or a layer
                    // made with_config).
                    let how = shared.supply.map_or(
                        "serve the app with into_make_service_with_connect_info::<PerConnection>() \
                         (axum) or wrap each connection's service in PerConnection::new(peer) (hyper)",
                        ConnectionSupply::how,
                    );
                    tracing::error!(
                        "this layer keeps state per connection (connection mode, NTLM, or channel \
                         bindings required), but the request carries no PerConnection: {how}"
                    );
                } else if let Err(e) = &authorization {
                    tracing::warn!(%path, error = %e, "bad Authorization header");
                }
                let other_scheme = match &authorization {
                    Ok(Presented::OtherScheme(scheme)) => Some(scheme.clone()),
                    _ => None,
                };
                let start = match server_decision::identify(setup, facts, authorization) {
                    Start::Reject(refusal) => return Ok(shared.refuse_with(&refusal, h2)),
                    start => start,
                };
                match (&other_scheme, &start) {
                    (Some(scheme), Start::Remembered(_) | Start::AskRules(_)) => {
                        tracing::info!(%scheme, "credentials of another scheme; asking for Negotiate");
                    }
                    (Some(scheme), Start::Answer(Verdict::Refuse(_))) => {
                        tracing::info!(%scheme, "these credentials need connection mode; asking again");
                    }
                    _ => {}
                }
                // The session cookie is opened once per request; what it gave decides
                // with the rest.
                let opened = config
                    .sessions
                    .as_ref()
                    .map(|codec| codec.from_request(&head.headers, SystemTime::now()));
                let session = match &opened {
                    None => SessionState::Off,
                    Some(Ok(None)) => SessionState::Absent,
                    Some(Ok(Some(session))) => SessionState::Valid(session.principal.clone()),
                    Some(Err(_)) => SessionState::Refused,
                };
                // A cookie that did not open is cleared with the next 401, so a browser
                // stops sending it.
                let stale_cookie = match &config.sessions {
                    Some(codec) if session.clears_with_refusal() => {
                        Some(codec.clear_cookie_header(config.secure_cookies))
                    }
                    _ => None,
                };
                let (verdict, set_cookie) =
                    carry_out(&shared, &head, start, conn, binding, session).await;
                let login = match verdict {
                    Verdict::Refuse(refusal) => {
                        shared.count(refusal.failure);
                        let mut response = shared.refuse_with(&refusal, h2);
                        clear_cookie(&mut response, stale_cookie.as_deref());
                        return Ok(response);
                    }
                    Verdict::Http11Required => return Ok(http11_required()),
                    Verdict::Anonymous { failure } => {
                        if let (Some(Failure::BadSessionCookie), Some(Err(e))) = (failure, &opened) {
                            tracing::info!("session cookie refused: {e}");
                        }
                        shared.count(failure);
                        None
                    }
                    Verdict::Authenticated(login) => Some(login),
                };
                let principal = login.as_ref().map(|l| l.principal.as_str());
                let domain = match &login {
                    Some(login) => {
                        shared
                            .domain_accounts
                            .resolved(
                                &login.principal,
                                vouched_by_domain(config, login),
                                config.group_names.as_ref(),
                            )
                            .await
                    }
                    None => None,
                };
                let domain_groups = domain.as_ref().map_or(&[][..], |d| d.groups.as_slice());
                let verdict = match config.access.decide_for(
                    &method,
                    &path,
                    query.as_deref(),
                    principal,
                    domain_groups,
                ) {
                    Decision::Allow => RuleVerdict::Allow,
                    Decision::Authenticate => RuleVerdict::Authenticate,
                    Decision::Deny { reason } => {
                        tracing::warn!(principal = principal.unwrap_or("-"), %method, %path, "access denied: {reason}");
                        RuleVerdict::Deny
                    }
                };
                match after_rules(verdict, config.mode.into(), h2) {
                    AfterRules::Pass => {}
                    AfterRules::Http11Required => return Ok(http11_required()),
                    AfterRules::Challenge => {
                        let mut response = shared.refuse(StatusCode::UNAUTHORIZED, h2);
                        clear_cookie(&mut response, stale_cookie.as_deref());
                        return Ok(response);
                    }
                    AfterRules::Forbidden => return Ok(shared.refuse(StatusCode::FORBIDDEN, h2)),
                }
                head.headers.remove(AUTHORIZATION);
                if let Some(codec) = &config.sessions {
                    strip_cookie(&mut head.headers, codec.cookie_name());
                }
                let (principal, final_token, info) = match login {
                    Some(login) => {
                        // A name the domain vouched for (NTLM through winbind too) is the
                        // account's Kerberos principal: the user map applies to it as to
                        // a Kerberos login.
                        let principal_form = vouched_by_domain(config, &login);
                        let mut who = Authenticated::new(
                            login.principal.clone(),
                            login.scheme,
                            principal_form,
                        );
                        let groups = config.access.groups();
                        who.groups = groups
                            .names()
                            .filter(|g| groups.contains(g, &login.principal))
                            .map(str::to_owned)
                            .collect();
                        who.groups
                            .extend(domain_groups.iter().map(|g| g.label().to_owned()));
                        who.channel_bound = login.channel_bound;
                        who.domain = domain.clone();
                        head.extensions.insert(who);
                        head.extensions.insert(login_details(login.source, &opened));
                        (
                            Some(login.principal),
                            login.final_token,
                            login.authentication_info,
                        )
                    }
                    None => (None, None, None),
                };
                // Taken here or, for the layer's own answers, after them; never both.
            let Some(body) = unread.take() else {
                tracing::error!("the request's body was already taken");
                return Ok(shared.refuse(StatusCode::INTERNAL_SERVER_ERROR, h2));
            };
            let request = Request::from_parts(head, body);
                let mut response = inner.call(request).await?;
                let status = client_status(principal.is_some(), response.status().as_u16());
                if status != response.status().as_u16() {
                    // The backend refused a user we authenticated (hgweb does for a user
                    // missing from allow-push). Relaying its 401 with our challenge would
                    // make clients retry forever: it is a 403.
                    tracing::warn!(
                        principal = principal.as_deref().unwrap_or("-"),
                        %method,
                        %path,
                        "the upstream refused an authenticated user; answering 403"
                    );
                    response = refuse::<ResBody>(StatusCode::FORBIDDEN, None);
                }
                let headers = response.headers_mut();
                if let Some(token) = final_token {
                    if let Ok(value) = HeaderValue::from_str(&challenge(Some(&token))) {
                        headers.append(WWW_AUTHENTICATE, value);
                    }
                }
                if persistent_auth(config.mode.into(), principal.is_some(), h2) {
                    headers.insert("persistent-auth", HeaderValue::from_static("true"));
                }
                if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    headers.append(SET_COOKIE, cookie);
                }
                if let Some(info) = info.and_then(|c| HeaderValue::from_str(&c).ok()) {
                    headers.insert("authentication-info", info);
                }
                if let Some(m) = shared.metrics() {
                    m.response(response.status());
                }
                Ok(response)
            }
            .await;
            // The layer answered without passing the request on: its body was never read.
            if let (Some(body), Ok(response)) = (unread.take(), result.as_mut()) {
                if h1 {
                    discard_unread_body(body, expects_continue, response).await;
                }
            }
            result
        })
    }
}

/// How much of a refused request's body is read and thrown away, so that the client's
/// next leg (NTLM, Negotiate, Digest after a 401) can come on the same connection.
/// Browsers and requests-ntlm send the whole body with every leg of a handshake, so a
/// form or a small upload must fit; larger uploads end the connection.
const DISCARD_LIMIT: usize = 1024 * 1024;

/// How long the discarding may take.
const DISCARD_DEADLINE: Duration = Duration::from_secs(5);

/// Before the layer's own answer to an HTTP/1.1 request goes out, reads and throws away
/// the body nobody read, as Apache's `ap_discard_request_body` does: up to
/// [`DISCARD_LIMIT`] bytes within [`DISCARD_DEADLINE`]. A body that is larger, slower, or
/// not sent yet (`Expect: 100-continue`: reading it would ask the client for it) makes
/// the answer say `Connection: close`, so the client does not send its next request on a
/// connection the server closes (without it, hyper gives up on the connection while the
/// answer still promises keep-alive, and a client such as httpx fails with "Server
/// disconnected").
async fn discard_unread_body<B, R>(body: B, expects_continue: bool, response: &mut Response<R>)
where
    B: http_body::Body,
{
    use bytes::Buf as _;
    use http_body_util::BodyExt as _;

    if body.is_end_stream() {
        return;
    }
    let small = body
        .size_hint()
        .upper()
        .is_some_and(|n| n <= DISCARD_LIMIT as u64);
    let drained = !expects_continue
        && body.size_hint().lower() <= DISCARD_LIMIT as u64
        && tokio::time::timeout(DISCARD_DEADLINE, async {
            let mut body = std::pin::pin!(body);
            let mut read = 0usize;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { return false };
                if let Some(data) = frame.data_ref() {
                    read = read.saturating_add(data.remaining());
                    if read > DISCARD_LIMIT {
                        return false;
                    }
                }
            }
            true
        })
        .await
        .unwrap_or(false);
    if !drained {
        tracing::debug!(
            small,
            "closing the connection after this answer: the request's body was not read"
        );
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kerbside_gssapi::AcceptorConfig;
    use tower::ServiceExt;

    /// A cookie-mode layer without a keytab (the session cookie is what is checked)
    /// in front of a service that says who it saw and which cookies reached it.
    fn cookie_mode() -> (
        Arc<SessionCodec>,
        impl Fn(Request<String>) -> BoxFuture<Response<String>>,
    ) {
        let codec = Arc::new(SessionCodec::new(crate::session::SessionKeys::from_bytes(
            [9; 32],
        )));
        let config = NegotiateConfig {
            mode: AuthMode::Cookie,
            sessions: Some(codec.clone()),
            max_handshakes: 1,
            ..NegotiateConfig::base(None, false)
        };
        let layer = NegotiateLayer::with_config(config);
        let app = layer.layer(tower::service_fn(|request: Request<String>| async move {
            let who = request
                .extensions()
                .get::<Authenticated>()
                .map_or("-".to_owned(), |w| w.principal.clone());
            let cookies = request
                .headers()
                .get(COOKIE)
                .map_or("-", |v| v.to_str().unwrap_or("?"))
                .to_owned();
            Ok::<_, std::convert::Infallible>(Response::new(format!("{who} {cookies}")))
        }));
        let call = move |request: Request<String>| -> BoxFuture<Response<String>> {
            let app = app.clone();
            Box::pin(async move { app.oneshot(request).await.unwrap() })
        };
        (codec, call)
    }

    fn get(cookie: &str, authorization: Option<&str>) -> Request<String> {
        let mut builder = Request::get("/").header(COOKIE, cookie);
        if let Some(value) = authorization {
            builder = builder.header(AUTHORIZATION, value);
        }
        builder.body(String::new()).unwrap()
    }

    fn set_cookies(response: &Response<String>) -> Vec<String> {
        response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn a_session_cookie_is_cleared_with_a_401_left_alone_by_a_400_and_stripped_when_it_opens()
    {
        let (codec, call) = cookie_mode();
        // A cookie that does not open: the 401 clears it.
        let response = call(get("kerbside_session=forged; theme=dark", None)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let cleared = set_cookies(&response);
        assert!(
            cleared.len() == 1
                && cleared[0].starts_with("kerbside_session=;")
                && cleared[0].contains("Max-Age=0"),
            "{cleared:?}"
        );
        // An Authorization header that cannot be read: 400, before the cookie is looked at.
        let response = call(get("kerbside_session=forged", Some("Negotiate"))).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(set_cookies(&response).is_empty());
        // A cookie that opens stands for its principal; the application never sees it.
        let now = SystemTime::now();
        let (value, _) = codec
            .seal("alice@EXAMPLE.TEST", Duration::from_secs(600), now)
            .unwrap();
        let response = call(get(&format!("theme=dark; kerbside_session={value}"), None)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body(), "alice@EXAMPLE.TEST theme=dark");
        assert!(set_cookies(&response).is_empty());
    }

    #[tokio::test]
    async fn handshakes_beyond_the_cap_wait_for_a_free_slot() {
        let realm = kerbside_testkit::TestRealm::start().unwrap();
        let _env = realm.enter();
        let acceptor = NegotiateAcceptor::new(&AcceptorConfig {
            keytab: Some(realm.keytab().to_owned()),
            acceptor_name: None,
        })
        .unwrap();
        let mut config = NegotiateConfig::per_request(acceptor);
        config.max_handshakes = 1;
        let layer = NegotiateLayer::with_config(config);
        let shared = layer.shared.clone();
        let held = shared.handshakes.acquire().await.unwrap();
        let waiting = tokio::spawn({
            let shared = shared.clone();
            async move { shared.accept(b"not a token", None, None).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(
            !waiting.is_finished(),
            "a second handshake must wait while the only slot is taken"
        );
        drop(held);
        let done = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        assert!(
            matches!(done, Ok(Ok(true))),
            "it runs once the slot is free: {done:?}"
        );
    }
}
