//! `xray-bench`: the Watchtower benchmark suite. `scripts/bench.sh` is the
//! documented entry point; BENCHMARKS.md explains the method and holds the
//! numbers of the last full run.
//!
//! ```text
//! xray-bench [--sizes 1000,10000] [--scale-sizes 100000] [--reps 3]
//!            [--merkle-mb 100] [--seed N] [--only core,db,scale,merkle]
//!            [--out DIR] [--profile] [--scale-churn]
//! xray-bench gen --endpoints N [--scan I] [--churn F] [--seed N]   # one payload to stdout
//! xray-bench perf-summary <perf.data> <label>                     # component shares of a profile
//! ```
//!
//! Connects to `DATABASE_URL` (default `host=/var/run/postgresql dbname=postgres`)
//! as a role that may create databases; every measurement runs in a fresh
//! database with `CREATE EXTENSION xray_pg`, dropped afterwards.

mod core_scale;
mod db;
mod merkle;
mod report;
mod util;

use std::collections::BTreeSet;
use std::path::PathBuf;

use util::Res;

pub const DEFAULT_SEED: u64 = 20_260_302;

#[derive(Debug, Clone)]
pub struct Opts {
    pub sizes: Vec<usize>,
    pub scale_sizes: Vec<usize>,
    pub reps: usize,
    pub merkle_mb: usize,
    pub seed: u64,
    pub only: BTreeSet<String>,
    pub out: PathBuf,
    pub url: String,
    pub profile: bool,
    /// The scale run also measures the 10 % churn rescan.
    pub scale_churn: bool,
    pub repo: PathBuf,
}

fn parse_list(s: &str) -> Vec<usize> {
    s.split(',')
        .filter(|x| !x.is_empty())
        .map(|x| x.replace('_', "").parse().expect("a number"))
        .collect()
}

