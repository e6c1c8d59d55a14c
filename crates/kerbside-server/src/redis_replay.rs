//! The replay cache that gates behind one balancer share, in Redis
//! (`replay-cache = "redis://HOST:PORT/DB"`): each Kerberos authenticator the memory cache
//! has not seen is claimed with one atomic `SET kerbside:replay:<digest> 1 NX PX <ttl>`,
//! so of two gates shown the same token exactly one accepts it. The Redis may be one
//! server, the primary that Redis Sentinels name (asked again after a failed claim, so a
//! failover is followed), or a Redis Cluster ([`redis_url`](crate::redis_url)).
//!
//! Every call has a deadline ([`DEADLINE`]): a login never waits on a Redis that does not
//! answer longer than that. An outage is logged once when it starts and once when it ends,
//! and counted (`kerbside_gate_replay_cache_unavailable_total`); what the gate does during
//! it is [`WhenUnavailable`](kerbside_gssapi::WhenUnavailable)'s.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use kerbside_gssapi::{SharedReplay, SharedReplayError};
use redis::{ConnectionLike, ErrorKind, RedisError, RedisResult};

use crate::metrics::GateMetrics;
use crate::redis_url::{Login, Node, RedisTarget};

/// The longest a claim may take, connecting (and asking the Sentinels) included.
pub const DEADLINE: Duration = Duration::from_millis(250);

/// Idle connections kept for the next claims.
const POOL: usize = 16;

/// Redis holding the claims: one server, the primary that Sentinels name, or a Cluster
/// (see [`redis_url`](crate::redis_url) for the URLs).
pub struct RedisReplay {
    backend: Backend,
    /// The URL without its password, for messages.
    shown: String,
    idle: Mutex<Vec<Conn>>,
    down: AtomicBool,
    metrics: Option<GateMetrics>,
}

enum Backend {
    Single(redis::Client),
    Sentinel {
        sentinels: Vec<Node>,
        service: String,
        db: u32,
        login: Login,
        /// The primary the Sentinels named last; forgotten when a claim on it fails, so
        /// the next claim asks again (after a failover, the new primary).
        primary: Mutex<Option<redis::Client>>,
    },
    Cluster(redis::cluster::ClusterClient),
}

enum Conn {
    Plain(redis::Connection),
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl Conn {
    fn inner(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Plain(conn) => conn,
            Conn::Cluster(conn) => conn.as_mut(),
        }
    }
}

impl std::fmt::Debug for RedisReplay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisReplay")
            .field("url", &self.shown)
            .finish_non_exhaustive()
    }
}

/// A `replay-cache` URL that is not one Redis takes.
#[derive(Debug, thiserror::Error)]
#[error(
    "replay-cache {url:?} is not a Redis URL ({reason}): give redis://HOST:PORT/DB, \
     redis+sentinel://HOST:PORT,.../SERVICE/DB or redis+cluster://HOST:PORT,..."
)]
pub struct RedisUrlError {
    url: String,
    reason: String,
}

impl RedisReplay {
    /// A client for `url` (see [`redis_url`](crate::redis_url)); nothing is connected yet.
    pub fn new(url: &str, metrics: Option<GateMetrics>) -> Result<Self, RedisUrlError> {
        let shown = redact(url);
        let refuse = |reason: String| RedisUrlError {
            url: shown.clone(),
            reason: reason.replace(url, &shown),
        };
        let backend = match RedisTarget::parse(url).map_err(refuse)? {
            RedisTarget::Single(url) => {
                Backend::Single(redis::Client::open(url).map_err(|e| refuse(e.to_string()))?)
            }
            RedisTarget::Sentinel {
                sentinels,
                service,
                db,
                login,
            } => Backend::Sentinel {
                sentinels,
                service,
                db,
                login,
                primary: Mutex::new(None),
            },
            RedisTarget::Cluster { nodes, login } => {
                let urls = nodes.iter().map(|n| format!("redis://{}", n.authority()));
                let mut builder = redis::cluster::ClusterClientBuilder::new(urls)
                    .connection_timeout(DEADLINE)
                    .response_timeout(DEADLINE)
                    .retries(1);
                if let Some(user) = &login.user {
                    builder = builder.username(user.clone());
                }
                if let Some(password) = &login.password {
                    builder = builder.password(password.clone());
                }
                Backend::Cluster(builder.build().map_err(|e| refuse(e.to_string()))?)
            }
        };
        Ok(Self {
            backend,
            shown,
            idle: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
            metrics,
        })
    }

    /// Whether `text` names Redis rather than a file.
    pub fn is_url(text: &str) -> bool {
        crate::redis_url::is_redis_url(text)
    }

