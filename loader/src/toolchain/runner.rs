//! Running one scanner process with a timeout.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use xray_engine::contract::ErrorEntry;

/// Keep at most this much of a tool's stdout; beyond it the output is
/// drained and dropped so that the tool does not block on a full pipe.
const MAX_STDOUT: usize = 256 * 1024 * 1024;
/// Keep the end of stderr, where tools print the reason they failed.
const MAX_STDERR: usize = 64 * 1024;
/// Stderr excerpt put into a payload error (docs/contract.md §P-8 `details.stderr`).
pub const STDERR_EXCERPT: usize = 2000;
/// After a kill, how long to wait for pipes held open by grandchildren.
const PIPE_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub tool: &'static str,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub stdin: String,
    pub timeout: Duration,
    /// The tool's working directory; `None`: the loader's.
    pub cwd: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(Option<i32>),
    TimedOut,
    SpawnFailed(String),
}

/// What a run produced. Output of a timed-out run is kept: what the tool found
/// before the kill is real, and the timeout error keeps it from proving absence.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub outcome: Outcome,
    pub stdout: String,
    pub stderr: String,
}

impl RunResult {
    /// The docs/contract.md §P-8 error for a failed run, if it failed.
    pub fn error(&self, inv: &Invocation) -> Option<ErrorEntry> {
        let stderr = tail(&self.stderr, STDERR_EXCERPT);
        let stderr = (!stderr.trim().is_empty()).then_some(stderr);
        let (kind, message, details) = match &self.outcome {
            Outcome::Exited(Some(0)) => return None,
            Outcome::Exited(code) => (
                "tool_exit",
                format!(
                    "{} exited with {}",
                    inv.tool,
                    code.map_or_else(|| "a signal".to_string(), |c| format!("status {c}"))
                ),
                json!({"exit_code": code, "stderr": stderr}),
            ),
            Outcome::TimedOut => (
                "timeout",
                format!("{} timed out after {}s and was killed", inv.tool, inv.timeout.as_secs()),
                json!({"exit_code": null, "stderr": stderr, "timeout_seconds": inv.timeout.as_secs()}),
            ),
            Outcome::SpawnFailed(e) => (
                "tool_exit",
                format!("could not start {} ({}): {e}", inv.tool, inv.program.display()),
                json!({"exit_code": null, "stderr": null}),
            ),
        };
        Some(ErrorEntry {
            scope: Some("tool".into()),
            tool: Some(inv.tool.into()),
            message: Some(message),
            kind: Some(kind.into()),
            details: Some(details),
        })
    }
}

/// The last `max` bytes of `s`, cut at a character boundary.
pub fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &s[start..])
}

pub trait CommandRunner: Send + Sync {
    fn run(&self, inv: &Invocation) -> impl Future<Output = RunResult> + Send;
}

/// Runs real processes.
#[derive(Debug, Clone, Default)]
pub struct ProcessRunner;

impl CommandRunner for ProcessRunner {
    async fn run(&self, inv: &Invocation) -> RunResult {
        let started = Instant::now();
        let mut cmd = Command::new(&inv.program);
        if let Some(dir) = &inv.cwd {
            cmd.current_dir(dir);
        }
        cmd.args(&inv.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A timeout, a signal to the loader or a panic drops the child: kill it.
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return RunResult {
                    outcome: Outcome::SpawnFailed(e.to_string()),
                    stdout: String::new(),
                    stderr: String::new(),
                }
            }
        };
        tracing::debug!(tool = inv.tool, program = %inv.program.display(), args = ?inv.args, pid = child.id(), "started");
        let stdin = child.stdin.take();
        let input = inv.stdin.clone();
        let writer = tokio::spawn(async move {
            if let Some(mut stdin) = stdin {
                // A tool that exits without reading its input closes the pipe; that is not our error.
                let _ = stdin.write_all(input.as_bytes()).await;
                let _ = stdin.shutdown().await;
            }
        });
        let out_reader = child
            .stdout
            .take()
            .map(|s| tokio::spawn(read_capped(s, MAX_STDOUT, false)));
        let err_reader = child
            .stderr
            .take()
            .map(|s| tokio::spawn(read_capped(s, MAX_STDERR, true)));

        let outcome = match tokio::time::timeout(inv.timeout, child.wait()).await {
            Ok(Ok(status)) => Outcome::Exited(status.code()),
            Ok(Err(e)) => Outcome::SpawnFailed(format!("wait failed: {e}")),
            Err(_) => {
                let _ = child.kill().await;
                Outcome::TimedOut
            }
        };
        writer.abort();
        let collect = |h: Option<tokio::task::JoinHandle<Vec<u8>>>| async move {
            let Some(h) = h else { return String::new() };
            let abort = h.abort_handle();
            match tokio::time::timeout(PIPE_GRACE, h).await {
                Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                _ => {
                    abort.abort();
                    String::new()
                }
            }
        };
        let stdout = collect(out_reader).await;
        let stderr = collect(err_reader).await;
        let ms = started.elapsed().as_millis() as u64;
        tracing::debug!(tool = inv.tool, ?outcome, ms, stdout_bytes = stdout.len(), "finished");
        RunResult {
            outcome,
            stdout,
            stderr,
        }
    }
}

