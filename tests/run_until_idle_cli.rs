//! `rillflow projections run-until-idle` on real Postgres: it finishes what
//! it can (retries waited out, held-back events looked at again) and its
//! exit status says whether the read models are complete.

use rillflow_adapters::{EventStore, NewEvent};
use rillflow_core::ExpectedVersion;
use rillflow_testkit::{incomplete_line, projection_file, CliRunner, TestDb};
use serde_json::json;
use uuid::Uuid;

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/projections.toml");

const BIN: &str = env!("CARGO_BIN_EXE_rillflow");

async fn balances(db: &mut TestDb) -> usize {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT owner FROM account_balances")
        .fetch_all(&db.pool().await)
        .await
        .unwrap();
    rows.len()
}

/// Idle is not caught up when a transaction that began before the events
/// is still open (PROJ-2 holds them back): `run-until-idle` says how many
/// wait, and they are applied once it ends.
#[tokio::test]
async fn run_until_idle_says_when_an_open_transaction_holds_events_back() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    // Registered before its first write, as a transaction that appends
    // later does: readers wait for it.
    let mut blocker = pool.begin().await.unwrap();
    sqlx::query("SELECT rf_register_appender(), txid_current()")
        .execute(&mut *blocker)
        .await
        .unwrap();
    EventStore::new(pool.clone())
        .append(
            Uuid::from_u128(0xb10c),
            ExpectedVersion::Any,
            &[NewEvent::new("AccountOpened", json!({ "owner": "late" }))],
            &Default::default(),
        )
        .await
        .unwrap();
    let out = CliRunner::new(BIN, &db).run_until_idle_output(EXAMPLE, "account_balances");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("0 event(s) read") && stdout.contains("1 event(s) not readable yet"),
        "{stdout}"
    );
    assert_eq!(
        out.status.code(),
        Some(4),
        "held-back events leave it incomplete"
    );
    let line = incomplete_line(&out);
    assert!(line.contains("wait behind a transaction"), "{line}");
    blocker.rollback().await.unwrap();
    CliRunner::new(BIN, &db).catch_up(EXAMPLE, "account_balances");
}

/// The issue's trap: a write transaction left open in another database of
/// the server (or one of this database that never appends) does not keep
/// `run-until-idle` from applying new events and exiting 0.
#[tokio::test]
async fn run_until_idle_is_not_held_back_by_transactions_that_never_append() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let mut elsewhere = TestDb::empty().await;
    let elsewhere = elsewhere.pool().await;
    let mut other_db = elsewhere.begin().await.unwrap();
    sqlx::raw_sql("CREATE TABLE other (x int); INSERT INTO other VALUES (1)")
        .execute(&mut *other_db)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE jobs (x int)")
        .execute(&pool)
        .await
        .unwrap();
    let mut here = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO jobs VALUES (1)")
        .execute(&mut *here)
        .await
        .unwrap();
    EventStore::new(pool.clone())
        .append(
            Uuid::from_u128(0xfee),
            ExpectedVersion::Any,
            &[NewEvent::new("AccountOpened", json!({ "owner": "now" }))],
            &Default::default(),
        )
        .await
        .unwrap();
    let out = CliRunner::new(BIN, &db).run_until_idle(EXAMPLE, "account_balances");
    assert!(out.contains("1 event(s) read, 1 applied"), "{out}");
    assert_eq!(balances(&mut db).await, 1);
    here.rollback().await.unwrap();
    other_db.rollback().await.unwrap();
}

/// A failing event's retries are waited out in one run: the run ends with
/// it dead-lettered and the rest applied (exit 0), or, under the stop
/// policy, with the projection stopped (exit 3).
#[tokio::test]
async fn run_until_idle_waits_out_retries() {
    let mut db = TestDb::migrated().await;
    let file = |policy: &str| {
        projection_file(
            policy,
            &format!(
                r#"
[[projections]]
name = "amounts_{policy}"
max_retries = 2
on_error = "{policy}"
setup = "CREATE TABLE IF NOT EXISTS amounts_{policy} (position bigint PRIMARY KEY, amount int NOT NULL)"
[projections.handlers]
Paid = "INSERT INTO amounts_{policy} VALUES (:position, :data.amount::int)"
"#
            ),
        )
    };
    let (lenient, strict) = (file("dead_letter"), file("stop"));
    let store = EventStore::new(db.pool().await);
    for amount in [json!(3), json!("three"), json!(4)] {
        store
            .append(
                Uuid::from_u128(6),
                ExpectedVersion::Any,
                &[NewEvent::new("Paid", json!({ "amount": amount }))],
                &Default::default(),
            )
            .await
            .unwrap();
    }
    let cli = CliRunner::new(BIN, &db);
    let out = cli.run_until_idle(lenient.to_str().unwrap(), "amounts_dead_letter");
    assert!(out.contains("2 retry wait(s)"), "{out}");
    let letters = cli.json(&[
        "projections",
        "dlq-list",
        "amounts_dead_letter",
        "--output",
        "json",
    ]);
    assert_eq!(letters.as_array().unwrap().len(), 1, "{letters}");
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM amounts_dead_letter")
        .fetch_one(&db.pool().await)
        .await
        .unwrap();
    assert_eq!(applied, 2);

    let out = cli.run_until_idle_output(strict.to_str().unwrap(), "amounts_stop");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("stopped by its error policy"), "{stdout}");
    assert!(incomplete_line(&out).contains("amounts_stop paused or stopped"));
}
