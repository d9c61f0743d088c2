//! Kafka message keys for people.
//!
//! Partitioning by person keeps one person's events in order, but a key is
//! visible to anyone who can read the topic, so it must not be the ID
//! number. The key is a keyed hash (HMAC-SHA256) of the normalised number
//! under a secret from configuration: stable for a deployment, useless for
//! recovering the number without the secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::CitizenId;

/// Turns citizen IDs into opaque, stable partition keys.
#[derive(Clone)]
pub struct PersonKeyer {
    secret: Vec<u8>,
}

/// The key secret is unusable.
#[derive(Debug, thiserror::Error)]
#[error("the person key secret must be at least 16 bytes, found {found}")]
pub struct WeakSecret {
    /// Bytes given.
    pub found: usize,
}

impl PersonKeyer {
    /// A keyer for the deployment's secret.
    pub fn new(secret: &[u8]) -> Result<Self, WeakSecret> {
        if secret.len() < 16 {
            return Err(WeakSecret {
                found: secret.len(),
            });
        }
        Ok(Self {
            secret: secret.to_vec(),
        })
    }

    /// The partition key for a person: 32 hex characters.
    pub fn key(&self, id: &CitizenId) -> String {
        // HMAC accepts keys of any length, so new_from_slice cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            return String::new();
        };
        mac.update(b"person:");
        mac.update(id.as_str().as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

impl std::fmt::Debug for PersonKeyer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PersonKeyer(<secret>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_stable_opaque_and_depends_on_secret() {
        let id = CitizenId::parse("330106198703154214").unwrap();
        let one = PersonKeyer::new(b"0123456789abcdef").unwrap();
        let two = PersonKeyer::new(b"fedcba9876543210").unwrap();
        assert_eq!(one.key(&id), one.key(&id));
        assert_ne!(one.key(&id), two.key(&id));
        assert_eq!(one.key(&id).len(), 32);
        assert!(!one.key(&id).contains("4214"));
        assert!(PersonKeyer::new(b"short").is_err());
    }
}
