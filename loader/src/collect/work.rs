//! `collect --from <dispatcher>`: take a target spec and the deny list from a dispatcher
//! (`loader/src/dispatch/`), trusting nothing it says that the bytes do not prove.
//!
//! The spec is fetched by CID and must hash to it (and be canonical), so the manifest's
//! `targetSpecCid` names exactly what was asked; the deny list likewise against `denyCid`.
//! What the spec may scan is then cut down by the collector's own configuration in
//! `commands/collect.rs`: its targets go through `scope::plan` as `--target`s would, so a
//! spec can narrow the collector's scope but never widen it.

use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ipnet::IpNet;
use nweb::target_spec::{DenyList, Target, TargetSpec, MAX_DOCUMENT_BYTES};
use nweb::Cid;
use serde_json::Value;

use crate::config::DenyRule;
use crate::ipfs::{http_client, http_err, read_capped};

/// `/getwork` lists specs, it does not hold them: a few hundred CIDs is plenty.
const MAX_GETWORK_BYTES: u64 = 8 << 20;

/// The work taken.
#[derive(Debug, Clone)]
pub(crate) struct Work {
    pub(crate) cid: String,
    pub(crate) spec: TargetSpec,
    pub(crate) deny: DenyList,
}

impl Work {
    /// The dispatcher's deny list in the collector's terms, to add to its own.
    pub(crate) fn deny_rules(&self) -> Vec<DenyRule> {
        self.deny
            .deny
            .iter()
            .map(|t| match *t {
                Target::Ip(ip) => DenyRule::Ip(ip),
                Target::Cidr(net, prefix) => DenyRule::Cidr(IpNet::new(net, prefix).expect("a valid prefix")),
            })
            .collect()
    }
}

async fn get(http: &reqwest::Client, base: &url::Url, path: &str, cap: u64, timeout: Duration) -> Result<Vec<u8>> {
    let url = base.join(path).with_context(|| format!("--from {base}: cannot add {path}"))?;
    let resp = tokio::time::timeout(timeout, http.get(url.clone()).send())
        .await
        .map_err(|_| anyhow!("{url}: no answer within {} s", timeout.as_secs()))?
        .map_err(|e| anyhow!("{url}: {}", http_err(e)))?;
    if !resp.status().is_success() {
        bail!("{url}: HTTP {}", resp.status());
    }
    read_capped(resp, cap, timeout).await.map_err(|e| anyhow!("{url}: {e}"))
}

/// Fetches `/getwork`, picks `want` (or the first spec), and fetches and checks the spec
/// and the deny list.
pub(crate) async fn take_work(from: &str, want: Option<&str>, timeout: Duration) -> Result<Work> {
    let mut base = url::Url::parse(from).map_err(|e| anyhow!("--from {from:?} is not a URL: {e}"))?;
    if !matches!(base.scheme(), "http" | "https") {
        bail!("--from {from:?}: only http and https dispatchers are supported");
    }
    if !base.path().ends_with('/') {
        let p = format!("{}/", base.path());
        base.set_path(&p);
    }
    let http = http_client(timeout)?;
    let body = get(&http, &base, "getwork", MAX_GETWORK_BYTES, timeout).await?;
    let work: Value = serde_json::from_slice(&body).map_err(|e| anyhow!("{base}getwork: not JSON: {e}"))?;
    let cids: Vec<&str> = work["specs"]
        .as_array()
        .ok_or_else(|| anyhow!("{base}getwork: specs: expected an array"))?
        .iter()
        .map(|s| s["cid"].as_str().ok_or_else(|| anyhow!("{base}getwork: specs[].cid: expected a string")))
        .collect::<Result<_>>()?;
    let cid = match want {
        Some(w) if cids.contains(&w) => w.to_string(),
        Some(w) => bail!("--spec {w}: the dispatcher at {base} does not offer it ({} specs)", cids.len()),
        None => cids
            .first()
            .ok_or_else(|| anyhow!("the dispatcher at {base} offers no target specs"))?
            .to_string(),
    };
    let parsed: Cid = cid
        .parse()
        .map_err(|e| anyhow!("{base}getwork: spec CID {cid:?} is not a CID: {e}"))?;
    let bytes = get(&http, &base, &format!("specs/{cid}"), MAX_DOCUMENT_BYTES as u64, timeout).await?;
    let spec = TargetSpec::from_fetched(&bytes, &parsed).map_err(|e| anyhow!("{base}specs/{cid}: {e}; refused"))?;

    let deny_cid = work["denyCid"]
        .as_str()
        .ok_or_else(|| anyhow!("{base}getwork: denyCid: expected a string"))?
        .to_string();
    let deny_parsed: Cid = deny_cid
        .parse()
        .map_err(|e| anyhow!("{base}getwork: denyCid {deny_cid:?} is not a CID: {e}"))?;
    let bytes = get(&http, &base, "deny", MAX_DOCUMENT_BYTES as u64, timeout).await?;
    let deny = DenyList::from_fetched(&bytes, &deny_parsed).map_err(|e| anyhow!("{base}deny: {e}; refused"))?;
    tracing::info!(spec = %cid, profile = spec.profile.name, deny = %deny_cid, "work taken");
    Ok(Work { cid, spec, deny })
}
