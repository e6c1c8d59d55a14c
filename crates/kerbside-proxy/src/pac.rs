//! Routes from a PAC file (`--pac FILE|URL`): [`PacRouteSource`] fetches the
//! file, hands it to the [`kerbside_pac`] evaluator (QuickJS on its own thread,
//! with a time and a memory limit), caches each host's answer, reads the answer
//! with [`parse_pac_result`], and re-reads the file when it changes (a file is
//! looked at every second, a URL re-fetched every refresh interval). A PAC that
//! cannot be fetched, does not run, or fails for a host means `DIRECT` for it,
//! with a warning; a later fetch that fails keeps the last script that worked.
//! The PAC URL is fetched with no credentials and through no proxy.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Limited};
use kerbside_client::{Client, ClientConfig, ProxySettings, RequestBody};
use kerbside_pac::{PacEngine, PacError, PacLimits};
use kerbside_proto::forward_proxy::hosts::{HostList, HostPattern};
use kerbside_proto::forward_proxy::route::{parse_pac_result, Route, RouteChoice};

use crate::metrics::{Metrics, PAC_EVALUATION_SECONDS};
use crate::route_source::{RouteFuture, RouteQuery, RouteSource};

/// The largest PAC file read.
const MAX_PAC_BYTES: usize = 1 << 20;
/// How long fetching the PAC URL may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a PAC file on disk is looked at.
const FILE_POLL: Duration = Duration::from_secs(1);
/// How long an answer is kept for a host (the time functions may change it).
const CACHE_TTL: Duration = Duration::from_secs(60);
/// The most hosts cached.
const CACHE_MAX: usize = 4096;
/// The default interval between fetches of a PAC URL.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(300);

/// Where the PAC file is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PacLocation {
    /// A file on disk.
    File(PathBuf),
    /// An `http://` or `https://` URL.
    Url(Uri),
}

impl PacLocation {
    /// `http://…`, `https://…`, `file:///path`, or a path.
    pub fn parse(text: &str) -> Result<Self, String> {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            let uri: Uri = text
                .parse()
                .map_err(|e| format!("--pac {text:?} is not a URL: {e}"))?;
            if uri.host().is_none() {
                return Err(format!("--pac {text:?} has no host"));
            }
            return Ok(Self::Url(uri));
        }
        if let Some(path) = text.strip_prefix("file://") {
            return Ok(Self::File(PathBuf::from(path)));
        }
        if lower.contains("://") {
            return Err(format!(
                "--pac {text:?}: give a file, or an http:// or https:// URL"
            ));
        }
        Ok(Self::File(PathBuf::from(text)))
    }

    /// The proxies that may get credentials by default: the PAC server's own
    /// domain (`wpad.corp.example` → `corp.example` and its subdomains; a
    /// one-label name or an address: itself). None for a file.
    pub fn auth_domain(&self) -> Option<HostPattern> {
        let Self::Url(uri) = self else { return None };
        let host = uri
            .host()?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return HostList::parse(&ip.to_string())
                .ok()
                .and_then(|l| l.patterns().first().cloned());
        }
        let domain = match host.split_once('.') {
            Some((_, rest)) if rest.contains('.') => rest.to_owned(),
            _ => host,
        };
        HostList::parse(&domain)
            .ok()
            .and_then(|l| l.patterns().first().cloned())
    }
}

impl std::fmt::Display for PacLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "PAC file {}", p.display()),
            Self::Url(u) => write!(f, "PAC file {u}"),
        }
    }
}

#[derive(Default)]
struct PacState {
    /// A hash of the script loaded (`None`: nothing usable is loaded).
    loaded: Option<u64>,
    /// A hash of the last text read, loaded or not.
    seen: Option<u64>,
    /// Why nothing is loaded, or why the last fetch failed.
    problem: Option<String>,
    /// The file's modification time and length when last read.
    stamp: Option<(SystemTime, u64)>,
    cache: HashMap<(String, bool), (Route, Instant)>,
}

/// Routes from a PAC file.
pub struct PacRouteSource {
    location: PacLocation,
    engine: PacEngine,
    fetcher: Client,
    refresh: Duration,
    state: Mutex<PacState>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for PacRouteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacRouteSource")
            .field("location", &self.location)
            .field("refresh", &self.refresh)
            .finish_non_exhaustive()
    }
}

