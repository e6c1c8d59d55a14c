//! The server side: Negotiate tokens checked against a keytab.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libgssapi::error::{Error as RawError, MajorFlags};

use crate::accept_ctx::{AcceptorHandle, ServerContext};

use crate::delegation::DelegatedCredential;
use crate::error::{GssError, Side};
use crate::ffi;
use crate::initiator::status_error;
use crate::keytab::{AcceptorCred, ReloadingCred};
use crate::name_attr::{self, PacAttribute};
use crate::replay::{Insert, ReplayCache};
use crate::replay_journal::{ReplayFileError, ReplayJournal};
use crate::shared_replay::{Shared, SharedCheck, SharedReplay, WhenUnavailable};

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
    cred: AcceptorCred,
    config: AcceptorConfig,
    memory: Option<Arc<MemoryReplay>>,
    /// A replay cache shared with other gates, asked after the memory cache
    /// ([`NegotiateAcceptor::with_shared_replay`]).
    shared: Option<Arc<SharedCheck>>,
    /// The account whose TGT makes S4U2Proxy credentials
    /// ([`with_constrained_delegation`](Self::with_constrained_delegation)).
    impersonator: Option<String>,
    /// Whether each login says which service its ticket was for (one more
    /// `gss_inquire_context`; [`reporting_service`](Self::reporting_service)).
    report_service: bool,
}

/// The fast path of [`NegotiateAcceptor::with_memory_replay_cache`]: credentials
/// with MIT's replay cache off, and the cache that takes its place.
#[derive(Debug)]
struct MemoryReplay {
    cred: AcceptorCred,
    cache: ReplayCache,
    /// The cache's file, written before an accept is reported, so a restart does not
    /// forget ([`NegotiateAcceptor::with_replay_file`]).
    journal: Option<ReplayJournal>,
}

/// What [`MemoryReplay::record`] made of an authenticator.
enum Recorded {
    /// Not seen before; recorded (in memory and in the file, if there is one).
    Fresh,
    /// Seen before within the window.
    Replay,
    /// Not recorded in memory (the cache is full, and kept in the file if there is
    /// one): MIT's replay cache must decide.
    Unrecorded,
    /// The replay cache file could not be written: refused, as MIT refuses a token
    /// its replay cache cannot record, so that a restart cannot accept it again.
    Unsaved,
}

impl MemoryReplay {
    fn record(&self, key: [u8; 32]) -> Recorded {
        let insert = self.cache.insert(key, Instant::now());
        if insert == Insert::Replay {
            return Recorded::Replay;
        }
        if let Some(journal) = &self.journal {
            if let Err(e) = journal.append(key) {
                tracing::error!(
                    file = %journal.path().display(),
                    "Negotiate token refused: cannot write to the replay cache file ({e}); \
                     free space or fix the file, or give --replay-cache another one"
                );
                return Recorded::Unsaved;
            }
            journal.compact_if_due(&self.cache);
        }
        match insert {
            Insert::Fresh => Recorded::Fresh,
            Insert::Replay => Recorded::Replay,
            Insert::Full => {
                tracing::warn!("memory replay cache full; using MIT's");
                Recorded::Unrecorded
            }
        }
    }
}

/// Why [`NegotiateAcceptor::with_replay_file`] could not set up its cache.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayCacheError {
    /// The credentials without MIT's replay cache could not be acquired.
    #[error(transparent)]
    Gss(#[from] GssError),
    /// The file cannot be used.
    #[error(transparent)]
    File(#[from] ReplayFileError),
}

/// Which replay cache an acceptor's credentials use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayCheck {
    /// MIT's own (a file under `KRB5RCACHEDIR`, or what `KRB5RCACHETYPE` names).
    Mit,
    /// None at all (`rcache` = `none:` in the credential store): a replayed token is
    /// accepted. Only for measuring the cost of MIT's cache; never for a server.
    Off,
}

/// One server-side exchange. Spent once it completes or fails.
#[derive(Debug)]
pub struct AcceptContext {
    /// Started at the first token, with the credentials that token calls for.
    ctx: Option<ServerContext>,
    acceptor: NegotiateAcceptor,
    /// What the completed exchange left to act in the client's name.
    delegated: Option<DelegatedCredential>,
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
        /// The PAC (MS-PAC) an Active Directory KDC put in the client's ticket, once
        /// GSSAPI has checked its signatures (`urn:mspac:`); `None` for a ticket without
        /// one (an MIT KDC's), or one GSSAPI did not verify. Read it with
        /// [`kerbside_proto::pac::Pac`].
        pac: Option<Vec<u8>>,
        /// The service principal the client's ticket is for (`HTTP/host@REALM`), asked of
        /// the established context only when the acceptor reports it
        /// ([`NegotiateAcceptor::reporting_service`]); `None` otherwise.
        service: Option<String>,
    },
}

