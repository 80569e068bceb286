//! Append throughput against raw INSERTs of the same rows into plain tables.
//!
//! All sides run in the same process against the same database with the same
//! 8 concurrent writers; two baselines bracket the store (`raw_indexed` and
//! `raw_bare`, see `rillflow_benches::raw`). A third group sends single
//! events from 64 tasks through the coalescing writer (`EventStore::writer`),
//! to compare with the 8 raw single-row INSERTs of the second group.
//!
//! Batches go to a new stream each; single events go to existing streams,
//! as commands on live aggregates do. `--bin append` (src/bin/append.rs)
//! prints the same comparisons as ratios, on both servers.
//!
//! Runs on `DATABASE_URL` when set, else on a local cluster with stock
//! settings under `target/rillflow-bench-pg` (fsync and synchronous_commit
//! on, as `rillflow db start` makes): appends are commits, and a durable
//! server is where commits cost what users pay. `RILLFLOW_BENCH_SERVER=test`
//! picks the tests' fsync-off cluster instead.
//! `cargo bench -p rillflow-benches --bench append`

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rillflow_adapters::{
    AppendOptions, ClusterSettings, EventStore, LocalCluster, NewEvent, WriterConfig,
};
use rillflow_benches::raw::{
    create_baselines, live_stream, payload, raw_insert, BASELINES, LIVE_STREAMS,
};
use rillflow_core::tenant::TenantName;
use rillflow_core::ExpectedVersion;
use rillflow_testkit::TestDb;
use sqlx::PgPool;
use uuid::Uuid;

const WRITERS: usize = 8;
const BATCH: usize = 100;
/// Tasks appending through the coalescing writer.
const COALESCED_TASKS: usize = 64;

struct Fixture {
    store: EventStore,
    pool: PgPool,
    next: Arc<AtomicU64>,
    _db: TestDb,
}

/// Which live stream the n-th single append goes to.
type StreamOf = fn(u64) -> Uuid;

/// The conjoined tenant's own live streams.
fn tenant_stream(n: u64) -> Uuid {
    Uuid::from_u128(((0xB1_u128) << 120) | (n % LIVE_STREAMS) as u128)
}

/// Appends on behalf of a conjoined tenant: the tenant check and claim of
/// the twelve-argument `rf_append` on top of the plain append.
fn tenant_options() -> AppendOptions {
    AppendOptions {
        tenant: Some(TenantName::parse("bench").expect("valid name")),
        ..AppendOptions::default()
    }
}

async fn fixture() -> Fixture {
    let mut db = TestDb::migrated().await;
    let pool = db.pool_of(WRITERS as u32 + 2).await;
    create_baselines(&pool).await;
    let store = EventStore::new(pool.clone());
    let tenant = tenant_options();
    for n in 0..LIVE_STREAMS {
        let event = [NewEvent::new("Opened", payload(0))];
        for (stream, options) in [
            (live_stream(n), AppendOptions::default()),
            (tenant_stream(n), tenant.clone()),
        ] {
            store
                .append(stream, ExpectedVersion::NoStream, &event, &options)
                .await
                .expect("seed");
        }
    }
    Fixture {
        store,
        pool,
        next: Arc::new(AtomicU64::new(1)),
        _db: db,
    }
}

