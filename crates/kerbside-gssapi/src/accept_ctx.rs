//! One server-side GSSAPI context, bound directly instead of through `libgssapi`'s
//! `ServerCtx`, so that a login asks MIT for each fact once.
//!
//! `gss_accept_sec_context` can return the client's name, the context's flags, its
//! lifetime and a delegated credential itself; `ServerCtx` asks for none of them and
//! leaves the caller to ask afterwards, one `gss_inquire_context` per fact, and in MIT
//! every such call makes and frees a krb5 context (`krb5_init_context`) and copies the
//! names again. Here a context completed by its first token (a Kerberos login: one
//! leg) has everything from that one call; only a context completed by a later leg
//! (where SPNEGO may answer from state kept since an earlier one) is asked once, with
//! one `gss_inquire_context` for name, flags and lifetime together.
#![allow(unsafe_code)]

use std::ptr;

use libgssapi::credential::Cred;
use libgssapi::error::{Error as RawError, MajorFlags};
use libgssapi_sys::{
    gss_OID, gss_accept_sec_context, gss_buffer_desc, gss_channel_bindings_struct,
    gss_channel_bindings_t, gss_cred_id_t, gss_ctx_id_t, gss_delete_sec_context, gss_display_name,
    gss_inquire_context, gss_name_t, gss_release_buffer, gss_release_name, OM_uint32,
};

/// `GSS_S_CONTINUE_NEEDED`, a supplementary bit.
const CONTINUE_NEEDED: u32 = 1;
/// The calling and routine error fields of a major status.
const ERROR_MASK: u32 = 0xffff_0000;

/// Acceptor credentials: the `libgssapi` value that owns (and releases) them, and the
/// raw handle that [`ServerContext::step`] gives `gss_accept_sec_context`. The raw
/// handle is valid for as long as `cred` (and so any clone of this) lives.
#[derive(Clone)]
pub(crate) struct AcceptorHandle {
    /// Owns the handle: releases it when the last clone drops.
    _cred: Cred,
    raw: RawCred,
}

/// A credential handle owned by the [`Cred`] beside it.
#[derive(Clone, Copy)]
struct RawCred(gss_cred_id_t);

// SAFETY: the handle is only passed to GSSAPI calls, which MIT allows from any thread
// for a credential (it is read-only once acquired), exactly as `Cred`, which owns it,
// is `Send` and `Sync`.
unsafe impl Send for RawCred {}
// SAFETY: as above.
unsafe impl Sync for RawCred {}

impl AcceptorHandle {
    /// Takes ownership of a freshly acquired credential handle.
    ///
    /// # Safety
    /// `raw` must be a live credential handle that nothing else owns or releases.
    pub(crate) unsafe fn from_raw(raw: gss_cred_id_t) -> Self {
        Self {
            // SAFETY: sole ownership passes to `cred`, which releases it once, when the
            // last clone drops; `raw` is only used while a clone is alive.
            _cred: unsafe { Cred::from_c(raw) },
            raw: RawCred(raw),
        }
    }
}

/// The client's name as GSSAPI gave it, released on drop.
pub(crate) struct SourceName(gss_name_t);

// SAFETY: a name is a plain value owned by this wrapper alone; GSSAPI calls on it may
// run on any thread.
unsafe impl Send for SourceName {}

impl Drop for SourceName {
    fn drop(&mut self) {
        if !self.0.is_null() {
            let mut minor: OM_uint32 = 0;
            // SAFETY: self.0 came from GSSAPI for us to release, and is released once.
            unsafe { gss_release_name(&mut minor, &mut self.0) };
        }
    }
}

impl SourceName {
    /// The raw handle, borrowed while `self` lives.
    pub(crate) fn raw(&self) -> gss_name_t {
        self.0
    }

    /// The principal, e.g. `alice@EXAMPLE.TEST`; an error if GSSAPI cannot display it
    /// or it is not UTF-8 (never a placeholder that could pass for a name).
    pub(crate) fn display(&self) -> Result<String, RawError> {
        let mut buf = gss_buffer_desc {
            length: 0,
            value: ptr::null_mut(),
        };
        let mut minor: OM_uint32 = 0;
        // SAFETY: self.0 is a live name; `buf` receives a buffer we release below; the
        // name type is not asked for.
        let major = unsafe { gss_display_name(&mut minor, self.0, &mut buf, ptr::null_mut()) };
        let text = if major & ERROR_MASK != 0 || buf.value.is_null() {
            None
        } else {
            // SAFETY: GSSAPI filled `buf` with `length` readable bytes, alive until
            // released below.
            let bytes = unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length) };
            std::str::from_utf8(bytes).ok().map(str::to_owned)
        };
        if !buf.value.is_null() {
            let mut release_minor: OM_uint32 = 0;
            // SAFETY: `buf` was filled by gss_display_name and is released once.
            unsafe { gss_release_buffer(&mut release_minor, &mut buf) };
        }
        text.ok_or(RawError {
            major: MajorFlags::from_bits_retain(if major & ERROR_MASK != 0 {
                major
            } else {
                MajorFlags::GSS_S_BAD_NAME.bits()
            }),
            minor,
        })
    }
}

