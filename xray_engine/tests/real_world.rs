//! Payloads shaped like what real workers and tools send (docs/design.md
//! D9–D11), one test per defect class, played against the in-memory
//! reference store. Each case failed before the rule it names existed.

use serde_json::{json, Value};
use xray_engine::memory::MemoryStore;
use xray_engine::{diff_scan, EngineConfig, Event, ScanPayload};

const TENANT: &str = "11111111-1111-4111-8111-111111111111";
const ASSET: &str = "aaaaaaaa-0000-4000-8000-000000000001";

/// Scan number `n` of one asset, observed `n` hours after the first.
fn payload(n: u32, version: &str, asset: Value, endpoints: Value) -> Value {
    json!({
        "schema_version": version,
        "scan": {"scan_id": format!("5ca10000-0000-4000-8000-{n:012}"), "tenant_id": TENANT,
                 "scan_profile": "baseline",
                 "started_at": format!("2026-02-05T{:02}:00:00Z", 10 + n),
                 "finished_at": format!("2026-02-05T{:02}:05:00Z", 10 + n)},
        "tool_versions": {"naabu": "2.6.1", "httpx": "1.8.1", "tlsx": "1.2.0", "nuclei": "3.10.0", "nmap": "7.93"},
        "asset_results": [{"asset": asset, "endpoints": endpoints}]
    })
}

fn domain() -> Value {
    json!({"asset_id": ASSET, "asset_type": "domain", "asset_value": "example.com"})
}

fn ip_asset(ip: &str) -> Value {
    json!({"asset_id": ASSET, "asset_type": "ip", "asset_value": ip})
}

fn parse(v: &Value) -> ScanPayload {
    ScanPayload::from_value(v).unwrap_or_else(|e| panic!("refused: {e}"))
}

/// `TYPE BUCKET port fingerprint` per event, in engine order.
fn ingest(store: &mut MemoryStore, v: &Value) -> Vec<String> {
    ingest_with(store, v, &EngineConfig::default())
}

fn ingest_with(store: &mut MemoryStore, v: &Value, config: &EngineConfig) -> Vec<String> {
    let p = parse(v);
    let out = diff_scan(&p, &store.prior_for(&p), config);
    store.apply(&out);
    out.events.iter().map(line).collect()
}

fn line(e: &Event) -> String {
    format!("{} {} {} {}", e.event_type, e.risk_bucket, e.port, e.fingerprint)
}

fn open(port: u16) -> Value {
    json!({"tool": "naabu", "port": port, "state": "open"})
}

// ---- contract tolerance ----------------------------------------------------

