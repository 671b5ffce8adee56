//! `xray-loader events`: list exposure events (NEW / CHANGED / FIXED) ordered by event_id.
//!
//! 1. `--since` (RFC 3339) and `--tenant` (UUID) are checked before any connection.
//! 2. The events are read from the database.
//! 3. Stdout gets a table (nothing at all when there are no events, so cron sends no
//!    mail) or one JSON object per line. Exit 0.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, Result};
use chrono::{DateTime, Utc};
use clap::ValueEnum;
use uuid::Uuid;

use crate::db;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

/// `xray-loader events`.
#[derive(Debug, clap::Args)]
pub struct EventsArgs {
    /// Only events created at or after this time (RFC 3339, e.g. 2026-02-05T00:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// Only this tenant.
    #[arg(long)]
    pub tenant: Option<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
}

pub async fn run(args: EventsArgs, cli_db: Option<String>) -> Result<ExitCode> {
    let url = cli_db.as_deref().unwrap_or(db::DEFAULT_DATABASE_URL);
    let since: Option<DateTime<Utc>> = args
        .since
        .as_deref()
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| anyhow!("--since {s:?} is not an RFC 3339 time like 2026-02-05T00:00:00Z"))
        })
        .transpose()?;
    let tenant: Option<Uuid> = args
        .tenant
        .as_deref()
        .map(|t| Uuid::parse_str(t).map_err(|_| anyhow!("--tenant {t:?} is not a UUID")))
        .transpose()?;
    let client = db::connect(url).await?;
    let rows = db::events(&client, since, tenant).await?;
    let mut stdout = std::io::stdout().lock();
    match args.format {
        OutputFormat::Table => write!(stdout, "{}", db::events_table(&rows, tenant.is_none()))?,
        OutputFormat::Json => {
            for r in &rows {
                writeln!(stdout, "{}", r.to_json())?;
            }
        }
    }
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}
