//! Appends: expected versions, idempotency, metadata, and versions that hold
//! whichever storage tier a stream's events live in (ARCH-2).

use rillflow_adapters::{AppendOptions, EventStore, NewEvent, StoreError};
use rillflow_core::{ExpectedVersion, VersionConflict};
use rillflow_testkit::TestDb;
use serde_json::json;
use uuid::Uuid;

fn one(kind: &str) -> Vec<NewEvent> {
    vec![NewEvent::new(kind, json!({ "kind": kind }))]
}

fn keyed(key: &str) -> AppendOptions {
    AppendOptions {
        idempotency_key: Some(key.to_owned()),
        ..AppendOptions::default()
    }
}

async fn event_count(store: &EventStore) -> i64 {
    let n: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM events_archive)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    n
}

#[tokio::test]
async fn expected_versions_follow_the_table() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    // (stream length before, expectation, holds)
    let cases = [
        (0, ExpectedVersion::Any, true),
        (0, ExpectedVersion::NoStream, true),
        (0, ExpectedVersion::Exists, false),
        (0, ExpectedVersion::Exact(0), true),
        (0, ExpectedVersion::Exact(1), false),
        (2, ExpectedVersion::Any, true),
        (2, ExpectedVersion::NoStream, false),
        (2, ExpectedVersion::Exists, true),
        (2, ExpectedVersion::Exact(2), true),
        (2, ExpectedVersion::Exact(1), false),
        (2, ExpectedVersion::Exact(3), false),
    ];
    for (i, (len, expected, holds)) in cases.into_iter().enumerate() {
        let stream = Uuid::from_u128(1000 + i as u128);
        if len > 0 {
            let seed: Vec<NewEvent> = (0..len).map(|_| NewEvent::new("Seed", json!({}))).collect();
            store
                .append(
                    stream,
                    ExpectedVersion::NoStream,
                    &seed,
                    &Default::default(),
                )
                .await
                .unwrap();
        }
        let before = event_count(&store).await;
        let result = store
            .append(stream, expected, &one("Try"), &Default::default())
            .await;
        if holds {
            let r = result.unwrap_or_else(|e| panic!("case {i}: {expected} at {len}: {e}"));
            assert_eq!(
                (r.first_version, r.last_version),
                (len + 1, len + 1),
                "case {i}"
            );
        } else {
            match result {
                Err(StoreError::WrongExpectedVersion {
                    stream: s,
                    conflict,
                }) => {
                    assert_eq!(s, stream);
                    assert_eq!(
                        conflict,
                        VersionConflict {
                            expected,
                            actual: len
                        },
                        "case {i}"
                    );
                }
                other => panic!("case {i}: expected a version conflict, got {other:?}"),
            }
            assert_eq!(
                event_count(&store).await,
                before,
                "case {i}: a conflict writes nothing"
            );
            assert_eq!(store.stream_version(stream).await.unwrap(), len, "case {i}");
        }
    }
}

