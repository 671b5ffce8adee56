//! Ingest inside PostgreSQL: the same payload bytes INSERTed into a plain
//! `bare(payload jsonb)` table and into `xray.scan_results` (through the
//! ingest trigger), in the same run, each in a fresh connection so that the
//! backend's VmHWM is the peak of that one statement.

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls};
use xray_core::synth::{ChurnStats, Fleet};

use crate::util::{proc_mem, ProcMem, Res};

/// Pre-serialised JSON sent as a jsonb parameter, so that both INSERTs get
/// identical bytes and client-side serialisation is not timed.
#[derive(Debug)]
pub struct RawJsonb<'a>(pub &'a [u8]);

impl ToSql for RawJsonb<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::JSONB {
            out.put_u8(1); // jsonb binary format version
        }
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB || *ty == Type::JSON
    }
    to_sql_checked!();
}

/// A database error with its message (tokio-postgres' Display says only "db error").
pub fn pg_err(e: tokio_postgres::Error) -> Box<dyn std::error::Error + Send + Sync> {
    match e.as_db_error() {
        Some(d) => format!("{}: {}", d.code().code(), d.message()).into(),
        None => Box::new(e),
    }
}

pub async fn connect(url: &str) -> Res<Client> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| format!("cannot connect to PostgreSQL ({url}): {e}; run scripts/setup.sh"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

pub fn db_url(admin: &str, name: &str) -> String {
    if admin.contains("://") {
        let (head, tail) = admin.split_at(admin.find("://").unwrap() + 3);
        let (authority, rest) = tail.split_once('/').unwrap_or((tail, ""));
        let params = rest
            .split_once('?')
            .map(|(_, p)| format!("?{p}"))
            .unwrap_or_default();
        format!("{head}{authority}/{name}{params}")
    } else {
        let kept: Vec<&str> = admin
            .split_whitespace()
            .filter(|kv| !kv.starts_with("dbname="))
            .collect();
        format!("{} dbname={name}", kept.join(" "))
    }
}

/// One timed statement.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub ms: f64,
    pub after: Option<ProcMem>,
}

impl Sample {
    /// VmHWM of the backend after the statement, MiB.
    pub fn hwm_mib(&self) -> Option<f64> {
        self.after.map(|a| a.hwm as f64 / 1024.0)
    }
    /// Peak private memory estimate: VmHWM minus the shared-buffer and file
    /// pages mapped at the end (those only grow), MiB.
    pub fn private_peak_mib(&self) -> Option<f64> {
        self.after
            .map(|a| a.hwm.saturating_sub(a.rss_shmem + a.rss_file) as f64 / 1024.0)
    }
}

/// `perf record` on a backend while one statement runs (opt-in, `--profile`).
pub struct Profiler {
    pub dir: std::path::PathBuf,
    pub label: String,
}

