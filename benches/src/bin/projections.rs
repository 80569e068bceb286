//! Projection throughput and append→projected latency.
//!
//! ```sh
//! cargo run --release -p rillflow-benches --bin projections -- --events 100000 [--rounds 3] [--only TEXT]
//! ```
//!
//! Throughput: `--events` events over 1,000 streams are appended first, then
//! one worker catches up from the start with each projection in turn (fresh
//! checkpoint and read model each time), batch size 500:
//! - `no-op`: handler does nothing (reading and checkpointing alone): the
//!   baseline;
//! - `counter (set-based apply_batch in Rust)`: the test kit's counting read
//!   model, whose `apply_batch` upserts a whole batch in one statement;
//! - `counter (Rust, one upsert per event)`: the same read model;
//! - `counter (declared per event, batched)`: the same upsert declared in
//!   TOML, a whole batch in one call of the generated function, and the
//!   same declaration `one event at a time` (as before batching);
//! - `counter (declared set-based batch_handlers)`: the counter as a TOML
//!   `batch_handlers` statement over the relation `batch`;
//! - `... 1 poison per 10,000`: the declared counter whose statement fails
//!   for events at positions divisible by 10,000 (dead lettered at once,
//!   `max_retries = 0`, so no retry wait is measured);
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
//! The projections of a log run in turn, `--rounds` times over (fresh
//! checkpoints and read models each time), each right after a no-op run;
//! each rate is printed with its ratio to that no-op, then the medians. `--only TEXT`
//! keeps the projections whose label holds TEXT (and the no-op).
//!
//! Latency: a worker waits on the high-water watch while single events are appended
//! one by one, `--latency-samples` times, 20 ms apart; each sample is the
//! database-clock time from the start of the append's transaction to the
//! moment the handler ran in the batch that applied it. Uses `DATABASE_URL` when set, else the tests' local cluster.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rillflow_adapters::projection::BatchFailure;
use rillflow_adapters::projection::{
    BatchOutcome, BatchOwner, HandlerError, Projection, ProjectionCatalog, ProjectionRunner,
    SqlProjection, WriteFence,
};
use rillflow_adapters::{EventStore, RecordedEvent};
use rillflow_benches::{fill, fill_accounts, latency, percentile};
use rillflow_core::projection::ProjectionFile;
use rillflow_core::PartitionSpec;
use rillflow_testkit::{Counter, TestDb};
use sqlx::{PgConnection, PgPool};

