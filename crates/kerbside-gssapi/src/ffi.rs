//! The two GSSAPI calls `libgssapi` does not wrap: importing a name for an acquire
//! call, and `gss_acquire_cred_from` (credentials from an explicit keytab or ticket
//! cache instead of the process-wide `KRB5_KTNAME` / `KRB5CCNAME`).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::ptr;

use libgssapi::credential::Cred;

use crate::accept_ctx::AcceptorHandle;
use libgssapi_sys::{
    gss_OID_desc, gss_OID_set_desc, gss_acquire_cred_from, gss_buffer_desc, gss_cred_id_t,
    gss_cred_usage_t, gss_import_name, gss_key_value_element_desc, gss_key_value_set_desc,
    gss_name_t, gss_release_cred, gss_release_name, gss_set_neg_mechs, OM_uint32, GSS_C_ACCEPT,
    GSS_C_BOTH, GSS_C_INITIATE,
};

#[link(name = "krb5")]
extern "C" {
    fn krb5_init_context(context: *mut *mut std::ffi::c_void) -> i32;
}

/// Keeps one krb5 context open for the life of the process.
///
/// MIT's GSSAPI makes and frees several krb5 contexts per `gss_accept_sec_context`;
/// each opens the profile (krb5.conf), and when the last open profile closes MIT frees
/// the parsed file, so every accept parsed krb5.conf again. With one context held
/// open, the parsed file is shared and only checked for changes (a `stat`), which
/// MIT's profile library does on every open anyway, so an edited krb5.conf is still
/// read.
pub(crate) fn keep_krb5_profile_loaded() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut context: *mut std::ffi::c_void = ptr::null_mut();
        // SAFETY: krb5_init_context writes a new context into `context` (or leaves
        // it null on failure). The context is never freed on purpose: it keeps the
        // profile open until the process exits.
        let code = unsafe { krb5_init_context(&mut context) };
        if code != 0 {
            tracing::debug!("krb5_init_context failed ({code}); krb5.conf is read per call");
        }
    });
}

/// The raw status of a failed call.
pub(crate) struct Status {
    pub major: u32,
    pub minor: u32,
}

/// What credentials are for.
#[derive(Clone, Copy)]
pub(crate) enum Usage {
    Initiate,
    Accept,
    /// Both, for an acceptor that also initiates (S4U2Proxy).
    Both,
}

// RFC 2743 §4.1 GSS_C_NT_HOSTBASED_SERVICE: 1.2.840.113554.1.2.1.4
static NT_HOSTBASED: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04";
// RFC 1964 GSS_KRB5_NT_PRINCIPAL_NAME: 1.2.840.113554.1.2.2.1
static NT_KRB5_PRINCIPAL: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x01";

/// An imported GSSAPI name, released on drop.
struct ImportedName(gss_name_t);

impl Drop for ImportedName {
    fn drop(&mut self) {
        if !self.0.is_null() {
            let mut minor: OM_uint32 = 0;
            // SAFETY: self.0 came from gss_import_name and is released once.
            unsafe { gss_release_name(&mut minor, &mut self.0) };
        }
    }
}

// GSS_KRB5_NT_ENTERPRISE_NAME (MIT 1.17+): 1.2.840.113554.1.2.2.6
static NT_KRB5_ENTERPRISE: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02\x06";

/// Whether a user's name is an enterprise name (RFC 6806), a UPN such as
/// `alice@ad.example.com`, rather than a principal: it has an `@` and what follows the
/// last one is not in capitals, as realms are.
pub(crate) fn is_enterprise_name(name: &str) -> bool {
    name.rsplit_once('@')
        .is_some_and(|(user, suffix)| !user.is_empty() && suffix.chars().any(char::is_lowercase))
}

