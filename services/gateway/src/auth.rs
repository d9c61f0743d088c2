//! Who is calling: bearer tokens mapped to departments.
//!
//! Tokens are configured in a TOML file that stores only their SHA-256
//! hashes, so the file can be read by operators without handing out the
//! tokens themselves. A call without a token, or with one no entry knows,
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
}

/// One entry of the tokens file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenEntry {
    /// The department this token acts for.
    pub department: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
}

/// The tokens file: `[[token]]` entries.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TokensFile {
    /// The entries.
    #[serde(default)]
    pub token: Vec<TokenEntry>,
}

/// The hex SHA-256 of a token. Tokens are long random strings, so a plain
/// hash is enough; a password hash would only slow every call.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Known token hashes and their departments.
#[derive(Debug, Clone, Default)]
pub struct TokenRegistry {
    departments: HashMap<String, String>,
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
        Ok(Self::from_entries(parsed.token))
    }

    /// A registry of the given entries.
    pub fn from_entries(entries: Vec<TokenEntry>) -> Self {
        let departments = entries
            .into_iter()
            .map(|entry| (entry.sha256.to_ascii_lowercase(), entry.department))
            .collect();
        Self { departments }
    }

    /// How many tokens are known.
    pub fn len(&self) -> usize {
        self.departments.len()
    }

    /// Whether no token is known (every call will be refused).
    pub fn is_empty(&self) -> bool {
        self.departments.is_empty()
    }

    /// The caller a token belongs to.
    pub fn caller(&self, token: &str) -> Option<Caller> {
        let department = self.departments.get(&hash_token(token))?;
        Some(Caller {
            department: department.clone(),
        })
    }
}

/// A tonic interceptor that admits only known tokens and records the
/// caller in the request's extensions.
pub fn authenticate(
    registry: Arc<TokenRegistry>,
) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |mut request: Request<()>| {
        let header = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing bearer token"))?;
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
