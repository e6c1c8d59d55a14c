//! TLS for the gate: rustls from PEM files.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;

/// Loads a certificate chain and key (PEM) into a rustls server configuration that
/// offers HTTP/2 and HTTP/1.1 by ALPN.
pub fn load_server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, crate::SetupError> {
    load_server_config_with_leaf(cert, key)
        .map(|(config, _)| config)
        .map_err(Into::into)
}

/// Like [`load_server_config`], also returning the leaf certificate (DER), for
/// channel bindings.
pub(crate) fn load_server_config_with_leaf(
    cert: &Path,
    key: &Path,
) -> Result<(Arc<ServerConfig>, Vec<u8>), String> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?;
    let Some(leaf) = chain.first().map(|c| c.as_ref().to_vec()) else {
        return Err(format!("{} holds no certificate", cert.display()));
    };
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| format!("the certificate and key do not fit together: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), leaf))
}
