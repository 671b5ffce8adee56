//! RB2: nuclei matched an allowlisted admin-panel template
//! (`EngineConfig::is_panel_template`) at a URL.

use serde_json::{json, Map, Value};

use super::{url_root_proof, Candidate};
use crate::canon::{canonical_url, canonical_url_root, redact_userinfo, url_scheme_port};
use crate::config::EngineConfig;
use crate::contract::Endpoint;
use crate::diff::{Authority, PriorState, NUCLEI_TOOLS};
use crate::identity::RiskBucket;

/// One exposure per panel template and canonical URL.
pub(crate) fn candidates(config: &EngineConfig, ep: &Endpoint, found: &mut Vec<Candidate>) {
    for f in &ep.findings.nuclei {
        let tags = f.metadata.as_ref().map(|m| m.tags.as_slice()).unwrap_or(&[]);
        if !config.is_panel_template(&f.template_id, f.template_path.as_deref(), tags) {
            continue;
        }
        let Some(url) = canonical_url(&f.matched_at) else { continue };
        let Some((scheme, port)) = url_scheme_port(&url) else { continue };
        let mut ev = Map::new();
        ev.insert("template_id".into(), json!(f.template_id));
        ev.insert("canonical_url".into(), json!(url));
        ev.insert("matched_at".into(), json!(redact_userinfo(&f.matched_at)));
        ev.insert("extracted_results".into(), json!(f.extracted_results));
        ev.insert("severity".into(), json!(f.severity));
        ev.insert("name".into(), json!(f.metadata.as_ref().and_then(|m| m.name.clone())));
        ev.insert("tool".into(), json!(f.tool.as_deref().unwrap_or("nuclei")));
        if let Some(raw) = &f.raw {
            ev.insert("nuclei_raw".into(), redacted(raw));
        }
        found.push(Candidate {
            bucket: RiskBucket::Rb2,
            proto: scheme,
            port,
            fingerprint: format!("tpl:{}|url:{url}", f.template_id),
            detail: format!("tpl:{}|url:{url}", f.template_id),
            evidence: ev,
        });
    }
}

/// `v` with the userinfo of every URL in it removed (credentials are never stored).
fn redacted(v: &Value) -> Value {
    match v {
        Value::String(s) if s.contains('@') => Value::String(redact_userinfo(s)),
        Value::Array(a) => Value::Array(a.iter().map(redacted).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), redacted(x))).collect()),
        other => other.clone(),
    }
}

/// Fixed when nuclei ran on the URL root, the root answered, and no nuclei
/// finding the engine could not read might have been this panel.
pub(crate) fn proof_of_fix(auth: &Authority<'_>, ep: &Endpoint, prev: &PriorState) -> Result<String, String> {
    let unreadable = ep.findings.nuclei.iter().any(|f| canonical_url(&f.matched_at).is_none());
    let listed = |c: &crate::contract::Coverage, root: &str| {
        c.nuclei_urls.iter().any(|u| canonical_url_root(u).as_deref() == Some(root))
    };
    url_root_proof(auth, ep, prev, NUCLEI_TOOLS, listed, false, unreadable)
}
