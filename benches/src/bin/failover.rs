//! Measures hot/cold takeover times with real `rillflow` processes:
//! graceful handoff (SIGINT to the hot node) and crash failover (SIGKILL),
//! at heartbeat 1 s, lease ttl 3 s, grace 1 s.
//!
//! ```sh
//! cargo build --release -p rillflow
//! cargo run --release -p rillflow-benches --bin failover -- --runs 10
//! ```
//!
//! Each figure is the time from the signal's delivery until the database
//! shows the other node holding a valid lease, polled every 5 ms (so each
//! figure may be up to 5 ms late). Uses `DATABASE_URL` when set, else the
//! tests' local cluster.

use std::path::PathBuf;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rillflow_adapters::daemon::PgLeaseStore;
use rillflow_benches::summary;
use rillflow_testkit::{fast_hotcold_args, wait_for_view, Process, TestDb};

const CLUSTER: &str = "bench";
const POLL: Duration = Duration::from_millis(5);
const LIMIT: Duration = Duration::from_secs(30);

struct Options {
    runs: usize,
    seed: u64,
    bin: PathBuf,
}

fn options() -> Result<Options, String> {
    let mut runs = 10;
    let mut seed = 1;
    let mut bin = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/rillflow");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                let v = args.next().ok_or("--runs needs a number")?;
                runs = v
                    .parse()
                    .map_err(|_| format!("--runs: {v:?} is not a number"))?;
            }
            "--seed" => {
                let v = args.next().ok_or("--seed needs a number")?;
                seed = v
                    .parse()
                    .map_err(|_| format!("--seed: {v:?} is not a number"))?;
            }
            "--bin" => bin = args.next().ok_or("--bin needs a path")?.into(),
            other => {
                return Err(format!(
                    "unknown argument {other:?} (expected --runs N, --seed S, --bin PATH)"
                ))
            }
        }
    }
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    if !bin.is_file() {
        return Err(format!(
            "{} not found; run `cargo build --release -p rillflow` first",
            bin.display()
        ));
    }
    Ok(Options { runs, seed, bin })
}

struct Bench {
    store: PgLeaseStore,
    url: String,
    bin: PathBuf,
    logs: PathBuf,
}

impl Bench {
    fn spawn(&self, name: &str) -> Process {
        let args = fast_hotcold_args(CLUSTER, name);
        Process::spawn(&self.bin, name, &self.url, &args, &self.logs)
    }

    /// Polls every 5 ms until `name` holds a valid lease; the time it took.
    async fn hot(&self, name: &str) -> Duration {
        let what = format!("{name} hot");
        wait_for_view(&self.store, CLUSTER, &what, LIMIT, POLL, |v| {
            v.holds_valid_lease(name)
        })
        .await
        .1
    }

    async fn standing_by(&self, name: &str) {
        let what = format!("{name} cold");
        wait_for_view(&self.store, CLUSTER, &what, LIMIT, POLL, |v| {
            v.node(name)
                .is_some_and(|n| n.role.as_str() == "cold" && n.heartbeat_age_ms < 1_000)
        })
        .await;
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
    let bench = Bench {
        store: PgLeaseStore::new(db.pool().await),
        url: db.url.clone(),
        bin: opts.bin,
        logs: std::env::temp_dir().join(format!("rillflow-failover-{}", std::process::id())),
    };

    let mut hot = ("a", bench.spawn("a"));
    bench.hot("a").await;
    let mut cold = ("b", bench.spawn("b"));
    bench.standing_by("b").await;

    let (mut handoffs, mut crashes) = (Vec::new(), Vec::new());
    let mut rng = rand::rngs::StdRng::seed_from_u64(opts.seed);
    for round in 0..opts.runs {
        // Graceful: the hot node is asked to stop.
        hot.1.signal("INT");
        handoffs.push(bench.hot(cold.0).await);
        hot.1
            .wait_exit(Duration::from_secs(10))
            .expect("the stopped node exits");
        std::mem::swap(&mut hot, &mut cold);
        cold.1 = bench.spawn(cold.0);
        bench.standing_by(cold.0).await;

        // Crash: a steady cluster (past the failover interval) loses its hot
        // node at a random point of its heartbeat cycle, so the runs sample
        // every phase between the last renewal and the next.
        let phase = Duration::from_millis(rng.random_range(0..1_000));
        tokio::time::sleep(Duration::from_secs(3) + phase).await;
        hot.1.signal("KILL");
        crashes.push(bench.hot(cold.0).await);
        std::mem::swap(&mut hot, &mut cold);
        cold.1 = bench.spawn(cold.0);
        bench.standing_by(cold.0).await;
        eprintln!(
            "round {} of {}: handoff {:?}, crash {:?}",
            round + 1,
            opts.runs,
            handoffs[round],
            crashes[round]
        );
    }
    summary("graceful handoff (SIGINT)", handoffs);
    summary("crash failover (SIGKILL)", crashes);
    let _ = std::fs::remove_dir_all(&bench.logs);
}
