//! Archiving: projection replay before and after half the streams moved
//! cold, and mover throughput with the append latency it causes.
//!
//! ```sh
//! cargo run --release -p rillflow-benches --bin archive -- --events 100000
//! ```
//!
//! For each backend, on a fresh database: `--events` events over 1,000
//! streams (100 per append). Replay: a set-based counting projection catches
//! up from the start in batches of 500, `--replays` times, each with its own
//! checkpoint and read model; every batch is timed. Then half the streams
//! are marked archived and the mover moves them (batches of 500) while four
//! writers append single events to the other half; the same writers also
//! run alone first, for the baseline latency. Then the replays run again,
//! now reading hot and cold storage. `--cluster-cold` rewrites cold storage
//! in global order before the replays. Uses `DATABASE_URL` when set, else the
//! tests' local cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rillflow_adapters::archive::{
    ArchiveMover, ArchiveSettings, MoveFilter, MoveLimits, StreamLifecycle,
};
use rillflow_adapters::projection::{
    BatchOutcome, BatchOwner, Projection, ProjectionCatalog, ProjectionRunner, WriteFence,
};
use rillflow_adapters::{EventStore, NewEvent};
use rillflow_benches::{bench_streams, fill, percentile};
use rillflow_core::archive::Backend;
use rillflow_core::{ExpectedVersion, PartitionSpec};
use rillflow_testkit::{Counter, TestDb};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

struct Options {
    events: usize,
    replays: usize,
    cluster_cold: bool,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        events: 100_000,
        replays: 7,
        cluster_cold: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let v = args.next().ok_or(format!("{name} needs a number"))?;
            v.parse()
                .map_err(|_| format!("{name}: {v:?} is not a number"))
        };
        match arg.as_str() {
            "--events" => o.events = number("--events")?,
            "--replays" => o.replays = number("--replays")?,
            "--cluster-cold" => o.cluster_cold = true,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (expected --events N, --replays N, --cluster-cold)"
                ))
            }
        }
    }
    if o.events < 1_000 || o.replays == 0 {
        return Err("--events must be at least 1000 and --replays at least 1".into());
    }
    Ok(o)
}

/// One replay from the start: milliseconds per batch.
async fn replay(pool: &PgPool, name: &str, events: usize) -> Vec<f64> {
    let projection: Arc<dyn Projection> = Arc::new(Counter::new(name));
    let catalog = ProjectionCatalog::new(pool.clone());
    catalog.setup(projection.as_ref()).await.expect("setup");
    catalog
        .register(projection.name(), PartitionSpec::WHOLE)
        .await
        .expect("register");
    let runner = ProjectionRunner::new(projection, PartitionSpec::WHOLE, BatchOwner::default());
    let fence = WriteFence::Unfenced(pool.clone());
    let mut read = 0;
    let mut times = Vec::new();
    while read < events {
        let start = Instant::now();
        match runner.run_batch(&fence).await.expect("batch") {
            BatchOutcome::Applied { read: r, .. } => {
                times.push(start.elapsed().as_secs_f64() * 1000.0);
                read += r;
            }
            BatchOutcome::Idle => tokio::time::sleep(Duration::from_millis(1)).await,
            other => panic!("unexpected {other:?}"),
        }
    }
    times
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// Batch times of every replay of one database, and the mean of each run.
#[derive(Default)]
struct Replays {
    batches: Vec<f64>,
    run_means: Vec<f64>,
}

impl Replays {
    fn add(&mut self, times: Vec<f64>) {
        self.run_means.push(mean(&times));
        self.batches.extend(times);
    }

    /// Prints the figures; returns the median of the run means.
    fn report(&mut self, label: &str) -> f64 {
        self.run_means.sort_by(|a, b| a.total_cmp(b));
        self.batches.sort_by(|a, b| a.total_cmp(b));
        let median = percentile(&self.run_means, 0.5);
        println!(
            "  replay {label}: {} runs, batch mean (median of runs) {median:.2} ms, \
             p50 {:.2} ms, p95 {:.2} ms, {:.0} events/s",
            self.run_means.len(),
            percentile(&self.batches, 0.5),
            percentile(&self.batches, 0.95),
            500.0 / median * 1000.0
        );
        median
    }
}

/// Four writers appending single events to `targets` until `stop`;
/// latencies in milliseconds.
async fn writers(store: &EventStore, targets: &[Uuid], stop: Arc<AtomicBool>) -> Vec<f64> {
    let mut tasks = Vec::new();
    for w in 0..4usize {
        let store = store.clone();
        let targets = targets.to_vec();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let start = Instant::now();
                store
                    .append(
                        targets[i % targets.len()],
                        ExpectedVersion::Any,
                        &[NewEvent::new("Other", json!({ "i": i }))],
                        &Default::default(),
                    )
                    .await
                    .expect("append");
                lat.push(start.elapsed().as_secs_f64() * 1000.0);
                i += 4;
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("writer"));
    }
    all.sort_by(|a, b| a.total_cmp(b));
    all
}

