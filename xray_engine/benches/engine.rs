//! Criterion benchmarks of the pure engine: contract parsing, normalisation,
//! identity and material hash, and the diff, on seeded synthetic payloads
//! (`xray_synth`). Run with `cargo bench -p xray_engine --bench engine`
//! (or `scripts/bench.sh`, which also runs the database benchmarks).
//!
//! Throughput is reported per exposure ("elements") unless the group name
//! says otherwise, so the numbers compare directly with the in-database
//! exposures-per-second figures in BENCHMARKS.md.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde_json::{json, Value};
use xray_engine::diff::{diff_normalized, PriorState};
use xray_engine::identity::{material_hash, IdentityParts, RiskBucket};
use xray_engine::memory::MemoryStore;
use xray_synth::Fleet;
use xray_engine::{normalize, EngineConfig, ScanPayload};

const SEED: u64 = 20_260_302;

struct Workload {
    endpoints: usize,
    text: String,
    value: Value,
    payload: ScanPayload,
    /// State after the first scan; `payload` is the no-change rescan.
    prior: Vec<PriorState>,
    churn: ScanPayload,
    exposures: usize,
}

fn workload(endpoints: usize) -> Workload {
    let c = EngineConfig::default();
    let fleet = Fleet::generate(SEED, endpoints, 0);
    let first = ScanPayload::from_value(&fleet.payload(0)).unwrap();
    let mut store = MemoryStore::default();
    store.apply(&xray_engine::diff_scan(&first, &[], &c));
    let value = fleet.payload(1);
    let payload = ScanPayload::from_value(&value).unwrap();
    let prior = store.prior_for(&payload);
    let (churned, _) = fleet.churn(0.10, 1);
    let churn = ScanPayload::from_value(&churned.payload(2)).unwrap();
    let exposures = normalize(&payload, &c).len();
    Workload { endpoints, text: value.to_string(), value, payload, prior, churn, exposures }
}

fn engine(c: &mut Criterion) {
    let config = EngineConfig::default();
    for endpoints in [1_000usize, 10_000] {
        let w = workload(endpoints);
        let n = w.endpoints;

        let mut g = c.benchmark_group(format!("contract/{n}_endpoints"));
        g.throughput(Throughput::Bytes(w.text.len() as u64));
        g.bench_function("parse_text (bytes/s)", |b| b.iter(|| ScanPayload::from_json_str(black_box(&w.text)).unwrap()));
        g.bench_function("from_value (bytes/s)", |b| b.iter(|| ScanPayload::from_value(black_box(&w.value)).unwrap()));
        g.finish();

        let mut g = c.benchmark_group(format!("normalize/{n}_endpoints"));
        g.throughput(Throughput::Elements(w.exposures as u64));
        g.bench_function("normalize (exposures/s)", |b| b.iter(|| normalize(black_box(&w.payload), &config)));
        g.finish();

        let current = normalize(&w.payload, &config);
        let churn_current = normalize(&w.churn, &config);
        let mut g = c.benchmark_group(format!("diff/{n}_endpoints"));
        // Exposures processed: current plus prior, as in the database figures.
        g.throughput(Throughput::Elements((current.len() + w.prior.len()) as u64));
        g.bench_function("first_scan (current+prior/s)", |b| {
            b.iter_batched(|| current.clone(), |cur| diff_normalized(&w.payload, cur, &[], &config), BatchSize::LargeInput)
        });
        g.bench_function("no_change (current+prior/s)", |b| {
            b.iter_batched(|| current.clone(), |cur| diff_normalized(&w.payload, cur, &w.prior, &config), BatchSize::LargeInput)
        });
        g.bench_function("churn_10pct (current+prior/s)", |b| {
            b.iter_batched(
                || churn_current.clone(),
                |cur| diff_normalized(&w.churn, cur, &w.prior, &config),
                BatchSize::LargeInput,
            )
        });
        g.bench_function("rescan_end_to_end_from_text (current+prior/s)", |b| {
            b.iter(|| {
                let p = ScanPayload::from_json_str(black_box(&w.text)).unwrap();
                xray_engine::diff_scan(&p, &w.prior, &config)
            })
        });
        g.finish();
    }

    let mut g = c.benchmark_group("identity");
    g.throughput(Throughput::Elements(1));
    let parts = IdentityParts {
        tenant_id: "11111111-1111-1111-1111-111111111111",
        asset_id: "22222222-2222-2222-2222-222222222222",
        observed_host: "www.svc000042.example.com",
        risk_bucket: "RB5",
        proto: "https",
        port: 443,
        fingerprint: "url:https://www.svc000042.example.com/",
    };
    g.bench_function("identity_key", |b| b.iter(|| black_box(&parts).identity_key()));
    let evidence = json!({
        "issue_type": "expired", "cert_anchor": "spki:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "expiry_state": "expired", "not_after": "2026-01-01T00:00:00Z", "tool": "tlsx",
        "certificate": {"subject_cn": "example.com", "sans": ["example.com", "www.example.com"]},
        "tls": {"sni": "example.com", "tls_versions": ["tls12", "tls13"]}
    });
    g.bench_function("material_hash_rb4", |b| b.iter(|| material_hash(RiskBucket::Rb4, black_box(&evidence))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = engine
}
criterion_main!(benches);
