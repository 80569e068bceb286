//! One size of the scale benchmark, from the empty database to the
//! mover; every figure goes into the table.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rillflow_adapters::{AppendRequest, EventStore, NewEvent};
use rillflow_testkit::TestDb;
use sqlx::PgPool;
use uuid::Uuid;

use super::load::{self, bytes_per_event, mark_archived};
use super::measure::{self, WRITERS};
use super::procs::{self, Daemon, BEHIND, CAUGHT, COMMANDS};
use super::report::{Table, Unit};
use crate::raw::{create_baselines, payload};

/// Events of the log a catch-up is timed over (all of a smaller log).
const CATCH_UP_OVER: i64 = 200_000;

async fn vacuum(pool: &PgPool) -> Result<()> {
    sqlx::query("VACUUM ANALYZE").execute(pool).await?;
    Ok(())
}

/// Long-lived streams to append to and read, picked at random.
async fn sample_streams(pool: &PgPool) -> Result<Vec<Uuid>> {
    let streams: Vec<Uuid> = sqlx::query_scalar(
        "SELECT stream_id FROM rf_streams WHERE archived_at IS NULL ORDER BY random() LIMIT 2000",
    )
    .fetch_all(pool)
    .await?;
    if streams.is_empty() {
        bail!("no long-lived streams were loaded");
    }
    Ok(streams)
}

async fn last_position(pool: &PgPool) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT last_value FROM rf_events_position_seq")
            .fetch_one(pool)
            .await?,
    )
}

