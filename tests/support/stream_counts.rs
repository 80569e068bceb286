//! The `stream_counts` read model of tests/fixtures/exactly_once.toml, run
//! by real daemons: a writer that keeps appending to it, and the checks that
//! it caught up and equals the fold of every event applied exactly once.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rillflow_adapters::projection::ProjectionCatalog;
use rillflow_adapters::{EventStore, NewEvent};
use rillflow_core::ExpectedVersion;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

/// The fixture declaring `stream_counts`.
pub fn fixture() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/exactly_once.toml").to_owned()
}

/// Appends to `streams` streams round-robin until `stop`; returns the count.
pub fn writer(
    store: EventStore,
    streams: Vec<Uuid>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut i = 0usize;
        while !stop.load(Ordering::SeqCst) {
            let s = streams[i % streams.len()];
            let batch: Vec<NewEvent> = (0..1 + i % 3)
                .map(|n| NewEvent::new("Counted", json!({ "n": n })))
                .collect();
            if store
                .append(s, ExpectedVersion::Any, &batch, &Default::default())
                .await
                .is_ok()
            {
                sent.fetch_add(batch.len() as u64, Ordering::SeqCst);
            }
            i += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
}

/// Waits until the projection has applied `total` events with no lag.
pub async fn wait_caught_up(pool: &PgPool, total: i64, limit: Duration) {
    let catalog = ProjectionCatalog::new(pool.clone());
    let start = Instant::now();
    loop {
        if let Ok(s) = catalog.status("stream_counts").await {
            if s.lag() == 0 && s.processed_total() >= total {
                return;
            }
            assert!(start.elapsed() < limit, "not caught up: {s:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every stream's read-model row equals its version in the store.
pub async fn assert_fold(pool: &PgPool, streams: &[Uuid]) {
    let store = EventStore::new(pool.clone());
    for s in streams {
        let version = store.stream_version(*s).await.unwrap() as i64;
        let row: Option<(i64, i64)> =
            sqlx::query_as("SELECT events, last_version FROM stream_counts WHERE stream_id = $1")
                .bind(s)
                .fetch_optional(pool)
                .await
                .unwrap();
        assert_eq!(row.unwrap_or((0, 0)), (version, version), "stream {s}");
    }
    let dead: i64 = sqlx::query_scalar("SELECT count(*) FROM rf_projection_dlq")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(dead, 0, "no event was applied twice or out of order");
}
