//! PROJ-2 (gap safety) and PROJ-3 (stream order) of `read_all`.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rillflow_adapters::{EventStore, NewEvent, RecordedEvent, StoreError};
use rillflow_core::{ExpectedVersion, GlobalCursor, PartitionSpec};
use rillflow_testkit::TestDb;
use serde_json::json;
use sqlx::Acquire;
use uuid::Uuid;

/// The trap itself: a transaction takes a position, a later one commits a
/// higher position first. A reader must not move past the open one.
#[tokio::test]
async fn a_late_commit_with_a_lower_position_is_not_skipped() {
    let mut db = TestDb::migrated().await;
    let store = EventStore::new(db.pool_of(4).await);
    let (slow, fast) = (Uuid::from_u128(1), Uuid::from_u128(2));

    let mut conn = store.pool().acquire().await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    let low = EventStore::append_in(
        &mut tx,
        slow,
        ExpectedVersion::Any,
        &[NewEvent::new("Slow", json!({}))],
        &Default::default(),
    )
    .await
    .unwrap();
    let high = store
        .append(
            fast,
            ExpectedVersion::Any,
            &[NewEvent::new("Fast", json!({}))],
            &Default::default(),
        )
        .await
        .unwrap();
    assert!(low.positions[0] < high.positions[0]);

    // More than once: a first read may stop in front of any transaction it
    // cannot place yet; the append's registration must hold every read.
    for _ in 0..3 {
        let batch = store.read_all(GlobalCursor::START, 100).await.unwrap();
        assert!(
            batch.events.is_empty(),
            "nothing may be read past the open transaction: {:?}",
            batch.events
        );
        assert_eq!(batch.next, GlobalCursor::START);
    }

    tx.commit().await.unwrap();
    // Autovacuum working in this database can hold the horizon back for a
    // moment, so poll until both arrive.
    let types = read_until(&store, 2).await;
    assert_eq!(types, vec!["Slow", "Fast"]);
}

/// A transaction in another database of the server can never write this
/// database's events: however long it stays open, readers here go on. (The
/// horizon used to be the snapshot's xmin, which it held back.)
#[tokio::test]
async fn a_transaction_in_another_database_does_not_hold_readers_back() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    let mut elsewhere = TestDb::empty().await;
    let elsewhere = elsewhere.pool().await;
    let mut blocker = elsewhere.begin().await.unwrap();
    sqlx::raw_sql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
        .execute(&mut *blocker)
        .await
        .unwrap();

    store
        .append(
            Uuid::from_u128(7),
            ExpectedVersion::Any,
            &[NewEvent::new("Here", json!({}))],
            &Default::default(),
        )
        .await
        .unwrap();
    // Held open throughout: only this database's own transactions (an
    // autovacuum run, for a moment) may delay the read.
    let types = read_until(&store, 1).await;
    assert_eq!(types, vec!["Here"]);
    blocker.rollback().await.unwrap();
}

/// The same seen by a role that may not look at other sessions' transaction
/// ids in pg_stat_activity (any role without pg_read_all_stats): the horizon
/// tells transactions apart by the lock table, which every role may read,
/// and passes one that shows a lock in another database at once.
#[tokio::test]
async fn a_transaction_in_another_database_does_not_hold_an_unprivileged_reader_back() {
    let mut db = TestDb::migrated().await;
    let admin = db.pool().await;
    let role = format!("r_{:x}", rand::random::<u32>());
    let password = format!("{:x}", rand::random::<u64>());
    // A role name and a password cannot be bound in DDL; both are made here.
    for sql in [
        format!("CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'"),
        format!("GRANT USAGE ON SCHEMA public TO \"{role}\""),
        format!("GRANT SELECT ON events, events_archive, rf_streams TO \"{role}\""),
    ] {
        sqlx::query(&sql).execute(&admin).await.unwrap();
    }
    let options = sqlx::postgres::PgConnectOptions::from_str(&db.url)
        .unwrap()
        .username(&role)
        .password(&password);
    let reader = EventStore::new(
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .unwrap(),
    );
    let mut elsewhere = TestDb::empty().await;
    let elsewhere = elsewhere.pool().await;
    let mut blocker = elsewhere.begin().await.unwrap();
    sqlx::raw_sql("CREATE TABLE t (x int); INSERT INTO t VALUES (1)")
        .execute(&mut *blocker)
        .await
        .unwrap();
    append_one(&EventStore::new(admin.clone()), 9, "Here").await;

    // At the first read: its locks on that database's table show where it
    // runs, so no floor has to cover it.
    let first = reader.read_all(GlobalCursor::START, 100).await.unwrap();
    let types: Vec<String> = first.events.into_iter().map(|e| e.event_type).collect();
    assert_eq!(types, vec!["Here"]);
    blocker.rollback().await.unwrap();
    reader.pool().close().await;
    for sql in [
        format!("DROP OWNED BY \"{role}\" CASCADE"),
        format!("DROP ROLE \"{role}\""),
    ] {
        sqlx::query(&sql).execute(&admin).await.unwrap();
    }
}

