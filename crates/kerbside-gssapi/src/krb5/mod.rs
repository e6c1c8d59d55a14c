//! MIT krb5 itself, for diagnosis (`kerbside doctor`): the configuration's values,
//! ticket caches with their tickets' times and flags, and service tickets with the
//! encryption type and key version they were issued under. GSSAPI hides all of this.
//!
//! [`Context`] is one `krb5_context`; every call may read files or talk to a KDC, so
//! async callers run it on a blocking thread. Nothing here prints or returns a key.
//!
//! ```no_run
//! use kerbside_gssapi::krb5::Context;
//!
//! let context = Context::new()?;
//! let cache = context.default_ccache()?;
//! println!("{}:{} holds {:?}", cache.cache_type(), cache.name(), cache.principal());
//! for ticket in cache.tickets()? {
//!     println!("{} until {}", ticket.server, ticket.times.endtime);
//! }
//! # Ok::<(), kerbside_gssapi::krb5::Krb5Error>(())
//! ```
#![allow(unsafe_code)]

pub(crate) mod ffi;
mod names;

use std::ffi::{CStr, CString};
use std::fmt;
use std::ptr;

pub use names::{enctype_is_weak, enctype_name};

/// A failed krb5 call: MIT's error code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Krb5Error {
    code: i32,
    message: String,
}

/// What a [`Krb5Error`] means for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Krb5ErrorKind {
    /// No ticket cache, or nothing in it.
    NoCredentials,
    /// The ticket (or the ticket-granting ticket) has expired.
    Expired,
    /// The KDC does not know the service principal.
    UnknownServer,
    /// The KDC does not know the client principal.
    UnknownClient,
    /// No KDC answered.
    KdcUnreachable,
    /// Clocks differ by more than the allowed skew.
    ClockSkew,
    /// A wrong password or key.
    WrongKey,
    /// No key in a keytab for the principal.
    NoKey,
    /// Anything else.
    Other,
}

// com_err codes from <krb5/krb5.h>.
const KDC_ERR_C_PRINCIPAL_UNKNOWN: i32 = -1_765_328_378;
const KDC_ERR_S_PRINCIPAL_UNKNOWN: i32 = -1_765_328_377;
const KDC_ERR_PREAUTH_FAILED: i32 = -1_765_328_360;
const KRB_AP_ERR_BAD_INTEGRITY: i32 = -1_765_328_353;
const KRB_AP_ERR_TKT_EXPIRED: i32 = -1_765_328_352;
const KRB_AP_ERR_SKEW: i32 = -1_765_328_347;
const CC_NOTFOUND: i32 = -1_765_328_243;
const KDC_UNREACH: i32 = -1_765_328_228;
const FCC_NOFILE: i32 = -1_765_328_189;
const KT_NOTFOUND: i32 = -1_765_328_203;
const KT_END: i32 = -1_765_328_202;
const CC_END: i32 = -1_765_328_242;
const NO_TKT_SUPPLIED: i32 = -1_765_328_239;
const KT_NOFILE: i32 = 2; // ENOENT from a FILE: keytab

impl Krb5Error {
    fn new(context: &Context, code: i32) -> Self {
        // SAFETY: the context is live; the message is copied and freed once.
        let message = unsafe {
            let raw = ffi::krb5_get_error_message(context.raw, code);
            if raw.is_null() {
                format!("krb5 error {code}")
            } else {
                let text = CStr::from_ptr(raw).to_string_lossy().into_owned();
                ffi::krb5_free_error_message(context.raw, raw);
                text
            }
        };
        Self { code, message }
    }

    fn plain(message: impl Into<String>) -> Self {
        Self {
            code: 0,
            message: message.into(),
        }
    }

    /// MIT's com_err code (0 for errors made here).
    pub fn code(&self) -> i32 {
        self.code
    }

    /// MIT's message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What the error means.
    pub fn kind(&self) -> Krb5ErrorKind {
        match self.code {
            CC_NOTFOUND | FCC_NOFILE | NO_TKT_SUPPLIED | CC_END => Krb5ErrorKind::NoCredentials,
            KRB_AP_ERR_TKT_EXPIRED => Krb5ErrorKind::Expired,
            KDC_ERR_S_PRINCIPAL_UNKNOWN => Krb5ErrorKind::UnknownServer,
            KDC_ERR_C_PRINCIPAL_UNKNOWN => Krb5ErrorKind::UnknownClient,
            KDC_UNREACH => Krb5ErrorKind::KdcUnreachable,
            KRB_AP_ERR_SKEW => Krb5ErrorKind::ClockSkew,
            KDC_ERR_PREAUTH_FAILED | KRB_AP_ERR_BAD_INTEGRITY => Krb5ErrorKind::WrongKey,
            KT_NOTFOUND | KT_END | KT_NOFILE => Krb5ErrorKind::NoKey,
            _ => Krb5ErrorKind::Other,
        }
    }
}

