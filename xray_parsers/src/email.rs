//! DNS email posture (docs/contract.md §P-9, RB7): pure assessment of SPF, DMARC and
//! DKIM records. The lookups live in `dns.rs`; everything here is a function
//! of the TXT strings so it can be tested without a network.

use serde_json::json;
use xray_engine::contract::{DkimPosture, DmarcPosture, SpfPosture};

/// The result of one TXT lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txt {
    Records(Vec<String>),
    /// NXDOMAIN or no TXT records: a definite "not there".
    None,
    /// Timeout, SERVFAIL, refused: nothing can be concluded.
    Error(String),
}

fn is_spf(r: &str) -> bool {
    let l = r.trim_start().to_ascii_lowercase();
    l == "v=spf1" || l.starts_with("v=spf1 ")
}

/// SPF records among a name's TXT strings.
pub fn spf_records(txt: &[String]) -> Vec<String> {
    txt.iter().filter(|r| is_spf(r)).cloned().collect()
}

/// The `redirect=` target of an SPF record, if it has no `all` of its own
/// (RFC 7208 §6.1: `all` makes redirect irrelevant).
pub fn spf_redirect(record: &str) -> Option<String> {
    let terms: Vec<String> = record.split_whitespace().map(str::to_ascii_lowercase).collect();
    if terms.iter().any(|t| all_qualifier(t).is_some()) {
        return None;
    }
    terms
        .iter()
        .find_map(|t| t.strip_prefix("redirect=").map(|d| d.trim_end_matches('.').to_string()))
}

fn all_qualifier(term: &str) -> Option<char> {
    match term {
        "all" | "+all" => Some('+'),
        "-all" => Some('-'),
        "~all" => Some('~'),
        "?all" => Some('?'),
        _ => None,
    }
}

/// Assesses SPF. `redirect` is the SPF record set of the `redirect=` target
/// when the caller followed it (one level).
///
/// pass: exactly one record ending in `-all`. weak: `~all`, `?all`, `+all`,
/// no `all`, several records (a permerror) or more than 10 lookup terms.
pub fn assess_spf(txt: &Txt, redirect: Option<&Txt>) -> SpfPosture {
    let records = match txt {
        Txt::Error(_) => {
            return SpfPosture {
                present: None,
                raw: None,
                assessment: Some("error".into()),
                issues: vec!["lookup_failed".into()],
            }
        }
        Txt::None => Vec::new(),
        Txt::Records(r) => spf_records(r),
    };
    let mut issues = Vec::new();
    let Some(raw) = records.first().cloned() else {
        return SpfPosture {
            present: Some(false),
            raw: None,
            assessment: Some("missing".into()),
            issues: vec!["no_spf_record".into()],
        };
    };
    if records.len() > 1 {
        issues.push("multiple_spf_records".to_string());
    }
    let terms: Vec<String> = raw.split_whitespace().skip(1).map(str::to_ascii_lowercase).collect();
    let lookups = terms
        .iter()
        .map(|t| t.trim_start_matches(['+', '-', '~', '?']))
        .filter(|t| {
            t.starts_with("include:")
                || *t == "a"
                || t.starts_with("a:")
                || t.starts_with("a/")
                || *t == "mx"
                || t.starts_with("mx:")
                || t.starts_with("mx/")
                || *t == "ptr"
                || t.starts_with("ptr:")
                || t.starts_with("exists:")
                || t.starts_with("redirect=")
        })
        .count();
    if lookups > 10 {
        issues.push("too_many_lookups".to_string());
    }
    if terms.iter().any(|t| {
        t.trim_start_matches(['+', '-', '~', '?']) == "ptr"
            || t.trim_start_matches(['+', '-', '~', '?']).starts_with("ptr:")
    }) {
        issues.push("ptr_mechanism".to_string());
    }
    let mut all = terms.iter().find_map(|t| all_qualifier(t));
    if all.is_none() {
        if let Some(target) = spf_redirect(&raw) {
            issues.push(format!("redirect:{target}"));
            match redirect {
                Some(Txt::Records(r)) => {
                    let inner = spf_records(r);
                    all = inner.first().and_then(|rec| {
                        rec.split_whitespace()
                            .find_map(|t| all_qualifier(&t.to_ascii_lowercase()))
                    });
                    if inner.is_empty() {
                        issues.push("redirect_without_spf".to_string());
                    }
                }
                Some(Txt::None) => issues.push("redirect_without_spf".to_string()),
                Some(Txt::Error(_)) | None => {
                    issues.push("redirect_not_checked".to_string());
                    return SpfPosture {
                        present: Some(true),
                        raw: Some(raw),
                        assessment: Some("error".into()),
                        issues,
                    };
                }
            }
        }
    }
    match all {
        Some('-') => {}
        Some('~') => issues.push("softfail".to_string()),
        Some('?') => issues.push("neutral_all".to_string()),
        Some(_) => issues.push("pass_all".to_string()),
        None => issues.push("missing_all".to_string()),
    }
    let weak = issues.iter().any(|i| {
        matches!(
            i.as_str(),
            "multiple_spf_records"
                | "too_many_lookups"
                | "softfail"
                | "neutral_all"
                | "pass_all"
                | "missing_all"
                | "redirect_without_spf"
        )
    });
    SpfPosture {
        present: Some(true),
        raw: Some(raw),
        assessment: Some(if weak { "weak" } else { "pass" }.into()),
        issues,
    }
}

