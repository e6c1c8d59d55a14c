//! A one-leg Kerberos login accepted through MIT's krb5 library directly, with one
//! krb5 context per thread, instead of through GSSAPI's SPNEGO and krb5 mechanisms.
//!
//! Through GSSAPI, a login makes and frees six krb5 contexts (`krb5_init_context`,
//! each reading the profile again: a quarter of the accept's instructions under
//! callgrind), and passes the token through SPNEGO, the mechanism glue and their name
//! conversions. The Kerberos work itself — opening the ticket with the keytab's key,
//! checking the authenticator, its client, its clock skew and the ticket's times,
//! verifying the PAC's server signature, making the AP-REP — is the same
//! `krb5_rd_req` / `krb5_mk_rep` MIT's krb5 mechanism calls, so its checks stay
//! MIT's; what is done here is what the mechanism does around them for the one common
//! shape of login (RFC 4121 §4.1.1):
//!
//! - the token is a bare Kerberos AP-REQ token or a SPNEGO `NegTokenInit` whose
//!   preferred mechanism is Kerberos and carries it
//!   ([`kerbside_proto::krb5::kerberos_first`]);
//! - the authenticator's checksum is the 24-byte GSS checksum (type 0x8003) without a
//!   delegated credential or DCE style; channel bindings, when the server has them,
//!   are the MD5 of RFC 2744's structure and must match (a client that sent none is
//!   accepted as not bound, as MIT accepts it, unless its authenticator carries
//!   authorization data: then GSSAPI decides);
//! - the key in use is a newer (RFC 4121) one, so an AP-REP carries an acceptor
//!   subkey as MIT's mechanism makes it.
//!
//! Anything else — and any failure at all — returns `None`, and the caller accepts
//! the same token through GSSAPI as before, which gives MIT's own answer and error.
//! There is no replay cache here (the auth context's time flag is off): only callers
//! that record the authenticator themselves use this
//! ([`crate::NegotiateAcceptor::with_memory_replay_cache`]).
#![allow(unsafe_code, non_camel_case_types)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kerbside_proto::krb5::{kerberos_first, kerberos_reply};
use md5::{Digest as _, Md5};

use crate::krb5::ffi::{
    krb5_context, krb5_data, krb5_free_context, krb5_free_unparsed_name, krb5_init_context,
    krb5_keyblock, krb5_keytab, krb5_kt_close, krb5_kt_resolve, krb5_principal, krb5_ticket,
    krb5_ticket_times, krb5_unparse_name,
};
use crate::name_attr::PacAttribute;

type krb5_auth_context = *mut c_void;
type krb5_authdata_context = *mut c_void;

/// `krb5_checksum`.
#[repr(C)]
struct krb5_checksum {
    magic: i32,
    checksum_type: i32,
    length: c_uint,
    contents: *mut u8,
}

/// `krb5_transited`.
#[repr(C)]
struct krb5_transited {
    magic: i32,
    tr_type: u8,
    tr_contents: krb5_data,
}

/// `krb5_enc_tkt_part`.
#[repr(C)]
struct krb5_enc_tkt_part {
    magic: i32,
    flags: i32,
    session: *mut krb5_keyblock,
    client: krb5_principal,
    transited: krb5_transited,
    times: krb5_ticket_times,
    caddrs: *mut c_void,
    authorization_data: *mut c_void,
}

/// `krb5_authenticator`.
#[repr(C)]
struct krb5_authenticator {
    magic: i32,
    client: krb5_principal,
    checksum: *mut krb5_checksum,
    cusec: i32,
    ctime: i32,
    subkey: *mut krb5_keyblock,
    seq_number: u32,
    authorization_data: *mut c_void,
}

