//! The server side: Negotiate tokens checked against a keytab.

use std::path::PathBuf;

use libgssapi::context::{SecurityContext, ServerCtx};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::error::{Error as RawError, MajorFlags};

use crate::error::{GssError, Side};
use crate::ffi;
use crate::initiator::status_error;

/// `GSS_C_CHANNEL_BOUND_FLAG` from MIT's `gssapi_ext.h`.
const GSS_C_CHANNEL_BOUND_FLAG: u32 = 2048;

/// Where an acceptor finds its keys.
#[derive(Debug, Clone, Default)]
pub struct AcceptorConfig {
    /// The keytab; `None` uses `KRB5_KTNAME` or the system default.
    pub keytab: Option<PathBuf>,
    /// Accept only tickets for this service (`HTTP@host` or `HTTP/host@REALM`);
    /// `None` accepts a ticket for any key in the keytab.
    pub acceptor_name: Option<String>,
}

/// Credentials for accepting Negotiate tokens. Cheap to clone and shareable across
/// threads; each exchange gets its own [`AcceptContext`].
#[derive(Debug, Clone)]
pub struct NegotiateAcceptor {
    cred: Cred,
    keytab: Option<PathBuf>,
}

/// One server-side exchange. Spent once it completes or fails.
#[derive(Debug)]
pub struct AcceptContext {
    ctx: ServerCtx,
}

/// The result of one accepted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcceptStep {
    /// The exchange needs another leg: send this token in a 401 and keep the context
    /// for the same connection.
    Continue(Vec<u8>),
    /// The client is authenticated.
    Done {
        /// The client principal, e.g. `alice@EXAMPLE.TEST`.
        principal: String,
        /// The final token for the client (mutual authentication), if any.
        token: Option<Vec<u8>>,
        /// The client forwarded its ticket-granting ticket (delegation).
        delegated: bool,
        /// The token was bound to the TLS channel the acceptor was given
        /// (`GSS_C_CHANNEL_BOUND_FLAG`, MIT krb5 1.19 and later).
        channel_bound: bool,
        /// How long the client's ticket (and so the context) stays valid.
        lifetime: Option<std::time::Duration>,
    },
}

impl NegotiateAcceptor {
    /// Loads acceptor credentials. Fails early, in words, if the keytab cannot be
    /// used.
    pub fn new(config: &AcceptorConfig) -> Result<Self, GssError> {
        let subject = config
            .keytab
            .as_ref()
            .map(|p| p.display().to_string())
            .or_else(|| config.acceptor_name.clone());
        let cred = match &config.keytab {
            Some(path) => {
                let kt = format!("FILE:{}", path.display());
                ffi::acquire_cred_from(
                    config.acceptor_name.as_deref(),
                    ffi::Usage::Accept,
                    &[("keytab", &kt)],
                )
                .map_err(|s| status_error(s, Side::Acceptor, subject))?
            }
            None => {
                ffi::acquire_cred_from(config.acceptor_name.as_deref(), ffi::Usage::Accept, &[])
                    .or_else(|_| {
                        Cred::acquire(None, None, CredUsage::Accept, None).map_err(|e| {
                            ffi::Status {
                                major: e.major.bits(),
                                minor: e.minor,
                            }
                        })
                    })
                    .map_err(|s| status_error(s, Side::Acceptor, subject))?
            }
        };
        Ok(Self {
            cred,
            keytab: config.keytab.clone(),
        })
    }

    /// The keytab in use, if one was named.
    pub fn keytab(&self) -> Option<&PathBuf> {
        self.keytab.as_ref()
    }

    /// Starts an exchange.
    pub fn context(&self) -> AcceptContext {
        AcceptContext {
            ctx: ServerCtx::new(Some(self.cred.clone())),
        }
    }

    /// Accepts a single-leg token (the common Kerberos case) in a fresh context.
    pub fn accept(&self, token: &[u8]) -> Result<AcceptStep, GssError> {
        self.context().step(token, None)
    }
}

impl AcceptContext {
    /// Feeds the client's token; `channel_bindings` is the TLS binding of this
    /// connection, if the server checks one.
    pub fn step(
        &mut self,
        token: &[u8],
        channel_bindings: Option<&[u8]>,
    ) -> Result<AcceptStep, GssError> {
        let out = self
            .ctx
            .step(token, channel_bindings)
            .map_err(|e| GssError::from_raw(e, Side::Acceptor, None))?;
        let out = out.map(|b| b.to_vec()).filter(|t| !t.is_empty());
        if !self.ctx.is_complete() {
            return match out {
                Some(t) => Ok(AcceptStep::Continue(t)),
                None => Err(defective()),
            };
        }
        let principal = self
            .ctx
            .source_name()
            .map_err(|e| GssError::from_raw(e, Side::Acceptor, None))?
            .to_string();
        let flags = self.ctx.flags().map(|f| f.bits()).unwrap_or(0);
        Ok(AcceptStep::Done {
            principal,
            token: out,
            delegated: self.ctx.delegated_cred().is_some(),
            channel_bound: flags & GSS_C_CHANNEL_BOUND_FLAG != 0,
            lifetime: self.ctx.lifetime().ok(),
        })
    }
}

fn defective() -> GssError {
    GssError::from_raw(
        RawError {
            major: MajorFlags::GSS_S_DEFECTIVE_TOKEN,
            minor: 0,
        },
        Side::Acceptor,
        None,
    )
}