/// Imports a name for [`raw_acquire`]: for `Usage::Accept`, `service@host` as
/// a host-based service name or `service/host[@REALM]` as a Kerberos principal; for
/// `Usage::Initiate`, a Kerberos principal (`alice`, `alice@REALM`), or an enterprise
/// name for a UPN (`alice@ad.example.com`, see [`is_enterprise_name`]), which the KDC
/// maps to the account. With `canonicalize = true` in krb5.conf's `[libdefaults]` MIT asks
/// it to canonicalize the name and the tickets name the account (`alice@AD.EXAMPLE.COM`);
/// without, they carry the enterprise name (`alice\@ad.example.com@AD.EXAMPLE.COM`).
fn import_name(name: &str, usage: Usage) -> Result<ImportedName, Status> {
    let oid_bytes = if matches!(usage, Usage::Initiate) && is_enterprise_name(name) {
        NT_KRB5_ENTERPRISE
    } else if name.contains('/') || !matches!(usage, Usage::Accept) {
        NT_KRB5_PRINCIPAL
    } else {
        NT_HOSTBASED
    };
    let mut oid = gss_OID_desc {
        length: oid_bytes.len() as OM_uint32,
        elements: oid_bytes.as_ptr() as *mut std::ffi::c_void,
    };
    let mut buf = gss_buffer_desc {
        length: name.len(),
        value: name.as_ptr() as *mut std::ffi::c_void,
    };
    let mut out: gss_name_t = ptr::null_mut();
    let mut minor: OM_uint32 = 0;
    // SAFETY: buf and oid point at live data for the duration of the call; GSSAPI
    // copies what it keeps. `out` receives a fresh name we own.
    let major = unsafe { gss_import_name(&mut minor, &mut buf, &mut oid, &mut out) };
    if major == 0 {
        Ok(ImportedName(out))
    } else {
        Err(Status { major, minor })
    }
}

// RFC 1964 Kerberos V5 mechanism: 1.2.840.113554.1.2.2
static MECH_KRB5: &[u8] = b"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02";
// RFC 4178 SPNEGO: 1.3.6.1.5.5.2
static MECH_SPNEGO: &[u8] = b"\x2b\x06\x01\x05\x05\x02";

fn oid(bytes: &'static [u8]) -> gss_OID_desc {
    gss_OID_desc {
        length: bytes.len() as OM_uint32,
        elements: bytes.as_ptr() as *mut std::ffi::c_void,
    }
}

/// Initiator credentials for SPNEGO that negotiate Kerberos only.
///
/// With another GSSAPI mechanism installed (gss-ntlmssp on Debian), MIT's SPNEGO
/// would also offer it, and with no Kerberos ticket its failure ("A required argument
/// is missing") would hide the real one ("no Kerberos credentials"). So the Kerberos
/// element is acquired first, alone, to get Kerberos's own error; then Kerberos and
/// SPNEGO together, and `gss_set_neg_mechs` keeps SPNEGO to Kerberos. NTLM inside
/// SPNEGO is kerbside's own, pure-Rust and opt-in.
pub(crate) fn acquire_krb5_initiator(
    name: Option<&str>,
    store: &[(&str, &str)],
) -> Result<Cred, Status> {
    acquire_krb5(name, Usage::Initiate, store)
}

/// Credentials for SPNEGO restricted to Kerberos, for either side; see
/// [`acquire_krb5_initiator`]. An acceptor otherwise also gets gss-ntlmssp's
/// credential, which needs no keytab, so a missing keytab would go unnoticed.
fn acquire_krb5(name: Option<&str>, usage: Usage, store: &[(&str, &str)]) -> Result<Cred, Status> {
    let cred = acquire_krb5_raw(name, usage, store)?;
    // SAFETY: cred is a fresh handle; Cred takes ownership and releases it on drop.
    Ok(unsafe { Cred::from_c(cred) })
}

/// [`acquire_krb5`], the handle the caller's to release.
fn acquire_krb5_raw(
    name: Option<&str>,
    usage: Usage,
    store: &[(&str, &str)],
) -> Result<gss_cred_id_t, Status> {
    let mut krb5 = [oid(MECH_KRB5)];
    let probe = raw_acquire(name, usage, store, &mut krb5)?;
    release(probe);
    let mut both = [oid(MECH_KRB5), oid(MECH_SPNEGO)];
    let cred = raw_acquire(name, usage, store, &mut both)?;
    let mut only = [oid(MECH_KRB5)];
    let mut set = gss_OID_set_desc {
        count: only.len(),
        elements: only.as_mut_ptr(),
    };
    let mut minor: OM_uint32 = 0;
    // SAFETY: cred is a live handle we own; set points at `only`, alive for the call.
    let major = unsafe { gss_set_neg_mechs(&mut minor, cred, &mut set) };
    if major != 0 {
        release(cred);
        return Err(Status { major, minor });
    }
    Ok(cred)
}

