//! `xray-loader example-config` and `xray-loader example-nweb-config`: print a commented
//! configuration file (for `scan`/`collect`, and for `tail`/`check`/`pin`) on stdout.

use std::process::ExitCode;

/// The scan configuration (`config::EXAMPLE`).
pub fn run_scan() -> ExitCode {
    print!("{}", crate::config::EXAMPLE);
    ExitCode::SUCCESS
}

/// The nweb configuration (`chain::config::EXAMPLE`).
pub fn run_nweb() -> ExitCode {
    print!("{}", crate::chain::config::EXAMPLE);
    ExitCode::SUCCESS
}
