//! Dynamic partition ownership with real `rillflow` workers: how long
//! partitions go unowned when workers start, join, leave, crash and when the
//! partition count changes, and how catching up scales with workers.
//!
//! ```sh
//! cargo build --release -p rillflow
//! cargo run --release -p rillflow-benches --bin ownership -- --runs 5 --events 50000
//! ```
//!
//! Workers run `projections run-loop --partitions auto` on
//! tests/fixtures/exactly_once.toml at heartbeat 1 s, lease ttl 3 s, grace
//! 1 s, with session leases (the default). Each
//! figure is the time from the action (process start, signal, command)
//! until the database shows the expected shares, polled every 5 ms. Uses
//! `DATABASE_URL` when set, else the tests' local cluster.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rillflow_adapters::ownership::PgOwnershipStore;
use rillflow_adapters::projection::ProjectionCatalog;
use rillflow_adapters::EventStore;
use rillflow_benches::{fill, summary};
use rillflow_testkit::stream_counts::fixture;
use rillflow_testkit::{fast_auto_args, Process, TestDb};
use sqlx::PgPool;

const PROJECTION: &str = "stream_counts";
const POLL: Duration = Duration::from_millis(5);
const LIMIT: Duration = Duration::from_secs(60);

struct Options {
    runs: usize,
    events: usize,
    bin: PathBuf,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        runs: 5,
        events: 50_000,
        bin: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/rillflow"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |flag: &str| -> Result<usize, String> {
            let v = args.next().ok_or(format!("{flag} needs a number"))?;
            v.parse()
                .map_err(|_| format!("{flag}: {v:?} is not a number"))
        };
        match arg.as_str() {
            "--runs" => o.runs = number("--runs")?,
            "--events" => o.events = number("--events")?,
            "--bin" => o.bin = args.next().ok_or("--bin needs a path")?.into(),
            other => {
                return Err(format!(
                    "unknown argument {other:?} (expected --runs N, --events N, --bin PATH)"
                ))
            }
        }
    }
    if o.runs == 0 || o.events == 0 {
        return Err("--runs and --events must be at least 1".into());
    }
    if !o.bin.is_file() {
        return Err(format!(
            "{} not found; run `cargo build --release -p rillflow` first",
            o.bin.display()
        ));
    }
    Ok(o)
}

struct Bench {
    pool: PgPool,
    url: String,
    bin: PathBuf,
    logs: PathBuf,
}

impl Bench {
    fn worker(&self, name: &str, partitions: &str) -> Process {
        let file = fixture();
        let args = fast_auto_args(&file, name, partitions);
        Process::spawn(&self.bin, name, &self.url, &args, &self.logs)
    }

