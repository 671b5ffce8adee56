//! Properties of the engine over generated payloads (`xray_synth`),
//! so that the next class of real-world input is found here and not by a
//! user. Each property plays a first scan and a churned rescan (some
//! exposures fixed, some changed, some new) against the in-memory reference
//! store and compares what the engine emits.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde_json::{json, Value};
use xray_engine::diff::EventType;
use xray_engine::memory::MemoryStore;
use xray_synth::{Fleet, Rng};
use xray_engine::{diff_scan, normalize, EngineConfig, ScanPayload};

fn parse(v: &Value) -> ScanPayload {
    ScanPayload::from_value(v).unwrap_or_else(|e| panic!("refused: {e}\n{v}"))
}

/// Events of each scan (as JSON text) and the final state, from an empty store.
fn play(scans: &[Value]) -> (Vec<String>, String) {
    let config = EngineConfig::default();
    let mut store = MemoryStore::default();
    let mut events = Vec::new();
    for v in scans {
        let p = parse(v);
        let out = diff_scan(&p, &store.prior_for(&p), &config);
        store.apply(&out);
        events.push(serde_json::to_string(&out.events).unwrap());
    }
    (events, format!("{:?}", store.rows))
}

/// First scan and a churned rescan of a small generated fleet.
fn two_scans(seed: u64, endpoints: usize) -> (Value, Value) {
    let fleet = Fleet::generate(seed, endpoints, 1);
    let (churned, _) = fleet.churn(0.5, seed ^ 0x5eed);
    (fleet.payload(0), churned.payload(1))
}

fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        v.swap(i, rng.below(i as u64 + 1) as usize);
    }
}

fn array_at<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Vec<Value>> {
    let mut node = v;
    for k in path {
        node = node.get_mut(*k)?;
    }
    node.as_array_mut()
}

/// The payload with assets, endpoints and every observation list permuted.
fn permuted(v: &Value, rng: &mut Rng) -> Value {
    let mut p = v.clone();
    if let Some(ars) = array_at(&mut p, &["asset_results"]) {
        shuffle(ars, rng);
        for ar in ars {
            if let Some(eps) = array_at(ar, &["endpoints"]) {
                shuffle(eps, rng);
                for ep in eps {
                    for path in [&["ports", "tcp"][..], &["http"], &["tls"], &["findings", "nuclei"], &["findings", "nmap"], &["errors"]] {
                        if let Some(list) = array_at(ep, path) {
                            shuffle(list, rng);
                        }
                    }
                }
            }
        }
    }
    p
}

/// Keys whose value the contract treats as optional, wherever they occur.
const OPTIONAL: &[&str] = &[
    "sans", "redirect_chain", "technologies", "extracted_results", "tags", "errors", "ports", "certificate",
    "coverage", "http", "tls", "findings", "nuclei", "nmap", "tcp", "udp", "tls_versions", "dns_email",
    "tool_versions", "requested_asset_ids", "artifacts", "headers", "title", "final_url", "cipher_classes",
    "metadata", "spf", "dmarc", "dkim", "issues", "present_selectors", "checked_selectors", "scan_profile",
    "resolution", "summary", "limits", "worker", "jarm", "ja3", "serial", "spki_sha256", "cert_sha256",
    "not_before", "is_self_signed", "severity", "tool", "domain_context", "timestamp", "status_code", "scheme",
    "content_length", "response_time_ms", "raw", "weak", "insecure", "tools", "tcp_ports", "tls_ports",
    "http_urls", "nuclei_urls", "dns_checks", "matcher_name", "template_path", "name", "description",
];

/// Visits every optional key of every object, in document order; `f` may
/// null or remove it.
fn each_optional(v: &mut Value, f: &mut dyn FnMut(&mut serde_json::Map<String, Value>, &str)) {
    match v {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in &keys {
                if OPTIONAL.contains(&k.as_str()) {
                    f(m, k);
                }
            }
            for x in m.values_mut() {
                each_optional(x, f);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| each_optional(x, f)),
        _ => {}
    }
}

