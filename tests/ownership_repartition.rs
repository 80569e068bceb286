//! Live repartitioning on Postgres, batch by batch: the carried checkpoints
//! make each event land once whatever the old partitions had reached, a
//! runner of the old layout is refused, a repartition stuck behind a batch
//! gives up cleanly, and ownership figures come from the database.

use std::sync::Arc;
use std::time::Duration;

use rillflow_adapters::ownership::{PgOwnershipStore, RepartitionError, Repartitioner};
use rillflow_adapters::projection::{
    BatchError, BatchOutcome, BatchOwner, Projection, ProjectionCatalog, ProjectionOptions,
    ProjectionRunner, WriteFence,
};
use rillflow_adapters::{EventStore, NewEvent};
use rillflow_core::{ExpectedVersion, PartitionSpec};
use rillflow_testkit::{Counter, TestDb};
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(10);

fn counter(name: &str) -> Arc<Counter> {
    Arc::new(Counter::new(name).with_options(ProjectionOptions {
        batch_size: 7,
        ..ProjectionOptions::default()
    }))
}

async fn setup(pool: &PgPool, p: &Counter, partitions: u32) {
    let catalog = ProjectionCatalog::new(pool.clone());
    catalog.setup(p).await.expect("setup");
    assert_eq!(
        catalog.register_all(p.name(), partitions).await.unwrap(),
        partitions
    );
}

async fn append_round(store: &EventStore, streams: &[Uuid], round: usize) {
    for (i, s) in streams.iter().enumerate() {
        let events: Vec<NewEvent> = (0..1 + (i + round) % 3)
            .map(|n| NewEvent::new("Counted", json!({ "n": n })))
            .collect();
        store
            .append(*s, ExpectedVersion::Any, &events, &Default::default())
            .await
            .expect("append");
    }
}

fn runners(p: &Arc<Counter>, total: u32) -> Vec<ProjectionRunner> {
    (0..total)
        .map(|k| {
            let spec = PartitionSpec::new(k.into(), total.into()).unwrap();
            ProjectionRunner::new(
                p.clone() as Arc<dyn Projection>,
                spec,
                BatchOwner::default(),
            )
        })
        .collect()
}

/// Runs up to `batches` batches of `runner`.
async fn run(runner: &ProjectionRunner, fence: &WriteFence, batches: usize) {
    for _ in 0..batches {
        match runner.run_batch(fence).await.expect("batch") {
            BatchOutcome::Applied { .. } => {}
            other => panic!("expected work, got {other:?}"),
        }
    }
}

/// Runs every runner until the projection has no lag.
async fn drain(pool: &PgPool, name: &str, runners: &[ProjectionRunner], fence: &WriteFence) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        for r in runners {
            r.run_batch(fence).await.expect("batch");
        }
        let status = ProjectionCatalog::new(pool.clone())
            .status(name)
            .await
            .unwrap();
        if status.lag() == 0 {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status:?}");
    }
}

/// Every stream's count equals its version: each event applied once, in
/// order (the counter refuses anything else).
async fn assert_exact(pool: &PgPool, p: &Counter, streams: &[Uuid]) {
    let store = EventStore::new(pool.clone());
    let mut conn = pool.acquire().await.unwrap();
    let counts = p.counts(&mut conn).await;
    for s in streams {
        let v = store.stream_version(*s).await.unwrap() as i64;
        assert_eq!(counts.get(s).copied(), Some((v, v)), "stream {s}");
    }
    let status = ProjectionCatalog::new(pool.clone())
        .status(p.name())
        .await
        .unwrap();
    assert_eq!(status.errors_total(), 0, "{status:?}");
}

