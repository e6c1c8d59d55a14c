//! Failover between upstream proxies: an upstream that failed (no connection, a
//! 5xx to `CONNECT`) is tried last for a while (5 minutes, as Chromium does), then
//! in its place again. The clock is an argument.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::route::{RouteChoice, Upstream};

/// How long a failed upstream is skipped by default.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);

/// Which upstreams failed, and when they may be tried again.
#[derive(Debug, Clone)]
pub struct Failover {
    retry_after: Duration,
    down: HashMap<Upstream, Instant>,
}

impl Default for Failover {
    fn default() -> Self {
        Self::new(DEFAULT_RETRY_AFTER)
    }
}

impl Failover {
    /// Skips a failed upstream for `retry_after`.
    pub fn new(retry_after: Duration) -> Self {
        Self {
            retry_after,
            down: HashMap::new(),
        }
    }

    /// The choices in the order to try them at `now`: those not skipped in their
    /// order, then the skipped ones (longest-failed first), so that a request still
    /// has a chance when every upstream is marked down.
    pub fn order(&self, choices: &[RouteChoice], now: Instant) -> Vec<RouteChoice> {
        let mut fresh = Vec::new();
        let mut skipped = Vec::new();
        for c in choices {
            match c {
                RouteChoice::Proxy(u) => match self.down_until(u, now) {
                    Some(until) => skipped.push((until, c.clone())),
                    None => fresh.push(c.clone()),
                },
                RouteChoice::Direct => fresh.push(c.clone()),
            }
        }
        skipped.sort_by_key(|(until, _)| *until);
        fresh.extend(skipped.into_iter().map(|(_, c)| c));
        fresh
    }

    /// When `upstream` may be tried in its place again, if it is skipped at `now`.
    pub fn down_until(&self, upstream: &Upstream, now: Instant) -> Option<Instant> {
        self.down
            .get(upstream)
            .copied()
            .filter(|until| *until > now)
    }

    /// `upstream` failed at `now`.
    pub fn failed(&mut self, upstream: &Upstream, now: Instant) {
        let until = now.checked_add(self.retry_after).unwrap_or(now);
        self.down.insert(upstream.clone(), until);
        self.down.retain(|_, until| *until > now);
    }

    /// `upstream` worked: it is no longer skipped.
    pub fn succeeded(&mut self, upstream: &Upstream) {
        self.down.remove(upstream);
    }

    /// How long a failed upstream is skipped.
    pub fn retry_after(&self) -> Duration {
        self.retry_after
    }
}

#[cfg(test)]
mod tests {
    use super::super::route::UpstreamKind;
    use super::*;

    fn p(host: &str) -> RouteChoice {
        RouteChoice::Proxy(Upstream {
            kind: UpstreamKind::Http,
            host: host.into(),
            port: 1,
        })
    }

    fn up(c: &RouteChoice) -> &Upstream {
        match c {
            RouteChoice::Proxy(u) => u,
            RouteChoice::Direct => panic!("direct"),
        }
    }

    #[test]
    fn a_failed_upstream_is_tried_last_for_five_minutes() {
        let t0 = Instant::now();
        let list = [p("a"), p("b"), RouteChoice::Direct];
        let mut f = Failover::default();
        assert_eq!(f.order(&list, t0), list);
        f.failed(up(&list[0]), t0);
        let later = t0 + Duration::from_secs(299);
        assert_eq!(
            f.order(&list, later),
            vec![p("b"), RouteChoice::Direct, p("a")]
        );
        assert_eq!(
            f.order(&list, t0 + Duration::from_secs(300)),
            list,
            "retried after the time"
        );
        f.failed(up(&list[1]), t0 + Duration::from_secs(1));
        assert_eq!(
            f.order(&list, later),
            vec![RouteChoice::Direct, p("a"), p("b")]
        );
        f.succeeded(up(&list[0]));
        assert_eq!(
            f.order(&list, later),
            vec![p("a"), RouteChoice::Direct, p("b")]
        );
    }

    #[test]
    fn every_choice_stays_in_the_list() {
        let t0 = Instant::now();
        let mut f = Failover::new(Duration::from_secs(1));
        let list = [p("a"), p("b")];
        f.failed(up(&list[0]), t0);
        f.failed(up(&list[1]), t0);
        assert_eq!(f.order(&list, t0).len(), 2);
    }
}