#[link(name = "krb5")]
extern "C" {
    fn krb5_auth_con_init(context: krb5_context, auth_context: *mut krb5_auth_context) -> i32;
    fn krb5_auth_con_free(context: krb5_context, auth_context: krb5_auth_context) -> i32;
    fn krb5_auth_con_setflags(
        context: krb5_context,
        auth_context: krb5_auth_context,
        flags: i32,
    ) -> i32;
    fn krb5_rd_req(
        context: krb5_context,
        auth_context: *mut krb5_auth_context,
        inbuf: *const krb5_data,
        server: krb5_principal,
        keytab: krb5_keytab,
        ap_req_options: *mut i32,
        ticket: *mut *mut krb5_ticket,
    ) -> i32;
    fn krb5_free_ticket(context: krb5_context, ticket: *mut krb5_ticket);
    fn krb5_auth_con_getauthenticator(
        context: krb5_context,
        auth_context: krb5_auth_context,
        authenticator: *mut *mut krb5_authenticator,
    ) -> i32;
    fn krb5_free_authenticator(context: krb5_context, authenticator: *mut krb5_authenticator);
    fn krb5_mk_rep(
        context: krb5_context,
        auth_context: krb5_auth_context,
        out: *mut krb5_data,
    ) -> i32;
    fn krb5_free_data_contents(context: krb5_context, data: *mut krb5_data);
    fn krb5_timeofday(context: krb5_context, now: *mut i32) -> i32;
    // Exported by libkrb5 (since 1.8) for its GSSAPI mechanism, which reads a name's
    // `urn:mspac:` attribute through exactly these two calls; not in the public headers.
    fn krb5_auth_con_get_authdata_context(
        context: krb5_context,
        auth_context: krb5_auth_context,
        ad_context: *mut krb5_authdata_context,
    ) -> i32;
    fn krb5_authdata_get_attribute(
        context: krb5_context,
        ad_context: krb5_authdata_context,
        attribute: *const krb5_data,
        authenticated: *mut c_uint,
        complete: *mut c_uint,
        value: *mut krb5_data,
        display_value: *mut krb5_data,
        more: *mut c_int,
    ) -> i32;
}

/// `KRB5_AUTH_CONTEXT_DO_SEQUENCE`, `KRB5_AUTH_CONTEXT_USE_SUBKEY`.
const DO_SEQUENCE: i32 = 0x4;
const USE_SUBKEY: i32 = 0x20;
/// `CKSUMTYPE_KG_CB`: RFC 4121 §4.1.1's GSS checksum.
const GSS_CHECKSUM: i32 = 0x8003;
/// `GSS_C_DELEG_FLAG`, `GSS_C_MUTUAL_FLAG`, `GSS_C_DCE_STYLE`.
const DELEG_FLAG: u32 = 1;
const MUTUAL_FLAG: u32 = 2;
const DCE_STYLE: u32 = 0x1000;
/// Encryption types of RFC 4121's newer keys (AES, Camellia): the mechanism answers
/// them with an acceptor subkey.
const NEWER_ENCTYPES: [i32; 6] = [17, 18, 19, 20, 25, 26];
/// How long a thread keeps its krb5 context (and so its reading of krb5.conf).
const CONTEXT_LIFETIME: Duration = Duration::from_secs(60);

/// Logins accepted here since the process started (for tests and metrics).
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

/// How many logins were accepted through krb5 directly since the process started.
pub fn accepted_directly() -> u64 {
    ACCEPTED.load(Ordering::Relaxed)
}

/// A login accepted here.
pub(crate) struct Accepted {
    /// The client principal, as `krb5_unparse_name` (and so `gss_display_name`) gives it.
    pub(crate) principal: String,
    /// The token for the client (SPNEGO `NegTokenResp`, or the bare AP-REP token).
    pub(crate) reply: Option<Vec<u8>>,
    /// The server's channel bindings matched the client's.
    pub(crate) channel_bound: bool,
    /// Until the ticket ends, plus the clock skew MIT allows (as GSSAPI's `time_rec`).
    pub(crate) lifetime: Option<Duration>,
    /// The PAC, as `gss_get_name_attribute(urn:mspac:)` would give it.
    pub(crate) pac: PacAttribute,
    /// The service principal whose key opened the ticket, if asked for.
    pub(crate) service: Option<String>,
}

/// This thread's krb5 context and the memory keytab it has open.
struct Thread {
    context: krb5_context,
    made: Instant,
    clockskew: i64,
    keytab: Option<(String, krb5_keytab)>,
}

impl Drop for Thread {
    fn drop(&mut self) {
        // SAFETY: the handle and the context were made for this value and are released
        // once, the handle first.
        unsafe {
            if let Some((_, keytab)) = self.keytab.take() {
                krb5_kt_close(self.context, keytab);
            }
            krb5_free_context(self.context);
        }
    }
}