impl fmt::Display for Krb5Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Krb5Error {}

/// One `krb5_context`: the configuration as read when it was made.
pub struct Context {
    raw: ffi::krb5_context,
}

// SAFETY: a krb5_context may be used from any thread, one at a time; `Context` is
// not `Sync`, so it is never used from two threads at once.
unsafe impl Send for Context {}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: raw came from krb5_init_context and is freed once.
        unsafe { ffi::krb5_free_context(self.raw) };
    }
}

fn cstring(text: &str) -> Result<CString, Krb5Error> {
    CString::new(text).map_err(|_| Krb5Error::plain(format!("{text:?} contains a NUL byte")))
}

/// Copies a C string that krb5 owns.
///
/// # Safety
/// `raw` is null or a NUL-terminated string alive for the call.
unsafe fn borrowed(raw: *const std::ffi::c_char) -> String {
    if raw.is_null() {
        String::new()
    } else {
        CStr::from_ptr(raw).to_string_lossy().into_owned()
    }
}

impl Context {
    /// A new context (reads `KRB5_CONFIG` or /etc/krb5.conf).
    pub fn new() -> Result<Self, Krb5Error> {
        let mut raw: ffi::krb5_context = ptr::null_mut();
        // SAFETY: krb5_init_context writes a context we own into `raw`.
        let code = unsafe { ffi::krb5_init_context(&mut raw) };
        if code != 0 || raw.is_null() {
            return Err(Krb5Error {
                code,
                message: format!(
                    "cannot read the Kerberos configuration (krb5_init_context error {code}); \
                     check KRB5_CONFIG or /etc/krb5.conf"
                ),
            });
        }
        Ok(Self { raw })
    }

    fn check(&self, code: i32) -> Result<(), Krb5Error> {
        if code == 0 {
            Ok(())
        } else {
            Err(Krb5Error::new(self, code))
        }
    }

    /// `[libdefaults] default_realm` (or what MIT derives), if any.
    pub fn default_realm(&self) -> Option<String> {
        let mut raw: *mut std::ffi::c_char = ptr::null_mut();
        // SAFETY: the realm string is ours to free with krb5_free_default_realm.
        unsafe {
            if ffi::krb5_get_default_realm(self.raw, &mut raw) != 0 || raw.is_null() {
                return None;
            }
            let realm = borrowed(raw);
            ffi::krb5_free_default_realm(self.raw, raw);
            Some(realm)
        }
    }

    /// Every value of a relation in the configuration, e.g. `["realms", "EXAMPLE.COM",
    /// "kdc"]` or `["libdefaults", "rdns"]`; empty when it is not set.
    pub fn profile_values(&self, path: &[&str]) -> Vec<String> {
        let Ok(names) = path
            .iter()
            .map(|p| cstring(p))
            .collect::<Result<Vec<_>, _>>()
        else {
            return Vec::new();
        };
        let mut pointers: Vec<*const std::ffi::c_char> = names.iter().map(|n| n.as_ptr()).collect();
        pointers.push(ptr::null());
        let mut profile: ffi::profile_t = ptr::null_mut();
        let mut out = Vec::new();
        // SAFETY: the profile is a fresh reference we release; `pointers` is a
        // NULL-terminated list of strings alive for the call; the returned list is
        // ours to free with profile_free_list.
        unsafe {
            if ffi::krb5_get_profile(self.raw, &mut profile) != 0 || profile.is_null() {
                return out;
            }
            let mut values: *mut *mut std::ffi::c_char = ptr::null_mut();
            if ffi::profile_get_values(profile, pointers.as_ptr(), &mut values) == 0
                && !values.is_null()
            {
                let mut i = 0;
                while !(*values.add(i)).is_null() {
                    out.push(borrowed(*values.add(i)));
                    i += 1;
                }
                ffi::profile_free_list(values);
            }
            ffi::profile_release(profile);
        }
        out
    }