fn hash_of(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl PacRouteSource {
    /// Reads the PAC file once (a failure is logged and means `DIRECT` until a
    /// later read works), then re-reads it in the background while the source
    /// is in use. `client` supplies TLS settings for an `https://` PAC URL; its
    /// credentials and proxy are not used. Evaluation times and failures go to
    /// `metrics` (the proxy's, [`ProxyConfig::metrics`](crate::ProxyConfig::metrics)).
    /// Must run inside a tokio runtime.
    pub async fn start(
        location: PacLocation,
        client: &ClientConfig,
        limits: PacLimits,
        refresh: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, String> {
        let engine = PacEngine::start(limits).map_err(|e| e.to_string())?;
        let mut config = client.clone();
        config.proxy = ProxySettings::default();
        config.auth.schemes.enabled.clear();
        config.origin_auth = false;
        config.timeout = Some(FETCH_TIMEOUT);
        let fetcher = Client::new(config).map_err(|e| e.to_string())?;
        let source = Arc::new(Self {
            location,
            engine,
            fetcher,
            refresh,
            state: Mutex::new(PacState::default()),
            metrics,
        });
        source.reload().await;
        let weak = Arc::downgrade(&source);
        let interval = match source.location {
            PacLocation::File(_) => FILE_POLL,
            PacLocation::Url(_) => refresh,
        };
        tokio::spawn(refresh_loop(weak, interval));
        Ok(source)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PacState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The text of the PAC file, or `None` when a file has not changed since
    /// it was last read.
    async fn fetch(&self) -> Result<Option<String>, String> {
        match &self.location {
            PacLocation::File(path) => {
                let meta = tokio::fs::metadata(path)
                    .await
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let stamp = (
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                );
                if self.state().stamp == Some(stamp) {
                    return Ok(None);
                }
                if meta.len() > MAX_PAC_BYTES as u64 {
                    return Err(format!(
                        "{} is larger than {} KiB",
                        path.display(),
                        MAX_PAC_BYTES >> 10
                    ));
                }
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                self.state().stamp = Some(stamp);
                Ok(Some(text))
            }
            PacLocation::Url(uri) => {
                let mut request = Request::new(RequestBody::empty());
                *request.uri_mut() = uri.clone();
                let response = self
                    .fetcher
                    .send(request, &|_: &kerbside_client::Event| {})
                    .await
                    .map_err(|e| format!("cannot fetch {uri}: {e}"))?;
                if response.status() != StatusCode::OK {
                    return Err(format!("{uri} answered {}", response.status()));
                }
                let body = Limited::new(response.into_body(), MAX_PAC_BYTES)
                    .collect()
                    .await
                    .map_err(|e| format!("cannot read {uri}: {e}"))?
                    .to_bytes();
                String::from_utf8(body.to_vec())
                    .map(Some)
                    .map_err(|_| format!("{uri} is not UTF-8 text"))
            }
        }
    }

    /// Fetches the file and loads it when it changed.
    async fn reload(&self) {
        let text = match self.fetch().await {
            Ok(Some(text)) => text,
            Ok(None) => return,
            Err(e) => {
                self.failed("fetch");
                let mut state = self.state();
                let kept = state.loaded.is_some();
                if state.problem.as_deref() != Some(e.as_str()) {
                    if kept {
                        tracing::warn!("{}: {e}; the last version read is kept", self.location);
                    } else {
                        tracing::warn!(
                            "{}: {e}; requests go DIRECT until it can be read",
                            self.location
                        );
                    }
                }
                state.problem = Some(e);
                return;
            }
        };
        let hash = hash_of(&text);
        if self.state().seen == Some(hash) {
            self.state().problem = None;
            return;
        }
        let result = self.engine.load(text).await;
        let mut state = self.state();
        state.seen = Some(hash);
        state.cache.clear();
        match result {
            Ok(()) => {
                tracing::info!("{}: loaded", self.location);
                state.loaded = Some(hash);
                state.problem = None;
            }
            Err(e) => {
                self.failed(failure_kind(&e));
                tracing::warn!(
                    "{}: {e}; requests go DIRECT until it is fixed",
                    self.location
                );
                state.loaded = None;
                state.problem = Some(e.to_string());
            }
        }
    }

    async fn decide(&self, query: &RouteQuery) -> Route {
        let key = (query.host.clone(), query.tunnel);
        {
            let mut state = self.state();
            if state.loaded.is_none() {
                let problem = state
                    .problem
                    .clone()
                    .unwrap_or_else(|| "not read yet".into());
                return direct(format!(
                    "the {} cannot be used ({problem}): DIRECT",
                    self.location
                ));
            }
            if let Some((route, at)) = state.cache.get(&key) {
                if at.elapsed() < CACHE_TTL {
                    return route.clone();
                }
            }
            if state.cache.len() >= CACHE_MAX {
                state.cache.clear();
            }
        }
        let started = Instant::now();
        let answer = self.engine.find_proxy(&query.url, &query.host).await;
        self.metrics
            .observe(PAC_EVALUATION_SECONDS, &[], started.elapsed().as_secs_f64());
        let route = match answer {
            Ok(answer) => match read_answer(&self.location, &answer, &query.host) {
                Ok(route) => route,
                Err(direct) => {
                    self.failed("bad-answer");
                    direct
                }
            },
            Err(e) => {
                self.failed(failure_kind(&e));
                tracing::warn!(host = %query.host, "{}: {e}; this host goes DIRECT", self.location);
                direct(format!(
                    "the {} failed for {}: {e}: DIRECT",
                    self.location, query.host
                ))
            }
        };
        tracing::debug!(
            host = %query.host,
            micros = started.elapsed().as_micros() as u64,
            "PAC evaluated"
        );
        let mut state = self.state();
        // A script replaced meanwhile cleared the cache: keep this answer out.
        if state.loaded.is_some() {
            state.cache.insert(key, (route.clone(), Instant::now()));
        }
        route
    }
}

impl PacRouteSource {
    /// Counts one PAC failure of `kind`.
    fn failed(&self, kind: &str) {
        self.metrics
            .inc("kerbside_proxy_pac_failures_total", &[("kind", kind)]);
    }
}

/// The `kind` label of a PAC failure.
fn failure_kind(e: &PacError) -> &'static str {
    match e {
        PacError::Script(_) => "script",
        PacError::NoFunction => "no-function",
        PacError::Exception(_) => "exception",
        PacError::NotAString(_) => "not-a-string",
        PacError::TimeLimit(_) => "time-limit",
        PacError::MemoryLimit(_) => "memory-limit",
        _ => "engine",
    }
}

fn direct(reason: String) -> Route {
    Route {
        choices: vec![RouteChoice::Direct],
        reason,
    }
}

/// Reads `FindProxyForURL`'s answer for `host`; one that cannot be read is an
/// error holding the `DIRECT` route to take instead.
fn read_answer(location: &PacLocation, answer: &str, host: &str) -> Result<Route, Route> {
    let shown: String = answer.chars().take(200).collect();
    match parse_pac_result(answer) {
        Ok((choices, skipped)) if choices.is_empty() => Ok(direct(format!(
            "the {location} answered {shown:?} for {host}: nothing kerbside can use ({}): DIRECT",
            skipped.join(", ")
        ))),
        Ok((choices, skipped)) => {
            let mut reason = format!("the {location} answered {shown:?} for {host}");
            if !skipped.is_empty() {
                reason.push_str(&format!(
                    " (skipped, not supported: {})",
                    skipped.join(", ")
                ));
            }
            Ok(Route { choices, reason })
        }
        Err(e) => {
            tracing::warn!(%host, "{location}: {e}; this host goes DIRECT");
            Err(direct(format!(
                "the {location} answered badly for {host}: {e}: DIRECT"
            )))
        }
    }
}

async fn refresh_loop(source: Weak<PacRouteSource>, interval: Duration) {
    let mut retry = interval;
    loop {
        tokio::time::sleep(retry).await;
        let Some(source) = source.upgrade() else {
            return;
        };
        source.reload().await;
        // A URL that failed is tried again sooner than the full interval.
        let failed = source.state().problem.is_some();
        retry = if failed {
            interval.min(Duration::from_secs(30))
        } else {
            interval
        };
    }
}

impl RouteSource for PacRouteSource {
    fn route<'a>(&'a self, query: &'a RouteQuery) -> RouteFuture<'a> {
        Box::pin(self.decide(query))
    }

    fn describe(&self) -> String {
        self.location.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations() {
        assert_eq!(
            PacLocation::parse("/etc/proxy.pac").unwrap_or_else(|e| panic!("{e}")),
            PacLocation::File("/etc/proxy.pac".into())
        );
        assert_eq!(
            PacLocation::parse("file:///etc/proxy.pac").unwrap_or_else(|e| panic!("{e}")),
            PacLocation::File("/etc/proxy.pac".into())
        );
        assert!(matches!(
            PacLocation::parse("http://wpad.corp.example/wpad.dat"),
            Ok(PacLocation::Url(_))
        ));
        assert!(PacLocation::parse("ftp://x/p.pac").is_err());
        assert!(PacLocation::parse("http:///p.pac").is_err());
        let domain = |t: &str| {
            PacLocation::parse(t)
                .unwrap_or_else(|e| panic!("{e}"))
                .auth_domain()
                .map(|p| p.to_string())
        };
        assert_eq!(
            domain("http://wpad.corp.example/wpad.dat").as_deref(),
            Some("corp.example")
        );
        assert_eq!(
            domain("http://localhost:8080/p.pac").as_deref(),
            Some("localhost")
        );
        assert_eq!(
            domain("http://corp.example/p.pac").as_deref(),
            Some("corp.example")
        );
        assert_eq!(
            domain("http://127.0.0.1:1/p.pac").as_deref(),
            Some("127.0.0.1/32")
        );
        assert_eq!(domain("/etc/p.pac"), None);
    }

    #[test]
    fn answers_are_read_in_order_and_bad_ones_go_direct() {
        let loc = PacLocation::File("p.pac".into());
        let read = |answer: &str| read_answer(&loc, answer, "h").unwrap_or_else(|r| r);
        let r = read("PROXY a:1; HTTPS b:443; SOCKS s:1; DIRECT");
        assert_eq!(r.choices.len(), 3);
        assert!(
            r.reason.contains("skipped, not supported: SOCKS s:1"),
            "{}",
            r.reason
        );
        let r = read("SOCKS5 s:1");
        assert_eq!(r.choices, vec![RouteChoice::Direct]);
        assert!(read_answer(&loc, "PROXY", "h").is_err());
        let r = read("PROXY");
        assert_eq!(r.choices, vec![RouteChoice::Direct]);
        assert!(r.reason.contains("answered badly"), "{}", r.reason);
    }
}
