//! Aggregates the runs and renders the Markdown summary (also written to
//! `target/xray-bench/results.md`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use xray_synth::ChurnStats;

use crate::core_scale::CoreRow;
use crate::db::{merkle_call, PayloadStorage, ScanRun, SizeRun};
use crate::merkle::{MerkleResult, REPS as MERKLE_REPS};
use crate::util::{code_state, machine_facts, median};
use crate::Opts;

/// DefectDojo's best published re-import rate, findings per second (issue text).
const DEFECTDOJO_PER_S: f64 = 500.0;
const TARGET_RESCAN_PER_S: f64 = 100_000.0;
const TARGET_TRIGGER_RATIO: f64 = 3.0;
const TARGET_MERKLE_RATIO: f64 = 3.0;

pub struct Report {
    pub command: String,
    pub facts: Vec<(String, String)>,
    pub state: Vec<(String, String)>,
    pub pg_version: String,
    pub reps: usize,
    pub seed: u64,
    pub core: Vec<CoreRow>,
    /// endpoints → repetitions → the three scans.
    pub db: BTreeMap<usize, Vec<Vec<ScanRun>>>,
    pub churn: BTreeMap<usize, ChurnStats>,
    /// How the trigger stored the payload, over every database run (more
    /// than one if the extension was reinstalled during the run).
    pub payload_storage: BTreeSet<PayloadStorage>,
    pub merkle: Option<MerkleResult>,
    pub elapsed_s: f64,
}

/// Medians over the repetitions of one (size, scan).
struct Agg {
    kind: &'static str,
    reps: usize,
    payload_mb: f64,
    payloads: usize,
    current: i64,
    prior: i64,
    new: i64,
    changed: i64,
    fixed: i64,
    held: i64,
    status: String,
    bare_ms: f64,
    bare_lz4_ms: f64,
    bound_per_s: f64,
    trigger_ms: f64,
    ratio: f64,
    ratio_lz4: f64,
    per_s: f64,
    hwm: Option<f64>,
    private: Option<f64>,
    bare_private: Option<f64>,
}

fn max_opt(xs: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    xs.flatten()
        .fold(None, |m, x| Some(m.map_or(x, |m: f64| m.max(x))))
}

impl Report {
    pub fn new(o: &Opts) -> Report {
        let args: Vec<String> = std::env::args().skip(1).collect();
        Report {
            command: std::env::var("XRAY_BENCH_COMMAND")
                .unwrap_or_else(|_| format!("xray-bench {}", args.join(" ")).trim().to_string()),
            facts: machine_facts(),
            state: code_state(&o.repo),
            pg_version: crate::util::cmd_output(
                "/usr/lib/postgresql/15/bin/postgres",
                &["--version"],
            )
            .unwrap_or_else(|| "?".into()),
            reps: o.reps,
            seed: o.seed,
            core: Vec::new(),
            db: BTreeMap::new(),
            churn: BTreeMap::new(),
            payload_storage: BTreeSet::new(),
            merkle: None,
            elapsed_s: 0.0,
        }
    }

    pub fn add_db(&mut self, endpoints: usize, run: SizeRun) {
        if run.runs.iter().any(|r| r.kind.contains("churn")) {
            self.churn.insert(endpoints, run.churn);
        }
        self.payload_storage.insert(run.storage);
        self.db.entry(endpoints).or_default().push(run.runs);
    }

