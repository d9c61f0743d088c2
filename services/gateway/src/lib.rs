//! The gateway: the block data shared over gRPC, to authenticated callers.
//!
//! Each caller presents a client certificate or a bearer token that maps
//! to a department; the policy decides what that department may call and
//! see, and every decision is chained into the audit log before anything
//! is shared. gRPC health and reflection are served beside the services so
//! standard tools (grpcurl, load balancers) work without extra
//! configuration.

pub mod access;
pub mod audit_topic;
pub mod auth;
pub mod changes;
pub mod error;
pub mod lookup;
pub mod office;
pub mod policy;
pub mod server;
pub mod sync_health;
pub mod tls;

/// Generated protocol code.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("blockhub.v1");

    /// The encoded descriptors of proto/, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("blockhub_descriptor");
}

pub use access::{Access, AuditWriter, PolicyHandle};
pub use auth::{Caller, CertificateEntry, TokenEntry, TokenRegistry, TokensFile, hash_token};
pub use error::GatewayError;
pub use policy::{DEFAULT_POLICY, Policy};
pub use server::{BoundGateway, GatewayOptions, HealthOptions};
pub use tls::TlsFiles;