#[test]
fn null_in_any_optional_field_reads_as_absent() {
    let with = |null: bool| {
        let n = |v: Value| if null { Value::Null } else { v };
        let mut ep = json!({
            "ip": "203.0.113.10", "domain_context": "example.com",
            "ports": {"tcp": [open(22), open(443)], "udp": n(json!([]))},
            "http": [{"url": "https://example.com/", "status_code": 200, "headers": {"server": "x"},
                      "technologies": n(json!([])), "redirect_chain": n(json!([]))}],
            "tls": [{"port": 443, "tls_versions": ["tls12"], "cipher_classes": n(json!({})),
                     "certificate": {"subject_cn": "example.com", "sans": n(json!([])),
                                     "not_after": "2027-01-01T00:00:00Z", "is_self_signed": false}}],
            "findings": {"nuclei": [{"template_id": "x-panel", "template_path": "http/exposed-panels/x.yaml",
                                     "matched_at": "https://example.com/admin", "extracted_results": n(json!([])),
                                     "metadata": {"tags": n(json!([]))}}],
                         "nmap": n(json!([]))},
            "errors": n(json!([])),
            "coverage": n(json!({"tools": ["naabu"]})),
            "dns_email": n(json!({"domain": "example.com"})),
        });
        if !null {
            // Absent instead of null: remove every key the other variant nulls.
            let o = ep.as_object_mut().unwrap();
            for k in ["errors", "coverage", "dns_email"] {
                o.remove(k);
            }
            ep["ports"].as_object_mut().unwrap().remove("udp");
            ep["findings"].as_object_mut().unwrap().remove("nmap");
            for k in ["technologies", "redirect_chain"] {
                ep["http"][0].as_object_mut().unwrap().remove(k);
            }
            ep["tls"][0].as_object_mut().unwrap().remove("cipher_classes");
            ep["tls"][0]["certificate"].as_object_mut().unwrap().remove("sans");
            ep["findings"]["nuclei"][0].as_object_mut().unwrap().remove("extracted_results");
            ep["findings"]["nuclei"][0]["metadata"].as_object_mut().unwrap().remove("tags");
        }
        let mut p = payload(1, "1.1", domain(), json!([ep]));
        if null {
            p["errors"] = Value::Null;
            p["scan"]["requested_asset_ids"] = Value::Null;
            p["artifacts"] = Value::Null;
        }
        p
    };
    let (mut a, mut b) = (MemoryStore::default(), MemoryStore::default());
    let nulls = ingest(&mut a, &with(true));
    assert!(!nulls.is_empty());
    assert_eq!(nulls, ingest(&mut b, &with(false)));

    // Whole blocks as null too.
    let p = payload(2, "1.1", domain(), json!([{"ip": "203.0.113.10", "ports": null, "http": null, "tls": null,
                                                 "findings": null}]));
    let mut p = p;
    p["asset_results"][0]["endpoints"][0]["certificate"] = Value::Null;
    p["tool_versions"] = Value::Null;
    assert!(ScanPayload::from_value(&p).is_ok());
    let text = p.to_string();
    assert!(ScanPayload::from_json_str(&text).is_ok());
}

#[test]
fn evidence_timestamps_with_an_offset_are_normalised_but_scan_times_stay_strict() {
    let cert = |not_after: &str| {
        json!([{"ip": "203.0.113.10", "domain_context": "example.com", "ports": {"tcp": [open(443)]},
                "tls": [{"port": 443, "tls_versions": ["tls12"], "certificate": {
                    "subject_cn": "example.com", "not_before": "2025-02-05T12:00:00+02:00", "not_after": not_after}}],
                "findings": {"nuclei": [{"template_id": "t", "matched_at": "https://example.com/",
                                         "timestamp": "2026-02-05T12:00:00.123-05:00"}]}}])
    };
    // Scan 1 finishes 2026-02-05T11:05Z. Thirty days later is 2026-03-07T11:05Z:
    // 12:30+01:00 is 11:30Z, past it (ok); 12:00+01:00 is 11:00Z, inside (near expiry).
    let mut s = MemoryStore::default();
    assert!(ingest(&mut s, &payload(1, "1.1", domain(), cert("2026-03-07T12:30:00+01:00"))).is_empty());
    let mut s = MemoryStore::default();
    assert_eq!(
        ingest(&mut s, &payload(1, "1.1", domain(), cert("2026-03-07T12:00:00+01:00"))),
        ["NEW RB4 443 issue:expiry"]
    );
    let p = parse(&payload(1, "1.1", domain(), cert("2026-03-07T12:00:00+01:00")));
    let na = p.asset_results[0].endpoints[0].tls[0].certificate.as_ref().unwrap().not_after.unwrap();
    assert_eq!(na.to_string(), "2026-03-07T11:00:00Z");

    let mut strict = payload(1, "1.1", domain(), json!([]));
    strict["scan"]["finished_at"] = json!("2026-02-05T12:05:00+01:00");
    let err = ScanPayload::from_value(&strict).unwrap_err();
    assert_eq!((err.sqlstate(), err.to_string().starts_with("scan.finished_at")), ("22007", true), "{err}");
}

