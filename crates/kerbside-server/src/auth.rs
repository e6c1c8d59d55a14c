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
use kerbside_proto::SchemeKind;
use tokio::sync::Semaphore;
use tower_layer::Layer;
use tower_service::Service;

use crate::access::{AccessRules, Decision};
use crate::body::BoxError;
use crate::identity::Authenticated;
use crate::metrics::{reason_label, GateMetrics};
use crate::per_connection::{ConnectionAuth, PerConnection, TlsChannel};
use crate::session::SessionCodec;

/// How clients stay authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthMode {
    /// No authentication: requests pass anonymously (anonymous mounts, benchmarks).
    None,
    /// Every request carries a fresh Negotiate token (the default).
    #[default]
    PerRequest,
    /// After one handshake the identity stays with the TCP connection
    /// (`Persistent-Auth: true`, as IIS and mod_auth_gssapi's `GssapiConnectionBound`).
    /// HTTP/2 clients are told `HTTP_1_1_REQUIRED`.
    Connection,
    /// After one handshake a session cookie (AEAD-sealed) stands for the identity.
    Cookie,
}

impl std::str::FromStr for AuthMode {
    type Err = crate::ParseSettingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Self::None),
            "per-request" => Ok(Self::PerRequest),
            "connection" => Ok(Self::Connection),
            "cookie" => Ok(Self::Cookie),
            other => Err(crate::ParseSettingError::new(
                "auth mode",
                other,
                "none, per-request, connection or cookie",
            )),
        }
    }
}

/// Whether tokens must be bound to the TLS channel (RFC 5929 `tls-server-end-point`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelBindingPolicy {
    /// Bindings are not checked.
    Off,
    /// Bindings the client sends must match; tokens without them are accepted.
    #[default]
    Optional,
    /// Tokens must carry matching bindings.
    Required,
}

impl std::str::FromStr for ChannelBindingPolicy {
    type Err = crate::ParseSettingError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(Self::Off),
            "optional" => Ok(Self::Optional),
            "required" => Ok(Self::Required),
            other => Err(crate::ParseSettingError::new(
                "channel-binding policy",
                other,
                "off, optional or required",
            )),
        }
    }
}

/// What the layer is configured with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NegotiateConfig {
    /// How clients stay authenticated.
    pub mode: AuthMode,
    /// The keytab's credentials (unused in [`AuthMode::None`]).
    pub acceptor: Option<NegotiateAcceptor>,
    /// Where accepted authenticators are kept so a restart does not forget them
    /// (`NegotiateAcceptor::with_replay_file`); `None` is the default place, under
    /// `KRB5RCACHEDIR` or `/var/tmp`. If the file cannot be used, MIT's replay
    /// cache checks every token instead (slower, as safe), and a warning says why.
    pub replay_cache: Option<std::path::PathBuf>,
    /// Session cookies (required by [`AuthMode::Cookie`]).
    pub sessions: Option<Arc<SessionCodec>>,
    /// Mark session cookies `Secure` (turn off only for plain-HTTP tests).
    pub secure_cookies: bool,
    /// Who may do what.
    pub access: Arc<AccessRules>,
    /// Channel bindings.
    pub channel_binding: ChannelBindingPolicy,
    /// At most this many tokens are accepted at once; more wait.
    pub max_handshakes: usize,
    /// Counters for `/metrics`.
    pub metrics: Option<GateMetrics>,
    /// Accept Basic credentials too, checked against the KDC (off by default; only
    /// over TLS).
    pub basic_fallback: Option<BasicFallback>,
    /// Accept NTLM against a users file (offered in connection mode only).
    pub ntlm: Option<crate::passwords::NtlmSettings>,
    /// Accept Digest against an htdigest file.
    pub digest: Option<crate::passwords::DigestSettings>,
    /// Accept Basic against an htpasswd file (before the KDC fallback, if both).
    pub basic_users: Option<crate::passwords::BasicUsers>,
    /// The realm of the Basic challenge when only `basic_users` is set.
    pub basic_realm: String,
}

/// Basic authentication as a fallback for clients without Kerberos: the user name
/// and password get a ticket from the KDC **and** that ticket is checked against the
/// gate's own keytab, so a fake KDC cannot vouch for a user.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BasicFallback {
    /// The `realm` shown in `WWW-Authenticate: Basic realm="..."`.
    pub realm: String,
    /// The service the ticket is asked for (a key the keytab holds); by default
    /// `HTTP@<host of the request>`.
    pub service: Option<String>,
}

