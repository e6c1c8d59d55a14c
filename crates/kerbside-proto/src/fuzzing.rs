//! Entry points shared by the `cargo fuzz` targets (`fuzz/`) and the tests that replay
//! their seed corpora, so both check the same properties.

use crate::header::{format_challenges, parse_challenges, AuthenticationInfo, Credentials};

/// Feeds `data` to every authentication-header parser, as one field line and split
/// on LF into several, and panics if something that parses does not format back into
/// the same value.
pub fn auth_header(data: &[u8]) {
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    for input in [vec![data], lines] {
        if let Ok(challenges) = parse_challenges(input.iter().copied()) {
            let formatted = format_challenges(&challenges);
            let reparsed = parse_challenges([formatted.as_bytes()]);
            assert_eq!(reparsed.as_ref(), Ok(&challenges), "{formatted:?}");
            for challenge in &challenges {
                let _ = challenge.decode_token68();
            }
        }
    }
    if let Ok(credentials) = Credentials::parse(data) {
        let formatted = credentials.to_header_value();
        assert_eq!(
            Credentials::parse(formatted.as_bytes()),
            Ok(credentials.clone()),
            "{formatted:?}"
        );
        let _ = credentials.decode_token68();
        let _ = crate::scheme::negotiate::server::read_authorization([data]);
    }
    if let Ok(info) = AuthenticationInfo::parse(data) {
        let formatted = info.to_header_value();
        assert_eq!(
            AuthenticationInfo::parse(formatted.as_bytes()),
            Ok(info.clone()),
            "{formatted:?}"
        );
    }
}

