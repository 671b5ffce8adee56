//! Database access: connection, `xray.ingest_scan`, `xray.exposure_events`.

use std::str::FromStr;

use anyhow::{anyhow, Context, Result};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};
use uuid::Uuid;
use xray_engine::EngineConfig;

pub const DEFAULT_DATABASE_URL: &str = "host=/var/run/postgresql dbname=postgres";

/// The database: --database-url / $DATABASE_URL, else the configuration's, else the default.
pub fn database_url(cli: Option<String>, configured: Option<&str>) -> String {
    cli.or_else(|| configured.map(str::to_string))
        .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string())
}

/// The connection string with any password replaced by `***`, for logs and
/// messages. Handles both URL (`postgres://u:pw@h/db?password=pw`) and
/// key/value (`password=pw`, `password='p w'`) forms.
pub fn redact_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..].find(['/', '?']).map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest_start + colon + 1..rest_start + at, "***");
            }
        }
    }
    redact_password_params(&out)
}

fn redact_password_params(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = find_password_key(rest) {
        let value_start = i + "password=".len();
        out.push_str(&rest[..value_start]);
        out.push_str("***");
        let tail = &rest[value_start..];
        let value_len = if let Some(q) = tail.strip_prefix('\'') {
            // Quoted key/value: ends at the next unescaped quote.
            let mut len = 1;
            let mut chars = q.char_indices();
            loop {
                match chars.next() {
                    Some((_, '\\')) => {
                        chars.next();
                    }
                    Some((j, '\'')) => {
                        len += j + 1;
                        break;
                    }
                    Some(_) => {}
                    None => {
                        len = tail.len();
                        break;
                    }
                }
            }
            len
        } else {
            tail.find([' ', '&', '\t']).unwrap_or(tail.len())
        };
        rest = &tail[value_len..];
    }
    out.push_str(rest);
    out
}

fn find_password_key(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password=") {
        let at = from + i;
        let boundary = at == 0 || matches!(s.as_bytes()[at - 1], b' ' | b'?' | b'&' | b'\t');
        if boundary {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Where a connection string points, without secrets.
pub fn describe(url: &str) -> String {
    match tokio_postgres::Config::from_str(url) {
        Ok(c) => {
            let hosts: Vec<String> = c
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(s) => s.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .collect();
            format!(
                "host={} dbname={} user={}",
                hosts.join(","),
                c.get_dbname().unwrap_or("-"),
                c.get_user().unwrap_or("-")
            )
        }
        Err(_) => redact_url(url),
    }
}

/// One line for a database error: SQLSTATE, message, detail and hint.
pub fn pg_error(e: &tokio_postgres::Error) -> String {
    let text = match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
            if let Some(d) = db.detail() {
                s.push_str(&format!(" ({d})"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!(" hint: {h}"));
            }
            s
        }
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(e);
            while let Some(inner) = src {
                s.push_str(&format!(": {inner}"));
                src = inner.source();
            }
            s
        }
    };
    text.replace(['\n', '\r'], " ")
}

pub async fn connect(url: &str) -> Result<Client> {
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|e| anyhow!("invalid database URL {}: {}", redact_url(url), pg_error(&e)))?;
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| anyhow!("cannot connect to database ({}): {}", describe(url), pg_error(&e)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %pg_error(&e), "database connection closed");
        }
    });
    tracing::debug!(db = %describe(url), "connected");
    Ok(client)
}

/// The configuration tables as the database's ingest trigger will read them,
/// so a scan probes and judges symptoms by the same rules. One statement per
/// run; every role of the extension may call it.
pub async fn engine_config(client: &Client) -> Result<EngineConfig> {
    let row = client.query_one("SELECT xray.engine_config()", &[]).await.map_err(|e| {
        let hint = match e.code() {
            Some(c) if *c == SqlState::UNDEFINED_FUNCTION => "; it needs xray_pg 0.2.0 or later (ALTER EXTENSION xray_pg UPDATE)",
            Some(c) if *c == SqlState::INVALID_SCHEMA_NAME => "; is xray_pg installed (CREATE EXTENSION xray_pg)?",
            _ => "",
        };
        anyhow!("reading the engine configuration with xray.engine_config(): {}{hint}", pg_error(&e))
    })?;
    let value: Option<Value> = row
        .try_get(0)
        .map_err(|e| anyhow!("xray.engine_config(): {}", pg_error(&e)))?;
    let value = value.ok_or_else(|| anyhow!("xray.engine_config() returned NULL"))?;
    EngineConfig::from_json(&value).map_err(|e| anyhow!("xray.engine_config() of the database: {e}"))
}

