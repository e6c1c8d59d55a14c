//! The two GSSAPI calls `libgssapi` does not wrap: importing a name for an acquire
//! call, and `gss_acquire_cred_from` (credentials from an explicit keytab or ticket
//! cache instead of the process-wide `KRB5_KTNAME` / `KRB5CCNAME`).
#![allow(unsafe_code)]

use std::ffi::CString;
use std::ptr;

use libgssapi::credential::Cred;
use libgssapi_sys::{
    gss_OID_desc, gss_acquire_cred_from, gss_buffer_desc, gss_cred_id_t, gss_cred_usage_t,
    gss_import_name, gss_key_value_element_desc, gss_key_value_set_desc, gss_name_t,
    gss_release_name, OM_uint32, GSS_C_ACCEPT, GSS_C_INITIATE,
};

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

/// Imports a name for [`acquire_cred_from`]: for `Usage::Accept`, `service@host` as
/// a host-based service name or `service/host[@REALM]` as a Kerberos principal; for
/// `Usage::Initiate`, always a Kerberos principal (`alice`, `alice@REALM`).
fn import_name(name: &str, usage: Usage) -> Result<ImportedName, Status> {
    let oid_bytes = if name.contains('/') || matches!(usage, Usage::Initiate) {
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

/// Acquires credentials through `gss_acquire_cred_from` with a credential store
/// (`keytab` for an acceptor, `ccache` for an initiator), for `name` or any name.
pub(crate) fn acquire_cred_from(
    name: Option<&str>,
    usage: Usage,
    store: &[(&str, &str)],
) -> Result<Cred, Status> {
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
    } as gss_cred_usage_t;
    let mut cred: gss_cred_id_t = ptr::null_mut();
    let mut minor: OM_uint32 = 0;
    // SAFETY: every pointer refers to data alive until the call returns (`strings`,
    // `elements`, `set`, `name`); `cred` receives a credential we then own.
    let major = unsafe {
        gss_acquire_cred_from(
            &mut minor,
            name.as_ref().map_or(ptr::null_mut(), |n| n.0),
            u32::MAX, // GSS_C_INDEFINITE
            ptr::null_mut(),
            usage,
            &set,
            &mut cred,
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if major == 0 {
        // SAFETY: cred is a fresh credential handle; Cred takes ownership and
        // releases it on drop.
        Ok(unsafe { Cred::from_c(cred) })
    } else {
        Err(Status { major, minor })
    }
}
