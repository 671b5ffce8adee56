//! nweb: scanprint, canonical JSON and Merkle roots (see design D6).

mod error;
pub mod jcs;
pub mod merkle;

pub use error::NwebError;
