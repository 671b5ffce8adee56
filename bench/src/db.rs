//! Ingest inside PostgreSQL: the same payload bytes INSERTed into a plain
//! `bare(payload jsonb)` table and into `xray.scan_results` (through the
//! ingest trigger), in the same run, each in a fresh connection so that the
//! backend's VmHWM is the peak of that one statement.

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls};
use xray_synth::{ChurnStats, Fleet};

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

/// Components of an ingest INSERT, as (frame to look for in a sample's
/// stack, what it is). A sample belongs to the first component whose frame
/// is on its stack, so the shares add up to 100 %.
const COMPONENTS: &[(&str, &str)] = &[
    (
        "xray_pg::ingest::record_inventory",
        "inventory: assets and endpoints from the decoded payload",
    ),
    (
        "xray_pg::ingest::authorize_and_load_config",
        "tenant check and configuration",
    ),
    ("xray_pg::ingest::notify", "NOTIFY"),
    ("xray_pg::ingest::lock_tenant", "tenant advisory lock"),
    (
        "xray_pg::columns::",
        "set-based writes: building the column arrays (evidence as JSON text)",
    ),
    (
        "xray_pg::ingest::apply",
        "set-based writes: events, exposures, touch, fix, asset_scans (SQL)",
    ),
    (
        "xray_engine::normalize::normalize",
        "xray_engine: normalise (identity, material hash)",
    ),
    ("xray_engine::diff::diff_normalized", "xray_engine: diff"),
    (
        "xray_pg::ingest::plan",
        "duplicate check, stale check, prior-state SELECT",
    ),
    (
        "xray_pg::jsonb::",
        "decoding the payload: binary jsonb into ScanPayload (serde over JsonbIteratorNext)",
    ),
    (
        "heap_modify_tuple",
        "filling the row's computed columns (heap_modify_tuple)",
    ),
    (
        "ExecBRInsertTriggers",
        "rest of the trigger: freeing the payload and outcome, SPI set-up",
    ),
    (
        "jsonb_recv",
        "the INSERT parameter: JSON text to jsonb (the bare INSERT does this too)",
    ),
    (
        "heap_toast_insert_or_update",
        "storing the row: TOAST, compression (the bare INSERT does this too)",
    ),
    (
        "",
        "executor, commit, WAL, kernel (the bare INSERT does this too)",
    ),
];

/// The frames of each sample in `perf script` output, leaf first.
fn perf_stacks(script: &str) -> Vec<Vec<&str>> {
    let mut stacks = Vec::new();
    let mut cur: Option<Vec<&str>> = None;
    for line in script.lines() {
        if line.trim().is_empty() {
            if let Some(st) = cur.take() {
                stacks.push(st);
            }
        } else if !line.starts_with(char::is_whitespace) {
            if let Some(st) = cur.replace(Vec::new()) {
                stacks.push(st);
            }
        } else if let Some(st) = cur.as_mut() {
            // "\t    addr symbol+0xoff (dso)"
            let rest = line.trim_start().split_once(' ').map_or("", |x| x.1);
            let rest = rest.rfind(" (").map_or(rest, |i| &rest[..i]);
            let sym = rest.rfind("+0x").map_or(rest, |i| &rest[..i]);
            st.push(sym);
        }
    }
    stacks.extend(cur);
    stacks
}

fn stop_perf(p: &Profiler, mut child: Child, data: &std::path::Path) {
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let _ = child.wait();
    summarise_perf(p, data);
}

