//! Append throughput against a raw INSERT of the same rows into a plain table.
//!
//! Both sides run in the same process against the same database, with the
//! same 8 concurrent writers, so the ratio isolates what the event store adds:
//! the stream head lock and version check, the transaction id, the position
//! sequence, the partition routing and the read indexes.
//!
//! Runs on `DATABASE_URL` when set, else on the test cluster under `target/`.
//! `cargo bench -p rillflow-benches --bench append`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rillflow_adapters::{EventStore, NewEvent};
use rillflow_core::ExpectedVersion;
use rillflow_testkit::TestDb;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

const WRITERS: usize = 8;
const BATCH: usize = 100;

/// The baseline: the same columns as `events`, a primary key, nothing else.
const RAW_TABLE: &str = "CREATE TABLE raw_events (
    position bigint PRIMARY KEY, stream_id uuid NOT NULL, version bigint NOT NULL,
    event_type text NOT NULL, data jsonb NOT NULL, headers jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())";

struct Fixture {
    store: EventStore,
    pool: PgPool,
    next: Arc<AtomicU64>,
    _db: TestDb,
}

fn payload(i: usize) -> serde_json::Value {
    json!({ "order": i, "sku": "ABC-123", "qty": 2, "price": "19.99" })
}

async fn fixture() -> Fixture {
    let mut db = TestDb::migrated().await;
    let pool = db.pool_of(WRITERS as u32 + 2).await;
    sqlx::query(RAW_TABLE).execute(&pool).await.expect("raw table");
    Fixture { store: EventStore::new(pool.clone()), pool, next: Arc::new(AtomicU64::new(1)), _db: db }
}

/// Runs `WRITERS` tasks, each calling `op` once with a fresh number, `iters`
/// times over, and returns the elapsed time.
async fn concurrent<F, Fut>(iters: u64, next: &Arc<AtomicU64>, op: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
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

async fn append_events(store: EventStore, n: u64, size: usize) {
    let events: Vec<NewEvent> = (0..size).map(|i| NewEvent::new("ItemAdded", payload(i))).collect();
    store
        .append(Uuid::from_u128(n as u128), ExpectedVersion::Any, &events, &Default::default())
        .await
        .expect("append");
}

async fn raw_insert(pool: PgPool, n: u64, size: usize) {
    let positions: Vec<i64> = (0..size).map(|i| (n * BATCH as u64 + i as u64) as i64).collect();
    let versions: Vec<i64> = (1..=size as i64).collect();
    let data: Vec<serde_json::Value> = (0..size).map(payload).collect();
    sqlx::query(
        "INSERT INTO raw_events (position, stream_id, version, event_type, data, headers)
         SELECT p, $2, v, 'ItemAdded', d, '{}'::jsonb FROM unnest($1::bigint[], $3::bigint[], $4::jsonb[]) AS t(p, v, d)",
    )
    .bind(&positions)
    .bind(Uuid::from_u128(n as u128))
    .bind(&versions)
    .bind(&data)
    .execute(&pool)
    .await
    .expect("raw insert");
}

async fn raw_insert_one(pool: PgPool, n: u64) {
    sqlx::query(
        "INSERT INTO raw_events (position, stream_id, version, event_type, data, headers)
         VALUES ($1, $2, 1, 'ItemAdded', $3, '{}'::jsonb)",
    )
    .bind(n as i64 * BATCH as i64)
    .bind(Uuid::from_u128(n as u128))
    .bind(payload(0))
    .execute(&pool)
    .await
    .expect("raw insert");
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let f = rt.block_on(fixture());

    let mut group = c.benchmark_group("append_batch_100x8");
    group.throughput(Throughput::Elements((WRITERS * BATCH) as u64));
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    group.bench_function("rillflow_append", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let store = f.store.clone();
            let next = f.next.clone();
            async move { concurrent(iters, &next, move |n| append_events(store.clone(), n, BATCH)).await }
        })
    });
    group.bench_function("raw_insert", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let pool = f.pool.clone();
            let next = f.next.clone();
            async move { concurrent(iters, &next, move |n| raw_insert(pool.clone(), n, BATCH)).await }
        })
    });
    group.finish();

    let mut group = c.benchmark_group("append_single_x8");
    group.throughput(Throughput::Elements(WRITERS as u64));
    group.sample_size(10).measurement_time(Duration::from_secs(8));
    group.bench_function("rillflow_append", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let store = f.store.clone();
            let next = f.next.clone();
            async move { concurrent(iters, &next, move |n| append_events(store.clone(), n, 1)).await }
        })
    });
    group.bench_function("raw_insert", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let pool = f.pool.clone();
            let next = f.next.clone();
            async move { concurrent(iters, &next, move |n| raw_insert_one(pool.clone(), n)).await }
        })
    });
    group.finish();
    drop(f);
}

criterion_group!(benches, bench);
criterion_main!(benches);
