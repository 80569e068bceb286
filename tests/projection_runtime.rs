//! The projection runtime on real Postgres: exactly once (PROJ-1), gap safe
//! (PROJ-2), in stream order (PROJ-3), one partition per event (PROJ-4), and
//! poison events retried, dead-lettered, requeued or stopping (PROJ-5).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rillflow_adapters::projection::{
    BatchOutcome, BatchOwner, CatalogError, HandlerError, Projection, ProjectionCatalog,
    ProjectionOptions, ProjectionRunner, WriteFence,
};
use rillflow_adapters::{EventStore, NewEvent, RecordedEvent};
use rillflow_core::{Exhausted, ExpectedVersion, PartitionSpec, RetryPolicy};
use rillflow_testkit::{Counter, TestDb};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

async fn append(store: &EventStore, stream: Uuid, n: usize, ty: &str) {
    let events: Vec<NewEvent> = (0..n)
        .map(|i| NewEvent::new(ty, json!({ "i": i })))
        .collect();
    store
        .append(stream, ExpectedVersion::Any, &events, &Default::default())
        .await
        .expect("append");
}

async fn registered(pool: &PgPool, p: &dyn Projection, partition: PartitionSpec) {
    let catalog = ProjectionCatalog::new(pool.clone());
    catalog.setup(p).await.expect("setup");
    catalog
        .register(p.name(), partition)
        .await
        .expect("register");
}

fn runner(p: Arc<dyn Projection>, partition: PartitionSpec) -> ProjectionRunner {
    ProjectionRunner::new(p, partition, BatchOwner::default())
}