fn dmarc_records(txt: &[String]) -> Vec<String> {
    txt.iter()
        .filter(|r| {
            let l = r.trim_start().to_ascii_lowercase().replace(' ', "");
            l == "v=dmarc1" || l.starts_with("v=dmarc1;")
        })
        .cloned()
        .collect()
}

/// `tag=value` pairs of a DMARC record, tags lower-cased.
fn dmarc_tags(record: &str) -> Vec<(String, String)> {
    record
        .split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

/// Assesses DMARC. `inherited_from` names the organisational domain whose
/// record applies when the asset's own `_dmarc` name has none; then its `sp`
/// (else `p`) is the effective policy.
///
/// pass: `p` (or `sp`) quarantine/reject applied to 100% and no `sp=none`.
/// weak: `p=none`, `pct` below 100, `sp=none`, no valid policy, or several records.
pub fn assess_dmarc(txt: &Txt, inherited_from: Option<&str>) -> DmarcPosture {
    let records = match txt {
        Txt::Error(_) => {
            return DmarcPosture {
                assessment: Some("error".into()),
                issues: vec!["lookup_failed".into()],
                ..Default::default()
            }
        }
        Txt::None => Vec::new(),
        Txt::Records(r) => dmarc_records(r),
    };
    let Some(raw) = records.first().cloned() else {
        return DmarcPosture {
            present: Some(false),
            assessment: Some("missing".into()),
            issues: vec!["no_dmarc_record".into()],
            ..Default::default()
        };
    };
    let mut issues = Vec::new();
    if records.len() > 1 {
        issues.push("multiple_dmarc_records".to_string());
    }
    if let Some(org) = inherited_from {
        issues.push(format!("inherited_from:{org}"));
    }
    let tags = dmarc_tags(&raw);
    let tag = |name: &str| {
        tags.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    let valid = |p: Option<String>| p.filter(|p| matches!(p.as_str(), "none" | "quarantine" | "reject"));
    let p = valid(tag("p"));
    let sp = valid(tag("sp"));
    if tag("p").is_none() {
        issues.push("missing_policy".to_string());
    } else if p.is_none() {
        issues.push("invalid_policy".to_string());
    }
    let policy = if inherited_from.is_some() {
        sp.clone().or(p.clone())
    } else {
        p.clone()
    };
    let enforcing = matches!(policy.as_deref(), Some("quarantine" | "reject"));
    if policy.as_deref() == Some("none") {
        issues.push("policy_none".to_string());
    }
    if let Some(pct) = tag("pct") {
        if pct.parse::<u8>().map_or(true, |n| n < 100) && enforcing {
            issues.push("pct_below_100".to_string());
        }
    }
    if inherited_from.is_none() && sp.as_deref() == Some("none") && enforcing {
        issues.push("subdomain_policy_none".to_string());
    }
    if tag("rua").is_none() {
        issues.push("no_rua".to_string());
    }
    let weak = records.len() > 1
        || !enforcing
        || issues
            .iter()
            .any(|i| i == "pct_below_100" || i == "subdomain_policy_none");
    DmarcPosture {
        present: Some(true),
        raw: Some(raw),
        policy,
        alignment: Some(json!({"aspf": tag("aspf"), "adkim": tag("adkim")})),
        assessment: Some(if weak { "weak" } else { "pass" }.into()),
        issues,
    }
}

/// Assesses DKIM over the configured selectors.
///
/// ok: every selector has a key. partial: some do. missing: none do.
/// unknown: no selectors configured, or a lookup failed (nothing can be
/// concluded, so no exposure either way).
pub fn assess_dkim(results: &[(String, Txt)]) -> DkimPosture {
    let checked: Vec<String> = results.iter().map(|(s, _)| s.clone()).collect();
    if results.is_empty() {
        return DkimPosture {
            checked_selectors: checked,
            present_selectors: Vec::new(),
            assessment: Some("unknown".into()),
            issues: vec!["no_selectors_configured".into()],
        };
    }
    let mut present = Vec::new();
    let mut issues = Vec::new();
    let mut failed = false;
    for (sel, txt) in results {
        match txt {
            Txt::Error(_) => {
                failed = true;
                issues.push(format!("lookup_failed:{sel}"));
            }
            Txt::None => {}
            Txt::Records(records) => match dkim_key_state(records) {
                Some(true) => present.push(sel.clone()),
                Some(false) => issues.push(format!("revoked:{sel}")),
                None => issues.push(format!("not_dkim:{sel}")),
            },
        }
    }
    let assessment = if failed {
        "unknown"
    } else if present.len() == results.len() {
        "ok"
    } else if present.is_empty() {
        issues.push("no_selector_confirmed".into());
        "missing"
    } else {
        "partial"
    };
    DkimPosture {
        checked_selectors: checked,
        present_selectors: present,
        assessment: Some(assessment.into()),
        issues,
    }
}

/// `Some(true)` for a DKIM key record, `Some(false)` for a revoked one
/// (empty `p=`), `None` when the TXT strings are not DKIM.
fn dkim_key_state(records: &[String]) -> Option<bool> {
    let mut seen = None;
    for r in records {
        let tags: Vec<(String, String)> = dmarc_tags(r);
        let is_dkim = tags
            .iter()
            .any(|(k, v)| (k == "v" && v.eq_ignore_ascii_case("DKIM1")) || k == "p");
        if !is_dkim {
            continue;
        }
        match tags.iter().find(|(k, _)| k == "p") {
            Some((_, key)) if !key.is_empty() => return Some(true),
            _ => seen = Some(false),
        }
    }
    seen
}

/// The organisational domain a subdomain's DMARC falls back to. Without the
/// public suffix list this is the last two labels, which is right for the
/// common case and harmless otherwise (`_dmarc.co.uk` has no record).
pub fn org_domain(domain: &str) -> Option<String> {
    let labels: Vec<&str> = domain.split('.').collect();
    (labels.len() > 2).then(|| labels[labels.len() - 2..].join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(r: &[&str]) -> Txt {
        Txt::Records(r.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn spf_rules() {
        let s = assess_spf(
            &recs(&["google-site-verification=abc", "v=spf1 include:_spf.google.com -all"]),
            None,
        );
        assert_eq!((s.present, s.assessment.as_deref()), (Some(true), Some("pass")));
        assert_eq!(s.raw.as_deref(), Some("v=spf1 include:_spf.google.com -all"));
        assert!(s.issues.is_empty());

        let s = assess_spf(&recs(&["v=spf1 include:_spf.example.net ~all"]), None);
        assert_eq!(
            (s.assessment.as_deref(), s.issues.clone()),
            (Some("weak"), vec!["softfail".to_string()])
        );
        assert_eq!(assess_spf(&recs(&["v=spf1 ?all"]), None).issues, vec!["neutral_all"]);
        assert_eq!(assess_spf(&recs(&["v=spf1 +all"]), None).issues, vec!["pass_all"]);
        assert_eq!(assess_spf(&recs(&["v=spf1 a mx"]), None).issues, vec!["missing_all"]);
        assert_eq!(
            assess_spf(&recs(&["V=SPF1 MX -ALL"]), None).assessment.as_deref(),
            Some("pass")
        );

        let s = assess_spf(&recs(&["v=spf1 -all", "v=spf1 mx -all"]), None);
        assert_eq!(s.assessment.as_deref(), Some("weak"));
        assert_eq!(s.issues, vec!["multiple_spf_records"]);

        let s = assess_spf(&recs(&["v=spf1 ptr -all"]), None);
        assert_eq!(
            (s.assessment.as_deref(), s.issues.clone()),
            (Some("pass"), vec!["ptr_mechanism".to_string()])
        );

        let many = format!(
            "v=spf1 {} -all",
            (0..11)
                .map(|i| format!("include:s{i}.example"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        assert_eq!(assess_spf(&recs(&[&many]), None).issues, vec!["too_many_lookups"]);

        let s = assess_spf(&Txt::None, None);
        assert_eq!((s.present, s.assessment.as_deref()), (Some(false), Some("missing")));
        assert_eq!(
            assess_spf(&recs(&["v=spf10 nope"]), None).assessment.as_deref(),
            Some("missing")
        );
        assert_eq!(
            assess_spf(&Txt::Error("timeout".into()), None).assessment.as_deref(),
            Some("error")
        );
    }

    #[test]
    fn spf_redirect_is_followed_one_level() {
        let main = recs(&["v=spf1 redirect=_spf.example.net"]);
        assert_eq!(
            spf_redirect("v=spf1 redirect=_spf.example.net").as_deref(),
            Some("_spf.example.net")
        );
        assert_eq!(spf_redirect("v=spf1 redirect=x.example -all"), None);
        let s = assess_spf(&main, Some(&recs(&["v=spf1 ip4:192.0.2.0/24 -all"])));
        assert_eq!(s.assessment.as_deref(), Some("pass"));
        assert_eq!(s.issues, vec!["redirect:_spf.example.net"]);
        let s = assess_spf(&main, Some(&recs(&["v=spf1 ip4:192.0.2.0/24 ~all"])));
        assert_eq!(s.issues, vec!["redirect:_spf.example.net", "softfail"]);
        let s = assess_spf(&main, Some(&Txt::None));
        assert_eq!(s.assessment.as_deref(), Some("weak"));
        let s = assess_spf(&main, Some(&Txt::Error("SERVFAIL".into())));
        assert_eq!(s.assessment.as_deref(), Some("error"));
    }

    #[test]
    fn dmarc_rules() {
        let d = assess_dmarc(&recs(&["v=DMARC1; p=reject; rua=mailto:d@example.com; aspf=s"]), None);
        assert_eq!(
            (d.assessment.as_deref(), d.policy.as_deref()),
            (Some("pass"), Some("reject"))
        );
        assert!(d.issues.is_empty(), "{:?}", d.issues);
        assert_eq!(d.alignment, Some(json!({"aspf": "s", "adkim": null})));

        let d = assess_dmarc(&recs(&["v=DMARC1; p=none"]), None);
        assert_eq!(
            (d.assessment.as_deref(), d.policy.as_deref()),
            (Some("weak"), Some("none"))
        );
        assert_eq!(d.issues, vec!["policy_none", "no_rua"]);

        let d = assess_dmarc(
            &recs(&["v=DMARC1; p=quarantine; pct=50; rua=mailto:x@example.com"]),
            None,
        );
        assert_eq!(
            (d.assessment.as_deref(), d.issues.clone()),
            (Some("weak"), vec!["pct_below_100".to_string()])
        );

        let d = assess_dmarc(&recs(&["v=DMARC1; p=reject; sp=none; rua=mailto:x@example.com"]), None);
        assert_eq!(d.issues, vec!["subdomain_policy_none"]);
        assert_eq!(d.assessment.as_deref(), Some("weak"));

        let d = assess_dmarc(&recs(&["v=DMARC1; rua=mailto:x@example.com"]), None);
        assert_eq!((d.assessment.as_deref(), d.policy.clone()), (Some("weak"), None));
        assert_eq!(d.issues, vec!["missing_policy"]);
        assert_eq!(
            assess_dmarc(&recs(&["v=DMARC1; p=block"]), None).issues,
            vec!["invalid_policy", "no_rua"]
        );

        let d = assess_dmarc(&recs(&["v=DMARC1; p=reject", "v=DMARC1; p=none"]), None);
        assert_eq!(d.assessment.as_deref(), Some("weak"));
        assert_eq!(d.issues[0], "multiple_dmarc_records");

        let d = assess_dmarc(&Txt::None, None);
        assert_eq!((d.present, d.assessment.as_deref()), (Some(false), Some("missing")));
        assert_eq!(
            assess_dmarc(&recs(&["v=spf1 -all"]), None).assessment.as_deref(),
            Some("missing")
        );
        assert_eq!(
            assess_dmarc(&Txt::Error("timeout".into()), None).assessment.as_deref(),
            Some("error")
        );
    }

    #[test]
    fn dmarc_of_a_subdomain_uses_the_org_record_and_sp() {
        let d = assess_dmarc(
            &recs(&["v=DMARC1; p=reject; sp=none; rua=mailto:x@example.com"]),
            Some("example.com"),
        );
        assert_eq!(
            (d.assessment.as_deref(), d.policy.as_deref()),
            (Some("weak"), Some("none"))
        );
        assert_eq!(d.issues, vec!["inherited_from:example.com", "policy_none"]);
        let d = assess_dmarc(
            &recs(&["v=DMARC1; p=quarantine; rua=mailto:x@example.com"]),
            Some("example.com"),
        );
        assert_eq!(
            (d.assessment.as_deref(), d.policy.as_deref()),
            (Some("pass"), Some("quarantine"))
        );
        assert_eq!(org_domain("mail.eu.example.com").as_deref(), Some("example.com"));
        assert_eq!(org_domain("example.com"), None);
    }

    #[test]
    fn dkim_rules() {
        let key = recs(&["v=DKIM1; k=rsa; p=MIIBIjANBgkq"]);
        let d = assess_dkim(&[("google".into(), key.clone()), ("selector1".into(), key.clone())]);
        assert_eq!(d.assessment.as_deref(), Some("ok"));
        assert_eq!(d.present_selectors, vec!["google", "selector1"]);

        let d = assess_dkim(&[("google".into(), key.clone()), ("selector1".into(), Txt::None)]);
        assert_eq!(d.assessment.as_deref(), Some("partial"));
        assert_eq!(d.checked_selectors, vec!["google", "selector1"]);

        let d = assess_dkim(&[("old".into(), recs(&["v=DKIM1; p="])), ("default".into(), Txt::None)]);
        assert_eq!(d.assessment.as_deref(), Some("missing"));
        assert_eq!(d.issues, vec!["revoked:old", "no_selector_confirmed"]);

        let d = assess_dkim(&[
            ("google".into(), key),
            ("selector1".into(), Txt::Error("timeout".into())),
        ]);
        assert_eq!(d.assessment.as_deref(), Some("unknown"));
        assert_eq!(d.issues, vec!["lookup_failed:selector1"]);

        let d = assess_dkim(&[]);
        assert_eq!(
            (d.assessment.as_deref(), d.issues.clone()),
            (Some("unknown"), vec!["no_selectors_configured".to_string()])
        );
        // A key without v= still counts (v is optional in RFC 6376).
        assert_eq!(
            assess_dkim(&[("s".into(), recs(&["k=rsa; p=MIGf"]))])
                .assessment
                .as_deref(),
            Some("ok")
        );
    }
}
