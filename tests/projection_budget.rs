//! A batch's time budget on real Postgres: handler statements may run past
//! the session's short `statement_timeout` (a daemon's is one heartbeat),
//! a batch that outruns its budget commits what fit and charges no event for
//! it, and only an event that alone outruns the budget counts as failing.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rillflow_adapters::projection::{
    BatchOutcome, BatchOwner, HandlerError, Projection, ProjectionCatalog, ProjectionOptions,
    ProjectionRunner, WriteFence,
};
use rillflow_adapters::{connect, EventStore, NewEvent, PoolConfig, RecordedEvent};
use rillflow_core::{Exhausted, ExpectedVersion, PartitionSpec, RetryPolicy};
use rillflow_testkit::TestDb;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// Sleeps in the database for the event's `ms`, then records its position.
struct Sleeper {
    options: ProjectionOptions,
}

#[async_trait]
impl Projection for Sleeper {
    fn name(&self) -> &str {
        "sleeper"
    }

    fn handles(&self, _event_type: &str) -> bool {
        true
    }

    fn options(&self) -> ProjectionOptions {
        self.options
    }

    async fn setup(&self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        sqlx::query("CREATE TABLE IF NOT EXISTS sleeper_seen (position bigint PRIMARY KEY)")
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        event: &RecordedEvent,
    ) -> Result<(), HandlerError> {
        let ms = event.data["ms"].as_f64().unwrap_or(0.0);
        sqlx::query("SELECT pg_sleep($1)")
            .bind(ms / 1000.0)
            .execute(&mut *conn)
            .await?;
        sqlx::query("INSERT INTO sleeper_seen VALUES ($1)")
            .bind(event.position)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// Dead-letters on the first failure, so a charged event shows at once.
fn sleeper() -> Arc<dyn Projection> {
    Arc::new(Sleeper {
        options: ProjectionOptions {
            batch_size: 100,
            retry: RetryPolicy {
                max_retries: 0,
                base_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(10),
                exhausted: Exhausted::DeadLetter,
            },
        },
    })
}

/// A database with `sleeps` events (each sleeping that many ms when
/// applied) and a pool whose sessions cut statements after `session_limit`,
/// as a daemon's pool does after one heartbeat.
async fn setup(sleeps: &[u64], session_limit: Duration) -> (TestDb, PgPool) {
    let mut db = TestDb::migrated().await;
    let setup_pool = db.pool().await;
    let events: Vec<NewEvent> = sleeps
        .iter()
        .map(|ms| NewEvent::new("slept", json!({ "ms": ms })))
        .collect();
    EventStore::new(setup_pool.clone())
        .append(
            Uuid::from_u128(1),
            ExpectedVersion::Any,
            &events,
            &Default::default(),
        )
        .await
        .expect("append");
    let catalog = ProjectionCatalog::new(setup_pool.clone());
    catalog.setup(sleeper().as_ref()).await.expect("setup");
    catalog
        .register("sleeper", PartitionSpec::WHOLE)
        .await
        .expect("register");
    let config = PoolConfig {
        statement_timeout: session_limit,
        ..PoolConfig::default()
    };
    let pool = connect(&db.url, &config).await.expect("connect");
    (db, pool)
}

fn runner(budget: Option<Duration>) -> ProjectionRunner {
    let runner = ProjectionRunner::new(sleeper(), PartitionSpec::WHOLE, BatchOwner::default());
    match budget {
        Some(b) => runner.with_budget(b),
        None => runner,
    }
}

/// Batches until the projection caught up; the outcomes of those that
/// applied something. The gap-safe horizon is server-wide, so another
/// test's open transaction may hold the events back for a while.
async fn run_until_quiet(runner: &ProjectionRunner, pool: &PgPool) -> Vec<BatchOutcome> {
    let fence = WriteFence::Unfenced(pool.clone());
    let catalog = ProjectionCatalog::new(pool.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut applied = Vec::new();
    while tokio::time::Instant::now() < deadline {
        match runner.run_batch(&fence).await.expect("batch") {
            outcome @ BatchOutcome::Applied { .. } => applied.push(outcome),
            BatchOutcome::RetryIn(d) => tokio::time::sleep(d).await,
            _ => {
                if catalog.status("sleeper").await.expect("status").lag() == 0 {
                    return applied;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    panic!("never caught up: {applied:?}");
}

async fn seen(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sleeper_seen")
        .fetch_one(pool)
        .await
        .expect("count")
}

async fn errors_and_dead_letters(pool: &PgPool) -> (i64, i64) {
    let status = ProjectionCatalog::new(pool.clone())
        .status("sleeper")
        .await
        .expect("status");
    let errors = status.partitions.iter().map(|p| p.errors_total).sum();
    (errors, status.dead_letters)
}

#[tokio::test]
async fn without_a_budget_the_session_limit_cuts_a_slow_handler() {
    // The behaviour the budget exists to replace: a 400 ms statement under
    // a 200 ms session limit fails, and the event is dead-lettered.
    let (_db, pool) = setup(&[400], Duration::from_millis(200)).await;
    run_until_quiet(&runner(None), &pool).await;
    assert_eq!(seen(&pool).await, 0);
    assert_eq!(errors_and_dead_letters(&pool).await, (1, 1));
}

#[tokio::test]
async fn a_handler_statement_may_run_past_the_session_limit_within_the_budget() {
    let (_db, pool) = setup(&[400, 400], Duration::from_millis(200)).await;
    let applied = run_until_quiet(&runner(Some(Duration::from_secs(5))), &pool).await;
    assert_eq!(
        applied,
        vec![BatchOutcome::Applied {
            read: 2,
            applied: 2
        }]
    );
    assert_eq!(seen(&pool).await, 2);
    assert_eq!(errors_and_dead_letters(&pool).await, (0, 0));
    // The limit was the transaction's own: the pool's sessions keep theirs.
    let limit: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&pool)
        .await
        .expect("show");
    assert_eq!(limit, "200ms");
}

#[tokio::test]
async fn a_batch_over_budget_commits_what_fit_and_charges_no_event() {
    // Five events of 400 ms against a 1 s budget: no batch can take them
    // all, each takes two, and no event is blamed for the batch's length.
    let (_db, pool) = setup(&[400; 5], Duration::from_secs(30)).await;
    let applied = run_until_quiet(&runner(Some(Duration::from_secs(1))), &pool).await;
    let sizes: Vec<usize> = applied
        .iter()
        .map(|o| match o {
            BatchOutcome::Applied { applied, .. } => *applied,
            _ => 0,
        })
        .collect();
    assert_eq!(sizes, vec![2, 2, 1]);
    assert_eq!(seen(&pool).await, 5);
    assert_eq!(errors_and_dead_letters(&pool).await, (0, 0));
}

#[tokio::test]
async fn an_event_that_alone_outruns_the_budget_is_charged_and_the_rest_go_on() {
    let (_db, pool) = setup(&[100, 1500, 100], Duration::from_secs(30)).await;
    run_until_quiet(&runner(Some(Duration::from_millis(600))), &pool).await;
    // The slow one was cut (budget spent with nothing else done in its
    // batch) and dead-lettered; the others were applied.
    assert_eq!(seen(&pool).await, 2);
    assert_eq!(errors_and_dead_letters(&pool).await, (1, 1));
    let letters = ProjectionCatalog::new(pool.clone())
        .dead_letters("sleeper", 10)
        .await
        .expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].version, 2);
    assert!(
        letters[0].error.contains("57014"),
        "cancelled, not failed otherwise: {}",
        letters[0].error
    );
}