#[test]
fn unusable_observations_are_kept_as_warnings_with_their_path_and_prove_nothing() {
    let mut s = MemoryStore::default();
    // A port as a decimal string is a port.
    let first = payload(1, "1.1", ip_asset("203.0.113.10"),
                        json!([{"ip": "203.0.113.10", "ports": {"tcp": [{"port": "22", "state": "open"}]}}]));
    assert_eq!(ingest(&mut s, &first), ["NEW RB1 22 svc:ssh"]);
    assert!(parse(&first).warnings.is_empty());

    let second = payload(2, "1.1", ip_asset("203.0.113.10"), json!([{
        "ip": "203.0.113.10",
        "ports": {"tcp": [{"port": "ssh", "state": "open"}, {"port": 443, "state": "half-open"}]},
        "tls": [{"port": 443, "tls_versions": ["tls14"], "certificate": {"not_after": "soon"}}],
        "findings": {"nuclei": [{"template_id": "t", "matched_at": "dns://example.com"}]},
    }]));
    let warnings = parse(&second).warnings;
    let paths: Vec<&str> = warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "asset_results[0].endpoints[0].findings.nuclei[0].matched_at",
            "asset_results[0].endpoints[0].ports.tcp[0].port",
            "asset_results[0].endpoints[0].ports.tcp[1].state",
            "asset_results[0].endpoints[0].tls[0].certificate.not_after",
            "asset_results[0].endpoints[0].tls[0].tls_versions[0]",
        ]
    );
    assert!(warnings[1].problem.contains("\"ssh\" is not a port number"), "{:?}", warnings[1]);
    // The unreadable port might be 22, still open: no FIXED.
    assert!(ingest(&mut s, &second).is_empty());
    // The same through the text and deserializer paths.
    assert_eq!(ScanPayload::from_json_str(&second.to_string()).unwrap().warnings, warnings);
}

// ---- authoritative absence ---------------------------------------------------

#[test]
fn an_unknown_port_state_proves_nothing_closed_and_filtered_do() {
    let scan = |n: u32, state: &str| {
        payload(n, "1.1", ip_asset("203.0.113.10"),
                json!([{"ip": "203.0.113.10", "ports": {"tcp": [{"tool": "naabu", "port": 22, "state": state}]}}]))
    };
    let mut s = MemoryStore::default();
    assert_eq!(ingest(&mut s, &scan(1, "open")), ["NEW RB1 22 svc:ssh"]);
    assert!(ingest(&mut s, &scan(2, "unknown")).is_empty());
    assert_eq!(ingest(&mut s, &scan(3, "filtered")), ["FIXED RB1 22 svc:ssh"]);
    let mut s = MemoryStore::default();
    ingest(&mut s, &scan(1, "open"));
    assert_eq!(ingest(&mut s, &scan(2, "closed")), ["FIXED RB1 22 svc:ssh"]);
}

#[test]
fn an_endpoint_without_an_address_was_never_port_scanned() {
    let mut s = MemoryStore::default();
    let first = payload(1, "1.1", domain(), json!([{"ip": "203.0.113.10", "ports": {"tcp": [open(22)]}}]));
    assert_eq!(ingest(&mut s, &first), ["NEW RB1 22 svc:ssh"]);
    // No A record this time; naabu is in tool_versions and its error names a
    // tool, so only the missing address can hold the exposure open.
    let second = payload(2, "1.1", domain(), json!([{
        "observed_host": "example.com",
        "errors": [{"scope": "endpoint", "tool": "dnsx", "message": "no A/AAAA record"}]}]));
    assert!(ingest(&mut s, &second).is_empty());
    let second_v12 = {
        let mut p = second.clone();
        p["schema_version"] = json!("1.2");
        p["asset_results"][0]["endpoints"][0]["coverage"] = json!({"tools": ["naabu"], "tcp_ports": [22]});
        p
    };
    assert!(ingest(&mut s, &second_v12).is_empty(), "coverage cannot make up for no address");
}