/// Reads `data` as the DER certificate of RFC 5929 `tls-server-end-point` channel
/// bindings, and panics if the hash [`end_point_hash`](crate::channel_binding::end_point_hash)
/// picks and the bindings [`tls_server_end_point`](crate::channel_binding::tls_server_end_point)
/// returns disagree, or the bindings are not the prefix followed by the digest of `data`.
pub fn cert_binding(data: &[u8]) {
    crate::cert_names::fuzz_check(data);
    use crate::channel_binding::{
        end_point_hash, tls_server_end_point, TLS_SERVER_END_POINT_PREFIX,
    };
    match (end_point_hash(data), tls_server_end_point(data)) {
        (Ok(hash), Ok(bindings)) => {
            let (prefix, digest) = bindings.split_at(TLS_SERVER_END_POINT_PREFIX.len());
            assert_eq!(prefix, TLS_SERVER_END_POINT_PREFIX);
            assert_eq!(digest, hash.digest(data));
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (hash, bindings) => {
            panic!("end_point_hash: {hash:?}, tls_server_end_point: {bindings:?}")
        }
    }
}

/// Parses `data` as a netrc file, and panics if what parses does not format back
/// into the same value, or if [`Netrc::lookup`](crate::netrc::Netrc::lookup) misses one
/// of its own entries.
pub fn netrc(data: &[u8]) {
    crate::netrc::fuzz_check(data);
}

/// Canonicalises `data` as a request path; see
/// [`request_path::fuzz_check`](crate::request_path::fuzz_check).
pub fn request_path(data: &[u8]) {
    crate::request_path::fuzz_check(data);
}

/// Parses `data` as `Cookie` header lines and formats `Set-Cookie` values from it;
/// see [`cookie::fuzz_check`](crate::cookie::fuzz_check).
pub fn cookie(data: &[u8]) {
    crate::cookie::fuzz_check(data);
}

/// Feeds `data` to every NTLM message parser and to both NTLM state machines, and panics if a
/// parsed message does not encode back into the same value.
pub fn ntlm(data: &[u8]) {
    crate::scheme::ntlm::fuzz_check(data);
}

/// Feeds `data` to the SPNEGO token parsers and the SPNEGO/NTLM acceptor, and panics if a
/// parsed token does not encode back into the same value.
pub fn spnego(data: &[u8]) {
    crate::spnego::fuzz_check(data);
}

/// Parses `data` as an NTLM users file, and panics if what parses does not format back into
/// the same entries, or if [`NtlmUsers::lookup`](crate::scheme::ntlm::users::NtlmUsers::lookup)
/// misses one of them.
pub fn ntlm_users(data: &[u8]) {
    crate::scheme::ntlm::users::fuzz_check(data);
}

/// Feeds `data` as lines of an `ntlm_auth` ntlm-server-1 answer to the reader, and checks
/// that a request made for any name keeps its lines; see
/// [`scheme::ntlm::helper`](crate::scheme::ntlm::helper). Also reads `data` as `wbinfo`'s
/// answers about an account ([`scheme::ntlm::wbinfo`](crate::scheme::ntlm::wbinfo)).
pub fn ntlm_helper(data: &[u8]) {
    crate::scheme::ntlm::helper::fuzz_check(data);
}

/// Feeds `data` to the Digest client and server as challenges, credentials and
/// `Authentication-Info`; see [`scheme::digest`](crate::scheme::digest).
pub fn digest(data: &[u8]) {
    crate::scheme::digest::fuzz_check(data);
}

/// Parses `data` as an `htdigest` file, and panics if it does not format back into the same
/// entries or misses one of them by name or userhash.
pub fn htdigest(data: &[u8]) {
    crate::scheme::digest::htdigest::fuzz_check(data);
}

/// Parses `data` as an `htpasswd` file, and panics if it misses one of its own entries.
pub fn htpasswd(data: &[u8]) {
    crate::scheme::basic::htpasswd::fuzz_check(data);
}

/// Decodes `data` as Basic credentials and as `user:password`, and panics if what decodes
/// does not encode back into credentials that decode the same.
pub fn basic(data: &[u8]) {
    crate::scheme::basic::fuzz_check(data);
}

/// Walks `data` as a Negotiate token down to a Kerberos authenticator; see
/// [`krb5::fuzz_check`](crate::krb5::fuzz_check).
pub fn krb5_token(data: &[u8]) {
    crate::krb5::fuzz_check(data);
}

/// Reads `data` as a KDC's answer to `kerbside doctor`'s probe
/// ([`kdc_probe`](crate::kdc_probe)): never panics, and what parses is in range.
pub fn kdc_reply(data: &[u8]) {
    crate::kdc_probe::fuzz_check(data);
}

/// Reads `data` as the gate's replay cache file ([`replay_file`](crate::replay_file)), and
/// panics if what parses does not encode back up to its torn tail, or if its live entries
/// are expired, repeated or beyond the window.
pub fn replay_file(data: &[u8]) {
    crate::replay_file::fuzz_check(data);
}

/// Reads `data` as the start of a connection with a PROXY protocol header
/// ([`proxy_protocol`](crate::proxy_protocol)), and panics if a complete header is longer
/// than its input or the limits, if a prefix of it reads as anything but incomplete, or if
/// its addresses do not encode back to themselves.
pub fn proxy_protocol(data: &[u8]) {
    crate::proxy_protocol::fuzz_check(data);
}

/// Feeds `data` to the tunnel's browser guard ([`local_guard`](crate::local_guard)) as
/// Host, Origin, Sec-Fetch-Site and target lines, and panics if it lets through a request
/// that does not name the listener.
pub fn local_guard(data: &[u8]) {
    crate::local_guard::fuzz_check(data);
}

/// Reads `data` as an Active Directory PAC ([`pac`](crate::pac)) and the buffers that name
/// the account, and panics if a buffer found lies outside the input.
pub fn pac(data: &[u8]) {
    crate::pac::fuzz_check(data);
}

/// Feeds `data` to the forward proxy's parsers ([`forward_proxy`](crate::forward_proxy)):
/// host lists, address ranges, proxy lists, PAC results and `/proc/net/tcp` lines, and
/// panics if what parses does not format back into the same value.
pub fn forward_proxy(data: &[u8]) {
    crate::forward_proxy::fuzz_check(data);
}

/// Reads `data` as a keytab file ([`keytab`](crate::keytab)), and panics if its entries
/// do not write back to the same entries.
pub fn keytab(data: &[u8]) {
    crate::keytab::fuzz_check(data);
}

/// The PAC's logon info (`KERB_VALIDATION_INFO`, NDR): no panics, no more groups than
/// the input can hold.
pub fn pac_logon_info(data: &[u8]) {
    crate::pac::fuzz_check_logon_info(data);
}

/// Reads `data` as acceptor names (first line, comma-separated) and a request's `Host`
/// (second line), and checks tickets against them; see
/// [`acceptor_names`](crate::acceptor_names).
pub fn acceptor_names(data: &[u8]) {
    crate::acceptor_names::fuzz_check(data);
}

#[cfg(test)]
mod tests {
    /// Replays the checked-in seed corpus of every fuzz target.
    #[test]
    fn seed_corpora_pass() {
        let mut seen = 0;
        for (target, check) in [
            ("auth_header", super::auth_header as fn(&[u8])),
            ("acceptor_names", super::acceptor_names),
            ("cert_binding", super::cert_binding),
            ("netrc", super::netrc),
            ("cookie", super::cookie),
            ("ntlm", super::ntlm),
            ("spnego", super::spnego),
            ("ntlm_users", super::ntlm_users),
            ("ntlm_helper", super::ntlm_helper),
            ("digest", super::digest),
            ("htdigest", super::htdigest),
            ("htpasswd", super::htpasswd),
            ("basic", super::basic),
            ("krb5_token", super::krb5_token),
            ("kdc_reply", super::kdc_reply),
            ("replay_file", super::replay_file),
            ("proxy_protocol", super::proxy_protocol),
            ("local_guard", super::local_guard),
            ("pac", super::pac),
            ("forward_proxy", super::forward_proxy),
            ("keytab", super::keytab),
            ("pac_logon_info", super::pac_logon_info),
        ] {
            for (_, data) in kerbside_testkit::fuzz_seeds(target) {
                check(&data);
                seen += 1;
            }
        }
        assert!(seen >= 20, "the seed corpus went missing ({seen} files)");
    }
}
