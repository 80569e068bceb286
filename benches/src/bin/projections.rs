//! Projection throughput and append→projected latency.
//!
//! ```sh
//! cargo run --release -p rillflow-benches --bin projections -- --events 100000
//! ```
//!
//! Throughput: `--events` events over 1,000 streams are appended first, then
//! one worker catches up from the start with each projection in turn (fresh
//! checkpoint and read model each time), batch size 500:
//! - `counter (set-based)`: the test kit's counting read model, whose
//!   `apply_batch` upserts a whole batch in one statement;
//! - `counter (per event)`: the same read model, one upsert per event;
//! - `counter (declarative SQL)`: the same upsert declared in TOML, a whole
//!   batch in one call of the generated function;
//! - `counter (declared, set-based)`: the counter as a TOML
//!   `batch_handlers` statement over the relation `batch`;
//! - `counter (declared, 1 poison per 10,000)`: the declared counter whose
//!   statement fails for events at positions divisible by 10,000 (dead
//!   lettered at once, `max_retries = 0`, so no retry wait is measured);
//! - `no-op`: handler does nothing (reading and checkpointing alone);
//! - the set-based counter and the no-op again with a batch budget armed
//!   (17 s, longer than any batch here), as the daemon runs them: what the
//!   budget's statement limit and watchdog cost per batch.
//!
//! Then a second database gets `--events` bank events (`fill_accounts`)
//! and `account_balances` from `examples/projections.toml` catches up, in
//! batches (as the daemon runs it, with and without the batch budget) and
//! one event at a time (the path before batching), next to a no-op on the
//! same log.
//!
//! Every rate is also printed as a ratio to the no-op of its log, measured
//! in the same run.
//!
//! Latency: a worker waits on the high-water watch while single events are appended
//! one by one, `--latency-samples` times, 20 ms apart; each sample is the
//! database-clock time from the start of the append's transaction to the
//! moment the handler ran in the batch that applied it. Uses `DATABASE_URL` when set, else the tests' local cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rillflow_adapters::projection::{
    BatchOutcome, BatchOwner, HandlerError, Projection, ProjectionCatalog, ProjectionRunner,
    SqlProjection, WriteFence,
};
use rillflow_adapters::{EventStore, RecordedEvent};
use rillflow_adapters::projection::BatchFailure;
use rillflow_benches::{fill, fill_accounts, latency, percentile};
use rillflow_core::projection::ProjectionFile;
use rillflow_core::PartitionSpec;
use rillflow_testkit::{Counter, TestDb};
use sqlx::{PgConnection, PgPool};

struct Options {
    events: usize,
    latency_samples: usize,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        events: 100_000,
        latency_samples: 200,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let v = args.next().ok_or(format!("{name} needs a number"))?;
            v.parse()
                .map_err(|_| format!("{name}: {v:?} is not a number"))
        };
        match arg.as_str() {
            "--events" => o.events = number("--events")?,
            "--latency-samples" => o.latency_samples = number("--latency-samples")?,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (expected --events N, --latency-samples N)"
                ))
            }
        }
    }
    if o.events == 0 || o.latency_samples == 0 {
        return Err("--events and --latency-samples must be at least 1".into());
    }
    Ok(o)
}

/// The counter without its set-based batch: one statement per event.
struct PerEvent(Counter);

#[async_trait]
impl Projection for PerEvent {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn handles(&self, t: &str) -> bool {
        self.0.handles(t)
    }
    async fn setup(&self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        self.0.setup(conn).await
    }
    async fn apply(&self, conn: &mut PgConnection, e: &RecordedEvent) -> Result<(), HandlerError> {
        self.0.apply(conn, e).await
    }
}

/// A projection without its batched form: `apply_batch` applies one event
/// at a time (as declared projections did before they were batched).
struct OneByOne(Arc<dyn Projection>);

#[async_trait]
impl Projection for OneByOne {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn handles(&self, t: &str) -> bool {
        self.0.handles(t)
    }
    fn options(&self) -> rillflow_adapters::projection::ProjectionOptions {
        self.0.options()
    }
    async fn setup(&self, conn: &mut PgConnection) -> Result<(), HandlerError> {
        self.0.setup(conn).await
    }
    async fn apply(&self, conn: &mut PgConnection, e: &RecordedEvent) -> Result<(), HandlerError> {
        self.0.apply(conn, e).await
    }
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        events: &[&RecordedEvent],
    ) -> Result<(), BatchFailure> {
        for (index, e) in events.iter().enumerate() {
            self.0
                .apply(conn, e)
                .await
                .map_err(|error| BatchFailure { index, error })?;
        }
        Ok(())
    }
}

