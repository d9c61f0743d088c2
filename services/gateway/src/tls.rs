//! Mutual TLS: the gateway's certificate, and the CA whose client
//! certificates it accepts.
//!
//! A client certificate must chain to the configured client CA; which
//! department it acts for is then decided by its SHA-256 fingerprint in the
//! tokens file (`[[certificate]]` entries), so that a certificate the CA
//! signed for one department cannot act for another. Clients without a
//! certificate may still present a bearer token over the same TLS port.
//! Files come from configuration; none is kept in the repository.

use std::path::PathBuf;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::error::GatewayError;

/// Where the gateway's TLS material lives.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The server certificate chain (PEM).
    pub cert: PathBuf,
    /// The server's private key (PEM).
    pub key: PathBuf,
    /// The CA that signs client certificates (PEM); without it, TLS only
    /// encrypts and callers authenticate by token.
    pub client_ca: Option<PathBuf>,
}

fn read(what: &'static str, path: &PathBuf) -> Result<Vec<u8>, GatewayError> {
    let bytes = std::fs::read(path).map_err(|error| GatewayError::Tls {
        what,
        file: path.display().to_string(),
        reason: error.to_string(),
    })?;
    if !String::from_utf8_lossy(&bytes).contains("-----BEGIN") {
        return Err(GatewayError::Tls {
            what,
            file: path.display().to_string(),
            reason: "not a PEM file (no -----BEGIN line)".into(),
        });
    }
    Ok(bytes)
}

impl TlsFiles {
    /// The server configuration.
    pub fn server_config(&self) -> Result<ServerTlsConfig, GatewayError> {
        let cert = read("certificate", &self.cert)?;
        let key = read("key", &self.key)?;
        let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        if let Some(ca) = &self.client_ca {
            let ca = read("client CA", ca)?;
            config = config
                .client_ca_root(Certificate::from_pem(ca))
                .client_auth_optional(true);
        }
        Ok(config)
    }
}

/// The SHA-256 fingerprint (hex) of a certificate in PEM, as the tokens
/// file records it.
pub fn pem_fingerprint(pem: &str) -> Option<String> {
    use base64::Engine;
    let body: String = pem
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()?;
    // A certificate is a DER SEQUENCE; anything else (an empty body, a
    // key) is not one.
    (der.len() > 100 && der[0] == 0x30).then(|| crate::auth::fingerprint(&der))
}