/// A transaction of this database that writes but never appends (a job
/// updating other tables, an autovacuum analyze, another projection's
/// batch) does not hold readers back either: the first read may stop in
/// front of it, and raises the read floor past it, the next one passes it.
#[tokio::test]
async fn a_transaction_that_never_appends_does_not_hold_readers_back() {
    let mut db = TestDb::migrated().await;
    let store = EventStore::new(db.pool_of(4).await);
    let blocker = open_job(&store).await;
    append_one(&store, 10, "Here").await;

    assert_eq!(read_in_two(&store).await, vec!["Here"]);
    blocker.rollback().await.unwrap();
}

/// PROJ-2 for a transaction that writes other tables first and appends
/// later: readers passed it while it had not registered, so its append is
/// refused, and nothing commits behind a reader's cursor. (Without the
/// refusal the late event commits below the cursor and is never read.)
#[tokio::test]
async fn a_transaction_that_appends_after_readers_passed_it_is_refused() {
    let mut db = TestDb::migrated().await;
    let store = EventStore::new(db.pool_of(4).await);
    let mut late = open_job(&store).await;
    append_one(&store, 11, "Early").await;
    let mut cursor = GlobalCursor::START;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let batch = store.read_all(cursor, 100).await.unwrap();
        cursor = batch.next;
        seen.extend(batch.events.into_iter().map(|e| e.event_type));
    }
    assert_eq!(seen, vec!["Early"]);

    let appended = EventStore::append_in(
        &mut late,
        Uuid::from_u128(12),
        ExpectedVersion::Any,
        &[NewEvent::new("Late", json!({}))],
        &Default::default(),
    )
    .await;
    match appended {
        Err(e) => {
            assert!(matches!(e, StoreError::PassedByReaders { .. }), "{e:?}");
            assert!(e.is_retryable());
            late.rollback().await.unwrap();
        }
        Ok(_) => late.commit().await.unwrap(),
    }
    // Whatever committed must still lie ahead of the reader.
    let behind: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE (tx_id, position) <= ($1, $2) AND event_type = 'Late'",
    )
    .bind(cursor.tx_id)
    .bind(cursor.position)
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(behind, 0, "an event committed behind the reader's cursor");
    let late_rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'Late'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(late_rows, 0, "the refused append wrote");
}