    /// The default ticket cache (`KRB5CCNAME`, else the configured default).
    pub fn default_ccache(&self) -> Result<Ccache<'_>, Krb5Error> {
        let mut raw: ffi::krb5_ccache = ptr::null_mut();
        // SAFETY: writes a cache handle we own into raw.
        self.check(unsafe { ffi::krb5_cc_default(self.raw, &mut raw) })?;
        Ok(Ccache {
            context: self,
            raw,
            destroy: false,
        })
    }

    /// A named ticket cache, e.g. `FILE:/tmp/krb5cc_1000`.
    pub fn resolve_ccache(&self, name: &str) -> Result<Ccache<'_>, Krb5Error> {
        let name = cstring(name)?;
        let mut raw: ffi::krb5_ccache = ptr::null_mut();
        // SAFETY: name is alive for the call; raw receives a handle we own.
        self.check(unsafe { ffi::krb5_cc_resolve(self.raw, name.as_ptr(), &mut raw) })?;
        Ok(Ccache {
            context: self,
            raw,
            destroy: false,
        })
    }

    fn parse_name(&self, name: &str) -> Result<Principal<'_>, Krb5Error> {
        let name = cstring(name)?;
        let mut raw: ffi::krb5_principal = ptr::null_mut();
        // SAFETY: name is alive for the call; raw receives a principal we own.
        self.check(unsafe { ffi::krb5_parse_name(self.raw, name.as_ptr(), &mut raw) })?;
        Ok(Principal { context: self, raw })
    }

    /// The principal a GSSAPI host-based name `service@host` becomes, after this
    /// configuration's host-name rules (`dns_canonicalize_hostname`, `rdns`,
    /// `[domain_realm]`); an empty realm means "ask the KDC for a referral".
    pub fn host_service_principal(&self, service: &str, host: &str) -> Result<String, Krb5Error> {
        Ok(self.host_principal(service, host)?.unparse())
    }

    fn host_principal(&self, service: &str, host: &str) -> Result<Principal<'_>, Krb5Error> {
        let c_host = cstring(host)?;
        let c_service = cstring(service)?;
        let mut raw: ffi::krb5_principal = ptr::null_mut();
        // SAFETY: both strings are alive for the call; raw receives a principal we own.
        self.check(unsafe {
            ffi::krb5_sname_to_principal(
                self.raw,
                c_host.as_ptr(),
                c_service.as_ptr(),
                ffi::KRB5_NT_SRV_HST,
                &mut raw,
            )
        })?;
        Ok(Principal { context: self, raw })
    }

    /// A memory ticket cache with a fresh ticket-granting ticket for `principal`
    /// from its password (like `kinit`, without touching any file); destroyed on drop.
    pub fn password_ccache(
        &self,
        principal: &str,
        password: &str,
    ) -> Result<Ccache<'_>, Krb5Error> {
        let client = self.parse_name(principal)?;
        let password = cstring(password)?;
        let mut creds = zeroed_creds();
        // SAFETY: every pointer is alive for the call; creds is filled by krb5 and
        // its contents freed below.
        let code = unsafe {
            ffi::krb5_get_init_creds_password(
                self.raw,
                &mut creds,
                client.raw,
                password.as_ptr(),
                ptr::null_mut(),
                ptr::null_mut(),
                0,
                ptr::null(),
                ptr::null_mut(),
            )
        };
        self.check(code)?;
        self.memory_cache_with(&client, creds)
    }

    /// A memory ticket cache with a fresh ticket-granting ticket from a client keytab
    /// (like `kinit -k -t`), for `principal` or the keytab's first; destroyed on drop.
    pub fn keytab_ccache(
        &self,
        keytab: &str,
        principal: Option<&str>,
    ) -> Result<Ccache<'_>, Krb5Error> {
        let name = cstring(&format!("FILE:{keytab}"))?;
        let mut kt: ffi::krb5_keytab = ptr::null_mut();
        // SAFETY: name is alive; kt receives a handle closed below.
        self.check(unsafe { ffi::krb5_kt_resolve(self.raw, name.as_ptr(), &mut kt) })?;
        let result = (|| {
            let client = match principal {
                Some(p) => self.parse_name(p)?,
                None => self.first_keytab_principal(kt)?,
            };
            let mut creds = zeroed_creds();
            // SAFETY: every pointer is alive for the call; creds is filled by krb5.
            let code = unsafe {
                ffi::krb5_get_init_creds_keytab(
                    self.raw,
                    &mut creds,
                    client.raw,
                    kt,
                    0,
                    ptr::null(),
                    ptr::null_mut(),
                )
            };
            self.check(code)?;
            self.memory_cache_with(&client, creds)
        })();
        // SAFETY: kt is live and closed once.
        unsafe { ffi::krb5_kt_close(self.raw, kt) };
        result
    }

    fn first_keytab_principal(&self, kt: ffi::krb5_keytab) -> Result<Principal<'_>, Krb5Error> {
        let mut cursor: ffi::krb5_kt_cursor = ptr::null_mut();
        // SAFETY: kt is live; the cursor is ended and the entry's contents freed.
        unsafe {
            self.check(ffi::krb5_kt_start_seq_get(self.raw, kt, &mut cursor))?;
            let mut entry: ffi::krb5_keytab_entry = std::mem::zeroed();
            let code = ffi::krb5_kt_next_entry(self.raw, kt, &mut entry, &mut cursor);
            let result = if code == 0 {
                let mut copy: ffi::krb5_principal = ptr::null_mut();
                let copied = ffi::krb5_copy_principal(self.raw, entry.principal, &mut copy);
                ffi::krb5_free_keytab_entry_contents(self.raw, &mut entry);
                self.check(copied).map(|()| Principal {
                    context: self,
                    raw: copy,
                })
            } else {
                Err(Krb5Error::new(self, code))
            };
            ffi::krb5_kt_end_seq_get(self.raw, kt, &mut cursor);
            result
        }
    }

    fn memory_cache_with(
        &self,
        client: &Principal<'_>,
        mut creds: ffi::krb5_creds,
    ) -> Result<Ccache<'_>, Krb5Error> {
        let kind = cstring("MEMORY")?;
        let mut raw: ffi::krb5_ccache = ptr::null_mut();
        // SAFETY: raw receives a cache we own (destroyed on drop); creds' contents
        // are copied into it and then freed once.
        let result = unsafe {
            let code = ffi::krb5_cc_new_unique(self.raw, kind.as_ptr(), ptr::null(), &mut raw);
            let code = if code == 0 {
                let code = ffi::krb5_cc_initialize(self.raw, raw, client.raw);
                if code == 0 {
                    ffi::krb5_cc_store_cred(self.raw, raw, &mut creds)
                } else {
                    code
                }
            } else {
                code
            };
            ffi::krb5_free_cred_contents(self.raw, &mut creds);
            code
        };
        let cache = Ccache {
            context: self,
            raw,
            destroy: true,
        };
        if result != 0 {
            return Err(Krb5Error::new(self, result));
        }
        Ok(cache)
    }
}

