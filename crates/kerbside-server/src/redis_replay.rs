//! The replay cache that gates behind one balancer share, in Redis
//! (`replay-cache = "redis://HOST:PORT/DB"`): each Kerberos authenticator the memory cache
//! has not seen is claimed with one atomic `SET kerbside:replay:<digest> 1 NX PX <ttl>`,
//! so of two gates shown the same token exactly one accepts it.
//!
//! Every call has a deadline ([`DEADLINE`]): a login never waits on a Redis that does not
//! answer longer than that. An outage is logged once when it starts and once when it ends,
//! and counted (`kerbside_gate_replay_cache_unavailable_total`); what the gate does during
//! it is [`WhenUnavailable`](kerbside_gssapi::WhenUnavailable)'s.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use kerbside_gssapi::{SharedReplay, SharedReplayError};

use crate::metrics::GateMetrics;

/// The longest a claim may take, connecting included.
pub const DEADLINE: Duration = Duration::from_millis(250);

/// Idle connections kept for the next claims.
const POOL: usize = 16;

/// A Redis server (or a proxy in front of a cluster's primary) holding the claims.
pub struct RedisReplay {
    client: redis::Client,
    /// The URL without its password, for messages.
    shown: String,
    idle: Mutex<Vec<redis::Connection>>,
    down: AtomicBool,
    metrics: Option<GateMetrics>,
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
#[error("replay-cache {url:?} is not a Redis URL ({reason}): give redis://HOST:PORT/DB")]
pub struct RedisUrlError {
    url: String,
    reason: String,
}

impl RedisReplay {
    /// A client for `url` (`redis://[:PASSWORD@]HOST:PORT/DB`); nothing is connected yet.
    pub fn new(url: &str, metrics: Option<GateMetrics>) -> Result<Self, RedisUrlError> {
        let shown = redact(url);
        let client = redis::Client::open(url).map_err(|e| RedisUrlError {
            url: shown.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            client,
            shown,
            idle: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
            metrics,
        })
    }

    /// Whether `text` names Redis rather than a file.
    pub fn is_url(text: &str) -> bool {
        text.starts_with("redis://") || text.starts_with("redis+unix://")
    }

    fn connection(&self) -> redis::RedisResult<redis::Connection> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.client.get_connection_with_timeout(DEADLINE)?,
        };
        conn.set_read_timeout(Some(DEADLINE))?;
        conn.set_write_timeout(Some(DEADLINE))?;
        Ok(conn)
    }

    fn put_back(&self, conn: redis::Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < POOL {
            idle.push(conn);
        }
    }

    fn claim_once(&self, key: &str, ttl: Duration) -> redis::RedisResult<bool> {
        let mut conn = self.connection()?;
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let set: Option<String> = redis::cmd("SET")
            .arg(key)
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis)
            .query(&mut conn)?;
        self.put_back(conn);
        Ok(set.is_some())
    }
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