#[tokio::test]
async fn a_batch_gets_contiguous_versions_and_keeps_metadata() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    let stream = Uuid::from_u128(42);
    let cause = Uuid::from_u128(1);
    let corr = Uuid::from_u128(2);
    let id = Uuid::from_u128(3);
    let batch = vec![
        NewEvent::new("A", json!({ "n": 1 }))
            .with_id(id)
            .with_schema_version(3)
            .with_headers(json!({ "user": "ada" }))
            .caused_by(cause)
            .correlated_with(corr),
        NewEvent::new("B", json!({ "n": 2 })),
        NewEvent::new("C", json!({ "n": 3 })),
    ];
    let r = store
        .append(
            stream,
            ExpectedVersion::NoStream,
            &batch,
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!((r.first_version, r.last_version, r.replayed), (1, 3, false));
    assert!(
        r.positions.windows(2).all(|w| w[0] < w[1]),
        "positions ascend in append order"
    );

    let events = store.read_stream(stream, 1, 10).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        events
            .iter()
            .map(|e| e.event_type.as_str())
            .collect::<Vec<_>>(),
        vec!["A", "B", "C"]
    );
    assert_eq!(
        events.iter().map(|e| e.position).collect::<Vec<_>>(),
        r.positions
    );
    let first = &events[0];
    assert_eq!(first.event_id, id);
    assert_eq!(first.schema_version, 3);
    assert_eq!(first.headers, json!({ "user": "ada" }));
    assert_eq!(
        (first.causation_id, first.correlation_id),
        (Some(cause), Some(corr))
    );
    assert_eq!(first.data, json!({ "n": 1 }));
    assert_eq!(first.partition_hash, rillflow_core::partition_hash(stream));
    assert!(
        events.iter().all(|e| e.tx_id == first.tx_id),
        "one append, one transaction"
    );

    let tail = store.read_stream(stream, 2, 10).await.unwrap();
    assert_eq!(
        tail.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(store
        .read_stream(Uuid::from_u128(43), 1, 10)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn empty_appends_are_rejected() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    let err = store
        .append(
            Uuid::from_u128(5),
            ExpectedVersion::Any,
            &[],
            &Default::default(),
        )
        .await;
    assert!(matches!(err, Err(StoreError::InvalidRequest(_))), "{err:?}");
    assert_eq!(store.stream_version(Uuid::from_u128(5)).await.unwrap(), 0);
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_result_and_write_nothing() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    let stream = Uuid::from_u128(77);
    let first = store
        .append(
            stream,
            ExpectedVersion::NoStream,
            &one("Placed"),
            &keyed("order-1"),
        )
        .await
        .unwrap();
    let before = event_count(&store).await;

    // Same key: the replay wins over an expectation that no longer holds.
    let again = store
        .append(
            stream,
            ExpectedVersion::NoStream,
            &one("Placed"),
            &keyed("order-1"),
        )
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.first_version, again.last_version, &again.positions),
        (first.first_version, first.last_version, &first.positions)
    );
    assert_eq!(event_count(&store).await, before);

    // A new key appends.
    let next = store
        .append(
            stream,
            ExpectedVersion::Exact(1),
            &one("Paid"),
            &keyed("order-2"),
        )
        .await
        .unwrap();
    assert_eq!((next.last_version, next.replayed), (2, false));
}

/// A key stands for one request, and an id the caller chose for one event:
/// reused for anything else (other data or type, another stream) they are
/// refused, naming the key or id, and nothing is written; the exact retry
/// still gets the first result.
#[tokio::test]
async fn a_reused_key_or_event_id_never_passes_for_a_retry() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    let stream = Uuid::from_u128(90);
    let id = Uuid::from_u128(91);
    let placed = |amount: &str| {
        vec![NewEvent::new(
            "Placed",
            serde_json::from_str(&format!(r#"{{"amount": {amount}}}"#)).unwrap(),
        )
        .with_id(id)]
    };
    store
        .append(stream, ExpectedVersion::Any, &placed("10"), &keyed("pay-1"))
        .await
        .unwrap();
    let before = event_count(&store).await;

    let refused = |r: Result<_, StoreError>, what: &str| match r {
        Err(StoreError::IdempotencyConflict(msg)) => {
            assert!(msg.contains("pay-1"), "{what}: {msg}")
        }
        other => panic!("{what}: {other:?}"),
    };
    refused(
        store
            .append(stream, ExpectedVersion::Any, &placed("11"), &keyed("pay-1"))
            .await,
        "other data",
    );
    let mut renamed = placed("10");
    renamed[0].event_type = "Paid".into();
    refused(
        store
            .append(stream, ExpectedVersion::Any, &renamed, &keyed("pay-1"))
            .await,
        "another type",
    );
    refused(
        store
            .append(
                Uuid::from_u128(92),
                ExpectedVersion::Any,
                &placed("10"),
                &keyed("pay-1"),
            )
            .await,
        "another stream",
    );
    // The id stands for its event: the same event again is a retry even
    // without the key; the id with other data, or on another stream, is not.
    let by_id = store
        .append(
            stream,
            ExpectedVersion::Any,
            &placed("10"),
            &Default::default(),
        )
        .await
        .unwrap();
    assert!(by_id.replayed && by_id.first_version == 1, "{by_id:?}");
    for (target, amount) in [(stream, "12"), (Uuid::from_u128(93), "10")] {
        match store
            .append(
                target,
                ExpectedVersion::Any,
                &placed(amount),
                &Default::default(),
            )
            .await
        {
            Err(StoreError::EventIdReused { stream: s, id: i }) => {
                assert_eq!((s, i), (target, id))
            }
            other => panic!("reused id on {target}: {other:?}"),
        }
    }
    assert_eq!(event_count(&store).await, before, "nothing was written");

    // The exact retry is still answered with the first result.
    let again = store
        .append(stream, ExpectedVersion::Any, &placed("10"), &keyed("pay-1"))
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(event_count(&store).await, before);
}

/// Keys recorded before migration 0011 carry no digest of their request:
/// they keep their old meaning (the first result, whatever is sent).
#[tokio::test]
async fn keys_recorded_before_digests_still_replay() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    let stream = Uuid::from_u128(95);
    store
        .append(stream, ExpectedVersion::Any, &one("Old"), &keyed("legacy"))
        .await
        .unwrap();
    sqlx::query("UPDATE rf_idempotency SET request_digest = NULL")
        .execute(store.pool())
        .await
        .unwrap();
    let again = store
        .append(
            stream,
            ExpectedVersion::Any,
            &one("Other"),
            &keyed("legacy"),
        )
        .await
        .unwrap();
    assert!(again.replayed);
}

