//! `rillflow projections run-loop --partitions auto`: this worker and the
//! projection's other workers share its partitions through leases.

use rillflow_core::tenant::TenantOperation;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rillflow_adapters::daemon::{
    daemon_pool_config, history_watch, watch_sessions, HistoryWatch, PgLeaseStore, PgSessionWatch,
    TokioClock,
};
use rillflow_adapters::ownership::{
    announce_session_ends, forward_changes, ChangeNotices, OwnedWorker, OwnerDriver, OwnerSignal,
    Ownership, PartitionBatches, PgChangeNotices, PgOwnershipStore,
};
use rillflow_adapters::projection::{
    wakeup, BatchOwner, Batches, PgBatches, Projection, ProjectionCatalog, ProjectionRunner,
    RuntimeMetrics, WorkerTiming,
};
use rillflow_adapters::replica::{ReadReplica, ReplicaWatch};
use rillflow_adapters::PoolConfig;
use rillflow_core::lease::LeaseConfig;
use rillflow_core::ownership::{OwnerTiming, PartitionOwner};
use rillflow_core::PartitionSpec;
use sqlx::PgPool;
use tokio::sync::{mpsc, watch, Notify};

use super::health_source::{daemon_config, serve, DaemonHealth};
use super::{declared, handler_session};
use crate::cli::{ClusterMode, RunLoopArgs, Switch};
use crate::commands::{database, read_source, signals};

