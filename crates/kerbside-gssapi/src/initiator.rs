//! The client side: one Negotiate exchange from the user's ticket cache.

use kerbside_proto::{Mechanism, MutualAuth, Step};
use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext};
use libgssapi::credential::Cred;
use libgssapi::error::{Error as RawError, MajorFlags};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_SPNEGO, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL};

use std::sync::Arc;

use crate::cred_cache::{self, Acquired, Generation};
use crate::error::{GssError, Side};
use crate::ffi;

/// Where the client's Kerberos credentials come from.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum ClientCredentials {
    /// The default ticket cache (`KRB5CCNAME`), looked up at each exchange, so a
    /// ticket that appears or is renewed while a client runs is used. After
    /// [`keep_ticket_cache_copies`](crate::keep_ticket_cache_copies), a `FILE:` or
    /// `DIR:` cache is read once into a memory copy, used while the file is
    /// unchanged (one `stat` per exchange).
    #[default]
    Default,
    /// This ticket cache, e.g. `FILE:/tmp/krb5cc_alice`.
    Ccache(String),
    /// A client keytab (like `kinit -k -t FILE principal`); tickets are kept in a
    /// memory cache of this process.
    Keytab {
        /// The keytab file.
        path: std::path::PathBuf,
        /// The principal to get tickets for; `None` takes the keytab's first.
        principal: Option<String>,
    },
    /// A password for a principal, always used to get a fresh ticket (kept in
    /// memory, never in a ticket cache): how a server checks a password against the
    /// KDC.
    FreshPassword {
        /// The user principal.
        principal: String,
        /// The password.
        password: String,
    },
    /// A password for a principal, used to get a ticket when there is none.
    Password {
        /// The user principal, e.g. `alice` or `alice@EXAMPLE.TEST`.
        principal: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Default => f.write_str("Default"),
            Self::Ccache(c) => f.debug_tuple("Ccache").field(c).finish(),
            Self::Keytab { path, principal } => f
                .debug_struct("Keytab")
                .field("path", path)
                .field("principal", principal)
                .finish(),
            // Never print a password.
            Self::FreshPassword { principal, .. } => f
                .debug_struct("FreshPassword")
                .field("principal", principal)
                .field("password", &"<redacted>")
                .finish(),
            Self::Password { principal, .. } => f
                .debug_struct("Password")
                .field("principal", principal)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

impl ClientCredentials {
    /// A short name for the identity these credentials stand for, to keep
    /// connections of different identities apart. Never contains a secret.
    pub fn identity_key(&self) -> String {
        match self {
            Self::Default => "default".to_owned(),
            Self::Ccache(c) => format!("ccache:{c}"),
            Self::Keytab { path, principal } => format!(
                "keytab:{}:{}",
                path.display(),
                principal.as_deref().unwrap_or("")
            ),
            Self::Password { principal, .. } | Self::FreshPassword { principal, .. } => {
                format!("password:{principal}")
            }
        }
    }

    /// What keeps connections authenticated with different tickets apart: the
    /// [`identity_key`](Self::identity_key), and in a process that keeps ticket
    /// cache copies ([`keep_ticket_cache_copies`](crate::keep_ticket_cache_copies))
    /// the identity of the cache file now, so connections authenticated before a
    /// `kinit` as another principal (or a `kdestroy`) are not used after it. One
    /// `stat` per call. Never contains a secret.
    pub fn connection_identity(&self) -> String {
        match cred_cache::cache_file_identity(self) {
            Some(file) => format!("{}@{file}", self.identity_key()),
            None => self.identity_key(),
        }
    }
}

/// Whether the user's ticket-granting ticket is forwarded to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delegation {
    /// Never (the default).
    #[default]
    None,
    /// Only when the KDC marks the service "ok-as-delegate".
    Policy,
    /// Always.
    Always,
}

/// How to start a client exchange.
#[derive(Debug, Clone)]
pub struct InitiatorConfig {
    /// The service to authenticate to: `HTTP@host` (host-based) or a Kerberos
    /// principal `HTTP/host@REALM`.
    pub target: String,
    /// Whether to ask the server to prove itself (anything but `Off` asks).
    pub mutual: MutualAuth,
    /// Whether to forward the user's ticket-granting ticket.
    pub delegation: Delegation,
    /// Where the user's credentials come from.
    pub credentials: ClientCredentials,
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
            delegation: Delegation::None,
            credentials: ClientCredentials::Default,
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
    /// The kept credential `ctx` uses, if any (after `ctx`: dropped after it, so
    /// the credential's memory ticket cache outlives the context).
    generation: Option<Arc<Generation>>,
    target: String,
    channel_bindings: Option<Vec<u8>>,
    /// `identity target`: the key of the cold-start gate (`first_token.rs`).
    cold_key: String,
    started: bool,
}

