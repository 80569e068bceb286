//! Declared projections applied a batch at a time, on real Postgres: the
//! batched path builds exactly the read model that running each event's
//! statements one by one builds (stream order, several statements per
//! event, set-based handlers, poison events), a poison event costs only
//! its own attempts, and a batch's time budget still cuts a declared batch.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rillflow_adapters::projection::{
    BatchFailure, BatchOutcome, BatchOwner, HandlerError, Projection, ProjectionCatalog,
    ProjectionOptions, ProjectionRunner, SqlProjection, WriteFence,
};
use rillflow_adapters::{connect, EventStore, NewEvent, PoolConfig, RecordedEvent};
use rillflow_core::projection::ProjectionFile;
use rillflow_core::{ExpectedVersion, PartitionSpec};
use rillflow_testkit::TestDb;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A projection whose every statement depends on what the statements
/// before it wrote: a running value per stream (`(v * 3 + x) mod p`), a
/// log of it after each move, a note per `Noted` (INSERT ... RETURNING: the
/// prepared text inside the function) and set-based tick sums. `:data.x`
/// of `"bad"` fails the cast: a poison event. The cast sits where it is
/// always evaluated: in `UPDATE ... WHERE` matching no row, whether a bad
/// cast fails depends on Postgres's plan (a custom plan folds it, a
/// generic one never evaluates it), on either path.
fn declaration(name: &str, batch_size: u32, max_retries: u32) -> String {
    format!(
        r#"
[[projections]]
name = "{name}"
batch_size = {batch_size}
max_retries = {max_retries}
setup = [
  "CREATE TABLE IF NOT EXISTS {name}_acc (id uuid PRIMARY KEY, v bigint NOT NULL, last bigint NOT NULL, tenant text)",
  "CREATE TABLE IF NOT EXISTS {name}_log (id uuid, version bigint, v bigint, tenant text)",
  "CREATE TABLE IF NOT EXISTS {name}_notes (event_id uuid PRIMARY KEY, body jsonb, x text, tenant text)",
  "CREATE TABLE IF NOT EXISTS {name}_ticks (id uuid PRIMARY KEY, n bigint NOT NULL, total numeric NOT NULL, last bigint NOT NULL)",
]
[projections.handlers]
Opened = "INSERT INTO {name}_acc VALUES (:stream_id, 1, :version, :tenant_id) ON CONFLICT (id) DO NOTHING"
Moved = [
  """INSERT INTO {name}_acc AS a VALUES (:stream_id, :data.x::bigint, :version, :tenant_id)
     ON CONFLICT (id) DO UPDATE SET v = (a.v * 3 + EXCLUDED.v) % 1000003, last = EXCLUDED.last""",
  "INSERT INTO {name}_log SELECT id, :version, v, tenant FROM {name}_acc WHERE id = :stream_id;",
]
Noted = "INSERT INTO {name}_notes VALUES (:event_id, :data, :data.x, :tenant_id) RETURNING event_id"
[projections.batch_handlers]
Ticked = """
INSERT INTO {name}_ticks AS t
SELECT stream_id, count(*), sum(:data.x::numeric), max(version) FROM batch GROUP BY stream_id
ON CONFLICT (id) DO UPDATE SET n = t.n + EXCLUDED.n, total = t.total + EXCLUDED.total, last = EXCLUDED.last"""
"#
    )
}

fn sql_projection(text: &str) -> SqlProjection {
    let spec = ProjectionFile::parse(text)
        .unwrap_or_else(|e| panic!("{e}"))
        .projections
        .remove(0);
    SqlProjection::new(spec)
}

/// A projection applied one event at a time, each event's statements one
/// by one as prepared statements: the reference the batched path must
/// match. Counts the calls of each path.
struct Counted {
    inner: Arc<dyn Projection>,
    batched: bool,
    batches: AtomicUsize,
    singles: AtomicUsize,
}

