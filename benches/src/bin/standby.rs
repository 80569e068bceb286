//! Projecting from a hot standby: what a catch-up costs the primary when
//! events are read there, against the same catch-up reading the primary.
//!
//! ```sh
//! cargo run --release -p rillflow-benches --bin standby -- --events 200000
//! ```
//!
//! Starts a durable local primary (stock settings) and a pg_basebackup
//! standby of it (the tests' `StandbyPair`, under `target/rillflow-standby`).
//! `--events` events are appended by 8 concurrent appenders (10 per append,
//! over 1,000 streams) while one more transaction appends and stays open
//! for 3 s. Then a
//! counting projection catches up from the start reading the primary, and
//! another one reading the standby (checkpoints and read model on the
//! primary either way). For each the primary's statistics are reset first
//! and the tuples its events tables returned are counted afterwards
//! (`seq_tup_read` and `idx_tup_fetch` of the tables, `idx_tup_read` of
//! their indexes). Then the standby-reading projection follows a second
//! load (a quarter as many events, the same appenders and open
//! transaction) while it is written. Both read models must equal the log
//! per stream (events and last version); the counter refuses a skipped or
//! repeated event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rillflow_adapters::projection::{
    BatchOutcome, BatchOwner, Projection, ProjectionCatalog, ProjectionRunner, WriteFence,
};
use rillflow_adapters::replica::ReadReplica;
use rillflow_adapters::{connect, ClusterSettings, EventStore, NewEvent, PoolConfig};
use rillflow_core::{ExpectedVersion, PartitionSpec};
use rillflow_testkit::standby::StandbyPair;
use rillflow_testkit::Counter;
use serde_json::json;
use sqlx::PgPool;
use uuid::Uuid;

const APPENDERS: usize = 8;
const PER_APPEND: usize = 10;
const STREAMS: u128 = 1_000;

fn events_arg() -> Result<usize, String> {
    let mut args = std::env::args().skip(1);
    let mut events = 200_000;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--events" => {
                let v = args.next().ok_or("--events needs a number")?;
                events = v
                    .parse()
                    .map_err(|_| format!("--events: {v:?} is not a number"))?;
            }
            other => return Err(format!("unknown argument {other:?} (expected --events N)")),
        }
    }
    if events < APPENDERS * PER_APPEND {
        return Err(format!(
            "--events must be at least {}",
            APPENDERS * PER_APPEND
        ));
    }
    Ok(events)
}

/// Tuples the events tables (and their indexes, partitions included)
/// returned on this server since its statistics were last reset. Every
/// session that read them must have ended: an idle backend may keep its
/// counts to itself for a while, an ending one reports them.
async fn events_tuples_read(pool: &PgPool) -> i64 {
    tokio::time::sleep(Duration::from_millis(500)).await;
    sqlx::query_scalar(
        "SELECT (SELECT coalesce(sum(seq_tup_read + coalesce(idx_tup_fetch, 0)), 0)
                   FROM pg_stat_user_tables WHERE relname LIKE 'events%')::bigint
              + (SELECT coalesce(sum(idx_tup_read), 0)
                   FROM pg_stat_user_indexes WHERE relname LIKE 'events%')::bigint",
    )
    .fetch_one(pool)
    .await
    .expect("statistics")
}

async fn reset_stats(pool: &PgPool) {
    sqlx::query("SELECT pg_stat_reset()")
        .execute(pool)
        .await
        .expect("reset statistics");
}