impl NegotiateConfig {
    /// Per-request Negotiate with this acceptor; any authenticated principal allowed.
    pub fn per_request(acceptor: NegotiateAcceptor) -> Self {
        Self {
            mode: AuthMode::PerRequest,
            acceptor: Some(acceptor),
            replay_cache: None,
            sessions: None,
            secure_cookies: true,
            access: Arc::new(AccessRules::allow_all_authenticated()),
            channel_binding: ChannelBindingPolicy::Optional,
            max_handshakes: 64,
            metrics: None,
            basic_fallback: None,
            ntlm: None,
            digest: None,
            basic_users: None,
            basic_realm: "kerbside".to_owned(),
        }
    }
}

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
    handshakes: Semaphore,
    /// The acceptor with replays caught in memory (and kept in the replay cache
    /// file) instead of MIT's file replay cache (see
    /// `NegotiateAcceptor::with_replay_file`); `None` falls back to `config.acceptor`.
    memory_acceptor: Option<NegotiateAcceptor>,
    /// Whether requests must come with a [`PerConnection`] (connection mode, NTLM,
    /// channel bindings required).
    needs_connection: bool,
}

impl NegotiateLayer {
    /// A per-request layer checking tokens with this acceptor.
    pub fn new(acceptor: NegotiateAcceptor) -> Self {
        Self::with_config(NegotiateConfig::per_request(acceptor))
    }

