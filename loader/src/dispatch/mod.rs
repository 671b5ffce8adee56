//! The dispatcher: publishes target specs and the deny list for collectors
//! (`xray-loader collect --from <url>`), open and public as in v1 of the architecture.
//!
//! - `GET /getwork`: `{"specs":[{"cid","spec"}...], "denyCid", "deny"}`.
//! - `GET /specs/{cid}`: the canonical bytes of one spec, which hash to `cid`.
//! - `GET /deny`: the canonical bytes of the deny list, which hash to `denyCid`.
//!
//! Everything is read and validated once at start ([`Catalogue::load`]) and served from
//! memory, so a request never touches the disk and a bad file stops the start, not a
//! collector. `xray-loader dispatch` runs [`router`] alone; `serve` mounts it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use nweb::target_spec::{DenyList, TargetSpec, MAX_DOCUMENT_BYTES};
use serde_json::{json, Value};

/// One published document: its CID, canonical bytes and JSON value.
#[derive(Debug, Clone)]
pub struct Published {
    pub cid: String,
    pub bytes: Vec<u8>,
    pub value: Value,
}

/// What the dispatcher serves.
#[derive(Debug, Clone)]
pub struct Catalogue {
    /// In file-name order, so "the first spec" is the same on every start.
    pub specs: Vec<Published>,
    pub deny: Published,
}

fn read_doc(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if meta.len() > MAX_DOCUMENT_BYTES as u64 {
        bail!("{}: {} bytes is more than the limit of {MAX_DOCUMENT_BYTES}", path.display(), meta.len());
    }
    std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))
}

impl Catalogue {
    /// Every `*.json` in `specs_dir` is a target spec; `deny` (optional) the deny list.
    /// An error names the file and the field.
    pub fn load(specs_dir: &Path, deny: Option<&Path>) -> Result<Catalogue> {
        let entries = std::fs::read_dir(specs_dir).with_context(|| format!("--specs {}", specs_dir.display()))?;
        let mut files: Vec<_> = entries
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("--specs {}", specs_dir.display()))?;
        files.retain(|p| p.extension().is_some_and(|x| x == "json") && p.is_file());
        files.sort();
        if files.is_empty() {
            bail!("--specs {}: no *.json target specs in the directory", specs_dir.display());
        }
        let mut seen: BTreeMap<String, &Path> = BTreeMap::new();
        let mut specs = Vec::with_capacity(files.len());
        for f in &files {
            let spec = TargetSpec::from_json(&read_doc(f)?).map_err(|e| anyhow!("{}: {e}", f.display()))?;
            let cid = spec.cid().to_string();
            if let Some(first) = seen.insert(cid.clone(), f) {
                bail!("{}: the same target spec as {} ({cid})", f.display(), first.display());
            }
            specs.push(Published {
                cid,
                bytes: spec.canonical_bytes(),
                value: spec.to_value(),
            });
        }
        let list = match deny {
            Some(p) => DenyList::from_json(&read_doc(p)?).map_err(|e| anyhow!("{}: {e}", p.display()))?,
            None => DenyList::default(),
        };
        Ok(Catalogue {
            specs,
            deny: Published {
                cid: list.cid().to_string(),
                bytes: list.canonical_bytes(),
                value: list.to_value(),
            },
        })
    }

    pub fn getwork(&self) -> Value {
        json!({
            "specs": self.specs.iter().map(|s| json!({"cid": s.cid, "spec": s.value})).collect::<Vec<_>>(),
            "denyCid": self.deny.cid,
            "deny": self.deny.value,
        })
    }
}

/// The dispatcher's routes, to run alone or to mount in another server.
pub fn router(state: Arc<Catalogue>) -> Router {
    Router::new()
        .route("/getwork", get(getwork))
        .route("/specs/{cid}", get(spec))
        .route("/deny", get(deny))
        .with_state(state)
}

async fn getwork(State(c): State<Arc<Catalogue>>) -> Json<Value> {
    Json(c.getwork())
}

fn document(bytes: &[u8]) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], bytes.to_vec()).into_response()
}

async fn spec(State(c): State<Arc<Catalogue>>, UrlPath(cid): UrlPath<String>) -> Response {
    match c.specs.iter().find(|s| s.cid == cid) {
        Some(s) => document(&s.bytes),
        None => (StatusCode::NOT_FOUND, format!("no target spec {cid} here; see /getwork\n")).into_response(),
    }
}

async fn deny(State(c): State<Arc<Catalogue>>) -> Response {
    document(&c.deny.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_spec_file_is_named_with_its_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"{"schema":"nweb.targetspec.v1","targets":["192.0.2.0/24"],"ports":[80],"profile":"nmap-top1k","rate":{"packetsPerSecond":10}}"#,
        )
        .unwrap();
        let c = Catalogue::load(dir.path(), None).unwrap();
        assert_eq!(c.specs.len(), 1);
        assert_eq!(c.getwork()["specs"][0]["cid"], json!(c.specs[0].cid));
        assert_eq!(c.deny.bytes, DenyList::default().canonical_bytes());
        std::fs::write(dir.path().join("b.json"), r#"{"schema":"nweb.targetspec.v1","targets":["192.0.2.0/24"],"ports":[0],"profile":"nmap-top1k","rate":{"packetsPerSecond":10}}"#).unwrap();
        let e = Catalogue::load(dir.path(), None).unwrap_err().to_string();
        assert!(e.ends_with("b.json: ports[0]: 0 is not a TCP port (1 to 65535)"), "{e}");
    }
}
