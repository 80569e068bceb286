//! Append→projected latency: how long an appended event waits before a
//! worker's handler sees it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rillflow_adapters::projection::{
    wakeup, BatchOwner, Batches, HandlerError, PgBatches, Projection, ProjectionCatalog,
    ProjectionRunner, ProjectionWorker, RuntimeMetrics, WorkerTiming,
};
use rillflow_adapters::{EventStore, NewEvent, RecordedEvent};
use rillflow_core::{ExpectedVersion, PartitionSpec};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

/// Records when each Ping was applied, in the database clock.
struct Stamp;

#[async_trait]
impl Projection for Stamp {
    fn name(&self) -> &str {
        "bench_latency"
    }
    fn handles(&self, t: &str) -> bool {
        t == "Ping"
    }
    async fn setup(&self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS bench_latency (position bigint PRIMARY KEY, applied_at timestamptz NOT NULL)")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
    async fn apply(&self, conn: &mut PgConnection, e: &RecordedEvent) -> Result<(), HandlerError> {
        sqlx::query("INSERT INTO bench_latency VALUES ($1, clock_timestamp())")
            .bind(e.position)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// Append→projected in ms for `samples` Ping events appended one by one,
/// 20 ms apart, while `writers` tasks append single events to other streams
/// as fast as they can. A worker waits on the high-water watch with default
/// timing. Each sample is the database-clock time from the start of the
/// Ping's append transaction (`created_at`: the append's own execution
/// counts) to the moment the handler ran in the batch that applied it.
/// Run once per database: the projection's table and checkpoint stay.
pub async fn latency(pool: &PgPool, samples: usize, writers: usize) -> Vec<f64> {
    let projection: Arc<dyn Projection> = Arc::new(Stamp);
    let catalog = ProjectionCatalog::new(pool.clone());
    catalog.setup(projection.as_ref()).await.unwrap();
    catalog
        .register(projection.name(), PartitionSpec::WHOLE)
        .await
        .unwrap();
    // Start past whatever the database holds already.
    let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    catalog
        .reset_checkpoint(projection.name(), head)
        .await
        .unwrap();
    let metrics = Arc::new(RuntimeMetrics::new());
    let worker = ProjectionWorker::new(
        vec![Arc::new(PgBatches::new(
            ProjectionRunner::new(projection, PartitionSpec::WHOLE, BatchOwner::default()),
            pool.clone(),
            None,
        )) as Arc<dyn Batches>],
        WorkerTiming::default(),
        metrics.clone(),
    );
    let wake = wakeup::listen(pool.clone()).await.unwrap();
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move { worker.run(None, &wake, stop_rx).await });
    let store = EventStore::new(pool.clone());
    let busy = Arc::new(AtomicBool::new(true));
    let load: Vec<_> = (0..writers)
        .map(|w| {
            let (store, busy) = (store.clone(), busy.clone());
            tokio::spawn(async move {
                let mut n = 0u128;
                while busy.load(Ordering::Relaxed) {
                    let stream = Uuid::from_u128((0xA0 << 120) | ((w as u128) << 32) | (n % 100));
                    let e = [NewEvent::new("Load", json!({ "n": n as u64 }))];
                    store
                        .append(stream, ExpectedVersion::Any, &e, &Default::default())
                        .await
                        .unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    for i in 0..samples {
        store
            .append(
                Uuid::from_u128(77),
                ExpectedVersion::Any,
                &[NewEvent::new("Ping", json!({ "i": i }))],
                &Default::default(),
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let out: Vec<f64> = loop {
        let v: Vec<f64> = sqlx::query_scalar(
            "SELECT (extract(epoch FROM (l.applied_at - e.created_at)) * 1000)::float8
             FROM bench_latency l JOIN events e USING (position)",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        if v.len() == samples {
            break v;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {samples} applied",
            v.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    busy.store(false, Ordering::Relaxed);
    for l in load {
        let _ = l.await;
    }
    let _ = stop_tx.send(true);
    let _ = task.await;
    if std::env::var_os("RILLFLOW_BENCH_METRICS").is_some() {
        let text = prometheus::TextEncoder::new()
            .encode_to_string(&metrics.gather())
            .unwrap_or_default();
        eprintln!("{text}");
    }
    out
}
