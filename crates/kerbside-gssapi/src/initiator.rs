//! The client side: one Negotiate exchange from the user's ticket cache.

use kerbside_proto::{Mechanism, MutualAuth, Step};
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::Cred;
use libgssapi::error::{Error as RawError, MajorFlags};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_SPNEGO, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL};

use crate::error::{GssError, Side};
use crate::ffi;

/// How to start a client exchange.
#[derive(Debug, Clone)]
pub struct InitiatorConfig {
    /// The service to authenticate to: `HTTP@host` (host-based) or a Kerberos
    /// principal `HTTP/host@REALM`.
    pub target: String,
    /// Whether to ask the server to prove itself (anything but `Off` asks).
    pub mutual: MutualAuth,
    /// Forward the user's ticket-granting ticket to the server.
    pub delegate: bool,
    /// A ticket cache to use instead of the default (`KRB5CCNAME`), e.g.
    /// `FILE:/tmp/krb5cc_alice` or `MEMORY:x`.
    pub ccache: Option<String>,
    /// TLS channel bindings (`tls-server-end-point:` + hash), if any.
    pub channel_bindings: Option<Vec<u8>>,
}

impl InitiatorConfig {
    /// A configuration for `HTTP@host` with optional mutual authentication and no
    /// delegation.
    pub fn for_host(host: &str) -> Self {
        Self {
            target: format!("HTTP@{host}"),
            mutual: MutualAuth::Optional,
            delegate: false,
            ccache: None,
            channel_bindings: None,
        }
    }
}

/// One client-side Negotiate (SPNEGO) exchange. Spent once it completes or fails.
///
/// ```no_run
/// use kerbside_gssapi::{InitiatorConfig, NegotiateInitiator};
/// use kerbside_proto::{Mechanism, Step};
///
/// let mut init = NegotiateInitiator::new(&InitiatorConfig::for_host("www.example.test"))?;
/// let Step::Continue(token) = init.step(None)? else { unreachable!() };
/// // send `Authorization: Negotiate <base64 token>` ...
/// # Ok::<(), kerbside_gssapi::GssError>(())
/// ```
#[derive(Debug)]
pub struct NegotiateInitiator {
    ctx: ClientCtx,
    target: String,
    channel_bindings: Option<Vec<u8>>,
}

impl NegotiateInitiator {
    /// Prepares an exchange. Credentials are looked up now when a ticket cache is
    /// named, otherwise on the first step.
    pub fn new(config: &InitiatorConfig) -> Result<Self, GssError> {
        let subject = Some(config.target.clone());
        let name_type = if config.target.contains('/') {
            &GSS_NT_KRB5_PRINCIPAL
        } else {
            &GSS_NT_HOSTBASED_SERVICE
        };
        let target = Name::new(config.target.as_bytes(), Some(*name_type))
            .map_err(|e| GssError::from_raw(e, Side::Initiator, subject.clone()))?;
        let cred: Option<Cred> = match &config.ccache {
            None => None,
            Some(cc) => Some(
                ffi::acquire_cred_from(None, ffi::Usage::Initiate, &[("ccache", cc)])
                    .map_err(|s| status_error(s, Side::Initiator, Some(cc.clone())))?,
            ),
        };
        let mut flags = CtxFlags::empty();
        if config.mutual != MutualAuth::Off {
            flags |= CtxFlags::GSS_C_MUTUAL_FLAG;
        }
        if config.delegate {
            flags |= CtxFlags::GSS_C_DELEG_FLAG;
        }
        Ok(Self {
            ctx: ClientCtx::new(cred, target, flags, Some(GSS_MECH_SPNEGO)),
            target: config.target.clone(),
            channel_bindings: config.channel_bindings.clone(),
        })
    }

    /// The target name this exchange authenticates to.
    pub fn target(&self) -> &str {
        &self.target
    }
}

pub(crate) fn status_error(s: ffi::Status, side: Side, subject: Option<String>) -> GssError {
    let raw = RawError {
        major: MajorFlags::from_bits_retain(s.major),
        minor: s.minor,
    };
    GssError::from_raw(raw, side, subject)
}

impl Mechanism for NegotiateInitiator {
    type Error = GssError;

    fn step(&mut self, input: Option<&[u8]>) -> Result<Step, GssError> {
        let out = self
            .ctx
            .step(input, self.channel_bindings.as_deref())
            .map_err(|e| GssError::from_raw(e, Side::Initiator, Some(self.target.clone())))?;
        let token = out.map(|b| b.to_vec()).filter(|t| !t.is_empty());
        if self.ctx.is_complete() {
            Ok(Step::Done(token))
        } else {
            match token {
                Some(t) => Ok(Step::Continue(t)),
                // GSSAPI wants more but has nothing to send: nothing can move this on.
                None => Err(GssError::from_raw(
                    RawError {
                        major: MajorFlags::GSS_S_DEFECTIVE_TOKEN,
                        minor: 0,
                    },
                    Side::Initiator,
                    Some(self.target.clone()),
                )),
            }
        }
    }
}
