//! The hoarder's machinery behind `xray-loader pin` (`commands/pin.rs`). Keeps its owner's
//! bundles alive and exports CARs.
//!
//! - `--add DIR`: a bundle directory is added (Kubo `add` with the docs/design.md D7 flags, the root
//!   checked against the nweb crate's CID) and/or written as `<cid>.car` to the CAR directory.
//! - The owner's bundles (every CID whose ScanSubmissions the owner attested, from
//!   nweb.v_submissions): pinned in Kubo when Kubo is configured (imported from a
//!   verified CAR when Kubo does not have it), and present as a verified `<cid>.car` in
//!   the CAR directory (`ipfs.car_dir`, or `--export DIR`). Without Kubo, the CAR
//!   directory is the store.
//!
//! One line per bundle on stdout: `<cid>\t<state>\t<detail>`. Exit 1 when a bundle is
//! missing, so cron mails about it.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use nweb::Cid;

use super::{verify_car, write_car_file, CarError, Sources};

/// Every regular file under `dir`, with its `/`-joined relative path, sorted.
pub fn read_bundle_dir(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let t = e.file_type()?;
            if t.is_dir() {
                walk(base, &p, out)?;
            } else if t.is_file() {
                let rel = p
                    .strip_prefix(base)
                    .map_err(|_| anyhow!("{} is outside {}", p.display(), base.display()))?;
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| {
                        c.as_os_str()
                            .to_str()
                            .map(str::to_string)
                            .ok_or_else(|| anyhow!("{}: file names must be UTF-8", p.display()))
                    })
                    .collect::<Result<_>>()?;
                out.push((
                    rel.join("/"),
                    std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))?,
                ));
            } else {
                bail!("{}: only regular files and directories can be in a bundle", p.display());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    if out.is_empty() {
        bail!("{}: no files", dir.display());
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Makes sure one bundle is pinned (Kubo) and exported (CAR directory).
pub(crate) async fn keep_one(sources: &Sources, export: Option<&Path>, cid: &Cid) -> Result<String> {
    let mut done = Vec::new();
    let mut car: Option<super::VerifiedCar> = None;
    // An exported CAR that verifies is kept as it is.
    if let Some(d) = export {
        let path = d.join(format!("{cid}.car"));
        if let Ok(bytes) = std::fs::read(&path) {
            match verify_car(&bytes, cid, sources.max_bytes) {
                Ok(v) => car = Some(v),
                // Over our limit is not damage: the bundle is not at fault, and the copy
                // may be the last one (docs/design.md D42). Kept as it is, unverified.
                Err(e @ CarError::Limit(_)) => {
                    tracing::warn!(path = %path.display(), error = %e, "exported CAR is over our limit; kept unverified");
                    return Ok(format!("CAR {} kept unverified: {e}", path.display()));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "exported CAR is damaged; replacing it");
                    std::fs::remove_file(&path).ok();
                }
            }
        }
    }
    if let Some(k) = &sources.kubo {
        if k.is_pinned(cid).await? {
            done.push("pinned".to_string());
        } else {
            // From a CAR we hold; else Kubo may find it on the network; else the gateways.
            let from_network = car.is_none() && k.pin_add(cid).await.is_ok() && k.is_pinned(cid).await.unwrap_or(false);
            if !from_network {
                if car.is_none() {
                    car = Some(fetch(sources, cid).await?);
                }
                let v = car.as_ref().expect("fetched above");
                k.dag_import(v.bytes.clone()).await?;
                if !k.is_pinned(cid).await? {
                    bail!("kubo dag/import did not pin {cid}");
                }
            }
            done.push("pinned now".to_string());
        }
    }
    if let Some(d) = export {
        let path = d.join(format!("{cid}.car"));
        if path.exists() {
            done.push(format!("CAR {}", path.display()));
        } else {
            if car.is_none() {
                car = Some(fetch(sources, cid).await?);
            }
            let p = write_car_file(d, car.as_ref().expect("fetched above"))?;
            done.push(format!("CAR {} written", p.display()));
        }
    }
    Ok(done.join("; "))
}

async fn fetch(sources: &Sources, cid: &Cid) -> Result<super::VerifiedCar> {
    let f = sources.fetch(cid).await;
    match f.car {
        Some(v) if v.content_error.is_none() => Ok(v),
        Some(v) => bail!("not a bundle directory: {}", v.content_error.unwrap_or_default()),
        None => bail!("{}", f.failure_detail()),
    }
}
