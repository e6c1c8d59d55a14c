//! Credentials a server can use on its client's behalf, and where they come from:
//!
//! * **Delegation:** the client forwarded its ticket-granting ticket (curl
//!   `--delegation always`, `kerbside fetch --delegation always`, a browser for a host
//!   the KDC marks ok-as-delegate); `gss_accept_sec_context` hands it back as a
//!   credential.
//! * **Constrained delegation (S4U2Proxy):** the client delegated nothing, but its
//!   service ticket is forwardable and the server's account may delegate to named
//!   services (AD's `msDS-AllowedToDelegateTo`); with acceptor credentials that can
//!   also initiate ([`NegotiateAcceptor::with_constrained_delegation`]), MIT returns a
//!   "proxy" credential: the server's own TGT plus the client's ticket as evidence, from
//!   which a ticket to an allowed service is asked for in the client's name when it is
//!   used, as mod_auth_gssapi's `GssapiUseS4U2Proxy` does.
//!
//! Either is a [`DelegatedCredential`], which the server can [store](DelegatedCredential::store)
//! into a ticket cache file for a program to use (`KRB5CCNAME`).
//!
//! [`NegotiateAcceptor::with_constrained_delegation`]: crate::NegotiateAcceptor::with_constrained_delegation

use std::path::Path;
use std::time::Duration;

use libgssapi::context::{ClientCtx, CtxFlags};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_KRB5_PRINCIPAL};

use crate::accept_ctx::AcceptorHandle;
use crate::error::{GssError, Side};
use crate::ffi;
use crate::initiator::status_error;

/// A credential the client's login left the server: a forwarded TGT, or an S4U2Proxy
/// proxy credential. Never printed (its `Debug` shows nothing of it).
pub struct DelegatedCredential {
    cred: Cred,
}

impl std::fmt::Debug for DelegatedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DelegatedCredential { .. }")
    }
}

impl DelegatedCredential {
    pub(crate) fn new(cred: Cred) -> Self {
        Self { cred }
    }

    /// How long the credential stays valid (its ticket's remaining life).
    pub fn lifetime(&self) -> Option<Duration> {
        self.cred.lifetime().ok()
    }

    /// Writes the credential into the ticket cache file `path` (created mode 0600 by
    /// MIT, replaced if it exists), as `gss_store_cred_into` does with `ccache =
    /// FILE:path`. Callers that want an atomic replacement store into a new file and
    /// rename it.
    pub fn store(&self, path: &Path) -> Result<(), GssError> {
        let ccache = format!("FILE:{}", path.display());
        self.cred
            .store_into(
                &ccache,
                true,
                true,
                CredUsage::Initiate,
                Some(GSS_MECH_KRB5),
            )
            .map_err(|e| GssError::from_raw(e, Side::Acceptor, Some(path.display().to_string())))
    }
}

/// Acceptor credentials that can also initiate as `impersonator` (the server's own
/// account, e.g. `svc-web@AD.EXAMPLE.TEST`), so that MIT's accept returns an S4U2Proxy
/// credential for a forwardable client ticket.
///
/// The keytab serves both sides: it opens clients' tickets, and, as a client keytab,
/// gets `impersonator`'s TGT. The TGT is got first, into a memory cache of this process,
/// so that the credential's initiator is `impersonator` whatever the keytab's first
/// entry is (in Active Directory, an SPN such as `HTTP/host` cannot get a TGT; the
/// account's name can). The credential has no name: it accepts tickets for any key of
/// the keytab, as the gate does without `--acceptor`.
pub(crate) fn acquire_proxy_acceptor(
    keytab: Option<&Path>,
    impersonator: &str,
    extra: &[(&str, &str)],
) -> Result<AcceptorHandle, GssError> {
    let subject = Some(impersonator.to_owned());
    let Some((_, realm)) = impersonator.rsplit_once('@') else {
        return Err(GssError::from_status(
            2 << 16, // GSS_S_BAD_NAME
            0,
            format!(
                "the account for constrained delegation must name its realm \
                 (`{impersonator}@REALM`)"
            ),
            Side::Acceptor,
            subject,
        ));
    };
    let kt = match keytab {
        Some(path) => format!("FILE:{}", path.display()),
        None => std::env::var("KRB5_KTNAME").unwrap_or_else(|_| "FILE:/etc/krb5.keytab".into()),
    };
    let ccache = format!("MEMORY:kerbside-s4u-{}-{impersonator}", std::process::id());
    let base = [
        ("keytab", kt.as_str()),
        ("client_keytab", kt.as_str()),
        ("ccache", ccache.as_str()),
    ];
    // The TGT: a context to the realm's own TGS makes MIT get it from the keytab.
    let initiator = ffi::acquire_krb5_initiator(Some(impersonator), &base[1..])
        .map_err(|s| status_error(s, Side::Initiator, subject.clone()))?;
    let krbtgt = format!("krbtgt/{realm}@{realm}");
    let target = Name::new(krbtgt.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
        .map_err(|e| GssError::from_raw(e, Side::Initiator, subject.clone()))?;
    let mut ctx = ClientCtx::new(Some(initiator), target, CtxFlags::empty(), None);
    ctx.step(None, None)
        .map_err(|e| GssError::from_raw(e, Side::Initiator, subject.clone()))?;
    let mut store: Vec<(&str, &str)> = base.to_vec();
    store.extend_from_slice(extra);
    ffi::acquire_acceptor(None, ffi::Usage::Both, &store)
        .map_err(|s| status_error(s, Side::Acceptor, subject))
}
