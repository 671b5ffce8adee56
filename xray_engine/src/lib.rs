//! The XRAY engine. Everything here is deterministic and free of I/O so that
//! it can be tested with plain `cargo test` and reused by the extension
//! (`xray_pg`) and the loader. Scanner output parsers live in `xray_parsers`,
//! the nweb formats in `nweb`.
//!
//! Pipeline (docs/contract.md §D-6): [`contract::ScanPayload`] →
//! [`normalize::normalize`] (RB1–RB7, identity, material hash, dedupe) →
//! [`diff::diff_normalized`] (NEW / CHANGED / FIXED with authoritative absence).

mod buckets;
pub mod canon;
pub mod config;
pub mod contract;
pub mod diff;
pub mod identity;
pub mod inventory;
mod lenient;
pub mod memory;
pub mod normalize;

pub use config::EngineConfig;
pub use contract::{ContractError, ScanPayload};
pub use diff::{diff_normalized, diff_scan, DiffOutcome, Event, EventType, ExposureStatus, PriorState};
pub use identity::RiskBucket;
pub use normalize::{normalize, Exposure};
