//! The diff-contract scenarios of `fixtures/scenarios/`, played against the
//! in-memory reference store. The integration tests play the same files
//! against PostgreSQL.

use std::path::PathBuf;

use serde_json::Value;
use xray_engine::memory::MemoryStore;
use xray_engine::{diff_scan, EngineConfig, Event, ScanPayload};

fn scenario_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/scenarios exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the ten diff-contract cases must be present");
    files
}

fn load(path: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn event_summary(e: &Event) -> Value {
    serde_json::json!({
        "event_type": e.event_type.as_str(),
        "risk_bucket": e.risk_bucket.as_str(),
        "observed_host": e.observed_host,
        "port": e.port,
        "fingerprint": e.fingerprint,
        "reopened": e.reopened,
    })
}

fn expected_event(v: &Value) -> Value {
    let mut v = v.clone();
    let o = v.as_object_mut().unwrap();
    o.entry("reopened").or_insert(Value::Bool(false));
    v
}

fn sorted(mut v: Vec<Value>) -> Vec<Value> {
    v.sort_by_key(|x| x.to_string());
    v
}

/// Reverse every observation list so that order-dependence would show.
fn reversed(payload: &Value) -> Value {
    let mut p = payload.clone();
    if let Some(ars) = p["asset_results"].as_array_mut() {
        ars.reverse();
        for ar in ars {
            if let Some(eps) = ar["endpoints"].as_array_mut() {
                eps.reverse();
                for ep in eps {
                    for path in [&["ports", "tcp"][..], &["http"], &["tls"], &["findings", "nuclei"], &["errors"]] {
                        let mut node = &mut *ep;
                        for k in path {
                            node = &mut node[*k];
                        }
                        if let Some(a) = node.as_array_mut() {
                            a.reverse();
                        }
                    }
                }
            }
        }
    }
    p
}

#[test]
fn diff_contract_scenarios() {
    let config = EngineConfig::default();
    for file in scenario_files() {
        let scenario = load(&file);
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let mut store = MemoryStore::default();
        for (i, step) in scenario["steps"].as_array().unwrap().iter().enumerate() {
            let ctx = format!("{name} step {}", i + 1);
            let payload = ScanPayload::from_value(&step["payload"]).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            let outcome = diff_scan(&payload, &store.prior_for(&payload), &config);

            let got: Vec<Value> = outcome.events.iter().map(event_summary).collect();
            let want: Vec<Value> = step["expect"]["events"].as_array().unwrap().iter().map(expected_event).collect();
            assert_eq!(sorted(got), sorted(want), "{ctx}: events");

            // Same inputs in another order give the same events in the same order.
            let shuffled = ScanPayload::from_value(&reversed(&step["payload"])).unwrap();
            let again = diff_scan(&shuffled, &store.prior_for(&shuffled), &config);
            assert_eq!(again.events, outcome.events, "{ctx}: order of observations changed the events");

            store.apply(&outcome);
            let mut state: Vec<Value> = store
                .rows
                .values()
                .map(|r| {
                    serde_json::json!({
                        "risk_bucket": r.prior.risk_bucket.as_str(),
                        "observed_host": r.prior.observed_host,
                        "port": r.prior.port,
                        "fingerprint": r.prior.fingerprint,
                        "status": r.prior.status.as_str(),
                        "detail": r.detail,
                    })
                })
                .collect();
            let want_state = step["expect"]["state"].as_array().unwrap();
            // `detail` is only asserted where the fixture states it.
            for s in &mut state {
                let matching = want_state.iter().find(|w| {
                    ["risk_bucket", "observed_host", "port", "fingerprint"].iter().all(|k| w[*k] == s[*k])
                });
                if matching.is_none_or(|w| w.get("detail").is_none()) {
                    s.as_object_mut().unwrap().remove("detail");
                }
            }
            assert_eq!(sorted(state), sorted(want_state.clone()), "{ctx}: state");
        }
    }
}
