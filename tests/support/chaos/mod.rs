//! Failover under load on a real Postgres with real processes: three
//! `rillflow projections run-loop --cluster-mode hotcold` nodes run a
//! declarative projection that records every application, a writer appends
//! steadily, and faults are injected in turn: kill -9 of the hot node,
//! SIGSTOP past its lease then SIGCONT, SIGINT handoffs, termination of the
//! daemons' database sessions or of the hot node's lease session alone, and
//! Postgres restarts. A kill waits until the last failover is one ttl past,
//! so it measures a crash failover and not LEASE-4's interval between
//! failovers. At the end the store, the writer's acknowledgements and the
//! read model are compared.
//!
//! `cargo run --release -p rillflow-testkit --bin chaos` runs the full
//! version; `tests/chaos.rs` a short one.

mod nodes;
mod report;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rillflow_adapters::daemon::PgLeaseStore;
use rillflow_adapters::{
    connect, ClusterSettings, EventStore, LocalCluster, Migrations, PoolConfig,
};
use sqlx::PgPool;
use uuid::Uuid;

pub use nodes::{Nodes, CLUSTER};
pub use report::{ChaosReport, FaultRecord};

/// How much of everything a run does.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// The `rillflow` binary.
    pub bin: PathBuf,
    /// Where the server, the projection file and the logs go (emptied first).
    pub work_dir: PathBuf,
    /// Keep the writer going until at least this many events are acknowledged.
    pub min_events: u64,
    /// Streams written to.
    pub streams: usize,
    /// Pause between appends.
    pub append_pause: Duration,
    /// kill -9 of the hot node.
    pub kills: usize,
    /// SIGSTOP of the hot node past its lease, then SIGCONT.
    pub freezes: usize,
    /// SIGINT of the hot node (graceful handoff).
    pub handoffs: usize,
    /// `pg_terminate_backend` of every daemon session.
    pub terminations: usize,
    /// `pg_terminate_backend` of the hot node's lease session alone, while
    /// the node runs on.
    pub lease_session_ends: usize,
    /// Postgres stopped and started again.
    pub pg_restarts: usize,
}

impl ChaosConfig {
    /// The issue's full run: ≥ 100k events, ten kills and ten freezes,
    /// three handoffs, three terminations of all sessions, three of the hot
    /// node's lease session, three restarts.
    pub fn full(bin: PathBuf, work_dir: PathBuf) -> Self {
        ChaosConfig {
            bin,
            work_dir,
            min_events: 100_000,
            streams: 500,
            append_pause: Duration::from_millis(1),
            kills: 10,
            freezes: 10,
            handoffs: 3,
            terminations: 3,
            lease_session_ends: 3,
            pg_restarts: 3,
        }
    }

    /// A short run for CI: one of each fault, about 10k events.
    pub fn short(bin: PathBuf, work_dir: PathBuf) -> Self {
        ChaosConfig {
            min_events: 10_000,
            kills: 2,
            freezes: 1,
            handoffs: 1,
            terminations: 1,
            lease_session_ends: 1,
            pg_restarts: 1,
            ..Self::full(bin, work_dir)
        }
    }