#[tokio::test]
async fn concurrent_exact_appends_have_exactly_one_winner_per_version() {
    let mut db = TestDb::migrated().await;
    let store = EventStore::new(db.pool_of(16).await);
    let stream = Uuid::from_u128(99);
    store
        .append(
            stream,
            ExpectedVersion::NoStream,
            &one("Start"),
            &Default::default(),
        )
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = 0;
            for _ in 0..25 {
                let v = store.stream_version(stream).await.unwrap();
                match store
                    .append(
                        stream,
                        ExpectedVersion::Exact(v),
                        &one(&format!("W{w}")),
                        &Default::default(),
                    )
                    .await
                {
                    Ok(r) => {
                        assert_eq!(r.first_version, v + 1);
                        wins += 1;
                    }
                    Err(StoreError::WrongExpectedVersion { .. }) => {}
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
            wins
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += t.await.unwrap();
    }
    let versions: Vec<i64> = store
        .read_stream(stream, 1, 1000)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(
        versions,
        (1..=wins + 1).collect::<Vec<i64>>(),
        "no version lost or repeated"
    );
}

#[tokio::test]
async fn versions_and_keys_hold_after_events_move_cold() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    let pool = store.pool().clone();
    let dual = Uuid::from_u128(0xD0);
    let parted = Uuid::from_u128(0xD1);
    let batch: Vec<NewEvent> = (0..3).map(|_| NewEvent::new("E", json!({}))).collect();
    let key = |s: Uuid| keyed(&format!("k-{s}"));
    for s in [dual, parted] {
        store
            .append(s, ExpectedVersion::NoStream, &batch, &key(s))
            .await
            .unwrap();
    }
    // Dual-table backend: rows move to events_archive in one statement.
    sqlx::query(
        "WITH moved AS (DELETE FROM events WHERE stream_id = $1 RETURNING *)
         INSERT INTO events_archive (position, tx_id, stream_id, version, event_id, event_type,
              schema_version, data, headers, causation_id, correlation_id, partition_hash, created_at)
         SELECT position, tx_id, stream_id, version, event_id, event_type, schema_version, data,
              headers, causation_id, correlation_id, partition_hash, created_at FROM moved",
    )
    .bind(dual)
    .execute(&pool)
    .await
    .unwrap();
    // Partitioned backend: rows move to the cold partition.
    sqlx::query("UPDATE events SET retention_class = 'cold' WHERE stream_id = $1")
        .bind(parted)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("UPDATE rf_streams SET archived_at = now(), retention_class = 'cold' WHERE stream_id = ANY($1)")
        .bind(vec![dual, parted])
        .execute(&pool)
        .await
        .unwrap();

    for s in [dual, parted] {
        let err = store
            .append(s, ExpectedVersion::NoStream, &one("E"), &Default::default())
            .await;
        assert!(
            matches!(
                err,
                Err(StoreError::WrongExpectedVersion {
                    conflict: VersionConflict { actual: 3, .. },
                    ..
                })
            ),
            "{err:?}"
        );
        let replay = store
            .append(s, ExpectedVersion::Any, &batch, &key(s))
            .await
            .unwrap();
        assert!(replay.replayed && replay.last_version == 3);
        let r = store
            .append(s, ExpectedVersion::Exact(3), &one("E"), &Default::default())
            .await
            .unwrap();
        assert_eq!(
            r.first_version, 4,
            "the sequence continues after moving cold"
        );
    }

    // With redirect on, an append to an archived stream lands cold and still
    // takes the next version.
    sqlx::query("ALTER TABLE events ENABLE TRIGGER rf_events_redirect_archived")
        .execute(&pool)
        .await
        .unwrap();
    let r = store
        .append(
            dual,
            ExpectedVersion::Exact(4),
            &one("E"),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.first_version, 5);
    let archived: Vec<i64> = sqlx::query_scalar(
        "SELECT version FROM events_archive WHERE stream_id = $1 ORDER BY version",
    )
    .bind(dual)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(archived, vec![1, 2, 3, 5]);
    // The global feed sees every event of the stream exactly once, hot or cold.
    // Other tests' open transactions may hold the horizon back: poll.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut cursor = rillflow_core::GlobalCursor::START;
    let mut fed = Vec::new();
    let store = store.with_archived();
    while fed.len() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "feed stalled at {fed:?}"
        );
        let batch = store.read_all(cursor, 3).await.unwrap();
        cursor = batch.next;
        fed.extend(
            batch
                .events
                .iter()
                .filter(|e| e.stream_id == dual)
                .map(|e| e.version),
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(fed, vec![1, 2, 3, 4, 5]);
}

