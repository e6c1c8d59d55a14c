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
    after_rules, client_status, persistent_auth, AfterRules, RuleVerdict,
};
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

mod config;
mod password_schemes;
mod refusal;
mod session_cookie;

pub use config::{AuthMode, BasicFallback, ChannelBindingPolicy, NegotiateConfig};
use password_schemes::{basic, digest, ntlm, spnego_ntlm};
use refusal::{http11_required, refuse, Outcome, Refusal};
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
            let verdict = match config
                .access
                .decide(&method, &path, query.as_deref(), principal)
            {
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
        })
    }
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