    /// The faults in the order they are injected: interleaved, so each kind
    /// meets the cluster in the states the others leave behind.
    fn schedule(&self) -> Vec<Fault> {
        let mut queues = [
            (Fault::Kill, self.kills),
            (Fault::Freeze, self.freezes),
            (Fault::Handoff, self.handoffs),
            (Fault::Terminate, self.terminations),
            (Fault::EndLeaseSession, self.lease_session_ends),
            (Fault::PgRestart, self.pg_restarts),
        ];
        let mut out = Vec::new();
        while queues.iter().any(|(_, n)| *n > 0) {
            for (fault, n) in queues.iter_mut() {
                if *n > 0 {
                    out.push(*fault);
                    *n -= 1;
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    Kill,
    Freeze,
    Handoff,
    Terminate,
    EndLeaseSession,
    PgRestart,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill -9 hot node",
            Fault::Freeze => "SIGSTOP hot node past lease",
            Fault::Handoff => "SIGINT handoff",
            Fault::Terminate => "pg_terminate_backend",
            Fault::EndLeaseSession => "pg_terminate_backend of the lease session",
            Fault::PgRestart => "Postgres restart",
        }
    }
}

/// Records every application of an event, when and by which node (the
/// daemon names its sessions `rillflow-daemon NODE`), so that doubles and
/// gaps show.
const PROJECTION: &str = r#"
[[projections]]
name = "chaos_applied"
batch_size = 200
setup = "CREATE TABLE IF NOT EXISTS chaos_applied (position bigint NOT NULL, stream_id uuid NOT NULL, version bigint NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp(), applied_by text NOT NULL DEFAULT current_setting('application_name'))"
reset = "TRUNCATE chaos_applied"
[projections.handlers]
Tick = "INSERT INTO chaos_applied (position, stream_id, version) VALUES (:position, :stream_id, :version)"
"#;

/// Runs the chaos scenario and returns its report; `progress` gets a line
/// per step.
pub async fn run(config: &ChaosConfig, progress: impl Fn(&str)) -> Result<ChaosReport, String> {
    let _ = std::fs::remove_dir_all(&config.work_dir);
    std::fs::create_dir_all(&config.work_dir).map_err(|e| e.to_string())?;
    let server = Server::start(&config.work_dir.join("pg")).await?;
    let url = server.cluster.url("rillflow");
    let pool = connect(&url, &PoolConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let projections = config.work_dir.join("chaos.toml");
    std::fs::write(&projections, PROJECTION).map_err(|e| e.to_string())?;
    let mut nodes = Nodes::start(
        &config.bin,
        &url,
        &projections,
        &config.work_dir.join("logs"),
        &["n1", "n2", "n3"],
    );
    let leases = PgLeaseStore::new(pool.clone());
    hot_node(&leases, Duration::from_secs(30)).await?;
    progress("cluster up: n1, n2, n3");

    let streams: Vec<Uuid> = (1..=config.streams as u128)
        .map(|i| Uuid::from_u128(i * 0x9E37_79B9_7F4A_7C15))
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(Mutex::new(writer::Acks::default()));
    let writing = writer::spawn(
        EventStore::new(pool.clone()),
        streams,
        config.append_pause,
        stop.clone(),
        acks.clone(),
    );

    let mut report = ChaosReport::default();
    for (i, fault) in config.schedule().into_iter().enumerate() {
        // Let the cluster apply for a moment before the next blow.
        tokio::time::sleep(Duration::from_millis(700)).await;
        if fault == Fault::Kill {
            // A crash right after another failover waits out LEASE-4's
            // interval, which the figure would then measure instead.
            past_failover_interval(&leases, Duration::from_secs(60)).await?;
        }
        let leader = hot_node(&leases, Duration::from_secs(60)).await?;
        let before = db_now(&pool).await?;
        let node = inject(fault, &leader, &mut nodes, &pool, &server).await?;
        // Taken once the blow has landed (the process gone or frozen, the
        // sessions cut, the server back).
        let after = db_now(&pool).await?;
        // A node whose lease session was ended may win the lease back:
        // an application by anyone counts.
        let others_only = node.as_deref().filter(|_| fault != Fault::EndLeaseSession);
        let downtime =
            wait_applied_after(&pool, (before, after), others_only, Duration::from_secs(60))
                .await?;
        recover(fault, &leader, &mut nodes).await;
        progress(&format!(
            "fault {}: {} ({}): projection resumed after {} ms",
            i + 1,
            fault.name(),
            node.as_deref().unwrap_or("all"),
            downtime.as_millis()
        ));
        report.faults.push(FaultRecord {
            kind: fault.name(),
            node,
            downtime,
        });
    }
    while (acks.lock().expect("acks lock").positions.len() as u64) < config.min_events {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop.store(true, Ordering::SeqCst);
    writing.await.map_err(|e| e.to_string())?;
    let acked = {
        let acks = acks.lock().expect("acks lock");
        report.writer_retries = acks.retries;
        acks.positions.clone()
    };
    progress(&format!(
        "writer stopped after {} events; waiting for the projection",
        acked.len()
    ));
    caught_up(&pool, Duration::from_secs(120)).await?;
    report.fenced = nodes.count_in_logs("batch refused by the fence") as u64;
    report
        .count(&pool, &acked)
        .await
        .map_err(|e| e.to_string())?;
    drop(nodes);
    pool.close().await;
    Ok(report)
}

/// The node holding a valid lease, waiting for one up to `limit`.
async fn hot_node(leases: &PgLeaseStore, limit: Duration) -> Result<String, String> {
    let start = Instant::now();
    loop {
        if let Ok(Some(v)) = leases.cluster_view(CLUSTER).await {
            if let Some(l) = v.leader.as_deref().filter(|l| v.holds_valid_lease(l)) {
                return Ok(l.to_owned());
            }
        }
        if start.elapsed() > limit {
            return Err(format!("no hot node within {limit:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the last automatic failover is at least one ttl ago (the
/// least time between two, LEASE-4).
async fn past_failover_interval(leases: &PgLeaseStore, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if let Ok(Some(v)) = leases.cluster_view(CLUSTER).await {
            if v.since_last_failover_ms
                .is_none_or(|ms| ms >= v.timing.lease_ttl_ms)
            {
                return Ok(());
            }
        }
        if start.elapsed() > limit {
            return Err(format!(
                "still within the failover interval after {limit:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn db_now(pool: &PgPool) -> Result<DateTime<Utc>, String> {
    sqlx::query_scalar("SELECT clock_timestamp()")
        .fetch_one(pool)
        .await
        .map_err(|e| e.to_string())
}

/// Does `fault`; returns the node it hit.
async fn inject(
    fault: Fault,
    leader: &str,
    nodes: &mut Nodes,
    pool: &PgPool,
    server: &Server,
) -> Result<Option<String>, String> {
    match fault {
        Fault::Kill => {
            nodes.signal(leader, "KILL");
            nodes.wait_exit(leader, Duration::from_secs(5));
        }
        Fault::Freeze => nodes.signal(leader, "STOP"),
        Fault::Handoff => nodes.signal(leader, "INT"),
        Fault::Terminate => {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                  WHERE application_name LIKE 'rillflow-daemon %'",
            )
            .execute(pool)
            .await
            .map_err(|e| e.to_string())?;
            return Ok(None);
        }
        Fault::EndLeaseSession => {
            // The backend holding the lock the current lease names: the
            // node runs on and may believe it is hot until it learns.
            let ended: Option<bool> = sqlx::query_scalar(
                "SELECT pg_terminate_backend(l.pid) FROM rf_daemon_clusters c, pg_locks l
                  WHERE c.cluster_name = $1 AND l.locktype = 'advisory' AND l.granted
                    AND l.mode = 'ExclusiveLock' AND l.objsubid = 1
                    AND l.classid = ((c.lease_lock_key >> 32) & 4294967295)::oid
                    AND l.objid = (c.lease_lock_key & 4294967295)::oid",
            )
            .bind(CLUSTER)
            .fetch_optional(pool)
            .await
            .map_err(|e| e.to_string())?;
            if ended != Some(true) {
                return Err(format!("the lease of {leader} names no live session"));
            }
        }
        Fault::PgRestart => {
            server.restart().await?;
            return Ok(None);
        }
    }
    Ok(Some(leader.to_owned()))
}

/// Puts the hit node back: restarted under its name, or thawed once its
/// lease is long gone (it must stand by, fenced, not write).
async fn recover(fault: Fault, leader: &str, nodes: &mut Nodes) {
    match fault {
        Fault::Kill => nodes.spawn(leader),
        Fault::Freeze => {
            // Past ttl + grace since the stop, the others have taken over.
            tokio::time::sleep(Duration::from_secs(1)).await;
            nodes.signal(leader, "CONT");
        }
        Fault::Handoff => {
            nodes.wait_exit(leader, Duration::from_secs(10));
            nodes.spawn(leader);
        }
        Fault::Terminate | Fault::EndLeaseSession | Fault::PgRestart => {}
    }
}

/// Waits for the projection to apply an event after the fault landed (by a
/// node other than `hit`, when a node was hit), then returns the longest
/// pause in applying between the last application before the fault began
/// and that one: the downtime the fault caused, whichever node applied in
/// between (a node handing over gracefully finishes its batch first).
async fn wait_applied_after(
    pool: &PgPool,
    (before, after): (DateTime<Utc>, DateTime<Utc>),
    hit: Option<&str>,
    limit: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let hit = hit.map(|n| format!("rillflow-daemon {n}"));
    loop {
        let gap: Result<Option<f64>, _> = sqlx::query_scalar(
            "WITH first AS (SELECT min(applied_at) AS t FROM chaos_applied
                             WHERE applied_at > $2 AND applied_by IS DISTINCT FROM $3),
                  start AS (SELECT coalesce(max(applied_at), $1) AS t FROM chaos_applied
                             WHERE applied_at <= $1),
                  stamps AS (SELECT DISTINCT applied_at FROM chaos_applied, first, start
                              WHERE applied_at BETWEEN start.t AND first.t
                             UNION SELECT t FROM start),
                  gaps AS (SELECT applied_at - lag(applied_at) OVER (ORDER BY applied_at) AS gap
                             FROM stamps)
             SELECT extract(epoch FROM max(gap))::float8 FROM gaps, first WHERE first.t IS NOT NULL",
        )
        .bind(before)
        .bind(after)
        .bind(hit.as_deref())
        .fetch_one(pool)
        .await;
        if let Ok(Some(secs)) = gap {
            return Ok(Duration::from_secs_f64(secs.max(0.0)));
        }
        if start.elapsed() > limit {
            return Err(format!(
                "the projection applied nothing within {limit:?} of a fault"
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every stored event has been applied at least once.
async fn caught_up(pool: &PgPool, limit: Duration) -> Result<(), String> {
    let start = Instant::now();
    loop {
        let behind: Result<i64, _> = sqlx::query_scalar(
            "SELECT count(*) FROM events e
              WHERE NOT EXISTS (SELECT 1 FROM chaos_applied a WHERE a.position = e.position)",
        )
        .fetch_one(pool)
        .await;
        if matches!(behind, Ok(0)) {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!(
                "the projection did not catch up within {limit:?}: {behind:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A throwaway Postgres of the run's own: restarting the tests' shared one
/// would break every other test.
struct Server {
    cluster: LocalCluster,
}

impl Server {
    async fn start(dir: &Path) -> Result<Server, String> {
        let start_dir = dir.to_owned();
        let cluster = tokio::task::spawn_blocking(move || {
            LocalCluster::start(&start_dir, &ClusterSettings::for_tests())
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("cannot start a throwaway Postgres: {e}"))?;
        cluster
            .ensure_database("rillflow")
            .await
            .map_err(|e| e.to_string())?;
        let pool = connect(&cluster.url("rillflow"), &PoolConfig::default())
            .await
            .map_err(|e| e.to_string())?;
        Migrations::apply(&pool).await.map_err(|e| e.to_string())?;
        pool.close().await;
        Ok(Server { cluster })
    }

    async fn restart(&self) -> Result<(), String> {
        let dir = self.cluster.dir().to_owned();
        tokio::task::spawn_blocking(move || {
            let cluster = LocalCluster::open(&dir).map_err(|e| e.to_string())?;
            cluster.stop().map_err(|e| e.to_string())?;
            LocalCluster::start(&dir, &ClusterSettings::for_tests())
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.cluster.stop();
    }
}
