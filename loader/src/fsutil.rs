//! Atomic file and directory writes, the only way the loader puts files on disk.
//!
//! A reader (a cron job picking up a payload, a gateway serving the CAR directory, the
//! next `pin`) sees the old content or the new one, never half of either, and that stays
//! true across a power cut: the data is fsynced before the rename makes it visible, and
//! the directory is fsynced after it so the rename itself is durable.

use std::fs::{File, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The directory a path lives in; `""` (a bare file name) is the current directory.
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// `.<name>.tmp-`: hidden, and recognisable as ours if a crash leaves one behind.
fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp-")
}

/// Makes a rename or a new entry in `dir` survive a crash.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))
}

/// Replaces `path` with `bytes`: a temporary file in the same directory (so the rename
/// stays on one file system) is written, fsynced and renamed over `path`, then the
/// directory is fsynced. The parent directory must exist. On error the temporary file is
/// removed and `path` keeps its old content.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_of(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(path))
        // tempfile's 0600 would hide a CAR from the gateway serving the directory; the
        // umask decides, as for any file the loader writes.
        .permissions(Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file next to {}", path.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("cannot write {}", tmp.path().display()))?;
    let shown = tmp.path().display().to_string();
    // A failed persist hands the file back; dropping it removes it.
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot move {shown} to {}", path.display()))?;
    sync_dir(dir)
}

/// A directory built next to its destination and moved into place whole by
/// [`Staging::commit`]; dropped uncommitted, it is removed with everything in it.
pub struct Staging {
    dir: tempfile::TempDir,
}

impl Staging {
    /// A fresh staging directory beside `out` (same file system, so commit is a rename).
    pub fn new(out: &Path) -> Result<Staging> {
        let parent = parent_of(out);
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        let dir = tempfile::Builder::new()
            .prefix(&temp_prefix(out))
            // The bundle directory keeps the umask's mode after the rename, not 0700.
            .permissions(Permissions::from_mode(0o777))
            .tempdir_in(parent)
            .with_context(|| format!("cannot create a staging directory in {}", parent.display()))?;
        Ok(Staging { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `(relative path, bytes)` files, each fsynced, and fsyncs every directory
    /// that gained an entry, so that after commit the whole tree is on disk.
    pub fn write_files(&self, files: &[(String, Vec<u8>)]) -> Result<()> {
        let mut dirs: std::collections::BTreeSet<PathBuf> = std::collections::BTreeSet::new();
        for (rel, bytes) in files {
            let p = self.path().join(rel);
            let dir = parent_of(&p).to_path_buf();
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let mut f = File::create(&p).with_context(|| format!("cannot write {}", p.display()))?;
            f.write_all(bytes)
                .and_then(|()| f.sync_all())
                .with_context(|| format!("cannot write {}", p.display()))?;
            // The new subdirectories' entries live in their parents, up to the root.
            let mut d = dir.as_path();
            while d.starts_with(self.path()) {
                dirs.insert(d.to_path_buf());
                match d.parent() {
                    Some(up) => d = up,
                    None => break,
                }
            }
        }
        for d in &dirs {
            sync_dir(d)?;
        }
        Ok(())
    }

    /// Moves the staging directory to `out` and fsyncs `out`'s parent. An empty
    /// directory at `out` is replaced; a non-empty one is an error and stays untouched.
    pub fn commit(self, out: &Path) -> Result<()> {
        if out.is_dir() {
            std::fs::remove_dir(out)
                .with_context(|| format!("--out {} is no longer empty; bundle left unwritten", out.display()))?;
        }
        std::fs::rename(self.path(), out)
            .with_context(|| format!("cannot move {} to {}", self.path().display(), out.display()))?;
        // Renamed away: nothing is left for TempDir to remove.
        let _ = self.dir.keep();
        sync_dir(parent_of(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_replaces_whole_and_leaves_no_temporary_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("payload.json");
        write_atomically(&p, b"old").unwrap();
        write_atomically(&p, b"new content").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new content");
        assert_eq!(entries(d.path()), ["payload.json"]);
    }

    #[test]
    fn files_and_directories_get_the_umasks_mode_not_tempfiles() {
        let d = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let (plain_file, plain_dir) = (d.path().join("plain"), d.path().join("plain-dir"));
        std::fs::write(&plain_file, b"x").unwrap();
        std::fs::create_dir(&plain_dir).unwrap();
        let p = d.path().join("atomic");
        write_atomically(&p, b"x").unwrap();
        assert_eq!(mode(&p), mode(&plain_file));
        let out = d.path().join("bundle");
        let s = Staging::new(&out).unwrap();
        s.write_files(&[("raw/x".to_string(), b"x".to_vec())]).unwrap();
        s.commit(&out).unwrap();
        assert_eq!(mode(&out), mode(&plain_dir));
        assert_eq!(mode(&out.join("raw/x")), mode(&plain_file));
    }

    #[test]
    fn failed_write_keeps_the_old_content_and_cleans_up() {
        let d = tempfile::tempdir().unwrap();
        // A directory in the way makes the rename fail after the temporary file is written.
        let p = d.path().join("target");
        std::fs::create_dir(&p).unwrap();
        std::fs::write(p.join("inside"), b"old").unwrap();
        let e = write_atomically(&p, b"new").unwrap_err();
        assert!(format!("{e:#}").contains("cannot move"), "{e:#}");
        assert_eq!(entries(d.path()), ["target"]);
        assert_eq!(std::fs::read(p.join("inside")).unwrap(), b"old");
        // No parent directory: nothing is created anywhere.
        assert!(write_atomically(&d.path().join("missing/x"), b"x").is_err());
        assert_eq!(entries(d.path()), ["target"]);
    }

    #[test]
    fn readers_see_old_or_new_never_a_part() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("car");
        let old = vec![b'a'; 1 << 20];
        let new = vec![b'b'; 1 << 20];
        write_atomically(&p, &old).unwrap();
        let reader = {
            let p = p.clone();
            let (old, new) = (old.clone(), new.clone());
            std::thread::spawn(move || {
                for _ in 0..200 {
                    let got = std::fs::read(&p).unwrap();
                    assert!(got == old || got == new, "read {} bytes of mixed content", got.len());
                }
            })
        };
        for i in 0..50 {
            write_atomically(&p, if i % 2 == 0 { &new } else { &old }).unwrap();
        }
        reader.join().unwrap();
    }

    #[test]
    fn staging_commits_whole_or_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("bundle");
        let files = vec![
            ("manifest.json".to_string(), b"{}".to_vec()),
            ("raw/nmap.xml".to_string(), b"<x/>".to_vec()),
        ];
        let s = Staging::new(&out).unwrap();
        s.write_files(&files).unwrap();
        assert!(!out.exists(), "nothing is visible before commit");
        drop(s);
        assert!(entries(d.path()).is_empty(), "an uncommitted staging directory is removed");

        std::fs::create_dir(&out).unwrap();
        let s = Staging::new(&out).unwrap();
        s.write_files(&files).unwrap();
        s.commit(&out).unwrap();
        assert_eq!(entries(d.path()), ["bundle"]);
        assert_eq!(std::fs::read(out.join("raw/nmap.xml")).unwrap(), b"<x/>");

        // A non-empty --out is never replaced.
        let s = Staging::new(&out).unwrap();
        s.write_files(&files).unwrap();
        assert!(s.commit(&out).is_err());
        assert_eq!(entries(d.path()), ["bundle"]);
    }
}