impl NegotiateAcceptor {
    /// Loads acceptor credentials. Fails early, in words, if the keytab cannot be
    /// used.
    pub fn new(config: &AcceptorConfig) -> Result<Self, GssError> {
        Self::with_replay_check(config, ReplayCheck::Mit)
    }

    /// Loads acceptor credentials with this replay check.
    pub fn with_replay_check(
        config: &AcceptorConfig,
        check: ReplayCheck,
    ) -> Result<Self, GssError> {
        ffi::keep_krb5_profile_loaded();
        let rcache_off: &[(&str, &str)] = match check {
            ReplayCheck::Mit => &[],
            ReplayCheck::Off => &[("rcache", "none:")],
        };
        Ok(Self {
            cred: acquire(config, None, rcache_off)?,
            config: config.clone(),
            memory: None,
            shared: None,
            impersonator: None,
            report_service: false,
        })
    }

    /// Acceptor credentials that can also act as `impersonator` (the service's own
    /// account, with its realm: `svc-web@AD.EXAMPLE.TEST`, whose keys the keytab holds),
    /// so that a client's forwardable ticket yields an S4U2Proxy credential
    /// ([`AcceptContext::take_delegated`]) with which tickets to the services the
    /// account may delegate to are asked for in the client's name. Tickets for any key
    /// of the keytab are accepted (`acceptor_name` must be `None`).
    pub fn with_constrained_delegation(
        config: &AcceptorConfig,
        impersonator: &str,
    ) -> Result<Self, GssError> {
        ffi::keep_krb5_profile_loaded();
        if config.acceptor_name.is_some() {
            return Err(GssError::from_status(
                2 << 16, // GSS_S_BAD_NAME
                0,
                "constrained delegation accepts tickets for every key of the keytab: \
                 give no acceptor name"
                    .to_owned(),
                Side::Acceptor,
                config.acceptor_name.clone(),
            ));
        }
        Ok(Self {
            cred: acquire(config, Some(impersonator), &[])?,
            config: config.clone(),
            memory: None,
            shared: None,
            impersonator: Some(impersonator.to_owned()),
            report_service: false,
        })
    }

    /// The same keys, with replays caught by an in-memory cache instead of MIT's
    /// file cache (which locks and writes a file on every accept): a token whose
    /// AP-REQ authenticator can be found ([`kerbside_proto::krb5::authenticator`])
    /// is accepted with MIT's cache off, then its authenticator is recorded, and
    /// refused as a replay if it was already there (within twice `clock_skew`).
    /// Anything else — tokens the strict walker cannot read, exchanges that need
    /// more than one leg, a full cache — goes through MIT's cache as before.
    pub fn with_memory_replay_cache(&self, clock_skew: Duration) -> Result<Self, GssError> {
        let cred = acquire(
            &self.config,
            self.impersonator.as_deref(),
            &[("rcache", "none:")],
        )?;
        Ok(Self {
            cred: self.cred.clone(),
            config: self.config.clone(),
            memory: Some(Arc::new(MemoryReplay {
                cred,
                cache: ReplayCache::new(clock_skew, ReplayCache::DEFAULT_CAPACITY),
                journal: None,
            })),
            shared: self.shared.clone(),
            impersonator: self.impersonator.clone(),
            report_service: self.report_service,
        })
    }

