//! The gateway: the block data shared over gRPC, to authenticated callers.
//!
//! Each caller presents a bearer token that maps to a department; the
//! PersonLookup service answers from the store, and gRPC health and
//! reflection are served beside it so standard tools (grpcurl, load
//! balancers) work without extra configuration.

pub mod auth;
pub mod error;
pub mod lookup;
pub mod office;
pub mod server;

/// Generated protocol code.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("blockhub.v1");

    /// The encoded descriptors of proto/, for reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        tonic::include_file_descriptor_set!("blockhub_descriptor");
}

pub use auth::{Caller, TokenEntry, TokenRegistry, TokensFile, hash_token};
pub use error::GatewayError;
pub use server::BoundGateway;