    /// Time from `since` until the owners are exactly `want`.
    async fn shares(&self, want: &[(&str, usize)], since: Instant) -> Duration {
        let want: BTreeMap<String, usize> = want.iter().map(|(w, n)| (w.to_string(), *n)).collect();
        let store = PgOwnershipStore::new(self.pool.clone());
        loop {
            if let Ok(view) = store.view(PROJECTION, Duration::from_secs(3)).await {
                let mut got = BTreeMap::new();
                for owner in view.owners().into_values() {
                    *got.entry(owner).or_insert(0) += 1;
                }
                if got == want {
                    return since.elapsed();
                }
            }
            assert!(since.elapsed() < LIMIT, "shares never became {want:?}");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Time from `since` until `events` events were applied. Polls the
    /// checkpoint counters only: the status query's lag count would load
    /// the database it measures.
    async fn applied(&self, events: usize, since: Instant) -> Duration {
        loop {
            let done: Option<i64> = sqlx::query_scalar(
                "SELECT sum(processed_total)::bigint FROM rf_checkpoints WHERE projection = $1",
            )
            .bind(PROJECTION)
            .fetch_one(&self.pool)
            .await
            .unwrap_or(None);
            if done.unwrap_or(0) >= events as i64 {
                return since.elapsed();
            }
            assert!(since.elapsed() < LIMIT * 5, "never caught up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[derive(Default)]
struct Figures {
    first: Vec<Duration>,
    join: Vec<Duration>,
    leave: Vec<Duration>,
    crash: Vec<Duration>,
    repartition_cmd: Vec<Duration>,
    repartition_owned: Vec<Duration>,
    crash_of_three: Vec<Duration>,
}

/// One round of moves on a fresh database.
async fn round(bench: &Bench, f: &mut Figures) {
    let t = Instant::now();
    let _w1 = bench.worker("w1", "8");
    f.first.push(bench.shares(&[("w1", 8)], t).await);
    let t = Instant::now();
    let w2 = bench.worker("w2", "8");
    f.join.push(bench.shares(&[("w1", 4), ("w2", 4)], t).await);
    w2.signal("TERM");
    let t = Instant::now();
    f.leave.push(bench.shares(&[("w1", 8)], t).await);
    let w2 = bench.worker("w2", "8");
    bench.shares(&[("w1", 4), ("w2", 4)], Instant::now()).await;
    w2.signal("KILL");
    let t = Instant::now();
    f.crash.push(bench.shares(&[("w1", 8)], t).await);
    let t = Instant::now();
    let out = std::process::Command::new(&bench.bin)
        .args([
            "projections",
            "repartition",
            PROJECTION,
            "--partitions",
            "12",
        ])
        .env("DATABASE_URL", &bench.url)
        .output()
        .expect("run repartition");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    f.repartition_cmd.push(t.elapsed());
    f.repartition_owned
        .push(bench.shares(&[("w1", 12)], t).await);
    // One of three dies: w2 waits on w3's session (the next by name) and
    // must tell w1 too.
    let _w2 = bench.worker("w2", "12");
    let w3 = bench.worker("w3", "12");
    bench
        .shares(&[("w1", 4), ("w2", 4), ("w3", 4)], Instant::now())
        .await;
    w3.signal("KILL");
    let t = Instant::now();
    f.crash_of_three
        .push(bench.shares(&[("w1", 6), ("w2", 6)], t).await);
}

/// Time to apply `events` already in the log with `workers` workers over
/// `partitions` partitions.
async fn catch_up(opts: &Options, workers: usize, partitions: &str) -> Duration {
    let mut db = TestDb::migrated().await;
    let pool = db.pool().await;
    fill(&EventStore::new(pool.clone()), opts.events).await;
    let bench = Bench {
        pool,
        url: db.url.clone(),
        bin: opts.bin.clone(),
        logs: std::env::temp_dir().join(format!("rillflow-ownership-{}", std::process::id())),
    };
    let t = Instant::now();
    let _workers: Vec<Process> = (0..workers)
        .map(|i| bench.worker(&format!("c{i}"), partitions))
        .collect();
    let took = bench.applied(opts.events, t).await;
    let status = ProjectionCatalog::new(bench.pool.clone())
        .status(PROJECTION)
        .await
        .expect("status");
    assert_eq!(
        status.errors_total(),
        0,
        "every event applied once: {status:?}"
    );
    took
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
    let mut f = Figures::default();
    for run in 0..opts.runs {
        let mut db = TestDb::migrated().await;
        let bench = Bench {
            pool: db.pool().await,
            url: db.url.clone(),
            bin: opts.bin.clone(),
            logs: std::env::temp_dir()
                .join(format!("rillflow-ownership-{}", std::process::id()))
                .join(format!("run-{run}")),
        };
        round(&bench, &mut f).await;
        eprintln!("run {} of {} done", run + 1, opts.runs);
    }
    println!("ownership moves, heartbeat 1 s, ttl 3 s, 8 partitions:");
    summary("first worker owns all 8", f.first);
    summary("second worker joins, shares 4/4", f.join);
    summary("graceful leave (SIGTERM), survivor owns 8", f.leave);
    summary("crash (SIGKILL), survivor owns 8", f.crash);
    summary("repartition 8 -> 12, command", f.repartition_cmd);
    summary("repartition 8 -> 12, all 12 owned", f.repartition_owned);
    summary(
        "crash (SIGKILL) of one of three, survivors own 6/6",
        f.crash_of_three,
    );
    for (workers, partitions) in [(1, "1"), (1, "8"), (2, "8"), (4, "8")] {
        let d = catch_up(&opts, workers, partitions).await;
        println!(
            "catch-up of {} events, {partitions} partition(s), {workers} worker(s): {:.2} s ({:.0} events/s)",
            opts.events,
            d.as_secs_f64(),
            opts.events as f64 / d.as_secs_f64()
        );
    }
}