#[test]
fn unknown_and_targeted_profiles_prove_only_the_ports_they_report() {
    let scan = |n: u32, profile: &str, ports: Value| {
        let mut p = payload(n, "1.1", ip_asset("203.0.113.10"), json!([{"ip": "203.0.113.10", "ports": {"tcp": ports}}]));
        p["scan"]["scan_profile"] = json!(profile);
        p
    };
    for profile in ["weekly-custom", "verify", "fast_recheck"] {
        let mut s = MemoryStore::default();
        assert_eq!(ingest(&mut s, &scan(1, "baseline", json!([open(22)]))), ["NEW RB1 22 svc:ssh"]);
        assert!(ingest(&mut s, &scan(2, profile, json!([open(443)]))).is_empty(), "{profile}");
        assert_eq!(
            ingest(&mut s, &scan(3, profile, json!([{"port": 22, "state": "closed"}]))),
            ["FIXED RB1 22 svc:ssh"],
            "{profile}"
        );
    }
    let mut s = MemoryStore::default();
    ingest(&mut s, &scan(1, "baseline", json!([open(22)])));
    assert_eq!(ingest(&mut s, &scan(2, "baseline", json!([open(443)]))), ["FIXED RB1 22 svc:ssh"]);
}

#[test]
fn a_cidr_address_with_no_endpoint_is_fixed_only_if_it_was_probed() {
    let cidr = json!({"asset_id": ASSET, "asset_type": "cidr", "asset_value": "198.51.100.0/30"});
    let first = payload(1, "1.2", cidr.clone(), json!([{"ip": "198.51.100.1", "ports": {"tcp": [open(3389)]},
        "coverage": {"tools": ["naabu"], "tcp_ports": [22, 3389]}}]));
    let second = |probed: &str| {
        let mut p = payload(2, "1.2", cidr.clone(), json!([]));
        p["asset_results"][0]["coverage"] =
            json!({"tools": ["naabu"], "ips": [probed, "198.51.100.2"], "tcp_ports": [22, 3389]});
        p
    };
    let mut s = MemoryStore::default();
    assert_eq!(ingest(&mut s, &first), ["NEW RB1 3389 svc:rdp"]);
    assert!(ingest(&mut s, &second("198.51.100.3")).is_empty(), "not probed");
    assert_eq!(ingest(&mut s, &second("198.51.100.1")), ["FIXED RB1 3389 svc:rdp"]);
}

#[test]
fn rb6_is_fixed_when_any_tool_identifies_the_service_and_a_symptom_change_is_one_changed() {
    let symptom = |s: &str| json!({"scope": "endpoint", "tool": "nmap", "details": {"port": 8080, "symptom": s}});
    let scan = |n: u32, errors: Value, nmap: Value| {
        payload(n, "1.1", ip_asset("203.0.113.10"), json!([{"ip": "203.0.113.10",
            "ports": {"tcp": [open(8080)]}, "errors": errors, "findings": {"nmap": nmap}}]))
    };
    let mut s = MemoryStore::default();
    assert_eq!(ingest(&mut s, &scan(1, json!([symptom("tcp_open_no_banner")]), json!([]))), ["NEW RB6 8080 svc:unknown"]);
    assert_eq!(ingest(&mut s, &scan(2, json!([symptom("http_timeout")]), json!([]))), ["CHANGED RB6 8080 svc:unknown"]);
    // nmap's port-table guess is not an answer; its probe is.
    let guess = json!([{"port": 8080, "state": "open", "service": "http-proxy", "service_method": "table"}]);
    assert!(ingest(&mut s, &scan(3, json!([]), guess)).is_empty());
    let probed = json!([{"port": 8080, "state": "open", "service": "http-proxy", "service_method": "probed"}]);
    assert_eq!(ingest(&mut s, &scan(4, json!([]), probed)), ["FIXED RB6 8080 svc:unknown"]);

    // Two symptoms on one port are one exposure.
    let mut s = MemoryStore::default();
    let both = scan(1, json!([symptom("tcp_open_no_banner"), symptom("http_timeout")]), json!([]));
    assert_eq!(ingest(&mut s, &both), ["NEW RB6 8080 svc:unknown"]);
}

