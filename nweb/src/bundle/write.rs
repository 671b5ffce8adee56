//! Writing a bundle: the manifest, the scanprint file, the raw tool output, their
//! Merkle root, the directory CID and the CAR, in the layout that
//! [`super::verify`] reads. Pure: the same scan gives the same bytes and CID.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{sha256_hex, verify, BundleInput, Status, MANIFEST_PATH, MANIFEST_SCHEMA, SCANPRINT_PATH};
use crate::scanprint::{self, ScanprintLine};
use crate::unixfs::{self, Dag, ImportParams};
use crate::{car, jcs, merkle, NwebError};

/// What a collector says about the scan it bundles; everything but the tool's
/// own output goes into the manifest.
#[derive(Debug, Clone, Copy)]
pub struct BundleMeta<'a> {
    /// The manifest's `datasetType` and `tool`: `nmap` or `masscan`.
    pub tool: &'a str,
    /// Where the raw tool output goes ([`super::NMAP_XML_PATH`], [`super::MASSCAN_JSON_PATH`]).
    pub raw_path: &'a str,
    pub namespace: &'a str,
    pub vantage: &'a str,
    pub notes: Option<&'a str>,
    pub tool_version: &'a str,
    pub started_at: u64,
    pub finished_at: u64,
    /// The CID of the target spec the scan was asked for (`targetSpecCid`).
    pub target_spec_cid: Option<&'a str>,
    /// The submission kind the spec named (`profile`), which prices the bundle.
    pub profile: Option<&'a str>,
    /// More files (screenshots under `assets/`), each listed in `artifacts` with its hash
    /// so that verification covers them.
    pub extra: &'a [(String, Vec<u8>)],
}

/// A finished bundle, in memory.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// (relative path, bytes), sorted by path.
    pub files: Vec<(String, Vec<u8>)>,
    pub manifest: Value,
    pub merkle_root: String,
    pub lines: usize,
    pub dag: Dag,
    pub car: Vec<u8>,
}

impl Bundle {
    pub fn cid_string(&self) -> String {
        self.dag.root.to_string()
    }
}