/// Runs batches until one finds nothing; the horizon is cluster-wide, so
/// other tests' open transactions may hold events back for a moment.
async fn drain(runner: &ProjectionRunner, fence: &WriteFence, expect_total: i64, pool: &PgPool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match runner.run_batch(fence).await.expect("batch") {
            BatchOutcome::Applied { .. } => continue,
            BatchOutcome::RetryIn(d) => tokio::time::sleep(d).await,
            _ => {}
        }
        let lag = ProjectionCatalog::new(pool.clone())
            .status(runner.projection().name())
            .await
            .unwrap();
        if lag.processed_total() >= expect_total && lag.lag() == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never caught up: {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn every_event_is_applied_once_in_stream_order() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let store = EventStore::new(pool.clone());
    let counter = Arc::new(Counter::new("counts").with_options(ProjectionOptions {
        batch_size: 7,
        ..Default::default()
    }));
    registered(&pool, counter.as_ref(), PartitionSpec::WHOLE).await;
    let streams: Vec<Uuid> = (1..=5).map(Uuid::from_u128).collect();
    for round in 0..4 {
        for (i, s) in streams.iter().enumerate() {
            append(&store, *s, 1 + (i + round) % 3, "Counted").await;
        }
    }
    let total: i64 = (0..4)
        .flat_map(|round| (0..5).map(move |i| 1 + (i + round) % 3))
        .sum::<usize>() as i64;
    let fence = WriteFence::Unfenced(pool.clone());
    let r = runner(counter.clone(), PartitionSpec::WHOLE);
    drain(&r, &fence, total, &pool).await;

    let mut conn = pool.acquire().await.unwrap();
    let counts = counter.counts(&mut conn).await;
    for s in &streams {
        let version = store.stream_version(*s).await.unwrap() as i64;
        assert_eq!(counts[s], (version, version), "stream {s}");
    }
    // Nothing more to do, and a rerun applies nothing twice.
    assert_eq!(r.run_batch(&fence).await.unwrap(), BatchOutcome::Idle);
    let status = ProjectionCatalog::new(pool.clone())
        .status("counts")
        .await
        .unwrap();
    assert_eq!(status.processed_total(), total);
}

/// Fails on events whose body says `poison`, until `fixed` is set.
struct Picky {
    name: String,
    fixed: AtomicBool,
    options: ProjectionOptions,
}

#[async_trait]
impl Projection for Picky {
    fn name(&self) -> &str {
        &self.name
    }
    fn handles(&self, _: &str) -> bool {
        true
    }
    fn options(&self) -> ProjectionOptions {
        self.options
    }
    async fn setup(&self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS seen (position bigint PRIMARY KEY)")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
    async fn apply(&self, conn: &mut PgConnection, e: &RecordedEvent) -> Result<(), HandlerError> {
        // The insert runs first, so a failure below must be rolled back by
        // the savepoint; and the failure itself is a SQL error, which
        // aborts the transaction unless the savepoint catches it.
        sqlx::query("INSERT INTO seen (position) VALUES ($1)")
            .bind(e.position)
            .execute(&mut *conn)
            .await?;
        if e.data["poison"] == json!(true) && !self.fixed.load(Ordering::SeqCst) {
            sqlx::query("SELECT 1 / 0").execute(&mut *conn).await?;
        }
        Ok(())
    }
}

fn picky(name: &str, exhausted: Exhausted) -> Arc<Picky> {
    Arc::new(Picky {
        name: name.to_owned(),
        fixed: AtomicBool::new(false),
        options: ProjectionOptions {
            batch_size: 100,
            retry: RetryPolicy {
                max_retries: 2,
                base_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(40),
                exhausted,
            },
        },
    })
}

/// `around` good events, a poison event, `around` good events, on `stream`.
async fn poisoned(store: &EventStore, stream: Uuid, around: usize) {
    append(store, stream, around, "Ok").await;
    store
        .append(
            stream,
            ExpectedVersion::Any,
            &[NewEvent::new("Bad", json!({"poison": true}))],
            &Default::default(),
        )
        .await
        .unwrap();
    append(store, stream, around, "Ok").await;
}

async fn seen(pool: &PgPool) -> Vec<i64> {
    sqlx::query_scalar("SELECT position FROM seen ORDER BY position")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_poison_event_is_retried_dead_lettered_and_requeued_once() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let store = EventStore::new(pool.clone());
    let p = picky("picky", Exhausted::DeadLetter);
    registered(&pool, p.as_ref(), PartitionSpec::WHOLE).await;
    let s = Uuid::from_u128(7);
    poisoned(&store, s, 2).await;

    let fence = WriteFence::Unfenced(pool.clone());
    let r = runner(p.clone(), PartitionSpec::WHOLE);
    let catalog = ProjectionCatalog::new(pool.clone());
    // First failure: the two events before it commit, the poison waits.
    let mut outcomes = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while catalog.status("picky").await.unwrap().dead_letters == 0 {
        let o = r
            .run_batch(&fence)
            .await
            .expect("bookkeeping survives the handler's SQL error");
        if let BatchOutcome::RetryIn(d) = o {
            tokio::time::sleep(d).await;
        }
        if o != BatchOutcome::Idle {
            outcomes.push(o);
        }
        assert!(tokio::time::Instant::now() < deadline, "{outcomes:?}");
    }
    let retries = outcomes
        .iter()
        .filter(|o| matches!(o, BatchOutcome::RetryIn(_)))
        .count();
    assert!(
        retries >= 2,
        "two retries before dead-lettering: {outcomes:?}"
    );
    drain(&r, &fence, 4, &pool).await;

    let letters = catalog.dead_letters("picky", 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].attempts, 3, "first try and two retries");
    assert!(
        letters[0].error.contains("division by zero"),
        "{}",
        letters[0].error
    );
    let poison = letters[0].position;
    let before = seen(&pool).await;
    assert_eq!(before.len(), 4);
    assert!(
        !before.contains(&poison),
        "the failed attempt's writes were rolled back"
    );
    let status = catalog.status("picky").await.unwrap();
    assert_eq!(status.errors_total(), 3);
    assert!(status.last_error().unwrap().contains("division by zero"));

    // Fixed and requeued: applied once, and only that event.
    p.fixed.store(true, Ordering::SeqCst);
    catalog.requeue("picky", letters[0].id).await.unwrap();
    assert!(matches!(
        r.run_batch(&fence).await.unwrap(),
        BatchOutcome::Applied { applied: 1, .. }
    ));
    let after = seen(&pool).await;
    assert_eq!(after.len(), 5);
    assert!(after.contains(&poison));
    assert!(catalog.dead_letters("picky", 10).await.unwrap().is_empty());
    assert_eq!(r.run_batch(&fence).await.unwrap(), BatchOutcome::Idle);

    // Unknown ids and names are refused, changing nothing.
    assert!(matches!(
        catalog.requeue("picky", 999).await,
        Err(CatalogError::UnknownDeadLetter { id: 999, .. })
    ));
    assert!(matches!(
        catalog.delete_dead_letter("nope", 1).await,
        Err(CatalogError::UnknownProjection(_))
    ));
}

#[tokio::test]
async fn the_stop_policy_pauses_before_the_poison_until_resumed() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let store = EventStore::new(pool.clone());
    let p = picky("strict", Exhausted::Stop);
    registered(&pool, p.as_ref(), PartitionSpec::WHOLE).await;
    let s = Uuid::from_u128(9);
    poisoned(&store, s, 1).await;
    let fence = WriteFence::Unfenced(pool.clone());
    let r = runner(p.clone(), PartitionSpec::WHOLE);
    let catalog = ProjectionCatalog::new(pool.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match r.run_batch(&fence).await.unwrap() {
            BatchOutcome::Stopped => break,
            BatchOutcome::RetryIn(d) => tokio::time::sleep(d).await,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
        assert!(tokio::time::Instant::now() < deadline);
    }
    let status = catalog.status("strict").await.unwrap();
    assert!(status.paused);
    assert!(status
        .stopped_reason
        .as_deref()
        .unwrap()
        .contains("failed 3 times"));
    assert_eq!(seen(&pool).await.len(), 1, "nothing after the poison event");
    assert_eq!(r.run_batch(&fence).await.unwrap(), BatchOutcome::Paused);
    assert!(catalog.dead_letters("strict", 10).await.unwrap().is_empty());

    p.fixed.store(true, Ordering::SeqCst);
    catalog.resume("strict").await.unwrap();
    drain(&r, &fence, 3, &pool).await;
    assert_eq!(seen(&pool).await.len(), 3);
}

#[tokio::test]
async fn partitions_split_the_log_and_each_event_lands_once() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let store = EventStore::new(pool.clone());
    let counter = Arc::new(Counter::new("parts"));
    let total = 3;
    let specs: Vec<PartitionSpec> = (0..total)
        .map(|k| PartitionSpec::new(k, total).unwrap())
        .collect();
    for spec in &specs {
        registered(&pool, counter.as_ref(), *spec).await;
    }
    let streams: Vec<Uuid> = (0..24)
        .map(|i| Uuid::from_u128(0x1234_5678_9abc_def0_1234_5678_0000_0000 + (i << 96)))
        .collect();
    for s in &streams {
        append(&store, *s, 3, "Counted").await;
    }
    let fence = WriteFence::Unfenced(pool.clone());
    let runners: Vec<ProjectionRunner> =
        specs.iter().map(|s| runner(counter.clone(), *s)).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        for r in &runners {
            r.run_batch(&fence).await.unwrap();
        }
        let status = ProjectionCatalog::new(pool.clone())
            .status("parts")
            .await
            .unwrap();
        if status.processed_total() == 72 && status.lag() == 0 {
            // Each partition applied only its own streams' events.
            let mut applied: Vec<i64> = status
                .partitions
                .iter()
                .map(|p| p.processed_total)
                .collect();
            applied.sort();
            assert!(applied.iter().all(|n| *n > 0), "{applied:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut conn = pool.acquire().await.unwrap();
    let counts = counter.counts(&mut conn).await;
    assert_eq!(counts.len(), 24);
    assert!(counts.values().all(|c| *c == (3, 3)), "{counts:?}");

    // A worker with another partition count is refused.
    let err = ProjectionCatalog::new(pool.clone())
        .register("parts", PartitionSpec::new(0, 4).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CatalogError::PartitionMismatch {
                recorded: 3,
                given: 4,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_fenced_epoch_commits_nothing() {
    use rillflow_adapters::daemon::{LeaseStore, NodeIdentity, PgLeaseStore};
    use rillflow_core::lease::{AcquireOutcome, ClusterTiming, LeaseConfig};

    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let store = EventStore::new(pool.clone());
    let counter = Arc::new(Counter::new("fenced"));
    registered(&pool, counter.as_ref(), PartitionSpec::WHOLE).await;
    append(&store, Uuid::from_u128(3), 2, "Counted").await;

    let leases = PgLeaseStore::new(pool.clone());
    let node = |name: &str, id: u128| NodeIdentity {
        cluster: "c".into(),
        node: name.into(),
        daemon_id: Uuid::from_u128(id),
    };
    let (a, b) = (node("a", 1), node("b", 2));
    let timing = ClusterTiming::from(&LeaseConfig::from_secs(1, 3, 1));
    leases.register(&a, 0, &timing).await.unwrap();
    leases.register(&b, 0, &timing).await.unwrap();
    let AcquireOutcome::Granted(first) = leases
        .try_acquire(&a, Duration::from_secs(3), Duration::ZERO)
        .await
        .unwrap()
    else {
        panic!("a gets the lease");
    };
    leases.release(&a, first.epoch).await.unwrap();
    let AcquireOutcome::Granted(second) = leases
        .try_acquire(&b, Duration::from_secs(3), Duration::ZERO)
        .await
        .unwrap()
    else {
        panic!("b gets the lease");
    };
    let stale = WriteFence::Epoch {
        store: leases.clone(),
        pool: pool.clone(),
        cluster: "c".into(),
        epoch: first.epoch,
    };
    let r = runner(counter.clone(), PartitionSpec::WHOLE);
    let err = r.run_batch(&stale).await.unwrap_err();
    assert!(
        matches!(
            err,
            rillflow_adapters::projection::BatchError::Fenced { .. }
        ),
        "{err}"
    );
    assert_eq!(
        ProjectionCatalog::new(pool.clone())
            .status("fenced")
            .await
            .unwrap()
            .processed_total(),
        0
    );

    let current = WriteFence::Epoch {
        store: leases,
        pool: pool.clone(),
        cluster: "c".into(),
        epoch: second.epoch,
    };
    drain(&r, &current, 2, &pool).await;
    let status = ProjectionCatalog::new(pool.clone())
        .status("fenced")
        .await
        .unwrap();
    assert_eq!(status.partitions[0].owner_epoch, Some(second.epoch as i64));
}

#[tokio::test]
async fn a_rebuild_replays_everything_into_an_empty_read_model() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let store = EventStore::new(pool.clone());
    let counter = Arc::new(Counter::new("rebuilt"));
    registered(&pool, counter.as_ref(), PartitionSpec::WHOLE).await;
    for i in 1..=4 {
        append(&store, Uuid::from_u128(i), i as usize, "Counted").await;
    }
    let fence = WriteFence::Unfenced(pool.clone());
    let r = runner(counter.clone(), PartitionSpec::WHOLE);
    drain(&r, &fence, 10, &pool).await;
    let mut conn = pool.acquire().await.unwrap();
    let before = counter.counts(&mut conn).await;

    let catalog = ProjectionCatalog::new(pool.clone());
    catalog.rebuild(counter.as_ref()).await.unwrap();
    assert!(counter.counts(&mut conn).await.is_empty());
    assert_eq!(catalog.status("rebuilt").await.unwrap().lag(), 10);
    drain(&r, &fence, 10, &pool).await;
    assert_eq!(counter.counts(&mut conn).await, before);

    // Reset to a position: the events after it are applied again only
    // after the read model forgets them, so the counter refuses them.
    let cursor = catalog.reset_checkpoint("rebuilt", 0).await.unwrap();
    assert_eq!(cursor.position, 0);
    assert_eq!(catalog.status("rebuilt").await.unwrap().lag(), 10);
}

/// PROJ-2 end to end: writers hold their append transactions open for a
/// while (some after doing other writes first, so their transaction ids
/// are older than later committers'), some roll back, while a worker woken
/// by NOTIFY keeps projecting. The counter refuses any skipped, repeated or
/// reordered event, and at the end equals every stream's version.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn late_commits_are_projected_exactly_once_while_the_worker_runs() {
    use rand::{Rng, SeedableRng};
    use rillflow_adapters::projection::{
        wakeup, Batches, PgBatches, ProjectionWorker, RuntimeMetrics, WorkerTiming,
    };
    use sqlx::Acquire;

    const WRITERS: u64 = 8;
    const APPENDS: usize = 30;
    let mut db = TestDb::migrated().await;
    let pool = db.pool_of(WRITERS as u32 + 6).await;
    let store = EventStore::new(pool.clone());
    sqlx::query("CREATE TABLE side_effects (n bigint)")
        .execute(&pool)
        .await
        .unwrap();
    let counter = Arc::new(Counter::new("late").with_options(ProjectionOptions {
        batch_size: 16,
        ..Default::default()
    }));
    registered(&pool, counter.as_ref(), PartitionSpec::WHOLE).await;
    let worker = ProjectionWorker::new(
        vec![Arc::new(PgBatches::new(
            runner(counter.clone(), PartitionSpec::WHOLE),
            pool.clone(),
            None,
        )) as Arc<dyn Batches>],
        WorkerTiming {
            poll_interval: Duration::from_millis(200),
            ..Default::default()
        },
        Arc::new(RuntimeMetrics::new()),
    );
    let wake = wakeup::listen(pool.clone()).await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(async move { worker.run(None, &wake, stop_rx).await });

    let streams: Vec<Uuid> = (1..=6).map(Uuid::from_u128).collect();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (store, streams) = (store.clone(), streams.clone());
        writers.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(w);
            let mut committed = 0i64;
            for _ in 0..APPENDS {
                let stream = streams[rng.random_range(0..streams.len())];
                let mut conn = store.pool().acquire().await.unwrap();
                let mut tx = conn.begin().await.unwrap();
                if rng.random_bool(0.3) {
                    // Other work first: this transaction's id is taken now.
                    sqlx::query("INSERT INTO side_effects VALUES (1)")
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    tokio::time::sleep(Duration::from_millis(rng.random_range(0..15))).await;
                }
                let n = rng.random_range(1..4);
                let events: Vec<NewEvent> = (0..n)
                    .map(|i| NewEvent::new("Counted", json!({ "i": i })))
                    .collect();
                let appended = EventStore::append_in(
                    &mut tx,
                    stream,
                    ExpectedVersion::Any,
                    &events,
                    &Default::default(),
                )
                .await;
                if appended.is_err() {
                    // An older transaction than the stream's last writer:
                    // the store's rule; roll back and move on.
                    tx.rollback().await.unwrap();
                    continue;
                }
                // Hold the positions taken while others commit past them.
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..20))).await;
                if rng.random_bool(0.15) {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                    committed += n as i64;
                }
            }
            committed
        }));
    }
    let mut total = 0;
    for w in writers {
        total += w.await.unwrap();
    }
    drain(
        &runner(counter.clone(), PartitionSpec::WHOLE),
        &WriteFence::Unfenced(pool.clone()),
        total,
        &pool,
    )
    .await;
    let _ = stop_tx.send(true);
    task.await.unwrap();

    let status = ProjectionCatalog::new(pool.clone())
        .status("late")
        .await
        .unwrap();
    assert_eq!(status.processed_total(), total);
    assert_eq!(
        status.errors_total(),
        0,
        "no event was skipped or repeated: {status:?}"
    );
    let mut conn = pool.acquire().await.unwrap();
    let counts = counter.counts(&mut conn).await;
    for s in &streams {
        let version = store.stream_version(*s).await.unwrap() as i64;
        assert_eq!(
            counts.get(s).copied().unwrap_or((0, 0)),
            (version, version),
            "stream {s}"
        );
    }
}