/// Eight appends racing with one key (then one event id) on eight streams:
/// exactly one is written, the others are refused, none is mistaken for a
/// retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_reuses_of_a_key_or_an_id_write_once() {
    let mut db = TestDb::migrated().await;
    let store = EventStore::new(db.pool_of(10).await);
    for by_id in [false, true] {
        let id = Uuid::from_u128(rand::random());
        let key = format!("race-{id}");
        let tasks: Vec<_> = (0..8u128)
            .map(|i| {
                let store = store.clone();
                let mut events = one("Raced");
                let mut options = AppendOptions::default();
                if by_id {
                    events[0].event_id = Some(id);
                } else {
                    options.idempotency_key = Some(key.clone());
                }
                let stream = Uuid::from_u128(rand::random::<u128>() ^ i);
                tokio::spawn(async move {
                    store
                        .append(stream, ExpectedVersion::Any, &events, &options)
                        .await
                })
            })
            .collect();
        let (mut written, mut refused) = (0, 0);
        for t in tasks {
            match t.await.unwrap() {
                Ok(r) => {
                    assert!(!r.replayed, "{r:?}");
                    written += 1;
                }
                Err(StoreError::IdempotencyConflict(_)) if !by_id => refused += 1,
                Err(StoreError::EventIdReused { .. }) if by_id => refused += 1,
                Err(e) => panic!("by id {by_id}: {e:?}"),
            }
        }
        assert_eq!((written, refused), (1, 7), "by id {by_id}");
    }
}

/// Appends notify nobody: PostgreSQL serialises the commits of transactions
/// that NOTIFY, so a notifying append could never share a group commit
/// (sql/0013). Neither the tables nor a listener see one.
#[tokio::test]
async fn appends_send_no_notification() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    let notifying: Vec<String> = sqlx::query_scalar(
        "SELECT t.tgname::text FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
          WHERE t.tgrelid IN ('events'::regclass, 'events_archive'::regclass)
            AND p.prosrc ILIKE '%notify%'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(notifying, Vec::<String>::new());

    let mut listener = sqlx::postgres::PgListener::connect_with(store.pool())
        .await
        .unwrap();
    listener.listen("rf_events").await.unwrap();
    store
        .append(
            Uuid::from_u128(0x9017),
            ExpectedVersion::Any,
            &[NewEvent::new("Quiet", json!({}))],
            &Default::default(),
        )
        .await
        .unwrap();
    let heard = tokio::time::timeout(std::time::Duration::from_millis(500), listener.recv()).await;
    assert!(heard.is_err(), "an append notified: {heard:?}");
}