    /// A layer with every setting given.
    pub fn with_config(config: NegotiateConfig) -> Self {
        let permits = config.max_handshakes.max(1);
        Self {
            shared: Arc::new(Shared {
                memory_acceptor: config.acceptor.as_ref().and_then(|a| {
                    a.with_replay_file(
                        kerbside_gssapi::ReplayCache::DEFAULT_CLOCK_SKEW,
                        config.replay_cache.as_deref(),
                    )
                    .map_err(|e| {
                        tracing::warn!("replays are checked by MIT's (slower) file cache: {e}");
                    })
                    .ok()
                }),
                needs_connection: config.mode == AuthMode::Connection
                    || config.ntlm.is_some()
                    || config.channel_binding == ChannelBindingPolicy::Required,
                config,
                handshakes: Semaphore::new(permits),
            }),
        }
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

fn refuse<B: Default>(status: StatusCode, token: Option<&[u8]>) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    if status == StatusCode::UNAUTHORIZED {
        if let Ok(value) = HeaderValue::from_str(&challenge(token)) {
            response.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
    }
    response
}

impl Shared {
    /// A refusal with no token: a 401 offers every scheme the gate takes.
    fn refuse<B: Default>(&self, status: StatusCode, h2: bool) -> Response<B> {
        self.refuse_with(&Refusal::new(status, None), h2)
    }

    /// A refusal. A 401 carrying a continuation token says only that; otherwise it
    /// offers every scheme the gate takes, strongest first, each challenge on its own
    /// header line (some clients, such as Python's httpx, find Digest only that way):
    /// Negotiate; NTLM in connection mode over HTTP/1.1 only (it authenticates the
    /// connection); Digest; Basic.
    fn refuse_with<B: Default>(&self, refusal: &Refusal, h2: bool) -> Response<B> {
        let status = refusal.status;
        let mut response = Response::new(B::default());
        *response.status_mut() = status;
        if let Some(m) = self.metrics() {
            m.response(status);
        }
        if status != StatusCode::UNAUTHORIZED {
            return response;
        }
        let config = &self.config;
        let mut lines: Vec<String> = Vec::new();
        match (&refusal.token, refusal.ntlm) {
            (Some(token), true) => lines.push(
                kerbside_proto::Challenge::new(
                    kerbside_proto::Scheme::NTLM,
                    kerbside_proto::AuthData::base64(Some(token)),
                )
                .to_header_value(),
            ),
            (Some(token), false) => lines.push(challenge(Some(token))),
            (None, _) => {
                if config.acceptor.is_some() || config.ntlm.as_ref().is_some_and(|n| n.in_negotiate)
                {
                    lines.push(challenge(None));
                }
                if config.ntlm.is_some() && config.mode == AuthMode::Connection && !h2 {
                    lines.push("NTLM".to_owned());
                }
                if let Some(digest) = &config.digest {
                    for c in digest.challenges(refusal.stale) {
                        lines.push(crate::passwords::DigestSettings::header_value(&c));
                    }
                }
                let basic_realm =
                    config
                        .basic_fallback
                        .as_ref()
                        .map(|b| b.realm.as_str())
                        .or(config
                            .basic_users
                            .as_ref()
                            .map(|_| config.basic_realm.as_str()));
                if let Some(realm) = basic_realm {
                    if let Ok(value) = kerbside_proto::scheme::basic::challenge_header_value(realm)
                    {
                        lines.push(value);
                    }
                }
            }
        }
        for line in lines {
            if let Ok(value) = HeaderValue::from_str(&line) {
                response.headers_mut().append(WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// Marks the layer's answer to an HTTP/2 request that connection-bound
/// authentication cannot serve: the response is `421 Misdirected Request` (the client
/// should retry on an HTTP/1.1 connection) with this in its extensions. A server that
/// can reset HTTP/2 streams turns it into `HTTP_1_1_REQUIRED` (RFC 9113 §8.7) with
/// [`http11_required_as_error`], which is what browsers act on; the gate does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http11Required;

/// For `tower::ServiceBuilder::map_result` in front of [`NegotiateLayer`] on a
/// hyper server: a response marked [`Http11Required`] becomes the error that makes
/// hyper reset the HTTP/2 stream with `HTTP_1_1_REQUIRED`; everything else passes.
pub fn http11_required_as_error<B, E: Into<BoxError>>(
    result: Result<Response<B>, E>,
) -> Result<Response<B>, BoxError> {
    match result {
        Ok(response) if response.extensions().get::<Http11Required>().is_some() => {
            Err(Box::new(h2::Error::from(h2::Reason::HTTP_1_1_REQUIRED)))
        }
        Ok(response) => Ok(response),
        Err(e) => Err(e.into()),
    }
}

fn http11_required<B: Default>() -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::MISDIRECTED_REQUEST;
    response.extensions_mut().insert(Http11Required);
    response
}

/// How a request is authenticated, once decided.
enum Identity {
    Anonymous,
    Known {
        principal: String,
        scheme: SchemeKind,
        /// See [`Authenticated::kerberos`].
        kerberos: bool,
        final_token: Option<Vec<u8>>,
        set_cookie: Option<String>,
        /// Digest's `Authentication-Info` (rspauth).
        info: Option<String>,
        /// See [`Authenticated::channel_bound`].
        channel_bound: bool,
    },
}

/// Why a token was refused, for the log and the metrics.
struct Refusal {
    status: StatusCode,
    /// A continuation token: with one, the 401 carries only it.
    token: Option<Vec<u8>>,
    /// The token is an NTLM CHALLENGE (`WWW-Authenticate: NTLM`), not Negotiate.
    ntlm: bool,
    /// Digest challenges say `stale=true`.
    stale: bool,
}

impl Refusal {
    fn new(status: StatusCode, token: Option<Vec<u8>>) -> Self {
        Self {
            status,
            token,
            ntlm: false,
            stale: false,
        }
    }
}

impl Shared {
    fn metrics(&self) -> Option<&GateMetrics> {
        self.config.metrics.as_ref()
    }

    /// Accepts one token, within the handshake limit.
    async fn accept(
        self: &Arc<Self>,
        token: Vec<u8>,
        conn: Option<Arc<ConnectionAuth>>,
        binding: Option<Arc<Vec<u8>>>,
    ) -> Result<Result<AcceptStep, GssError>, Refusal> {
        let Some(acceptor) = self
            .memory_acceptor
            .clone()
            .or_else(|| self.config.acceptor.clone())
        else {
            return Err(Refusal::new(StatusCode::UNAUTHORIZED, None));
        };
        let Ok(_permit) = self.handshakes.acquire().await else {
            return Err(Refusal::new(StatusCode::SERVICE_UNAVAILABLE, None));
        };
        let started = Instant::now();
        let binding = match self.config.channel_binding {
            ChannelBindingPolicy::Off => None,
            _ => binding,
        };
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
        let result = ctx.step(&token, binding.as_deref().map(Vec::as_slice));
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
    ReqBody: Send + 'static,
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
        Box::pin(async move {
            let config = &shared.config;
            let method = head.method.clone();
            let path = head.uri.path().to_owned();
            let query = head.uri.query().map(str::to_owned);
            let h2 = head.version == Version::HTTP_2;
            let connection = PerConnection::from_extensions(&head.extensions);
            if connection.is_none() && shared.needs_connection {
                tracing::error!(
                    "this layer keeps state per connection (connection mode, NTLM, or channel \
                     bindings required), but the request carries no PerConnection: serve the \
                     app with into_make_service_with_connect_info::<PerConnection>() (axum) or \
                     wrap each connection's service in PerConnection::new(peer) (hyper)"
                );
                return Ok(shared.refuse(StatusCode::SERVICE_UNAVAILABLE, h2));
            }
            let conn = connection.map(|c| c.auth().clone());
            // A TlsChannel of the request (forward-auth: the front proxy's certificate)
            // takes the place of the connection's own.
            let binding = match head.extensions.get::<TlsChannel>() {
                Some(channel) => channel.binding.clone(),
                None => connection.and_then(|c| c.binding().cloned()),
            };
            let presented = read_authorization(
                head.headers
                    .get_all(AUTHORIZATION)
                    .iter()
                    .map(HeaderValue::as_bytes),
            );
            let presented = match presented {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(%path, error = %e, "bad Authorization header");
                    return Ok(shared.refuse(StatusCode::BAD_REQUEST, h2));
                }
            };
            // The session cookie is opened once per request. One that does not open is
            // cleared with the next 401, so a browser stops sending it.
            let session = config
                .sessions
                .as_ref()
                .map(|codec| codec.from_request(&head.headers, SystemTime::now()));
            let stale_cookie = match (&session, &config.sessions) {
                (Some(Err(_)), Some(codec)) => {
                    Some(codec.clear_cookie_header(config.secure_cookies))
                }
                _ => None,
            };
            let identity =
                match identify(&shared, &head, presented, conn, binding, h2, session).await {
                    Ok(identity) => identity,
                    Err(Outcome::Refuse(refusal)) => {
                        let mut response = shared.refuse_with(&refusal, h2);
                        clear_cookie(&mut response, stale_cookie.as_deref());
                        return Ok(response);
                    }
                    Err(Outcome::Http11Required) => return Ok(http11_required()),
                };
            let principal = match &identity {
                Identity::Known { principal, .. } => Some(principal.as_str()),
                Identity::Anonymous => None,
            };
            match config
                .access
                .decide(&method, &path, query.as_deref(), principal)
            {
                Decision::Allow => {}
                Decision::Authenticate => {
                    if h2 && config.mode == AuthMode::Connection {
                        return Ok(http11_required());
                    }
                    let mut response = shared.refuse(StatusCode::UNAUTHORIZED, h2);
                    clear_cookie(&mut response, stale_cookie.as_deref());
                    return Ok(response);
                }
                Decision::Deny { reason } => {
                    tracing::warn!(principal = principal.unwrap_or("-"), %method, %path, "access denied: {reason}");
                    return Ok(shared.refuse(StatusCode::FORBIDDEN, h2));
                }
            }
            head.headers.remove(AUTHORIZATION);
            if let Some(codec) = &config.sessions {
                strip_cookie(&mut head.headers, codec.cookie_name());
            }
            let (principal, final_token, set_cookie, info) = match identity {
                Identity::Known {
                    principal,
                    scheme,
                    kerberos,
                    final_token,
                    set_cookie,
                    info,
                    channel_bound,
                } => {
                    let mut who = Authenticated::new(principal.clone(), scheme, kerberos);
                    let groups = config.access.groups();
                    who.groups = groups
                        .names()
                        .filter(|g| groups.contains(g, &principal))
                        .map(str::to_owned)
                        .collect();
                    who.channel_bound = channel_bound;
                    head.extensions.insert(who);
                    (Some(principal), final_token, set_cookie, info)
                }
                Identity::Anonymous => (None, None, None, None),
            };
            let request = Request::from_parts(head, body);
            let mut response = inner.call(request).await?;
            if principal.is_some() && response.status() == StatusCode::UNAUTHORIZED {
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
            if config.mode == AuthMode::Connection && principal.is_some() && !h2 {
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
        })
    }
}

enum Outcome {
    Refuse(Refusal),
    Http11Required,
}

/// Works out who the client is: from the connection, a session cookie (`session`:
/// what opening the request's cookie gave, when sessions are on), or a token.
async fn identify(
    shared: &Arc<Shared>,
    request: &http::request::Parts,
    presented: Presented,
    conn: Option<Arc<ConnectionAuth>>,
    binding: Option<Arc<Vec<u8>>>,
    h2: bool,
    session: Option<Result<Option<crate::session::Session>, crate::session::SessionError>>,
) -> Result<Identity, Outcome> {
    let config = &shared.config;
    if config.mode == AuthMode::None {
        return Ok(Identity::Anonymous);
    }
    let token = match presented {
        Presented::Token(token) => Some(token),
        Presented::Nothing => None,
        Presented::OtherScheme(scheme) => {
            if scheme.eq_ignore_ascii_case("basic")
                && (config.basic_fallback.is_some() || config.basic_users.is_some())
            {
                return basic(shared, request).await;
            }
            if scheme.eq_ignore_ascii_case("ntlm") && config.ntlm.is_some() {
                return ntlm(shared, request, conn, binding, h2);
            }
            if scheme.eq_ignore_ascii_case("digest") && config.digest.is_some() {
                return digest(shared, request);
            }
            tracing::info!(%scheme, "credentials of another scheme; asking for Negotiate");
            None
        }
    };
    let connection_mode = config.mode == AuthMode::Connection;
    if connection_mode && h2 {
        // Connection-bound authentication needs HTTP/1.1 connections; tell HTTP/2
        // clients so before anything else (RFC 7540 §13.2 HTTP_1_1_REQUIRED) —
        // unless the request needs no authentication.
        let path = request.uri.path();
        if token.is_some()
            || config
                .access
                .needs_authentication(&request.method, path, request.uri.query())
        {
            return Err(Outcome::Http11Required);
        }
    }
    if token.is_none() {
        if connection_mode {
            if let Some((principal, scheme, kerberos, channel_bound)) =
                conn.as_ref().and_then(|c| c.lock().principal.clone())
            {
                if let Some(m) = shared.metrics() {
                    m.connection_reuse();
                }
                return Ok(Identity::Known {
                    principal,
                    scheme,
                    kerberos,
                    final_token: None,
                    set_cookie: None,
                    info: None,
                    channel_bound,
                });
            }
        }
        if let Some(session) = session {
            match session {
                Ok(Some(session)) => {
                    if let Some(m) = shared.metrics() {
                        m.session_hit();
                    }
                    // Only a Kerberos handshake makes a session cookie.
                    return Ok(Identity::Known {
                        principal: session.principal,
                        scheme: SchemeKind::Negotiate,
                        kerberos: true,
                        final_token: None,
                        set_cookie: None,
                        info: None,
                        channel_bound: false,
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::info!("session cookie refused: {e}");
                    if let Some(m) = shared.metrics() {
                        m.failure("bad_session_cookie");
                    }
                }
            }
        }
        return Ok(Identity::Anonymous);
    }
    let token = token.unwrap_or_default();
    if let Some(settings) = config.ntlm.as_ref().filter(|n| n.in_negotiate) {
        let pending = conn.as_ref().and_then(|c| c.lock().spnego_ntlm.take());
        // A raw NTLM message under Negotiate (not SPNEGO) goes to GSSAPI, which refuses it.
        if pending.is_some()
            || (kerbside_proto::spnego::is_ntlmssp_init(&token) && !token.starts_with(b"NTLMSSP"))
        {
            return spnego_ntlm(shared, settings, request, conn, binding, &token, pending);
        }
    }
    let accepted = shared
        .accept(
            token,
            conn.clone().filter(|_| connection_mode),
            binding.clone(),
        )
        .await
        .map_err(Outcome::Refuse)?;
    match accepted {
        Ok(AcceptStep::Done {
            principal,
            token,
            channel_bound,
            lifetime,
            ..
        }) => {
            if config.channel_binding == ChannelBindingPolicy::Required
                && binding.is_some()
                && !channel_bound
            {
                tracing::warn!(%principal, "token not bound to this TLS channel (channel-binding required)");
                if let Some(m) = shared.metrics() {
                    m.failure("channel_bindings_missing");
                }
                return Err(Outcome::Refuse(Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    None,
                )));
            }
            tracing::info!(%principal, path = %request.uri.path(), "authenticated");
            if connection_mode {
                if let Some(conn) = &conn {
                    conn.lock().principal = Some((
                        principal.clone(),
                        SchemeKind::Negotiate,
                        true,
                        channel_bound,
                    ));
                }
            }
            let set_cookie = match (&config.sessions, config.mode) {
                (Some(codec), AuthMode::Cookie) => {
                    let remaining = lifetime.unwrap_or(Duration::from_secs(3600));
                    let now = SystemTime::now();
                    match codec.seal(&principal, remaining, now) {
                        Ok((value, session)) => Some(codec.set_cookie_header(
                            &value,
                            &session,
                            config.secure_cookies,
                            now,
                        )),
                        Err(e) => {
                            tracing::error!("cannot make a session cookie: {e}");
                            None
                        }
                    }
                }
                _ => None,
            };
            Ok(Identity::Known {
                principal,
                scheme: SchemeKind::Negotiate,
                kerberos: true,
                final_token: token,
                set_cookie,
                info: None,
                channel_bound,
            })
        }
        Ok(AcceptStep::Continue(next)) => {
            if connection_mode && conn.is_some() {
                return Err(Outcome::Refuse(Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    Some(next),
                )));
            }
            // Per request, a context cannot wait for the next leg: start over.
            tracing::warn!("token needs another leg, which only connection mode keeps");
            Err(Outcome::Refuse(Refusal::new(
                StatusCode::UNAUTHORIZED,
                None,
            )))
        }
        Err(e) => {
            tracing::warn!(problem = ?e.problem(), path = %request.uri.path(), "Negotiate token refused: {e}");
            if let Some(m) = shared.metrics() {
                m.failure(reason_label(e.problem()));
            }
            Err(Outcome::Refuse(Refusal::new(
                StatusCode::UNAUTHORIZED,
                None,
            )))
        }
    }
}

/// Checks `Authorization: Basic` against the KDC and the keytab.
async fn basic(shared: &Arc<Shared>, request: &http::request::Parts) -> Result<Identity, Outcome> {
    let config = &shared.config;
    let refused = || Outcome::Refuse(Refusal::new(StatusCode::UNAUTHORIZED, None));
    let decoded = request
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| kerbside_proto::Credentials::parse(v.as_bytes()).ok())
        .and_then(|c| c.decode_token68().ok().flatten())
        .and_then(|bytes| String::from_utf8(bytes).ok());
    let Some((user, password)) = decoded
        .as_deref()
        .and_then(|d| d.split_once(':'))
        .map(|(u, p)| (u.to_owned(), p.to_owned()))
    else {
        return Err(Outcome::Refuse(Refusal::new(StatusCode::BAD_REQUEST, None)));
    };
    if user.is_empty() || user.contains(['/', '\0']) {
        return Err(refused());
    }
    if let Some(users) = config.basic_users.as_ref().filter(|u| u.contains(&user)) {
        // The htpasswd file knows this user: bcrypt, off the async threads and within
        // the handshake limit (it is slow on purpose).
        let Ok(_permit) = shared.handshakes.acquire().await else {
            return Err(refused());
        };
        let users = users.clone();
        let started = Instant::now();
        let (name, pass) = (user.clone(), password.clone());
        let verdict = tokio::task::spawn_blocking(move || users.verify(&name, &pass)).await;
        let ok = matches!(
            verdict,
            Ok(kerbside_proto::scheme::basic::htpasswd::Verdict::Verified)
        );
        if let Some(m) = shared.metrics() {
            m.handshake(ok, started.elapsed());
            if !ok {
                m.failure("basic_wrong_password");
            }
        }
        if !ok {
            tracing::warn!(%user, "Basic credentials refused (htpasswd): {verdict:?}");
            return Err(refused());
        }
        tracing::info!(%user, path = %request.uri.path(), "authenticated with Basic (htpasswd)");
        return Ok(Identity::Known {
            principal: user,
            scheme: SchemeKind::Basic,
            kerberos: false,
            final_token: None,
            set_cookie: None,
            info: None,
            channel_bound: false,
        });
    }
    let (Some(fallback), Some(acceptor)) = (&config.basic_fallback, config.acceptor.clone()) else {
        tracing::warn!(%user, "Basic credentials for a user the gate does not know");
        if let Some(m) = shared.metrics() {
            m.failure("basic_unknown_user");
        }
        return Err(refused());
    };
    let host = request
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri.host())
        .map(strip_port)
        .unwrap_or("localhost")
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let service = fallback
        .service
        .clone()
        .unwrap_or_else(|| format!("HTTP@{host}"));
    let Ok(_permit) = shared.handshakes.acquire().await else {
        return Err(refused());
    };
    let started = Instant::now();
    let user_for_log = user.clone();
    let result = tokio::task::spawn_blocking(move || {
        use kerbside_proto::Mechanism;
        let config = kerbside_gssapi::InitiatorConfig {
            target: service,
            mutual: kerbside_proto::MutualAuth::Off,
            delegation: kerbside_gssapi::Delegation::None,
            credentials: kerbside_gssapi::ClientCredentials::FreshPassword {
                principal: user,
                password,
            },
            channel_bindings: None,
        };
        let mut initiator = kerbside_gssapi::NegotiateInitiator::new(&config)?;
        let token = match initiator.step(None)? {
            kerbside_proto::Step::Continue(t) | kerbside_proto::Step::Done(Some(t)) => t,
            kerbside_proto::Step::Done(None) => Vec::new(),
        };
        // The ticket the KDC issued must open with our own key.
        acceptor.accept(&token)
    })
    .await;
    if let Some(m) = shared.metrics() {
        m.handshake(
            matches!(result, Ok(Ok(AcceptStep::Done { .. }))),
            started.elapsed(),
        );
    }
    match result {
        Ok(Ok(AcceptStep::Done { principal, .. })) => {
            tracing::info!(%principal, path = %request.uri.path(), "authenticated with Basic (checked against the KDC and the keytab)");
            Ok(Identity::Known {
                principal,
                scheme: SchemeKind::Basic,
                kerberos: true,
                final_token: None,
                set_cookie: None,
                info: None,
                channel_bound: false,
            })
        }
        Ok(Ok(AcceptStep::Continue(_))) => Err(refused()),
        Ok(Err(e)) => {
            tracing::warn!(user = %user_for_log, problem = ?e.problem(), "Basic credentials refused: {e}");
            if let Some(m) = shared.metrics() {
                m.failure(reason_label(e.problem()));
            }
            Err(refused())
        }
        Err(e) => {
            tracing::error!("authentication task failed: {e}");
            Err(refused())
        }
    }
}

/// `Authorization: NTLM`: a NEGOTIATE gets the CHALLENGE (kept with the connection),
/// an AUTHENTICATE is checked against it and the users file; the connection is then
/// authenticated (NTLM authenticates connections, MS-NTHT).
fn ntlm(
    shared: &Arc<Shared>,
    request: &http::request::Parts,
    conn: Option<Arc<ConnectionAuth>>,
    binding: Option<Arc<Vec<u8>>>,
    h2: bool,
) -> Result<Identity, Outcome> {
    let config = &shared.config;
    let refused = |status| Outcome::Refuse(Refusal::new(status, None));
    let Some(settings) = &config.ntlm else {
        return Err(refused(StatusCode::UNAUTHORIZED));
    };
    if config.mode != AuthMode::Connection {
        tracing::info!("NTLM credentials, but NTLM needs connection mode; asking again");
        return Err(refused(StatusCode::UNAUTHORIZED));
    }
    if h2 {
        return Err(Outcome::Http11Required);
    }
    let token = request
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| kerbside_proto::Credentials::parse(v.as_bytes()).ok())
        .and_then(|c| c.decode_token68().ok().flatten());
    let Some(token) = token else {
        return Err(refused(StatusCode::BAD_REQUEST));
    };
    let Some(conn) = conn else {
        return Err(refused(StatusCode::UNAUTHORIZED));
    };
    match crate::passwords::ntlm_message_type(&token) {
        Some(1) => match settings.challenge(&token) {
            Ok((challenge, pending)) => {
                conn.lock().ntlm = Some(pending);
                Err(Outcome::Refuse(Refusal {
                    ntlm: true,
                    ..Refusal::new(StatusCode::UNAUTHORIZED, Some(challenge))
                }))
            }
            Err(e) => {
                tracing::warn!("bad NTLM NEGOTIATE message: {e}");
                Err(refused(StatusCode::BAD_REQUEST))
            }
        },
        Some(3) => {
            let Some(pending) = conn.lock().ntlm.take() else {
                tracing::warn!("NTLM AUTHENTICATE without a CHALLENGE on this connection");
                if let Some(m) = shared.metrics() {
                    m.failure("ntlm_no_challenge");
                }
                return Err(refused(StatusCode::UNAUTHORIZED));
            };
            let check = ntlm_binding_check(config.channel_binding, binding.is_some());
            let started = Instant::now();
            let result = settings.verify(
                pending,
                &token,
                binding.as_deref().map(Vec::as_slice),
                check,
            );
            if let Some(m) = shared.metrics() {
                m.handshake(result.is_ok(), started.elapsed());
            }
            match result {
                Ok((principal, channel_bound)) => {
                    tracing::info!(%principal, channel_bound, path = %request.uri.path(), "authenticated with NTLM");
                    conn.lock().principal =
                        Some((principal.clone(), SchemeKind::Ntlm, false, channel_bound));
                    Ok(Identity::Known {
                        principal,
                        scheme: SchemeKind::Ntlm,
                        kerberos: false,
                        final_token: None,
                        set_cookie: None,
                        info: None,
                        channel_bound,
                    })
                }
                Err(e) => {
                    tracing::warn!(path = %request.uri.path(), "NTLM credentials refused: {e}");
                    if let Some(m) = shared.metrics() {
                        m.failure("ntlm_refused");
                    }
                    Err(refused(StatusCode::UNAUTHORIZED))
                }
            }
        }
        _ => Err(refused(StatusCode::BAD_REQUEST)),
    }
}

/// NTLM inside SPNEGO under `Negotiate`: the NegTokenInit gets the CHALLENGE (kept
/// with the connection), the NegTokenResp with the AUTHENTICATE is checked against it.
fn spnego_ntlm(
    shared: &Arc<Shared>,
    settings: &crate::passwords::NtlmSettings,
    request: &http::request::Parts,
    conn: Option<Arc<ConnectionAuth>>,
    binding: Option<Arc<Vec<u8>>>,
    token: &[u8],
    pending: Option<kerbside_proto::spnego::SpnegoExpectAuthenticate>,
) -> Result<Identity, Outcome> {
    let config = &shared.config;
    let refused = |status| Outcome::Refuse(Refusal::new(status, None));
    let Some(conn) = conn.filter(|_| config.mode == AuthMode::Connection) else {
        tracing::info!("NTLM inside Negotiate needs connection mode; asking again");
        return Err(refused(StatusCode::UNAUTHORIZED));
    };
    let Some(pending) = pending else {
        return match settings.spnego_challenge(token) {
            Ok((reply, pending)) => {
                conn.lock().spnego_ntlm = Some(pending);
                Err(Outcome::Refuse(Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    Some(reply),
                )))
            }
            Err(e) => {
                tracing::warn!("bad NTLM-in-SPNEGO token: {e}");
                Err(refused(StatusCode::BAD_REQUEST))
            }
        };
    };
    let check = ntlm_binding_check(config.channel_binding, binding.is_some());
    let started = Instant::now();
    let result =
        settings.spnego_verify(pending, token, binding.as_deref().map(Vec::as_slice), check);
    if let Some(m) = shared.metrics() {
        m.handshake(result.is_ok(), started.elapsed());
    }
    match result {
        Ok((reply, principal, channel_bound)) => {
            tracing::info!(%principal, channel_bound, path = %request.uri.path(), "authenticated with NTLM inside Negotiate");
            // The HTTP scheme was Negotiate, whatever mechanism SPNEGO chose.
            conn.lock().principal = Some((
                principal.clone(),
                SchemeKind::Negotiate,
                false,
                channel_bound,
            ));
            Ok(Identity::Known {
                principal,
                scheme: SchemeKind::Negotiate,
                kerberos: false,
                final_token: Some(reply),
                set_cookie: None,
                info: None,
                channel_bound,
            })
        }
        Err(e) => {
            tracing::warn!(path = %request.uri.path(), "NTLM inside Negotiate refused: {e}");
            if let Some(m) = shared.metrics() {
                m.failure("ntlm_refused");
            }
            Err(refused(StatusCode::UNAUTHORIZED))
        }
    }
}

fn ntlm_binding_check(
    policy: ChannelBindingPolicy,
    tls: bool,
) -> kerbside_proto::scheme::ntlm::server::ChannelBindingCheck {
    use kerbside_proto::scheme::ntlm::server::ChannelBindingCheck;
    match (policy, tls) {
        (_, false) | (ChannelBindingPolicy::Off, _) => ChannelBindingCheck::Off,
        (ChannelBindingPolicy::Optional, true) => ChannelBindingCheck::IfPresent,
        (ChannelBindingPolicy::Required, true) => ChannelBindingCheck::Required,
    }
}

/// `Authorization: Digest`, checked against the htdigest file; the nonce count is
/// recorded so a replayed request is refused.
fn digest(shared: &Arc<Shared>, request: &http::request::Parts) -> Result<Identity, Outcome> {
    let config = &shared.config;
    let Some(settings) = &config.digest else {
        return Err(Outcome::Refuse(Refusal::new(
            StatusCode::UNAUTHORIZED,
            None,
        )));
    };
    let credentials = request
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| kerbside_proto::Credentials::parse(v.as_bytes()).ok());
    let Some(credentials) = credentials else {
        return Err(Outcome::Refuse(Refusal::new(StatusCode::BAD_REQUEST, None)));
    };
    // The client hashed the request target as it sent it, before the gate's edge made
    // the path canonical.
    let target = match request
        .extensions
        .get::<crate::canonical_path::OriginalTarget>()
    {
        Some(original) => original.0.clone(),
        None => request
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned(),
    };
    let started = Instant::now();
    let result = settings.verify(&credentials, request.method.as_str(), &target);
    if let Some(m) = shared.metrics() {
        m.handshake(result.is_ok(), started.elapsed());
    }
    match result {
        Ok(verified) => {
            tracing::info!(principal = %verified.user, path = %request.uri.path(), "authenticated with Digest");
            Ok(Identity::Known {
                principal: verified.user,
                scheme: SchemeKind::Digest,
                kerberos: false,
                final_token: None,
                set_cookie: None,
                info: Some(verified.authentication_info),
                channel_bound: false,
            })
        }
        Err(refusal) => {
            tracing::warn!(path = %request.uri.path(), "Digest credentials refused: {refusal}");
            if let Some(m) = shared.metrics() {
                m.failure(if refusal.is_stale() {
                    "digest_stale_nonce"
                } else {
                    "digest_refused"
                });
            }
            let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::BAD_REQUEST);
            Err(Outcome::Refuse(Refusal {
                stale: refusal.is_stale(),
                ..Refusal::new(status, None)
            }))
        }
    }
}

/// Adds a `Set-Cookie` that clears a session cookie that did not open.
fn clear_cookie<B>(response: &mut Response<B>, clear: Option<&str>) {
    if let Some(value) = clear.and_then(|c| HeaderValue::from_str(c).ok()) {
        response.headers_mut().append(SET_COOKIE, value);
    }
}

/// Removes the session cookie from `Cookie` headers before the request goes on: it
/// is a credential, and the upstream has no use for it.
fn strip_cookie(headers: &mut http::HeaderMap, name: &str) {
    let values: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    if values.is_empty() {
        return;
    }
    headers.remove(COOKIE);
    for value in values {
        let Ok(text) = value.to_str() else {
            continue;
        };
        let kept: Vec<&str> = text
            .split(';')
            .map(str::trim)
            .filter(|pair| pair.split_once('=').is_none_or(|(n, _)| n.trim() != name))
            .filter(|pair| !pair.is_empty())
            .collect();
        if !kept.is_empty() {
            if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
                headers.append(COOKIE, v);
            }
        }
    }
}

/// `host:port` → `host` (`[v6]:port` → `[v6]`).
fn strip_port(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) && !host.ends_with(':') => {
            host
        }
        _ => authority,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kerbside_gssapi::AcceptorConfig;

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
            async move {
                shared
                    .accept(b"not a token".to_vec(), None, None)
                    .await
                    .is_ok()
            }
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
