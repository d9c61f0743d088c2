//! Who is calling: client certificates and bearer tokens mapped to
//! departments.
//!
//! Both are configured in a TOML file that stores only SHA-256 hashes
//! (of a token, or of a certificate's DER bytes), so the file can be read
//! by operators without handing out the credentials themselves. A call
//! whose TLS client certificate is listed acts for that certificate's
//! department; otherwise it must carry a known bearer token. Anything else
//! is refused with UNAUTHENTICATED before any service code runs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tonic::{Request, Status};

use crate::error::GatewayError;

/// The department a caller acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The department, as named in the tokens file.
    pub department: String,
    /// Who it is, for the audit log: `token:` and the first twelve hex
    /// digits of the token's hash, or `cert:` and a certificate's subject.
    pub principal: String,
}

/// One entry of the tokens file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenEntry {
    /// The department this token acts for.
    pub department: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
}

/// One pinned client certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertificateEntry {
    /// The department this certificate acts for.
    pub department: String,
    /// Hex SHA-256 of the certificate's DER bytes.
    pub sha256: String,
}

/// The tokens file: `[[token]]` and `[[certificate]]` entries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TokensFile {
    /// The tokens.
    #[serde(default)]
    pub token: Vec<TokenEntry>,
    /// The client certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificate: Vec<CertificateEntry>,
}

/// The hex SHA-256 of a certificate's DER bytes.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// The hex SHA-256 of a token. Tokens are long random strings, so a plain
/// hash is enough; a password hash would only slow every call.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Known token hashes, certificate fingerprints and their departments.
#[derive(Debug, Clone, Default)]
pub struct TokenRegistry {
    departments: HashMap<String, String>,
    certificates: HashMap<String, String>,
}

impl TokenRegistry {
    /// Loads the tokens file.
    pub fn load(path: &Path) -> Result<Self, GatewayError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GatewayError::TokensRead {
            file: file.clone(),
            source,
        })?;
        let parsed: TokensFile =
            toml::from_str(&text).map_err(|source| GatewayError::TokensParse { file, source })?;
        let mut registry = Self::from_entries(parsed.token);
        registry.certificates = parsed
            .certificate
            .into_iter()
            .map(|entry| (entry.sha256.to_ascii_lowercase(), entry.department))
            .collect();
        Ok(registry)
    }

    /// A registry of the given entries.
    pub fn from_entries(entries: Vec<TokenEntry>) -> Self {
        let departments = entries
            .into_iter()
            .map(|entry| (entry.sha256.to_ascii_lowercase(), entry.department))
            .collect();
        Self {
            departments,
            certificates: HashMap::new(),
        }
    }

    /// How many tokens and certificates are known.
    pub fn len(&self) -> usize {
        self.departments.len() + self.certificates.len()
    }

    /// Whether nothing is known (every call will be refused).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lets the certificate with this SHA-256 fingerprint act for
    /// `department`.
    pub fn pin_certificate(&mut self, department: &str, fingerprint: &str) {
        self.certificates
            .insert(fingerprint.to_ascii_lowercase(), department.to_string());
    }

    /// The caller a client certificate (DER) belongs to.
    pub fn certificate_caller(&self, der: &[u8]) -> Option<Caller> {
        let print = fingerprint(der);
        let department = self.certificates.get(&print)?;
        Some(Caller {
            department: department.clone(),
            principal: format!("cert:{}", &print[..12]),
        })
    }

    /// The caller a token belongs to.
    pub fn caller(&self, token: &str) -> Option<Caller> {
        let hash = hash_token(token);
        let department = self.departments.get(&hash)?;
        Some(Caller {
            department: department.clone(),
            principal: format!("token:{}", &hash[..12]),
        })
    }
}

/// A tonic interceptor that admits only known tokens and records the
/// caller in the request's extensions.
pub fn authenticate(
    registry: Arc<TokenRegistry>,
) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut request: Request<()>| {
        let certified = request.peer_certs().and_then(|certs| {
            certs
                .first()
                .and_then(|leaf| registry.certificate_caller(leaf.as_ref()))
        });
        if let Some(caller) = certified {
            request.extensions_mut().insert(caller);
            return Ok(request);
        }
        let presented = request.peer_certs().is_some_and(|certs| !certs.is_empty());
        let header = request.metadata().get("authorization").ok_or_else(|| {
            Status::unauthenticated(if presented {
                "the client certificate is not pinned to any department, and no bearer \
                 token was sent"
            } else {
                "missing bearer token"
            })
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("authorization must be 'Bearer <token>'"))?;
        let caller = registry
            .caller(token.trim())
            .ok_or_else(|| Status::unauthenticated("unknown token"))?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Arc<TokenRegistry> {
        Arc::new(TokenRegistry::from_entries(vec![TokenEntry {
            department: "court".into(),
            sha256: hash_token("s3cret-token"),
        }]))
    }

    fn request(header: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = header {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        request
    }

    #[test]
    fn known_token_maps_to_its_department() {
        let check = authenticate(registry());
        let admitted = check(request(Some("Bearer s3cret-token"))).unwrap();
        assert_eq!(
            admitted.extensions().get::<Caller>().unwrap().department,
            "court"
        );
    }

    #[test]
    fn missing_malformed_and_unknown_tokens_are_unauthenticated() {
        let check = authenticate(registry());
        for header in [None, Some("s3cret-token"), Some("Bearer nope")] {
            let status = check(request(header)).unwrap_err();
            assert_eq!(status.code(), tonic::Code::Unauthenticated, "{header:?}");
        }
    }

    #[test]
    fn tokens_file_stores_hashes_only() {
        let text = toml::to_string(&TokensFile {
            token: vec![TokenEntry {
                department: "court".into(),
                sha256: hash_token("abc"),
            }],
            certificate: vec![],
        })
        .unwrap();
        assert!(!text.contains("\"abc\""));
        let parsed: TokensFile = toml::from_str(&text).unwrap();
        assert_eq!(
            TokenRegistry::from_entries(parsed.token)
                .caller("abc")
                .unwrap()
                .department,
            "court"
        );
    }
}
