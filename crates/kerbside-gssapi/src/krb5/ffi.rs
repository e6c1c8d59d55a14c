//! The few MIT krb5 functions and structures `kerbside doctor` needs, declared by
//! hand from `<krb5/krb5.h>` (MIT krb5 1.x, the layout every Debian and RHEL
//! release ships): libgssapi has no ticket-cache or ticket inspection.
#![allow(unsafe_code, non_camel_case_types, dead_code)]

use std::ffi::{c_char, c_uint, c_void};

pub(crate) type krb5_context = *mut c_void;
pub(crate) type krb5_ccache = *mut c_void;
pub(crate) type krb5_keytab = *mut c_void;
pub(crate) type krb5_principal = *mut c_void;
pub(crate) type krb5_error_code = i32;
pub(crate) type krb5_cc_cursor = *mut c_void;
pub(crate) type profile_t = *mut c_void;

/// `krb5_data`.
#[repr(C)]
pub(crate) struct krb5_data {
    pub magic: i32,
    pub length: c_uint,
    pub data: *mut c_char,
}

/// `krb5_keyblock`.
#[repr(C)]
pub(crate) struct krb5_keyblock {
    pub magic: i32,
    pub enctype: i32,
    pub length: c_uint,
    pub contents: *mut u8,
}

/// `krb5_ticket_times`.
#[repr(C)]
pub(crate) struct krb5_ticket_times {
    pub authtime: i32,
    pub starttime: i32,
    pub endtime: i32,
    pub renew_till: i32,
}

/// `krb5_creds`.
#[repr(C)]
pub(crate) struct krb5_creds {
    pub magic: i32,
    pub client: krb5_principal,
    pub server: krb5_principal,
    pub keyblock: krb5_keyblock,
    pub times: krb5_ticket_times,
    pub is_skey: c_uint,
    pub ticket_flags: i32,
    pub addresses: *mut c_void,
    pub ticket: krb5_data,
    pub second_ticket: krb5_data,
    pub authdata: *mut c_void,
}

/// `krb5_enc_data`.
#[repr(C)]
pub(crate) struct krb5_enc_data {
    pub magic: i32,
    pub enctype: i32,
    pub kvno: c_uint,
    pub ciphertext: krb5_data,
}

/// `krb5_ticket`.
#[repr(C)]
pub(crate) struct krb5_ticket {
    pub magic: i32,
    pub server: krb5_principal,
    pub enc_part: krb5_enc_data,
    pub enc_part2: *mut c_void,
}

/// `krb5_keytab_entry`.
#[repr(C)]
pub(crate) struct krb5_keytab_entry {
    pub magic: i32,
    pub principal: krb5_principal,
    pub timestamp: i32,
    pub vno: c_uint,
    pub key: krb5_keyblock,
}

pub(crate) type krb5_kt_cursor = *mut c_void;

/// `KRB5_NT_SRV_HST`.
pub(crate) const KRB5_NT_SRV_HST: i32 = 3;