    /// Like [`with_memory_replay_cache`](Self::with_memory_replay_cache), with the
    /// cache kept in a file as well, so a token accepted before a restart stays
    /// refused after it: each accepted authenticator is appended to `file` (by
    /// default [`ReplayJournal::default_path`] for this acceptor) before the accept
    /// is reported, and the unexpired entries are reloaded here. If the file cannot
    /// be used (someone else's, a symbolic link, writable by others, held by another
    /// process, not a replay cache), this fails in words and the caller should keep
    /// MIT's file cache instead.
    pub fn with_replay_file(
        &self,
        clock_skew: Duration,
        file: Option<&Path>,
    ) -> Result<Self, ReplayCacheError> {
        let path = file.map_or_else(
            || {
                ReplayJournal::default_path(
                    self.config.acceptor_name.as_deref(),
                    self.config.keytab.as_deref(),
                )
            },
            Path::to_path_buf,
        );
        let (journal, reloaded) = ReplayJournal::open(&path, clock_skew.saturating_mul(2))?;
        let cache = ReplayCache::new(clock_skew, ReplayCache::DEFAULT_CAPACITY);
        let now = Instant::now();
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        for entry in &reloaded.entries {
            let left = Duration::from_secs(entry.expires.saturating_sub(unix));
            cache.restore(entry.key, now + left);
        }
        tracing::info!(
            file = %path.display(),
            reloaded = reloaded.entries.len(),
            torn_tail = reloaded.torn_tail,
            "replay cache file in use"
        );
        let cred = acquire(
            &self.config,
            self.impersonator.as_deref(),
            &[("rcache", "none:")],
        )?;
        Ok(Self {
            cred: self.cred.clone(),
            config: self.config.clone(),
            memory: Some(Arc::new(MemoryReplay {
                cred,
                cache,
                journal: Some(journal),
            })),
            shared: self.shared.clone(),
            impersonator: self.impersonator.clone(),
            report_service: self.report_service,
        })
    }

    /// The same acceptor with a replay cache shared with other gates behind it: an
    /// authenticator the memory cache has not seen is claimed in `store` (for twice
    /// `clock_skew`) before the accept is reported, so a token accepted by one gate is
    /// refused by every other. When the store cannot answer, `when_unavailable` decides.
    /// Only acceptors with a memory replay cache
    /// ([`with_memory_replay_cache`](Self::with_memory_replay_cache),
    /// [`with_replay_file`](Self::with_replay_file)) ask it; set those up first.
    pub fn with_shared_replay(
        &self,
        store: Arc<dyn SharedReplay>,
        when_unavailable: WhenUnavailable,
        clock_skew: Duration,
    ) -> Self {
        Self {
            cred: self.cred.clone(),
            config: self.config.clone(),
            memory: self.memory.clone(),
            shared: Some(Arc::new(SharedCheck {
                store,
                when_unavailable,
                ttl: clock_skew.saturating_mul(2),
            })),
            impersonator: self.impersonator.clone(),
            report_service: self.report_service,
        }
    }

    /// Whether replays are checked in memory ([`with_memory_replay_cache`](Self::with_memory_replay_cache)).
    pub fn has_memory_replay_cache(&self) -> bool {
        self.memory.is_some()
    }
}

/// Acquires acceptor credentials from the keytab with extra credential-store
/// entries (`rcache`); with an impersonator, credentials for S4U2Proxy as well. A
/// named keytab is read into memory ([`ReloadingCred`]); if that fails, MIT reads
/// the file itself, and says in its own words what is wrong with it.
fn acquire(
    config: &AcceptorConfig,
    impersonator: Option<&str>,
    extra: &[(&str, &str)],
) -> Result<AcceptorCred, GssError> {
    if let Some(impersonator) = impersonator {
        return crate::delegation::acquire_proxy_acceptor(
            config.keytab.as_deref(),
            impersonator,
            extra,
        )
        .map(AcceptorCred::Fixed);
    }
    if let Some(path) = &config.keytab {
        match ReloadingCred::new(path, config.acceptor_name.as_deref(), extra) {
            Ok(memory) => return Ok(AcceptorCred::Memory(Arc::new(memory))),
            Err(e) => tracing::debug!(
                keytab = %path.display(),
                "keytab not read into memory ({e}); MIT reads the file"
            ),
        }
    }
    acquire_file(config, extra).map(AcceptorCred::Fixed)
}

/// [`acquire`] with MIT reading the keytab file on every accept.
fn acquire_file(
    config: &AcceptorConfig,
    extra: &[(&str, &str)],
) -> Result<AcceptorHandle, GssError> {
    {
        let subject = config
            .keytab
            .as_ref()
            .map(|p| p.display().to_string())
            .or_else(|| config.acceptor_name.clone());
        match &config.keytab {
            Some(path) => {
                let kt = format!("FILE:{}", path.display());
                let mut store = vec![("keytab", kt.as_str())];
                store.extend_from_slice(extra);
                ffi::acquire_acceptor(config.acceptor_name.as_deref(), ffi::Usage::Accept, &store)
                    .map_err(|s| status_error(s, Side::Acceptor, subject))
            }
            None => {
                ffi::acquire_acceptor(config.acceptor_name.as_deref(), ffi::Usage::Accept, extra)
                    .or_else(|e| {
                        if !extra.is_empty() {
                            return Err(e);
                        }
                        ffi::acquire_default_acceptor()
                    })
                    .map_err(|s| status_error(s, Side::Acceptor, subject))
            }
        }
    }
}

