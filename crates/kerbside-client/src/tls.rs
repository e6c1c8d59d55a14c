//! TLS for every client of kerbside (`fetch`, `tunnel`, `bench`, the library): one
//! rustls configuration, one certificate verifier, and the words for a handshake
//! that failed.
//!
//! The verifier is webpki's, with one addition curl users expect: a certificate
//! given with `--cacert` is trusted *as itself* when the server presents exactly
//! it. `openssl req -x509` marks its self-signed certificates `CA:TRUE`, which
//! webpki refuses as a server's own certificate (`CaUsedAsEndEntity`); such a
//! certificate, byte for byte one of the `--cacert` file, is accepted after its
//! name and validity period are checked. The handshake's signatures are always
//! checked.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig as RustlsConfig, DigitallySignedStruct, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use x509_cert::der::Decode;

use crate::error::{Error, ErrorKind};

/// How the client checks servers' certificates.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// Trust only the certificates in this PEM file (like curl's `--cacert`): CA
    /// certificates, and servers' own (self-signed) certificates, which are trusted
    /// as themselves. `None` uses the system's roots (`SSL_CERT_FILE`/`SSL_CERT_DIR`
    /// are honoured).
    pub ca_file: Option<PathBuf>,
    /// Do not verify the server's certificate at all (`--insecure`).
    pub insecure: bool,
}

impl TlsSettings {
    /// A rustls configuration offering `alpn` (e.g. `h2`, `http/1.1`), with the
    /// verifier these settings ask for. Fails if the CA file cannot be read or
    /// holds no certificate.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Result<Arc<RustlsConfig>, Error> {
        client_config(self, alpn)
    }

    /// Why a TLS handshake with `host:port` failed, in words that say what to do,
    /// for the error `tokio-rustls` returned.
    pub fn explain_handshake_failure(&self, host: &str, port: u16, e: &std::io::Error) -> String {
        self.explain(host, port, e, "server", "--cacert")
    }

    /// [`explain_handshake_failure`](Self::explain_handshake_failure) for the TLS
    /// handshake with an `https://` proxy, whose CA is given with `--proxy-cacert`.
    pub fn explain_proxy_handshake_failure(
        &self,
        host: &str,
        port: u16,
        e: &std::io::Error,
    ) -> String {
        self.explain(host, port, e, "proxy", "--proxy-cacert")
    }

    fn explain(&self, host: &str, port: u16, e: &std::io::Error, peer: &str, flag: &str) -> String {
        let rustls_error = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        let why = match rustls_error {
            Some(rustls::Error::InvalidCertificate(c)) => {
                let text = self.certificate_problem(host, c);
                if flag == "--cacert" {
                    text
                } else {
                    text.replace("--cacert", flag).replace("server", peer)
                }
            }
            Some(other) => other.to_string(),
            None if e.kind() == std::io::ErrorKind::UnexpectedEof => format!(
                "the {peer} closed the connection during the handshake (does it speak TLS \
                 on this port?)"
            ),
            None => e.to_string(),
        };
        if peer == "server" {
            format!("TLS handshake with {host}:{port} failed: {why}")
        } else {
            format!("TLS handshake with the {peer} {host}:{port} failed: {why}")
        }
    }

    fn certificate_problem(&self, host: &str, error: &CertificateError) -> String {
        let trust = match &self.ca_file {
            Some(path) => format!(
                "{} (--cacert) holds neither the CA that issued it nor the certificate itself",
                path.display()
            ),
            None => "no CA of this system's trust store issued it; pass the CA (or the \
                     server's own self-signed certificate) with --cacert FILE"
                .to_owned(),
        };
        match error {
            CertificateError::UnknownIssuer => {
                format!("the server's certificate is not trusted: {trust}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                let when = match error {
                    CertificateError::ExpiredContext { time, not_after } => {
                        format!(
                            " {} ago",
                            ago(time.as_secs().saturating_sub(not_after.as_secs()))
                        )
                    }
                    _ => String::new(),
                };
                format!(
                    "the server's certificate expired{when}: the server must renew it (or \
                     this machine's clock is wrong)"
                )
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet: check this machine's clock".to_owned()
            }
            CertificateError::NotValidForName => {
                format!("the server's certificate is not for {host}")
            }
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "the server's certificate is not for {host} but for {}; use the name it was \
                 made for in the URL",
                if presented.is_empty() {
                    "no name at all".to_owned()
                } else {
                    presented
                        .iter()
                        .map(|n| plain_name(n))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            CertificateError::BadSignature => match &self.ca_file {
                Some(path) => format!(
                    "the signature on the server's certificate does not verify with the CA of \
                     that name in {} (--cacert): another CA of the same name issued it; give \
                     the right one",
                    path.display()
                ),
                None => "the signature on the server's certificate does not verify".to_owned(),
            },
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "the server's certificate is not meant for a TLS server".to_owned()
            }
            CertificateError::Other(other)
                if matches!(
                    other.0.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) =>
            {
                match &self.ca_file {
                    Some(path) => format!(
                        "the server presents a CA certificate as its own, and it is not the \
                         one in {} (a self-signed certificate given with --cacert is trusted \
                         as itself only when it is the very certificate the server sends)",
                        path.display()
                    ),
                    None => "the server presents a CA certificate as its own (as \
                             `openssl req -x509` makes them); to trust it, pass that very \
                             certificate with --cacert FILE"
                        .to_owned(),
                }
            }
            other => format!("the server's certificate was refused: {other}"),
        }
    }
}

