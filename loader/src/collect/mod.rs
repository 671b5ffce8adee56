//! The machinery of `xray-loader collect` (the command is `commands/collect.rs`):
//! settings resolved before the scan, work taken from a dispatcher, the scanner run, the
//! screenshots, the bundle and its ingest.

pub mod bundle;
pub mod scanner;
pub mod screenshot;
pub mod settings;
pub mod work;
