//! [`Upstreams`]: one [`Client`] per upstream proxy (its pool holds the
//! connections authenticated to that upstream, shared by every local client of
//! the same user), one for direct requests, the failover record, and the
//! credential allow list applied when a client is made.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use kerbside_client::{Client, ClientConfig, ProxySettings};
use kerbside_proto::forward_proxy::failover::Failover;
use kerbside_proto::forward_proxy::route::{CredentialAllowList, RouteChoice, Upstream};
use kerbside_proto::PlainHttpAuth;

use crate::config::ProxyConfig;
use crate::metrics::Metrics;

/// The upstream side of the proxy.
pub struct Upstreams {
    base: ClientConfig,
    auth_proxies: CredentialAllowList,
    origin_auth: bool,
    direct: Client,
    clients: Mutex<HashMap<Upstream, Client>>,
    failover: Mutex<Failover>,
    warned: Mutex<HashSet<Upstream>>,
    pub(crate) metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstreams")
            .field("auth_proxies", &self.auth_proxies)
            .field("origin_auth", &self.origin_auth)
            .finish_non_exhaustive()
    }
}

/// What credentials an upstream gets, for `--check` and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialDecision {
    /// The user's credentials answer its `407`.
    Allowed,
    /// It is not on `--auth-proxies`: used without credentials.
    NotListed,
}

impl Upstreams {
    /// Builds the direct client; upstream clients are made on first use.
    pub fn new(
        config: &ProxyConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, kerbside_client::Error> {
        let mut direct = config.client.clone();
        direct.proxy = ProxySettings::default();
        direct.origin_auth = config.origin_auth;
        if config.origin_auth {
            direct.auth.schemes.plain_http = PlainHttpAuth::Any;
        }
        Ok(Self {
            base: config.client.clone(),
            auth_proxies: config.auth_proxies.clone(),
            origin_auth: config.origin_auth,
            direct: Client::new(direct)?,
            clients: Mutex::new(HashMap::new()),
            failover: Mutex::new(Failover::new(config.retry_after)),
            warned: Mutex::new(HashSet::new()),
            metrics,
        })
    }

    /// Whether `upstream` gets the user's credentials.
    pub fn credentials_for(&self, upstream: &Upstream) -> CredentialDecision {
        if self.auth_proxies.allows(upstream) {
            CredentialDecision::Allowed
        } else {
            CredentialDecision::NotListed
        }
    }

    /// The client for direct requests.
    pub fn direct(&self) -> &Client {
        &self.direct
    }

    /// The client that goes through `upstream`, made on first use.
    pub fn client(&self, upstream: &Upstream) -> Result<Client, kerbside_client::Error> {
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = clients.get(upstream) {
            return Ok(c.clone());
        }
        let mut config = self.base.clone();
        let uri = kerbside_client::parse_proxy(&format!("{upstream}"))?;
        config.proxy = ProxySettings::all(uri);
        config.origin_auth = self.origin_auth;
        match self.credentials_for(upstream) {
            CredentialDecision::Allowed => {
                config.auth.schemes.plain_http = if self.origin_auth {
                    PlainHttpAuth::Any
                } else {
                    PlainHttpAuth::Hosts(vec![upstream.host.clone()])
                };
            }
            CredentialDecision::NotListed => {
                // Nothing goes to it, neither to it nor through it to an origin.
                config.auth.schemes.enabled.clear();
                self.warn_not_listed(upstream);
            }
        }
        let client = Client::new(config)?;
        clients.insert(upstream.clone(), client.clone());
        Ok(client)
    }

    fn warn_not_listed(&self, upstream: &Upstream) {
        let mut warned = self
            .warned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if warned.insert(upstream.clone()) {
            tracing::warn!(
                %upstream,
                "the upstream proxy is not on --auth-proxies ({}): it is used without your \
                 credentials",
                self.auth_proxies.hosts()
            );
        }
    }

    /// The choices in the order to try them now (failed upstreams last).
    pub fn order(&self, choices: &[RouteChoice]) -> Vec<RouteChoice> {
        self.failover
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .order(choices, Instant::now())
    }

    /// `upstream` could not be connected, or answered 5xx to `CONNECT`.
    pub fn failed(&self, upstream: &Upstream, why: &str) {
        let mut failover = self
            .failover
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failover.failed(upstream, Instant::now());
        tracing::warn!(
            %upstream,
            "upstream proxy failed, tried last for the next {} s: {why}",
            failover.retry_after().as_secs()
        );
        self.metrics.inc(
            "kerbside_proxy_upstream_failures_total",
            &[("upstream", &upstream.to_string())],
        );
    }

    /// `upstream` worked.
    pub fn succeeded(&self, upstream: &Upstream) {
        self.failover
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .succeeded(upstream);
    }
}