async fn load(pool: &PgPool, events: usize) -> Duration {
    let start = Instant::now();
    let held = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            EventStore::append_in(
                &mut tx,
                Uuid::from_u128(STREAMS + 1),
                ExpectedVersion::Any,
                &[NewEvent::new("Held", json!({ "open_for_s": 3 }))],
                &Default::default(),
            )
            .await
            .unwrap();
            tokio::time::sleep(Duration::from_secs(3)).await;
            tx.commit().await.unwrap();
        })
    };
    let per_appender = events / APPENDERS / PER_APPEND;
    let appenders: Vec<_> = (0..APPENDERS)
        .map(|a| {
            let store = EventStore::new(pool.clone());
            tokio::spawn(async move {
                for i in 0..per_appender {
                    let stream = Uuid::from_u128(((a * per_appender + i) as u128) % STREAMS + 1);
                    let batch: Vec<NewEvent> = (0..PER_APPEND)
                        .map(|k| NewEvent::new("Tick", json!({ "a": a, "i": i, "k": k })))
                        .collect();
                    store
                        .append(stream, ExpectedVersion::Any, &batch, &Default::default())
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for a in appenders {
        a.await.unwrap();
    }
    held.await.unwrap();
    start.elapsed()
}

/// Catches `name` up from the start on sessions of its own, closed before
/// it returns (so their statistics are reported); returns the time it took.
async fn catch_up(url: &str, name: &str, replica: Option<ReadReplica>) -> Duration {
    let primary = &connect(url, &PoolConfig::default()).await.unwrap();
    let projection: Arc<dyn Projection> = Arc::new(Counter::new(name));
    let catalog = ProjectionCatalog::new(primary.clone());
    catalog.setup(projection.as_ref()).await.expect("setup");
    catalog
        .register(name, PartitionSpec::WHOLE)
        .await
        .expect("register");
    let mut runner = ProjectionRunner::new(projection, PartitionSpec::WHOLE, BatchOwner::default());
    let runner_replica = replica.clone();
    if let Some(replica) = replica {
        runner = runner.reading_from(replica);
    }
    let fence = WriteFence::Unfenced(primary.clone());
    let start = Instant::now();
    loop {
        match runner.run_batch(&fence).await.expect("batch") {
            BatchOutcome::Applied { .. } => {}
            BatchOutcome::Idle => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    let took = start.elapsed();
    if let Some(replica) = runner_replica {
        replica.pool().close().await;
    }
    primary.close().await;
    took
}

/// Runs `from_standby` batches until `done` and then idle: the projection
/// a daemon would run while events arrive. Returns the events it read.
async fn follow(
    url: String,
    replica: ReadReplica,
    done: tokio::sync::watch::Receiver<bool>,
) -> usize {
    let primary = connect(&url, &PoolConfig::default()).await.unwrap();
    let projection: Arc<dyn Projection> = Arc::new(Counter::new("from_standby"));
    let runner = ProjectionRunner::new(projection, PartitionSpec::WHOLE, BatchOwner::default())
        .reading_from(replica);
    let fence = WriteFence::Unfenced(primary.clone());
    let mut read = 0;
    loop {
        match runner.run_batch(&fence).await.expect("batch") {
            BatchOutcome::Applied { read: r, .. } => read += r,
            BatchOutcome::Idle | BatchOutcome::HeldBack => {
                if *done.borrow() && caught_up(&primary, &runner).await {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    primary.close().await;
    read
}

/// Whether the projection's checkpoint has reached the primary's newest
/// event (the standby may still be replaying it).
async fn caught_up(primary: &PgPool, runner: &ProjectionRunner) -> bool {
    let status = ProjectionCatalog::new(primary.clone())
        .status(runner.projection().name())
        .await
        .unwrap();
    status.lag() == 0
}

/// Per stream: events and last version, of the log or of a counter.
async fn per_stream(pool: &PgPool, sql: &str) -> BTreeMap<Uuid, (i64, i64)> {
    let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(sql).fetch_all(pool).await.unwrap();
    rows.into_iter().map(|(s, n, v)| (s, (n, v))).collect()
}

#[tokio::main]
async fn main() {
    let events = match events_arg() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let pair = StandbyPair::start_with("bench", ClusterSettings::for_users()).await;
    let (url, standby_url) = (pair.primary_url(), pair.standby_url());
    let primary = connect(&url, &PoolConfig::default()).await.unwrap();
    let standby = connect(&standby_url, &PoolConfig::default()).await.unwrap();
    let loader = connect(&url, &PoolConfig::default()).await.unwrap();
    let loaded = load(&loader, events).await;
    loader.close().await;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&primary)
        .await
        .unwrap();
    println!(
        "loaded {total} events with {APPENDERS} appenders and a transaction open 3 s: {:.1} s",
        loaded.as_secs_f64()
    );
    let target = ReadReplica::primary_position(&primary).await.unwrap();
    ReadReplica::open(standby.clone(), &primary)
        .await
        .unwrap()
        .wait_replayed(target, Duration::from_secs(300))
        .await
        .expect("standby replays the load");

    reset_stats(&primary).await;
    let from_primary = catch_up(&url, "from_primary", None).await;
    let primary_reads = events_tuples_read(&primary).await;

    reset_stats(&primary).await;
    reset_stats(&standby).await;
    let reads = connect(&standby_url, &PoolConfig::default()).await.unwrap();
    let replica = ReadReplica::open(reads, &primary).await.unwrap();
    let from_standby = catch_up(&url, "from_standby", Some(replica)).await;
    let standby_primary_reads = events_tuples_read(&primary).await;
    let standby_reads = events_tuples_read(&standby).await;

    // Live: the standby-reading projection follows a second load as it is
    // written, 8 appenders and a transaction held open 3 s again.
    let live = {
        let reads = connect(&standby_url, &PoolConfig::default()).await.unwrap();
        let replica = ReadReplica::open(reads, &primary).await.unwrap();
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(follow(url.clone(), replica, done_rx));
        let loader = connect(&url, &PoolConfig::default()).await.unwrap();
        load(&loader, events / 4).await;
        loader.close().await;
        done_tx.send(true).unwrap();
        task.await.unwrap()
    };
    println!("live: the standby-reading projection applied {live} events while they were written");
    catch_up(&url, "from_primary", None).await;

    let log = per_stream(
        &primary,
        "SELECT stream_id, count(*), max(version) FROM events GROUP BY stream_id",
    )
    .await;
    for name in ["from_primary", "from_standby"] {
        let model = per_stream(
            &primary,
            &format!("SELECT stream_id, events, last_version FROM {name}"),
        )
        .await;
        assert_eq!(model, log, "{name}: the read model differs from the log");
    }
    println!("both read models equal the log ({} streams)", log.len());
    println!("| catch-up of {total} events | time | tuples read from the primary's events tables | from the standby's |");
    println!("|---|---|---|---|");
    println!(
        "| reading the primary | {:.2} s | {primary_reads} | - |",
        from_primary.as_secs_f64()
    );
    println!(
        "| reading the standby | {:.2} s | {standby_primary_reads} | {standby_reads} |",
        from_standby.as_secs_f64()
    );
    println!(
        "primary tuples, standby catch-up / primary catch-up: {:.4} %",
        100.0 * standby_primary_reads as f64 / primary_reads.max(1) as f64
    );
    primary.close().await;
    standby.close().await;
    drop(pair);
}