#[test]
fn rb7_is_judged_per_domain_even_without_an_address() {
    let weak = json!({"domain": "example.com", "spf": {"raw": "v=spf1 ~all", "assessment": "weak"}});
    let mut s = MemoryStore::default();
    let first = payload(1, "1.1", domain(), json!([{"ip": "203.0.113.10", "dns_email": weak}]));
    assert_eq!(ingest(&mut s, &first), ["NEW RB7 0 record:spf"]);
    let second = payload(2, "1.1", domain(), json!([
        {"ip": "203.0.113.10", "dns_email": {},
         "errors": [{"scope": "endpoint", "message": "AAAA lookup timed out"}]},
        {"observed_host": "example.com",
         "dns_email": {"domain": "Example.COM.", "spf": {"raw": "v=spf1 -all", "assessment": "pass"}},
         "errors": [{"scope": "endpoint", "message": "no A record"}]},
    ]));
    assert_eq!(ingest(&mut s, &second), ["FIXED RB7 0 record:spf"]);
}

// ---- identity and material ---------------------------------------------------

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = xray_engine::normalize(&parse(v), &EngineConfig::default())
        .into_iter()
        .map(|e| e.identity_key)
        .collect();
    k.sort();
    k
}

#[test]
fn urls_drop_userinfo_and_normalise_percent_encoding_and_no_credential_is_stored() {
    let panel = |url: &str| {
        payload(1, "1.1", domain(), json!([{"ip": "203.0.113.10", "findings": {"nuclei": [{
            "template_id": "x-panel", "template_path": "http/exposed-panels/x.yaml", "matched_at": url,
            "raw": {"request": format!("GET {url}")}}]}}]))
    };
    let plain = keys(&panel("http://example.com/~admin/%2Fx"));
    assert_eq!(plain.len(), 1);
    assert_eq!(keys(&panel("http://admin:s3cret@Example.com:80/%7eadmin/%2fx?next=1")), plain);
    let xs = xray_engine::normalize(&parse(&panel("http://admin:s3cret@example.com/%7Eadmin/%2Fx")), &EngineConfig::default());
    let everything = serde_json::to_string(&(&xs[0].detail, &xs[0].fingerprint, &xs[0].evidence)).unwrap();
    assert!(!everything.contains("s3cret") && !everything.contains("admin:"), "{everything}");
    assert_eq!(xs[0].fingerprint, "tpl:x-panel|url:http://example.com/~admin/%2Fx");
}

#[test]
fn ipv6_spellings_are_one_identity_in_rfc_5952_form() {
    let at = |ip: &str| {
        payload(1, "1.1", ip_asset(ip), json!([{"ip": ip, "ports": {"tcp": [open(22)]},
            "http": [{"url": format!("http://[{ip}]:8080/"), "status_code": 200, "headers": {}}]}]))
    };
    let canonical = keys(&at("2001:db8::10"));
    assert_eq!(canonical.len(), 2);
    assert_eq!(keys(&at("2001:DB8:0:0:0:0:0:10")), canonical);
    assert_eq!(keys(&at("2001:0db8:0000::0010")), canonical);
    let xs = xray_engine::normalize(&parse(&at("2001:DB8:0:0:0:0:0:10")), &EngineConfig::default());
    assert!(xs.iter().all(|x| x.observed_host == "2001:db8::10" && x.observed_ip.as_deref() == Some("2001:db8::10")));
}

#[test]
fn hostname_mismatch_compares_a_labels_and_an_empty_certificate_is_no_mismatch() {
    let with_cert = |domain_context: &str, cert: Value| {
        payload(1, "1.1", domain(), json!([{"ip": "203.0.113.10", "domain_context": domain_context,
            "tls": [{"port": 443, "tls_versions": ["tls13"], "certificate": cert}]}]))
    };
    let cert = json!({"subject_cn": "xn--bcher-kva.example", "sans": ["xn--bcher-kva.example"],
                      "not_after": "2030-01-01T00:00:00Z", "is_self_signed": false});
    assert!(keys(&with_cert("bücher.example", cert.clone())).is_empty());
    assert_eq!(keys(&with_cert("other.example", cert)).len(), 1);
    assert!(keys(&with_cert("bücher.example", json!({}))).is_empty());
}

