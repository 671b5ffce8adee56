//! Small helpers: timing, medians, /proc readings, machine facts.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Median of a non-empty sample (mean of the middle two for an even count).
pub fn median(xs: &[f64]) -> f64 {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs `f` `reps` times and returns the median wall time in milliseconds
/// with the last result.
pub fn time_ms<T>(reps: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps.max(1) {
        let t = Instant::now();
        let r = f();
        times.push(t.elapsed().as_secs_f64() * 1e3);
        last = Some(std::hint::black_box(r));
    }
    (median(&times), last.unwrap())
}

/// Memory figures of one process from /proc/<pid>/status, in KiB.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcMem {
    pub hwm: u64,
    pub rss_anon: u64,
    pub rss_file: u64,
    pub rss_shmem: u64,
}

pub fn proc_mem(pid: i32) -> Option<ProcMem> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut m = ProcMem::default();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        let (Some(k), Some(v)) = (it.next(), it.next()) else {
            continue;
        };
        let v: u64 = v.parse().unwrap_or(0);
        match k {
            "VmHWM:" => m.hwm = v,
            "RssAnon:" => m.rss_anon = v,
            "RssFile:" => m.rss_file = v,
            "RssShmem:" => m.rss_shmem = v,
            _ => {}
        }
    }
    Some(m)
}

pub fn cmd_output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// nproc, CPU model, memory, kernel: recorded with every run.
pub fn machine_facts() -> Vec<(String, String)> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "?".into());
    let flags = cpuinfo
        .lines()
        .find(|l| l.starts_with("flags"))
        .unwrap_or_default();
    let sha_ni = flags.split_whitespace().any(|f| f == "sha_ni");
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .map(|l| {
            l.split_whitespace()
                .nth(1)
                .unwrap_or("0")
                .parse::<u64>()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    vec![
        ("nproc".into(), nproc.to_string()),
        (
            "CPU".into(),
            format!("{model} (sha_ni: {})", if sha_ni { "yes" } else { "no" }),
        ),
        (
            "memory".into(),
            format!("{:.1} GiB", mem as f64 / 1024.0 / 1024.0),
        ),
        (
            "kernel".into(),
            cmd_output("uname", &["-sr"]).unwrap_or_else(|| "?".into()),
        ),
        (
            "rustc".into(),
            cmd_output("rustc", &["--version"]).unwrap_or_else(|| "?".into()),
        ),
    ]
}

/// The code state measured: git commit, uncommitted files, installed extension.
pub fn code_state(repo: &Path) -> Vec<(String, String)> {
    let r = repo.to_string_lossy().to_string();
    let head = cmd_output("git", &["-C", &r, "rev-parse", "--short=12", "HEAD"])
        .unwrap_or_else(|| "?".into());
    // Not `cmd_output`: trimming would cut the status column of the first line.
    let dirty = Command::new("git")
        .args([
            "-C",
            &r,
            "status",
            "--porcelain",
            "--",
            "xray_engine/src",
            "xray_parsers/src",
            "nweb/src",
            "xray_pg",
            "sql",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let dirty: Vec<&str> = dirty.lines().map(|l| l.get(3..).unwrap_or(l)).collect();
    let mut v = vec![
        ("git HEAD".into(), head),
        (
            "uncommitted engine/extension files".into(),
            if dirty.is_empty() {
                "none".into()
            } else {
                dirty.join(", ")
            },
        ),
    ];
    if let Some(libdir) = cmd_output("/usr/lib/postgresql/15/bin/pg_config", &["--pkglibdir"]) {
        let so = Path::new(&libdir).join("xray_pg.so");
        if let Ok(bytes) = std::fs::read(&so) {
            use sha2::{Digest, Sha256};
            let modified = cmd_output(
                "date",
                &["-u", "-r", &so.to_string_lossy(), "+%Y-%m-%dT%H:%M:%SZ"],
            )
            .unwrap_or_default();
            v.push((
                "installed xray_pg.so".into(),
                format!(
                    "sha256 {} (installed {modified})",
                    &hex::encode(Sha256::digest(&bytes))[..16]
                ),
            ));
        }
    }
    v
}
