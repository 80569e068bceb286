//! The scale benchmark's log, loaded through the store's own batch append.
//!
//! Every call is one `EventStore::append_batch` (one `rf_append_batch`
//! statement, one transaction) of 1,000 events: 90 appends of 10 events to
//! long-lived streams, which reach 100 events over ten calls, and 25
//! appends of 4 events to streams that are then marked archived (a tenth
//! of the log, for the mover). The rows are real appends: heads, versions,
//! transaction ids, positions and partition hashes come from the same
//! function every application append goes through, so nothing here has to
//! copy its invariants.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rillflow_adapters::{AppendRequest, EventStore, NewEvent};
use sqlx::PgPool;
use uuid::Uuid;

use crate::raw::payload;

/// Events per `append_batch` call.
pub const CALL_EVENTS: u64 = 1_000;
/// Appends of 10 events to long-lived streams in each call.
const HOT_APPENDS: u64 = 90;
const HOT_APPEND_EVENTS: usize = 10;
/// Calls that take a long-lived stream to its full length (100 events).
const HOT_ROUNDS: u64 = 10;
/// Appends of a whole 4-event stream, archived after the load, per call.
const ARCHIVED_APPENDS: u64 = 25;
pub const ARCHIVED_STREAM_EVENTS: usize = 4;
/// Concurrent loaders: two cores, so more would only queue.
const LOADERS: u64 = 4;

/// The families of stream ids the benchmark uses, kept apart.
#[derive(Clone, Copy)]
pub enum Family {
    /// Long-lived streams of the loaded log.
    Hot = 1,
    /// 4-event streams of the loaded log, archived after it.
    Archived = 2,
    /// New streams that the measured batch appends create.
    Fresh = 3,
    /// Streams of the raw baseline's rows.
    Raw = 4,
}

/// The `i`-th stream of `family`. Odd multiplication modulo 2^128 is a
/// bijection, so ids never collide, and it scatters them over the whole id
/// range: the partition hash (the first 32 bits) and id-ordered walks see
/// them evenly, as they see random v4 ids.
pub fn stream_id(family: Family, i: u64) -> Uuid {
    let x = ((family as u128) << 96) | i as u128;
    Uuid::from_u128(
        x.wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835),
    )
}

/// What a load produced.
pub struct Loaded {
    pub events: u64,
    pub seconds: f64,
    /// The archived streams' ids.
    pub archived: Vec<Uuid>,
}

/// Appends `events` (a multiple of [`CALL_EVENTS`]) over [`LOADERS`]
/// connections, with a progress line on stderr.
pub async fn load(pool: &PgPool, events: u64, label: &str) -> Result<Loaded> {
    if events == 0 || !events.is_multiple_of(CALL_EVENTS) {
        bail!("a size must be a positive multiple of {CALL_EVENTS} events, not {events}");
    }
    let calls = events / CALL_EVENTS;
    let store = EventStore::new(pool.clone());
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let progress = tokio::spawn(progress_line(
        label.to_owned(),
        done.clone(),
        events,
        started,
    ));
    let mut tasks = Vec::new();
    for loader in 0..LOADERS {
        let store = store.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            // Each loader has streams of its own, so loaders never wait on
            // each other's head rows; a call's ten rounds land in ten of its
            // calls, which interleaves streams in the log as live traffic does.
            let mut local = 0u64;
            loop {
                let call = local * LOADERS + loader;
                if call >= calls {
                    return Ok::<(), anyhow::Error>(());
                }
                let group = local / HOT_ROUNDS;
                let mut requests = Vec::with_capacity((HOT_APPENDS + ARCHIVED_APPENDS) as usize);
                for j in 0..HOT_APPENDS {
                    let stream =
                        stream_id(Family::Hot, (group * LOADERS + loader) * HOT_APPENDS + j);
                    let events = (0..HOT_APPEND_EVENTS)
                        .map(|k| NewEvent::new("ItemAdded", payload(k)))
                        .collect();
                    requests.push(AppendRequest::new(stream, events));
                }
                for j in 0..ARCHIVED_APPENDS {
                    let stream = stream_id(Family::Archived, call * ARCHIVED_APPENDS + j);
                    let events = (0..ARCHIVED_STREAM_EVENTS)
                        .map(|k| NewEvent::new("Noted", payload(k)))
                        .collect();
                    requests.push(AppendRequest::new(stream, events));
                }
                for result in store.append_batch(&requests).await {
                    result.context("load append")?;
                }
                done.fetch_add(CALL_EVENTS, Ordering::Relaxed);
                local += 1;
            }
        }));
    }
    for t in tasks {
        t.await.context("loader task")??;
    }
    let seconds = started.elapsed().as_secs_f64();
    progress.abort();
    eprintln!(
        "\r  load {label}: {events} events in {seconds:.1} s, {:.0} events/s{:30}",
        events as f64 / seconds,
        ""
    );
    let archived = (0..calls * ARCHIVED_APPENDS)
        .map(|i| stream_id(Family::Archived, i))
        .collect();
    Ok(Loaded {
        events,
        seconds,
        archived,
    })
}

/// Rewrites one stderr line twice a second: share done, rate, time left.
async fn progress_line(label: String, done: Arc<AtomicU64>, total: u64, started: Instant) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let n = done.load(Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        let rate = n as f64 / secs.max(1e-9);
        let eta = if n == 0 {
            "?".to_owned()
        } else {
            format!("{:.0} s", (total - n) as f64 / rate)
        };
        eprint!(
            "\r  load {label}: {:5.1} % {n} events, {rate:.0} events/s, ETA {eta}    ",
            n as f64 * 100.0 / total as f64
        );
        let _ = std::io::stderr().flush();
    }
}

/// Marks `streams` archived as `rillflow archive mark` does (archived_at,
/// by and reason on the head; the marked-streams counter), in bulk: one
/// statement per 10,000 streams rather than a transaction per stream.
pub async fn mark_archived(pool: &PgPool, streams: &[Uuid]) -> Result<()> {
    for chunk in streams.chunks(10_000) {
        let mut tx = pool.begin().await?;
        let marked = sqlx::query(
            "UPDATE rf_streams
                SET archived_at = now(), archived_by = 'scale-bench', archive_reason = 'scale bench'
              WHERE stream_id = ANY($1) AND archived_at IS NULL",
        )
        .bind(chunk)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("UPDATE rf_archive_stats SET streams_marked = streams_marked + $1")
            .bind(marked as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Bytes of table and of indexes per event, over every partition of
/// `events` and over `events_archive`.
pub async fn bytes_per_event(pool: &PgPool, events: u64) -> Result<(f64, f64)> {
    let (table, indexes): (i64, i64) = sqlx::query_as(
        "SELECT sum(pg_relation_size(r))::bigint, sum(pg_indexes_size(r))::bigint
           FROM (SELECT relid AS r FROM pg_partition_tree('events') WHERE isleaf
                 UNION ALL SELECT 'events_archive'::regclass) t",
    )
    .fetch_one(pool)
    .await?;
    Ok((table as f64 / events as f64, indexes as f64 / events as f64))
}