fn zeroed_creds() -> ffi::krb5_creds {
    // SAFETY: krb5_creds is plain data; all-zero is its documented empty value.
    unsafe { std::mem::zeroed() }
}

/// A principal, freed on drop.
struct Principal<'a> {
    context: &'a Context,
    raw: ffi::krb5_principal,
}

impl Principal<'_> {
    fn unparse(&self) -> String {
        unparse(self.context, self.raw)
    }
}

impl Drop for Principal<'_> {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: raw is a principal we own, freed once.
            unsafe { ffi::krb5_free_principal(self.context.raw, self.raw) };
        }
    }
}

fn unparse(context: &Context, principal: ffi::krb5_principal) -> String {
    if principal.is_null() {
        return String::new();
    }
    let mut raw: *mut std::ffi::c_char = ptr::null_mut();
    // SAFETY: principal is live; the string is ours to free.
    unsafe {
        if ffi::krb5_unparse_name(context.raw, principal, &mut raw) != 0 || raw.is_null() {
            return String::new();
        }
        let name = borrowed(raw);
        ffi::krb5_free_unparsed_name(context.raw, raw);
        name
    }
}

/// A ticket cache; closed on drop (destroyed, for memory caches made here).
pub struct Ccache<'a> {
    context: &'a Context,
    raw: ffi::krb5_ccache,
    destroy: bool,
}

impl fmt::Debug for Ccache<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ccache")
            .field("type", &self.cache_type())
            .field("name", &self.name())
            .finish()
    }
}

impl Drop for Ccache<'_> {
    fn drop(&mut self) {
        // SAFETY: raw is a cache handle we own, released once.
        unsafe {
            if self.destroy {
                ffi::krb5_cc_destroy(self.context.raw, self.raw);
            } else {
                ffi::krb5_cc_close(self.context.raw, self.raw);
            }
        }
    }
}