#[tokio::test]
async fn repartitions_at_uneven_checkpoints_apply_each_event_once() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let store = EventStore::new(pool.clone());
    let fence = WriteFence::Unfenced(pool.clone());
    let p = counter("carried");
    setup(&pool, &p, 2).await;
    let streams: Vec<Uuid> = (1..=24u128)
        .map(|i| Uuid::from_u128(i.wrapping_mul(0x51_7cc1_b727_220a_95fe_0123_4567_89ab)))
        .collect();
    append_round(&store, &streams, 0).await;

    // Partition 0 runs ahead, partition 1 barely starts.
    let two = runners(&p, 2);
    run(&two[0], &fence, 3).await;
    run(&two[1], &fence, 1).await;
    let repartition = Repartitioner::new(pool.clone(), WAIT);
    let report = repartition.run("carried", 3).await.unwrap();
    assert_eq!((report.from, report.to, report.changed), (2, 3, true));
    assert_eq!(report.versions.len(), 1);
    assert_eq!(report.versions[0].layers, 1, "{report:?}");

    // More events; one new partition runs a little, then 3 -> 5 -> 1.
    append_round(&store, &streams, 1).await;
    let three = runners(&p, 3);
    run(&three[2], &fence, 2).await;
    repartition.run("carried", 5).await.unwrap();
    let five = runners(&p, 5);
    run(&five[1], &fence, 1).await;
    run(&five[4], &fence, 2).await;
    append_round(&store, &streams, 2).await;
    repartition.run("carried", 1).await.unwrap();
    let one = runners(&p, 1);
    drain(&pool, "carried", &one, &fence).await;
    assert_exact(&pool, &p, &streams).await;

    // Caught up, the single partition carries nothing any more.
    let carry: serde_json::Value = sqlx::query_scalar(
        "SELECT carry FROM rf_checkpoints WHERE projection = 'carried' AND partition_key = 0",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(carry, json!([]));
}

#[tokio::test]
async fn a_runner_of_the_old_layout_is_refused_and_writes_nothing() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let store = EventStore::new(pool.clone());
    let fence = WriteFence::Unfenced(pool.clone());
    let p = counter("stale");
    setup(&pool, &p, 2).await;
    append_round(&store, &[Uuid::from_u128(1), Uuid::from_u128(2 << 120)], 0).await;
    Repartitioner::new(pool.clone(), WAIT)
        .run("stale", 4)
        .await
        .unwrap();
    let old = &runners(&p, 2)[0];
    match old.run_batch(&fence).await {
        Err(BatchError::Repartitioned {
            running, recorded, ..
        }) => assert_eq!((running, recorded), (2, 4)),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let mut conn = pool.acquire().await.unwrap();
    assert!(p.counts(&mut conn).await.is_empty());
    // Registering the old count is refused too; the recorded count wins.
    assert_eq!(
        ProjectionCatalog::new(pool.clone())
            .register_all("stale", 2)
            .await
            .unwrap(),
        4
    );
}

#[tokio::test]
async fn a_repartition_stuck_behind_a_batch_gives_up_and_changes_nothing() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let p = counter("busy");
    setup(&pool, &p, 2).await;
    // A batch in flight: its checkpoint row locked.
    let mut batch = pool.begin().await.unwrap();
    sqlx::query(
        "SELECT 1 FROM rf_checkpoints WHERE projection = 'busy' AND partition_key = 1 FOR UPDATE",
    )
    .execute(&mut *batch)
    .await
    .unwrap();
    let err = Repartitioner::new(pool.clone(), Duration::from_millis(300))
        .run("busy", 3)
        .await
        .unwrap_err();
    assert!(matches!(err, RepartitionError::Busy(_)), "{err}");
    batch.rollback().await.unwrap();
    let status = ProjectionCatalog::new(pool.clone())
        .status("busy")
        .await
        .unwrap();
    assert_eq!(status.total_partitions, 2);
    assert_eq!(status.partitions.len(), 2);
    let unknown = Repartitioner::new(pool.clone(), WAIT)
        .run("nope", 3)
        .await
        .unwrap_err();
    assert!(matches!(unknown, RepartitionError::UnknownProjection(_)));
}