impl Thread {
    fn new() -> Option<Self> {
        let mut context: krb5_context = ptr::null_mut();
        // SAFETY: krb5_init_context writes a context we own (released in Drop).
        let code = unsafe { krb5_init_context(&mut context) };
        if code != 0 || context.is_null() {
            return None;
        }
        let mut thread = Self {
            context,
            made: Instant::now(),
            clockskew: 300,
            keytab: None,
        };
        thread.clockskew = thread.profile_clockskew().unwrap_or(300);
        Some(thread)
    }

    /// `[libdefaults] clockskew`, as MIT reads it (seconds).
    fn profile_clockskew(&self) -> Option<i64> {
        use crate::krb5::ffi::{
            krb5_get_profile, profile_free_list, profile_get_values, profile_release,
        };
        let names = [c"libdefaults".as_ptr(), c"clockskew".as_ptr(), ptr::null()];
        let mut profile = ptr::null_mut();
        // SAFETY: the context is live; the profile handle is released below.
        if unsafe { krb5_get_profile(self.context, &mut profile) } != 0 {
            return None;
        }
        let mut values: *mut *mut c_char = ptr::null_mut();
        // SAFETY: `names` is a NULL-terminated array of static strings; the list we get
        // is freed below.
        let code = unsafe { profile_get_values(profile, names.as_ptr(), &mut values) };
        let mut skew = None;
        if code == 0 && !values.is_null() {
            // SAFETY: a non-empty list of NUL-terminated strings from the profile.
            let first = unsafe { *values };
            if !first.is_null() {
                // SAFETY: as above.
                let text = unsafe { CStr::from_ptr(first) }.to_string_lossy();
                skew = text.trim().parse::<i64>().ok();
            }
            // SAFETY: the list came from profile_get_values and is freed once.
            unsafe { profile_free_list(values) };
        }
        // SAFETY: released once.
        unsafe { profile_release(profile) };
        skew
    }

    /// The memory keytab `name`, resolved in this thread's context (once per name).
    fn keytab(&mut self, name: &str) -> Option<krb5_keytab> {
        if let Some((open, handle)) = &self.keytab {
            if open == name {
                return Some(*handle);
            }
        }
        if let Some((_, old)) = self.keytab.take() {
            // SAFETY: opened in this context, closed once.
            unsafe { krb5_kt_close(self.context, old) };
        }
        let c_name = CString::new(name).ok()?;
        let mut handle: krb5_keytab = ptr::null_mut();
        // SAFETY: the name lives for the call; the handle is ours (closed above or in Drop).
        if unsafe { krb5_kt_resolve(self.context, c_name.as_ptr(), &mut handle) } != 0 {
            return None;
        }
        self.keytab = Some((name.to_owned(), handle));
        Some(handle)
    }
}

thread_local! {
    static THREAD: RefCell<Option<Thread>> = const { RefCell::new(None) };
}

/// Accepts `token` with the keys of the memory keytab `keytab` (any of its
/// principals), if it is a login this module handles; `None` otherwise, or if
/// anything fails (the caller then asks GSSAPI).
pub(crate) fn accept(
    keytab: &str,
    token: &[u8],
    channel_bindings: Option<&[u8]>,
    want_service: bool,
) -> Option<Accepted> {
    let first = kerberos_first(token)?;
    THREAD.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        if slot
            .as_ref()
            .is_none_or(|t| t.made.elapsed() >= CONTEXT_LIFETIME)
        {
            *slot = None;
            *slot = Some(Thread::new()?);
        }
        let thread = slot.as_mut()?;
        let handle = thread.keytab(keytab)?;
        let accepted = accept_in(
            thread.context,
            thread.clockskew,
            handle,
            first.ap_req,
            channel_bindings,
            want_service,
        )?;
        let reply = kerberos_reply(first.spnego_mech, accepted.ap_rep.as_deref());
        ACCEPTED.fetch_add(1, Ordering::Relaxed);
        Some(Accepted {
            principal: accepted.principal,
            reply,
            channel_bound: accepted.channel_bound,
            lifetime: accepted.lifetime,
            pac: accepted.pac,
            service: accepted.service,
        })
    })
}

/// What [`accept_in`] found, before the reply is framed.
struct InContext {
    principal: String,
    ap_rep: Option<Vec<u8>>,
    channel_bound: bool,
    lifetime: Option<Duration>,
    pac: PacAttribute,
    service: Option<String>,
}

/// Owns an auth context, its ticket and authenticator; frees them on drop.
struct Owned {
    context: krb5_context,
    auth: krb5_auth_context,
    ticket: *mut krb5_ticket,
    authenticator: *mut krb5_authenticator,
}

