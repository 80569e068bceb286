//! Append throughput as ratios to raw INSERTs, and append→projected latency,
//! on a durable server and on the tests' fsync-off cluster.
//!
//! ```sh
//! cargo run --release -p rillflow-benches --bin append -- --seconds 5 --rounds 3
//! ```
//!
//! Each workload runs `--seconds` at a time, all of them in turn, `--rounds`
//! times over (so that drift of the machine touches every workload alike);
//! the figure is the median round. In the same database:
//! - 100-row INSERTs into `raw_indexed` vs `rf_append` of 100 events, 8 writers;
//! - 1-row INSERTs into `raw_indexed` vs `rf_append` of one event, 8 writers;
//! - one event per append through the coalescing writer from 64 and from 8
//!   tasks, against the same 1-row INSERTs from 8 writers.
//!
//! Then append→projected latency (see `rillflow_benches::latency`) on an idle
//! worker and while 8 writers append single events.
//!
//! `--server durable` (a local cluster with stock settings under
//! `target/rillflow-bench-pg`, as `rillflow db start` makes), `--server test`
//! (the tests' cluster, fsync off; or `DATABASE_URL`), or `--server both`
//! (the default: this command again for each).

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rillflow_adapters::{
    AppendOptions, AppendWriter, ClusterSettings, EventStore, LocalCluster, NewEvent, WriterConfig,
};
use rillflow_benches::raw::{create_baselines, live_stream, payload, raw_insert, LIVE_STREAMS};
use rillflow_benches::{latency, percentile};
use rillflow_core::ExpectedVersion;
use rillflow_testkit::TestDb;
use uuid::Uuid;

const WRITERS: usize = 8;
const BATCH: usize = 100;

struct Options {
    seconds: u64,
    rounds: usize,
    samples: usize,
    server: String,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        seconds: 5,
        rounds: 3,
        samples: 200,
        server: "both".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, v: String| -> Result<usize, String> {
            v.parse()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{name}: {v:?} is not a positive number"))
        };
        match arg.as_str() {
            "--seconds" => o.seconds = number("--seconds", value("--seconds")?)? as u64,
            "--rounds" => o.rounds = number("--rounds", value("--rounds")?)?,
            "--latency-samples" => {
                o.samples = number("--latency-samples", value("--latency-samples")?)?
            }
            "--server" => {
                o.server = value("--server")?;
                if !["durable", "test", "both"].contains(&o.server.as_str()) {
                    return Err(format!(
                        "--server: {:?} is not durable, test or both",
                        o.server
                    ));
                }
            }
            other => {
                return Err(format!(
                    "unknown argument {other:?} (expected --seconds N, --rounds N, \
                     --latency-samples N, --server durable|test|both)"
                ))
            }
        }
    }
    Ok(o)
}

