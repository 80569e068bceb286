//! Archiving on real Postgres, on both backends: routing (ARCH-4), versions
//! and idempotency across tiers (ARCH-2), hot reads (ARCH-3), and the mover
//! racing appenders and readers (ARCH-1, ARCH-5).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rillflow_adapters::archive::{
    ArchiveMover, ArchiveSettings, ArchiveStats, MoveFilter, MoveLimits, StreamLifecycle,
};
use rillflow_adapters::{
    AppendOptions, AppendResult, EventStore, NewEvent, ReadAllBatch, StoreError,
};
use rillflow_core::archive::Backend;
use rillflow_core::{ExpectedVersion, GlobalCursor, PartitionSpec};
use rillflow_testkit::TestDb;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

const BACKENDS: [Backend; 2] = [Backend::DualTable, Backend::Partitioned];
/// Appends per writer in the race test.
const APPENDS_PER_WRITER: usize = 150;

fn future() -> DateTime<Utc> {
    "2999-01-01T00:00:00Z".parse().unwrap()
}

fn all_before(stream: Option<Uuid>) -> MoveFilter {
    MoveFilter {
        tenant: None,
        before: future(),
        stream,
    }
}

fn batch(n: usize, tag: &str) -> Vec<NewEvent> {
    (0..n)
        .map(|i| NewEvent::new("E", json!({ "tag": tag, "i": i })))
        .collect()
}

fn keyed(key: &str) -> AppendOptions {
    AppendOptions {
        idempotency_key: Some(key.to_owned()),
        ..AppendOptions::default()
    }
}

async fn setup(backend: Backend) -> (TestDb, EventStore) {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    ArchiveSettings::set_backend(store.pool(), backend)
        .await
        .unwrap();
    (db, store)
}

/// (tier, version) of every row of `stream`, in version order, where the
/// tier is the table that holds it.
async fn tiers(pool: &PgPool, stream: Uuid) -> Vec<(String, i64)> {
    sqlx::query_as(
        "SELECT tier, version FROM (
             SELECT 'hot' AS tier, version FROM events_hot WHERE stream_id = $1
             UNION ALL SELECT 'cold', version FROM events_cold WHERE stream_id = $1
             UNION ALL SELECT 'archive', version FROM events_archive WHERE stream_id = $1
         ) t ORDER BY version, tier",
    )
    .bind(stream)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn tier_of(rows: &[(String, i64)], version: i64) -> Vec<&str> {
    rows.iter()
        .filter(|(_, v)| *v == version)
        .map(|(t, _)| t.as_str())
        .collect()
}

/// Appends `n` events tagged `tag` to `stream`, expecting `expected`.
async fn append(
    store: &EventStore,
    stream: Uuid,
    expected: ExpectedVersion,
    n: usize,
    tag: &str,
) -> AppendResult {
    store
        .append(stream, expected, &batch(n, tag), &Default::default())
        .await
        .unwrap()
}

/// Appends `n` events to a new stream `s` and marks it archived.
async fn archived_stream(store: &EventStore, s: Uuid, n: usize) {
    store
        .append(
            s,
            ExpectedVersion::NoStream,
            &batch(n, "a"),
            &Default::default(),
        )
        .await
        .unwrap();
    StreamLifecycle::new(store.pool().clone())
        .mark(s, "closed", "test")
        .await
        .unwrap();
}

async fn move_all(pool: &PgPool, batch_size: u32) -> u64 {
    ArchiveMover::new(pool.clone())
        .run(
            all_before(None),
            MoveLimits {
                batch_size,
                max_events_per_sec: None,
            },
            |_| {},
        )
        .await
        .unwrap()
        .moved
}