fn print_latency(label: &str, lat: &[f64], secs: f64) {
    println!(
        "  appends {label}: {} in {secs:.1} s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        percentile(lat, 0.5),
        percentile(lat, 0.99),
        lat.last().copied().unwrap_or(0.0)
    );
}

/// A fresh database on `backend` holding the benchmark's events.
async fn filled(backend: Backend, opts: &Options) -> (TestDb, PgPool) {
    let mut db = TestDb::migrated().await;
    let pool = db.pool_of(8).await;
    ArchiveSettings::set_backend(&pool, backend)
        .await
        .expect("backend");
    fill(&EventStore::new(pool.clone()), opts.events).await;
    (db, pool)
}

async fn vacuum(pool: &PgPool) {
    sqlx::query("VACUUM ANALYZE")
        .execute(pool)
        .await
        .expect("vacuum");
}

/// Two databases with the same events: one stays hot, the other has half
/// its streams moved cold (while writers append, to measure what the mover
/// costs them). Then replays alternate between the two, so that drift of
/// this shared machine hits both sides alike.
async fn run_backend(backend: Backend, opts: &Options) {
    println!("{backend}:");
    let (_hot_db, hot_pool) = filled(backend, opts).await;
    let (_db, pool) = filled(backend, opts).await;
    let store = EventStore::new(pool.clone());

    let all = bench_streams();
    let (archived, kept) = all.split_at(all.len() / 2);
    let life = StreamLifecycle::new(pool.clone());
    for s in archived {
        life.mark(*s, "bench", "bench").await.expect("mark");
    }
    // Baseline append latency: the same writers, no mover.
    let stop = Arc::new(AtomicBool::new(false));
    let baseline_for = Duration::from_secs(5);
    let started = Instant::now();
    let stopper = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(baseline_for).await;
            stop.store(true, Ordering::Relaxed);
        })
    };
    let alone = writers(&store, kept, stop).await;
    stopper.await.expect("stopper");
    print_latency("alone", &alone, started.elapsed().as_secs_f64());

    let stop = Arc::new(AtomicBool::new(false));
    let writing = {
        let store = store.clone();
        let kept = kept.to_vec();
        let stop = stop.clone();
        tokio::spawn(async move { writers(&store, &kept, stop).await })
    };
    let before: DateTime<Utc> = "2999-01-01T00:00:00Z".parse().expect("date");
    let started = Instant::now();
    let moved = ArchiveMover::new(pool.clone())
        .run(
            MoveFilter {
                tenant: None,
                before,
                stream: None,
            },
            MoveLimits {
                batch_size: 500,
                max_events_per_sec: None,
            },
            |_| {},
        )
        .await
        .expect("move");
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let during = writing.await.expect("writers");
    println!(
        "  mover: {} events in {} batches in {secs:.2} s: {:.0} events/s",
        moved.moved,
        moved.batches,
        moved.moved as f64 / secs
    );
    print_latency("during the move", &during, secs);
    if opts.cluster_cold {
        // Moved rows arrive stream by stream; rewriting cold storage in
        // global order restores the locality a replay reads with.
        for sql in [
            "CLUSTER events_archive USING events_archive_tx_position_idx",
            "CLUSTER events_cold_default USING events_cold_default_tx_id_position_idx",
        ] {
            sqlx::query(sql).execute(&pool).await.expect("cluster");
        }
        println!("  cold storage clustered by (tx_id, position)");
    }
    vacuum(&pool).await;
    vacuum(&hot_pool).await;

    // Both read the same first `events` events; in one, half are cold.
    let (mut hot, mut cold) = (Replays::default(), Replays::default());
    for r in 0..opts.replays {
        let name = format!("bench_replay_{r}");
        hot.add(replay(&hot_pool, &name, opts.events).await);
        cold.add(replay(&pool, &name, opts.events).await);
    }
    let hot_only = hot.report("hot-only");
    let mixed = cold.report("half-cold");
    println!(
        "  batch latency half-cold vs hot-only: {:+.1} %",
        (mixed / hot_only - 1.0) * 100.0
    );
}

#[tokio::main]
async fn main() {
    let opts = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    for backend in [Backend::DualTable, Backend::Partitioned] {
        run_backend(backend, &opts).await;
    }
}
