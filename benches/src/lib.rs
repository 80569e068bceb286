//! What the benchmark commands in `src/bin/` share; the criterion
//! benchmarks live in `benches/`.

use std::time::Duration;

mod accounts;
mod latency;
pub mod raw;
pub mod scale;
pub use accounts::fill_accounts;
pub use latency::latency;

use rillflow_adapters::{EventStore, NewEvent};
use rillflow_core::ExpectedVersion;
use serde_json::json;
use uuid::Uuid;

/// The 1,000 streams the benchmark log is spread over, scattered over the
/// whole id range (a 128-bit multiplicative hash), so that the partition
/// hash (the id's first 32 bits) and id-ordered walks see them evenly.
pub fn bench_streams() -> Vec<Uuid> {
    (0..1_000u128)
        .map(|i| Uuid::from_u128((i + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)))
        .collect()
}

/// Appends `events` events of type `Counted` over [`bench_streams`], 100
/// per append, round-robin.
pub async fn fill(store: &EventStore, events: usize) {
    let streams = bench_streams();
    let mut appended = 0;
    let mut i = 0;
    while appended < events {
        let n = 100.min(events - appended);
        let batch: Vec<NewEvent> = (0..n)
            .map(|k| NewEvent::new("Counted", json!({ "k": k })))
            .collect();
        store
            .append(
                streams[i % streams.len()],
                ExpectedVersion::Any,
                &batch,
                &Default::default(),
            )
            .await
            .expect("append");
        appended += n;
        i += 1;
    }
}

/// The `p` quantile (0–1) of `sorted`, nearest rank; `sorted` is not empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// Prints median, best, worst and every figure of `times`, in ms.
pub fn summary(label: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let median = if times.len() % 2 == 1 {
        ms(times[times.len() / 2])
    } else {
        (ms(times[times.len() / 2 - 1]) + ms(times[times.len() / 2])) / 2.0
    };
    let all: Vec<String> = times.iter().map(|d| format!("{:.0}", ms(*d))).collect();
    println!(
        "{label}: runs {}, median {median:.0} ms, best {:.0} ms, worst {:.0} ms (all, ms: {})",
        times.len(),
        ms(times[0]),
        ms(*times.last().unwrap()),
        all.join(" ")
    );
}