#[tokio::test]
async fn versions_keys_and_routing_hold_across_tiers_on_both_backends() {
    for backend in BACKENDS {
        let (_db, store) = setup(backend).await;
        let pool = store.pool().clone();
        let s = Uuid::from_u128(0xA1);
        let first = store
            .append(s, ExpectedVersion::NoStream, &batch(3, "a"), &keyed("k"))
            .await
            .unwrap();
        let life = StreamLifecycle::new(pool.clone());
        life.mark(s, "closed", "test").await.unwrap();
        assert_eq!(move_all(&pool, 2).await, 3, "{backend}");
        let cold = match backend {
            Backend::DualTable => "archive",
            Backend::Partitioned => "cold",
        };
        let rows = tiers(&pool, s).await;
        assert!(rows.iter().all(|(t, _)| t == cold), "{backend}: {rows:?}");

        // ARCH-2: the head still decides, whatever tier holds the events.
        let err = store
            .append(
                s,
                ExpectedVersion::NoStream,
                &batch(1, "b"),
                &Default::default(),
            )
            .await;
        assert!(
            matches!(err, Err(StoreError::WrongExpectedVersion { .. })),
            "{backend}: no-stream on an archived stream conflicts: {err:?}"
        );
        let replay = store
            .append(s, ExpectedVersion::Any, &batch(3, "a"), &keyed("k"))
            .await
            .unwrap();
        assert!(replay.replayed, "{backend}");
        assert_eq!(replay.positions, first.positions, "{backend}");
        let next = append(&store, s, ExpectedVersion::Exact(3), 1, "c").await;
        assert_eq!(next.first_version, 4, "{backend}: the sequence continues");

        // ARCH-4: partitioned keeps a cold stream growing in the cold
        // partition; dual-table without redirect appends hot.
        let rows = tiers(&pool, s).await;
        let want = match backend {
            Backend::DualTable => "hot",
            Backend::Partitioned => "cold",
        };
        assert_eq!(tier_of(&rows, 4), vec![want], "{backend}: {rows:?}");

        // Reactivation: new events hot, nothing moved back or doubled.
        life.reactivate(s).await.unwrap();
        append(&store, s, ExpectedVersion::Exact(4), 1, "d").await;
        let rows = tiers(&pool, s).await;
        assert_eq!(tier_of(&rows, 5), vec!["hot"], "{backend}: {rows:?}");
        let versions: Vec<i64> = rows.iter().map(|(_, v)| *v).collect();
        assert_eq!(versions, vec![1, 2, 3, 4, 5], "{backend}: once each");
        let read: Vec<i64> = store
            .with_archived()
            .read_stream(s, 1, 100)
            .await
            .unwrap()
            .iter()
            .map(|e| e.version)
            .collect();
        assert_eq!(read, vec![1, 2, 3, 4, 5], "{backend}");
    }
}

#[tokio::test]
async fn redirect_lands_appends_cold_until_reactivation() {
    let (_db, store) = setup(Backend::DualTable).await;
    let pool = store.pool().clone();
    let s = Uuid::from_u128(0xB1);
    append(&store, s, ExpectedVersion::NoStream, 2, "a").await;
    let life = StreamLifecycle::new(pool.clone());
    life.mark(s, "closed", "test").await.unwrap();
    let before = ArchiveSettings::set_redirect(&pool, true).await.unwrap();
    assert!(!before.redirect, "redirect starts off");
    append(&store, s, ExpectedVersion::Exact(2), 1, "b").await;
    // Marked but not moved: old events still hot, the new one redirected.
    let rows = tiers(&pool, s).await;
    assert_eq!(tier_of(&rows, 3), vec!["archive"], "{rows:?}");
    assert_eq!(tier_of(&rows, 1), vec!["hot"], "{rows:?}");
    life.reactivate(s).await.unwrap();
    append(&store, s, ExpectedVersion::Exact(3), 1, "c").await;
    let rows = tiers(&pool, s).await;
    assert_eq!(tier_of(&rows, 4), vec!["hot"], "{rows:?}");
    // The switch is the operator's: still on after all of that.
    assert!(ArchiveSettings::load(&pool).await.unwrap().redirect);
    // The partitioned backend refuses redirect and does not switch while it is on.
    assert!(ArchiveSettings::set_backend(&pool, Backend::Partitioned)
        .await
        .is_err());
    assert_eq!(
        ArchiveSettings::load(&pool).await.unwrap().backend,
        Backend::DualTable
    );
}

