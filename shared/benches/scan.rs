//! `keygate scan`'s throughput: MB/s over source-like text with a key every 64 KiB and many `kg_` look-alikes.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keygate_shared::scan::find_keys;
use keygate_shared::{ApiKey, Environment};

fn corpus() -> String {
    let line = "let config = load(\"kg_settings.toml\"); // kg_ prefixes, kg_live_ look-alikes, and plain code\n";
    let mut text = String::with_capacity(4 << 20);
    while text.len() < 4 << 20 {
        text.push_str(line);
        if text.len() % (64 << 10) < line.len() {
            text.push_str(&format!("TOKEN={}\n", ApiKey::generate(Environment::Live).unwrap().expose()));
        }
    }
    text
}

fn benches(c: &mut Criterion) {
    let text = corpus();
    let mut group = c.benchmark_group("scan");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("4 MiB of source", |b| b.iter(|| find_keys(black_box(&text)).len()));
    group.finish();
}

criterion_group!(scan, benches);
criterion_main!(scan);