/// Loads a log of `events` events into a database of its own and puts
/// every figure of it in `table`'s column `col`.
pub async fn one_size(
    bin: &Path,
    mover_budget: Duration,
    table: &mut Table,
    col: usize,
    label: &str,
    events: u64,
) -> Result<()> {
    let mut db = TestDb::migrated().await;
    let url = db.url.clone();
    let pool = db.pool_of(WRITERS as u32 + 4).await;
    create_baselines(&pool).await;

    let loaded = load::load(&pool, events, label).await?;
    table.set(
        "bulk load, real batch appends (events/s)",
        Unit::KiloPerSec,
        col,
        Some(loaded.events as f64 / loaded.seconds),
    );
    mark_archived(&pool, &loaded.archived).await?;
    let archived_events = loaded.archived.len() * load::ARCHIVED_STREAM_EVENTS;
    vacuum(&pool).await?;
    let (heap, indexes) = bytes_per_event(&pool, events).await?;
    table.set("table bytes per event", Unit::Bytes, col, Some(heap));
    table.set("index bytes per event", Unit::Bytes, col, Some(indexes));

    let targets = sample_streams(&pool).await?;
    eprintln!("  appends");
    let single = measure::single_appends(&pool, &targets).await?;
    table.set(
        "single-event appends × 8",
        Unit::KiloPerSec,
        col,
        Some(single.rillflow),
    );
    table.set(
        "raw single-row INSERT × 8",
        Unit::KiloPerSec,
        col,
        Some(single.raw),
    );
    table.set(
        "single appends / raw",
        Unit::Ratio,
        col,
        Some(single.rillflow / single.raw),
    );
    let batch = measure::batch_appends(&pool).await?;
    table.set(
        "100-event appends × 8",
        Unit::KiloPerSec,
        col,
        Some(batch.rillflow),
    );
    table.set(
        "raw 100-row INSERT × 8",
        Unit::KiloPerSec,
        col,
        Some(batch.raw),
    );
    table.set(
        "batch appends / raw",
        Unit::Ratio,
        col,
        Some(batch.rillflow / batch.raw),
    );

    eprintln!("  reads");
    let stream = measure::stream_reads(&pool, &targets).await?;
    table.set(
        "stream read (100 events) p50",
        Unit::Ms,
        col,
        Some(stream.p50),
    );
    table.set(
        "stream read (100 events) p99",
        Unit::Ms,
        col,
        Some(stream.p99),
    );
    let global = measure::global_reads(&pool, events).await?;
    table.set(
        "global page (500 events) p50",
        Unit::Ms,
        col,
        Some(global.p50),
    );
    table.set(
        "global page (500 events) p99",
        Unit::Ms,
        col,
        Some(global.p99),
    );

    let work = std::env::temp_dir().join(format!("rillflow-scale-{}-{label}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let caught_file = procs::projection_file(&work, CAUGHT)?;
    let behind_file = procs::projection_file(&work, BEHIND)?;
    let last = last_position(&pool).await?;
    eprintln!("  catch-up under the daemon (log in {})", work.display());
    let daemon = Daemon::start(bin, &url, &caught_file, &work).await?;
    let rate = procs::catch_up(&pool, CAUGHT, CATCH_UP_OVER.min(last), last).await?;
    table.set(
        "catch-up from 0 (first 200 K events; declared set-based counter)",
        Unit::KiloPerSec,
        col,
        Some(rate),
    );
    endpoints(table, col, daemon.port, "caught up").await;
    eprintln!("  commands, projection caught up");
    commands(table, col, bin, &url, CAUGHT, "caught up");

    // A second projection, registered by one batch and then set back to
    // the start: the whole log behind. The daemon does not run it.
    let behind = behind_file.to_string_lossy().into_owned();
    procs::run(
        bin,
        &url,
        &[
            "projections",
            "run-once",
            "--projections",
            &behind,
            "--name",
            BEHIND,
        ],
    )?;
    procs::run(bin, &url, &["projections", "reset-checkpoint", BEHIND, "0"])?;
    endpoints(table, col, daemon.port, "one projection the log behind").await;
    eprintln!("  commands, a projection the log behind");
    commands(
        table,
        col,
        bin,
        &url,
        BEHIND,
        "one projection the log behind",
    );
    daemon.stop();

    eprintln!("  run-until-idle over 1,000 new events");
    let store = EventStore::new(pool.clone());
    let requests: Vec<AppendRequest> = targets
        .iter()
        .take(100)
        .map(|s| {
            AppendRequest::new(
                *s,
                (0..10)
                    .map(|k| NewEvent::new("ItemAdded", payload(k)))
                    .collect(),
            )
        })
        .collect();
    for r in store.append_batch(&requests).await {
        r.context("append the 1,000 new events")?;
    }
    let caught = caught_file.to_string_lossy().into_owned();
    let started = Instant::now();
    let idle = procs::run(
        bin,
        &url,
        &["projections", "run-until-idle", "--projections", &caught],
    )
    .map(|_| started.elapsed().as_secs_f64() * 1000.0);
    if let Err(e) = &idle {
        eprintln!("  {e:#}");
    }
    table.set("run-until-idle, 1,000 new events", Unit::Ms, col, idle.ok());

    eprintln!("  mover");
    let mover_log = std::env::temp_dir().join(format!("rillflow-scale-mover-{label}.log"));
    match procs::mover(bin, &url, mover_budget, &mover_log) {
        Ok(m) => {
            if m.stopped {
                eprintln!(
                    "  mover stopped after {} s, {} of {} events moved",
                    mover_budget.as_secs(),
                    m.moved,
                    archived_events
                );
            }
            table.set(
                "mover: archived events",
                Unit::Count,
                col,
                Some(archived_events as f64),
            );
            table.set(
                "mover: events moved",
                Unit::Count,
                col,
                Some(m.moved as f64),
            );
            table.set("mover: batches", Unit::Count, col, Some(m.batches as f64));
            table.set(
                "mover: overall (wall, batches of 500)",
                Unit::KiloPerSec,
                col,
                Some(m.overall),
            );
            table.set(
                "mover: first timed batch (the 2nd)",
                Unit::KiloPerSec,
                col,
                Some(m.first_batch),
            );
            table.set(
                "mover: last batch",
                Unit::KiloPerSec,
                col,
                Some(m.last_batch),
            );
            table.set(
                "mover: median timed batch",
                Unit::KiloPerSec,
                col,
                Some(m.median_batch),
            );
            table.set(
                "mover: slowest timed batch",
                Unit::KiloPerSec,
                col,
                Some(m.slowest_batch),
            );
            eprintln!("  the mover's log: {}", mover_log.display());
        }
        Err(e) => eprintln!("  mover: {e:#}"),
    }
    table.set(
        "archive status, after the move",
        Unit::Ms,
        col,
        procs::best_of_3(bin, &url, &["archive", "status"]),
    );
    pool.close().await;
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

async fn endpoints(table: &mut Table, col: usize, port: u16, state: &str) {
    for path in ["/", "/metrics"] {
        let ms = procs::get_best_of_3(port, path).await;
        table.set(&format!("GET {path} ({state})"), Unit::Ms, col, ms);
    }
}

fn commands(table: &mut Table, col: usize, bin: &Path, url: &str, name: &str, state: &str) {
    let times = procs::time_commands(bin, url, name);
    for ((label, _), ms) in COMMANDS.iter().zip(times) {
        table.set(&format!("`{label}` ({state})"), Unit::Ms, col, ms);
    }
}