impl NegotiateAcceptor {
    /// The keytab in use, if one was named.
    pub fn keytab(&self) -> Option<&PathBuf> {
        self.config.keytab.as_ref()
    }

    /// Starts an exchange.
    pub fn context(&self) -> AcceptContext {
        AcceptContext {
            ctx: None,
            acceptor: self.clone(),
            delegated: None,
        }
    }

    /// Makes each completed login say which service principal its ticket was for
    /// ([`AcceptStep::Done`]'s `service`), for a server that accepts with the whole keytab
    /// and decides per request which services it takes. Off by default: it costs one
    /// `gss_inquire_context` per login.
    pub fn reporting_service(mut self, on: bool) -> Self {
        self.report_service = on;
        self
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
        if self.ctx.is_none() {
            if let Some(memory) = self.acceptor.memory.clone() {
                if let Ok(found) = kerbside_proto::krb5::authenticator(token) {
                    let key = ReplayCache::key(found.cipher);
                    let direct = if self.acceptor.impersonator.is_none() {
                        memory.cred.memory_keytab_for_any_name().and_then(|keytab| {
                            crate::direct::accept(
                                &keytab,
                                token,
                                channel_bindings,
                                self.acceptor.report_service,
                            )
                        })
                    } else {
                        None
                    };
                    if let Some(done) = direct {
                        if self.claim(&memory, key, found.wrapping)? {
                            let pac = verified_pac(&done.principal, done.pac);
                            return Ok(AcceptStep::Done {
                                principal: done.principal,
                                token: done.reply,
                                delegated: false,
                                channel_bound: done.channel_bound,
                                lifetime: done.lifetime,
                                pac,
                                service: done.service,
                            });
                        }
                    } else {
                        let (mut ctx, out) = first_step(&memory.cred, token, channel_bindings)?;
                        if ctx.is_complete() && self.claim(&memory, key, found.wrapping)? {
                            return finish(
                                &mut ctx,
                                out,
                                &mut self.delegated,
                                self.acceptor.report_service,
                            );
                        }
                    }
                    // An exchange of more than one leg (or a full cache): start over
                    // with MIT's replay cache, which has not seen this token yet.
                }
            }
            let (mut ctx, out) = first_step(&self.acceptor.cred, token, channel_bindings)?;
            let step = finish(
                &mut ctx,
                out,
                &mut self.delegated,
                self.acceptor.report_service,
            );
            self.ctx = Some(ctx);
            return step;
        }
        let Some(ctx) = self.ctx.as_mut() else {
            return Err(defective());
        };
        let out = ctx
            .step(token, channel_bindings)
            .map_err(|e| GssError::from_raw(e, Side::Acceptor, None))?;
        finish(ctx, out, &mut self.delegated, self.acceptor.report_service)
    }

    /// Records an accepted token's authenticator in the memory cache (and the shared
    /// one, if any): `Ok(true)` if it was fresh, `Ok(false)` if the memory cache is
    /// full (MIT's replay cache must decide), an error if it is a replay or cannot be
    /// recorded.
    fn claim(
        &self,
        memory: &MemoryReplay,
        key: [u8; 32],
        wrapping: kerbside_proto::krb5::Wrapping,
    ) -> Result<bool, GssError> {
        let recorded = memory.record(key);
        if matches!(recorded, Recorded::Fresh | Recorded::Unrecorded) {
            if let Some(shared) = &self.acceptor.shared {
                match shared.check(&key) {
                    Shared::Fresh => {}
                    Shared::Replay => {
                        tracing::warn!(
                            ?wrapping,
                            "Negotiate token refused: its Kerberos authenticator was seen \
                             before (shared replay cache: another gate accepted it)"
                        );
                        return Err(replayed());
                    }
                    Shared::Unavailable => return Err(unsaved()),
                }
            }
        }
        match recorded {
            Recorded::Fresh => Ok(true),
            Recorded::Replay => {
                tracing::warn!(
                    ?wrapping,
                    "Negotiate token refused: its Kerberos authenticator was seen before \
                     (memory replay cache)"
                );
                Err(replayed())
            }
            Recorded::Unsaved => Err(unsaved()),
            Recorded::Unrecorded => Ok(false),
        }
    }

