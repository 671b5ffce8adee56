//! Pure Watchtower logic. Everything here is deterministic and free of I/O so
//! that it can be tested with plain `cargo test` and reused by the extension
//! (`xray_pg`) and the loader.

pub mod nweb;
