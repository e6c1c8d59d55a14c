//! Samba's libwbclient, loaded at run time (`dlopen`, only with `--ntlm-winbind`), for the
//! one call the gate needs: `wbcCtxAuthenticateUserEx`, which has the domain controller
//! check an NTLMv2 response through winbindd and answers with the logon's own account
//! record (the account name in the directory's case, its SID, the session key).
//!
//! Why not `ntlm_auth`: its answer is only yes and a key, and the names winbindd gives on
//! lookups afterwards come from a cache that stores them in lower case. Each call makes its
//! own winbind context (`wbcCtxCreate`), so calls on several threads do not share a socket.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};

/// `WBC_AUTH_USER_LEVEL_RESPONSE`.
const LEVEL_RESPONSE: c_int = 3;
/// `WBC_MSV1_0_ALLOW_WORKSTATION_TRUST_ACCOUNT | WBC_MSV1_0_ALLOW_SERVER_TRUST_ACCOUNT`, as
/// Samba's `ntlm_auth --helper-protocol=ntlm-server-1` asks.
const PARAMETER_CONTROL: u32 = 0x0000_0820;
/// `WBC_ERR_SUCCESS`, `WBC_ERR_AUTH_ERROR`.
const WBC_ERR_SUCCESS: c_int = 0;
const WBC_ERR_AUTH_ERROR: c_int = 10;

#[repr(C)]
#[derive(Clone, Copy)]
struct DomainSid {
    sid_rev_num: u8,
    num_auths: u8,
    id_auth: [u8; 6],
    sub_auths: [u32; 15],
}

#[repr(C)]
#[derive(Clone, Copy)]
struct SidWithAttr {
    sid: DomainSid,
    attributes: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Response {
    challenge: [u8; 8],
    nt_length: u32,
    nt_data: *const u8,
    lm_length: u32,
    lm_data: *const u8,
}

#[repr(C)]
union Password {
    plaintext: *const c_char,
    hash: [u8; 32],
    response: Response,
}

#[repr(C)]
struct AuthUserParams {
    account_name: *const c_char,
    domain_name: *const c_char,
    workstation_name: *const c_char,
    flags: u32,
    parameter_control: u32,
    level: c_int,
    password: Password,
}

#[repr(C)]
struct AuthUserInfo {
    user_flags: u32,
    account_name: *mut c_char,
    user_principal: *mut c_char,
    full_name: *mut c_char,
    domain_name: *mut c_char,
    dns_domain_name: *mut c_char,
    acct_flags: u32,
    user_session_key: [u8; 16],
    lm_session_key: [u8; 8],
    logon_count: u16,
    bad_password_count: u16,
    times: [u64; 6],
    logon_server: *mut c_char,
    logon_script: *mut c_char,
    profile_path: *mut c_char,
    home_directory: *mut c_char,
    home_drive: *mut c_char,
    num_sids: u32,
    sids: *mut SidWithAttr,
}

#[repr(C)]
struct AuthErrorInfo {
    nt_status: u32,
    nt_string: *mut c_char,
    pam_error: i32,
    display_string: *mut c_char,
}

type CtxCreate = unsafe extern "C" fn() -> *mut c_void;
type CtxFree = unsafe extern "C" fn(*mut c_void);
type CtxAuthenticate = unsafe extern "C" fn(
    *mut c_void,
    *const AuthUserParams,
    *mut *mut AuthUserInfo,
    *mut *mut AuthErrorInfo,
) -> c_int;
type FreeMemory = unsafe extern "C" fn(*mut c_void);
type ErrorString = unsafe extern "C" fn(c_int) -> *const c_char;

/// The library, loaded once and never unloaded.
#[derive(Debug)]
pub(crate) struct Wbclient {
    create: CtxCreate,
    free_ctx: CtxFree,
    authenticate: CtxAuthenticate,
    free_memory: FreeMemory,
    error_string: ErrorString,
}

/// What the domain controller said about an NTLMv2 response.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Right: the account as the logon describes it.
    Authenticated(Logon),
    /// Refused, in the DC's words (`NT_STATUS_WRONG_PASSWORD: ...`).
    Refused(String),
    /// winbindd could not be asked (not running, no right to its privileged pipe...).
    Unavailable(String),
}

/// The account a logon was for.
#[derive(Debug)]
pub(crate) struct Logon {
    /// `sAMAccountName`, in the directory's case.
    pub account_name: String,
    /// The NetBIOS domain.
    pub domain_name: String,
    /// The account's SID.
    pub user_sid: String,
    /// Its user principal name: the record's own, else the implicit one AD gives every
    /// account (`sAMAccountName@dns.domain`, as a Kerberos ticket's PAC names it).
    pub upn: Option<String>,
    /// The NTLMv2 session base key.
    pub session_key: [u8; 16],
}