fn start_perf(p: &Profiler, pid: i32) -> Option<(Child, std::path::PathBuf)> {
    let data = p.dir.join(format!("perf-{}.data", p.label));
    let child = Command::new("perf")
        .args(["record", "-F", "499", "--call-graph", "dwarf,32768", "-o"])
        .arg(&data)
        .args(["-p", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(std::time::Duration::from_millis(300));
    Some((child, data))
}

/// Inclusive shares of the frames that matter for the ingest path.
const PROFILE_FRAMES: &[(&str, &str)] = &[
    (
        "ExecBRInsertTriggers",
        "the BEFORE INSERT trigger, all of it",
    ),
    (
        "jsonb_recv",
        "the INSERT parameter: JSON text to jsonb (the bare INSERT does this too)",
    ),
    (
        "heap_toast_insert_or_update",
        "storing the row: TOAST (the bare INSERT does this too)",
    ),
    (
        "pglz_compress",
        "  of which pglz compression of the payload",
    ),
    (
        "FromDatum>::from_polymorphic_datum",
        "pgrx JsonB argument: jsonb to text to serde_json::Value",
    ),
    ("ScanPayload::from_value", "xray_core: Value to ScanPayload"),
    (
        "xray_core::normalize::normalize",
        "xray_core: normalise (identity, material hash)",
    ),
    ("xray_core::diff::diff_normalized", "xray_core: diff"),
    (
        "xray_pg::ingest::plan",
        "duplicate/stale checks, prior-state SELECT, normalise, diff",
    ),
    (
        "jsonb_in",
        "JSON text to jsonb inside SQL statements (a $n::jsonb cast of payload text)",
    ),
    (
        "eval_const_expressions",
        "  the planner folding such a cast (parses the whole payload)",
    ),
    (
        "xray_pg::ingest::apply",
        "set-based writes: events, exposures, touch, fix, asset_scans",
    ),
    (
        "xray_pg::ingest::record_inventory",
        "xray.record_inventory(payload) (0.2.0)",
    ),
    ("fmgr_sql", "  SQL-language functions executing"),
    (
        "xray_pg::ingest::json_text",
        "serialising row sets for jsonb_to_recordset",
    ),
    (
        "heap_modify_tuple",
        "filling the trigger row's columns (heap_modify_tuple per column)",
    ),
    ("serde_json::ser::to_string", "serde_json::to_string (any)"),
];

fn stop_perf(p: &Profiler, mut child: Child, data: &std::path::Path) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let report = p.dir.join(format!("perf-{}.txt", p.label));
    let out = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--children",
            "--percent-limit",
            "0.3",
            "--sort",
            "symbol",
            "-g",
            "none",
            "-i",
        ])
        .arg(data)
        .output();
    let Ok(out) = out else { return };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut summary = format!(
        "# {}: inclusive share of backend CPU samples (perf --call-graph dwarf)\n",
        p.label
    );
    for (frame, what) in PROFILE_FRAMES {
        let pct = text
            .lines()
            .filter(|l| l.contains(frame))
            .filter_map(|l| {
                l.split_whitespace()
                    .next()?
                    .trim_end_matches('%')
                    .parse::<f64>()
                    .ok()
            })
            .fold(0.0f64, f64::max);
        summary.push_str(&format!("{pct:6.1}%  {frame:<40} {what}\n"));
    }
    summary.push_str("\n# full report (children, symbol)\n");
    summary.push_str(&text);
    let _ = std::fs::write(&report, summary);
    eprintln!("[bench] profile written to {}", report.display());
}

/// Runs `sql` with `bytes` as its only parameter in a fresh connection.
pub async fn measure(
    url: &str,
    sql: &str,
    bytes: &[u8],
    profile: Option<&Profiler>,
) -> Res<Sample> {
    let client = connect(url).await?;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await?
        .get(0);
    let stmt = client
        .prepare_typed(sql, &[Type::JSONB])
        .await
        .map_err(pg_err)?;
    let perf = profile.and_then(|p| start_perf(p, pid));
    let t = Instant::now();
    client
        .execute(&stmt, &[&RawJsonb(bytes)])
        .await
        .map_err(pg_err)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let after = proc_mem(pid);
    if let (Some(p), Some((child, data))) = (profile, perf) {
        stop_perf(p, child, &data);
    }
    drop(client);
    Ok(Sample { ms, after })
}

/// Largest scan sent as one payload. A scan of 100k endpoints is about
/// 280 MB of JSON, over jsonb's 256 MB limit, so bigger scans are split by
/// asset into payloads of at most this many endpoints (`Fleet::payload_shard`).
pub const MAX_PAYLOAD_ENDPOINTS: usize = 25_000;

/// One scan of one repetition (summed over its payloads when split).
#[derive(Debug, Clone)]
pub struct ScanRun {
    pub kind: &'static str,
    pub payloads: usize,
    pub payload_bytes: usize,
    pub bare: Sample,
    pub trigger: Sample,
    pub status: String,
    pub current: i64,
    pub prior: i64,
    pub new: i64,
    pub changed: i64,
    pub fixed: i64,
    pub held_open: i64,
}

