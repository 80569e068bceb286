//! Appends against the raw baseline, and read latencies, in-process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rillflow_adapters::{EventStore, NewEvent};
use rillflow_core::ExpectedVersion;
use sqlx::PgPool;
use uuid::Uuid;

use super::load::{stream_id, Family};
use crate::percentile;
use crate::raw::{payload, raw_insert};

/// Concurrent writers, as in the append benchmark.
pub const WRITERS: u64 = 8;
const SINGLE_APPENDS: u64 = 2_000;
const BATCHES: u64 = 200;
const BATCH: usize = 100;

/// Events per second of each side, rillflow and the raw INSERT.
#[derive(Clone, Copy, Default)]
pub struct Rates {
    pub rillflow: f64,
    pub raw: f64,
}

/// Runs `per_writer` operations on each of [`WRITERS`] tasks; the elapsed
/// seconds.
async fn concurrent<F, Fut>(per_writer: u64, op: F) -> Result<f64>
where
    F: Fn(u64, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let op = op.clone();
            tokio::spawn(async move {
                for i in 0..per_writer {
                    op(w, i).await?;
                }
                Ok::<(), anyhow::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await.context("writer task")??;
    }
    Ok(started.elapsed().as_secs_f64())
}

/// Single-event appends to existing long-lived streams (`targets`), and
/// single-row INSERTs of the same row into `raw_indexed`; each side twice,
/// alternating, best run kept (drift on this shared machine hits both).
pub async fn single_appends(pool: &PgPool, targets: &[Uuid]) -> Result<Rates> {
    let store = EventStore::new(pool.clone());
    let targets = Arc::new(targets.to_vec());
    let per = SINGLE_APPENDS / WRITERS;
    let raw_next = Arc::new(AtomicU64::new(0));
    let mut best = Rates::default();
    for round in 0..2u64 {
        let next = raw_next.clone();
        let p = pool.clone();
        let secs = concurrent(per, move |_, _| {
            let p = p.clone();
            let n = next.fetch_add(1, Ordering::Relaxed);
            async move {
                raw_insert(p, "raw_indexed", stream_id(Family::Raw, n % 10_000), 1).await;
                Ok(())
            }
        })
        .await?;
        best.raw = best.raw.max(SINGLE_APPENDS as f64 / secs);

        let (store, targets) = (store.clone(), targets.clone());
        let secs = concurrent(per, move |w, i| {
            let store = store.clone();
            let mut rng = StdRng::seed_from_u64(round * 1_000_000 + w * 10_000 + i);
            let stream = targets[rng.random_range(0..targets.len())];
            async move {
                store
                    .append(
                        stream,
                        ExpectedVersion::Any,
                        &[NewEvent::new("ItemAdded", payload(i as usize))],
                        &Default::default(),
                    )
                    .await
                    .context("single append")?;
                Ok(())
            }
        })
        .await?;
        best.rillflow = best.rillflow.max(SINGLE_APPENDS as f64 / secs);
    }
    Ok(best)
}

/// 100-event appends, each to a new stream, and the same rows as one
/// multi-row INSERT into `raw_indexed`; twice each, alternating, best kept.
pub async fn batch_appends(pool: &PgPool) -> Result<Rates> {
    let store = EventStore::new(pool.clone());
    let per = BATCHES / WRITERS;
    let next = Arc::new(AtomicU64::new(0));
    let events = (BATCHES * BATCH as u64) as f64;
    let mut best = Rates::default();
    for _ in 0..2 {
        let (p, n) = (pool.clone(), next.clone());
        let secs = concurrent(per, move |_, _| {
            let p = p.clone();
            let stream = stream_id(Family::Raw, 1_000_000 + n.fetch_add(1, Ordering::Relaxed));
            async move {
                raw_insert(p, "raw_indexed", stream, BATCH).await;
                Ok(())
            }
        })
        .await?;
        best.raw = best.raw.max(events / secs);

        let (store, n) = (store.clone(), next.clone());
        let secs = concurrent(per, move |_, _| {
            let store = store.clone();
            let stream = stream_id(Family::Fresh, n.fetch_add(1, Ordering::Relaxed));
            async move {
                let batch: Vec<NewEvent> = (0..BATCH)
                    .map(|k| NewEvent::new("ItemAdded", payload(k)))
                    .collect();
                store
                    .append(stream, ExpectedVersion::Any, &batch, &Default::default())
                    .await
                    .context("batch append")?;
                Ok(())
            }
        })
        .await?;
        best.rillflow = best.rillflow.max(events / secs);
    }
    Ok(best)
}

/// p50 and p99 in ms.
#[derive(Clone, Copy, Default)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
}

fn latency(mut ms: Vec<f64>) -> Latency {
    ms.sort_by(|a, b| a.total_cmp(b));
    Latency {
        p50: percentile(&ms, 0.5),
        p99: percentile(&ms, 0.99),
    }
}

/// A whole long-lived stream (up to 100 events) read 500 times, streams
/// picked at random, one reader.
pub async fn stream_reads(pool: &PgPool, targets: &[Uuid]) -> Result<Latency> {
    let store = EventStore::new(pool.clone());
    let mut rng = StdRng::seed_from_u64(7);
    let mut ms = Vec::new();
    for _ in 0..500 {
        let stream = targets[rng.random_range(0..targets.len())];
        let started = Instant::now();
        let events = store.read_stream(stream, 1, 100).await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(!events.is_empty(), "stream {stream} read empty");
    }
    Ok(latency(ms))
}

/// A page of 500 events of the global log after a random position, 200
/// times, one reader; finding the position's cursor is not timed.
pub async fn global_reads(pool: &PgPool, events: u64) -> Result<Latency> {
    let store = EventStore::new(pool.clone());
    let mut rng = StdRng::seed_from_u64(11);
    let mut ms = Vec::new();
    for _ in 0..200 {
        let position = rng.random_range(1..events.saturating_sub(1_000).max(2)) as i64;
        let cursor = store.cursor_at(position).await?;
        let started = Instant::now();
        let page = store.read_all(cursor, 500).await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(
            !page.events.is_empty(),
            "global page after {position} empty"
        );
    }
    Ok(latency(ms))
}