/// Reads to the end, keeping the first (or, with `keep_tail`, the last)
/// `cap` bytes.
async fn read_capped<R: AsyncRead + Unpin>(mut r: R, cap: usize, keep_tail: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if keep_tail {
                    out.extend_from_slice(&buf[..n]);
                    if out.len() > cap {
                        out.drain(..out.len() - cap);
                    }
                } else if out.len() < cap {
                    let take = n.min(cap - out.len());
                    out.extend_from_slice(&buf[..take]);
                }
            }
        }
    }
    out
}

/// A directory only this process uses, removed when dropped.
#[derive(Debug)]
pub struct PrivateDir {
    pub path: PathBuf,
}

impl PrivateDir {
    pub fn create(prefix: &str) -> anyhow::Result<PrivateDir> {
        use anyhow::Context;
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!("{prefix}-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(PrivateDir { path })
    }

    pub fn write(&self, name: &str, contents: &str) -> anyhow::Result<PathBuf> {
        use anyhow::Context;
        let p = self.path.join(name);
        std::fs::write(&p, contents).with_context(|| format!("cannot write {}", p.display()))?;
        Ok(p)
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `name` on PATH, like `command -v`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

pub fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A version string like "2.3.1" from `tool -version` output
/// ("[INF] Current Version: v2.3.1", "Nmap version 7.93 ( https://nmap.org )").
pub fn parse_version(output: &str) -> Option<String> {
    for line in output.lines() {
        let lower = line.to_ascii_lowercase();
        let Some(i) = lower.find("version") else { continue };
        for word in line[i + "version".len()..].split(|c: char| c.is_whitespace() || c == ':') {
            let w = word.trim_start_matches(['v', 'V']);
            let mut parts = w.split('.');
            let looks = parts
                .next()
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                && parts
                    .next()
                    .is_some_and(|p| p.bytes().next().is_some_and(|b| b.is_ascii_digit()));
            if looks {
                return Some(w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric()).to_string());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(program: &str, args: &[&str], timeout_ms: u64) -> Invocation {
        Invocation {
            tool: "naabu",
            program: program.into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            stdin: "192.0.2.1\n".into(),
            timeout: Duration::from_millis(timeout_ms),
            cwd: None,
        }
    }

    #[tokio::test]
    async fn stdin_is_fed_and_stdout_collected() {
        let i = inv("/bin/sh", &["-c", "cat; echo done >&2"], 5000);
        let r = ProcessRunner.run(&i).await;
        assert_eq!(r.outcome, Outcome::Exited(Some(0)));
        assert_eq!(r.stdout, "192.0.2.1\n");
        assert_eq!(r.stderr, "done\n");
        assert!(r.error(&i).is_none());
    }

    #[tokio::test]
    async fn exit_codes_and_missing_binaries_are_errors() {
        let i = inv(
            "/bin/sh",
            &["-c", "echo 'flag provided but not defined: -x' >&2; exit 2"],
            5000,
        );
        let r = ProcessRunner.run(&i).await;
        let e = r.error(&i).unwrap();
        assert_eq!(e.kind.as_deref(), Some("tool_exit"));
        assert_eq!(e.message.as_deref(), Some("naabu exited with status 2"));
        assert_eq!(e.details.as_ref().unwrap()["exit_code"], json!(2));
        assert_eq!(
            e.details.as_ref().unwrap()["stderr"],
            json!("flag provided but not defined: -x\n")
        );

        let i = inv("/nonexistent/naabu", &[], 5000);
        let e = ProcessRunner.run(&i).await.error(&i).unwrap();
        assert!(e
            .message
            .unwrap()
            .starts_with("could not start naabu (/nonexistent/naabu): "));
    }

    #[tokio::test]
    async fn a_timeout_kills_the_tool_and_keeps_partial_output() {
        let i = inv(
            "/bin/sh",
            &["-c", "echo '{\"ip\":\"192.0.2.1\",\"port\":22}'; exec sleep 30"],
            300,
        );
        let started = Instant::now();
        let r = ProcessRunner.run(&i).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(r.outcome, Outcome::TimedOut);
        assert!(r.stdout.contains("\"port\":22"));
        let e = r.error(&i).unwrap();
        assert_eq!(e.kind.as_deref(), Some("timeout"));
        assert_eq!(e.details.as_ref().unwrap()["timeout_seconds"], json!(0));
    }

    #[test]
    fn stderr_is_truncated_from_the_front() {
        let s = "x".repeat(10) + "é" + &"y".repeat(5);
        assert_eq!(tail(&s, 6), "...yyyyy");
        assert_eq!(tail("short", 10), "short");
    }

    #[test]
    fn versions_from_tool_banners() {
        assert_eq!(parse_version("[INF] Current Version: v2.3.1").as_deref(), Some("2.3.1"));
        assert_eq!(
            parse_version("[INF] Current naabu version 2.3.3 (latest)").as_deref(),
            Some("2.3.3")
        );
        assert_eq!(
            parse_version("Nmap version 7.93 ( https://nmap.org )").as_deref(),
            Some("7.93")
        );
        assert_eq!(
            parse_version("[INF] Nuclei Engine Version: v3.3.5").as_deref(),
            Some("3.3.5")
        );
        assert_eq!(parse_version("no version here"), None);
    }
}
