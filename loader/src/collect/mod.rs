//! The machinery of `xray-loader collect` (the command is `commands/collect.rs`):
//! settings resolved before the scan, the scanner run, the bundle and its ingest.

pub mod bundle;
pub mod scanner;
pub mod settings;
