//! Tokens made ahead of the timed window, on the blocking pool, each with the GSSAPI
//! context that verifies the server's final token.

use std::sync::{Arc, Mutex};

use http::header::HeaderValue;
use kerbside_gssapi::{InitiatorConfig, NegotiateInitiator};
use kerbside_proto::scheme::negotiate::client::{ExpectChallenge, ExpectFinalToken};

/// One exchange made ahead: the `Authorization` value to send and the context that
/// verifies the server's answer.
pub(super) struct Exchange {
    pub(super) authorization: HeaderValue,
    pub(super) state: ExpectFinalToken<NegotiateInitiator>,
}

/// Tokens made ahead, taken one at a time by the connections.
pub(super) struct TokenPool {
    pub(super) exchanges: Mutex<Vec<Exchange>>,
}

impl TokenPool {
    pub(super) fn take(&self) -> Option<Exchange> {
        self.exchanges
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
    }

    pub(super) fn left(&self) -> usize {
        self.exchanges
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

/// Makes `count` exchanges on the blocking pool: one first (it fetches the service
/// ticket into the cache and reports a credentials problem once), then the rest
/// split over one task per CPU.
pub(super) async fn make_tokens(
    config: InitiatorConfig,
    count: usize,
) -> Result<Vec<Exchange>, String> {
    fn make(config: &InitiatorConfig, count: usize) -> Result<Vec<Exchange>, String> {
        (0..count)
            .map(|_| {
                let mech = NegotiateInitiator::new(config).map_err(|e| e.to_string())?;
                let (credentials, state) = ExpectChallenge::new(mech, config.mutual)
                    .start()
                    .map_err(|e| e.to_string())?;
                let authorization = HeaderValue::from_str(&credentials.to_header_value())
                    .map_err(|e| format!("unusable token: {e}"))?;
                Ok(Exchange {
                    authorization,
                    state,
                })
            })
            .collect()
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    let config = Arc::new(config);
    let first = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || make(&config, 1))
            .await
            .map_err(|e| format!("token task failed: {e}"))??
    };
    let rest = count - 1;
    let tasks = std::thread::available_parallelism()
        .map_or(2, std::num::NonZeroUsize::get)
        .min(rest.max(1));
    let mut handles = Vec::new();
    for i in 0..tasks {
        let share = rest / tasks + usize::from(i < rest % tasks);
        let config = config.clone();
        handles.push(tokio::task::spawn_blocking(move || make(&config, share)));
    }
    let mut all = first;
    for handle in handles {
        all.extend(
            handle
                .await
                .map_err(|e| format!("token task failed: {e}"))??,
        );
    }
    Ok(all)
}