/// The answer of `xray.ingest_scan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    pub scan_id: String,
    pub status: String,
    pub new_count: i64,
    pub changed_count: i64,
    pub fixed_count: i64,
}

impl IngestOutcome {
    pub fn line(&self, file: &str) -> String {
        format!(
            "{file}\t{}\t{}\tnew={} changed={} fixed={}",
            self.scan_id, self.status, self.new_count, self.changed_count, self.fixed_count
        )
    }
}

// The casts pin the result types whatever integer types the function uses.
const INGEST_SQL: &str = "SELECT scan_id::text, status::text, new_count::bigint, changed_count::bigint, \
     fixed_count::bigint FROM xray.ingest_scan($1::jsonb)";

/// Inserts one payload in its own transaction.
pub async fn ingest(client: &mut Client, payload: &Value) -> Result<IngestOutcome> {
    let tx = client.transaction().await.map_err(|e| anyhow!("{}", pg_error(&e)))?;
    let row = tx
        .query_one(INGEST_SQL, &[payload])
        .await
        .map_err(|e| anyhow!("{}", pg_error(&e)))?;
    let outcome = IngestOutcome {
        scan_id: row.try_get::<_, Option<String>>(0)?.unwrap_or_default(),
        status: row.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
        new_count: row.try_get::<_, Option<i64>>(2)?.unwrap_or(0),
        changed_count: row.try_get::<_, Option<i64>>(3)?.unwrap_or(0),
        fixed_count: row.try_get::<_, Option<i64>>(4)?.unwrap_or(0),
    };
    tx.commit()
        .await
        .map_err(|e| anyhow!("commit failed: {}", pg_error(&e)))?;
    Ok(outcome)
}

/// One row of `xray.exposure_events`.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub event_id: i64,
    pub scan_id: Option<String>,
    pub tenant_id: Option<String>,
    pub identity_key: Option<String>,
    pub event_type: Option<String>,
    pub risk_bucket: Option<String>,
    pub observed_host: Option<String>,
    pub port: Option<i32>,
    pub prev_material_hash: Option<String>,
    pub material_hash: Option<String>,
    pub evidence: Option<Value>,
    pub reopened: Option<bool>,
    pub created_at: Option<DateTime<Utc>>,
    pub detail: Option<String>,
}

const EVENTS_SQL: &str = "SELECT event_id::bigint, scan_id::text, tenant_id::text, identity_key::text, \
     event_type::text, risk_bucket::text, observed_host::text, port::int4, prev_material_hash::text, \
     material_hash::text, evidence::jsonb, reopened::bool, created_at::timestamptz, detail::text \
     FROM xray.exposure_events \
     WHERE ($1::timestamptz IS NULL OR created_at >= $1) AND ($2::uuid IS NULL OR tenant_id = $2) \
     ORDER BY event_id";

pub async fn events(client: &Client, since: Option<DateTime<Utc>>, tenant: Option<Uuid>) -> Result<Vec<EventRow>> {
    let rows = client
        .query(EVENTS_SQL, &[&since, &tenant])
        .await
        .map_err(|e| anyhow!("reading xray.exposure_events: {}", pg_error(&e)))?;
    rows.iter()
        .map(|r| {
            Ok(EventRow {
                event_id: r.try_get(0)?,
                scan_id: r.try_get(1)?,
                tenant_id: r.try_get(2)?,
                identity_key: r.try_get(3)?,
                event_type: r.try_get(4)?,
                risk_bucket: r.try_get(5)?,
                observed_host: r.try_get(6)?,
                port: r.try_get(7)?,
                prev_material_hash: r.try_get(8)?,
                material_hash: r.try_get(9)?,
                evidence: r.try_get(10)?,
                reopened: r.try_get(11)?,
                created_at: r.try_get(12)?,
                detail: r.try_get(13)?,
            })
        })
        .collect::<Result<Vec<_>, tokio_postgres::Error>>()
        .context("decoding xray.exposure_events")
}