impl Wbclient {
    /// Loads `libwbclient.so.0`, or says in words why it cannot.
    pub(crate) fn load() -> Result<Self, String> {
        let name = c"libwbclient.so.0";
        // SAFETY: dlopen with a valid C string; the handle is kept for the process's life.
        let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(format!(
                "cannot load libwbclient.so.0 ({}): --ntlm-winbind needs Samba's winbind \
                 client library (apt-get install libwbclient0)",
                dl_error()
            ));
        }
        let symbol = |name: &CStr| -> Result<*mut c_void, String> {
            // SAFETY: a valid handle and C string.
            let found = unsafe { libc::dlsym(handle, name.as_ptr()) };
            if found.is_null() {
                Err(format!(
                    "libwbclient.so.0 has no {} (Samba 4.2 or later is needed)",
                    name.to_string_lossy()
                ))
            } else {
                Ok(found)
            }
        };
        // SAFETY: the symbols have these C signatures in libwbclient (wbclient.h, ABI 0.12+).
        unsafe {
            Ok(Self {
                create: std::mem::transmute::<*mut c_void, CtxCreate>(symbol(c"wbcCtxCreate")?),
                free_ctx: std::mem::transmute::<*mut c_void, CtxFree>(symbol(c"wbcCtxFree")?),
                authenticate: std::mem::transmute::<*mut c_void, CtxAuthenticate>(symbol(
                    c"wbcCtxAuthenticateUserEx",
                )?),
                free_memory: std::mem::transmute::<*mut c_void, FreeMemory>(symbol(
                    c"wbcFreeMemory",
                )?),
                error_string: std::mem::transmute::<*mut c_void, ErrorString>(symbol(
                    c"wbcErrorString",
                )?),
            })
        }
    }

    /// Has the DC check `nt_response` of `user` in `domain` to `challenge`. Blocks (run it
    /// on a blocking thread).
    pub(crate) fn authenticate_response(
        &self,
        user: &str,
        domain: &str,
        challenge: [u8; 8],
        nt_response: &[u8],
    ) -> Outcome {
        let (Ok(user), Ok(domain), Ok(nt_length)) = (
            CString::new(user),
            CString::new(domain),
            u32::try_from(nt_response.len()),
        ) else {
            return Outcome::Refused("a name with a NUL character".into());
        };
        let params = AuthUserParams {
            account_name: user.as_ptr(),
            domain_name: domain.as_ptr(),
            workstation_name: std::ptr::null(),
            flags: 0,
            parameter_control: PARAMETER_CONTROL,
            level: LEVEL_RESPONSE,
            password: Password {
                response: Response {
                    challenge,
                    nt_length,
                    nt_data: nt_response.as_ptr(),
                    lm_length: 0,
                    lm_data: std::ptr::null(),
                },
            },
        };
        let mut info: *mut AuthUserInfo = std::ptr::null_mut();
        let mut error: *mut AuthErrorInfo = std::ptr::null_mut();
        // SAFETY: a fresh context, freed below; params point to live data for the call;
        // info and error are outputs libwbclient allocates (freed with wbcFreeMemory).
        let status = unsafe {
            let ctx = (self.create)();
            if ctx.is_null() {
                return Outcome::Unavailable("wbcCtxCreate failed (out of memory)".into());
            }
            let status = (self.authenticate)(ctx, &params, &mut info, &mut error);
            (self.free_ctx)(ctx);
            status
        };
        // SAFETY: info and error are null or valid until freed, and read only here.
        let outcome = unsafe {
            if status == WBC_ERR_SUCCESS && !info.is_null() {
                read_logon(&*info)
            } else if status == WBC_ERR_AUTH_ERROR && !error.is_null() {
                let e = &*error;
                Outcome::Refused(format!("{}: {}", text(e.nt_string), text(e.display_string)))
            } else {
                Outcome::Unavailable(format!(
                    "winbindd: {}",
                    text((self.error_string)(status).cast_mut())
                ))
            }
        };
        // SAFETY: each was allocated by libwbclient (or is null, which it ignores).
        unsafe {
            (self.free_memory)(info.cast());
            (self.free_memory)(error.cast());
        }
        outcome
    }
}

/// Reads the logon record.
///
/// # Safety
/// `info` is a record libwbclient filled.
unsafe fn read_logon(info: &AuthUserInfo) -> Outcome {
    let account_name = text(info.account_name);
    let domain_name = text(info.domain_name);
    if info.num_sids == 0 || info.sids.is_null() || account_name.is_empty() {
        return Outcome::Unavailable("winbindd's logon record has no account".into());
    }
    let user_sid = sid_string(&(*info.sids).sid);
    let own = text(info.user_principal);
    let dns_domain = text(info.dns_domain_name).to_ascii_lowercase();
    let upn = if !own.is_empty() {
        Some(own)
    } else if !dns_domain.is_empty() {
        Some(format!("{account_name}@{dns_domain}"))
    } else {
        None
    };
    Outcome::Authenticated(Logon {
        account_name,
        domain_name,
        user_sid,
        upn,
        session_key: info.user_session_key,
    })
}

/// `S-1-5-21-…` of a SID record.
fn sid_string(sid: &DomainSid) -> String {
    let authority = sid
        .id_auth
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let mut out = format!("S-{}-{authority}", sid.sid_rev_num);
    for sub in sid
        .sub_auths
        .iter()
        .take(usize::from(sid.num_auths).min(15))
    {
        out.push('-');
        out.push_str(&sub.to_string());
    }
    out
}

/// A C string libwbclient owns, copied; `""` for null.
fn text(p: *mut c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: libwbclient's strings are NUL-terminated while the record lives.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated message.
    let e = unsafe { libc::dlerror() };
    text(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids_are_written_as_strings() {
        let mut sub_auths = [0u32; 15];
        sub_auths[..5].copy_from_slice(&[21, 1, 2, 3, 1107]);
        let sid = DomainSid {
            sid_rev_num: 1,
            num_auths: 5,
            id_auth: [0, 0, 0, 0, 0, 5],
            sub_auths,
        };
        assert_eq!(sid_string(&sid), "S-1-5-21-1-2-3-1107");
    }

    #[test]
    fn the_library_loads_where_winbind_is_installed() {
        // Present on the test machines (Debian's libwbclient0, pulled in by winbind).
        let lib = Wbclient::load().expect("libwbclient.so.0");
        // No winbindd here is "unavailable" or a refusal, never a crash.
        let outcome = lib.authenticate_response("nobody", "NOWHERE", [0; 8], &[0; 48]);
        assert!(
            matches!(outcome, Outcome::Unavailable(_) | Outcome::Refused(_)),
            "{outcome:?}"
        );
    }
}