    /// Once the exchange is complete: the credential the client's login left to act
    /// in its name, if any (a forwarded TGT, or an S4U2Proxy credential with
    /// [`NegotiateAcceptor::with_constrained_delegation`]). Taken once; dropping it
    /// releases it from memory, so nothing of it is kept.
    pub fn take_delegated(&mut self) -> Option<DelegatedCredential> {
        self.delegated.take()
    }
}

/// The first `gss_accept_sec_context` of an exchange, in a new context. If it fails
/// and the keytab changed since it was last read (a ticket for a key added a moment
/// ago), once more with the keys read again.
fn first_step(
    cred: &AcceptorCred,
    token: &[u8],
    channel_bindings: Option<&[u8]>,
) -> Result<(ServerContext, Option<Vec<u8>>), GssError> {
    let mut ctx = ServerContext::new(cred.get());
    match ctx.step(token, channel_bindings) {
        Ok(out) => Ok((ctx, out)),
        Err(e) if cred.reload_if_changed() => {
            tracing::debug!("token refused ({e}) before the keytab was read again; trying again");
            let mut ctx = ServerContext::new(cred.get());
            let out = ctx
                .step(token, channel_bindings)
                .map_err(|e| GssError::from_raw(e, Side::Acceptor, None))?;
            Ok((ctx, out))
        }
        Err(e) => Err(GssError::from_raw(e, Side::Acceptor, None)),
    }
}

/// The step's result once `gss_accept_sec_context` has answered; a completed
/// context's delegated credential goes to `delegated`. The PAC is asked for (one name
/// attribute call); everything else came with the accept itself ([`ServerContext`]).
fn finish(
    ctx: &mut ServerContext,
    out: Option<Vec<u8>>,
    delegated: &mut Option<DelegatedCredential>,
    report_service: bool,
) -> Result<AcceptStep, GssError> {
    let out = out.filter(|t| !t.is_empty());
    if !ctx.is_complete() {
        return match out {
            Some(t) => Ok(AcceptStep::Continue(t)),
            None => Err(defective()),
        };
    }
    let Some(established) = ctx.take_established() else {
        return Err(GssError::from_raw(
            RawError {
                major: MajorFlags::GSS_S_FAILURE,
                minor: 0,
            },
            Side::Acceptor,
            None,
        ));
    };
    let principal = established
        .source
        .display()
        .map_err(|e| GssError::from_raw(e, Side::Acceptor, None))?;
    let pac = verified_pac(&principal, name_attr::pac(&established.source));
    let was_delegated = established.delegated.is_some();
    *delegated = established.delegated.map(DelegatedCredential::new);
    Ok(AcceptStep::Done {
        principal,
        token: out,
        delegated: was_delegated,
        channel_bound: established.flags & GSS_C_CHANNEL_BOUND_FLAG != 0,
        lifetime: (established.lifetime > 0)
            .then(|| Duration::from_secs(u64::from(established.lifetime))),
        pac,
        service: if report_service {
            ctx.target_name()
        } else {
            None
        },
    })
}

/// The PAC if it was verified; a warning (and `None`) if it is there but unverified
/// or unreadable.
fn verified_pac(principal: &str, pac: PacAttribute) -> Option<Vec<u8>> {
    match pac {
        PacAttribute::Verified(pac) => Some(pac),
        PacAttribute::Absent => None,
        PacAttribute::Unverified => {
            tracing::warn!(%principal, "the ticket's PAC is not verified by GSSAPI; ignored");
            None
        }
        PacAttribute::Failed { major, minor } => {
            tracing::warn!(%principal, major, minor, "cannot read the ticket's PAC; ignored");
            None
        }
    }
}

/// What MIT's replay cache says for a replay: `GSS_S_DUPLICATE_TOKEN`.
fn replayed() -> GssError {
    GssError::from_raw(
        RawError {
            major: MajorFlags::GSS_S_DUPLICATE_TOKEN,
            minor: 0,
        },
        Side::Acceptor,
        None,
    )
}

/// A token refused because the replay cache file could not record it.
fn unsaved() -> GssError {
    GssError::from_raw(
        RawError {
            major: MajorFlags::GSS_S_FAILURE,
            minor: 0,
        },
        Side::Acceptor,
        None,
    )
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
