//! pg_regress-style tests: every `tests/sql/<name>.sql` runs through psql in
//! a fresh database with the extension, and its output (statements echoed,
//! results, errors with their SQLSTATE) must be `tests/sql/<name>.out`
//! exactly. They pin single-session behaviour and exact error texts, which a
//! DBA reads; the Rust tests beside them cover concurrency and data flows.
//!
//! `REGRESS_BLESS=1 cargo test -p xray_tests --test regress` rewrites the
//! `.out` files from the current output (review the diff before committing).

use std::path::{Path, PathBuf};
use std::process::Command;

use xray_tests::*;

const PSQL: &str = "/usr/lib/postgresql/15/bin/psql";

fn sql_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("sql")
}

fn inputs() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(sql_dir())
        .expect("tests/sql")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    files
}

/// psql reads the file from stdin, as pg_regress does, so errors carry no
/// file name or line prefix; the shell joins stderr to stdout so errors stay
/// where they happened. Verbose errors show the SQLSTATE; their LOCATION line
/// names a C source line of PostgreSQL or of this library, which changes with
/// builds, so it is left out.
fn run_psql(url: &str, input: &Path) -> String {
    let stdin = std::fs::File::open(input).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {PSQL} -X -a -q -v VERBOSITY=verbose -v SHOW_CONTEXT=never -d \"$REGRESS_URL\" 2>&1"))
        .current_dir(sql_dir())
        .env("REGRESS_URL", url)
        .env("PGTZ", "UTC")
        .env("PGDATESTYLE", "ISO, YMD")
        .stdin(stdin)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {PSQL}: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("LOCATION:  "))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn unified_diff(expected: &Path, actual: &str, name: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("regress");
    std::fs::create_dir_all(&dir).unwrap();
    let result = dir.join(format!("{name}.out"));
    std::fs::write(&result, actual).unwrap();
    let out = Command::new("diff").arg("-u").arg(expected).arg(&result).output().expect("diff");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn sql_files_give_their_expected_output() {
    let bless = std::env::var_os("REGRESS_BLESS").is_some_and(|v| v == "1");
    let files = inputs();
    assert!(files.len() >= 5, "tests/sql holds the regress inputs: {files:?}");
    let mut failures = Vec::new();
    for input in &files {
        let name = input.file_stem().unwrap().to_string_lossy().into_owned();
        let expected = input.with_extension("out");
        let db = TestDb::new().await;
        let actual = run_psql(&db.url, input);
        db.finish().await;
        if bless {
            std::fs::write(&expected, &actual).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected).unwrap_or_default();
        if want != actual {
            failures.push(format!("--- {name} ---\n{}", unified_diff(&expected, &actual, &name)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} regress files differ from their .out (REGRESS_BLESS=1 rewrites them):\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