#[link(name = "krb5")]
extern "C" {
    pub(crate) fn krb5_init_context(context: *mut krb5_context) -> krb5_error_code;
    pub(crate) fn krb5_free_context(context: krb5_context);
    pub(crate) fn krb5_get_error_message(
        context: krb5_context,
        code: krb5_error_code,
    ) -> *const c_char;
    pub(crate) fn krb5_free_error_message(context: krb5_context, msg: *const c_char);
    pub(crate) fn krb5_get_default_realm(
        context: krb5_context,
        realm: *mut *mut c_char,
    ) -> krb5_error_code;
    pub(crate) fn krb5_free_default_realm(context: krb5_context, realm: *mut c_char);
    pub(crate) fn krb5_get_profile(context: krb5_context, profile: *mut profile_t) -> i32;
    pub(crate) fn profile_get_values(
        profile: profile_t,
        names: *const *const c_char,
        ret_values: *mut *mut *mut c_char,
    ) -> i64;
    pub(crate) fn profile_free_list(list: *mut *mut c_char);
    pub(crate) fn profile_release(profile: profile_t);

    pub(crate) fn krb5_cc_default(
        context: krb5_context,
        ccache: *mut krb5_ccache,
    ) -> krb5_error_code;
    pub(crate) fn krb5_cc_resolve(
        context: krb5_context,
        name: *const c_char,
        ccache: *mut krb5_ccache,
    ) -> krb5_error_code;
    pub(crate) fn krb5_cc_new_unique(
        context: krb5_context,
        type_: *const c_char,
        hint: *const c_char,
        ccache: *mut krb5_ccache,
    ) -> krb5_error_code;
    pub(crate) fn krb5_cc_initialize(
        context: krb5_context,
        ccache: krb5_ccache,
        principal: krb5_principal,
    ) -> krb5_error_code;
    pub(crate) fn krb5_cc_store_cred(
        context: krb5_context,
        ccache: krb5_ccache,
        creds: *mut krb5_creds,
    ) -> krb5_error_code;
    pub(crate) fn krb5_cc_copy_creds(
        context: krb5_context,
        incc: krb5_ccache,
        outcc: krb5_ccache,
    ) -> krb5_error_code;
    pub(crate) fn krb5_cc_close(context: krb5_context, ccache: krb5_ccache) -> krb5_error_code;
    pub(crate) fn krb5_cc_destroy(context: krb5_context, ccache: krb5_ccache) -> krb5_error_code;
    pub(crate) fn krb5_cc_get_type(context: krb5_context, ccache: krb5_ccache) -> *const c_char;
    pub(crate) fn krb5_cc_get_name(context: krb5_context, ccache: krb5_ccache) -> *const c_char;
    pub(crate) fn krb5_cc_get_principal(
        context: krb5_context,
        ccache: krb5_ccache,
        principal: *mut krb5_principal,
    ) -> krb5_error_code;
    pub(crate) fn krb5_cc_start_seq_get(
        context: krb5_context,
        ccache: krb5_ccache,
        cursor: *mut krb5_cc_cursor,
    ) -> krb5_error_code;
    pub(crate) fn krb5_cc_next_cred(
        context: krb5_context,
        ccache: krb5_ccache,
        cursor: *mut krb5_cc_cursor,
        creds: *mut krb5_creds,
    ) -> krb5_error_code;
    pub(crate) fn krb5_cc_end_seq_get(
        context: krb5_context,
        ccache: krb5_ccache,
        cursor: *mut krb5_cc_cursor,
    ) -> krb5_error_code;
    pub(crate) fn krb5_is_config_principal(
        context: krb5_context,
        principal: krb5_principal,
    ) -> c_uint;

    pub(crate) fn krb5_parse_name(
        context: krb5_context,
        name: *const c_char,
        principal: *mut krb5_principal,
    ) -> krb5_error_code;
    pub(crate) fn krb5_sname_to_principal(
        context: krb5_context,
        hostname: *const c_char,
        sname: *const c_char,
        type_: i32,
        principal: *mut krb5_principal,
    ) -> krb5_error_code;
    pub(crate) fn krb5_unparse_name(
        context: krb5_context,
        principal: krb5_principal,
        name: *mut *mut c_char,
    ) -> krb5_error_code;
    pub(crate) fn krb5_free_unparsed_name(context: krb5_context, name: *mut c_char);
    pub(crate) fn krb5_free_principal(context: krb5_context, principal: krb5_principal);
    pub(crate) fn krb5_copy_principal(
        context: krb5_context,
        principal: krb5_principal,
        out: *mut krb5_principal,
    ) -> krb5_error_code;

    pub(crate) fn krb5_get_credentials(
        context: krb5_context,
        options: i32,
        ccache: krb5_ccache,
        in_creds: *mut krb5_creds,
        out_creds: *mut *mut krb5_creds,
    ) -> krb5_error_code;
    pub(crate) fn krb5_free_creds(context: krb5_context, creds: *mut krb5_creds);
    pub(crate) fn krb5_free_cred_contents(context: krb5_context, creds: *mut krb5_creds);
    pub(crate) fn krb5_decode_ticket(
        code: *const krb5_data,
        ticket: *mut *mut krb5_ticket,
    ) -> krb5_error_code;
    pub(crate) fn krb5_free_ticket(context: krb5_context, ticket: *mut krb5_ticket);

    pub(crate) fn krb5_get_init_creds_password(
        context: krb5_context,
        creds: *mut krb5_creds,
        client: krb5_principal,
        password: *const c_char,
        prompter: *mut c_void,
        data: *mut c_void,
        start_time: i32,
        in_tkt_service: *const c_char,
        options: *mut c_void,
    ) -> krb5_error_code;
    pub(crate) fn krb5_get_init_creds_keytab(
        context: krb5_context,
        creds: *mut krb5_creds,
        client: krb5_principal,
        keytab: krb5_keytab,
        start_time: i32,
        in_tkt_service: *const c_char,
        options: *mut c_void,
    ) -> krb5_error_code;
    pub(crate) fn krb5_kt_resolve(
        context: krb5_context,
        name: *const c_char,
        keytab: *mut krb5_keytab,
    ) -> krb5_error_code;
    pub(crate) fn krb5_kt_close(context: krb5_context, keytab: krb5_keytab) -> krb5_error_code;
    pub(crate) fn krb5_kt_start_seq_get(
        context: krb5_context,
        keytab: krb5_keytab,
        cursor: *mut krb5_kt_cursor,
    ) -> krb5_error_code;
    pub(crate) fn krb5_kt_next_entry(
        context: krb5_context,
        keytab: krb5_keytab,
        entry: *mut krb5_keytab_entry,
        cursor: *mut krb5_kt_cursor,
    ) -> krb5_error_code;
    pub(crate) fn krb5_kt_end_seq_get(
        context: krb5_context,
        keytab: krb5_keytab,
        cursor: *mut krb5_kt_cursor,
    ) -> krb5_error_code;
    pub(crate) fn krb5_free_keytab_entry_contents(
        context: krb5_context,
        entry: *mut krb5_keytab_entry,
    ) -> krb5_error_code;
}
