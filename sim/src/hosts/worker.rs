//! A projection worker host in auto mode: the production `OwnerDriver` with
//! the production `PartitionOwner`, and the production `OwnedWorker` running
//! the partitions it owns, wired as `projections run-loop --partitions auto`
//! wires them (`bins/src/commands/projections/run_auto.rs`), over the
//! simulated store and batches.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rillflow_adapters::daemon::TokioClock;
use rillflow_adapters::ownership::{
    forward_changes, OwnedWorker, OwnerDriver, OwnerSignal, Ownership,
};
use rillflow_adapters::projection::{RuntimeMetrics, WorkerTiming};
use rillflow_core::ownership::{OwnerTiming, PartitionOwner};
use tokio::sync::{mpsc, oneshot, watch, Notify};

use crate::client::change_notices::{ChangeListener, SimChangeNotices};
use crate::client::sim_batches::PROJECTION;
use crate::client::sim_ownership_store::SimOwnershipStore;
use crate::client::sim_partition_batches::SimPartitionBatches;
use crate::client::sim_store::Pauses;
use crate::harness::trace::{sim_now, Trace};

/// One graceful stop, as the worker carried it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopRecord {
    /// When it was asked to stop.
    pub asked: Duration,
    /// When its batches had stopped (then its partitions are released).
    pub batches_stopped: Option<Duration>,
    /// When it had released everything and left.
    pub left: Option<Duration>,
}

#[derive(Debug, Default)]
struct Stops {
    running: BTreeMap<String, oneshot::Sender<()>>,
    records: Vec<(String, StopRecord)>,
}

/// The running workers' shutdown senders, for graceful stops (SIGTERM),
/// and how each stop went.
#[derive(Debug, Clone, Default)]
pub struct WorkerStops(Arc<Mutex<Stops>>);

impl WorkerStops {
    fn register(&self, worker: &str) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.0
            .lock()
            .expect("stops lock")
            .running
            .insert(worker.to_owned(), tx);
        rx
    }

    /// Asks `worker` to stop gracefully; false when it is not running.
    pub fn stop(&self, worker: &str) -> bool {
        let tx = self.0.lock().expect("stops lock").running.remove(worker);
        tx.is_some_and(|tx| tx.send(()).is_ok())
    }

    /// The worker heard the stop (at simulated time, which only a host
    /// can read).
    fn heard(&self, worker: &str) {
        let record = StopRecord {
            asked: sim_now(),
            batches_stopped: None,
            left: None,
        };
        self.0
            .lock()
            .expect("stops lock")
            .records
            .push((worker.to_owned(), record));
    }

    fn update(&self, worker: &str, f: impl FnOnce(&mut StopRecord)) {
        let mut stops = self.0.lock().expect("stops lock");
        if let Some((_, r)) = stops.records.iter_mut().rev().find(|(w, _)| w == worker) {
            f(r);
        }
    }

    /// Every stop asked for, in order.
    pub fn records(&self) -> Vec<(String, StopRecord)> {
        self.0.lock().expect("stops lock").records.clone()
    }
}

/// What one worker runs with.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    /// Host and worker name (a restart keeps it, as a pod name would).
    pub name: String,
    /// Its clock's rate error, parts per million.
    pub rate_ppm: i32,
    /// It joins at this simulated time (a late joiner).
    pub start_at: Duration,
    /// Heartbeat and partition lease ttl.
    pub timing: OwnerTiming,
    /// Stalls and freezes the runner plans for its batches.
    pub pauses: Pauses,
    /// Where the runner finds its shutdown.
    pub stops: WorkerStops,
    /// Incarnations so far.
    pub boots: Arc<AtomicU64>,
}