fn ts(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

impl EventRow {
    pub fn to_json(&self) -> Value {
        json!({
            "event_id": self.event_id,
            "scan_id": self.scan_id,
            "tenant_id": self.tenant_id,
            "identity_key": self.identity_key,
            "event_type": self.event_type,
            "risk_bucket": self.risk_bucket,
            "observed_host": self.observed_host,
            "port": self.port,
            "prev_material_hash": self.prev_material_hash,
            "material_hash": self.material_hash,
            "evidence": self.evidence,
            "reopened": self.reopened,
            "created_at": ts(self.created_at),
            "detail": self.detail,
        })
    }
}

/// An aligned table for cron mail. Nothing at all for no events, so that
/// cron sends no mail.
pub fn events_table(rows: &[EventRow], with_tenant: bool) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut header = vec!["EVENT_ID", "CREATED_AT"];
    if with_tenant {
        header.push("TENANT");
    }
    header.extend(["EVENT", "BUCKET", "HOST", "PORT", "REOPENED", "DETAIL"]);
    let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "-".into());
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        let created = r
            .created_at
            .map_or_else(|| "-".into(), |t| t.to_rfc3339_opts(SecondsFormat::Secs, true));
        let mut row = vec![r.event_id.to_string(), created];
        if with_tenant {
            row.push(opt(&r.tenant_id));
        }
        row.push(opt(&r.event_type));
        row.push(opt(&r.risk_bucket));
        row.push(opt(&r.observed_host));
        row.push(r.port.map_or_else(|| "-".into(), |p| p.to_string()));
        row.push(if r.reopened == Some(true) {
            "yes".into()
        } else {
            "no".into()
        });
        // The detail is the readable form of the identity; fall back to the key.
        let detail = r
            .detail
            .clone()
            .or_else(|| r.identity_key.clone())
            .unwrap_or_else(|| "-".into());
        row.push(detail.replace(['\n', '\r', '\t'], " "));
        table.push(row);
    }
    let cols = table[0].len();
    let widths: Vec<usize> = (0..cols)
        .map(|c| table.iter().map(|row| row[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &table {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == cols {
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_in_both_forms() {
        assert_eq!(
            redact_url("postgres://xray:s3cret@db.example:5432/wt"),
            "postgres://xray:***@db.example:5432/wt"
        );
        assert_eq!(
            redact_url("postgresql://xray@db/wt?password=s3cret&sslmode=disable"),
            "postgresql://xray@db/wt?password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("host=db user=xray password=s3cret dbname=wt"),
            "host=db user=xray password=*** dbname=wt"
        );
        assert_eq!(
            redact_url("host=db password='s3 cr\\'et' dbname=wt"),
            "host=db password=*** dbname=wt"
        );
        assert_eq!(
            redact_url("host=/var/run/postgresql dbname=postgres"),
            "host=/var/run/postgresql dbname=postgres"
        );
        assert_eq!(redact_url("host=db PASSWORD=x"), "host=db PASSWORD=***");
        assert_eq!(redact_url("host=db xpassword=keep"), "host=db xpassword=keep");
    }

    #[test]
    fn describe_never_shows_the_password() {
        let d = describe("postgres://xray:s3cret@db.example:5432/wt");
        assert_eq!(d, "host=db.example dbname=wt user=xray");
        let d = describe("host=/var/run/postgresql dbname=postgres password=s3cret");
        assert!(!d.contains("s3cret"), "{d}");
    }

    fn row(id: i64, kind: &str, host: &str, port: i32, detail: &str) -> EventRow {
        EventRow {
            event_id: id,
            scan_id: Some("5ca10000-0000-4000-8000-000000000001".into()),
            tenant_id: Some("11111111-1111-1111-1111-111111111111".into()),
            identity_key: Some(format!("key-{id}")),
            event_type: Some(kind.into()),
            risk_bucket: Some("RB1".into()),
            observed_host: Some(host.into()),
            port: Some(port),
            prev_material_hash: None,
            material_hash: Some("ab".into()),
            evidence: Some(json!({"port": port})),
            reopened: Some(id == 12),
            created_at: DateTime::parse_from_rfc3339("2026-02-05T10:04:12.5Z")
                .ok()
                .map(|t| t.with_timezone(&Utc)),
            detail: Some(detail.into()),
        }
    }

    #[test]
    fn table_is_aligned_and_empty_for_no_events() {
        assert_eq!(events_table(&[], false), "");
        let t = events_table(
            &[
                row(7, "NEW", "203.0.113.10", 22, "svc:ssh|port:22"),
                row(12, "FIXED", "example.com", 443, "tls:old_versions"),
            ],
            false,
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "EVENT_ID  CREATED_AT            EVENT  BUCKET  HOST          PORT  REOPENED  DETAIL"
        );
        assert_eq!(
            lines[1],
            "7         2026-02-05T10:04:12Z  NEW    RB1     203.0.113.10  22    no        svc:ssh|port:22"
        );
        assert_eq!(
            lines[2],
            "12        2026-02-05T10:04:12Z  FIXED  RB1     example.com   443   yes       tls:old_versions"
        );
    }

    #[test]
    fn json_rows_use_utc_z() {
        let v = row(7, "NEW", "h", 22, "d").to_json();
        assert_eq!(v["created_at"], json!("2026-02-05T10:04:12.500Z"));
        assert_eq!(v["event_id"], json!(7));
        assert_eq!(v["evidence"]["port"], json!(22));
    }
}
