//! Batched appends: each append of a batch judged alone, with the outcome of
//! appending them one by one; the writer that merges concurrent appends.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rillflow_adapters::{
    AppendOptions, AppendRequest, EventStore, NewEvent, StoreError, WriterConfig,
};
use rillflow_core::tenant::TenantName;
use rillflow_core::{ExpectedVersion, GlobalCursor};
use rillflow_testkit::TestDb;
use serde_json::json;
use sqlx::Connection;
use uuid::Uuid;

/// What a generated append is made of, before a case gives it names.
#[derive(Debug, Clone)]
struct Shape {
    stream: u8,
    expected: ExpectedVersion,
    events: Vec<(bool, u8, Option<u8>, bool)>, // (type B, data, id, v2 + headers)
    key: Option<u8>,
    tenant: Option<u8>,
}

fn shape() -> impl Strategy<Value = Shape> {
    // Plain appends (any version, no key, no ids, no tenant) often enough
    // that whole streams of a batch take the set-wise path.
    let expected = prop_oneof![
        6 => Just(ExpectedVersion::Any),
        1 => Just(ExpectedVersion::NoStream),
        1 => Just(ExpectedVersion::Exists),
        2 => (0u64..5).prop_map(ExpectedVersion::Exact),
    ];
    let event = (
        any::<bool>(),
        0u8..3,
        prop::option::weighted(0.15, 0u8..6),
        any::<bool>(),
    );
    (
        0u8..4,
        expected,
        prop::collection::vec(event, 1..4),
        prop::option::weighted(0.25, 0u8..3),
        prop::option::weighted(0.1, 0u8..2),
    )
        .prop_map(|(stream, expected, events, key, tenant)| Shape {
            stream,
            expected,
            events,
            key,
            tenant,
        })
}

/// The requests of case `case`: its own streams, ids and keys, so that cases
/// share nothing but the databases.
fn requests(case: u128, shapes: &[Shape]) -> Vec<AppendRequest> {
    shapes
        .iter()
        .map(|s| AppendRequest {
            stream: Uuid::from_u128(case << 16 | s.stream as u128),
            expected: s.expected,
            events: s
                .events
                .iter()
                .map(|&(b, data, id, extra)| {
                    let mut e = NewEvent::new(if b { "B" } else { "A" }, json!({ "n": data }));
                    if let Some(id) = id {
                        e = e.with_id(Uuid::from_u128(case << 16 | 0x100 | id as u128));
                    }
                    if extra {
                        e = e.with_schema_version(2).with_headers(json!({ "h": data }));
                    }
                    e
                })
                .collect(),
            options: AppendOptions {
                idempotency_key: s.key.map(|k| format!("c{case}-k{k}")),
                tenant: s
                    .tenant
                    .map(|t| TenantName::parse(&format!("t{t}")).unwrap()),
            },
        })
        .collect()
}

/// An append's outcome without its positions: within the batch's one
/// transaction, streams written set-wise take their positions before the
/// others, so positions across streams need not match appends one by one.
fn outcome(r: &Result<rillflow_adapters::AppendResult, StoreError>) -> String {
    match r {
        Ok(r) => format!(
            "{} {}..={} ({} positions) replayed {}",
            r.stream_id,
            r.first_version,
            r.last_version,
            r.positions.len(),
            r.replayed
        ),
        Err(e) => format!("error: {e}"),
    }
}

type Stored = (
    Uuid,
    i64,
    String,
    serde_json::Value,
    i32,
    serde_json::Value,
    i64,
);

/// Every event of the case's streams, as stored, in stream and version
/// order; the position last.
async fn stored(store: &EventStore, case: u128) -> Vec<Stored> {
    sqlx::query_as(
        "SELECT stream_id, version, event_type, data, schema_version, headers, position
           FROM events WHERE stream_id BETWEEN $1 AND $2 ORDER BY stream_id, version",
    )
    .bind(Uuid::from_u128(case << 16))
    .bind(Uuid::from_u128(case << 16 | 0xff))
    .fetch_all(store.pool())
    .await
    .unwrap()
}

fn without_positions(rows: &[Stored]) -> Vec<String> {
    rows.iter()
        .map(|(s, v, t, d, sv, h, _)| format!("{s} {v} {t} {d} {sv} {h}"))
        .collect()
}

