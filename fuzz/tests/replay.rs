//! Runs every target on its seeds and on every committed crash input, so what
//! the fuzzers found stays fixed in plain `cargo test`, without libFuzzer.

use std::fs;
use std::path::{Path, PathBuf};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// `targets.txt`: a target's name, then its seed directories.
fn seed_dirs(root: &Path) -> Vec<(String, Vec<PathBuf>)> {
    fs::read_to_string(root.join("targets.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut words = l.split_whitespace();
            let name = words.next().unwrap().to_string();
            (name, words.map(|d| root.join(d)).collect())
        })
        .collect()
}

#[test]
fn every_target_is_listed_once() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listed: Vec<String> = seed_dirs(root).into_iter().map(|(n, _)| n).collect();
    let known: Vec<String> = xray_fuzz::TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(listed, known);
}

#[test]
fn seeds_and_found_crashes_replay_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut ran = 0;
    for (name, mut dirs) in seed_dirs(root) {
        let (_, target) = xray_fuzz::TARGETS.iter().find(|(n, _)| *n == name).unwrap();
        dirs.push(root.join("artifacts-found").join(&name));
        let mut inputs = Vec::new();
        for d in &dirs {
            files_under(d, &mut inputs);
        }
        assert!(!inputs.is_empty(), "{name} has no seeds");
        for input in inputs {
            let data = fs::read(&input).unwrap();
            let outcome = std::panic::catch_unwind(|| target(&data));
            assert!(outcome.is_ok(), "{name} fails on {}", input.display());
            ran += 1;
        }
    }
    println!("replayed {ran} inputs");
}
