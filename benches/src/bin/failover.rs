//! Measures hot/cold takeover times with real `rillflow` processes at
//! heartbeat 1 s, lease ttl 3 s, grace 1 s:
//!
//! - graceful handoff (SIGINT to the hot node);
//! - crash failover (SIGKILL) with session-bound leases, the default: the
//!   dead node's lease session ends with its process;
//! - a frozen hot node (SIGSTOP): its session stays open, so the ttl + grace
//!   bound applies; the bench checks that its epoch is fenced, then thaws it
//!   and waits for it to stand by;
//! - the same crash with `--session-leases off` (ttl only), in the same
//!   run, as the baseline the session binding is measured against.
//!
//! ```sh
//! cargo build --release -p rillflow
//! cargo run --release -p rillflow-benches --bin failover -- --runs 10 [--ttl-runs 5]
//! ```
//!
//! Each figure is the time from the signal's delivery until the database
//! shows the other node holding a valid lease, polled every 5 ms (so each
//! figure may be up to 5 ms late). Uses `DATABASE_URL` when set, else the
//! tests' local cluster.

use std::path::PathBuf;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rillflow_adapters::daemon::PgLeaseStore;
use rillflow_benches::summary;
use rillflow_testkit::{fast_hotcold_args, wait_for_view, Process, TestDb};

const POLL: Duration = Duration::from_millis(5);
const LIMIT: Duration = Duration::from_secs(30);

struct Options {
    runs: usize,
    ttl_runs: usize,
    seed: u64,
    bin: PathBuf,
}

fn options() -> Result<Options, String> {
    let mut runs = 10;
    let mut ttl_runs = 5;
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
            "--ttl-runs" => {
                let v = args.next().ok_or("--ttl-runs needs a number")?;
                ttl_runs = v
                    .parse()
                    .map_err(|_| format!("--ttl-runs: {v:?} is not a number"))?;
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
                    "unknown argument {other:?} (expected --runs N, --ttl-runs N, --seed S, --bin PATH)"
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
    Ok(Options {
        runs,
        ttl_runs,
        seed,
        bin,
    })
}

struct Bench {
    store: PgLeaseStore,
    url: String,
    bin: PathBuf,
    logs: PathBuf,
    cluster: &'static str,
    extra: &'static [&'static str],
}

impl Bench {
    fn spawn(&self, name: &str) -> Process {
        let mut args = fast_hotcold_args(self.cluster, name);
        args.extend_from_slice(self.extra);
        Process::spawn(&self.bin, name, &self.url, &args, &self.logs)
    }

    /// Polls every 5 ms until `name` holds a valid lease; the epoch and the
    /// time it took.
    async fn hot(&self, name: &str) -> (u64, Duration) {
        let what = format!("{name} hot");
        let (v, took) = wait_for_view(&self.store, self.cluster, &what, LIMIT, POLL, |v| {
            v.holds_valid_lease(name)
        })
        .await;
        (v.epoch, took)
    }

    async fn standing_by(&self, name: &str) {
        let what = format!("{name} cold");
        wait_for_view(&self.store, self.cluster, &what, LIMIT, POLL, |v| {
            v.node(name)
                .is_some_and(|n| n.role.as_str() == "cold" && n.heartbeat_age_ms < 1_000)
        })
        .await;
    }

    /// A steady cluster (past the failover interval) loses its hot node at
    /// a random point of its heartbeat cycle, so the runs sample every
    /// phase between the last renewal and the next.
    async fn steady(&self, rng: &mut StdRng) {
        let phase = Duration::from_millis(rng.random_range(0..1_000));
        tokio::time::sleep(Duration::from_secs(3) + phase).await;
    }
}

type Node = (&'static str, Process);

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
    let logs = std::env::temp_dir().join(format!("rillflow-failover-{}", std::process::id()));
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let sessions = Bench {
        store: PgLeaseStore::new(db.pool().await),
        url: db.url.clone(),
        bin: opts.bin.clone(),
        logs: logs.clone(),
        cluster: "bench",
        extra: &[],
    };
    let (mut hot, mut cold) = pair(&sessions).await;
    let (mut handoffs, mut crashes, mut freezes) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..opts.runs {
        // Graceful: the hot node is asked to stop.
        hot.1.signal("INT");
        handoffs.push(sessions.hot(cold.0).await.1);
        hot.1
            .wait_exit(Duration::from_secs(10))
            .expect("the stopped node exits");
        std::mem::swap(&mut hot, &mut cold);
        cold.1 = sessions.spawn(cold.0);
        sessions.standing_by(cold.0).await;

        sessions.steady(&mut rng).await;
        hot.1.signal("KILL");
        crashes.push(sessions.hot(cold.0).await.1);
        std::mem::swap(&mut hot, &mut cold);
        cold.1 = sessions.spawn(cold.0);
        sessions.standing_by(cold.0).await;

        // Frozen: the process lives, so does its session; the lease runs
        // out, the standby takes it, and the old epoch is fenced.
        sessions.steady(&mut rng).await;
        let old_epoch = sessions.hot(hot.0).await.0;
        hot.1.signal("STOP");
        let (new_epoch, took) = sessions.hot(cold.0).await;
        freezes.push(took);
        assert!(new_epoch > old_epoch);
        assert!(
            sessions
                .store
                .begin_fenced(sessions.cluster, old_epoch)
                .await
                .is_err(),
            "epoch {old_epoch} of the frozen node must be fenced"
        );
        hot.1.signal("CONT");
        std::mem::swap(&mut hot, &mut cold);
        sessions.standing_by(cold.0).await;
        eprintln!(
            "round {} of {}: handoff {:?}, crash {:?}, freeze {:?}",
            round + 1,
            opts.runs,
            handoffs[round],
            crashes[round],
            freezes[round]
        );
    }
    drop((hot, cold));

    let ttl_only = Bench {
        cluster: "bench-ttl",
        extra: &["--session-leases", "off"],
        ..sessions
    };
    let (mut hot, mut cold) = pair(&ttl_only).await;
    let mut ttl_crashes = Vec::new();
    for round in 0..opts.ttl_runs {
        ttl_only.steady(&mut rng).await;
        hot.1.signal("KILL");
        ttl_crashes.push(ttl_only.hot(cold.0).await.1);
        std::mem::swap(&mut hot, &mut cold);
        cold.1 = ttl_only.spawn(cold.0);
        ttl_only.standing_by(cold.0).await;
        eprintln!(
            "ttl-only round {} of {}: crash {:?}",
            round + 1,
            opts.ttl_runs,
            ttl_crashes[round]
        );
    }
    drop((hot, cold));

    summary("graceful handoff (SIGINT)", handoffs);
    summary("crash failover (SIGKILL), session-bound leases", crashes);
    summary("frozen hot node (SIGSTOP), session-bound leases", freezes);
    if !ttl_crashes.is_empty() {
        summary(
            "crash failover (SIGKILL), --session-leases off",
            ttl_crashes,
        );
    }
    let _ = std::fs::remove_dir_all(&logs);
}

/// `a` hot, then `b` standing by.
async fn pair(bench: &Bench) -> (Node, Node) {
    let hot = ("a", bench.spawn("a"));
    bench.hot("a").await;
    let cold = ("b", bench.spawn("b"));
    bench.standing_by("b").await;
    (hot, cold)
}
