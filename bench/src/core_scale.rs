//! The engine alone, in this process: the same steps the trigger runs
//! (JSON text → Value → ScanPayload → normalise → diff), timed per step, at
//! each size. Shows how the pure cost grows and what share of the
//! in-database time it is. Criterion (`cargo bench -p xray_engine`) gives the
//! statistically careful per-step throughput at 1k and 10k.

use serde_json::Value;
use xray_engine::diff::diff_normalized;
use xray_engine::memory::MemoryStore;
use xray_synth::Fleet;
use xray_engine::{normalize, EngineConfig, ScanPayload};

use crate::util::time_ms;

#[derive(Debug, Clone)]
pub struct CoreRow {
    pub endpoints: usize,
    pub payload_bytes: usize,
    pub exposures: usize,
    pub prior: usize,
    pub text_to_value_ms: f64,
    pub value_to_payload_ms: f64,
    /// `ScanPayload::from_json_str`: text straight to the typed payload.
    pub text_to_payload_ms: f64,
    pub normalize_ms: f64,
    pub diff_first_ms: f64,
    pub diff_rescan_ms: f64,
    pub diff_churn_ms: f64,
}

impl CoreRow {
    /// Text to outcome for a no-change rescan, through a `Value` as the
    /// trigger does today.
    pub fn rescan_total_ms(&self) -> f64 {
        self.text_to_value_ms + self.value_to_payload_ms + self.normalize_ms + self.diff_rescan_ms
    }
    /// The same with the text parsed straight into the payload.
    pub fn rescan_direct_ms(&self) -> f64 {
        self.text_to_payload_ms + self.normalize_ms + self.diff_rescan_ms
    }
}

pub fn run(seed: u64, endpoints: usize) -> CoreRow {
    let reps = if endpoints >= 50_000 { 1 } else { 3 };
    let c = EngineConfig::default();
    let fleet = Fleet::generate(seed, endpoints, 0);
    let (churned, _) = fleet.churn(0.10, 1);
    let p0 = ScanPayload::from_value(&fleet.payload(0)).unwrap();
    let text = fleet.payload(1).to_string();

    let (text_to_value_ms, value) = time_ms(reps, || serde_json::from_str::<Value>(&text).unwrap());
    let (value_to_payload_ms, p1) = time_ms(reps, || ScanPayload::from_value(&value).unwrap());
    drop(value);
    let (text_to_payload_ms, direct) = time_ms(reps, || ScanPayload::from_json_str(&text).unwrap());
    drop(direct);
    let (normalize_ms, current1) = time_ms(reps, || normalize(&p1, &c));

    let current0 = normalize(&p0, &c);
    let diff_first_ms = timed_diff(reps, &p0, &current0, &[], &c);
    let mut store = MemoryStore::default();
    store.apply(&diff_normalized(&p0, current0, &[], &c));

    let prior1 = store.prior_for(&p1);
    let diff_rescan_ms = timed_diff(reps, &p1, &current1, &prior1, &c);
    store.apply(&diff_normalized(&p1, current1.clone(), &prior1, &c));

    let p2 = ScanPayload::from_value(&churned.payload(2)).unwrap();
    let current2 = normalize(&p2, &c);
    let prior2 = store.prior_for(&p2);
    let diff_churn_ms = timed_diff(reps, &p2, &current2, &prior2, &c);

    CoreRow {
        endpoints,
        payload_bytes: text.len(),
        exposures: current1.len(),
        prior: prior1.len(),
        text_to_value_ms,
        value_to_payload_ms,
        text_to_payload_ms,
        normalize_ms,
        diff_first_ms,
        diff_rescan_ms,
        diff_churn_ms,
    }
}

fn timed_diff(
    reps: usize,
    p: &ScanPayload,
    current: &[xray_engine::Exposure],
    prior: &[xray_engine::PriorState],
    c: &EngineConfig,
) -> f64 {
    let mut times = Vec::new();
    for _ in 0..reps {
        let cur = current.to_vec();
        let t = std::time::Instant::now();
        let out = diff_normalized(p, cur, prior, c);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        drop(std::hint::black_box(out));
    }
    crate::util::median(&times)
}
