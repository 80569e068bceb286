//! A daemon node host: the production driver loop with the simulated store.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rillflow_adapters::daemon::{
    forward_releases, watch_leader_sessions, Driver, LeaseStore, NodeIdentity, Processor,
    ReleaseNotices, Signal, TokioClock, WriteGate, WriteProbe,
};
use rillflow_adapters::projection::{
    Batches, ProjectionProcessor, ProjectionWorker, RuntimeMetrics, WorkerTiming,
};
use rillflow_core::lease::{ClusterTiming, LeaseConfig, NodeMachine};
use tokio::sync::{mpsc, watch, Notify};
use uuid::Uuid;

use crate::client::sim_batches::SimBatches;
use crate::client::sim_session_watch::SimSessionWatch;
use crate::client::sim_store::{Pauses, SimLeaseStore};
use crate::harness::trace::{sim_now, Belief, Trace};

/// The cluster every simulated node joins.
pub const CLUSTER: &str = "sim";

/// The running nodes' signal senders, for graceful stops.
#[derive(Debug, Clone, Default)]
pub struct Stops(Arc<Mutex<BTreeMap<String, mpsc::Sender<Signal>>>>);

impl Stops {
    fn register(&self, node: &str, tx: mpsc::Sender<Signal>) {
        self.0
            .lock()
            .expect("stops lock")
            .insert(node.to_owned(), tx);
    }

    /// Asks `node` to stop gracefully (finish, release, exit); false when it
    /// is not running.
    pub fn stop(&self, node: &str) -> bool {
        let tx = self.0.lock().expect("stops lock").get(node).cloned();
        tx.is_some_and(|tx| tx.try_send(Signal::Shutdown).is_ok())
    }
}

/// What one node runs with.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// Host and node name.
    pub name: String,
    /// Lease timing.
    pub config: LeaseConfig,
    /// Its clock's rate error, parts per million.
    pub rate_ppm: i32,
    /// Seed of its daemon ids.
    pub seed: u64,
    /// Pauses planned by the runner.
    pub pauses: Pauses,
    /// Where the runner finds the node's shutdown signal.
    pub stops: Stops,
    /// Incarnations so far (each restart gets a new daemon id, as a real
    /// restart without `--daemon-id` does).
    pub boots: Arc<AtomicU64>,
    /// Run the projection (the production worker and processor over
    /// [`SimBatches`]) instead of the write probe.
    pub projections: bool,
    /// Read the projection's events from the standby while checkpoints
    /// stay on the primary (`projections run-loop --read-database-url`).
    pub read_replica: bool,
    /// Bind leases to the node's lease session and watch the leader's
    /// (`--session-leases on`, the run-loop's default).
    pub session_leases: bool,
}