#[test]
fn a_batch_has_the_outcome_of_its_appends_one_by_one_in_stream_order() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (mut batched_db, mut single_db) =
        rt.block_on(async { (TestDb::migrated().await, TestDb::migrated().await) });
    let batched = rt.block_on(batched_db.store());
    let single = rt.block_on(single_db.store());
    let cases = std::cell::Cell::new(0u128);
    let mut runner = TestRunner::new(Config {
        cases: 48,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&prop::collection::vec(shape(), 2..20), |shapes| {
            let case = cases.get() + 1;
            cases.set(case);
            let reqs = requests(case, &shapes);
            rt.block_on(async {
                let got = batched.append_batch(&reqs).await;
                // The reference: one append at a time, stream by stream.
                let mut order: Vec<usize> = (0..reqs.len()).collect();
                order.sort_by_key(|&i| reqs[i].stream);
                let mut want: BTreeMap<usize, String> = BTreeMap::new();
                for i in order {
                    let r = &reqs[i];
                    let result = single
                        .append(r.stream, r.expected, &r.events, &r.options)
                        .await;
                    want.insert(i, outcome(&result));
                }
                for (i, result) in got.iter().enumerate() {
                    prop_assert_eq!(&outcome(result), &want[&i], "append {} of {:?}", i, reqs[i]);
                }
                let rows = stored(&batched, case).await;
                prop_assert_eq!(
                    without_positions(&rows),
                    without_positions(&stored(&single, case).await)
                );
                // Positions: what each append reported is what was stored,
                // and they ascend with a stream's versions.
                let at: BTreeMap<(Uuid, i64), i64> =
                    rows.iter().map(|r| ((r.0, r.1), r.6)).collect();
                for result in got.iter().flatten() {
                    let stored: Vec<i64> = (result.first_version..=result.last_version)
                        .map(|v| at[&(result.stream_id, v as i64)])
                        .collect();
                    prop_assert_eq!(&result.positions, &stored);
                }
                for pair in rows.windows(2) {
                    if pair[0].0 == pair[1].0 {
                        prop_assert!(
                            pair[0].6 < pair[1].6,
                            "positions against versions: {:?}",
                            pair
                        );
                    }
                }
                // A keyed append that a batch wrote is a retry when sent
                // again alone: both paths digest a request alike.
                for (r, result) in reqs.iter().zip(&got) {
                    if let (Some(_), Ok(first)) = (&r.options.idempotency_key, result) {
                        let again = batched
                            .append(r.stream, r.expected, &r.events, &r.options)
                            .await;
                        let again = again
                            .map_err(|e| TestCaseError::fail(format!("retry of {r:?}: {e}")))?;
                        prop_assert!(again.replayed, "retry of {:?} was not a replay", r);
                        prop_assert_eq!(&again.positions, &first.positions);
                    }
                }
                Ok(())
            })
        })
        .unwrap();
}

#[tokio::test]
async fn one_refused_append_leaves_the_rest_of_its_batch_written() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    let s = |n: u128| Uuid::from_u128(0xb000 + n);
    store
        .append(
            s(1),
            ExpectedVersion::NoStream,
            &[NewEvent::new("Seed", json!({}))],
            &Default::default(),
        )
        .await
        .unwrap();
    let reqs = vec![
        AppendRequest::new(s(1), vec![NewEvent::new("Ok", json!({}))]),
        AppendRequest {
            expected: ExpectedVersion::NoStream,
            ..AppendRequest::new(s(1), vec![NewEvent::new("Refused", json!({}))])
        },
        AppendRequest {
            expected: ExpectedVersion::Exact(0),
            ..AppendRequest::new(s(2), vec![NewEvent::new("New", json!({})); 3])
        },
        AppendRequest::new(s(3), vec![]),
    ];
    let results = store.append_batch(&reqs).await;
    assert_eq!(results[0].as_ref().unwrap().last_version, 2);
    assert!(
        matches!(results[1], Err(StoreError::WrongExpectedVersion { .. })),
        "{:?}",
        results[1]
    );
    assert_eq!(results[2].as_ref().unwrap().last_version, 3);
    assert!(
        matches!(results[3], Err(StoreError::InvalidRequest(_))),
        "{:?}",
        results[3]
    );
    let txs: Vec<i64> =
        sqlx::query_scalar("SELECT DISTINCT tx_id FROM events WHERE event_type IN ('Ok', 'New')")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(txs.len(), 1, "the batch is one transaction");
    let refused: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'Refused'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(refused, 0);
}