/// Runs one incarnation until the host is crashed; after a graceful stop
/// it idles until restarted.
pub async fn run(spec: WorkerSpec, trace: Trace) -> turmoil::Result {
    if let Some(wait) = spec.start_at.checked_sub(sim_now()) {
        tokio::time::sleep(wait).await;
    }
    let boot = spec.boots.fetch_add(1, Ordering::SeqCst);
    let name = spec.name.clone();
    trace.record(sim_now(), &name, format!("boot {boot}"));
    let clock = TokioClock::with_rate(spec.rate_ppm);
    let store = Arc::new(SimOwnershipStore::new(name.clone(), trace.clone()));
    let driver = OwnerDriver::new(store, PROJECTION.to_owned(), spec.timing, clock);
    let machine = PartitionOwner::new(name.clone(), spec.timing, clock.now());
    let (signals_tx, signals) = mpsc::channel(64);
    // As run_auto: subscribed to change notices before the first sync, so
    // no change after its first view goes unheard; retried like a worker
    // started while the database is away.
    let listener = loop {
        match ChangeListener::listen().await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(spec.timing.heartbeat).await,
        }
    };
    let drivers = BTreeMap::from([(PROJECTION.to_owned(), signals_tx.clone())]);
    forward_changes(SimChangeNotices, listener, drivers, spec.timing.heartbeat);
    let (publish, ownership) = watch::channel(Ownership::default());
    watch_ownership(ownership.clone(), name.clone(), trace.clone());
    let owner = tokio::spawn(async move { driver.run(machine, signals, publish).await });
    let factory = SimPartitionBatches::new(name.clone(), spec.pauses.clone(), trace.clone());
    let worker = OwnedWorker::new(
        Arc::new(factory),
        WorkerTiming {
            // The model sends no notifications: poll.
            poll_interval: Duration::from_millis(50),
            error_backoff: Duration::from_millis(100),
            // As run_auto: a batch cannot outlast its lease and matter.
            batch_timeout: spec.timing.ttl,
            ..WorkerTiming::default()
        },
        Arc::new(RuntimeMetrics::new()),
        clock,
    );
    let (stop_tx, stop) = watch::channel(false);
    let fenced = signals_tx.clone();
    let batches = tokio::spawn(async move {
        let wake = Notify::new();
        worker.run(ownership, fenced, &wake, stop).await
    });
    let shutdown = spec.stops.register(&name);
    if shutdown.await.is_ok() {
        // As run_auto: the batches stop first, so the releases never wait
        // on this worker's own work; then everything is released.
        spec.stops.heard(&name);
        trace.record(sim_now(), &name, "stopping".to_owned());
        let _ = stop_tx.send(true);
        let _ = batches.await;
        spec.stops
            .update(&name, |r| r.batches_stopped = Some(sim_now()));
        trace.record(sim_now(), &name, "batches stopped".to_owned());
        let _ = signals_tx.send(OwnerSignal::Shutdown).await;
        let _ = owner.await;
        spec.stops.update(&name, |r| r.left = Some(sim_now()));
        trace.record(sim_now(), &name, "released everything and left".to_owned());
    }
    std::future::pending::<()>().await;
    Ok(())
}

/// What the trace shows of a worker's ownership: renewals are not changes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    partitions: u32,
    owned: Vec<(u32, u64)>,
    stopped: bool,
}

impl Seen {
    fn of(o: &Ownership) -> Seen {
        Seen {
            partitions: o.partitions,
            owned: o.owned.iter().map(|p| (p.partition, p.epoch)).collect(),
            stopped: o.stopped,
        }
    }

    fn describe(&self) -> String {
        if self.stopped {
            return "owns nothing: stopped".to_owned();
        }
        let list: Vec<String> = self
            .owned
            .iter()
            .map(|(p, e)| format!("p{p}@{e}"))
            .collect();
        format!("owns [{}] of {}", list.join(" "), self.partitions)
    }
}

/// Records every change of what the worker owns (partition count and
/// partitions with their epochs).
fn watch_ownership(mut ownership: watch::Receiver<Ownership>, name: String, trace: Trace) {
    tokio::spawn(async move {
        let mut last: Option<Seen> = None;
        loop {
            let now = Seen::of(&ownership.borrow_and_update());
            if last.as_ref() != Some(&now) {
                trace.record(sim_now(), &name, now.describe());
                last = Some(now);
            }
            if ownership.changed().await.is_err() {
                return;
            }
        }
    });
}