/// Writes `perf-<label>.txt` next to the data: the share of each component.
pub fn summarise_perf(p: &Profiler, data: &std::path::Path) {
    let report = p.dir.join(format!("perf-{}.txt", p.label));
    let Ok(out) = Command::new("perf")
        .arg("script")
        .arg("-i")
        .arg(data)
        .output()
    else {
        return;
    };
    let script = String::from_utf8_lossy(&out.stdout);
    let stacks = perf_stacks(&script);
    let total = stacks.len().max(1) as f64;
    let mut counts = vec![(0usize, 0usize); COMPONENTS.len()];
    for st in &stacks {
        let i = COMPONENTS
            .iter()
            .position(|(frame, _)| frame.is_empty() || st.iter().any(|f| f.contains(frame)))
            .unwrap_or(COMPONENTS.len() - 1);
        counts[i].0 += 1;
        if st.contains(&"jsonb_in") {
            counts[i].1 += 1;
        }
    }
    let mut summary = format!(
        "# {}: where the backend's CPU samples went ({} samples, perf --call-graph dwarf)\n\
         # share  of which JSON text→jsonb (jsonb_in)  component\n",
        p.label,
        stacks.len()
    );
    for ((_, what), (n, j)) in COMPONENTS.iter().zip(&counts) {
        summary.push_str(&format!(
            "{:6.1}%  {:6.1}%  {what}\n",
            100.0 * *n as f64 / total,
            100.0 * *j as f64 / total
        ));
    }
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
    /// The same bare INSERT into a table whose column uses lz4 instead of
    /// the default pglz compression (context: what storage costs).
    pub bare_lz4: Sample,
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
    /// Against the bare INSERT into the lz4 table: like for like when the
    /// installed `xray.scan_results.payload` is lz4 too (0.4.0). NaN when the
    /// pass did not measure lz4.
    pub fn ratio_lz4(&self) -> f64 {
        self.trigger.ms / self.bare_lz4.ms
    }
    /// Exposures processed (current + prior) per second of trigger INSERT.
    pub fn exposures_per_s(&self) -> f64 {
        (self.current + self.prior) as f64 / (self.trigger.ms / 1e3)
    }
    /// The same count per second of the bare INSERT: the rate a trigger
    /// costing nothing would reach on this payload.
    pub fn bare_bound_per_s(&self) -> f64 {
        (self.current + self.prior) as f64 / (self.bare.ms / 1e3)
    }
}

/// What one database pass measures.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    /// Also the 10 % churn rescan (the first scan and the no-change rescan
    /// always run).
    pub churn: bool,
    /// Also the bare INSERT into a `COMPRESSION lz4` table.
    pub lz4: bool,
}

/// What one fresh database measured.
#[derive(Debug, Clone)]
pub struct SizeRun {
    pub runs: Vec<ScanRun>,
    pub churn: ChurnStats,
    /// How the installed extension stores `xray.scan_results.payload`, read
    /// in this database, since the extension may be reinstalled between runs.
    pub storage: PayloadStorage,
}

/// The compression of `xray.scan_results.payload` as installed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PayloadStorage {
    /// `lz4` or `pglz`: the column's own setting, or `default_toast_compression`
    /// when the column has none.
    pub compression: String,
    pub column_default: bool,
    pub extension_version: String,
}

impl PayloadStorage {
    pub fn is_lz4(&self) -> bool {
        self.compression == "lz4"
    }
}

impl std::fmt::Display for PayloadStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (code, how) = match (self.column_default, self.compression.as_str()) {
            (true, _) => ("''", ", default_toast_compression"),
            (false, "lz4") => ("'l'", ""),
            (false, _) => ("'p'", ""),
        };
        write!(
            f,
            "{} (attcompression {code}{how}; extension {})",
            self.compression, self.extension_version
        )
    }
}

async fn payload_storage(c: &Client) -> Res<PayloadStorage> {
    let row = c
        .query_one(
            "SELECT a.attcompression::text, current_setting('default_toast_compression'), e.extversion
               FROM pg_attribute a, pg_extension e
              WHERE a.attrelid = 'xray.scan_results'::regclass AND a.attname = 'payload'
                AND e.extname = 'xray_pg'",
            &[],
        )
        .await
        .map_err(pg_err)?;
    let code: String = row.get(0);
    Ok(PayloadStorage {
        compression: match code.as_str() {
            "l" => "lz4".into(),
            "p" => "pglz".into(),
            _ => row.get(1),
        },
        column_default: !matches!(code.as_str(), "l" | "p"),
        extension_version: row.get(2),
    })
}