/// Runs `tasks` tasks, each calling `op` once with a fresh number, `iters`
/// times over, and returns the elapsed time.
async fn concurrent<F, Fut>(tasks: usize, iters: u64, next: &Arc<AtomicU64>, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..tasks)
        .map(|_| {
            let op = op.clone();
            let next = next.clone();
            tokio::spawn(async move {
                for _ in 0..iters {
                    op(next.fetch_add(1, Ordering::Relaxed)).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    start.elapsed()
}

async fn append_batch(store: EventStore, n: u64, options: Arc<AppendOptions>) {
    let events: Vec<NewEvent> = (0..BATCH)
        .map(|i| NewEvent::new("ItemAdded", payload(i)))
        .collect();
    let stream = Uuid::from_u128(n as u128);
    store
        .append(stream, ExpectedVersion::Any, &events, &options)
        .await
        .expect("append");
}

async fn append_single(store: EventStore, stream: Uuid, options: Arc<AppendOptions>) {
    let event = [NewEvent::new("ItemAdded", payload(0))];
    store
        .append(stream, ExpectedVersion::Any, &event, &options)
        .await
        .expect("append");
}

/// Points `DATABASE_URL` at the durable bench cluster unless a server was
/// chosen (see the module's comment).
fn choose_server() {
    if std::env::var_os("DATABASE_URL").is_some() {
        eprintln!("append bench on DATABASE_URL");
        return;
    }
    if std::env::var("RILLFLOW_BENCH_SERVER").as_deref() == Ok("test") {
        eprintln!("append bench on the test cluster (fsync off)");
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rillflow-bench-pg");
    let cluster = LocalCluster::start(&dir, &ClusterSettings::for_users())
        .expect("start the durable bench cluster");
    eprintln!(
        "append bench on a durable local cluster in {} (stop it with `rillflow db stop --dir {}`)",
        dir.display(),
        dir.display()
    );
    // Before any other thread runs: the runtime is made after this.
    std::env::set_var("DATABASE_URL", cluster.url("postgres"));
}

fn bench(c: &mut Criterion) {
    choose_server();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let f = rt.block_on(fixture());

    let mut group = c.benchmark_group("append_batch_100x8");
    group.throughput(Throughput::Elements((WRITERS * BATCH) as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for (name, options) in [
        ("rillflow_append", AppendOptions::default()),
        ("rillflow_append_tenant", tenant_options()),
    ] {
        let options = Arc::new(options);
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (store, next, options) = (f.store.clone(), f.next.clone(), options.clone());
                async move {
                    concurrent(WRITERS, iters, &next, move |n| {
                        append_batch(store.clone(), n, options.clone())
                    })
                    .await
                }
            })
        });
    }
    for table in BASELINES {
        group.bench_function(table, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (pool, next) = (f.pool.clone(), f.next.clone());
                async move {
                    concurrent(WRITERS, iters, &next, move |n| {
                        raw_insert(pool.clone(), table, Uuid::from_u128(n as u128), BATCH)
                    })
                    .await
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("append_single_x8");
    group.throughput(Throughput::Elements(WRITERS as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let singles: [(&str, StreamOf, AppendOptions); 2] = [
        ("rillflow_append", live_stream, AppendOptions::default()),
        ("rillflow_append_tenant", tenant_stream, tenant_options()),
    ];
    for (name, stream_of, options) in singles {
        let options = Arc::new(options);
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (store, next, options) = (f.store.clone(), f.next.clone(), options.clone());
                async move {
                    concurrent(WRITERS, iters, &next, move |n| {
                        append_single(store.clone(), stream_of(n), options.clone())
                    })
                    .await
                }
            })
        });
    }
    for table in BASELINES {
        group.bench_function(table, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (pool, next) = (f.pool.clone(), f.next.clone());
                async move {
                    concurrent(WRITERS, iters, &next, move |n| {
                        raw_insert(pool.clone(), table, live_stream(n), 1)
                    })
                    .await
                }
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("append_single_coalesced_x64");
    group.throughput(Throughput::Elements(COALESCED_TASKS as u64));
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    let writer = rt.block_on(async { f.store.writer(WriterConfig::default()) });
    group.bench_function("rillflow_writer", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (writer, next) = (writer.clone(), f.next.clone());
            async move {
                concurrent(COALESCED_TASKS, iters, &next, move |n| {
                    let writer = writer.clone();
                    async move {
                        let event = vec![NewEvent::new("ItemAdded", payload(0))];
                        writer
                            .append(
                                live_stream(n),
                                ExpectedVersion::Any,
                                event,
                                AppendOptions::default(),
                            )
                            .await
                            .expect("append");
                    }
                })
                .await
            }
        })
    });
    group.finish();
    drop(f);
}

criterion_group!(benches, bench);
criterion_main!(benches);