/// `other.example` for webpki's `DnsName("other.example")`, `10.1.2.3` for
/// `IpAddress(10.1.2.3)`.
fn plain_name(presented: &str) -> &str {
    ["DnsName(\"", "IpAddress(", "UriName(\""]
        .iter()
        .find_map(|prefix| presented.strip_prefix(prefix))
        .map_or(presented, |rest| {
            rest.trim_end_matches(')').trim_end_matches('"')
        })
}

fn ago(seconds: u64) -> String {
    match seconds {
        0..=119 => format!("{seconds} seconds"),
        120..=7199 => format!("{} minutes", seconds / 60),
        7200..=172_799 => format!("{} hours", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

/// A rustls configuration offering `alpn` (e.g. `h2`, `http/1.1`).
pub(crate) fn client_config(
    settings: &TlsSettings,
    alpn: &[&[u8]],
) -> Result<Arc<RustlsConfig>, Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = RustlsConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(ErrorKind::Tls, format!("TLS setup failed: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> = if settings.insecure {
        Arc::new(NoVerification(provider))
    } else {
        let mut roots = RootCertStore::empty();
        let mut pinned = Vec::new();
        match &settings.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        Error::new(
                            ErrorKind::Tls,
                            format!("cannot read CA certificates from {}: {e}", path.display()),
                        )
                    })?;
                let (added, _) = roots.add_parsable_certificates(certs.iter().cloned());
                if added == 0 {
                    return Err(Error::new(
                        ErrorKind::Tls,
                        format!("{} holds no usable certificate", path.display()),
                    ));
                }
                pinned = certs;
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| Error::new(ErrorKind::Tls, format!("TLS setup failed: {e}")))?;
        Arc::new(Verifier { webpki, pinned })
    };
    let mut config = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// webpki's verifier, which also trusts a `--cacert` certificate as itself.
#[derive(Debug)]
struct Verifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// The certificates of the `--cacert` file.
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(e) => e,
        };
        if !self
            .pinned
            .iter()
            .any(|c| c.as_ref() == end_entity.as_ref())
        {
            return Err(refused);
        }
        // The very certificate the user gave: trusted as itself, for its names and
        // its validity period.
        let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_name(&parsed, server_name)?;
        check_validity(end_entity, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The certificate's `notBefore ≤ now ≤ notAfter`.
fn check_validity(der: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
    let cert = x509_cert::Certificate::from_der(der.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let validity = cert.tbs_certificate().validity();
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    let time = now.as_secs();
    if time < not_before {
        return Err(CertificateError::NotValidYetContext {
            time: now,
            not_before: UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_before)),
        }
        .into());
    }
    if time > not_after {
        return Err(CertificateError::ExpiredContext {
            time: now,
            not_after: UnixTime::since_unix_epoch(std::time::Duration::from_secs(not_after)),
        }
        .into());
    }
    Ok(())
}

/// Accepts any certificate (`--insecure`), but still checks handshake signatures so
/// the TLS session itself is sound.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presented_names_are_shown_plainly() {
        assert_eq!(plain_name("DnsName(\"other.example\")"), "other.example");
        assert_eq!(plain_name("IpAddress(10.1.2.3)"), "10.1.2.3");
        assert_eq!(plain_name("something else"), "something else");
    }

    #[test]
    fn durations_in_words() {
        assert_eq!(ago(5), "5 seconds");
        assert_eq!(ago(3 * 3600), "3 hours");
        assert_eq!(ago(2 * 86_400 + 5), "2 days");
    }
}