/// The payload with about one optional field in `one_in` nulled (`null`) or removed.
fn thinned(v: &Value, seed: u64, one_in: u64, null: bool) -> Value {
    let mut p = v.clone();
    let mut rng = Rng::new(seed);
    each_optional(&mut p, &mut |m, k| {
        if rng.below(one_in) == 0 {
            if null {
                m.insert(k.to_string(), Value::Null);
            } else {
                m.remove(k);
            }
        }
    });
    p
}

fn fixed_keys(scans: &[Value]) -> BTreeSet<String> {
    let config = EngineConfig::default();
    let mut store = MemoryStore::default();
    let mut fixed = BTreeSet::new();
    for v in scans {
        let p = parse(v);
        let out = diff_scan(&p, &store.prior_for(&p), &config);
        store.apply(&out);
        fixed.extend(out.events.iter().filter(|e| e.event_type == EventType::Fixed).map(|e| e.identity_key.clone()));
    }
    fixed
}

/// One way of taking coverage away from a scan, chosen by `kind`.
fn less_covered(v: &Value, kind: u64, seed: u64) -> Value {
    let mut p = v.clone();
    let mut rng = Rng::new(seed);
    if kind == 0 {
        p["scan"].as_object_mut().unwrap().remove("finished_at");
        return p;
    }
    let Some(ars) = array_at(&mut p, &["asset_results"]) else { return p };
    let mut eps: Vec<&mut Value> = ars.iter_mut().flat_map(|a| a["endpoints"].as_array_mut().unwrap().iter_mut()).collect();
    if eps.is_empty() {
        return p;
    }
    let i = rng.below(eps.len() as u64) as usize;
    let ep = &mut *eps[i];
    let pick = |list: &mut Vec<Value>, rng: &mut Rng| {
        if !list.is_empty() {
            list.remove(rng.below(list.len() as u64) as usize);
        }
    };
    match kind {
        1 => pick(ep["coverage"]["tools"].as_array_mut().unwrap(), &mut rng),
        2 => pick(ep["coverage"]["tcp_ports"].as_array_mut().unwrap(), &mut rng),
        3 => pick(ep["coverage"]["tls_ports"].as_array_mut().unwrap(), &mut rng),
        4 => pick(ep["coverage"]["http_urls"].as_array_mut().unwrap(), &mut rng),
        5 => {
            if let Some(dns) = ep["coverage"]["dns_checks"].as_array_mut() {
                pick(dns, &mut rng)
            }
        }
        6 => {
            for port in ep["ports"]["tcp"].as_array_mut().unwrap() {
                port["state"] = json!("unknown");
            }
        }
        7 => {
            let tool = ["naabu", "httpx", "tlsx", "nuclei", "dns"][rng.below(5) as usize];
            ep["errors"].as_array_mut().unwrap().push(json!({"scope": "endpoint", "tool": tool, "message": "timed out"}));
        }
        _ => {
            ep.as_object_mut().unwrap().remove("ip");
        }
    }
    p
}

/// Every host, address and URL in the payload re-spelt in an equivalent form.
fn respelt(v: &Value, ipv6: bool, variant: bool) -> Value {
    let mut text = v.to_string();
    // Addresses first: IPv4 becomes IPv6 (so IPv6 is exercised at all), then
    // the variant spells it the long way.
    let ips: BTreeSet<String> = v["asset_results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["endpoints"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e["ip"].as_str().map(str::to_string))
        .collect();
    if ipv6 {
        for ip in &ips {
            let o: Vec<u16> = ip.split('.').map(|x| x.parse().unwrap()).collect();
            let (short, long) = (
                format!("2001:db8::{:x}:{:x}", o[0] << 8 | o[1], o[2] << 8 | o[3]),
                format!("2001:0DB8:0000:0:0:0:{:X}:{:04X}", o[0] << 8 | o[1], o[2] << 8 | o[3]),
            );
            let v6 = if variant { long } else { short };
            for (from, to) in [
                (format!("://{ip}:"), format!("://[{v6}]:")),
                (format!("://{ip}/"), format!("://[{v6}]/")),
                (format!("\"{ip}\""), format!("\"{v6}\"")),
                (format!("ip:{ip}|"), format!("ip:{v6}|")),
                (format!("ip:{ip}\""), format!("ip:{v6}\"")),
            ] {
                text = text.replace(&from, &to);
            }
        }
    }
    let mut p: Value = serde_json::from_str(&text).unwrap();
    if variant {
        respell_hosts(&mut p, None);
    }
    p
}

fn respell_hosts(v: &mut Value, key: Option<&str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                respell_hosts(x, Some(k.as_str()));
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| respell_hosts(x, key)),
        Value::String(s) => {
            let host_key = matches!(key, Some("observed_host" | "domain_context" | "host" | "domain" | "canonical_host" | "asset_value"));
            if host_key && !s.contains(':') && s.contains('.') {
                *s = format!("{}.", s.to_ascii_uppercase());
            } else if matches!(key, Some("url" | "final_url" | "matched_at")) {
                *s = respell_url(s);
            }
        }
        _ => {}
    }
}

