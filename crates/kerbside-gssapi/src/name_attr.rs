//! Name attributes (RFC 6680 `gss_get_name_attribute`), which `libgssapi` does not wrap:
//! the PAC an Active Directory KDC put in the client's ticket, as MIT's krb5 mechanism
//! gives it under `urn:mspac:` once it has checked the PAC's server and KDC signatures.
//!
//! Only an attribute GSSAPI marks both *authenticated* (its signatures verified) and
//! *complete* is ever returned: an unauthenticated PAC is anyone's bytes.
#![allow(unsafe_code)]

use std::ptr;

use libgssapi_sys::{gss_buffer_desc, gss_get_name_attribute, gss_release_buffer, OM_uint32};

use crate::accept_ctx::SourceName;

/// MIT's attribute for the whole PAC (`urn:mspac:`).
const MSPAC: &[u8] = b"urn:mspac:";

/// `GSS_S_UNAVAILABLE`: the name has no such attribute (a ticket without a PAC).
const GSS_S_UNAVAILABLE: u32 = 16 << 16;

/// What `urn:mspac:` gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PacAttribute {
    /// The name has no PAC (an MIT KDC's ticket).
    Absent,
    /// The PAC, its signatures checked by GSSAPI.
    Verified(Vec<u8>),
    /// GSSAPI returned a PAC it did not verify (or only part of one): not to be used.
    Unverified,
    /// The call failed.
    Failed { major: u32, minor: u32 },
}

/// Releases a buffer GSSAPI filled.
struct OwnedBuffer(gss_buffer_desc);

impl Drop for OwnedBuffer {
    fn drop(&mut self) {
        if !self.0.value.is_null() {
            let mut minor: OM_uint32 = 0;
            // SAFETY: the buffer was filled by gss_get_name_attribute and is released once.
            unsafe { gss_release_buffer(&mut minor, &mut self.0) };
        }
    }
}

fn empty_buffer() -> OwnedBuffer {
    OwnedBuffer(gss_buffer_desc {
        length: 0,
        value: ptr::null_mut(),
    })
}

/// The PAC of `name` (the source name of an accepted context).
pub(crate) fn pac(name: &SourceName) -> PacAttribute {
    let mut attribute = gss_buffer_desc {
        length: MSPAC.len(),
        value: MSPAC.as_ptr() as *mut std::ffi::c_void,
    };
    let mut authenticated: i32 = 0;
    let mut complete: i32 = 0;
    let mut value = empty_buffer();
    let mut display = empty_buffer();
    // -1: the first (and, for urn:mspac:, only) value.
    let mut more: i32 = -1;
    let mut minor: OM_uint32 = 0;
    // SAFETY: `name.raw()` is a live name for the duration of the call; `attribute` points at
    // a static string GSSAPI only reads; `value` and `display` receive buffers we release.
    let major = unsafe {
        gss_get_name_attribute(
            &mut minor,
            name.raw(),
            &mut attribute,
            &mut authenticated,
            &mut complete,
            &mut value.0,
            &mut display.0,
            &mut more,
        )
    };
    if major == GSS_S_UNAVAILABLE {
        return PacAttribute::Absent;
    }
    if major != 0 {
        return PacAttribute::Failed { major, minor };
    }
    if authenticated == 0 || complete == 0 {
        return PacAttribute::Unverified;
    }
    if value.0.value.is_null() || value.0.length == 0 {
        return PacAttribute::Absent;
    }
    // SAFETY: GSSAPI filled `value` with `length` readable bytes, alive until it is dropped.
    let bytes = unsafe { std::slice::from_raw_parts(value.0.value as *const u8, value.0.length) };
    PacAttribute::Verified(bytes.to_vec())
}
