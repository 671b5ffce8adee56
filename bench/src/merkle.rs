//! Merkle roots over scanprint JSONL against plain SHA-256 of the same bytes.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};
use nweb::merkle::scanprint_merkle_root;

use crate::db::StoredText;
use crate::util::{median, time_ms, Res};

/// Repetitions of every Merkle measurement (`--reps` is for the ingest runs).
pub const REPS: usize = 3;

#[derive(Debug, Clone)]
pub struct MerkleResult {
    pub bytes: usize,
    pub lines: usize,
    pub sha256sum_ms: f64,
    pub sha2_in_process_ms: f64,
    pub merkle_rust_ms: f64,
    /// Hex SHA-256 of the bytes (sha256sum's).
    pub sha256: String,
    pub root: String,
    /// The installed SQL function, e.g. `nweb_merkle_root(text)`.
    pub sql_signature: Option<String>,
    /// `(ms, root)` of the SQL function on the text sent by the client.
    pub sql_param: Option<(f64, String)>,
    /// The SQL function on the same text stored in a table.
    pub sql_stored: Option<StoredText>,
    pub sql_notes: Vec<String>,
}

pub fn generate(seed: u64, mb: usize, file: &Path) -> Res<String> {
    let text = xray_synth::scanprint_jsonl(seed, mb * 1024 * 1024);
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(file, &text)?;
    Ok(text)
}

pub fn run(text: &str, file: &Path, reps: usize) -> Res<MerkleResult> {
    // sha256sum reads the file from the page cache (it was just written, and
    // the first, untimed run warms it).
    let sha256sum = |p: &Path| -> Res<(f64, String)> {
        let t = Instant::now();
        let out = Command::new("sha256sum").arg(p).output()?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if !out.status.success() {
            return Err("sha256sum failed".into());
        }
        let digest = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        Ok((ms, digest))
    };
    let (_, digest) = sha256sum(file)?;
    let mut times = Vec::new();
    for _ in 0..reps {
        times.push(sha256sum(file)?.0);
    }
    let sha256sum_ms = median(&times);
    let (sha2_in_process_ms, d2) = time_ms(reps, || hex::encode(Sha256::digest(text.as_bytes())));
    if d2 != digest {
        return Err("sha2 and sha256sum disagree".into());
    }
    let (merkle_rust_ms, root) = time_ms(reps, || {
        scanprint_merkle_root(text).expect("valid scanprint")
    });
    Ok(MerkleResult {
        bytes: text.len(),
        lines: text.lines().count(),
        sha256sum_ms,
        sha2_in_process_ms,
        merkle_rust_ms,
        sha256: digest,
        root,
        sql_signature: None,
        sql_param: None,
        sql_stored: None,
        sql_notes: Vec::new(),
    })
}