#[tokio::test]
async fn hot_reads_leave_out_archived_streams_and_projections_see_everything() {
    for backend in BACKENDS {
        let (_db, store) = setup(backend).await;
        let pool = store.pool().clone();
        let (kept, archived, moved) = (
            Uuid::from_u128(0xC1),
            Uuid::from_u128(0xC2),
            Uuid::from_u128(0xC3),
        );
        for s in [kept, archived, moved] {
            append(&store, s, ExpectedVersion::NoStream, 2, "a").await;
        }
        let life = StreamLifecycle::new(pool.clone());
        life.mark(moved, "closed", "test").await.unwrap();
        move_all(&pool, 10).await;
        // Marked after the move: its events are still in hot storage.
        life.mark(archived, "closed", "test").await.unwrap();

        let streams_read = |events: &[rillflow_adapters::RecordedEvent]| {
            let mut seen: BTreeMap<Uuid, usize> = BTreeMap::new();
            for e in events {
                *seen.entry(e.stream_id).or_default() += 1;
            }
            seen
        };
        // Each read takes its own horizon, and a transaction of another
        // test that the horizon cannot place yet holds it back for that one
        // statement: every read waits until it sees what it should, or ends
        // with fewer events, which the assertions then show.
        let hot = read_until(2, || store.read_all(GlobalCursor::START, 100)).await;
        assert_eq!(
            streams_read(&hot.events),
            BTreeMap::from([(kept, 2)]),
            "{backend}"
        );
        assert!(store.read_stream(archived, 1, 10).await.unwrap().is_empty());
        let archived_too = store.with_archived();
        let all = read_until(6, || archived_too.read_all(GlobalCursor::START, 100)).await;
        assert_eq!(
            streams_read(&all.events),
            BTreeMap::from([(kept, 2), (archived, 2), (moved, 2)]),
            "{backend}"
        );
        let positions: Vec<i64> = all.events.iter().map(|e| e.position).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "global order");
        let mut projected = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while projected.len() < 6 && tokio::time::Instant::now() < deadline {
            let mut conn = pool.acquire().await.unwrap();
            projected =
                EventStore::read_all_in(&mut conn, GlobalCursor::START, 100, PartitionSpec::WHOLE)
                    .await
                    .unwrap();
            if projected.len() < 6 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        assert_eq!(projected.len(), 6, "{backend}: projections read every tier");
    }
}