/// One fresh database: first scan, no-change rescan, 10 % churn rescan.
pub async fn run_size(
    admin_url: &str,
    seed: u64,
    endpoints: usize,
    rep: usize,
    pass: Pass,
    profile_dir: Option<&std::path::Path>,
) -> Res<SizeRun> {
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
    let result = run_scans(&url, seed, endpoints, pass, profile_dir).await;
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
    pass: Pass,
    profile_dir: Option<&std::path::Path>,
) -> Res<SizeRun> {
    let c = connect(url).await?;
    c.batch_execute(
        "CREATE EXTENSION xray_pg; CREATE TABLE bare (payload jsonb);
         CREATE TABLE bare_lz4 (payload jsonb COMPRESSION lz4)",
    )
    .await
    .map_err(pg_err)?;
    let storage = payload_storage(&c).await?;
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
    for (kind, f, idx) in scans.into_iter().filter(|s| pass.churn || s.2 < 2) {
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
            bare_lz4: Sample::default(),
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
            let scan_id = f.scan_id(idx, shard);
            let bytes = f.payload_text_shard(idx, shard, shards).into_bytes();
            run.payload_bytes += bytes.len();
            c.batch_execute("CHECKPOINT").await.map_err(pg_err)?;
            // The first scan (all NEW) and the no-change rescan are profiled.
            let label = ["first", "rescan"].get(idx as usize).filter(|_| shard == 0);
            let bare_profiler = profile_dir.zip(label).map(|(d, l)| Profiler {
                dir: d.to_path_buf(),
                label: format!("{endpoints}-{l}-bare"),
            });
            if pass.lz4 {
                let sql = "INSERT INTO bare_lz4 VALUES ($1)";
                add(&mut run.bare_lz4, measure(url, sql, &bytes, None).await?);
                c.batch_execute("CHECKPOINT").await.map_err(pg_err)?;
            } else {
                run.bare_lz4.ms = f64::NAN;
            }
            let sql = "INSERT INTO bare VALUES ($1)";
            add(
                &mut run.bare,
                measure(url, sql, &bytes, bare_profiler.as_ref()).await?,
            );
            c.batch_execute("CHECKPOINT").await.map_err(pg_err)?;
            let profiler = profile_dir.zip(label).map(|(d, l)| Profiler {
                dir: d.to_path_buf(),
                label: format!("{endpoints}-{l}"),
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
    Ok(SizeRun {
        runs,
        churn: churn_stats,
        storage,
    })
}

/// The settings that matter for these numbers, as one line.
pub async fn settings(admin_url: &str) -> Res<String> {
    let c = connect(admin_url).await?;
    let mut out = Vec::new();
    for name in [
        "shared_buffers",
        "synchronous_commit",
        "max_wal_size",
        "default_toast_compression",
        "work_mem",
    ] {
        let v: String = c
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .map_err(pg_err)?
            .get(0);
        out.push(format!("{name}={v}"));
    }
    Ok(out.join(", "))
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

/// The SQL Merkle function over the JSONL text, both ways, in one fresh database.
pub struct MerkleSql {
    /// `SELECT f($1)` with the whole text sent by the client: median ms, root.
    pub param: Res<(f64, String)>,
    pub stored: Res<StoredText>,
}

/// The same text stored once in `merkle_text (t text)`, `STORAGE EXTERNAL`.
/// Medians in ms of the client's wall time of each statement.
#[derive(Debug, Clone)]
pub struct StoredText {
    /// `SELECT length(t)`: detoasting (and counting characters), nothing else.
    pub length_ms: f64,
    /// `SELECT sha256(convert_to(t, 'UTF8'))`: PostgreSQL's own SHA-256.
    pub sha256_ms: f64,
    /// `SELECT nweb_merkle_root(t)`.
    pub merkle_ms: f64,
    /// Hex of PostgreSQL's SHA-256: shows the stored bytes are the generated ones.
    pub sha256: String,
    pub root: String,
}

/// The call of the installed Merkle function `signature` (e.g.
/// `nweb_merkle_root(text)`) on `$1`, the text sent by the client, or on
/// `t`, the stored column.
pub fn merkle_call(signature: &str, on: &str) -> String {
    let fname = signature.split('(').next().unwrap_or(signature);
    match (takes_bytes(signature), on) {
        (false, "$1") => format!("{fname}($1::text)"),
        (true, "t") => format!("{fname}(convert_to(t, 'UTF8'))"),
        _ => format!("{fname}({on})"),
    }
}

fn takes_bytes(signature: &str) -> bool {
    signature.contains("bytea")
}

/// Times the installed Merkle function `signature` (e.g.
/// `nweb_merkle_root(text)`) on the text sent as a parameter and on the text
/// stored in a table.
pub async fn merkle_in_db(
    admin_url: &str,
    signature: &str,
    text: &str,
    reps: usize,
) -> Res<MerkleSql> {
    let admin = connect(admin_url).await?;
    let name = format!("xray_bench_merkle_{}", std::process::id());
    fresh_db(&admin, &name).await?;
    let url = db_url(admin_url, &name);
    let out = async {
        let c = connect(&url).await?;
        c.batch_execute("CREATE EXTENSION xray_pg")
            .await
            .map_err(pg_err)?;
        let param = merkle_param(&c, signature, text, reps).await;
        let stored = merkle_stored(&c, signature, text, reps).await;
        Res::Ok(MerkleSql { param, stored })
    }
    .await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .map_err(pg_err)?;
    out
}

async fn merkle_param(c: &Client, signature: &str, text: &str, reps: usize) -> Res<(f64, String)> {
    let stmt = c
        .prepare(&format!("SELECT {}::text", merkle_call(signature, "$1")))
        .await
        .map_err(pg_err)?;
    let mut times = Vec::new();
    let mut root = String::new();
    for _ in 0..reps {
        let t = Instant::now();
        let row = if takes_bytes(signature) {
            c.query_one(&stmt, &[&text.as_bytes()]).await
        } else {
            c.query_one(&stmt, &[&text]).await
        }
        .map_err(pg_err)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        root = row.get(0);
    }
    Ok((crate::util::median(&times), root))
}

async fn merkle_stored(c: &Client, signature: &str, text: &str, reps: usize) -> Res<StoredText> {
    // EXTERNAL: out of line and uncompressed, so detoasting is a plain read
    // and the three statements differ only in what they do with the bytes.
    c.batch_execute(
        "CREATE TABLE merkle_text (t text);
         ALTER TABLE merkle_text ALTER COLUMN t SET STORAGE EXTERNAL",
    )
    .await
    .map_err(pg_err)?;
    c.execute("INSERT INTO merkle_text (t) VALUES ($1)", &[&text])
        .await
        .map_err(pg_err)?;
    let mut stmts = Vec::new();
    for sql in [
        "SELECT length(t) FROM merkle_text".to_string(),
        "SELECT sha256(convert_to(t, 'UTF8')) FROM merkle_text".to_string(),
        format!(
            "SELECT {}::text FROM merkle_text",
            merkle_call(signature, "t")
        ),
    ] {
        stmts.push(c.prepare(&sql).await.map_err(pg_err)?);
    }
    // Untimed warm-up: the first read sets the hint bits of every TOAST
    // chunk, dirtying its page; the CHECKPOINT writes those pages now rather
    // than during the timed runs.
    c.query_one(&stmts[0], &[]).await.map_err(pg_err)?;
    let digest: Vec<u8> = c.query_one(&stmts[1], &[]).await.map_err(pg_err)?.get(0);
    let root: String = c.query_one(&stmts[2], &[]).await.map_err(pg_err)?.get(0);
    c.batch_execute("CHECKPOINT").await.map_err(pg_err)?;
    // Interleaved, so that load from other work on the machine falls on all three alike.
    let mut times = vec![Vec::new(); stmts.len()];
    for _ in 0..reps {
        for (stmt, ts) in stmts.iter().zip(&mut times) {
            let t = Instant::now();
            c.query_one(stmt, &[]).await.map_err(pg_err)?;
            ts.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let med = |i: usize| crate::util::median(&times[i]);
    Ok(StoredText {
        length_ms: med(0),
        sha256_ms: med(1),
        merkle_ms: med(2),
        sha256: hex::encode(digest),
        root,
    })
}
