//! Certificates from the test CA are accepted by OpenSSL and rustls.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::Arc;

use kerbside_testkit::TestCa;
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

#[test]
fn openssl_verifies_the_leaf_for_server_auth() {
    let ca = TestCa::new();
    let cert = ca.issue(&[]);
    let out = Command::new("openssl")
        .args(["verify", "-purpose", "sslserver", "-CAfile"])
        .arg(ca.ca_pem_path())
        .arg(cert.cert_pem_path())
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(cert.cert_pem_path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("DNS:localhost"), "{text}");
    assert!(text.contains("IP Address:127.0.0.1"), "{text}");
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("TLS Web Server Authentication"), "{text}");

    let ca_text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(ca.ca_pem_path())
        .output()
        .unwrap();
    let ca_text = String::from_utf8_lossy(&ca_text.stdout);
    assert!(ca_text.contains("CA:TRUE"), "{ca_text}");
    assert!(ca_text.contains("Certificate Sign"), "{ca_text}");

    let key = std::fs::read_to_string(cert.key_pem_path()).unwrap();
    assert!(
        key.starts_with("-----BEGIN PRIVATE KEY-----"),
        "not PKCS#8: {key}"
    );
}

#[test]
fn rustls_accepts_the_leaf_for_its_names_only() {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca = TestCa::new();
    let cert = ca.issue(&["localhost", "127.0.0.1", "www.example.test"]);
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.ca_der().to_vec()))
        .unwrap();
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .unwrap();
    let leaf = CertificateDer::from(cert.cert_der().to_vec());
    for name in ["localhost", "127.0.0.1", "www.example.test"] {
        let name = ServerName::try_from(name).unwrap();
        verifier
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
    }
    let other = ServerName::try_from("other.example.test").unwrap();
    assert!(verifier
        .verify_server_cert(&leaf, &[], &other, &[], UnixTime::now())
        .is_err());
}