impl NegotiateInitiator {
    /// Prepares an exchange. Credentials are looked up now when a ticket cache is
    /// named, otherwise on the first step.
    pub fn new(config: &InitiatorConfig) -> Result<Self, GssError> {
        ffi::keep_krb5_profile_loaded();
        let subject = Some(config.target.clone());
        let name_type = if config.target.contains('/') {
            &GSS_NT_KRB5_PRINCIPAL
        } else {
            &GSS_NT_HOSTBASED_SERVICE
        };
        let target = Name::new(config.target.as_bytes(), Some(*name_type))
            .map_err(|e| GssError::from_raw(e, Side::Initiator, subject.clone()))?;
        let Acquired { cred, generation } = cred_cache::initiator_credential(&config.credentials)?;
        let mut flags = CtxFlags::empty();
        if config.mutual != MutualAuth::Off {
            flags |= CtxFlags::GSS_C_MUTUAL_FLAG;
        }
        match config.delegation {
            Delegation::None => {}
            Delegation::Policy => flags |= CtxFlags::GSS_C_DELEG_POLICY_FLAG,
            Delegation::Always => flags |= CtxFlags::GSS_C_DELEG_FLAG,
        }
        // A new credential generation (a new ticket cache copy) starts cold.
        let cold_key = format!(
            "{} {} {}",
            config.credentials.identity_key(),
            config.target,
            generation.as_ref().map_or(0, |g| g.number)
        );
        Ok(Self {
            ctx: ClientCtx::new(cred, target, flags, Some(GSS_MECH_SPNEGO)),
            generation,
            target: config.target.clone(),
            channel_bindings: config.channel_bindings.clone(),
            cold_key,
            started: false,
        })
    }

    /// The target name this exchange authenticates to.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Which kept credential this exchange uses: the same number for every
    /// exchange while the ticket cache file (or client keytab) is unchanged, a new
    /// one after `kinit`, `kinit -R` or a new keytab; `None` when the credential was
    /// acquired for this exchange alone (`KCM:`, `KEYRING:`, passwords, no ticket,
    /// or a ticket cache without [`keep_ticket_cache_copies`](crate::keep_ticket_cache_copies)).
    pub fn credential_generation(&self) -> Option<u64> {
        self.generation.as_ref().map(|g| g.number)
    }
}

/// Credentials for one exchange, always restricted to Kerberos inside SPNEGO (see
/// [`ffi::acquire_krb5_initiator`]): what [`cred_cache`] keeps, or uses per
/// exchange.
pub(crate) fn acquire(credentials: &ClientCredentials) -> Result<Option<Cred>, GssError> {
    let initiator = |name: Option<&str>, store: &[(&str, &str)], subject: Option<String>| {
        ffi::acquire_krb5_initiator(name, store)
            .map(Some)
            .map_err(|s| status_error(s, Side::Initiator, subject))
    };
    match credentials {
        ClientCredentials::Default => initiator(None, &[], None),
        ClientCredentials::Ccache(cc) => initiator(None, &[("ccache", cc)], Some(cc.clone())),
        ClientCredentials::Keytab { path, principal } => {
            let kt = format!("FILE:{}", path.display());
            // A process-private memory cache per principal keeps the tickets got with
            // the keytab (one cache for all would hold the first principal's tickets,
            // and MIT refuses to acquire another principal's credentials from it).
            let cc = format!(
                "MEMORY:kerbside-{}-{}",
                std::process::id(),
                principal.as_deref().unwrap_or("default")
            );
            initiator(
                principal.as_deref(),
                &[("client_keytab", &kt), ("ccache", &cc)],
                Some(path.display().to_string()),
            )
        }
        ClientCredentials::Password {
            principal,
            password,
        }
        | ClientCredentials::FreshPassword {
            principal,
            password,
        } => {
            let fresh = matches!(credentials, ClientCredentials::FreshPassword { .. });
            // A ticket for this principal in the cache collection wins; the password
            // is only used when there is none.
            if !fresh {
                if let Ok(cred) = ffi::acquire_krb5_initiator(Some(principal), &[]) {
                    return Ok(Some(cred));
                }
            }
            // With a password and no ccache, MIT gets the ticket into a memory cache
            // of the credential, destroyed with it.
            initiator(
                Some(principal),
                &[("password", password)],
                Some(principal.clone()),
            )
        }
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
        let first = !std::mem::replace(&mut self.started, true);
        let (ctx, bindings) = (&mut self.ctx, self.channel_bindings.as_deref());
        let out = if first {
            crate::first_token::first_token(&self.cold_key, || ctx.step(input, bindings))
        } else {
            ctx.step(input, bindings)
        }
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
