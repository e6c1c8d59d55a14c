//! Request bodies without a length, held on disk until complete (CGI needs
//! `CONTENT_LENGTH` up front): each at most `max-body`, all at once within the
//! `spool-budget`. The files are unnamed temporary files in `TMPDIR`, gone when
//! closed.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use http_body::Body;
use http_body_util::BodyExt;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::body::BoxError;
use crate::metrics::GateMetrics;

/// The default total of request bodies spooled at once (4 GiB).
pub const DEFAULT_SPOOL_BUDGET: u64 = 4 << 30;

/// Bytes of disk that spooled request bodies may take together. Cheap to clone; the
/// clones share the budget.
#[derive(Debug, Clone)]
pub struct SpoolBudget {
    limit: u64,
    used: Arc<AtomicU64>,
}

impl SpoolBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Bytes held by spools now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

/// Bytes of a [`SpoolBudget`] held by one spooled body, given back when dropped.
#[derive(Debug)]
pub(crate) struct SpoolShare {
    budget: Option<SpoolBudget>,
    held: u64,
}

impl SpoolShare {
    /// Takes `bytes` more; false (taking nothing) if the budget has no room.
    fn take(&mut self, bytes: u64) -> bool {
        let Some(budget) = &self.budget else {
            return true;
        };
        let taken = budget
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|&total| total <= budget.limit)
            });
        if taken.is_ok() {
            self.held += bytes;
        }
        taken.is_ok()
    }
}

impl Drop for SpoolShare {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.used.fetch_sub(self.held, Ordering::AcqRel);
        }
    }
}

/// The next frame of a request body: its data, `None` for trailers, or the error.
pub(crate) async fn next_data<B>(body: &mut Pin<Box<B>>) -> Option<Result<Option<Bytes>, BoxError>>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let frame = body.frame().await?;
    Some(frame.map(|f| f.into_data().ok()).map_err(Into::into))
}

/// What a spool may take.
#[derive(Debug)]
pub(crate) struct SpoolLimits<'a> {
    /// The largest body.
    pub(crate) max_body: u64,
    /// The budget shared with the other spools, if any.
    pub(crate) budget: Option<&'a SpoolBudget>,
    /// Where bodies over the limit are counted.
    pub(crate) metrics: Option<&'a GateMetrics>,
}

/// A body held on disk.
#[derive(Debug)]
pub(crate) struct Spooled {
    /// The file, at its start.
    pub(crate) file: tokio::fs::File,
    /// The body's length.
    pub(crate) length: u64,
    /// Its share of the budget, given back when dropped (with the file).
    pub(crate) share: SpoolShare,
}

/// Writes a body of unknown length to a temporary file, within `limits`; `program`
/// names the CGI program in log lines. The error is the status to answer.
pub(crate) async fn spool<B>(
    mut body: Pin<Box<B>>,
    limits: &SpoolLimits<'_>,
    program: &str,
) -> Result<Spooled, StatusCode>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    let file = match tokio::task::spawn_blocking(tempfile::tempfile).await {
        Ok(Ok(file)) => file,
        Ok(Err(e)) => {
            tracing::error!("cannot make a temporary file for a request body: {e}");
            return Err(StatusCode::INTERNAL_SERVER_ERROR);
        }
        Err(e) => {
            tracing::error!("cannot make a temporary file for a request body: {e}");
            return Err(StatusCode::INTERNAL_SERVER_ERROR);
        }
    };
    let mut file = tokio::fs::File::from_std(file);
    let mut share = SpoolShare {
        budget: limits.budget.cloned(),
        held: 0,
    };
    let mut length: u64 = 0;
    while let Some(frame) = next_data(&mut body).await {
        let data = match frame {
            Ok(Some(data)) => data,
            Ok(None) => continue,
            Err(e) => {
                tracing::info!("request body broken off: {e}");
                return Err(StatusCode::BAD_REQUEST);
            }
        };
        length = length.saturating_add(data.len() as u64);
        if length > limits.max_body {
            tracing::warn!(
                program,
                limit = limits.max_body,
                "request body without a length is larger than max-body; cut off, answering 413"
            );
            if let Some(m) = limits.metrics {
                m.body_too_large();
            }
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
        if !share.take(data.len() as u64) {
            tracing::warn!(
                program,
                budget = limits.budget.map_or(0, |b| b.limit),
                "the request bodies spooled now fill the spool-budget; answering 507"
            );
            return Err(StatusCode::INSUFFICIENT_STORAGE);
        }
        if let Err(e) = file.write_all(&data).await {
            tracing::error!("cannot write a request body to a temporary file: {e}");
            return Err(StatusCode::INSUFFICIENT_STORAGE);
        }
    }
    let rewound = async {
        file.flush().await?;
        file.seek(std::io::SeekFrom::Start(0)).await
    };
    if let Err(e) = rewound.await {
        tracing::error!("cannot read back a spooled request body: {e}");
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    Ok(Spooled {
        file,
        length,
        share,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_of_a_budget_are_given_back() {
        let budget = SpoolBudget::new(10);
        let mut a = SpoolShare {
            budget: Some(budget.clone()),
            held: 0,
        };
        let mut b = SpoolShare {
            budget: Some(budget.clone()),
            held: 0,
        };
        assert!(a.take(6));
        assert!(!b.take(5), "over the budget");
        assert!(b.take(4));
        assert_eq!(budget.used(), 10);
        drop(a);
        assert_eq!(budget.used(), 4);
        assert!(b.take(6));
        drop(b);
        assert_eq!(budget.used(), 0);
    }
}