/// Builds the bundle of one scan and verifies it as an indexer will, so that a
/// bundle that would be refused is never published.
pub fn build_bundle(meta: &BundleMeta<'_>, raw: Vec<u8>, lines: &[ScanprintLine]) -> Result<Bundle, NwebError> {
    let field = |field: &str, e: NwebError| NwebError::Field { field: field.into(), problem: e.to_string() };
    let jsonl = scanprint::to_jsonl(lines);
    let merkle_root = merkle::scanprint_merkle_root(&jsonl).map_err(|e| field("scanprint", e))?;
    let mut manifest = json!({
        "schema": MANIFEST_SCHEMA,
        "namespace": meta.namespace,
        "datasetType": meta.tool,
        "scanprint": {"path": SCANPRINT_PATH, "merkleRoot": merkle_root},
        "artifacts": [{"path": meta.raw_path, "sha256": sha256_hex(&raw)}],
        "tool": meta.tool,
        "toolVersion": meta.tool_version,
        "vantage": meta.vantage,
        "startedAt": meta.started_at,
        "finishedAt": meta.finished_at,
    });
    if let Some(n) = meta.notes {
        manifest["notes"] = json!(n);
    }
    if let Some(c) = meta.target_spec_cid {
        manifest["targetSpecCid"] = json!(c);
    }
    if let Some(p) = meta.profile {
        manifest["profile"] = json!(p);
    }
    let reserved = [MANIFEST_PATH, SCANPRINT_PATH, meta.raw_path];
    if let Some((p, _)) = meta.extra.iter().find(|(p, _)| reserved.contains(&p.as_str())) {
        return Err(NwebError::Field {
            field: "artifacts".into(),
            problem: format!("{p} is one of the bundle's own files"),
        });
    }
    if let Some(list) = manifest["artifacts"].as_array_mut() {
        list.extend(meta.extra.iter().map(|(p, b)| json!({"path": p, "sha256": sha256_hex(b)})));
    }
    let manifest_text = jcs::canonicalize(&manifest).map_err(|e| field("manifest", e))? + "\n";

    let file_sha: BTreeMap<String, String> = [
        (MANIFEST_PATH.to_string(), sha256_hex(manifest_text.as_bytes())),
        (SCANPRINT_PATH.to_string(), sha256_hex(jsonl.as_bytes())),
        (meta.raw_path.to_string(), sha256_hex(&raw)),
    ]
    .into_iter()
    .chain(meta.extra.iter().map(|(p, b)| (p.clone(), sha256_hex(b))))
    .collect();
    let verdict = verify(&BundleInput {
        manifest: Some(&manifest_text),
        scanprint: Some(&jsonl),
        file_sha256: &file_sha,
        attested_merkle_root: None,
    });
    if verdict.status != Status::Verified {
        return Err(NwebError::Field {
            field: "bundle".into(),
            problem: format!(
                "internal error: the bundle built does not verify: {} {}",
                verdict.reason.map_or("", |r| r.as_str()),
                verdict.reason_detail.unwrap_or_default()
            ),
        });
    }

    let mut files: Vec<(String, Vec<u8>)> = vec![
        (MANIFEST_PATH.to_string(), manifest_text.into_bytes()),
        (meta.raw_path.to_string(), raw),
        (SCANPRINT_PATH.to_string(), jsonl.into_bytes()),
    ];
    files.extend(meta.extra.iter().cloned());
    files.sort();
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
    let dag = unixfs::import_directory(&refs, ImportParams::KUBO).map_err(|e| field("UnixFS import", e))?;
    let car_bytes = car::write_car(&dag.root, &dag.blocks).map_err(|e| field("CAR export", e))?;
    Ok(Bundle {
        files,
        manifest,
        merkle_root,
        lines: verdict.scanprint_lines.unwrap_or(0),
        dag,
        car: car_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::super::{MASSCAN_JSON_PATH, NMAP_XML_PATH};
    use super::*;

    fn line(port: u16, state: &str) -> ScanprintLine {
        ScanprintLine {
            ts: 1_700_000_000,
            ip: "192.0.2.10".into(),
            port,
            proto: "tcp".into(),
            state: state.into(),
            service: Some("ssh".into()),
            product: None,
            version: None,
            banner_sha256: None,
            cert_fpr: None,
            tls_ja3: None,
            latency_ms: None,
            tool: "nmap".into(),
            tool_version: Some("7.93".into()),
            options: Some("-sV -Pn -n -p 22".into()),
            vantage: "AS64500/test".into(),
        }
    }

    fn nmap_meta() -> BundleMeta<'static> {
        BundleMeta {
            tool: "nmap",
            raw_path: NMAP_XML_PATH,
            namespace: "nweb.io",
            vantage: "AS64500/test",
            notes: None,
            tool_version: "7.93",
            started_at: 10,
            finished_at: 12,
            target_spec_cid: None,
            profile: None,
            extra: &[],
        }
    }

    #[test]
    fn a_bundle_verifies_and_its_cid_is_the_directory_cid() {
        let raw = b"<nmaprun version=\"7.93\"/>".to_vec();
        let lines = vec![line(22, "open"), line(23, "closed")];
        let b = build_bundle(&nmap_meta(), raw.clone(), &lines).unwrap();
        assert_eq!(b.lines, 2);
        let paths: Vec<&str> = b.files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, [MANIFEST_PATH, NMAP_XML_PATH, SCANPRINT_PATH]);
        let jsonl = String::from_utf8(b.files[2].1.clone()).unwrap();
        assert_eq!(merkle::scanprint_merkle_root(&jsonl).unwrap(), b.merkle_root);
        assert_eq!(b.manifest["scanprint"]["merkleRoot"], json!(b.merkle_root));
        assert_eq!(b.manifest["artifacts"][0]["sha256"], json!(sha256_hex(&raw)));
        let refs: Vec<(&str, &[u8])> = b.files.iter().map(|(p, x)| (p.as_str(), x.as_slice())).collect();
        assert_eq!(unixfs::directory_cid(&refs).unwrap(), b.dag.root);
        let back = car::unpack_car(&b.car, Some(&b.dag.root), 1 << 20).unwrap();
        assert_eq!(back.files, b.files);
        // Deterministic: the same scan gives the same CID.
        let again = build_bundle(&nmap_meta(), raw, &lines).unwrap();
        assert_eq!(again.dag.root, b.dag.root);
    }

    #[test]
    fn an_empty_masscan_is_a_valid_bundle() {
        let meta = BundleMeta {
            tool: "masscan",
            raw_path: MASSCAN_JSON_PATH,
            namespace: "masspull.org",
            vantage: "v",
            notes: Some("n"),
            tool_version: "1.3.2",
            started_at: 1,
            finished_at: 1,
            target_spec_cid: None,
            profile: None,
            extra: &[],
        };
        let b = build_bundle(&meta, Vec::new(), &[]).unwrap();
        assert_eq!(b.lines, 0);
        assert_eq!(b.manifest["datasetType"], json!("masscan"));
        assert_eq!(b.manifest["notes"], json!("n"));
        assert!(b.files.iter().any(|(p, _)| p == MASSCAN_JSON_PATH));
    }

    #[test]
    fn screenshots_and_the_target_spec_are_in_the_manifest_and_verified() {
        let raw = b"<nmaprun/>".to_vec();
        let png = (
            "assets/screenshots/192.0.2.10/1700000000/http-80.png".to_string(),
            b"\x89PNG fake".to_vec(),
        );
        let extra = [png.clone()];
        let meta = BundleMeta {
            target_spec_cid: Some("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"),
            profile: Some("nmap-full"),
            extra: &extra,
            ..nmap_meta()
        };
        let b = build_bundle(&meta, raw, &[line(80, "open")]).unwrap();
        assert_eq!(b.manifest["targetSpecCid"], json!(meta.target_spec_cid.unwrap()));
        assert_eq!(b.manifest["profile"], json!("nmap-full"));
        assert_eq!(
            b.manifest["artifacts"][1],
            json!({"path": png.0, "sha256": sha256_hex(&png.1)})
        );
        assert!(b.files.contains(&png));
        let back = car::unpack_car(&b.car, Some(&b.dag.root), 1 << 20).unwrap();
        assert_eq!(back.files, b.files);
        // A screenshot cannot stand in for the bundle's own files.
        let clash = [(SCANPRINT_PATH.to_string(), Vec::new())];
        let e = build_bundle(&BundleMeta { extra: &clash, ..nmap_meta() }, Vec::new(), &[]).unwrap_err();
        assert!(e.to_string().contains("is one of the bundle's own files"), "{e}");
    }
}