    /// An idle connection from the pool, if there is one.
    fn pooled(&self) -> Option<Conn> {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    /// A new connection to the server (for Sentinels: to the primary they name).
    fn connect(&self, until: Instant) -> RedisResult<Conn> {
        Ok(match &self.backend {
            Backend::Single(client) => {
                Conn::Plain(client.get_connection_with_timeout(left(until)?)?)
            }
            Backend::Sentinel { .. } => Conn::Plain(
                self.primary(until)?
                    .get_connection_with_timeout(left(until)?)?,
            ),
            Backend::Cluster(client) => Conn::Cluster(Box::new(client.get_connection()?)),
        })
    }

    /// The primary the Sentinels name now (asked in order, each within the deadline).
    fn primary(&self, until: Instant) -> RedisResult<redis::Client> {
        let Backend::Sentinel {
            sentinels,
            service,
            db,
            login,
            primary,
        } = &self.backend
        else {
            return Err(RedisError::from((ErrorKind::Client, "not a Sentinel set")));
        };
        if let Some(client) = primary
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            return Ok(client);
        }
        let mut last = RedisError::from((ErrorKind::Client, "no Sentinel given"));
        for sentinel in sentinels {
            match ask_sentinel(sentinel, service, until) {
                Ok(Some(node)) => {
                    let url = format!("redis://{}{}/{db}", login.userinfo(), node.authority());
                    let client = redis::Client::open(url)?;
                    *primary.lock().unwrap_or_else(PoisonError::into_inner) = Some(client.clone());
                    return Ok(client);
                }
                Ok(None) => {
                    last = RedisError::from((
                        ErrorKind::Client,
                        "a Sentinel does not monitor this service",
                        format!("{} knows no {service:?}", sentinel.authority()),
                    ));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// After a failed claim: no pooled connection and no remembered primary is trusted.
    fn forget(&self) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        if let Backend::Sentinel { primary, .. } = &self.backend {
            *primary.lock().unwrap_or_else(PoisonError::into_inner) = None;
        }
    }

    fn put_back(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < POOL {
            idle.push(conn);
        }
    }

    /// Claims `key` within [`DEADLINE`]. A pooled connection that fails (the server
    /// restarted, closed it while idle, or lost its primary role in a failover) gets one
    /// more try on a new connection, so only a Redis that cannot be reached now refuses.
    fn claim_once(&self, key: &str, ttl: Duration) -> RedisResult<bool> {
        let until = Instant::now() + DEADLINE;
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set = |conn: &mut Conn| -> RedisResult<Option<String>> {
            if let Conn::Plain(plain) = conn {
                plain.set_read_timeout(Some(left(until)?))?;
                plain.set_write_timeout(Some(left(until)?))?;
            }
            redis::cmd("SET")
                .arg(key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(millis)
                .query(conn.inner())
        };
        if let Some(mut conn) = self.pooled() {
            match set(&mut conn) {
                Ok(answer) => {
                    self.put_back(conn);
                    return Ok(answer.is_some());
                }
                Err(e) => {
                    tracing::debug!(url = %self.shown, "a pooled replay-cache connection failed ({e}); trying a new one");
                    self.forget();
                }
            }
        }
        let mut conn = self.connect(until)?;
        let answer = set(&mut conn)?;
        self.put_back(conn);
        Ok(answer.is_some())
    }
}

/// What is left of the deadline, or a time-out error if nothing is.
fn left(until: Instant) -> RedisResult<Duration> {
    let left = until.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the replay cache's deadline passed",
        )))
    } else {
        Ok(left)
    }
}

/// `SENTINEL get-master-addr-by-name SERVICE` on one Sentinel; `None` if it does not
/// monitor `service`.
fn ask_sentinel(sentinel: &Node, service: &str, until: Instant) -> RedisResult<Option<Node>> {
    let client = redis::Client::open(format!("redis://{}", sentinel.authority()))?;
    let mut conn = client.get_connection_with_timeout(left(until)?)?;
    conn.set_read_timeout(Some(left(until)?))?;
    conn.set_write_timeout(Some(left(until)?))?;
    let named: Option<(String, u16)> = redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(service)
        .query(&mut conn)?;
    Ok(named.map(|(host, port)| Node { host, port }))
}

impl SharedReplay for RedisReplay {
    fn claim(&self, key: &[u8; 32], ttl: Duration) -> Result<bool, SharedReplayError> {
        let mut name = String::with_capacity(16 + 64);
        name.push_str("kerbside:replay:");
        for b in key {
            let _ = write!(name, "{b:02x}");
        }
        match self.claim_once(&name, ttl) {
            Ok(fresh) => {
                if self.down.swap(false, Ordering::AcqRel) {
                    tracing::warn!(url = %self.shown, "the shared replay cache answers again");
                }
                Ok(fresh)
            }
            Err(e) => {
                self.forget();
                if let Some(metrics) = &self.metrics {
                    metrics.replay_cache_unavailable();
                }
                if !self.down.swap(true, Ordering::AcqRel) {
                    tracing::error!(
                        url = %self.shown,
                        "the shared replay cache does not answer ({e}); logged once until it \
                         answers again"
                    );
                }
                Err(SharedReplayError(format!("{}: {e}", self.shown)))
            }
        }
    }
}

/// `url` with any password replaced by `***`.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme + 3 => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') {
                format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
            } else {
                url.to_owned()
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_kept_out_of_messages() {
        assert_eq!(
            redact("redis://:s3cret@10.0.0.9:6379/0"),
            "redis://:***@10.0.0.9:6379/0"
        );
        assert_eq!(
            redact("redis://kerbside:s3cret@h/1"),
            "redis://kerbside:***@h/1"
        );
        assert_eq!(redact("redis://h:6379/0"), "redis://h:6379/0");
        let err = RedisReplay::new("redis://:pw@[bad", None).unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[test]
    fn an_unreachable_server_is_an_error_that_names_it() {
        // A port nothing listens on: refused at once.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let replay = RedisReplay::new(&format!("redis://127.0.0.1:{port}/0"), None).unwrap();
        let err = replay.claim(&[7; 32], Duration::from_secs(1)).unwrap_err();
        assert!(
            err.to_string().contains(&format!("127.0.0.1:{port}")),
            "{err}"
        );
    }
}