fn parse_opts(args: &[String]) -> Opts {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut o = Opts {
        sizes: vec![1_000, 10_000],
        scale_sizes: vec![100_000],
        reps: 3,
        merkle_mb: 100,
        seed: DEFAULT_SEED,
        only: ["core", "db", "scale", "merkle"]
            .into_iter()
            .map(String::from)
            .collect(),
        out: repo.join("target/xray-bench"),
        url: std::env::var("DATABASE_URL")
            .unwrap_or_else(|_| "host=/var/run/postgresql dbname=postgres".into()),
        profile: false,
        scale_churn: false,
        repo,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || {
            it.next()
                .cloned()
                .unwrap_or_else(|| panic!("{a} needs a value"))
        };
        match a.as_str() {
            "--sizes" => o.sizes = parse_list(&val()),
            "--scale-sizes" => o.scale_sizes = parse_list(&val()),
            "--reps" => o.reps = val().parse().expect("--reps N"),
            "--merkle-mb" => o.merkle_mb = val().parse().expect("--merkle-mb N"),
            "--seed" => o.seed = val().parse().expect("--seed N"),
            "--only" => o.only = val().split(',').map(String::from).collect(),
            "--out" => o.out = PathBuf::from(val()),
            "--profile" => o.profile = true,
            "--scale-churn" => o.scale_churn = true,
            "-h" | "--help" => {
                println!(
                    "{}",
                    include_str!("main.rs")
                        .lines()
                        .take_while(|l| l.starts_with("//!"))
                        .map(|l| l.trim_start_matches("//!").trim_start_matches(' '))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other:?} (see --help)"),
        }
    }
    o
}

fn gen(args: &[String]) {
    let (mut n, mut scan, mut churn, mut seed) = (1000usize, 0u32, 0.0f64, DEFAULT_SEED);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().expect("value");
        match a.as_str() {
            "--endpoints" => n = v.replace('_', "").parse().unwrap(),
            "--scan" => scan = v.parse().unwrap(),
            "--churn" => churn = v.parse().unwrap(),
            "--seed" => seed = v.parse().unwrap(),
            other => panic!("unknown argument {other:?}"),
        }
    }
    let fleet = xray_synth::Fleet::generate(seed, n, 0);
    let fleet = if churn > 0.0 {
        fleet.churn(churn, 1).0
    } else {
        fleet
    };
    println!("{}", fleet.payload_text(scan));
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("perf-summary") {
        // xray-bench perf-summary <perf.data> <label>: redo a profile summary.
        let data = PathBuf::from(args.get(1).expect("perf-summary <perf.data> <label>"));
        let p = db::Profiler {
            dir: data
                .parent()
                .unwrap_or(std::path::Path::new("."))
                .to_path_buf(),
            label: args.get(2).cloned().unwrap_or_else(|| "profile".into()),
        };
        db::summarise_perf(&p, &data);
        return Ok(());
    }
    if args.first().map(String::as_str) == Some("gen") {
        gen(&args[1..]);
        return Ok(());
    }
    let o = parse_opts(&args);
    std::fs::create_dir_all(&o.out)?;
    let started = std::time::Instant::now();
    let mut r = report::Report::new(&o);
    if ["db", "scale", "merkle"]
        .iter()
        .any(|p| o.only.contains(*p))
    {
        r.facts
            .push(("PostgreSQL settings".into(), db::settings(&o.url).await?));
    }
    let log = |s: &str| eprintln!("[bench {:>6.1}s] {s}", started.elapsed().as_secs_f64());

    if o.only.contains("core") {
        let mut sizes: Vec<usize> = o
            .sizes
            .iter()
            .chain(o.scale_sizes.iter())
            .copied()
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        for n in sizes {
            log(&format!("engine in-process, {n} endpoints"));
            r.core.push(core_scale::run(o.seed, n));
        }
    }
    let profile_dir = o.profile.then(|| o.out.clone());
    if o.only.contains("db") {
        for &n in &o.sizes {
            for rep in 0..o.reps {
                log(&format!(
                    "database ingest, {n} endpoints, repetition {}/{}",
                    rep + 1,
                    o.reps
                ));
                let prof = profile_dir.as_deref().filter(|_| rep == 0);
                let pass = db::Pass {
                    churn: true,
                    lz4: true,
                };
                let run = db::run_size(&o.url, o.seed, n, rep, pass, prof).await?;
                r.add_db(n, run);
            }
        }
    }
    if o.only.contains("scale") {
        for &n in &o.scale_sizes {
            let pass = db::Pass {
                churn: o.scale_churn,
                lz4: false,
            };
            log(&format!(
                "database ingest (scale), {n} endpoints, 1 repetition{}",
                if pass.churn {
                    ""
                } else {
                    ", first scan and no-change rescan"
                }
            ));
            let run = db::run_size(&o.url, o.seed, n, 0, pass, None).await?;
            r.add_db(n, run);
        }
    }
    if o.only.contains("merkle") && o.merkle_mb > 0 {
        log(&format!(
            "Merkle: generating {} MB of scanprint JSONL",
            o.merkle_mb
        ));
        let file = o.out.join(format!("scanprint-{}MB.jsonl", o.merkle_mb));
        let text = merkle::generate(o.seed, o.merkle_mb, &file)?;
        log("Merkle: sha256sum, sha2, scanprint_merkle_root");
        let mut m = merkle::run(&text, &file, merkle::REPS)?;
        match db::merkle_function(&o.url).await {
            Ok(Some(sig)) => {
                log(&format!(
                    "Merkle: {sig} in PostgreSQL, text as a parameter and stored in a table"
                ));
                match db::merkle_in_db(&o.url, &sig, &text, merkle::REPS).await {
                    Ok(sql) => {
                        match sql.param {
                            Ok(p) => m.sql_param = Some(p),
                            Err(e) => m
                                .sql_notes
                                .push(format!("{sig} on the text sent as a parameter failed: {e}")),
                        }
                        match sql.stored {
                            Ok(st) => m.sql_stored = Some(st),
                            Err(e) => m
                                .sql_notes
                                .push(format!("{sig} on the stored text failed: {e}")),
                        }
                    }
                    Err(e) => m
                        .sql_notes
                        .push(format!("{sig} is installed but failed: {e}")),
                }
                m.sql_signature = Some(sig);
            }
            Ok(None) => m.sql_notes.push(
                "the installed extension has no nweb_merkle_root(); the pure Rust \
                 nweb::merkle::scanprint_merkle_root was measured instead"
                    .into(),
            ),
            Err(e) => m
                .sql_notes
                .push(format!("could not look for nweb_merkle_root(): {e}")),
        }
        drop(text);
        let _ = std::fs::remove_file(&file);
        r.merkle = Some(m);
    }
    r.elapsed_s = started.elapsed().as_secs_f64();
    let md = r.render();
    let path = o.out.join("results.md");
    std::fs::write(&path, &md)?;
    println!("{md}");
    log(&format!("results written to {}", path.display()));
    Ok(())
}