#[test]
fn rb5_missing_set_is_the_union_over_the_roots_paths_in_any_order() {
    let all = json!({"content-security-policy": "x", "strict-transport-security": "x",
                     "x-content-type-options": "x", "x-frame-options": "x"});
    let without = |h: &str| {
        let mut m = all.clone();
        m.as_object_mut().unwrap().remove(h);
        m
    };
    let scan = |order: [usize; 2]| {
        let http = [
            json!({"url": "https://example.com/", "status_code": 200, "headers": without("x-frame-options")}),
            json!({"url": "https://example.com/login", "status_code": 200, "headers": without("content-security-policy")}),
        ];
        payload(1, "1.1", domain(), json!([{"ip": "203.0.113.10", "http": [http[order[0]].clone(), http[order[1]].clone()]}]))
    };
    for order in [[0, 1], [1, 0]] {
        let xs = xray_engine::normalize(&parse(&scan(order)), &EngineConfig::default());
        assert_eq!(xs.len(), 1);
        assert_eq!(xs[0].evidence["missing_headers"], json!(["content-security-policy", "x-frame-options"]));
        assert_eq!(xs[0].detail, "missing:content-security-policy,x-frame-options|url:https://example.com/");
    }
}

// ---- staleness -----------------------------------------------------------------

#[test]
fn without_assets_drops_their_results_and_their_scope() {
    let a2 = "aaaaaaaa-0000-4000-8000-000000000002";
    let mut v = payload(1, "1.1", ip_asset("203.0.113.10"), json!([{"ip": "203.0.113.10", "ports": {"tcp": [open(22)]}}]));
    v["asset_results"].as_array_mut().unwrap().push(json!({
        "asset": {"asset_id": a2, "asset_type": "ip", "asset_value": "203.0.113.11"},
        "endpoints": [{"ip": "203.0.113.11", "ports": {"tcp": [open(3389)]}}]}));
    v["scan"]["requested_asset_ids"] = json!([ASSET, a2]);
    let p = parse(&v);
    let skip = [p.asset_results[0].asset.asset_id].into_iter().collect();
    let rest = p.without_assets(&skip);
    assert_eq!(rest.scope_asset_ids().len(), 1);
    assert_eq!(rest.scope_asset_ids()[0].to_string(), a2);
    let out = diff_scan(&rest, &[], &EngineConfig::default());
    assert_eq!(out.events.iter().map(line).collect::<Vec<_>>(), ["NEW RB1 3389 svc:rdp"]);
}

#[test]
fn the_cert_anchor_is_compared_on_a_kind_both_observations_have() {
    let scan = |n: u32, cert: Value| {
        let mut c = json!({"subject_cn": "example.com", "not_after": "2026-02-20T00:00:00Z", "is_self_signed": false});
        c.as_object_mut().unwrap().extend(cert.as_object().unwrap().clone());
        payload(n, "1.1", domain(), json!([{"ip": "203.0.113.10", "domain_context": "example.com",
            "ports": {"tcp": [open(443)]}, "tls": [{"port": 443, "tls_versions": ["tls12"], "certificate": c}]}]))
    };
    let mut s = MemoryStore::default();
    assert_eq!(ingest(&mut s, &scan(1, json!({"serial": "0A1B", "spki_sha256": "AA"}))), ["NEW RB4 443 issue:expiry"]);
    // Another source fills only the serial: the same certificate, no event.
    assert!(ingest(&mut s, &scan(2, json!({"serial": "0a1b"}))).is_empty());
    assert!(ingest(&mut s, &scan(3, json!({"serial": "0A1B", "spki_sha256": "aa", "cert_sha256": "cc"}))).is_empty());
    // A new serial on the kind both have is a rotation.
    assert_eq!(ingest(&mut s, &scan(4, json!({"serial": "0A1C"}))), ["CHANGED RB4 443 issue:expiry"]);
}