/// `https://host/x` → `HTTPS://user:pw@HOST:443/x`.
fn respell_url(s: &str) -> String {
    let Some((scheme, rest)) = s.split_once("://") else { return s.to_string() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let default = if scheme == "https" { "443" } else { "80" };
    let authority = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:{default}")
    } else {
        authority.to_string()
    };
    format!("{}://scanner:hunter2@{}{}", scheme.to_ascii_uppercase(), authority.to_ascii_uppercase(), path)
}

fn identity_keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = normalize(&parse(v), &EngineConfig::default()).into_iter().map(|e| e.identity_key).collect();
    k.sort();
    k
}

proptest! {
    // 64 cases by default; PROPTEST_CASES=N for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_order_gives_byte_identical_events_and_state(seed in any::<u64>(), n in 1usize..10, perm in any::<u64>()) {
        let (a, b) = two_scans(seed, n);
        let mut rng = Rng::new(perm);
        let shuffled = [permuted(&a, &mut rng), permuted(&b, &mut rng)];
        prop_assert_eq!(play(&[a, b]), play(&shuffled));
    }

    #[test]
    fn null_reads_exactly_as_absent(seed in any::<u64>(), n in 1usize..8, pick in any::<u64>(), one_in in 1u64..8) {
        let (a, b) = two_scans(seed, n);
        let nulled = [thinned(&a, pick, one_in, true), thinned(&b, pick ^ 1, one_in, true)];
        let removed = [thinned(&a, pick, one_in, false), thinned(&b, pick ^ 1, one_in, false)];
        prop_assert_eq!(play(&nulled), play(&removed));
    }

    #[test]
    fn a_payload_applied_twice_gives_no_events_the_second_time(seed in any::<u64>(), n in 1usize..10) {
        let (a, b) = two_scans(seed, n);
        let (events, _) = play(&[a, b.clone(), b]);
        prop_assert_eq!(events[2].as_str(), "[]");
    }

    #[test]
    fn taking_coverage_away_never_adds_a_fixed(seed in any::<u64>(), n in 1usize..10, kind in 0u64..9, pick in any::<u64>()) {
        let (a, b) = two_scans(seed, n);
        let full = fixed_keys(&[a.clone(), b.clone()]);
        let less = fixed_keys(&[a, less_covered(&b, kind, pick)]);
        prop_assert!(less.is_subset(&full), "kind {kind}: {:?} not in {:?}", less.difference(&full).collect::<Vec<_>>(), full);
    }

    #[test]
    fn equivalent_spellings_never_change_an_identity(seed in any::<u64>(), n in 1usize..10, ipv6 in any::<bool>()) {
        let (a, _) = two_scans(seed, n);
        let canonical = respelt(&a, ipv6, false);
        prop_assert_eq!(identity_keys(&canonical), identity_keys(&respelt(&a, ipv6, true)));
        if !ipv6 {
            prop_assert_eq!(identity_keys(&a), identity_keys(&canonical));
        }
    }
}

#[test]
fn the_generator_exercises_fixed_and_every_bucket() {
    // The properties above are only as good as the scans they see.
    let (a, b) = two_scans(7, 40);
    assert!(!fixed_keys(&[a.clone(), b]).is_empty());
    let buckets: BTreeSet<String> =
        normalize(&parse(&a), &EngineConfig::default()).iter().map(|e| e.risk_bucket.to_string()).collect();
    assert_eq!(buckets.len(), 7, "{buckets:?}");
}
