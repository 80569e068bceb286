//! How rillflow's figures change as the log grows: appends, reads,
//! catch-up, operator commands, the daemon's endpoints and the mover at
//! each size of log.
//!
//! ```sh
//! cargo build --release -p rillflow -p rillflow-benches
//! DATABASE_URL=postgres://… cargo run --release -p rillflow-benches --bin scale -- \
//!     --sizes 100k,1m,10m [--out FILE] [--bin PATH] [--mover-secs 600]
//! ```
//!
//! Each size gets a database of its own (created from the migrated
//! template, dropped after), so sizes do not see each other's rows. The
//! log is loaded with real batch appends (`scale::load`), a tenth of it in
//! 4-event streams then marked archived, and vacuumed. What follows is
//! measured on it, in this order (docs/performance.md, "Scale (issue 25)"):
//! appends against a raw INSERT baseline, stream and global reads, a
//! projection catching up from the start under a running daemon, the
//! daemon's `GET /` and `GET /metrics` and six operator commands with that
//! projection caught up and again with a second projection the whole log
//! behind, `run-until-idle` over 1,000 new events, and the mover over the
//! archived streams (stopped after `--mover-secs`, 600 by default, and
//! then reported over what it moved). One markdown table goes to stdout (and to `--out`,
//! rewritten after every size so a long run keeps what it measured).
//!
//! Uses `DATABASE_URL` when set, else a local cluster with stock settings
//! (fsync and synchronous_commit on) under `target/rillflow-bench-pg`, as
//! the append benchmark does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rillflow_adapters::{AppendRequest, ClusterSettings, EventStore, LocalCluster, NewEvent};
use rillflow_benches::raw::{create_baselines, payload};
use rillflow_benches::scale::load::{self, bytes_per_event, mark_archived};
use rillflow_benches::scale::measure::{self, WRITERS};
use rillflow_benches::scale::procs::{self, Daemon, BEHIND, CAUGHT, COMMANDS};
use rillflow_benches::scale::report::{Table, Unit};
use rillflow_testkit::TestDb;
use sqlx::{Connection, PgPool};
use uuid::Uuid;

/// Events of the log a catch-up is timed over (all of a smaller log).
const CATCH_UP_OVER: i64 = 200_000;

struct Options {
    /// (column label, events)
    sizes: Vec<(String, u64)>,
    out: Option<PathBuf>,
    bin: PathBuf,
    /// The mover is stopped after this long.
    mover_budget: Duration,
}

fn parse_size(s: &str) -> Result<(String, u64)> {
    let lower = s.trim().to_ascii_lowercase();
    let (digits, factor) = match lower.strip_suffix('k') {
        Some(d) => (d, 1_000),
        None => match lower.strip_suffix('m') {
            Some(d) => (d, 1_000_000),
            None => (lower.as_str(), 1),
        },
    };
    let n: u64 = digits
        .parse()
        .with_context(|| format!("size {s:?}: expected a number with an optional k or m"))?;
    Ok((s.trim().to_ascii_uppercase(), n * factor))
}

fn options() -> Result<Options> {
    let mut sizes = vec![parse_size("100k")?];
    let mut out = None;
    let mut bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/rillflow");
    let mut mover_budget = Duration::from_secs(600);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sizes" => {
                let v = args.next().context("--sizes needs a list, e.g. 100k,1m")?;
                sizes = v.split(',').map(parse_size).collect::<Result<_>>()?;
            }
            "--out" => out = Some(args.next().context("--out needs a file")?.into()),
            "--bin" => bin = args.next().context("--bin needs a path")?.into(),
            "--mover-secs" => {
                let v = args.next().context("--mover-secs needs a number")?;
                let secs: u64 = v
                    .parse()
                    .with_context(|| format!("--mover-secs: {v:?} is not a number"))?;
                mover_budget = Duration::from_secs(secs);
            }
            other => bail!(
                "unknown argument {other:?} (expected --sizes LIST, --out FILE, --bin PATH, --mover-secs S)"
            ),
        }
    }
    if sizes.is_empty() {
        bail!("--sizes is empty");
    }
    if !bin.is_file() {
        bail!(
            "{} not found; run `cargo build --release -p rillflow` first",
            bin.display()
        );
    }
    Ok(Options {
        sizes,
        out,
        bin,
        mover_budget,
    })
}

