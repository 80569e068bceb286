//! Migrations apply, revert and re-apply cleanly, and keep data across the
//! partitioning step in both directions.

use rillflow_adapters::{EventStore, Migrations, NewEvent};
use rillflow_core::ExpectedVersion;
use rillflow_testkit::{migration_count, TestDb};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

async fn tables(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname <> '_sqlx_migrations'
          ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn apply_all_revert_all_apply_again() {
    let mut db = TestDb::empty().await;
    let pool = db.pool().await;

    let all = migration_count();
    assert_eq!(Migrations::apply(&pool).await.unwrap(), all);
    let full = tables(&pool).await;
    for t in [
        "events",
        "events_archive",
        "events_hot_default",
        "events_cold_default",
        "rf_streams",
        "rf_idempotency",
        "rf_checkpoints",
        "rf_daemon_nodes",
        "rf_daemon_clusters",
    ] {
        assert!(
            full.contains(&t.to_string()),
            "{t} missing after apply: {full:?}"
        );
    }
    assert_eq!(
        Migrations::apply(&pool).await.unwrap(),
        0,
        "second apply is a no-op"
    );

    let reverted = Migrations::revert(&pool, all).await.unwrap();
    let every: Vec<i64> = (1..=all as i64).rev().collect();
    assert_eq!(reverted, every);
    assert!(
        tables(&pool).await.is_empty(),
        "revert all leaves no tables"
    );

    assert_eq!(Migrations::apply(&pool).await.unwrap(), all);
    assert_eq!(tables(&pool).await, full);
}

#[tokio::test]
async fn reverting_more_than_applied_changes_nothing() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let before = tables(&pool).await;
    let all = migration_count();
    let err = Migrations::revert(&pool, all + 1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot revert {} migrations: only {all} applied", all + 1)
    );
    assert_eq!(tables(&pool).await, before);
    assert!(Migrations::status(&pool)
        .await
        .unwrap()
        .iter()
        .all(|m| m.applied));
}

#[tokio::test]
async fn partitioning_down_and_up_keeps_events_and_versions() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let store = EventStore::new(pool.clone());
    let stream = Uuid::from_u128(7);
    let batch: Vec<NewEvent> = (0..3)
        .map(|i| NewEvent::new("Counted", json!({ "i": i })))
        .collect();
    store
        .append(
            stream,
            ExpectedVersion::NoStream,
            &batch,
            &Default::default(),
        )
        .await
        .unwrap();

    // Everything after 0005 (the read horizon, tenancy, partition
    // ownership, archive operations, the projection runtime) goes first,
    // then the partitioning.
    let all = migration_count();
    let after_partitioning = all - 4;
    assert_eq!(
        Migrations::revert(&pool, after_partitioning).await.unwrap(),
        (5..=all as i64).rev().collect::<Vec<_>>()
    );
    let partitioned: bool =
        sqlx::query_scalar("SELECT relkind = 'p' FROM pg_class WHERE relname = 'events'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(!partitioned);
    store
        .append(
            stream,
            ExpectedVersion::Exact(3),
            &batch[..1],
            &Default::default(),
        )
        .await
        .unwrap();

    assert_eq!(Migrations::apply(&pool).await.unwrap(), after_partitioning);
    let r = store
        .append(
            stream,
            ExpectedVersion::Exact(4),
            &batch[..1],
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.last_version, 5);
    let versions: Vec<i64> = store
        .read_stream(stream, 1, 100)
        .await
        .unwrap()
        .iter()
        .map(|e| e.version)
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn redirect_switch_survives_repartitioning() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    sqlx::query("ALTER TABLE events ENABLE TRIGGER rf_events_redirect_archived")
        .execute(&pool)
        .await
        .unwrap();
    Migrations::revert(&pool, 5).await.unwrap();
    Migrations::apply(&pool).await.unwrap();
    let enabled: bool = sqlx::query_scalar(
        "SELECT tgenabled <> 'D' FROM pg_trigger
          WHERE tgrelid = 'events'::regclass AND tgname = 'rf_events_redirect_archived'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        enabled,
        "an operator's redirect choice is not reset by migrations"
    );
}
