//! One scan at a time per tenant: an advisory `flock` on a lock file. The
//! kernel drops the lock when the process dies, so a crashed run never
//! leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use uuid::Uuid;

#[derive(Debug)]
pub struct TenantLock {
    // Held for its lock; closing the file releases it.
    _file: File,
    pub path: PathBuf,
}

/// `$XDG_RUNTIME_DIR`, else `/tmp`.
pub fn default_dir() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

pub fn acquire(dir: Option<&Path>, tenant: Uuid) -> Result<TenantLock> {
    let dir = dir.map(Path::to_path_buf).unwrap_or_else(default_dir);
    let path = dir.join(format!("xray-loader-{tenant}.lock"));
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            let by = if holder.is_empty() {
                String::new()
            } else {
                format!(" by pid {holder}")
            };
            bail!(
                "another scan for tenant {tenant} is running (lock {} is held{by})",
                path.display()
            );
        }
        Err(TryLockError::Error(e)) => bail!("cannot lock {}: {e}", path.display()),
    }
    // For people wondering who holds it; the lock itself is the flock.
    file.set_len(0).ok();
    let _ = writeln!(file, "{}", std::process::id());
    Ok(TenantLock { _file: file, path })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_run_for_the_same_tenant_is_refused() {
        let dir = std::env::temp_dir().join(format!("xray-lock-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tenant = Uuid::from_u128(0x1111);
        let first = acquire(Some(&dir), tenant).unwrap();
        let err = acquire(Some(&dir), tenant).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "another scan for tenant {tenant} is running (lock {}",
                first.path.display()
            )),
            "{err}"
        );
        assert!(
            err.ends_with(&format!("is held by pid {})", std::process::id())),
            "{err}"
        );
        // Another tenant is independent.
        let other = acquire(Some(&dir), Uuid::from_u128(0x2222)).unwrap();
        drop(first);
        let again = acquire(Some(&dir), tenant).unwrap();
        drop((again, other));
        std::fs::remove_dir_all(&dir).ok();
    }
}