pub async fn run(args: RunLoopArgs, node: String) -> Result<()> {
    if args.cluster_mode == ClusterMode::Hotcold {
        bail!("--partitions auto cannot be combined with --cluster-mode hotcold: hot/cold has one writer, auto mode spreads partitions over many");
    }
    if args.source.partition_key.is_some() {
        bail!("--partition-key is chosen by the workers in --partitions auto mode; leave it out");
    }
    let initial = PartitionSpec::new(0, args.source.total_partitions)
        .context("invalid --total-partitions")?
        .total();
    let timing = OwnerTiming {
        heartbeat: Duration::from_secs(args.heartbeat_secs),
        ttl: Duration::from_secs(args.lease_ttl_secs),
    };
    timing.validate().context("invalid lease timing")?;
    let Some(path) = &args.source.projections else {
        bail!("--partitions auto needs --projections FILE: it declares what to run");
    };
    let projections = declared::load(path)?;
    let shutdown = signals::shutdown()?;
    let lease = LeaseConfig::from_secs(
        args.heartbeat_secs,
        args.lease_ttl_secs,
        args.lease_grace_secs,
    );
    let pool_config = PoolConfig {
        application_name: format!("rillflow-daemon {node}"),
        ..daemon_pool_config(&lease)
    };
    let scoped =
        database::open_configured(&args.db, &pool_config, TenantOperation::WholeLog).await?;
    let pool = scoped.pool.clone();
    let replica = read_source::replica(&args.source.read, &scoped, &pool_config).await?;
    let batch_pool = handler_session::batch_pool(
        &pool,
        args.source.handler_database_url.as_deref(),
        &pool_config,
        &projections,
    )
    .await?;
    let catalog = ProjectionCatalog::new(pool.clone());
    let setups = ProjectionCatalog::new(batch_pool.clone());
    for p in &projections {
        setups.setup(p.as_ref()).await?;
        let total = catalog.register_all(p.name(), initial).await?;
        tracing::info!(projection = p.name(), partitions = total, worker = %node, "joining the projection's workers");
    }
    let metrics = Arc::new(RuntimeMetrics::new());
    // Every daemon watches for a changed history, served or not: its
    // findings go to the log as well as to the metrics.
    let history = Arc::new(HistoryWatch::new());
    // Events where this daemon reads them: a checkpoint it made from a
    // standby's log must be found in that log.
    let events_pool = replica
        .as_ref()
        .map_or_else(|| pool.clone(), |r| r.pool().clone());
    history.spawn(pool.clone(), events_pool, history_watch::CHECK_EVERY);
    if let Some(addr) = args.health_bind {
        let source = DaemonHealth {
            tenant: scoped.tenant_name().map(ToString::to_string),
            store: PgLeaseStore::new(pool.clone()),
            cluster: None,
            node: node.clone(),
            gate: None,
            catalog: catalog.clone(),
            max_lag: args.max_lag,
            metrics: metrics.clone(),
            history: history.clone(),
            config: daemon_config(&args, &node),
            replica: replica
                .clone()
                .map(|r| ReplicaWatch::start(r, pool.clone())),
        };
        serve(addr, source, args.diag_token.as_deref()).await?;
    }
    let wake = match &replica {
        Some(replica) => wakeup::listen_split(pool.clone(), replica.pool().clone()).await?,
        None => wakeup::listen(pool.clone()).await?,
    };
    // One wake-up per projection's worker: the listener wakes one waiter
    // per notice, and every projection must hear of new events.
    let wakes: Vec<Arc<Notify>> = projections
        .iter()
        .map(|_| Arc::new(Notify::new()))
        .collect();
    let fan_out = wakes.clone();
    tokio::spawn(async move {
        loop {
            wake.notified().await;
            for w in &fan_out {
                w.notify_one();
            }
        }
    });
    // With session leases, this worker's registration and leases end with
    // its process (sql/0018), and for each projection it waits on the
    // session of the next worker in name order and tells everyone when that
    // one ends, so a crash is heard at once.
    // Through a transaction pooler neither can work: off, ttl only.
    let sessions = args.session_leases == Switch::On;
    let store = Arc::new(if sessions {
        PgOwnershipStore::with_session_leases(pool.clone())
    } else {
        PgOwnershipStore::new(pool.clone())
    });
    if let Some(session) = store.lease_session() {
        // Opened now rather than by the first heartbeat, which then costs
        // one round trip instead of a new connection.
        if let Err(e) = session.connect().await {
            tracing::warn!(error = %e, "cannot open the lease session yet");
        }
    }
    let clock = TokioClock::start();
    let worker_timing = WorkerTiming {
        poll_interval: Duration::from_millis(args.poll_interval_ms),
        // A batch cannot outlast its partition's lease and still matter.
        // The database ends it within its budget first; this bound is for
        // a connection whose replies vanished.
        batch_timeout: timing.ttl,
        ..WorkerTiming::default()
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut owners = Vec::new();
    let mut workers = Vec::new();
    let mut notices = BTreeMap::new();
    let mut starts = Vec::new();
    for p in projections {
        let (signal_tx, signal_rx) = mpsc::channel(64);
        notices.insert(p.name().to_owned(), signal_tx.clone());
        starts.push((p, signal_tx, signal_rx));
    }
    // Subscribed before any worker syncs, so no change after its first view
    // goes unheard.
    let changes = PgChangeNotices::new(pool.clone());
    let first = changes.listen().await.map_err(anyhow::Error::msg)?;
    forward_changes(changes, first, notices, timing.heartbeat);
    for ((p, signal_tx, signal_rx), wake) in starts.into_iter().zip(wakes) {
        let (publish, ownership) = watch::channel(Ownership::default());
        let mut driver = OwnerDriver::new(store.clone(), p.name().to_owned(), timing, clock);
        if sessions {
            let (targets, watched) = watch::channel(None);
            let (ended, ends) = mpsc::channel(4);
            watch_sessions(
                PgSessionWatch::new(&pool),
                watched,
                ended,
                |key| key,
                timing.heartbeat,
            );
            announce_session_ends(store.clone(), p.name().to_owned(), ends, signal_tx.clone());
            driver = driver.watch_sessions(targets);
        }
        let machine = PartitionOwner::new(node.clone(), timing, clock.now());
        owners.push((
            signal_tx.clone(),
            tokio::spawn(async move { driver.run(machine, signal_rx, publish).await }),
        ));
        let factory = Arc::new(Factory {
            projection: p,
            node: node.clone(),
            pool: batch_pool.clone(),
            store: (*store).clone(),
            replica: replica.clone(),
            budget: timing.batch_budget(),
        });
        let worker = OwnedWorker::new(factory, worker_timing, metrics.clone(), clock);
        let stop = stop_rx.clone();
        workers.push(tokio::spawn(async move {
            worker.run(ownership, signal_tx, &wake, stop).await
        }));
    }
    shutdown.await;
    tracing::info!("stopping: finishing the current batches, then releasing partitions");
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    // Only once no batch runs: the releases then never wait on our own work.
    for (signals, owner) in owners {
        let _ = signals.send(OwnerSignal::Shutdown).await;
        let _ = owner.await;
    }
    if let Some(session) = store.lease_session() {
        session.close().await;
    }
    tracing::info!("partitions released; left the projection's workers");
    Ok(())
}

/// Batches of one partition of one projection, fenced by its lease.
struct Factory {
    projection: Arc<dyn Projection>,
    node: String,
    pool: PgPool,
    store: PgOwnershipStore,
    /// The standby events are read from, if not the primary.
    replica: Option<ReadReplica>,
    /// What the handlers of one batch may take (see
    /// [`OwnerTiming::batch_budget`]).
    budget: Duration,
}

impl PartitionBatches for Factory {
    fn name(&self) -> &str {
        self.projection.name()
    }

    fn batches(&self, partition: PartitionSpec) -> Arc<dyn Batches> {
        let owner = BatchOwner {
            node: Some(self.node.clone()),
            epoch: None,
        };
        let mut runner = ProjectionRunner::new(self.projection.clone(), partition, owner)
            .with_budget(self.budget);
        if let Some(replica) = &self.replica {
            runner = runner.reading_from(replica.clone());
        }
        Arc::new(PgBatches::partitioned(
            runner,
            self.pool.clone(),
            self.store.clone(),
        ))
    }
}