/// A transaction that registers before its first write holds readers back
/// like an append does, and may append whenever it likes.
#[tokio::test]
async fn a_registered_transaction_holds_readers_back_and_appends_later() {
    let mut db = TestDb::migrated().await;
    let store = EventStore::new(db.pool_of(4).await);
    let mut tx = store.pool().begin().await.unwrap();
    assert!(EventStore::register_appender(&mut tx).await.unwrap());
    sqlx::raw_sql("CREATE TABLE jobs (x int); INSERT INTO jobs VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    append_one(&store, 13, "After").await;
    for _ in 0..3 {
        let batch = store.read_all(GlobalCursor::START, 100).await.unwrap();
        assert!(
            batch.events.is_empty(),
            "read past a registered transaction: {:?}",
            batch.events
        );
    }
    EventStore::append_in(
        &mut tx,
        Uuid::from_u128(14),
        ExpectedVersion::Any,
        &[NewEvent::new("Registered", json!({}))],
        &Default::default(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(read_until(&store, 2).await, vec!["Registered", "After"]);
}

/// Appends one event of `event_type` to stream `n`.
async fn append_one(store: &EventStore, n: u128, event_type: &str) {
    store
        .append(
            Uuid::from_u128(n),
            ExpectedVersion::Any,
            &[NewEvent::new(event_type, json!({}))],
            &Default::default(),
        )
        .await
        .unwrap();
}

/// A transaction of this database that writes a table of its own (so it
/// has an id) and has not appended.
async fn open_job(store: &EventStore) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut tx = store.pool().begin().await.unwrap();
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS jobs (x int); INSERT INTO jobs VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    tx
}

/// Reads from the start twice, back to back, and returns what arrived.
async fn read_in_two(store: &EventStore) -> Vec<String> {
    let mut cursor = GlobalCursor::START;
    let mut types = Vec::new();
    for _ in 0..2 {
        let batch = store.read_all(cursor, 100).await.unwrap();
        cursor = batch.next;
        types.extend(batch.events.into_iter().map(|e| e.event_type));
    }
    types
}

/// A reader whose own transaction has an id stops in front of it: a batch
/// whose handler appends must not move its checkpoint past the events it
/// writes itself, or its projection would never see them.
#[tokio::test]
async fn a_reader_stops_in_front_of_its_own_transaction() {
    let mut db = TestDb::migrated().await;
    let store = EventStore::new(db.pool_of(4).await);
    let mut conn = store.pool().acquire().await.unwrap();
    let mut own = conn.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *own)
        .await
        .unwrap();
    store
        .append(
            Uuid::from_u128(8),
            ExpectedVersion::Any,
            &[NewEvent::new("Later", json!({}))],
            &Default::default(),
        )
        .await
        .unwrap();

    let inside = EventStore::read_all_in(&mut own, GlobalCursor::START, 10, PartitionSpec::WHOLE)
        .await
        .unwrap();
    assert!(
        inside.is_empty(),
        "read past its own transaction: {inside:?}"
    );
    own.rollback().await.unwrap();
    assert_eq!(read_until(&store, 1).await, vec!["Later"]);
}

/// Reads from the start until `n` events arrived, or fails after a deadline.
async fn read_until(store: &EventStore, n: usize) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut cursor = GlobalCursor::START;
    let mut types = Vec::new();
    while types.len() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {types:?} arrived"
        );
        let batch = store.read_all(cursor, 100).await.unwrap();
        cursor = batch.next;
        types.extend(batch.events.into_iter().map(|e| e.event_type));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    types
}

/// PROJ-3: a transaction whose id predates the stream's last writer may not
/// append to that stream, or stream order and read order would disagree.
#[tokio::test]
async fn an_older_transaction_cannot_append_behind_a_newer_one() {
    let mut db = TestDb::migrated().await;
    let store = EventStore::new(db.pool_of(4).await);
    let stream = Uuid::from_u128(3);

    let mut conn = store.pool().acquire().await.unwrap();
    let mut old = conn.begin().await.unwrap();
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *old)
        .await
        .unwrap();
    store
        .append(
            stream,
            ExpectedVersion::Any,
            &[NewEvent::new("New", json!({}))],
            &Default::default(),
        )
        .await
        .unwrap();

    let err = EventStore::append_in(
        &mut old,
        stream,
        ExpectedVersion::Any,
        &[NewEvent::new("Old", json!({}))],
        &Default::default(),
    )
    .await;
    assert!(
        matches!(err, Err(StoreError::StaleTransaction { .. })),
        "{err:?}"
    );
    assert!(err.unwrap_err().is_retryable());
    old.rollback().await.unwrap();
    assert_eq!(store.stream_version(stream).await.unwrap(), 1);
}