/// Does nothing; named, so each run starts from its own checkpoint.
struct NoOp(&'static str);

#[async_trait]
impl Projection for NoOp {
    fn name(&self) -> &str {
        self.0
    }
    fn handles(&self, _: &str) -> bool {
        true
    }
    async fn apply(&self, _: &mut PgConnection, _: &RecordedEvent) -> Result<(), HandlerError> {
        Ok(())
    }
    async fn apply_batch(
        &self,
        _: &mut PgConnection,
        _: &[&RecordedEvent],
    ) -> Result<(), rillflow_adapters::projection::BatchFailure> {
        Ok(())
    }
}

const DECLARED: &str = r#"
[[projections]]
name = "bench_declared"
setup = "CREATE TABLE IF NOT EXISTS bench_declared (stream_id uuid PRIMARY KEY, events bigint NOT NULL, last_version bigint NOT NULL)"
[projections.handlers]
Counted = """
INSERT INTO bench_declared AS c (stream_id, events, last_version) VALUES (:stream_id, 1, :version)
ON CONFLICT (stream_id) DO UPDATE SET events = c.events + 1, last_version = EXCLUDED.last_version
"""
"#;

const DECLARED_SET: &str = r#"
[[projections]]
name = "bench_declared_set"
setup = "CREATE TABLE IF NOT EXISTS bench_declared_set (stream_id uuid PRIMARY KEY, events bigint NOT NULL, last_version bigint NOT NULL)"
[projections.batch_handlers]
Counted = """
INSERT INTO bench_declared_set AS c (stream_id, events, last_version)
SELECT stream_id, count(*), max(version) FROM batch GROUP BY stream_id
ON CONFLICT (stream_id) DO UPDATE SET events = c.events + EXCLUDED.events, last_version = EXCLUDED.last_version
"""
"#;

/// The declared counter, failing (division by zero) for every event whose
/// position is a multiple of 10,000.
const DECLARED_POISON: &str = r#"
[[projections]]
name = "bench_declared_poison"
max_retries = 0
setup = "CREATE TABLE IF NOT EXISTS bench_declared_poison (stream_id uuid PRIMARY KEY, events bigint NOT NULL, last_version bigint NOT NULL)"
[projections.handlers]
Counted = """
INSERT INTO bench_declared_poison AS c (stream_id, events, last_version) VALUES (:stream_id, 1, :version / sign(:position % 10000))
ON CONFLICT (stream_id) DO UPDATE SET events = c.events + 1, last_version = EXCLUDED.last_version
"""
"#;

fn declared(text: &str) -> Arc<dyn Projection> {
    let spec = ProjectionFile::parse(text)
        .expect("valid declaration")
        .projections
        .remove(0);
    Arc::new(SqlProjection::new(spec))
}

/// Catches `projection` up from the start; events per second.
async fn throughput(
    pool: &PgPool,
    projection: Arc<dyn Projection>,
    events: usize,
    budget: Option<Duration>,
) -> f64 {
    let catalog = ProjectionCatalog::new(pool.clone());
    catalog.setup(projection.as_ref()).await.expect("setup");
    catalog
        .register(projection.name(), PartitionSpec::WHOLE)
        .await
        .expect("register");
    let runner = ProjectionRunner::new(
        projection.clone(),
        PartitionSpec::WHOLE,
        BatchOwner::default(),
    );
    let runner = match budget {
        Some(b) => runner.with_budget(b),
        None => runner,
    };
    let fence = WriteFence::Unfenced(pool.clone());
    let start = Instant::now();
    let mut read = 0;
    while read < events {
        match runner.run_batch(&fence).await.expect("batch") {
            BatchOutcome::Applied { read: r, .. } => read += r,
            BatchOutcome::Idle => tokio::time::sleep(Duration::from_millis(1)).await,
            BatchOutcome::RetryIn(delay) => tokio::time::sleep(delay).await,
            other => panic!("unexpected {other:?}"),
        }
    }
    events as f64 / start.elapsed().as_secs_f64()
}

/// Runs each projection in turn; the first is the no-op baseline that the
/// others are compared with, and it runs once more at the end (its two
/// rates show the drift of the run). An untimed no-op pass goes first: the
/// first reader of new rows sets their hint bits, which would otherwise be
/// charged to whichever projection ran first.
async fn run_all(
    pool: &PgPool,
    mut runs: Vec<(&str, Arc<dyn Projection>, Option<Duration>)>,
    events: usize,
    prefix: &'static str,
) {
    let warm = match prefix {
        "bank" => "bench_bank_warmup",
        _ => "bench_warmup",
    };
    // Fresh statistics too: before autovacuum gets to the new rows, the
    // reader's plans depend on when it happens to run.
    sqlx::query("VACUUM (ANALYZE)")
        .execute(pool)
        .await
        .expect("vacuum");
    throughput(pool, Arc::new(NoOp(warm)), events, None).await;
    let again = match prefix {
        "bank" => "bench_bank_noop_again",
        _ => "bench_noop_again",
    };
    runs.push(("no-op, again", Arc::new(NoOp(again)), None));
    let mut baseline = None;
    for (label, projection, budget) in runs {
        let rate = throughput(pool, projection, events, budget).await;
        let base = *baseline.get_or_insert(rate);
        println!(
            "{label}: {events} events in batches of 500: {rate:.0} events/s ({:.2}x the no-op)",
            rate / base
        );
    }
}

#[tokio::main]
async fn main() {
    let opts = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let mut db = TestDb::migrated().await;
    let pool = db.pool_of(4).await;
    let store = EventStore::new(pool.clone());
    eprintln!("appending {} events...", opts.events);
    fill(&store, opts.events).await;

    let budget = Some(Duration::from_secs(17));
    let runs: Vec<(&str, Arc<dyn Projection>, Option<Duration>)> = vec![
        ("no-op", Arc::new(NoOp("bench_noop")), None),
        (
            "counter (set-based)",
            Arc::new(Counter::new("bench_counter")),
            None,
        ),
        (
            "counter (per event)",
            Arc::new(PerEvent(Counter::new("bench_counter_each"))),
            None,
        ),
        ("counter (declarative SQL)", declared(DECLARED), None),
        (
            "counter (declared, set-based)",
            declared(DECLARED_SET),
            None,
        ),
        (
            "counter (declared, 1 poison per 10,000)",
            declared(DECLARED_POISON),
            None,
        ),
        (
            "counter (set-based, batch budget armed)",
            Arc::new(Counter::new("bench_counter_budget")),
            budget,
        ),
        (
            "no-op (batch budget armed)",
            Arc::new(NoOp("bench_noop_budget")),
            budget,
        ),
    ];
    run_all(&pool, runs, opts.events, "counted").await;

    let mut bank = TestDb::migrated().await;
    let bank_pool = bank.pool_of(4).await;
    eprintln!("appending {} bank events...", opts.events);
    fill_accounts(&EventStore::new(bank_pool.clone()), opts.events).await;
    let example = include_str!("../../../examples/projections.toml");
    let file = ProjectionFile::parse(example).expect("the example file parses");
    let balances = file
        .projections
        .iter()
        .find(|p| p.name.as_str() == "account_balances")
        .expect("the example declares account_balances")
        .clone();
    let renamed = |suffix: &str| {
        let text = example.replace("account_balances", &format!("account_balances{suffix}"));
        let file = ProjectionFile::parse(&text).expect("renamed example parses");
        Arc::new(SqlProjection::new(file.projections[0].clone())) as Arc<dyn Projection>
    };
    let runs: Vec<(&str, Arc<dyn Projection>, Option<Duration>)> = vec![
        ("bank no-op", Arc::new(NoOp("bench_bank_noop")), None),
        (
            "account_balances (batched)",
            Arc::new(SqlProjection::new(balances)),
            None,
        ),
        (
            "account_balances (batched, batch budget armed)",
            renamed("_budget"),
            budget,
        ),
        (
            "account_balances (one event at a time)",
            Arc::new(OneByOne(renamed("_each"))),
            None,
        ),
    ];
    run_all(&bank_pool, runs, opts.events, "bank").await;

    let mut lat = latency(&pool, opts.latency_samples, 0).await;
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "append→projected (high-water watch, idle worker): samples {}, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().unwrap()
    );
}