    fn agg(&self, endpoints: usize) -> Vec<Agg> {
        let reps = &self.db[&endpoints];
        (0..reps[0].len())
            .map(|i| {
                let xs: Vec<&ScanRun> = reps.iter().map(|r| &r[i]).collect();
                let f = xs[0];
                let med = |g: &dyn Fn(&ScanRun) -> f64| {
                    median(&xs.iter().map(|r| g(r)).collect::<Vec<_>>())
                };
                Agg {
                    kind: f.kind,
                    reps: xs.len(),
                    payload_mb: f.payload_bytes as f64 / 1e6,
                    payloads: f.payloads,
                    current: f.current,
                    prior: f.prior,
                    new: f.new,
                    changed: f.changed,
                    fixed: f.fixed,
                    held: f.held_open,
                    status: f.status.clone(),
                    bare_ms: med(&|r| r.bare.ms),
                    bare_lz4_ms: med(&|r| r.bare_lz4.ms),
                    bound_per_s: med(&|r| r.bare_bound_per_s()),
                    trigger_ms: med(&|r| r.trigger.ms),
                    ratio: med(&|r| r.ratio()),
                    ratio_lz4: med(&|r| r.ratio_lz4()),
                    per_s: med(&|r| r.exposures_per_s()),
                    hwm: max_opt(xs.iter().map(|r| r.trigger.hwm_mib())),
                    private: max_opt(xs.iter().map(|r| r.trigger.private_peak_mib())),
                    bare_private: max_opt(xs.iter().map(|r| r.bare.private_peak_mib())),
                }
            })
            .collect()
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let mib = |x: Option<f64>| x.map_or("n/a".to_string(), |v| format!("{v:.0}"));
        let _ = writeln!(s, "## Results\n");
        let _ = writeln!(
            s,
            "Command: `{}` (seed {}, {:.0} s wall).\n",
            self.command, self.seed, self.elapsed_s
        );
        let _ = writeln!(s, "| machine / code | |\n|---|---|");
        for (k, v) in self.facts.iter().chain(self.state.iter()) {
            let _ = writeln!(s, "| {k} | {v} |");
        }
        let _ = writeln!(s, "| PostgreSQL | {} |", self.pg_version);
        if !self.payload_storage.is_empty() {
            let v: Vec<String> = self.payload_storage.iter().map(|p| p.to_string()).collect();
            let changed = if v.len() > 1 {
                " — the extension changed during the run"
            } else {
                ""
            };
            let _ = writeln!(
                s,
                "| xray.scan_results.payload compression (the trigger's storage) | {}{changed} |",
                v.join("; ")
            );
        }
        let _ = writeln!(s);

        // (met, text); `None` is a line of information under the target before it.
        let mut targets: Vec<(Option<bool>, String)> = Vec::new();
        let lz4_runs = self.payload_storage.iter().filter(|p| p.is_lz4()).count();
        let lz4_line = if lz4_runs == self.payload_storage.len() {
            "like-for-like (lz4 bare table, the trigger wrote lz4)"
        } else if lz4_runs == 0 {
            "against the lz4 bare table (the trigger wrote pglz, so the line above is the like-for-like one)"
        } else {
            "against the lz4 bare table (the trigger wrote lz4 in some runs only)"
        };

        if !self.db.is_empty() {
            let _ = writeln!(
                s,
                "### Ingest inside PostgreSQL\n\nSame payload bytes, same run: `INSERT INTO bare VALUES ($1)` (plain jsonb \
                 table) vs `INSERT INTO xray.scan_results (payload) VALUES ($1)` (ingest trigger). Client wall time of the \
                 prepared INSERT (autocommit, so the commit is included), each in a fresh connection; median of the \
                 repetitions shown (up to {}). Exposures/s = (current + prior exposures) / trigger time; the bare-INSERT bound is the same count / bare time, \
                 the rate a trigger that cost nothing would reach. bare lz4: the same bare INSERT into a `COMPRESSION lz4` column; \
                 trigger / bare lz4 is the trigger's time over it, the like-for-like ratio when the installed payload column \
                 is lz4 too (its compression is in the table above). Peak memory: backend \
                 VmHWM after the trigger INSERT, and the private part (VmHWM minus shared-buffer and file pages), max \
                 over repetitions. A scan of more than {} endpoints is sent as several payloads \
                 split by asset (jsonb holds at most 256 MB); its times are summed.\n",
                self.reps,
                crate::db::MAX_PAYLOAD_ENDPOINTS
            );
            let _ = writeln!(
                s,
                "| endpoints | scan | reps | payload MB | exposures current / prior | NEW / CHANGED / FIXED (held open) | bare ms | trigger ms | trigger / bare | exposures/s | bare-INSERT bound /s | bare lz4 ms | trigger / bare lz4 | trigger VmHWM MiB (private) | bare private MiB |"
            );
            let _ = writeln!(
                s,
                "|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for &n in self.db.keys() {
                for a in self.agg(n) {
                    let _ = writeln!(
                        s,
                        "| {n} | {}{} | {} | {:.1}{} | {} / {} | {} / {} / {} ({}) | {:.0} | {:.0} | {:.2}× | {:.0} | {:.0} | {} | {} | {} ({}) | {} |",
                        a.kind,
                        if a.status == "applied" { String::new() } else { format!(" [{}]", a.status) },
                        a.reps,
                        a.payload_mb,
                        if a.payloads > 1 { format!(" ({} payloads)", a.payloads) } else { String::new() },
                        a.current,
                        a.prior,
                        a.new,
                        a.changed,
                        a.fixed,
                        a.held,
                        a.bare_ms,
                        a.trigger_ms,
                        a.ratio,
                        a.per_s,
                        a.bound_per_s,
                        if a.bare_lz4_ms.is_finite() { format!("{:.0}", a.bare_lz4_ms) } else { "—".into() },
                        if a.ratio_lz4.is_finite() { format!("{:.2}×", a.ratio_lz4) } else { "—".into() },
                        mib(a.hwm),
                        mib(a.private),
                        mib(a.bare_private),
                    );
                    targets.push((
                        Some(a.ratio <= TARGET_TRIGGER_RATIO),
                        format!("trigger ≤ {TARGET_TRIGGER_RATIO}× a bare INSERT into a plain jsonb table — {n} endpoints, {}: {:.2}×", a.kind, a.ratio),
                    ));
                    if a.ratio_lz4.is_finite() {
                        targets.push((None, format!("{lz4_line}: {:.2}×", a.ratio_lz4)));
                    }
                    if a.kind.starts_with("no-change") {
                        targets.push((
                            Some(a.per_s >= TARGET_RESCAN_PER_S),
                            format!(
                                "no-change rescan ≥ 100,000 exposures/s — {n} endpoints: {:.0}/s ({:.0}× DefectDojo's ~500/s)",
                                a.per_s,
                                a.per_s / DEFECTDOJO_PER_S
                            ),
                        ));
                    }
                }
            }
            for (n, c) in &self.churn {
                let _ = write!(
                    s,
                    "{}churn at {n} endpoints: {} endpoints changed ({} fixes, {} material changes, {} additions)",
                    if *n == *self.churn.keys().next().unwrap() { "\n10 % " } else { "; " },
                    c.endpoints_changed,
                    c.fixes,
                    c.changes,
                    c.additions
                );
            }
            let _ = writeln!(s, ".\n");

            // Scale: trigger cost per endpoint across sizes.
            let sizes: Vec<usize> = self.db.keys().copied().collect();
            if sizes.len() > 1 {
                let _ = writeln!(
                    s,
                    "### Scale (database)\n\nTrigger INSERT time per scan and per endpoint; growth = time ratio to the \
                     previous size divided by the size ratio (1.00 = linear).\n"
                );
                let _ = writeln!(s, "| endpoints | scan | trigger ms | µs / endpoint | growth vs previous | bare ms | bare growth |");
                let _ = writeln!(s, "|---:|---|---:|---:|---:|---:|---:|");
                let aggs: Vec<(usize, Vec<Agg>)> =
                    sizes.iter().map(|&n| (n, self.agg(n))).collect();
                let kinds: Vec<&'static str> = aggs[0].1.iter().map(|a| a.kind).collect();
                for kind in kinds {
                    // Sizes that measured this scan, in order.
                    let rows: Vec<(usize, &Agg)> = aggs
                        .iter()
                        .filter_map(|(n, a)| a.iter().find(|x| x.kind == kind).map(|x| (*n, x)))
                        .collect();
                    for (j, (n, a)) in rows.iter().enumerate() {
                        let (g, bg) = if j == 0 {
                            ("—".to_string(), "—".to_string())
                        } else {
                            let (pn, pa) = rows[j - 1];
                            let k = *n as f64 / pn as f64;
                            (
                                format!("{:.2}", a.trigger_ms / pa.trigger_ms / k),
                                format!("{:.2}", a.bare_ms / pa.bare_ms / k),
                            )
                        };
                        let _ = writeln!(
                            s,
                            "| {n} | {} | {:.0} | {:.1} | {g} | {:.0} | {bg} |",
                            a.kind,
                            a.trigger_ms,
                            a.trigger_ms * 1e3 / *n as f64,
                            a.bare_ms
                        );
                    }
                }
                let _ = writeln!(s);
            }
        }

        if !self.core.is_empty() {
            let _ = writeln!(
                s,
                "### Engine alone (in process, no database)\n\nThe steps the trigger runs, timed separately on the same \
                 payloads (median of 3, 1 at ≥ 50k endpoints). Rescan via Value = text → serde_json::Value → ScanPayload → \
                 normalise → diff of a no-change rescan, the trigger's path today; direct = `ScanPayload::from_json_str` \
                 (text straight to the typed payload) → normalise → diff. Exposures/s counts current + prior like the \
                 database figures.\n"
            );
            let _ = writeln!(
                s,
                "| endpoints | payload MB | exposures | text→Value ms | Value→ScanPayload ms | text→ScanPayload (direct) ms | normalize ms | diff first ms | diff rescan ms | diff churn ms | rescan via Value ms | exposures/s | rescan direct ms | exposures/s | µs / endpoint (direct) |"
            );
            let _ = writeln!(
                s,
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for c in &self.core {
                let total = c.rescan_total_ms();
                let direct = c.rescan_direct_ms();
                let n = (c.exposures + c.prior) as f64;
                let _ = writeln!(
                    s,
                    "| {} | {:.1} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} | {:.0} | {:.1} |",
                    c.endpoints,
                    c.payload_bytes as f64 / 1e6,
                    c.exposures,
                    c.text_to_value_ms,
                    c.value_to_payload_ms,
                    c.text_to_payload_ms,
                    c.normalize_ms,
                    c.diff_first_ms,
                    c.diff_rescan_ms,
                    c.diff_churn_ms,
                    total,
                    n / (total / 1e3),
                    direct,
                    n / (direct / 1e3),
                    direct * 1e3 / c.endpoints as f64
                );
            }
            let _ = writeln!(s);
        }

        if let Some(m) = &self.merkle {
            let sig = m
                .sql_signature
                .as_deref()
                .unwrap_or("nweb_merkle_root(text)");
            let _ = writeln!(
                s,
                "### Merkle root over scanprint JSONL\n\n{:.1} MB, {} lines (seeded nweb scanprint v0, JCS). Median of {MERKLE_REPS}.\n",
                m.bytes as f64 / 1e6,
                m.lines
            );
            if m.sql_signature.is_some() {
                let _ = writeln!(
                    s,
                    "In PostgreSQL, in a fresh database with the installed extension. *Client parameter*: the whole text is \
                     sent as the function's parameter, so the time includes the socket and the parameter's text input, not \
                     only the function. *Stored text*: the same bytes inserted once (untimed) into `merkle_text (t text)` \
                     with `STORAGE EXTERNAL` (out of line, uncompressed, so detoasting is a plain read); each time is the \
                     client's wall time of the statement in one connection, after one untimed warm-up run of each and a \
                     CHECKPOINT, the three statements interleaved. They return one small row, so this is the server's \
                     time plus one round trip. vs PostgreSQL sha256 = time / the stored-text `sha256()` time.\n"
                );
            }
            let _ = writeln!(
                s,
                "| what | ms | MB/s | vs sha256sum | vs PostgreSQL sha256 |\n|---|---:|---:|---:|---:|"
            );
            let pg_sha256_ms = m.sql_stored.as_ref().map(|st| st.sha256_ms);
            let row = |s: &mut String, what: &str, ms: f64, vs_pg: bool| {
                let _ = writeln!(
                    s,
                    "| {what} | {ms:.0} | {:.0} | {:.2}× | {} |",
                    m.bytes as f64 / 1e6 / (ms / 1e3),
                    ms / m.sha256sum_ms,
                    match pg_sha256_ms.filter(|_| vs_pg) {
                        Some(p) => format!("{:.2}×", ms / p),
                        None => "—".into(),
                    }
                );
            };
            row(
                &mut s,
                "`sha256sum` (coreutils, file in page cache)",
                m.sha256sum_ms,
                false,
            );
            row(
                &mut s,
                "SHA-256 in process (`sha2` crate)",
                m.sha2_in_process_ms,
                false,
            );
            row(
                &mut s,
                "`scanprint_merkle_root` (pure Rust: JCS per line + RFC 6962 tree)",
                m.merkle_rust_ms,
                false,
            );
            let mut wrong = Vec::new();
            if let Some((ms, root)) = &m.sql_param {
                row(
                    &mut s,
                    &format!(
                        "`SELECT {}`, client parameter (socket + text input + function; information)",
                        merkle_call(sig, "$1")
                    ),
                    *ms,
                    false,
                );
                if !same_root(root, &m.root) {
                    wrong.push(format!("the client-parameter root {root}"));
                }
            }
            if let Some(st) = &m.sql_stored {
                for (what, ms) in [
                    ("`SELECT length(t)`, stored text (detoast only)".to_string(), st.length_ms),
                    (
                        "`SELECT sha256(convert_to(t, 'UTF8'))`, stored text (PostgreSQL's SHA-256)".to_string(),
                        st.sha256_ms,
                    ),
                    (format!("`SELECT {}`, stored text", merkle_call(sig, "t")), st.merkle_ms),
                ] {
                    row(&mut s, &what, ms, true);
                }
                if !same_root(&st.root, &m.root) {
                    wrong.push(format!("the stored-text root {}", st.root));
                }
                if st.sha256 != m.sha256 {
                    wrong.push(format!(
                        "PostgreSQL's SHA-256 of the stored text {} (sha256sum: {}), so the stored bytes are not the file's",
                        st.sha256, m.sha256
                    ));
                }
            }
            for w in &wrong {
                let _ = writeln!(s, "\n**Differs from the Rust result: {w}.**");
            }
            let _ = writeln!(s, "\nRoot: `{}`.", m.root);
            for note in &m.sql_notes {
                let _ = writeln!(s, "Note: {note}.");
            }
            let _ = writeln!(s);
            if let Some(st) = &m.sql_stored {
                let ok = same_root(&st.root, &m.root);
                targets.push((
                    Some(ok && st.merkle_ms / m.sha256sum_ms <= TARGET_MERKLE_RATIO),
                    format!(
                        "Merkle root ≤ 3× sha256sum — SQL {} on text stored in the database: {:.2}× ({:.2}× PostgreSQL's sha256){}",
                        merkle_call(sig, "t"),
                        st.merkle_ms / m.sha256sum_ms,
                        st.merkle_ms / st.sha256_ms,
                        if ok { "" } else { "; its root differs from the Rust root" }
                    ),
                ));
            }
            targets.push((
                Some(m.merkle_rust_ms / m.sha256sum_ms <= TARGET_MERKLE_RATIO),
                format!(
                    "Merkle root ≤ 3× sha256sum — pure Rust scanprint_merkle_root: {:.2}×",
                    m.merkle_rust_ms / m.sha256sum_ms
                ),
            ));
            targets.push((
                Some(m.merkle_rust_ms / m.sha2_in_process_ms <= TARGET_MERKLE_RATIO),
                format!(
                    "(stricter, not the target) pure Rust Merkle ≤ 3× in-process SHA-NI SHA-256: {:.2}×",
                    m.merkle_rust_ms / m.sha2_in_process_ms
                ),
            ));
        }

        if !targets.is_empty() {
            let _ = writeln!(s, "### Targets\n");
            for (ok, t) in &targets {
                let _ = match ok {
                    Some(ok) => writeln!(s, "- {} {t}", if *ok { "MET" } else { "MISSED" }),
                    None => writeln!(s, "  - {t}"),
                };
            }
            let _ = writeln!(s);
        }
        s
    }
}

/// The SQL function prints `0x` + hex; accept a root printed without the prefix too.
fn same_root(sql: &str, rust: &str) -> bool {
    sql == rust || sql.contains(rust.trim_start_matches("0x"))
}
