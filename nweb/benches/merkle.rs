//! Criterion benchmark of the scanprint Merkle root against plain SHA-256 of
//! the same bytes, on seeded synthetic scanprint (`xray_synth`). Run with
//! `cargo bench -p nweb --bench merkle` (or `scripts/bench.sh`; the 100 MB
//! comparison with `sha256sum` is there too).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SEED: u64 = 20_260_302;

fn merkle(c: &mut Criterion) {
    let jsonl = xray_synth::scanprint_jsonl(SEED, 8 << 20);
    let mut g = c.benchmark_group("merkle/8MiB_scanprint");
    g.throughput(Throughput::Bytes(jsonl.len() as u64));
    g.bench_function("scanprint_merkle_root (bytes/s)", |b| {
        b.iter(|| nweb::merkle::scanprint_merkle_root(black_box(&jsonl)).unwrap())
    });
    g.bench_function("sha256 of the bytes (bytes/s)", |b| {
        use sha2::Digest;
        b.iter(|| sha2::Sha256::digest(black_box(jsonl.as_bytes())))
    });
    g.finish();

}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = merkle
}
criterion_main!(benches);