fn release(mut cred: gss_cred_id_t) {
    let mut minor: OM_uint32 = 0;
    // SAFETY: cred came from gss_acquire_cred_from and is released once.
    unsafe { gss_release_cred(&mut minor, &mut cred) };
}

/// Acceptor credentials through `gss_acquire_cred_from` with a credential store
/// (`keytab`, `rcache`...), for `name` or any name, restricted to Kerberos as
/// [`acquire_krb5`] does, with the raw handle kept for kerbside's own
/// `gss_accept_sec_context` ([`AcceptorHandle`]).
pub(crate) fn acquire_acceptor(
    name: Option<&str>,
    usage: Usage,
    store: &[(&str, &str)],
) -> Result<AcceptorHandle, Status> {
    let cred = acquire_krb5_raw(name, usage, store)?;
    // SAFETY: cred is a fresh handle nothing else owns.
    Ok(unsafe { AcceptorHandle::from_raw(cred) })
}

/// The default acceptor credentials, for every mechanism (`gss_acquire_cred` with no
/// name and no credential store): the last resort when no keytab is named.
pub(crate) fn acquire_default_acceptor() -> Result<AcceptorHandle, Status> {
    let cred = raw_acquire(None, Usage::Accept, &[], &mut [])?;
    // SAFETY: cred is a fresh handle nothing else owns.
    Ok(unsafe { AcceptorHandle::from_raw(cred) })
}

/// `gss_acquire_cred_from` for `mechs` (all mechanisms when empty); the handle is the
/// caller's to release.
fn raw_acquire(
    name: Option<&str>,
    usage: Usage,
    store: &[(&str, &str)],
    mechs: &mut [gss_OID_desc],
) -> Result<gss_cred_id_t, Status> {
    let name = name.map(|n| import_name(n, usage)).transpose()?;
    let strings: Vec<(CString, CString)> = store
        .iter()
        .map(|(k, v)| Ok((CString::new(*k)?, CString::new(*v)?)))
        .collect::<Result<_, std::ffi::NulError>>()
        .map_err(|_| Status {
            major: 13 << 16, // GSS_S_FAILURE
            minor: 0,
        })?;
    let elements: Vec<gss_key_value_element_desc> = strings
        .iter()
        .map(|(k, v)| gss_key_value_element_desc {
            key: k.as_ptr(),
            value: v.as_ptr(),
        })
        .collect();
    let set = gss_key_value_set_desc {
        count: elements.len() as OM_uint32,
        elements: elements.as_ptr() as *mut gss_key_value_element_desc,
    };
    let usage = match usage {
        Usage::Initiate => GSS_C_INITIATE,
        Usage::Accept => GSS_C_ACCEPT,
        Usage::Both => GSS_C_BOTH,
    } as gss_cred_usage_t;
    let mut cred: gss_cred_id_t = ptr::null_mut();
    let mut minor: OM_uint32 = 0;
    let mut mech_set = gss_OID_set_desc {
        count: mechs.len(),
        elements: mechs.as_mut_ptr(),
    };
    let desired = if mechs.is_empty() {
        ptr::null_mut()
    } else {
        &mut mech_set as *mut gss_OID_set_desc
    };
    // SAFETY: every pointer refers to data alive until the call returns (`strings`,
    // `elements`, `set`, `name`, `mech_set`); `cred` receives a credential we own.
    let major = unsafe {
        gss_acquire_cred_from(
            &mut minor,
            name.as_ref().map_or(ptr::null_mut(), |n| n.0),
            u32::MAX, // GSS_C_INDEFINITE
            desired,
            usage,
            &set,
            &mut cred,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if major == 0 {
        Ok(cred)
    } else {
        Err(Status { major, minor })
    }
}

#[cfg(test)]
mod tests {
    use super::is_enterprise_name;

    #[test]
    fn upns_are_enterprise_names_and_principals_are_not() {
        for upn in [
            "bob@ad.example.test",
            "bob@Ad.Example.Test",
            "b@x.y@ad.example.test",
        ] {
            assert!(is_enterprise_name(upn), "{upn}");
        }
        for principal in [
            "bob",
            "bob@AD.EXAMPLE.TEST",
            "HTTP/www@EXAMPLE.COM",
            "@x",
            "BOB@",
        ] {
            assert!(!is_enterprise_name(principal), "{principal}");
        }
    }
}