impl Drop for Owned {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or came from krb5 for us, and is freed once.
        unsafe {
            if !self.authenticator.is_null() {
                krb5_free_authenticator(self.context, self.authenticator);
            }
            if !self.ticket.is_null() {
                krb5_free_ticket(self.context, self.ticket);
            }
            if !self.auth.is_null() {
                krb5_auth_con_free(self.context, self.auth);
            }
        }
    }
}

/// The RFC 4121 §4.1.1.2 hash of the server's channel bindings as MIT computes it
/// for `gss_channel_bindings_struct` with no addresses: the initiator's and
/// acceptor's address types and lengths (four zero words), then the application
/// data's length (little-endian) and the data.
fn bindings_md5(application_data: &[u8]) -> Option<[u8; 16]> {
    let length = u32::try_from(application_data.len()).ok()?;
    let mut md5 = Md5::new();
    md5.update([0u8; 16]);
    md5.update(length.to_le_bytes());
    md5.update(application_data);
    Some(md5.finalize().into())
}

fn unparse(context: krb5_context, principal: krb5_principal) -> Option<String> {
    if principal.is_null() {
        return None;
    }
    let mut name: *mut c_char = ptr::null_mut();
    // SAFETY: a live principal; the string we get is freed below.
    if unsafe { krb5_unparse_name(context, principal, &mut name) } != 0 || name.is_null() {
        return None;
    }
    // SAFETY: a NUL-terminated string from krb5.
    let text = unsafe { CStr::from_ptr(name) }
        .to_str()
        .ok()
        .map(str::to_owned);
    // SAFETY: freed once.
    unsafe { krb5_free_unparsed_name(context, name) };
    text
}

/// The ticket's PAC as the authdata context (filled and verified by `krb5_rd_req`)
/// gives it.
fn pac(context: krb5_context, auth: krb5_auth_context) -> PacAttribute {
    let mut ad: krb5_authdata_context = ptr::null_mut();
    // SAFETY: a live auth context; the authdata context stays owned by it.
    let code = unsafe { krb5_auth_con_get_authdata_context(context, auth, &mut ad) };
    if code != 0 || ad.is_null() {
        return PacAttribute::Failed {
            major: 13 << 16, // GSS_S_FAILURE
            minor: code as u32,
        };
    }
    let name = b"urn:mspac:";
    let attribute = krb5_data {
        magic: 0,
        length: name.len() as c_uint,
        data: name.as_ptr() as *mut c_char,
    };
    let empty = || krb5_data {
        magic: 0,
        length: 0,
        data: ptr::null_mut(),
    };
    let (mut value, mut display) = (empty(), empty());
    let (mut authenticated, mut complete): (c_uint, c_uint) = (0, 0);
    let mut more: c_int = -1;
    // SAFETY: the attribute name is read only; `value` and `display` receive data we
    // free below.
    let code = unsafe {
        krb5_authdata_get_attribute(
            context,
            ad,
            &attribute,
            &mut authenticated,
            &mut complete,
            &mut value,
            &mut display,
            &mut more,
        )
    };
    let result = if code == libc::ENOENT {
        PacAttribute::Absent
    } else if code != 0 {
        PacAttribute::Failed {
            major: 13 << 16,
            minor: code as u32,
        }
    } else if authenticated == 0 || complete == 0 {
        PacAttribute::Unverified
    } else if value.data.is_null() || value.length == 0 {
        PacAttribute::Absent
    } else {
        // SAFETY: krb5 filled `value` with `length` readable bytes, freed below.
        let bytes =
            unsafe { std::slice::from_raw_parts(value.data as *const u8, value.length as usize) };
        PacAttribute::Verified(bytes.to_vec())
    };
    // SAFETY: each is empty or filled by krb5, and freed once.
    unsafe {
        krb5_free_data_contents(context, &mut value);
        krb5_free_data_contents(context, &mut display);
    }
    result
}

