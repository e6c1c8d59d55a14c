//! [`TestCa`] and [`TestCert`]: a private certificate authority for TLS tests.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tempfile::TempDir;

/// A rustls client configuration (the ring provider, safe default protocol versions)
/// that trusts only `trusted` (nothing when `None`), for clients under test such as
/// reqwest's `tls_backend_preconfigured`.
///
/// # Panics
/// If rustls refuses the CA certificate or its default protocol versions (a bug).
pub fn rustls_client_config(trusted: Option<&TestCa>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = trusted {
        roots
            .add(rustls::pki_types::CertificateDer::from(
                ca.ca_der().to_vec(),
            ))
            .expect("rustls takes the test CA");
    }
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth()
}

/// The names a certificate is issued for when none are given.
const DEFAULT_NAMES: &[&str] = &["localhost", "127.0.0.1"];

/// A private certificate authority whose certificate is written to `ca.pem` in a temporary
/// directory.
///
/// Certificates it [issues](Self::issue) are accepted by curl/OpenSSL (`--cacert ca.pem`),
/// Apache mod_ssl and rustls (add [`ca_der`](Self::ca_der) to a `RootCertStore`): the CA has
/// `basicConstraints CA:TRUE` and `keyCertSign`; a leaf is not a CA, has a subjectAltName for
/// each name and the `serverAuth` extended key usage. Keys are ECDSA P-256.
///
/// ```no_run
/// use kerbside_testkit::TestCa;
///
/// let ca = TestCa::new();
/// let cert = ca.issue(&[]); // localhost and 127.0.0.1
/// println!("curl --cacert {} …", ca.ca_pem_path().display());
/// println!("server: {} {}", cert.cert_pem_path().display(), cert.key_pem_path().display());
/// ```
#[derive(Debug)]
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
    ca_der: Vec<u8>,
    ca_pem_path: PathBuf,
    dir: TempDir,
    /// Where its own and its certificates' directories go (`None`: the system's).
    parent: Option<PathBuf>,
}

impl TestCa {
    /// [`TestCa::new`], with its directory and those of the certificates it issues
    /// inside `parent`: for a CA kept in a `static` (never dropped), inside a realm's or
    /// domain's directory, which is removed when the test process ends.
    ///
    /// # Panics
    ///
    /// As [`TestCa::new`].
    pub fn new_in(parent: &Path) -> TestCa {
        Self::make(Some(parent.to_owned()))
    }

    /// Generates the CA key and self-signed certificate and writes `ca.pem`.
    ///
    /// # Panics
    ///
    /// If key generation or writing the file fails.
    #[allow(clippy::new_without_default)]
    pub fn new() -> TestCa {
        Self::make(None)
    }

    fn make(parent: Option<PathBuf>) -> TestCa {
        let dir = temp_dir("kerbside-ca-", parent.as_deref())
            .expect("create the CA's temporary directory");
        let mut params = CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "kerbside test CA");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "kerbside tests");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2099, 12, 31);
        let key = KeyPair::generate().expect("generate the CA key");
        let cert = params
            .self_signed(&key)
            .expect("self-sign the CA certificate");
        let ca_pem = cert.pem();
        let ca_pem_path = dir.path().join("ca.pem");
        fs::write(&ca_pem_path, &ca_pem).expect("write ca.pem");
        TestCa {
            issuer: Issuer::new(params, key),
            ca_pem,
            ca_der: cert.der().to_vec(),
            ca_pem_path,
            dir,
            parent,
        }
    }

    /// The CA's temporary directory, deleted on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `ca.pem`, the CA certificate to trust (curl `--cacert`).
    pub fn ca_pem_path(&self) -> &Path {
        &self.ca_pem_path
    }

    /// The CA certificate in PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate in DER (for a rustls `RootCertStore`).
    pub fn ca_der(&self) -> &[u8] {
        &self.ca_der
    }

    /// Issues a server certificate for `names` (DNS names or IP addresses; the first is also the
    /// common name), or for `localhost` and `127.0.0.1` when `names` is empty.
    ///
    /// The certificate and its key are written to `cert.pem` and `key.pem` (PKCS#8) in a new
    /// temporary directory owned by the returned [`TestCert`].
    ///
    /// # Panics
    ///
    /// If a name is neither a valid DNS name nor an IP address, or writing the files fails.
    pub fn issue(&self, names: &[&str]) -> TestCert {
        let names = if names.is_empty() {
            DEFAULT_NAMES
        } else {
            names
        };
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap_or_else(|e| panic!("invalid certificate names {names:?}: {e}"));
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, names[0]);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2099, 12, 31);
        let key = KeyPair::generate().expect("generate the server key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign the server certificate");

        let dir = temp_dir("kerbside-cert-", self.parent.as_deref())
            .expect("create the certificate's temporary directory");
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        let cert_pem_path = dir.path().join("cert.pem");
        let key_pem_path = dir.path().join("key.pem");
        fs::write(&cert_pem_path, &cert_pem).expect("write cert.pem");
        fs::write(&key_pem_path, &key_pem).expect("write key.pem");
        TestCert {
            names: names.iter().map(|n| n.to_string()).collect(),
            cert_pem,
            cert_der: cert.der().to_vec(),
            key_pem,
            key_der: key.serialize_der(),
            ca_pem: self.ca_pem.clone(),
            cert_pem_path,
            key_pem_path,
            dir,
        }
    }
}

/// A server certificate and key issued by a [`TestCa`], written to `cert.pem` and `key.pem`.
///
/// `cert.pem` holds only the leaf: the CA signs leaves directly, so there are no intermediates
/// to send.
#[derive(Debug)]
pub struct TestCert {
    names: Vec<String>,
    cert_pem: String,
    cert_der: Vec<u8>,
    key_pem: String,
    key_der: Vec<u8>,
    ca_pem: String,
    cert_pem_path: PathBuf,
    key_pem_path: PathBuf,
    dir: TempDir,
}

impl TestCert {
    /// The names the certificate is valid for.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The certificate's temporary directory, deleted on drop.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `cert.pem`: the leaf certificate.
    pub fn cert_pem_path(&self) -> &Path {
        &self.cert_pem_path
    }

    /// `key.pem`: the private key in PKCS#8 PEM.
    pub fn key_pem_path(&self) -> &Path {
        &self.key_pem_path
    }

    /// The leaf certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The leaf certificate in DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The private key in PKCS#8 PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The private key in PKCS#8 DER.
    pub fn key_der(&self) -> &[u8] {
        &self.key_der
    }

    /// The issuing CA's certificate in PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

/// A new temporary directory named `prefix*`, in `parent` or the system's.
fn temp_dir(prefix: &str, parent: Option<&Path>) -> std::io::Result<TempDir> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix);
    match parent {
        Some(parent) => builder.tempdir_in(parent),
        None => builder.tempdir(),
    }
}