impl Counted {
    fn new(inner: SqlProjection, batched: bool) -> Arc<Self> {
        Arc::new(Counted {
            inner: Arc::new(inner),
            batched,
            batches: AtomicUsize::new(0),
            singles: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl Projection for Counted {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn handles(&self, t: &str) -> bool {
        self.inner.handles(t)
    }
    fn options(&self) -> ProjectionOptions {
        self.inner.options()
    }
    async fn setup(&self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        self.inner.setup(conn).await
    }
    async fn apply(&self, conn: &mut PgConnection, e: &RecordedEvent) -> Result<(), HandlerError> {
        self.singles.fetch_add(1, Ordering::Relaxed);
        self.inner.apply(conn, e).await
    }
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), BatchFailure> {
        if self.batched {
            self.batches.fetch_add(1, Ordering::Relaxed);
            return self.inner.apply_batch(conn, events).await;
        }
        for (index, e) in events.iter().enumerate() {
            self.apply(conn, e)
                .await
                .map_err(|error| BatchFailure { index, error })?;
        }
        Ok(())
    }
}

/// Registers `projection` and runs batches until it has caught up.
async fn catch_up(pool: &PgPool, runner: &ProjectionRunner) -> Vec<BatchOutcome> {
    let projection = runner.projection().clone();
    let catalog = ProjectionCatalog::new(pool.clone());
    catalog.setup(projection.as_ref()).await.expect("setup");
    catalog
        .register(projection.name(), PartitionSpec::WHOLE)
        .await
        .expect("register");
    let fence = WriteFence::Unfenced(pool.clone());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let mut outcomes = Vec::new();
    while tokio::time::Instant::now() < deadline {
        match runner.run_batch(&fence).await.expect("batch") {
            outcome @ BatchOutcome::Applied { .. } => outcomes.push(outcome),
            BatchOutcome::RetryIn(d) => tokio::time::sleep(d).await,
            other => {
                let status = catalog.status(projection.name()).await.expect("status");
                if status.lag() == 0 {
                    return outcomes;
                }
                assert!(
                    matches!(other, BatchOutcome::Idle | BatchOutcome::HeldBack),
                    "{other:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    panic!("never caught up: {outcomes:?}");
}

fn runner_of(projection: Arc<dyn Projection>) -> ProjectionRunner {
    ProjectionRunner::new(projection, PartitionSpec::WHOLE, BatchOwner::default())
}

/// Everything a projection named `name` built, as text rows in a fixed
/// order, and its dead letters' positions and errors.
async fn read_model(pool: &PgPool, name: &str) -> Vec<String> {
    let queries = [
        format!("SELECT format('acc %s %s %s %s', id, v, last, tenant) FROM {name}_acc ORDER BY id"),
        format!("SELECT format('log %s %s %s %s', id, version, v, tenant) FROM {name}_log ORDER BY id, version"),
        format!("SELECT format('note %s %s %s %s', event_id, body, x, tenant) FROM {name}_notes ORDER BY event_id"),
        format!("SELECT format('tick %s %s %s %s', id, n, total, last) FROM {name}_ticks ORDER BY id"),
        format!("SELECT format('dead %s %s %s', position, event_type, error) FROM rf_projection_dlq WHERE projection = '{name}' ORDER BY position"),
    ];
    let mut rows = Vec::new();
    for q in queries {
        let part: Vec<String> = sqlx::query_scalar(&q)
            .fetch_all(pool)
            .await
            .expect("read model");
        rows.extend(part);
    }
    rows
}

/// One event of a generated log: stream, type, `x`.
fn event() -> impl Strategy<Value = (u8, u8, Option<i8>)> {
    (
        0u8..4,
        0u8..4,
        prop_oneof![12 => (-9i8..10).prop_map(Some), 1 => Just(None)],
    )
}

fn new_event(kind: u8, x: Option<i8>) -> NewEvent {
    let x = x.map_or(json!("bad"), |x| json!(x.to_string()));
    let t = ["Opened", "Moved", "Noted", "Ticked"][kind as usize];
    NewEvent::new(t, json!({ "x": x, "n": 1.000000000000000000001 }))
}

#[test]
fn the_batched_path_builds_what_one_event_at_a_time_builds() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(
            &(prop::collection::vec(event(), 1..60), 1u32..25),
            |(log, batch_size)| {
                rt.block_on(async {
                    let mut db = TestDb::migrated().await;
                    let pool = db.pool().await;
                    let store = EventStore::new(pool.clone());
                    for (stream, kind, x) in &log {
                        let id = Uuid::from_u128(u128::from(*stream) + 1);
                        store
                            .append(
                                id,
                                ExpectedVersion::Any,
                                &[new_event(*kind, *x)],
                                &Default::default(),
                            )
                            .await
                            .expect("append");
                    }
                    let batched =
                        Counted::new(sql_projection(&declaration("batched", batch_size, 0)), true);
                    let single =
                        Counted::new(sql_projection(&declaration("single", batch_size, 0)), false);
                    catch_up(&pool, &runner_of(batched.clone())).await;
                    catch_up(&pool, &runner_of(single.clone())).await;
                    let got = read_model(&pool, "batched").await;
                    let want = read_model(&pool, "single").await;
                    let got: Vec<String> = got
                        .iter()
                        .map(|r| r.replacen("batched", "single", 1))
                        .collect();
                    prop_assert_eq!(got, want, "log {:?}, batches of {}", log, batch_size);
                    prop_assert!(batched.batches.load(Ordering::Relaxed) > 0);
                    Ok(())
                })
            },
        )
        .unwrap();
}

/// Appends `events` to stream `n`, one append each.
async fn append_each(store: &EventStore, n: u128, events: Vec<NewEvent>) {
    for e in events {
        store
            .append(
                Uuid::from_u128(n),
                ExpectedVersion::Any,
                &[e],
                &Default::default(),
            )
            .await
            .expect("append");
    }
}

#[tokio::test]
async fn a_poison_event_costs_its_own_attempts_and_the_rest_of_its_batch_goes_on() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let store = EventStore::new(pool.clone());
    // Three accounts, then 1,200 moves round them; the 300th and 900th
    // moves are poison.
    for s in 1..=3 {
        append_each(&store, s, vec![new_event(0, Some(0))]).await;
    }
    let moves: Vec<(u128, NewEvent)> = (0..1200)
        .map(|i| {
            let x = if i == 299 || i == 899 {
                None
            } else {
                Some((i % 7) as i8)
            };
            (1 + (i as u128 % 3), new_event(1, x))
        })
        .collect();
    for (s, e) in moves {
        append_each(&store, s, vec![e]).await;
    }
    // One retry before the dead letter: each poison fails twice.
    let batched = Counted::new(sql_projection(&declaration("batched", 500, 1)), true);
    let single = Counted::new(sql_projection(&declaration("single", 500, 1)), false);
    catch_up(&pool, &runner_of(batched.clone())).await;
    catch_up(&pool, &runner_of(single.clone())).await;
    let got: Vec<String> = read_model(&pool, "batched")
        .await
        .iter()
        .map(|r| r.replacen("batched", "single", 1))
        .collect();
    assert_eq!(got, read_model(&pool, "single").await);
    // Applied once each: three accounts, 1,198 moves logged.
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM batched_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(logged, 1198);
    let letters = ProjectionCatalog::new(pool.clone())
        .dead_letters("batched", 10)
        .await
        .expect("dead letters");
    assert_eq!(letters.len(), 2);
    for letter in &letters {
        assert_eq!(letter.attempts, 2, "{letter:?}");
        assert!(
            letter
                .error
                .contains("invalid input syntax for type bigint")
                && letter.error.contains("22P02"),
            "{}",
            letter.error
        );
    }
    // Only the poison events ran alone, once per attempt; everything else
    // went in runs through the function.
    assert_eq!(batched.singles.load(Ordering::Relaxed), 4);
}

/// Every column of `batch` against the placeholder of the same name.
const COLUMNS: &str = r#"
[[projections]]
name = "cols_each"
setup = "CREATE TABLE IF NOT EXISTS cols_each (stream_id uuid, version bigint, position bigint, tx_id bigint, event_id uuid, event_type text, schema_version int, created_at timestamptz, causation_id uuid, correlation_id uuid, data jsonb, headers jsonb, tenant_id text, n text, h text)"
[projections.handlers]
Noted = "INSERT INTO cols_each VALUES (:stream_id, :version, :position, :tx_id, :event_id, :event_type, :schema_version, :created_at, :causation_id, :correlation_id, :data, :headers, :tenant_id, :data.n, :headers.h)"

[[projections]]
name = "cols_set"
setup = "CREATE TABLE IF NOT EXISTS cols_set (seq bigint, stream_id uuid, version bigint, position bigint, tx_id bigint, event_id uuid, event_type text, schema_version int, created_at timestamptz, causation_id uuid, correlation_id uuid, data jsonb, headers jsonb, tenant_id text, n text, h text)"
[projections.batch_handlers]
Noted = """
INSERT INTO cols_set
SELECT b.seq, b.stream_id, b.version, b.position, b.tx_id, b.event_id, b.event_type, b.schema_version, b.created_at,
       b.causation_id, b.correlation_id, b.data, b.headers, b.tenant_id, :data.n, :headers.h
  FROM batch b"""
"#;

#[tokio::test]
async fn every_column_of_batch_holds_the_value_of_its_placeholder() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let store = EventStore::new(pool.clone());
    for i in 0..30u128 {
        let data = serde_json::from_str(&format!(r#"{{"n": 1.000000000000000000001, "i": {i}}}"#))
            .unwrap();
        let mut e = NewEvent::new("Noted", data)
            .with_headers(json!({ "h": "x" }))
            .with_schema_version(1 + (i % 3) as i32);
        if i % 2 == 0 {
            e = e
                .caused_by(Uuid::from_u128(77))
                .correlated_with(Uuid::from_u128(i));
        }
        store
            .append(
                Uuid::from_u128(1 + i % 4),
                ExpectedVersion::Any,
                &[e],
                &Default::default(),
            )
            .await
            .expect("append");
        store
            .append(
                Uuid::from_u128(9),
                ExpectedVersion::Any,
                &[NewEvent::new("Other", json!({}))],
                &Default::default(),
            )
            .await
            .expect("append");
    }
    let file = ProjectionFile::parse(COLUMNS).unwrap();
    for spec in file.projections {
        let mut spec = spec;
        spec.batch_size = 7;
        catch_up(&pool, &runner_of(Arc::new(SqlProjection::new(spec)))).await;
    }
    let each: Vec<String> = sqlx::query_scalar("SELECT c::text FROM cols_each c ORDER BY position")
        .fetch_all(&pool)
        .await
        .unwrap();
    let set: Vec<String> = sqlx::query_scalar(
        "SELECT (c.stream_id, c.version, c.position, c.tx_id, c.event_id, c.event_type, c.schema_version, c.created_at, c.causation_id, c.correlation_id, c.data, c.headers, c.tenant_id, c.n, c.h)::text FROM cols_set c ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(each.len(), 30);
    assert_eq!(set, each);
    let letters = ProjectionCatalog::new(pool.clone())
        .dead_letters("cols_set", 10)
        .await
        .unwrap();
    assert!(letters.is_empty(), "{letters:?}");
    assert!(each[0].contains("1.000000000000000000001"), "{}", each[0]);
    // `seq` follows the log's order within each batch.
    let seq_ok: bool = sqlx::query_scalar(
        "SELECT bool_and(ok) FROM (SELECT seq > lag(seq) OVER (ORDER BY position) OR lag(seq) OVER (ORDER BY position) IS NULL OR seq <= 7 AS ok FROM cols_set) s",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(seq_ok);
}

/// The budget tests of tests/projection_budget.rs, with the sleeper
/// declared: the whole batch is one statement now, and the budget still
/// cuts it, commits what fit, and charges only an event that alone did not.
const SLEEPER: &str = r#"
[[projections]]
name = "sleeper"
batch_size = 100
max_retries = 0
setup = "CREATE TABLE IF NOT EXISTS sleeper_seen (position bigint PRIMARY KEY)"
[projections.handlers]
slept = ["SELECT pg_sleep(:data.ms::float8 / 1000)", "INSERT INTO sleeper_seen VALUES (:position)"]
"#;

async fn sleeper_db(sleeps: &[u64], session_limit: Duration) -> (TestDb, PgPool) {
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
    let config = PoolConfig {
        statement_timeout: session_limit,
        ..PoolConfig::default()
    };
    let pool = connect(&db.url, &config).await.expect("connect");
    (db, pool)
}

fn sleeper_runner(budget: Duration) -> ProjectionRunner {
    runner_of(Arc::new(sql_projection(SLEEPER))).with_budget(budget)
}

async fn seen_and_charged(pool: &PgPool) -> (i64, i64, i64) {
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM sleeper_seen")
        .fetch_one(pool)
        .await
        .unwrap();
    let status = ProjectionCatalog::new(pool.clone())
        .status("sleeper")
        .await
        .expect("status");
    let errors = status.partitions.iter().map(|p| p.errors_total).sum();
    (seen, errors, status.dead_letters)
}

#[tokio::test]
async fn a_declared_batch_runs_past_the_session_limit_within_its_budget() {
    let (_db, pool) = sleeper_db(&[400, 400], Duration::from_millis(200)).await;
    let applied = catch_up(&pool, &sleeper_runner(Duration::from_secs(5))).await;
    assert_eq!(
        applied,
        vec![BatchOutcome::Applied {
            read: 2,
            applied: 2
        }]
    );
    assert_eq!(seen_and_charged(&pool).await, (2, 0, 0));
}

#[tokio::test]
async fn a_declared_batch_over_budget_commits_what_fit_and_charges_no_event() {
    let (_db, pool) = sleeper_db(&[400; 5], Duration::from_secs(30)).await;
    let applied = catch_up(&pool, &sleeper_runner(Duration::from_secs(1))).await;
    let sizes: Vec<usize> = applied
        .iter()
        .map(|o| match o {
            BatchOutcome::Applied { applied, .. } => *applied,
            _ => 0,
        })
        .collect();
    // Each batch commits what fit in its budget (two events, unless the
    // machine is slow enough that only one did), none all five.
    assert!(sizes.iter().all(|n| (1..=2).contains(n)), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), 5);
    assert_eq!(seen_and_charged(&pool).await, (5, 0, 0));
}

#[tokio::test]
async fn a_declared_event_that_alone_outruns_the_budget_is_charged() {
    let (_db, pool) = sleeper_db(&[100, 1500, 100], Duration::from_secs(30)).await;
    catch_up(&pool, &sleeper_runner(Duration::from_millis(600))).await;
    assert_eq!(seen_and_charged(&pool).await, (2, 1, 1));
    let letters = ProjectionCatalog::new(pool.clone())
        .dead_letters("sleeper", 10)
        .await
        .expect("dead letters");
    assert_eq!(letters[0].version, 2);
    assert!(letters[0].error.contains("57014"), "{}", letters[0].error);
}

#[tokio::test]
async fn a_failing_set_based_statement_is_narrowed_down_by_halving() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let store = EventStore::new(pool.clone());
    // 400 ticks over four streams, one of them poison: the set-based
    // statement fails for the whole batch and cannot say which event.
    let ticks: Vec<(u128, NewEvent)> = (0..400)
        .map(|i| {
            let x = if i == 277 { None } else { Some(1) };
            (1 + (i as u128 % 4), new_event(3, x))
        })
        .collect();
    for (s, e) in ticks {
        append_each(&store, s, vec![e]).await;
    }
    let batched = Counted::new(sql_projection(&declaration("batched", 500, 0)), true);
    catch_up(&pool, &runner_of(batched.clone())).await;
    let total: (i64, String) =
        sqlx::query_as("SELECT sum(n)::bigint, sum(total)::text FROM batched_ticks")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(total, (399, "399".to_owned()));
    let letters = ProjectionCatalog::new(pool.clone())
        .dead_letters("batched", 10)
        .await
        .expect("dead letters");
    assert_eq!(letters.len(), 1);
    assert_eq!(
        letters[0].error,
        "invalid input syntax for type numeric: \"bad\" (sqlstate 22P02)"
    );
    // The blamed first event went through alone, then runs were halved
    // until the poison was alone: a handful of attempts, not 400.
    let singles = batched.singles.load(Ordering::Relaxed);
    let runs = batched.batches.load(Ordering::Relaxed);
    assert!(singles <= 6, "{singles} events alone");
    assert!(runs <= 2 + 2 * 9, "{runs} runs");
}

#[tokio::test]
async fn the_batch_function_names_the_failing_event_and_keeps_nothing_of_its_call() {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    let store = EventStore::new(pool.clone());
    let xs = [Some(1), Some(2), None, Some(4)];
    let events: Vec<NewEvent> = std::iter::once(new_event(0, Some(0)))
        .chain(xs.iter().map(|x| new_event(1, *x)))
        .collect();
    store
        .append(
            Uuid::from_u128(1),
            ExpectedVersion::Any,
            &events,
            &Default::default(),
        )
        .await
        .unwrap();
    let recorded = store.read_stream(Uuid::from_u128(1), 0, 100).await.unwrap();
    let refs: Vec<&RecordedEvent> = recorded.iter().collect();
    let projection = sql_projection(&declaration("named", 500, 0));
    ProjectionCatalog::new(pool.clone())
        .setup(&projection)
        .await
        .unwrap();
    let mut tx = pool.begin().await.unwrap();
    let failure = projection.apply_batch(&mut tx, &refs).await.unwrap_err();
    // The fourth event (index 3) carries "bad".
    assert_eq!(failure.index, 3);
    // The transaction is still usable and holds nothing of the call.
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM named_acc")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(rows, 0);
    // The events before it apply in one call.
    projection.apply_batch(&mut tx, &refs[..3]).await.unwrap();
    let logged: i64 = sqlx::query_scalar("SELECT count(*) FROM named_log")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(logged, 2);
    // Its error reads as the per-event path's does.
    let alone = projection.apply(&mut tx, refs[3]).await.unwrap_err();
    assert_eq!(failure.error, alone);
}