fn accept_in(
    context: krb5_context,
    clockskew: i64,
    keytab: krb5_keytab,
    ap_req: &[u8],
    channel_bindings: Option<&[u8]>,
    want_service: bool,
) -> Option<InContext> {
    let mut owned = Owned {
        context,
        auth: ptr::null_mut(),
        ticket: ptr::null_mut(),
        authenticator: ptr::null_mut(),
    };
    // SAFETY (whole function): `context` is this thread's live context and `keytab` a
    // handle open in it; every krb5 output lands in `owned` (freed on drop) or in a
    // local freed before return; the AP-REQ bytes outlive the calls that read them.
    unsafe {
        if krb5_auth_con_init(context, &mut owned.auth) != 0 {
            return None;
        }
        // No KRB5_AUTH_CONTEXT_DO_TIME: krb5_rd_req then opens no replay cache (the
        // caller keeps its own); the clock skew and ticket times are still checked.
        krb5_auth_con_setflags(context, owned.auth, 0);
        let input = krb5_data {
            magic: 0,
            length: c_uint::try_from(ap_req.len()).ok()?,
            data: ap_req.as_ptr() as *mut c_char,
        };
        let mut options: i32 = 0;
        let code = krb5_rd_req(
            context,
            &mut owned.auth,
            &input,
            ptr::null_mut(),
            keytab,
            &mut options,
            &mut owned.ticket,
        );
        if code != 0 || owned.ticket.is_null() {
            tracing::trace!(code, "krb5_rd_req refused the token; GSSAPI decides");
            return None;
        }
        let ticket = &*owned.ticket;
        let enc = ticket.enc_part2 as *const krb5_enc_tkt_part;
        if enc.is_null() {
            return None;
        }
        let enc = &*enc;
        if krb5_auth_con_getauthenticator(context, owned.auth, &mut owned.authenticator) != 0
            || owned.authenticator.is_null()
        {
            return None;
        }
        let authenticator = &*owned.authenticator;
        // RFC 4121 §4.1.1: Lgth (16), Bnd, Flags; nothing after them.
        if authenticator.checksum.is_null() {
            return None;
        }
        let checksum = &*authenticator.checksum;
        if checksum.checksum_type != GSS_CHECKSUM
            || checksum.length != 24
            || checksum.contents.is_null()
        {
            return None;
        }
        let bytes = std::slice::from_raw_parts(checksum.contents, 24);
        let (lgth, rest) = bytes.split_first_chunk::<4>()?;
        let (bnd, rest) = rest.split_first_chunk::<16>()?;
        let flags = u32::from_le_bytes(*rest.first_chunk::<4>()?);
        if u32::from_le_bytes(*lgth) != 16 || flags & (DELEG_FLAG | DCE_STYLE) != 0 {
            return None;
        }
        let channel_bound = match channel_bindings {
            None => false,
            // No bindings from the client (and no authorization data in the
            // authenticator, where a client could assert that it must be bound): MIT
            // accepts the token as not bound, and so does this.
            Some(_) if bnd.iter().all(|b| *b == 0) => {
                if !authenticator.authorization_data.is_null() {
                    return None;
                }
                false
            }
            Some(data) => {
                if *bnd != bindings_md5(data)? {
                    return None;
                }
                true
            }
        };
        let key = if authenticator.subkey.is_null() {
            enc.session
        } else {
            authenticator.subkey
        };
        if key.is_null() || !NEWER_ENCTYPES.contains(&(*key).enctype) {
            return None;
        }
        let ap_rep = if flags & MUTUAL_FLAG != 0 {
            krb5_auth_con_setflags(context, owned.auth, DO_SEQUENCE | USE_SUBKEY);
            let mut out = krb5_data {
                magic: 0,
                length: 0,
                data: ptr::null_mut(),
            };
            if krb5_mk_rep(context, owned.auth, &mut out) != 0 || out.data.is_null() {
                return None;
            }
            let rep =
                std::slice::from_raw_parts(out.data as *const u8, out.length as usize).to_vec();
            krb5_free_data_contents(context, &mut out);
            Some(rep)
        } else {
            None
        };
        let principal = unparse(context, enc.client)?;
        let mut now: i32 = 0;
        if krb5_timeofday(context, &mut now) != 0 {
            return None;
        }
        let left = i64::from(enc.times.endtime) - i64::from(now) + clockskew;
        let lifetime = u64::try_from(left)
            .ok()
            .filter(|s| *s > 0)
            .map(Duration::from_secs);
        let service = if want_service {
            Some(unparse(context, ticket.server)?)
        } else {
            None
        };
        Some(InContext {
            principal,
            ap_rep,
            channel_bound,
            lifetime,
            pac: pac(context, owned.auth),
            service,
        })
    }
}
