//! A Kubo RPC client (`POST /api/v0/<command>`): add, pin, and CAR export and import.
//!
//! `add` uses the flags docs/design.md D7 fixes (`--cid-version=1 --raw-leaves
//! --wrap-with-directory`, 256 KiB chunks) and the root Kubo answers must equal the CID
//! the nweb crate computes for the same files: a different CID would mean the bundle is not
//! addressed the way the rest of nweb addresses it.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use nweb::unixfs;
use nweb::Cid;

use super::{http_err, read_capped};
use crate::chain::config::redact;

#[derive(Debug, Clone)]
pub struct Kubo {
    api: url::Url,
    auth: Option<(String, Option<String>)>,
    http: reqwest::Client,
    timeout: Duration,
    shown: String,
}

#[derive(Debug, Deserialize)]
struct KuboError {
    #[serde(rename = "Message")]
    message: String,
}

#[derive(Debug, Deserialize)]
struct AddEvent {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Hash")]
    hash: Option<String>,
}

/// `%`-escapes what a multipart filename may not hold; Kubo unescapes it (a `/` inside a
/// name would otherwise be a path separator of its own).
fn escape_name(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The multipart body of `add` for a directory tree: one `application/x-directory` part
/// per directory (parents first), then one part per file, paths `/`-joined and escaped.
pub fn multipart_body(files: &[(String, Vec<u8>)], boundary: &str) -> Vec<u8> {
    let mut dirs: Vec<String> = Vec::new();
    for (p, _) in files {
        let parts: Vec<&str> = p.split('/').collect();
        for i in 1..parts.len() {
            let d = parts[..i].join("/");
            if !dirs.contains(&d) {
                dirs.push(d);
            }
        }
    }
    dirs.sort();
    let esc = |p: &str| p.split('/').map(escape_name).collect::<Vec<_>>().join("%2F");
    let mut body = Vec::new();
    for d in &dirs {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/x-directory\r\n\r\n\r\n",
                esc(d)
            )
            .as_bytes(),
        );
    }
    let mut sorted: Vec<&(String, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (p, data) in sorted {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                esc(p)
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

impl Kubo {
    pub fn new(api: url::Url, http: reqwest::Client, timeout: Duration) -> Kubo {
        let shown = redact(&api);
        let auth =
            (!api.username().is_empty()).then(|| (api.username().to_string(), api.password().map(str::to_string)));
        let mut api = api;
        let _ = api.set_username("");
        let _ = api.set_password(None);
        Kubo {
            api,
            auth,
            http,
            timeout,
            shown,
        }
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn url(&self, cmd: &str, args: &[(&str, &str)]) -> url::Url {
        let mut u = self.api.clone();
        let p = format!("{}/api/v0/{cmd}", u.path().trim_end_matches('/'));
        u.set_path(&p);
        {
            let mut q = u.query_pairs_mut();
            q.clear();
            for (k, v) in args {
                q.append_pair(k, v);
            }
        }
        u
    }

    async fn post(
        &self,
        cmd: &str,
        args: &[(&str, &str)],
        body: Option<(String, Vec<u8>)>,
    ) -> Result<reqwest::Response> {
        let mut req = self.http.post(self.url(cmd, args));
        if let Some((user, pw)) = &self.auth {
            req = req.basic_auth(user, pw.as_deref());
        }
        if let Some((ct, b)) = body {
            req = req.header(reqwest::header::CONTENT_TYPE, ct).body(b);
        }
        let resp = tokio::time::timeout(self.timeout, req.send())
            .await
            .map_err(|_| anyhow!("kubo {cmd}: no answer within {} s", self.timeout.as_secs()))?
            .map_err(|e| anyhow!("kubo {cmd}: {}", http_err(e)))?;
        let status = resp.status();
        if !status.is_success() {
            let text = read_capped(resp, 64 << 10, self.timeout).await.unwrap_or_default();
            let msg = serde_json::from_slice::<KuboError>(&text)
                .map(|e| e.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&text).trim().chars().take(200).collect());
            bail!("kubo {cmd}: HTTP {}: {msg}", status.as_u16());
        }
        Ok(resp)
    }

    pub async fn version(&self) -> Result<String> {
        let resp = self.post("version", &[], None).await?;
        let b = read_capped(resp, 64 << 10, self.timeout)
            .await
            .map_err(|e| anyhow!("kubo version: {e}"))?;
        let v: serde_json::Value = serde_json::from_slice(&b).map_err(|e| anyhow!("kubo version: {e}"))?;
        Ok(v["Version"].as_str().unwrap_or("?").to_string())
    }

    /// `ipfs add --cid-version=1 --raw-leaves --wrap-with-directory --pin` of a bundle;
    /// the root must be the CID the nweb crate computes.
    pub async fn add_bundle(&self, files: &[(String, Vec<u8>)]) -> Result<Cid> {
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), d.as_slice())).collect();
        let expected = unixfs::directory_cid(&refs).map_err(|e| anyhow!("{e}"))?;
        let boundary = format!("xray-loader-{}", hex::encode(&expected.to_bytes()[..8]));
        let body = multipart_body(files, &boundary);
        let args = [
            ("cid-version", "1"),
            ("raw-leaves", "true"),
            ("wrap-with-directory", "true"),
            ("chunker", "size-262144"),
            ("pin", "true"),
            ("quieter", "false"),
        ];
        let resp = self
            .post(
                "add",
                &args,
                Some((format!("multipart/form-data; boundary={boundary}"), body)),
            )
            .await?;
        let text = read_capped(resp, 16 << 20, self.timeout)
            .await
            .map_err(|e| anyhow!("kubo add: {e}"))?;
        let events: Vec<AddEvent> = String::from_utf8_lossy(&text)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .filter(|e: &AddEvent| e.hash.is_some())
            .collect();
        // The wrapping directory has an empty name and comes last.
        let root = events
            .iter()
            .rev()
            .find(|e| e.name.is_empty())
            .or_else(|| events.last())
            .and_then(|e| e.hash.clone())
            .ok_or_else(|| anyhow!("kubo add: no root in the answer"))?;
        let got: Cid = root
            .parse()
            .map_err(|e| anyhow!("kubo add: {root:?} is not a CID: {e}"))?;
        if got != expected {
            bail!("kubo add: Kubo made {got}, the nweb crate computes {expected} for the same files (design D7 needs them equal)");
        }
        Ok(got)
    }

    pub async fn pin_add(&self, cid: &Cid) -> Result<()> {
        let c = cid.to_string();
        self.post("pin/add", &[("arg", &c), ("recursive", "true")], None)
            .await?;
        Ok(())
    }

    pub async fn is_pinned(&self, cid: &Cid) -> Result<bool> {
        let c = cid.to_string();
        match self.post("pin/ls", &[("arg", &c), ("type", "recursive")], None).await {
            Ok(resp) => {
                let b = read_capped(resp, 1 << 20, self.timeout)
                    .await
                    .map_err(|e| anyhow!("kubo pin/ls: {e}"))?;
                let v: serde_json::Value = serde_json::from_slice(&b).map_err(|e| anyhow!("kubo pin/ls: {e}"))?;
                Ok(v["Keys"].as_object().is_some_and(|k| k.contains_key(&c)))
            }
            Err(e) if e.to_string().contains("not pinned") => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `dag/export`: a CAR of the DAG (Kubo may fetch it from the network first).
    pub async fn dag_export(&self, cid: &Cid, cap: u64) -> Result<Vec<u8>> {
        let c = cid.to_string();
        let resp = self.post("dag/export", &[("arg", &c)], None).await?;
        read_capped(resp, cap, self.timeout)
            .await
            .map_err(|e| anyhow!("kubo dag/export: {e}"))
    }

    /// `dag/import` of a CAR, pinning its roots.
    pub async fn dag_import(&self, car: Vec<u8>) -> Result<()> {
        let boundary = "xray-loader-car";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"bundle.car\"\r\nContent-Type: application/vnd.ipld.car\r\n\r\n"
        )
        .into_bytes();
        body.extend(car);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let resp = self
            .post(
                "dag/import",
                &[("pin-roots", "true")],
                Some((format!("multipart/form-data; boundary={boundary}"), body)),
            )
            .await?;
        read_capped(resp, 1 << 20, self.timeout)
            .await
            .map_err(|e| anyhow!("kubo dag/import: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_has_directories_first_and_escaped_paths() {
        let files = vec![
            ("scanprint/scanprint.v0.jsonl".to_string(), b"{}\n".to_vec()),
            ("manifest.json".to_string(), b"{}".to_vec()),
            ("assets/screenshots/203.0.113.42/1/rdp.png".to_string(), vec![0u8, 1]),
        ];
        let body = String::from_utf8_lossy(&multipart_body(&files, "B")).into_owned();
        let names: Vec<&str> = body
            .split("filename=\"")
            .skip(1)
            .map(|s| &s[..s.find('"').unwrap()])
            .collect();
        assert_eq!(
            names,
            [
                "assets",
                "assets%2Fscreenshots",
                "assets%2Fscreenshots%2F203.0.113.42",
                "assets%2Fscreenshots%2F203.0.113.42%2F1",
                "scanprint",
                "assets%2Fscreenshots%2F203.0.113.42%2F1%2Frdp.png",
                "manifest.json",
                "scanprint%2Fscanprint.v0.jsonl",
            ]
        );
        assert_eq!(body.matches("application/x-directory").count(), 5);
        assert!(body.ends_with("--B--\r\n"));
    }

    #[test]
    fn credentials_leave_the_url() {
        let k = Kubo::new(
            url::Url::parse("http://user:secret@127.0.0.1:5001").unwrap(),
            reqwest::Client::new(),
            Duration::from_secs(1),
        );
        let u = k.url("pin/add", &[("arg", "bafy")]);
        assert_eq!(u.as_str(), "http://127.0.0.1:5001/api/v0/pin/add?arg=bafy");
        assert!(!k.shown().contains("secret"));
        assert_eq!(k.auth, Some(("user".into(), Some("secret".into()))));
    }
}