/// Runs one incarnation of the node until the host is crashed.
pub async fn run(spec: NodeSpec, trace: Trace) -> turmoil::Result {
    let boot = spec.boots.fetch_add(1, Ordering::SeqCst);
    let identity = NodeIdentity {
        cluster: CLUSTER.to_owned(),
        node: spec.name.clone(),
        daemon_id: Uuid::from_u64_pair(spec.seed, boot),
    };
    let store = SimLeaseStore::with_pauses(spec.pauses.clone(), trace.clone());
    let store = if spec.session_leases {
        store.with_session_leases(&spec.name)
    } else {
        store
    };
    trace.record(sim_now(), &spec.name, format!("boot {boot}"));
    // Subscribe to release notices before joining, as the daemon does, and
    // join; both are retried like a daemon that starts while the database
    // is away.
    let listener = loop {
        match store.listen().await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(spec.config.heartbeat).await,
        }
    };
    while store
        .register(&identity, 1, &ClusterTiming::from(&spec.config))
        .await
        .is_err()
    {
        tokio::time::sleep(spec.config.heartbeat).await;
    }
    let clock = TokioClock::with_rate(spec.rate_ppm);
    let (permits, gate) = WriteGate::new(clock);
    watch_permits(gate.clone(), clock, spec.name.clone(), trace.clone());
    // The runner stops the node gracefully through this sender, as an
    // operator's SIGTERM would.
    let (signals_tx, signals) = mpsc::channel(1);
    spec.stops.register(&spec.name, signals_tx.clone());
    forward_releases(
        store.clone(),
        listener,
        CLUSTER.to_owned(),
        signals_tx.clone(),
        spec.config.heartbeat,
    );
    // As the run-loop does: a standby waits on the leader's session, so a
    // crash wakes it at once, and the lease session opens now rather than
    // with the first grant.
    let (watch_tx, watch_rx) = watch::channel(None);
    if spec.session_leases {
        watch_leader_sessions(SimSessionWatch, watch_rx, signals_tx, spec.config.heartbeat);
        if let Some(session) = store.lease_session() {
            let _ = session.connect().await;
        }
    }
    let session = store.lease_session().cloned();
    let machine = NodeMachine::new(spec.name.clone(), spec.config.clone(), clock.now());
    // The production processors: the write probe, writing more often than
    // once a heartbeat so that stale writes get many chances to slip
    // through, or the projection worker, polling every 50 ms: appends
    // notify nobody, and production watches the log's high-water mark at
    // a similar interval (adapters/src/projection/wakeup.rs).
    let batches = SimBatches::new(store.clone(), identity.clone());
    let batches = if spec.read_replica {
        batches.reading_from_standby()
    } else {
        batches
    };
    let store = Arc::new(store);
    let work: Box<dyn Processor> = if spec.projections {
        let worker = ProjectionWorker::new(
            vec![Arc::new(batches) as Arc<dyn Batches>],
            WorkerTiming {
                poll_interval: Duration::from_millis(50),
                error_backoff: Duration::from_millis(100),
                batch_timeout: spec.config.lease_ttl,
                ..WorkerTiming::default()
            },
            Arc::new(RuntimeMetrics::new()),
        );
        Box::new(ProjectionProcessor::new(
            Arc::new(worker),
            Arc::new(Notify::new()),
        ))
    } else {
        Box::new(WriteProbe::new(
            store.clone(),
            identity.clone(),
            Duration::from_millis(150),
        ))
    };
    let driver = Driver::new(store, identity, spec.config.clone(), work, clock);
    let driver = if spec.session_leases {
        driver.watch_sessions(watch_tx)
    } else {
        driver
    };
    let result = driver.run(machine, signals, permits, gate).await;
    trace.record(sim_now(), &spec.name, format!("driver ended: {result:?}"));
    // The process would exit here, closing its lease session.
    if let Some(session) = session {
        session.close().await;
    }
    // A replaced or stopped node idles until the host is restarted.
    std::future::pending::<()>().await;
    Ok(())
}

/// Records every change of the node's write permit, with the simulated time
/// its belief ends on the node's own (drifting) clock.
fn watch_permits(mut gate: WriteGate, clock: TokioClock, name: String, trace: Trace) {
    tokio::spawn(async move {
        let mut last: Option<(Option<u64>, Duration)> = None;
        loop {
            let now = sim_now();
            let local = clock.now().since_origin();
            let belief = match gate.permit() {
                Some(p) => {
                    let left = clock
                        .instant(p.until)
                        .saturating_duration_since(tokio::time::Instant::now());
                    Belief {
                        at: now,
                        epoch: Some(p.epoch),
                        until: now + left,
                        local,
                    }
                }
                None => Belief {
                    at: now,
                    epoch: None,
                    until: now,
                    local,
                },
            };
            // The driver republishes after every step; only changes count.
            let key = (belief.epoch, belief.until);
            if belief.epoch.is_some()
                && last.is_some_and(|(e, u)| {
                    e == belief.epoch && u.abs_diff(belief.until) < Duration::from_micros(10)
                })
                || belief.epoch.is_none() && last.is_some_and(|(e, _)| e.is_none())
            {
                // unchanged
            } else {
                trace.record_belief(&name, belief);
                last = Some(key);
            }
            if !gate.changed().await {
                return;
            }
        }
    });
}
