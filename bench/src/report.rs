//! Aggregates the runs and renders the Markdown summary (also written to
//! `target/xray-bench/results.md`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use xray_core::synth::ChurnStats;

use crate::core_scale::CoreRow;
use crate::db::ScanRun;
use crate::merkle::MerkleResult;
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
            merkle: None,
            elapsed_s: 0.0,
        }
    }

    pub fn add_db(&mut self, endpoints: usize, runs: Vec<ScanRun>, churn: ChurnStats) {
        if runs.iter().any(|r| r.kind.contains("churn")) {
            self.churn.insert(endpoints, churn);
        }
        self.db.entry(endpoints).or_default().push(runs);
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
        let _ = writeln!(s, "| PostgreSQL | {} |\n", self.pg_version);

        let mut targets: Vec<(bool, String)> = Vec::new();

        if !self.db.is_empty() {
            let _ = writeln!(
                s,
                "### Ingest inside PostgreSQL\n\nSame payload bytes, same run: `INSERT INTO bare VALUES ($1)` (plain jsonb \
                 table) vs `INSERT INTO xray.scan_results (payload) VALUES ($1)` (ingest trigger). Client wall time of the \
                 prepared INSERT (autocommit, so the commit is included), each in a fresh connection; median of the \
                 repetitions shown (up to {}). Exposures/s = (current + prior exposures) / trigger time; the bare-INSERT bound is the same count / bare time, \
                 the rate a trigger that cost nothing would reach. bare lz4: the same bare INSERT into a `COMPRESSION lz4` column. Peak memory: backend \
                 VmHWM after the trigger INSERT, and the private part (VmHWM minus shared-buffer and file pages), max \
                 over repetitions. A scan of more than {} endpoints is sent as several payloads \
                 split by asset (jsonb holds at most 256 MB); its times are summed.\n",
                self.reps,
                crate::db::MAX_PAYLOAD_ENDPOINTS
            );
            let _ = writeln!(
                s,
                "| endpoints | scan | reps | payload MB | exposures current / prior | NEW / CHANGED / FIXED (held open) | bare ms | trigger ms | trigger / bare | exposures/s | bare-INSERT bound /s | bare lz4 ms | trigger VmHWM MiB (private) | bare private MiB |"
            );
            let _ = writeln!(
                s,
                "|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for &n in self.db.keys() {
                for a in self.agg(n) {
                    let _ = writeln!(
                        s,
                        "| {n} | {}{} | {} | {:.1}{} | {} / {} | {} / {} / {} ({}) | {:.0} | {:.0} | {:.2}× | {:.0} | {:.0} | {} | {} ({}) | {} |",
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
                        mib(a.hwm),
                        mib(a.private),
                        mib(a.bare_private),
                    );
                    targets.push((
                        a.ratio <= TARGET_TRIGGER_RATIO,
                        format!("trigger ≤ {TARGET_TRIGGER_RATIO}× bare INSERT — {n} endpoints, {}: {:.2}×", a.kind, a.ratio),
                    ));
                    if a.kind.starts_with("no-change") {
                        targets.push((
                            a.per_s >= TARGET_RESCAN_PER_S,
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
            let _ = writeln!(
                s,
                "### Merkle root over scanprint JSONL\n\n{:.1} MB, {} lines (seeded nweb scanprint v0, JCS). Median of 3.\n",
                m.bytes as f64 / 1e6,
                m.lines
            );
            let _ = writeln!(
                s,
                "| what | ms | MB/s | vs sha256sum |\n|---|---:|---:|---:|"
            );
            let row = |s: &mut String, what: &str, ms: f64| {
                let _ = writeln!(
                    s,
                    "| {what} | {ms:.0} | {:.0} | {:.2}× |",
                    m.bytes as f64 / 1e6 / (ms / 1e3),
                    ms / m.sha256sum_ms
                );
            };
            row(
                &mut s,
                "`sha256sum` (coreutils, file in page cache)",
                m.sha256sum_ms,
            );
            row(
                &mut s,
                "SHA-256 in process (`sha2` crate)",
                m.sha2_in_process_ms,
            );
            row(
                &mut s,
                "`scanprint_merkle_root` (pure Rust: JCS per line + RFC 6962 tree)",
                m.merkle_rust_ms,
            );
            if let Some((sig, ms, root)) = &m.sql {
                row(&mut s, &format!("`SELECT {sig}` in PostgreSQL"), *ms);
                if *root != m.root && !root.contains(m.root.trim_start_matches("0x")) {
                    let _ = writeln!(
                        s,
                        "\n**SQL root {root} differs from the Rust root {}.**",
                        m.root
                    );
                }
            }
            let _ = writeln!(s, "\nRoot: `{}`.", m.root);
            if !m.sql_note.is_empty() {
                let _ = writeln!(s, "Note: {}.", m.sql_note);
            }
            let _ = writeln!(s);
            let (what, ms) = match &m.sql {
                Some((sig, ms, _)) => (format!("SQL {sig}"), *ms),
                None => (
                    "pure Rust scanprint_merkle_root".to_string(),
                    m.merkle_rust_ms,
                ),
            };
            targets.push((
                ms / m.sha256sum_ms <= TARGET_MERKLE_RATIO,
                format!(
                    "Merkle root ≤ 3× sha256sum — {what}: {:.2}×",
                    ms / m.sha256sum_ms
                ),
            ));
            if m.sql.is_some() {
                targets.push((
                    m.merkle_rust_ms / m.sha256sum_ms <= TARGET_MERKLE_RATIO,
                    format!(
                        "Merkle root ≤ 3× sha256sum — pure Rust scanprint_merkle_root: {:.2}×",
                        m.merkle_rust_ms / m.sha256sum_ms
                    ),
                ));
            }
            targets.push((
                m.merkle_rust_ms / m.sha2_in_process_ms <= TARGET_MERKLE_RATIO,
                format!(
                    "(stricter, not the target) pure Rust Merkle ≤ 3× in-process SHA-NI SHA-256: {:.2}×",
                    m.merkle_rust_ms / m.sha2_in_process_ms
                ),
            ));
        }

        if !targets.is_empty() {
            let _ = writeln!(s, "### Targets\n");
            for (ok, t) in &targets {
                let _ = writeln!(s, "- {} {t}", if *ok { "MET" } else { "MISSED" });
            }
            let _ = writeln!(s);
        }
        s
    }
}