/// What a completed context says about the client.
pub(crate) struct Established {
    /// The client's name.
    pub(crate) source: SourceName,
    /// The context's flags (`GSS_C_*_FLAG`).
    pub(crate) flags: u32,
    /// Seconds the context stays valid (`u32::MAX`: indefinitely).
    pub(crate) lifetime: u32,
    /// The credential the client delegated, if any.
    pub(crate) delegated: Option<Cred>,
}

/// The state of a [`ServerContext`].
enum State {
    /// Waiting for a (further) token.
    Open,
    /// Completed; what it said, until taken.
    Complete(Option<Established>),
    /// Failed with this status; every further step fails the same way.
    Failed(RawError),
}

/// One server-side context, deleted on drop.
pub(crate) struct ServerContext {
    handle: gss_ctx_id_t,
    cred: AcceptorHandle,
    state: State,
    /// Whether a token was accepted already (so completion comes on a later leg).
    legs: u32,
    /// The flags every leg reported, together.
    flags: u32,
}

// SAFETY: one owner at a time; the context is never used from two threads at once
// (every method takes `&mut self` or consumes), which is what MIT requires.
unsafe impl Send for ServerContext {}

impl std::fmt::Debug for ServerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Open => "open",
            State::Complete(_) => "complete",
            State::Failed(_) => "failed",
        };
        f.debug_struct("ServerContext")
            .field("state", &state)
            .field("legs", &self.legs)
            .finish_non_exhaustive()
    }
}

impl Drop for ServerContext {
    fn drop(&mut self) {
        if !self.handle.is_null() {
            let mut minor: OM_uint32 = 0;
            // SAFETY: the handle came from gss_accept_sec_context and is deleted once;
            // no output token is asked for.
            unsafe { gss_delete_sec_context(&mut minor, &mut self.handle, ptr::null_mut()) };
        }
    }
}

/// Takes a buffer GSSAPI filled, as bytes, and releases it.
fn take_buffer(buf: &mut gss_buffer_desc) -> Vec<u8> {
    if buf.value.is_null() {
        return Vec::new();
    }
    // SAFETY: GSSAPI filled `buf` with `length` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(buf.value as *const u8, buf.length) }.to_vec();
    let mut minor: OM_uint32 = 0;
    // SAFETY: released once; `buf` is left empty.
    unsafe { gss_release_buffer(&mut minor, buf) };
    bytes
}

impl ServerContext {
    /// A context that will accept with `cred`.
    pub(crate) fn new(cred: AcceptorHandle) -> Self {
        Self {
            handle: ptr::null_mut(),
            cred,
            state: State::Open,
            legs: 0,
            flags: 0,
        }
    }

    /// Whether the context is established.
    pub(crate) fn is_complete(&self) -> bool {
        matches!(self.state, State::Complete(_))
    }

