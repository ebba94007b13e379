//! HTTPS for the HTTP listener (`[http] tls_cert`, `tls_key`): rustls, with
//! the certificate chain and key read once at start (a renewed
//! certificate takes a restart, as the listen address does).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// The acceptor for a PEM certificate chain and private key, or what is
/// wrong with them, naming the file.
pub fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .map_err(|e| format!("[http] tls_cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "[http] tls_cert {}: no CERTIFICATE in it",
            cert.display()
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("[http] tls_key {}: {e}", key.display()))?;
    // ring, not aws-lc-rs: it builds with the C compiler alone. rustls
    // 0.23.48 deprecated it for lacking post-quantum key exchange, which a
    // health check and a metrics scrape do not need.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| format!("[http] tls_cert and tls_key: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