/// A ticket's times, in seconds since the Unix epoch (0 when not set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketTimes {
    /// When the user authenticated (the TGT's issue time, for service tickets too).
    pub authtime: i64,
    /// When the ticket became valid.
    pub starttime: i64,
    /// When it expires.
    pub endtime: i64,
    /// Until when it can be renewed (0: not renewable).
    pub renew_till: i64,
}

/// A ticket's flags (RFC 4120 §5.3 TicketFlags, as MIT keeps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TicketFlags(pub u32);

impl TicketFlags {
    /// May be forwarded (delegated) to a service.
    pub fn forwardable(self) -> bool {
        self.0 & 0x4000_0000 != 0
    }
    /// Can be renewed (`kinit -R`).
    pub fn renewable(self) -> bool {
        self.0 & 0x0080_0000 != 0
    }
    /// Issued from a password or key, not from another ticket.
    pub fn initial(self) -> bool {
        self.0 & 0x0040_0000 != 0
    }
    /// The realm trusts the service with delegated credentials.
    pub fn ok_as_delegate(self) -> bool {
        self.0 & 0x0004_0000 != 0
    }
    /// The flags as `klist -f` letters.
    pub fn letters(self) -> String {
        let table = [
            (0x4000_0000, 'F'),
            (0x2000_0000, 'f'),
            (0x1000_0000, 'P'),
            (0x0080_0000, 'R'),
            (0x0040_0000, 'I'),
            (0x0020_0000, 'A'),
            (0x0004_0000, 'O'),
        ];
        table
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, c)| *c)
            .collect()
    }
}

/// A ticket in a cache (no key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The client principal.
    pub client: String,
    /// The service principal, e.g. `krbtgt/EXAMPLE.COM@EXAMPLE.COM`.
    pub server: String,
    /// Its times.
    pub times: TicketTimes,
    /// Its flags.
    pub flags: TicketFlags,
    /// The session key's encryption type.
    pub session_enctype: i32,
    /// The encryption type of the ticket itself (the service's key), when readable.
    pub enctype: Option<i32>,
    /// The version of the service key the ticket is encrypted in, when readable.
    pub kvno: Option<u32>,
    /// The encoded ticket's size in bytes.
    pub size: usize,
}

impl Ticket {
    /// True for a ticket-granting ticket (`krbtgt/...`).
    pub fn is_tgt(&self) -> bool {
        self.server.starts_with("krbtgt/")
    }

    /// Reads a `krb5_creds` (no keys are copied).
    ///
    /// # Safety
    /// `creds` holds live principals and ticket data.
    unsafe fn from_creds(context: &Context, creds: &ffi::krb5_creds) -> Self {
        let size = creds.ticket.length as usize;
        let (mut enctype, mut kvno) = (None, None);
        if size > 0 && !creds.ticket.data.is_null() {
            let mut decoded: *mut ffi::krb5_ticket = ptr::null_mut();
            if ffi::krb5_decode_ticket(&creds.ticket, &mut decoded) == 0 && !decoded.is_null() {
                enctype = Some((*decoded).enc_part.enctype);
                kvno = Some((*decoded).enc_part.kvno);
                ffi::krb5_free_ticket(context.raw, decoded);
            }
        }
        Self {
            client: unparse(context, creds.client),
            server: unparse(context, creds.server),
            times: TicketTimes {
                authtime: i64::from(creds.times.authtime),
                starttime: i64::from(creds.times.starttime),
                endtime: i64::from(creds.times.endtime),
                renew_till: i64::from(creds.times.renew_till),
            },
            flags: TicketFlags(creds.ticket_flags as u32),
            session_enctype: creds.keyblock.enctype,
            enctype,
            kvno,
            size,
        }
    }
}