/// Many writers, some holding their transaction open after taking positions,
/// some rolling back; one reader looping `read_all`. The reader sees every
/// committed event exactly once, in the final global order, with each
/// stream's versions ascending, and never an aborted one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_never_open_a_gap() {
    const WRITERS: u64 = 12;
    const APPENDS_PER_WRITER: usize = 40;
    const STREAMS: u128 = 10;

    let mut db = TestDb::migrated().await;
    let store = EventStore::new(db.pool_of(WRITERS as u32 + 4).await);
    // How many events were committed, plus one; zero while writers run. An
    // empty batch does not mean the reader caught up: any open transaction
    // of this database (autovacuum's) holds the horizon back. The reader stops once it has seen as many events as
    // were committed, or gives up after a minute and lets the checks fail.
    let expected = Arc::new(AtomicUsize::new(0));

    let reader = {
        let store = store.clone();
        let expected = expected.clone();
        tokio::spawn(async move {
            let mut seen: Vec<RecordedEvent> = Vec::new();
            let mut cursor = GlobalCursor::START;
            let mut deadline: Option<Instant> = None;
            loop {
                let target = expected.load(Ordering::SeqCst).checked_sub(1);
                if target.is_some() && deadline.is_none() {
                    deadline = Some(Instant::now() + Duration::from_secs(60));
                }
                let batch = store.read_all(cursor, 7).await.unwrap();
                for e in &batch.events {
                    assert!(e.cursor() > cursor, "cursor moved backwards at {e:?}");
                    cursor = e.cursor();
                }
                assert_eq!(batch.next, cursor);
                let empty = batch.events.is_empty();
                seen.extend(batch.events);
                let caught_up = target.is_some_and(|n| seen.len() >= n);
                if empty && (caught_up || deadline.is_some_and(|d| Instant::now() > d)) {
                    return seen;
                }
                if empty {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        })
    };

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED + w);
            let mut committed: Vec<Uuid> = Vec::new();
            for i in 0..APPENDS_PER_WRITER {
                let stream = Uuid::from_u128(1 + rng.random_range(0..STREAMS));
                let n = rng.random_range(1..4);
                let events: Vec<NewEvent> = (0..n)
                    .map(|k| NewEvent::new("Tick", json!({ "w": w, "i": i, "k": k })).with_id(Uuid::from_u128(((w as u128) << 64) | ((i as u128) << 8) | k)))
                    .collect();
                let ids: Vec<Uuid> = events.iter().filter_map(|e| e.event_id).collect();
                match rng.random_range(0..10) {
                    // Hold the transaction open after taking positions.
                    0..=3 => {
                        let hold = Duration::from_millis(rng.random_range(1..30));
                        let rollback = rng.random_range(0..5) == 0;
                        // Some transactions do other work first, so their id
                        // is taken before they reach the stream's head row.
                        let other_work_first = rng.random_range(0..2) == 0;
                        loop {
                            let mut conn = store.pool().acquire().await.unwrap();
                            let mut tx = conn.begin().await.unwrap();
                            if other_work_first {
                                sqlx::query("INSERT INTO rf_checkpoints (projection, partition_key) VALUES ($1, $2)
                                             ON CONFLICT (projection, model_version, partition_key) DO UPDATE SET updated_at = now()")
                                    .bind(format!("writer-{w}"))
                                    .bind(i as i32)
                                    .execute(&mut *tx)
                                    .await
                                    .unwrap();
                                tokio::time::sleep(Duration::from_millis(rng.random_range(0..5))).await;
                            }
                            match EventStore::append_in(&mut tx, stream, ExpectedVersion::Any, &events, &Default::default()).await {
                                Ok(_) => {
                                    tokio::time::sleep(hold).await;
                                    if rollback {
                                        tx.rollback().await.unwrap();
                                    } else {
                                        tx.commit().await.unwrap();
                                        committed.extend(&ids);
                                    }
                                    break;
                                }
                                Err(e) if e.is_retryable() => {
                                    tx.rollback().await.unwrap();
                                }
                                Err(e) => panic!("append failed: {e}"),
                            }
                        }
                    }
                    _ => {
                        store.append(stream, ExpectedVersion::Any, &events, &Default::default()).await.unwrap();
                        committed.extend(&ids);
                    }
                }
            }
            committed
        }));
    }
    let mut committed: BTreeSet<Uuid> = BTreeSet::new();
    for w in writers {
        committed.extend(w.await.unwrap());
    }
    expected.store(committed.len() + 1, Ordering::SeqCst);
    let seen = reader.await.unwrap();

    let seen_ids: Vec<Uuid> = seen.iter().map(|e| e.event_id).collect();
    let unique: BTreeSet<Uuid> = seen_ids.iter().copied().collect();
    assert_eq!(unique.len(), seen_ids.len(), "an event was delivered twice");
    assert_eq!(
        unique, committed,
        "reader missed committed events or saw aborted ones"
    );

    // The reader's order is the final order of the whole log: it never
    // passed an event that later appeared behind it.
    let final_order: Vec<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM events ORDER BY tx_id, position")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(seen_ids, final_order);

    let mut last: BTreeMap<Uuid, i64> = BTreeMap::new();
    for e in &seen {
        let prev = last.insert(e.stream_id, e.version).unwrap_or(0);
        assert_eq!(
            e.version,
            prev + 1,
            "stream {} out of order at {e:?}",
            e.stream_id
        );
    }
}