/// `read` again until it returns at least `want` events or 20 s have
/// passed; the last batch either way.
async fn read_until<F, Fut>(want: usize, read: F) -> ReadAllBatch
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<ReadAllBatch, StoreError>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let batch = read().await.unwrap();
        if batch.events.len() >= want || tokio::time::Instant::now() >= deadline {
            return batch;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Appenders hammer archived streams while movers run and a reader follows
/// the global log: afterwards every acknowledged event exists exactly once
/// with continuous versions, the reader saw each exactly once, and nobody
/// met a deadlock or a timeout.
#[tokio::test]
async fn the_mover_races_appenders_and_readers_without_loss() {
    for backend in BACKENDS {
        let mut db = TestDb::migrated().await;
        let pool = db.pool_of(20).await;
        ArchiveSettings::set_backend(&pool, backend).await.unwrap();
        let store = EventStore::new(pool.clone());
        let streams: Vec<Uuid> = (0..12).map(|i| Uuid::from_u128(0xE000 + i)).collect();
        let life = StreamLifecycle::new(pool.clone());
        for s in &streams {
            append(&store, *s, ExpectedVersion::NoStream, 5, "seed").await;
            life.mark(*s, "race", "test").await.unwrap();
        }
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut appenders = Vec::new();
        for w in 0..4u32 {
            let store = store.clone();
            let streams = streams.clone();
            appenders.push(tokio::spawn(async move {
                let mut acked = 0u64;
                for i in 1..=APPENDS_PER_WRITER {
                    let s = streams[(i * 7 + w as usize) % streams.len()];
                    let n = 1 + i % 3;
                    let r = store
                        .append(
                            s,
                            ExpectedVersion::Any,
                            &batch(n, "race"),
                            &Default::default(),
                        )
                        .await
                        .unwrap_or_else(|e| panic!("append failed under the mover: {e}"));
                    acked += (r.last_version - r.first_version + 1) as u64;
                }
                acked
            }));
        }
        let reader = {
            let pool = pool.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                let mut seen: BTreeMap<(Uuid, i64), u32> = BTreeMap::new();
                let mut cursor = GlobalCursor::START;
                let mut idle_after_stop = 0;
                loop {
                    let mut conn = pool.acquire().await.unwrap();
                    let events =
                        EventStore::read_all_in(&mut conn, cursor, 200, PartitionSpec::WHOLE)
                            .await
                            .unwrap();
                    drop(conn);
                    if let Some(last) = events.last() {
                        cursor = last.cursor();
                    }
                    for e in &events {
                        *seen.entry((e.stream_id, e.version)).or_default() += 1;
                    }
                    if events.is_empty() {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            idle_after_stop += 1;
                            if idle_after_stop > 20 {
                                return seen;
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        };
        // Two movers at once, pass after pass with small batches, until the
        // appenders are done.
        let mut moved = 0;
        let mut passes = 0;
        while passes < 3 || !appenders.iter().all(|a| a.is_finished()) {
            let (a, b) = tokio::join!(move_all(&pool, 7), move_all(&pool, 5));
            moved += a + b;
            passes += 1;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut acked = 12 * 5;
        for a in appenders {
            acked += a.await.unwrap();
        }
        moved += move_all(&pool, 50).await;
        assert!(moved > 0, "{backend}: the movers moved something");

        let (total, distinct): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT (stream_id, version)) FROM (
                 SELECT stream_id, version FROM events
                 UNION ALL SELECT stream_id, version FROM events_archive) t",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            total as u64, acked,
            "{backend}: every acknowledged event, once"
        );
        assert_eq!(total, distinct, "{backend}: no duplicate");
        let hot_left: i64 = sqlx::query_scalar("SELECT count(*) FROM events_hot")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(hot_left, 0, "{backend}: the final pass moved everything");
        for s in &streams {
            let head = store.stream_version(*s).await.unwrap();
            let read: Vec<i64> = store
                .with_archived()
                .read_stream(*s, 1, 100_000)
                .await
                .unwrap()
                .iter()
                .map(|e| e.version)
                .collect();
            assert_eq!(read, (1..=head as i64).collect::<Vec<_>>(), "{backend}");
        }
        let seen = reader.await.unwrap();
        assert_eq!(
            seen.len() as u64,
            acked,
            "{backend}: the reader missed events"
        );
        assert!(
            seen.values().all(|n| *n == 1),
            "{backend}: the reader saw an event twice"
        );
        let stats = ArchiveStats::load(&pool).await.unwrap();
        assert_eq!(stats.events_moved, moved, "{backend}: counted as moved");
        assert_eq!(
            stats.move_seconds_buckets.iter().sum::<u64>(),
            stats.move_batches
        );
    }
}

#[tokio::test]
async fn concurrent_exact_appends_and_keys_on_a_cold_partitioned_stream() {
    let (_db, store) = setup(Backend::Partitioned).await;
    let pool = store.pool().clone();
    let s = Uuid::from_u128(0xF1);
    archived_stream(&store, s, 3).await;
    move_all(&pool, 100).await;
    // Eight writers race for each next version; four retry one key.
    for round in 0..5u64 {
        let expected = 3 + round;
        let tasks: Vec<_> = (0..8)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    let opts = if w < 4 {
                        keyed(&format!("round-{round}"))
                    } else {
                        AppendOptions::default()
                    };
                    store
                        .append(s, ExpectedVersion::Exact(expected), &batch(1, "x"), &opts)
                        .await
                })
            })
            .collect();
        let mut written = 0;
        let mut keyed_results = Vec::new();
        for (w, t) in tasks.into_iter().enumerate() {
            match t.await.unwrap() {
                Ok(r) if r.replayed => keyed_results.push(r.positions),
                Ok(r) => {
                    written += 1;
                    if w < 4 {
                        keyed_results.push(r.positions);
                    }
                }
                Err(StoreError::WrongExpectedVersion { .. }) => {}
                Err(e) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(written, 1, "one winner for version {}", expected + 1);
        assert!(
            keyed_results.windows(2).all(|w| w[0] == w[1]),
            "a key replays one result: {keyed_results:?}"
        );
    }
    let rows = tiers(&pool, s).await;
    assert_eq!(
        rows,
        (1..=8).map(|v| ("cold".to_owned(), v)).collect::<Vec<_>>(),
        "continuous, once each, and all in the cold partition"
    );
}

#[tokio::test]
async fn a_dry_run_lists_and_changes_nothing() {
    let (_db, store) = setup(Backend::DualTable).await;
    let pool = store.pool().clone();
    let (a, b) = (Uuid::from_u128(0xD1), Uuid::from_u128(0xD2));
    for s in [a, b] {
        append(&store, s, ExpectedVersion::NoStream, 4, "a").await;
    }
    StreamLifecycle::new(pool.clone())
        .mark(a, "closed", "test")
        .await
        .unwrap();
    let mover = ArchiveMover::new(pool.clone());
    let candidates = mover.candidates(all_before(None)).await.unwrap();
    assert_eq!(candidates.len(), 1);
    assert_eq!((candidates[0].stream, candidates[0].events), (a, 4));
    let past: DateTime<Utc> = "2000-01-01T00:00:00Z".parse().unwrap();
    let none = mover
        .candidates(MoveFilter {
            tenant: None,
            before: past,
            stream: None,
        })
        .await
        .unwrap();
    assert!(none.is_empty(), "nothing older than the cutoff");
    assert_eq!(tiers(&pool, a).await.len(), 4);
    let stats = ArchiveStats::load(&pool).await.unwrap();
    assert_eq!((stats.events_moved, stats.move_batches), (0, 0));
}

#[tokio::test]
async fn the_rate_limit_paces_the_mover() {
    let (_db, store) = setup(Backend::Partitioned).await;
    let pool = store.pool().clone();
    let s = Uuid::from_u128(0x99);
    archived_stream(&store, s, 300).await;
    let started = std::time::Instant::now();
    let done = ArchiveMover::new(pool.clone())
        .run(
            all_before(Some(s)),
            MoveLimits {
                batch_size: 500,
                max_events_per_sec: Some(100.0),
            },
            |_| {},
        )
        .await
        .unwrap();
    assert_eq!(done.moved, 300);
    // The batch is capped at one second's worth, and after the first second's
    // burst the other 200 events need two more seconds: a lower bound, which
    // a slow machine cannot break.
    assert!(done.batches >= 3, "{done:?}");
    assert!(done.throttled >= Duration::from_millis(1500), "{done:?}");
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

/// On the partitioned backend a stream whose events all moved cold keeps
/// growing cold, whichever way it is appended to: also by the common
/// single-event append to any version (sql/0014's short path, which leaves
/// cold streams to the full one).
#[tokio::test]
async fn a_plain_single_append_to_a_cold_partitioned_stream_stays_cold() {
    let (_db, store) = setup(Backend::Partitioned).await;
    let pool = store.pool().clone();
    let s = Uuid::from_u128(0xF2);
    archived_stream(&store, s, 3).await;
    move_all(&pool, 100).await;
    let r = store
        .append(
            s,
            ExpectedVersion::Any,
            &batch(1, "late"),
            &AppendOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!((r.first_version, r.last_version), (4, 4));
    let class: String = sqlx::query_scalar(
        "SELECT retention_class FROM events WHERE stream_id = $1 AND version = 4",
    )
    .bind(s)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(class, "cold");
    // Several events take the same guarded path.
    let r = store
        .append(
            s,
            ExpectedVersion::Any,
            &batch(3, "later"),
            &AppendOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!((r.first_version, r.last_version), (5, 7));
    let hot: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE stream_id = $1 AND retention_class = 'hot'",
    )
    .bind(s)
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(hot, 0);
}