impl ScanRun {
    pub fn ratio(&self) -> f64 {
        self.trigger.ms / self.bare.ms
    }
    /// Exposures processed (current + prior) per second of trigger INSERT.
    pub fn exposures_per_s(&self) -> f64 {
        (self.current + self.prior) as f64 / (self.trigger.ms / 1e3)
    }
}

/// One fresh database, three scans (first, no-change rescan, 10 % churn).
pub async fn run_size(
    admin_url: &str,
    seed: u64,
    endpoints: usize,
    rep: usize,
    profile_dir: Option<&std::path::Path>,
) -> Res<(Vec<ScanRun>, ChurnStats)> {
    let admin = connect(admin_url).await?;
    let name = format!("xray_bench_{endpoints}_{rep}_{}", std::process::id());
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .map_err(pg_err)?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(pg_err)?;
    let url = db_url(admin_url, &name);
    let result = run_scans(&url, seed, endpoints, profile_dir).await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .map_err(pg_err)?;
    result
}

fn add(total: &mut Sample, s: Sample) {
    total.ms += s.ms;
    total.after = match (total.after, s.after) {
        (Some(a), Some(b)) if a.hwm >= b.hwm => Some(a),
        (_, b) => b,
    };
}

async fn run_scans(
    url: &str,
    seed: u64,
    endpoints: usize,
    profile_dir: Option<&std::path::Path>,
) -> Res<(Vec<ScanRun>, ChurnStats)> {
    let c = connect(url).await?;
    c.batch_execute("CREATE EXTENSION xray_pg; CREATE TABLE bare (payload jsonb)")
        .await
        .map_err(pg_err)?;
    // Every repetition gets the same bytes, in its own fresh database.
    let fleet = Fleet::generate(seed, endpoints, 0);
    let (churned, churn_stats) = fleet.churn(0.10, 1);
    let shards = endpoints.div_ceil(MAX_PAYLOAD_ENDPOINTS).max(1);
    let scans: [(&'static str, &Fleet, u32); 3] = [
        ("first scan", &fleet, 0),
        ("no-change rescan", &fleet, 1),
        ("10 % churn rescan", &churned, 2),
    ];
    let mut runs = Vec::new();
    for (kind, f, idx) in scans {
        let prior: i64 = c
            .query_one(
                "SELECT count(*) FROM xray.exposures WHERE tenant_id = $1::text::uuid AND status <> 'fixed'",
                &[&f.tenant_id],
            )
            .await.map_err(pg_err)?
            .get(0);
        let mut run = ScanRun {
            kind,
            payloads: shards,
            payload_bytes: 0,
            bare: Sample::default(),
            trigger: Sample::default(),
            status: String::new(),
            current: 0,
            prior,
            new: 0,
            changed: 0,
            fixed: 0,
            held_open: 0,
        };
        for shard in 0..shards {
            let value = f.payload_shard(idx, shard, shards);
            let scan_id = value["scan"]["scan_id"].as_str().unwrap().to_string();
            let bytes = serde_json::to_vec(&value)?;
            drop(value);
            run.payload_bytes += bytes.len();
            c.batch_execute("CHECKPOINT").await.map_err(pg_err)?;
            let bare_profiler = profile_dir
                .filter(|_| idx == 1 && shard == 0)
                .map(|d| Profiler {
                    dir: d.to_path_buf(),
                    label: format!("{endpoints}-rescan-bare"),
                });
            let sql = "INSERT INTO bare VALUES ($1)";
            add(
                &mut run.bare,
                measure(url, sql, &bytes, bare_profiler.as_ref()).await?,
            );
            c.batch_execute("CHECKPOINT").await.map_err(pg_err)?;
            let profiler = profile_dir
                .filter(|_| idx == 1 && shard == 0)
                .map(|d| Profiler {
                    dir: d.to_path_buf(),
                    label: format!("{endpoints}-rescan"),
                });
            let sql = "INSERT INTO xray.scan_results (payload) VALUES ($1)";
            add(
                &mut run.trigger,
                measure(url, sql, &bytes, profiler.as_ref()).await?,
            );
            let row = c
                .query_one(
                    "SELECT status, exposure_count, new_count, changed_count, fixed_count, held_open_count
                       FROM xray.scan_results WHERE scan_id = $1::text::uuid",
                    &[&scan_id],
                )
                .await.map_err(pg_err)?;
            let get = |i: usize| -> i64 { i64::from(row.get::<_, i32>(i)) };
            let status: String = row.get(0);
            if run.status.is_empty() || status != "applied" {
                run.status = status;
            }
            run.current += get(1);
            run.new += get(2);
            run.changed += get(3);
            run.fixed += get(4);
            run.held_open += get(5);
        }
        runs.push(run);
    }
    Ok((runs, churn_stats))
}

async fn fresh_db(admin: &Client, name: &str) -> Res<()> {
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .map_err(pg_err)?;
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .map_err(pg_err)?;
    Ok(())
}

/// The SQL Merkle function, if this build of the extension has one: its
/// signature, e.g. `nweb_merkle_root(text)`.
pub async fn merkle_function(admin_url: &str) -> Res<Option<String>> {
    let admin = connect(admin_url).await?;
    let name = format!("xray_bench_merkle_{}", std::process::id());
    fresh_db(&admin, &name).await?;
    let url = db_url(admin_url, &name);
    let found = async {
        let c = connect(&url).await?;
        c.batch_execute("CREATE EXTENSION xray_pg")
            .await
            .map_err(pg_err)?;
        let row = c
            .query_opt(
                "SELECT p.oid::regprocedure::text FROM pg_proc p
                  WHERE p.proname = 'nweb_merkle_root'
                  ORDER BY pg_catalog.pg_get_function_identity_arguments(p.oid) <> 'text'
                  LIMIT 1",
                &[],
            )
            .await
            .map_err(pg_err)?;
        Res::Ok(row.map(|r| r.get::<_, String>(0)))
    }
    .await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .map_err(pg_err)?;
    found
}

/// Times `SELECT <sig>($1)` over the JSONL text in a fresh database.
pub async fn merkle_in_db(
    admin_url: &str,
    signature: &str,
    text: &str,
    reps: usize,
) -> Res<(f64, String)> {
    let admin = connect(admin_url).await?;
    let name = format!("xray_bench_merkle_{}", std::process::id());
    fresh_db(&admin, &name).await?;
    let url = db_url(admin_url, &name);
    let fname = signature
        .split('(')
        .next()
        .unwrap_or("nweb_merkle_root")
        .to_string();
    let arg = signature
        .split('(')
        .nth(1)
        .unwrap_or("text)")
        .trim_end_matches(')')
        .to_string();
    let out = async {
        let c = connect(&url).await?;
        c.batch_execute("CREATE EXTENSION xray_pg")
            .await
            .map_err(pg_err)?;
        let mut times = Vec::new();
        let mut root = String::new();
        for _ in 0..reps {
            let t = Instant::now();
            let row = if arg.contains("bytea") {
                let stmt = c
                    .prepare(&format!("SELECT {fname}($1)::text"))
                    .await
                    .map_err(pg_err)?;
                c.query_one(&stmt, &[&text.as_bytes()])
                    .await
                    .map_err(pg_err)?
            } else {
                let stmt = c
                    .prepare(&format!("SELECT {fname}($1::text)::text"))
                    .await
                    .map_err(pg_err)?;
                c.query_one(&stmt, &[&text]).await.map_err(pg_err)?
            };
            times.push(t.elapsed().as_secs_f64() * 1e3);
            root = row.get(0);
        }
        Res::Ok((crate::util::median(&times), root))
    }
    .await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .map_err(pg_err)?;
    out
}
