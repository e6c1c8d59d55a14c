//! The host names a TLS server certificate is for (its subjectAltName DNS names and IP
//! addresses), and whether a host is one of them, wildcards included (RFC 6125 §6.4.3:
//! `*` stands for exactly one whole left-most label).
//!
//! A Kerberos service behind HTTPS has to agree with its certificate: a client asks a
//! ticket for `HTTP/<the host in the URL>`, and the same host must be in the
//! certificate; `kerbside gate --check` compares the two. The certificate is decoded
//! with `x509-cert`; nothing here panics on any input.
//!
//! ```
//! use kerbside_proto::cert_names::{CertName, covers};
//!
//! let names = [CertName::Dns("*.example.test".into())];
//! assert!(covers(&names, "www.example.test"));
//! assert!(!covers(&names, "example.test"));
//! ```

use std::net::IpAddr;

use x509_cert::der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

/// One name of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertName {
    /// A `dNSName`, possibly a wildcard (`*.example.test`), in lower case.
    Dns(String),
    /// An `iPAddress`.
    Ip(IpAddr),
}

impl std::fmt::Display for CertName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name),
            Self::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// Why a certificate's names could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertNamesError {
    /// The bytes are not a DER X.509 certificate.
    #[error("not a DER X.509 certificate: {0}")]
    NotCertificate(String),
    /// The subjectAltName extension is malformed or repeated.
    #[error("the certificate's subjectAltName extension cannot be read: {0}")]
    BadSubjectAltName(String),
}

/// The DNS names and IP addresses of the certificate's subjectAltName extension (what
/// browsers and curl check; the subject's common name is not used). Empty if the
/// certificate has no such extension.
pub fn subject_alt_names(der: &[u8]) -> Result<Vec<CertName>, CertNamesError> {
    let cert =
        Certificate::from_der(der).map_err(|e| CertNamesError::NotCertificate(e.to_string()))?;
    let Some((_, san)) = cert
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
        .map_err(|e| CertNamesError::BadSubjectAltName(e.to_string()))?
    else {
        return Ok(Vec::new());
    };
    Ok(san
        .0
        .iter()
        .filter_map(|name| match name {
            GeneralName::DnsName(dns) => Some(CertName::Dns(dns.to_string().to_ascii_lowercase())),
            GeneralName::IpAddress(ip) => match ip.as_bytes().len() {
                4 => <[u8; 4]>::try_from(ip.as_bytes())
                    .ok()
                    .map(|b| CertName::Ip(IpAddr::from(b))),
                16 => <[u8; 16]>::try_from(ip.as_bytes())
                    .ok()
                    .map(|b| CertName::Ip(IpAddr::from(b))),
                _ => None,
            },
            _ => None,
        })
        .collect())
}

/// Whether `host` (a DNS name or an IP address, as in a URL) is one of `names`.
pub fn covers(names: &[CertName], host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    names.iter().any(|name| match (name, ip) {
        (CertName::Ip(cert_ip), Some(ip)) => *cert_ip == ip,
        (CertName::Dns(pattern), None) => dns_matches(pattern, &host),
        _ => false,
    })
}

/// RFC 6125 §6.4.3, the strict reading: a `*` is only a whole left-most label, matches
/// exactly one label, and never the bare parent.
fn dns_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.');
    match pattern.strip_prefix("*.") {
        Some(parent) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent),
        None => pattern == host,
    }
}

/// Reads `data` as a certificate's names and panics if a name read is not covered by the
/// names (a DNS name covers itself; wildcards cover a one-label child); for the
/// `cert_binding` fuzz target and the seed-replay test.
pub fn fuzz_check(data: &[u8]) {
    if let Ok(names) = subject_alt_names(data) {
        for name in &names {
            match name {
                CertName::Ip(ip) => assert!(covers(&names, &ip.to_string())),
                CertName::Dns(dns) => {
                    let host = dns.replacen("*.", "x.", 1);
                    if !host.is_empty() && !host.contains('*') && host.parse::<IpAddr>().is_err() {
                        assert!(covers(&names, &host), "{host} not covered by {names:?}");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cert(names: &[&str]) -> Vec<u8> {
        let params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn the_names_of_a_certificate_are_read() {
        let der = cert(&["localhost", "127.0.0.1", "*.Example.Test"]);
        let names = subject_alt_names(&der).unwrap();
        assert_eq!(
            names,
            vec![
                CertName::Dns("localhost".into()),
                CertName::Ip("127.0.0.1".parse().unwrap()),
                CertName::Dns("*.example.test".into()),
            ]
        );
        assert!(covers(&names, "LOCALHOST"));
        assert!(covers(&names, "127.0.0.1"));
        assert!(covers(&names, "www.example.test."));
        assert!(!covers(&names, "example.test"));
        assert!(!covers(&names, "a.b.example.test"));
        assert!(!covers(&names, "127.0.0.2"));
        assert!(!covers(&names, "::1"));
    }

    #[test]
    fn junk_is_named() {
        assert!(matches!(
            subject_alt_names(b"\x30\x03\x02\x01\x05"),
            Err(CertNamesError::NotCertificate(_))
        ));
    }

    proptest! {
        #[test]
        fn any_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..400)) {
            fuzz_check(&data);
        }

        #[test]
        fn a_name_covers_itself_and_only_its_own_children(
            label in "[a-z0-9]{1,10}",
            parent in "[a-z]{1,10}\\.[a-z]{2,5}",
        ) {
            let child = format!("{label}.{parent}");
            let grandchild = format!("{label}.{child}");
            let exact = [CertName::Dns(parent.clone())];
            prop_assert!(covers(&exact, &parent));
            prop_assert!(!covers(&exact, &child));
            let wild = [CertName::Dns(format!("*.{parent}"))];
            prop_assert!(covers(&wild, &child));
            prop_assert!(!covers(&wild, &parent));
            prop_assert!(!covers(&wild, &grandchild));
        }
    }
}