    /// Feeds one client token; the token to send back, if GSSAPI made one.
    pub(crate) fn step(
        &mut self,
        token: &[u8],
        channel_bindings: Option<&[u8]>,
    ) -> Result<Option<Vec<u8>>, RawError> {
        match &self.state {
            State::Open => {}
            State::Failed(e) => return Err(*e),
            State::Complete(_) => return Ok(None),
        }
        let empty = || gss_buffer_desc {
            length: 0,
            value: ptr::null_mut(),
        };
        let mut input = gss_buffer_desc {
            length: token.len(),
            value: token.as_ptr() as *mut std::ffi::c_void,
        };
        let mut bindings = gss_channel_bindings_struct {
            initiator_addrtype: 0,
            initiator_address: empty(),
            acceptor_addrtype: 0,
            acceptor_address: empty(),
            application_data: empty(),
        };
        let bindings_ptr: gss_channel_bindings_t = match channel_bindings {
            Some(cb) => {
                bindings.application_data = gss_buffer_desc {
                    length: cb.len(),
                    value: cb.as_ptr() as *mut std::ffi::c_void,
                };
                &mut bindings
            }
            None => ptr::null_mut(),
        };
        let mut output = empty();
        let mut source: gss_name_t = ptr::null_mut();
        let mut flags: OM_uint32 = 0;
        let mut lifetime: OM_uint32 = 0;
        let mut delegated: gss_cred_id_t = ptr::null_mut();
        let mut minor: OM_uint32 = 0;
        // SAFETY: `input`, `bindings` (and the slices they point at) live until the call
        // returns, and GSSAPI only reads them; the handle is ours (null on the first
        // leg); the credential is alive (held in self.cred); every output points at a
        // local that receives a value we own and release (name, buffer, credential).
        let major = unsafe {
            gss_accept_sec_context(
                &mut minor,
                &mut self.handle,
                self.cred.raw.0,
                &mut input,
                bindings_ptr,
                &mut source,
                ptr::null_mut::<gss_OID>(),
                &mut output,
                &mut flags,
                &mut lifetime,
                &mut delegated,
            )
        };
        self.legs += 1;
        let out = take_buffer(&mut output);
        if major & ERROR_MASK != 0 {
            // The outputs are undefined on error; MIT leaves them unset.
            let e = RawError {
                major: MajorFlags::from_bits_retain(major),
                minor,
            };
            self.state = State::Failed(e);
            return Err(e);
        }
        let source = SourceName(source);
        // SAFETY: a credential GSSAPI handed over, released by `Cred` once.
        let delegated = (!delegated.is_null()).then(|| unsafe { Cred::from_c(delegated) });
        self.flags |= flags;
        if major & CONTINUE_NEEDED != 0 {
            return Ok(Some(out));
        }
        let established = if self.legs == 1 && !source.0.is_null() {
            Some(Established {
                source,
                flags: self.flags,
                lifetime,
                delegated,
            })
        } else {
            // Completed on a later leg: ask the context once for what it says.
            drop(source);
            self.inquire().map(|(source, flags, lifetime)| Established {
                source,
                flags: self.flags | flags,
                lifetime,
                delegated,
            })
        };
        self.state = State::Complete(established);
        Ok((!out.is_empty()).then_some(out))
    }

    /// One `gss_inquire_context` for the source name, flags and lifetime of the
    /// established context; `None` if it fails.
    fn inquire(&self) -> Option<(SourceName, u32, u32)> {
        let mut source: gss_name_t = ptr::null_mut();
        let mut flags: OM_uint32 = 0;
        let mut lifetime: OM_uint32 = 0;
        let mut minor: OM_uint32 = 0;
        // SAFETY: the handle is a live, established context; the outputs point at
        // locals; the name received is ours to release (SourceName).
        let major = unsafe {
            gss_inquire_context(
                &mut minor,
                self.handle,
                &mut source,
                ptr::null_mut(),
                &mut lifetime,
                ptr::null_mut(),
                &mut flags,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let source = SourceName(source);
        (major & ERROR_MASK == 0 && !source.0.is_null()).then_some((source, flags, lifetime))
    }

    /// The service principal the established context's ticket is for (`HTTP/host@REALM`):
    /// one `gss_inquire_context`; `None` if GSSAPI cannot say.
    pub(crate) fn target_name(&self) -> Option<String> {
        if self.handle.is_null() || !self.is_complete() {
            return None;
        }
        let mut target: gss_name_t = ptr::null_mut();
        let mut minor: OM_uint32 = 0;
        // SAFETY: the handle is a live, established context; only the target name is
        // asked for, and the name received is ours to release (SourceName).
        let major = unsafe {
            gss_inquire_context(
                &mut minor,
                self.handle,
                ptr::null_mut(),
                &mut target,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let target = SourceName(target);
        if major & ERROR_MASK != 0 || target.0.is_null() {
            return None;
        }
        target.display().ok()
    }

    /// What the completed context says about the client, taken once (`None` before
    /// completion, after it was taken, or if GSSAPI could not say).
    pub(crate) fn take_established(&mut self) -> Option<Established> {
        match &mut self.state {
            State::Complete(established) => established.take(),
            State::Open | State::Failed(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AcceptorHandle, ServerContext, SourceName};

    #[test]
    fn a_name_gssapi_cannot_display_is_an_error_not_a_placeholder() {
        let nothing = SourceName(std::ptr::null_mut());
        assert!(nothing.display().is_err());
    }

    #[test]
    fn garbage_fails_and_the_context_stays_failed() {
        // SAFETY: a null credential (GSS_C_NO_CREDENTIAL) is owned by nothing.
        let cred = unsafe { AcceptorHandle::from_raw(std::ptr::null_mut()) };
        let mut ctx = ServerContext::new(cred);
        let first = ctx.step(b"\x60\x03\x06\x01\x00 not a token", None);
        let e = first.expect_err("garbage is refused");
        assert!(!ctx.is_complete());
        assert!(ctx.take_established().is_none());
        assert_eq!(
            ctx.step(b"again", None).unwrap_err().major.bits(),
            e.major.bits()
        );
    }
}