/// `DATABASE_URL`, else the durable local bench cluster (started here).
fn choose_server() -> Result<()> {
    if std::env::var_os("DATABASE_URL").is_some() {
        eprintln!("scale bench on DATABASE_URL");
        return Ok(());
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rillflow-bench-pg");
    let cluster = LocalCluster::start(&dir, &ClusterSettings::for_users())
        .context("start the durable bench cluster")?;
    eprintln!(
        "scale bench on a durable local cluster in {} (stop it with `rillflow db stop --dir {}`)",
        dir.display(),
        dir.display()
    );
    // Before any other thread runs: the runtime is made after this.
    std::env::set_var("DATABASE_URL", cluster.url("postgres"));
    Ok(())
}

fn main() -> Result<()> {
    let opts = options()?;
    choose_server()?;
    tokio::runtime::Runtime::new()?.block_on(run(opts))
}

async fn run(opts: Options) -> Result<()> {
    let labels: Vec<String> = opts.sizes.iter().map(|(l, _)| l.clone()).collect();
    let mut table = Table::new(&labels);
    let header = header().await;
    for (column, (label, events)) in opts.sizes.iter().enumerate() {
        eprintln!("size {label} ({events} events)");
        let started = Instant::now();
        one_size(&opts, &mut table, column, label, *events).await?;
        eprintln!(
            "size {label} done in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        if let Some(out) = &opts.out {
            std::fs::write(out, format!("{header}\n{}", table.markdown()))
                .with_context(|| format!("write {}", out.display()))?;
        }
    }
    println!("{header}\n{}", table.markdown());
    Ok(())
}

/// Date, commit and server, for the record.
async fn header() -> String {
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let url = std::env::var("DATABASE_URL").unwrap_or_default();
    let server = match sqlx::PgConnection::connect(&url).await {
        Ok(mut conn) => sqlx::query_scalar::<_, String>("SELECT version()")
            .fetch_one(&mut conn)
            .await
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    format!(
        "scale bench, {}, commit {commit}, {}\n",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        server.split(" on ").next().unwrap_or(&server)
    )
}

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

async fn one_size(
    opts: &Options,
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
    let daemon = Daemon::start(&opts.bin, &url, &caught_file, &work).await?;
    let rate = procs::catch_up(&pool, CAUGHT, CATCH_UP_OVER.min(last), last).await?;
    table.set(
        "catch-up from 0 (first 200 K events; declared set-based counter)",
        Unit::KiloPerSec,
        col,
        Some(rate),
    );
    endpoints(table, col, daemon.port, "caught up").await;
    eprintln!("  commands, projection caught up");
    commands(table, col, &opts.bin, &url, CAUGHT, "caught up");

    // A second projection, registered by one batch and then set back to
    // the start: the whole log behind. The daemon does not run it.
    let behind = behind_file.to_string_lossy().into_owned();
    procs::run(
        &opts.bin,
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
    procs::run(
        &opts.bin,
        &url,
        &["projections", "reset-checkpoint", BEHIND, "0"],
    )?;
    endpoints(table, col, daemon.port, "one projection the log behind").await;
    eprintln!("  commands, a projection the log behind");
    commands(
        table,
        col,
        &opts.bin,
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
        &opts.bin,
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
    match procs::mover(&opts.bin, &url, opts.mover_budget, &mover_log) {
        Ok(m) => {
            if m.stopped {
                eprintln!(
                    "  mover stopped after {} s, {} of {} events moved",
                    opts.mover_budget.as_secs(),
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
        procs::best_of_3(&opts.bin, &url, &["archive", "status"]),
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