impl Ccache<'_> {
    /// The cache's type: `FILE`, `KCM`, `KEYRING`, `DIR`, `MEMORY`...
    pub fn cache_type(&self) -> String {
        // SAFETY: raw is live; the string belongs to the cache.
        unsafe { borrowed(ffi::krb5_cc_get_type(self.context.raw, self.raw)) }
    }

    /// The cache's name within its type (a path for `FILE`).
    pub fn name(&self) -> String {
        // SAFETY: raw is live; the string belongs to the cache.
        unsafe { borrowed(ffi::krb5_cc_get_name(self.context.raw, self.raw)) }
    }

    /// The cache's default principal (the user); an error when there is no cache.
    pub fn principal(&self) -> Result<String, Krb5Error> {
        let mut raw: ffi::krb5_principal = ptr::null_mut();
        // SAFETY: raw receives a principal we own, freed by Principal's drop.
        self.context
            .check(unsafe { ffi::krb5_cc_get_principal(self.context.raw, self.raw, &mut raw) })?;
        Ok(Principal {
            context: self.context,
            raw,
        }
        .unparse())
    }

    /// Copies this cache's principal and every credential into the memory cache
    /// `memory` (`MEMORY:name`, which must not exist yet); the memory cache stays in
    /// this process after the handle is closed, until [`Ccache::destroy`].
    pub(crate) fn copy_to_memory(&self, memory: &str) -> Result<(), Krb5Error> {
        let ctx = self.context;
        let target = ctx.resolve_ccache(memory)?;
        let mut client: ffi::krb5_principal = ptr::null_mut();
        // SAFETY: client receives a principal we own (freed by Principal's drop).
        ctx.check(unsafe { ffi::krb5_cc_get_principal(ctx.raw, self.raw, &mut client) })?;
        let client = Principal {
            context: ctx,
            raw: client,
        };
        // SAFETY: both caches and the principal are live for the calls.
        let code = unsafe {
            let code = ffi::krb5_cc_initialize(ctx.raw, target.raw, client.raw);
            if code == 0 {
                ffi::krb5_cc_copy_creds(ctx.raw, self.raw, target.raw)
            } else {
                code
            }
        };
        if code != 0 {
            target.destroy();
            return Err(Krb5Error::new(ctx, code));
        }
        Ok(())
    }

    /// Destroys the cache (its tickets are gone for every handle).
    pub(crate) fn destroy(mut self) {
        self.destroy = true;
    }

    /// Every ticket in the cache (configuration entries left out).
    pub fn tickets(&self) -> Result<Vec<Ticket>, Krb5Error> {
        let ctx = self.context;
        let mut cursor: ffi::krb5_cc_cursor = ptr::null_mut();
        let mut out = Vec::new();
        // SAFETY: the cursor is ended once; each creds' contents are freed once.
        unsafe {
            ctx.check(ffi::krb5_cc_start_seq_get(ctx.raw, self.raw, &mut cursor))?;
            loop {
                let mut creds = zeroed_creds();
                if ffi::krb5_cc_next_cred(ctx.raw, self.raw, &mut cursor, &mut creds) != 0 {
                    break;
                }
                if ffi::krb5_is_config_principal(ctx.raw, creds.server) == 0 {
                    out.push(Ticket::from_creds(ctx, &creds));
                }
                ffi::krb5_free_cred_contents(ctx.raw, &mut creds);
            }
            ffi::krb5_cc_end_seq_get(ctx.raw, self.raw, &mut cursor);
        }
        Ok(out)
    }

    /// Gets a service ticket for `target` from the cache or the KDC (and stores
    /// it in the cache, as any client would): `service@host` is a GSSAPI host-based
    /// name, anything else a principal (`HTTP/host@REALM`).
    pub fn service_ticket(&self, target: &str) -> Result<Ticket, Krb5Error> {
        let ctx = self.context;
        let server = match target.split_once('@') {
            Some((service, host)) if !service.contains('/') => ctx.host_principal(service, host)?,
            _ => ctx.parse_name(target)?,
        };
        let mut client: ffi::krb5_principal = ptr::null_mut();
        // SAFETY: client receives a principal we own (freed by Principal's drop).
        ctx.check(unsafe { ffi::krb5_cc_get_principal(ctx.raw, self.raw, &mut client) })?;
        let client = Principal {
            context: ctx,
            raw: client,
        };
        let mut input = zeroed_creds();
        input.client = client.raw;
        input.server = server.raw;
        let mut out: *mut ffi::krb5_creds = ptr::null_mut();
        // SAFETY: input borrows the two principals (not freed through it); out is
        // ours to free with krb5_free_creds.
        unsafe {
            ctx.check(ffi::krb5_get_credentials(
                ctx.raw, 0, self.raw, &mut input, &mut out,
            ))?;
            if out.is_null() {
                return Err(Krb5Error::plain("the KDC returned no ticket"));
            }
            let ticket = Ticket::from_creds(ctx, &*out);
            ffi::krb5_free_creds(ctx.raw, out);
            Ok(ticket)
        }
    }
}