fn main() {
    let opts = options().unwrap_or_else(|e| {
        eprintln!("error: {e}");
        std::process::exit(2);
    });
    if opts.server == "both" {
        for server in ["durable", "test"] {
            let args: Vec<String> = std::env::args().skip(1).collect();
            let status = std::process::Command::new(std::env::current_exe().expect("own path"))
                .args(args)
                .args(["--server", server])
                .status()
                .expect("run the benchmark");
            if !status.success() {
                std::process::exit(1);
            }
        }
        return;
    }
    if opts.server == "durable" {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/rillflow-bench-pg");
        let cluster = LocalCluster::start(&dir, &ClusterSettings::for_users())
            .expect("start the durable bench cluster");
        // Before any other thread exists: the runtime is made after this.
        std::env::set_var("DATABASE_URL", cluster.url("postgres"));
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(run(opts));
}

/// The figures of one workload over the rounds.
struct Workload {
    label: &'static str,
    unit: &'static str,
    baseline: Option<usize>,
    rates: Vec<f64>,
}

async fn run(opts: Options) {
    let mut db = TestDb::migrated().await;
    let pool = db.pool_of(WRITERS as u32 + 8).await;
    create_baselines(&pool).await;
    let store = EventStore::new(pool.clone());
    let writer = store.writer(WriterConfig::default());
    let (server, settings): (String, String) = sqlx::query_as(
        "SELECT current_setting('server_version'),
                format('fsync=%s synchronous_commit=%s', current_setting('fsync'),
                       current_setting('synchronous_commit'))",
    )
    .fetch_one(&pool)
    .await
    .expect("server settings");
    eprintln!("seeding {LIVE_STREAMS} live streams...");
    seed(&writer).await;

    let mut work = vec![
        Workload::new("raw_indexed, 100-row INSERT, 8 writers", "events/s", None),
        Workload::new("rf_append, 100 events, 8 writers", "events/s", Some(0)),
        Workload::new("raw_indexed, 1-row INSERT, 8 writers", "rows/s", None),
        Workload::new("rf_append, 1 event, 8 writers", "events/s", Some(2)),
        Workload::new("coalescing writer, 1 event, 64 tasks", "events/s", Some(2)),
        Workload::new("coalescing writer, 1 event, 8 tasks", "events/s", Some(2)),
    ];
    let secs = Duration::from_secs(opts.seconds);
    let next = Arc::new(AtomicU64::new(1));
    for round in 0..opts.rounds {
        eprintln!("round {} of {}...", round + 1, opts.rounds);
        let p = pool.clone();
        let n = next.clone();
        let raw_batches = timed(secs, WRITERS, move || {
            let (p, n) = (p.clone(), n.clone());
            async move {
                let stream = Uuid::from_u128(n.fetch_add(1, Ordering::Relaxed) as u128);
                raw_insert(p, "raw_indexed", stream, BATCH).await
            }
        });
        work[0].rates.push(raw_batches.await * BATCH as f64);
        let (s, n) = (store.clone(), next.clone());
        let batches = timed(secs, WRITERS, move || {
            let (s, n) = (s.clone(), n.clone());
            async move {
                let stream = Uuid::from_u128(n.fetch_add(1, Ordering::Relaxed) as u128);
                let events: Vec<NewEvent> = (0..BATCH)
                    .map(|i| NewEvent::new("ItemAdded", payload(i)))
                    .collect();
                s.append(stream, ExpectedVersion::Any, &events, &Default::default())
                    .await
                    .expect("append");
            }
        });
        work[1].rates.push(batches.await * BATCH as f64);
        let (p, n) = (pool.clone(), next.clone());
        let raw_single = timed(secs, WRITERS, move || {
            let (p, n) = (p.clone(), n.clone());
            async move {
                raw_insert(
                    p,
                    "raw_indexed",
                    live_stream(n.fetch_add(1, Ordering::Relaxed)),
                    1,
                )
                .await
            }
        });
        work[2].rates.push(raw_single.await);
        let (s, n) = (store.clone(), next.clone());
        let single = timed(secs, WRITERS, move || {
            let (s, n) = (s.clone(), n.clone());
            async move {
                let stream = live_stream(n.fetch_add(1, Ordering::Relaxed));
                let e = [NewEvent::new("ItemAdded", payload(0))];
                s.append(stream, ExpectedVersion::Any, &e, &Default::default())
                    .await
                    .expect("append");
            }
        });
        work[3].rates.push(single.await);
        for (k, tasks) in [(4, 64), (5, WRITERS)] {
            let (w, n) = (writer.clone(), next.clone());
            let coalesced = timed(secs, tasks, move || {
                let (w, n) = (w.clone(), n.clone());
                async move {
                    let stream = live_stream(n.fetch_add(1, Ordering::Relaxed));
                    let e = vec![NewEvent::new("ItemAdded", payload(0))];
                    w.append(stream, ExpectedVersion::Any, e, AppendOptions::default())
                        .await
                        .expect("append");
                }
            });
            work[k].rates.push(coalesced.await);
        }
    }
    println!(
        "\nPostgreSQL {server} ({settings}); {} rounds of {} s, median round",
        opts.rounds, opts.seconds
    );
    println!("| workload | rate | ratio | rounds |");
    println!("|---|---|---|---|");
    for w in &work {
        let median = w.median();
        let ratio = match w.baseline {
            Some(b) => format!("{:.2}× {}", median / work[b].median(), work[b].label),
            None => "baseline".into(),
        };
        let rounds: Vec<String> = w.rates.iter().map(|r| format!("{r:.0}")).collect();
        println!(
            "| {} | {median:.0} {} | {ratio} | {} |",
            w.label,
            w.unit,
            rounds.join(" ")
        );
    }
    for (label, writers) in [("idle worker", 0), ("8 writers appending", WRITERS)] {
        let mut db = TestDb::migrated().await;
        let pool = db.pool_of(WRITERS as u32 + 4).await;
        let mut lat = latency(&pool, opts.samples, writers).await;
        lat.sort_by(|a, b| a.total_cmp(b));
        println!(
            "append→projected, {label}: samples {}, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            lat.len(),
            percentile(&lat, 0.5),
            percentile(&lat, 0.99),
            lat.last().unwrap()
        );
    }
}

impl Workload {
    fn new(label: &'static str, unit: &'static str, baseline: Option<usize>) -> Self {
        Workload {
            label,
            unit,
            baseline,
            rates: Vec::new(),
        }
    }

    fn median(&self) -> f64 {
        let mut r = self.rates.clone();
        r.sort_by(|a, b| a.total_cmp(b));
        percentile(&r, 0.5)
    }
}

/// One append to each live stream, through the writer.
async fn seed(writer: &AppendWriter) {
    let tasks: Vec<_> = (0..64u64)
        .map(|t| {
            let writer = writer.clone();
            tokio::spawn(async move {
                for n in (t..LIVE_STREAMS).step_by(64) {
                    let e = vec![NewEvent::new("Opened", payload(0))];
                    writer
                        .append(
                            live_stream(n),
                            ExpectedVersion::NoStream,
                            e,
                            AppendOptions::default(),
                        )
                        .await
                        .expect("seed");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("seed task");
    }
}

/// Runs `op` in `tasks` tasks over and over for `span`; operations per second.
async fn timed<F, Fut>(span: Duration, tasks: usize, op: F) -> f64
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let (op, done, stop) = (op.clone(), done.clone(), stop.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    op().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(span).await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.expect("task");
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}
