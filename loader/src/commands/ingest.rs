//! `xray-loader ingest FILE...`: validate scan payload files and insert each through
//! `xray.ingest_scan`, one transaction per file.
//!
//! 1. Every file is read (`-` is standard input) and validated against the payload
//!    contract; a bad file gets one `xray-loader: <file>: <problem>` line and is skipped.
//! 2. One connection is opened for the valid files (none valid: exit 1, no connection).
//! 3. Each payload is ingested; stdout gets `<file>\t<scan_id>\t<status>\tnew=N changed=N fixed=N`.
//! 4. Exit 1 when any file failed, else 0.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use serde_json::Value;
use xray_engine::ScanPayload;

use crate::db;
use crate::output::fail;

/// `xray-loader ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Payload files; `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<String>,
}

pub async fn run(args: IngestArgs, cli_db: Option<String>) -> Result<ExitCode> {
    let url = cli_db.as_deref().unwrap_or(db::DEFAULT_DATABASE_URL);
    let files = &args.files;
    let mut failed = false;
    let mut valid = Vec::new();
    for f in files {
        match load_payload(f) {
            Ok(v) => valid.push((f, v)),
            Err(e) => {
                fail(format!("{f}: {e:#}"));
                failed = true;
            }
        }
    }
    if valid.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    tracing::info!(db = %db::describe(url), files = valid.len(), "ingesting");
    let mut client = match db::connect(url).await {
        Ok(c) => c,
        Err(e) => {
            for (f, _) in &valid {
                fail(format!("{f}: {e:#}"));
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut stdout = std::io::stdout().lock();
    for (f, payload) in valid {
        match db::ingest(&mut client, &payload).await {
            Ok(outcome) => {
                writeln!(stdout, "{}", outcome.line(f)).context("cannot write to stdout")?;
                stdout.flush().ok();
            }
            Err(e) => {
                fail(format!("{f}: {e:#}"));
                failed = true;
            }
        }
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

fn read_input(file: &str) -> Result<String> {
    if file == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(file).map_err(|e| anyhow!("cannot read: {e}"))
    }
}

/// Parses and validates a payload file; the error names the field.
fn load_payload(file: &str) -> Result<Value> {
    let text = read_input(file)?;
    let value: Value = serde_json::from_str(&text).map_err(|e| anyhow!("invalid payload: malformed JSON: {e}"))?;
    ScanPayload::from_value(&value).map_err(|e| anyhow!("invalid payload: {e}"))?;
    Ok(value)
}