#[tokio::test]
async fn a_key_taken_by_a_concurrent_transaction_fails_only_its_append() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    let key = AppendOptions {
        idempotency_key: Some("shared-key".into()),
        ..AppendOptions::default()
    };
    // Another transaction takes the key on stream X and stays open.
    let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    EventStore::append_in(
        &mut tx,
        Uuid::from_u128(0xc1),
        ExpectedVersion::Any,
        &[NewEvent::new("X", json!({}))],
        &key,
    )
    .await
    .unwrap();
    let reqs = vec![
        AppendRequest::new(
            Uuid::from_u128(0xc2),
            vec![NewEvent::new("Plain", json!({}))],
        ),
        AppendRequest {
            options: key.clone(),
            ..AppendRequest::new(
                Uuid::from_u128(0xc3),
                vec![NewEvent::new("SameKey", json!({}))],
            )
        },
        AppendRequest::new(
            Uuid::from_u128(0xc4),
            vec![NewEvent::new("Plain", json!({}))],
        ),
    ];
    let batch = tokio::spawn({
        let store = store.clone();
        async move { store.append_batch(&reqs).await }
    });
    // The batch waits on the key's unique index until the other commits
    // (or, started later, sees the key taken): either way only its append fails.
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.commit().await.unwrap();
    let results = batch.await.unwrap();
    assert!(results[0].is_ok(), "{:?}", results[0]);
    assert!(
        matches!(results[1], Err(StoreError::IdempotencyConflict(_))),
        "{:?}",
        results[1]
    );
    assert!(results[2].is_ok(), "{:?}", results[2]);
    let same_key: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'SameKey'")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert_eq!(same_key, 0);
}

#[tokio::test]
async fn the_writer_merges_concurrent_appends_and_keeps_every_stream_in_order() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    let writer = store.writer(WriterConfig::default());
    let shared = Uuid::from_u128(0xd000);
    let tasks: Vec<_> = (0..64u128)
        .map(|t| {
            let writer = writer.clone();
            tokio::spawn(async move {
                let own = Uuid::from_u128(0xd100 + t);
                for k in 0..10u64 {
                    let e = vec![NewEvent::new("Own", json!({ "task": t as u64, "k": k }))];
                    let r = writer
                        .append(own, ExpectedVersion::Exact(k), e, AppendOptions::default())
                        .await;
                    assert_eq!(r.unwrap().last_version, k + 1);
                    let e = vec![NewEvent::new("Shared", json!({ "task": t as u64 }))];
                    writer
                        .append(shared, ExpectedVersion::Any, e, AppendOptions::default())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let mut after = GlobalCursor::START;
    let mut versions: BTreeMap<Uuid, i64> = BTreeMap::new();
    let mut seen = 0;
    loop {
        let batch = store.read_all(after, 500).await.unwrap();
        if batch.events.is_empty() {
            break;
        }
        for e in &batch.events {
            let v = versions.entry(e.stream_id).or_default();
            assert_eq!(
                e.version,
                *v + 1,
                "stream {} read out of order",
                e.stream_id
            );
            *v = e.version;
            seen += 1;
        }
        after = batch.next;
    }
    assert_eq!(seen, 64 * 20);
    assert_eq!(versions[&shared], 640);
    let txs: i64 = sqlx::query_scalar("SELECT count(DISTINCT tx_id) FROM events")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert!(
        txs < 64 * 20 / 2,
        "{txs} transactions for {} appends: nothing was merged",
        64 * 20
    );
}

#[tokio::test]
async fn an_append_dropped_before_its_batch_is_withdrawn() {
    let mut db = TestDb::migrated().await;
    let store = db.store().await;
    let blocked = Uuid::from_u128(0xe1);
    let dropped = Uuid::from_u128(0xe2);
    store
        .append(
            blocked,
            ExpectedVersion::Any,
            &[NewEvent::new("Seed", json!({}))],
            &Default::default(),
        )
        .await
        .unwrap();
    let writer = store.writer(WriterConfig {
        in_flight: 1,
        ..WriterConfig::default()
    });
    // Hold the head of `blocked` so that the writer's only batch waits.
    let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM rf_streams WHERE stream_id = $1 FOR UPDATE")
        .bind(blocked)
        .execute(&mut *tx)
        .await
        .unwrap();
    let first = tokio::spawn({
        let writer = writer.clone();
        async move {
            let e = vec![NewEvent::new("Blocked", json!({}))];
            writer
                .append(blocked, ExpectedVersion::Any, e, AppendOptions::default())
                .await
        }
    });
    wait_for_lock_wait(&store).await;
    // Queued behind the blocked batch, then given up on.
    let e = vec![NewEvent::new("Dropped", json!({}))];
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        writer.append(dropped, ExpectedVersion::Any, e, AppendOptions::default()),
    )
    .await;
    assert!(gave_up.is_err(), "the writer's only slot is busy");
    tx.commit().await.unwrap();
    first.await.unwrap().unwrap();
    let e = vec![NewEvent::new("After", json!({}))];
    writer
        .append(
            Uuid::from_u128(0xe3),
            ExpectedVersion::Any,
            e,
            AppendOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        store.stream_version(dropped).await.unwrap(),
        0,
        "a withdrawn append was written"
    );
}

async fn wait_for_lock_wait(store: &EventStore) {
    for _ in 0..500 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(store.pool())
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the writer never waited on the held stream head");
}