struct Options {
    events: usize,
    latency_samples: usize,
    rounds: usize,
    /// Only the projections whose label holds this (and the baselines).
    only: Option<String>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        events: 100_000,
        latency_samples: 200,
        rounds: 3,
        only: None,
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
            "--rounds" => o.rounds = number("--rounds")?,
            "--only" => o.only = Some(args.next().ok_or("--only needs a label fragment")?),
            other => {
                return Err(format!(
                    "unknown argument {other:?} (expected --events N, --latency-samples N, --rounds N, --only TEXT)"
                ))
            }
        }
    }
    if o.events == 0 || o.latency_samples == 0 || o.rounds == 0 {
        return Err("--events, --latency-samples and --rounds must be at least 1".into());
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
struct NoOp(String);

#[async_trait]
impl Projection for NoOp {
    fn name(&self) -> &str {
        &self.0
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

/// The first projection of `text` with every `name` in it (projection and
/// table) suffixed by `suffix`, so each round starts from scratch.
fn declared(text: &str, name: &str, suffix: &str) -> Arc<dyn Projection> {
    let text = text.replace(name, &format!("{name}{suffix}"));
    let spec = ProjectionFile::parse(&text)
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

/// A projection to measure, made afresh (its name suffixed) each time.
type Make = Box<dyn Fn(&str) -> Arc<dyn Projection>>;

/// Runs every projection in turn, `rounds` times over, each right after a
/// run of the first, the no-op baseline. Prints, per projection, each
/// round's rate and its ratio to the no-op run just before it, then the
/// medians: on this shared machine the absolute rates drift by tens of
/// percent between minutes, so those ratios are the figures to read. Before the first
/// round the log is vacuumed and analysed and read once untimed: the first
/// reader of new rows sets their hint bits, and plans made before
/// autovacuum's ANALYZE depend on when it happens to run.
async fn run_all(
    pool: &PgPool,
    runs: Vec<(&str, Make, Option<Duration>)>,
    opts: &Options,
    log: &str,
) {
    let (events, rounds) = (opts.events, opts.rounds);
    let runs: Vec<_> = runs
        .into_iter()
        .enumerate()
        .filter(|(i, (label, _, _))| {
            *i == 0 || opts.only.as_deref().is_none_or(|o| label.contains(o))
        })
        .map(|(_, run)| run)
        .collect();
    if runs.len() == 1 && opts.only.is_some() {
        return;
    }
    sqlx::query("VACUUM (ANALYZE)")
        .execute(pool)
        .await
        .expect("vacuum");
    throughput(
        pool,
        Arc::new(NoOp(format!("bench_{log}_warmup"))),
        events,
        None,
    )
    .await;
    let mut rates = vec![Vec::new(); runs.len()];
    let mut ratios = vec![Vec::new(); runs.len()];
    for round in 0..rounds {
        for (i, (_, make, budget)) in runs.iter().enumerate().skip(1) {
            // The baseline right before each projection: on this shared
            // machine the rates drift within a round, and a ratio to a
            // no-op measured minutes earlier would carry that drift.
            let suffix = format!("_r{round}_{i}");
            let base = throughput(pool, (runs[0].1)(&suffix), events, None).await;
            rates[0].push(base);
            ratios[0].push(1.0);
            let rate = throughput(pool, make(&suffix), events, *budget).await;
            rates[i].push(rate);
            ratios[i].push(rate / base);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    for (i, (label, _, _)) in runs.iter().enumerate() {
        let each: Vec<String> = rates[i]
            .iter()
            .zip(&ratios[i])
            .map(|(r, x)| format!("{r:.0} ({x:.2}x)"))
            .collect();
        println!(
            "{log}: {label}: {events} events, batches of 500: median {:.0} events/s, median {:.2}x the no-op [rounds: {}]",
            median(&rates[i]),
            median(&ratios[i]),
            each.join(", ")
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
    let runs: Vec<(&str, Make, Option<Duration>)> = vec![
        (
            "no-op",
            Box::new(|s| Arc::new(NoOp(format!("bench_noop{s}")))),
            None,
        ),
        (
            "counter (set-based apply_batch in Rust)",
            Box::new(|s| Arc::new(Counter::new(&format!("bench_counter{s}")))),
            None,
        ),
        (
            "counter (Rust, one upsert per event)",
            Box::new(|s| Arc::new(PerEvent(Counter::new(&format!("bench_counter_each{s}"))))),
            None,
        ),
        (
            "counter (declared per event, batched)",
            Box::new(|s| declared(DECLARED, "bench_declared", s)),
            None,
        ),
        (
            "counter (declared per event, one event at a time)",
            Box::new(|s| {
                Arc::new(OneByOne(declared(
                    DECLARED,
                    "bench_declared",
                    &format!("_each{s}"),
                )))
            }),
            None,
        ),
        (
            "counter (declared set-based batch_handlers)",
            Box::new(|s| declared(DECLARED_SET, "bench_declared_set", s)),
            None,
        ),
        (
            "counter (declared per event, batched, 1 poison per 10,000)",
            Box::new(|s| declared(DECLARED_POISON, "bench_declared_poison", s)),
            None,
        ),
        (
            "counter (set-based apply_batch in Rust, batch budget armed)",
            Box::new(|s| Arc::new(Counter::new(&format!("bench_counter_budget{s}")))),
            budget,
        ),
        (
            "no-op (batch budget armed)",
            Box::new(|s| Arc::new(NoOp(format!("bench_noop_budget{s}")))),
            budget,
        ),
    ];
    run_all(&pool, runs, &opts, "counted").await;

    let mut bank = TestDb::migrated().await;
    let bank_pool = bank.pool_of(4).await;
    eprintln!("appending {} bank events...", opts.events);
    fill_accounts(&EventStore::new(bank_pool.clone()), opts.events).await;
    let example: &'static str = include_str!("../../../examples/projections.toml");
    // The example's first projection, as it is but for the name.
    let balances = |suffix: &str| -> Arc<dyn Projection> {
        let text = example.replace("account_balances", &format!("account_balances{suffix}"));
        let file = ProjectionFile::parse(&text).expect("the example file parses");
        Arc::new(SqlProjection::new(file.projections[0].clone()))
    };
    let runs: Vec<(&str, Make, Option<Duration>)> = vec![
        (
            "no-op",
            Box::new(|s| Arc::new(NoOp(format!("bench_bank_noop{s}")))),
            None,
        ),
        (
            "account_balances (batched)",
            Box::new(move |s| balances(s)),
            None,
        ),
        (
            "account_balances (batched, batch budget armed)",
            Box::new(move |s| balances(&format!("_budget{s}"))),
            budget,
        ),
        (
            "account_balances (one event at a time)",
            Box::new(move |s| Arc::new(OneByOne(balances(&format!("_each{s}"))))),
            None,
        ),
    ];
    run_all(&bank_pool, runs, &opts, "bank").await;

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