#[tokio::test]
async fn grants_and_unowned_time_are_counted_by_the_database() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let p = counter("owned");
    setup(&pool, &p, 2).await;
    let leases = PgOwnershipStore::new(pool.clone());
    let ttl = Duration::from_secs(30);
    leases.heartbeat("owned", "w1", ttl).await.unwrap();
    let e1 = leases.claim("owned", 0, "w1", ttl).await.unwrap().unwrap();
    leases.release("owned", 0, e1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e2 = leases.claim("owned", 0, "w1", ttl).await.unwrap().unwrap();
    assert_eq!(e2, e1 + 1);
    let o = ProjectionCatalog::new(pool.clone())
        .status("owned")
        .await
        .unwrap()
        .ownership;
    assert!(o.dynamic);
    assert_eq!(o.rebalances_total, 2);
    assert_eq!(o.unowned_partitions, 1, "partition 1 was never claimed");
    assert!(
        (0.3..5.0).contains(&o.unowned_seconds_total),
        "the gap between release and claim: {o:?}"
    );
    assert_eq!(o.workers.len(), 1);
    assert_eq!(o.workers[0].partitions_owned, 1);
}

/// An idle partition moves its checkpoint past the other partitions' events
/// (so its reads stay short as the log grows), but never past a transaction
/// still open: the late commit of its own event is applied (PROJ-2).
#[tokio::test]
async fn an_idle_partition_moves_past_others_but_not_past_an_open_transaction() {
    use rillflow_core::partition_of;
    use sqlx::Acquire;

    let mut db = TestDb::migrated().await;
    let pool = db.pool_of(4).await;
    let store = EventStore::new(pool.clone());
    let fence = WriteFence::Unfenced(pool.clone());
    let p = counter("idle");
    setup(&pool, &p, 2).await;
    let in_partition = |key: u32| {
        (1..=u128::MAX)
            .map(|i| Uuid::from_u128(i.wrapping_mul(0x2545_f491_4f6c_dd1d_9e37_79b9_7f4a_7c15)))
            .filter(move |s| partition_of(rillflow_core::partition_hash(*s), 2) == key)
    };
    let late = in_partition(0).next().unwrap();
    let busy: Vec<Uuid> = in_partition(1).take(10).collect();
    let zero = &runners(&p, 2)[0];
    let checkpoint = |pool: PgPool| async move {
        let c: (i64, i64) = sqlx::query_as(
            "SELECT tx_id, position FROM rf_checkpoints WHERE projection = 'idle' AND partition_key = 0",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        c
    };

    let mut conn = pool.acquire().await.unwrap();
    let mut open = conn.begin().await.unwrap();
    let slow = EventStore::append_in(
        &mut open,
        late,
        ExpectedVersion::Any,
        &[NewEvent::new("Counted", json!({}))],
        &Default::default(),
    )
    .await
    .unwrap();
    let slow_tx: i64 = sqlx::query_scalar("SELECT tx_id FROM events WHERE position = $1")
        .bind(slow.positions[0])
        .fetch_one(&mut *open)
        .await
        .unwrap();
    for _ in 0..3 {
        append_round(&store, &busy, 0).await;
    }
    assert_eq!(
        zero.run_batch(&fence).await.unwrap(),
        BatchOutcome::HeldBack,
        "nothing of partition 0 is readable yet; the rest waits behind the open append"
    );
    let (tx, _) = checkpoint(pool.clone()).await;
    assert!(
        tx < slow_tx,
        "the checkpoint stays below the open transaction"
    );
    open.commit().await.unwrap();
    for _ in 0..3 {
        append_round(&store, &busy, 1).await;
    }
    let head: i64 = sqlx::query_scalar("SELECT max(position) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        zero.run_batch(&fence).await.unwrap();
        let mut c = pool.acquire().await.unwrap();
        let applied = p.counts(&mut c).await.get(&late).copied();
        let (_, position) = checkpoint(pool.clone()).await;
        if applied == Some((1, 1)) && position >= head {
            break;
        }
        // Autovacuum in this database can hold the horizon back a moment.
        assert!(
            tokio::time::Instant::now() < deadline,
            "applied {applied:?}, checkpoint at {position} of {head}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = ProjectionCatalog::new(pool.clone())
        .status("idle")
        .await
        .unwrap();
    assert_eq!(status.partitions[0].processed_total, 1);
}
