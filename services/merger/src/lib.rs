//! The merger: every source topic in, one block data store out.
//!
//! It consumes all source topics in one consumer group, decodes each event
//! from its writer schema and applies batches to the store in one database
//! transaction together with the consumer offsets, so that a crash at any
//! moment neither loses nor doubles a fact.

pub mod consume;
pub mod error;
pub mod lag;
pub mod profile;
pub mod store;

pub use consume::{Membership, MergerConfig, run};
pub use error::MergerError;
pub use lag::{PartitionLag, lag};
pub use profile::{LoopProfile, profile, reset_profile};
pub use store::{Backend, Store};
