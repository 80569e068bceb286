//! `rillflow projections run-loop --cluster-mode single|hotcold ...`

use rillflow_core::tenant::TenantOperation;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rillflow_adapters::daemon::{
    check_names, daemon_pool_config, forward_releases, history_watch, watch_leader_sessions,
    Driver, HistoryWatch, LeaseStore, NodeIdentity, PgLeaseStore, PgSessionWatch, Processor,
    Signal, TokioClock, WriteGate, WriteProbe,
};
use rillflow_adapters::projection::{
    wakeup, BatchOwner, Batches, PgBatches, Projection, ProjectionCatalog, ProjectionProcessor,
    ProjectionRunner, ProjectionWorker, RuntimeMetrics, WorkerTiming,
};
use rillflow_adapters::replica::{ReadReplica, ReplicaWatch};
use rillflow_adapters::PoolConfig;
use rillflow_core::lease::machine::NodeMachine;
use rillflow_core::lease::{ClusterTiming, LeaseConfig};
use rillflow_core::PartitionSpec;
use sqlx::PgPool;
use tokio::sync::{mpsc, watch, Notify};
use uuid::Uuid;

use super::health_source::{daemon_config, serve, DaemonHealth};
use super::{declared, handler_session, run_auto};
use crate::cli::{ClusterMode, PartitionMode, RunLoopArgs, Switch};
use crate::commands::{database, read_source, signals};

pub async fn run(args: RunLoopArgs) -> Result<()> {
    let config = LeaseConfig::from_secs(
        args.heartbeat_secs,
        args.lease_ttl_secs,
        args.lease_grace_secs,
    );
    config.validate().context("invalid lease timing")?;
    let cluster = match (args.cluster_mode, &args.cluster_name) {
        (ClusterMode::Hotcold, None) => bail!("--cluster-mode hotcold needs --cluster-name"),
        (_, name) => name.clone(),
    };
    let node = args.node_name.clone().unwrap_or_else(host_name);
    if args.source.partitions == PartitionMode::Auto {
        return run_auto::run(args, node).await;
    }
    if let Some(cluster) = &cluster {
        // Refused before anything is started or written.
        check_names(cluster, &node)?;
    }
    let partition = PartitionSpec::new(
        args.source.partition_key.unwrap_or(0),
        args.source.total_partitions,
    )
    .context("invalid partitioning")?;
    let projections = match &args.source.projections {
        Some(path) => declared::load(path)?,
        None => Vec::new(),
    };
    // Installed before anything slow, so an early signal is not lost.
    let shutdown = signals::shutdown()?;
    // The node's name in `pg_stat_activity`, so an operator (or a chaos
    // run) can tell whose session is whose.
    let pool_config = PoolConfig {
        application_name: format!("rillflow-daemon {node}"),
        ..daemon_pool_config(&config)
    };
    let scoped =
        database::open_configured(&args.db, &pool_config, TenantOperation::WholeLog).await?;
    let pool = scoped.pool.clone();
    let replica = read_source::replica(&args.source.read, &scoped, &pool_config).await?;
    let sessions = args.session_leases == Switch::On;
    let store = if sessions && args.cluster_mode == ClusterMode::Hotcold {
        PgLeaseStore::with_session_leases(pool.clone())
    } else {
        PgLeaseStore::new(pool.clone())
    };
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
        catalog.register(p.name(), partition).await?;
    }
    let metrics = Arc::new(RuntimeMetrics::new());
    // In hot/cold mode every batch is fenced by the lease of this cluster.
    let lease = cluster.clone().map(|c| (store.clone(), c));
    // What the handlers of one batch may take: in hot/cold mode, what still
    // lets the node renew its lease after the batch; the worker's own bound
    // (`batch_timeout`) stays above it, for a connection that went silent.
    let budget = match args.cluster_mode {
        ClusterMode::Hotcold => config.batch_budget(),
        ClusterMode::Single => SINGLE_MODE_BATCH_BUDGET,
    };
    let worker = Arc::new(ProjectionWorker::new(
        batches(
            &projections,
            Placement {
                partition,
                node: &node,
                replica: replica.as_ref(),
            },
            &batch_pool,
            lease,
            budget,
        ),
        WorkerTiming {
            poll_interval: Duration::from_millis(args.poll_interval_ms),
            // A batch cannot outlast the lease and still matter; without
            // a lease the default bound applies.
            batch_timeout: match args.cluster_mode {
                ClusterMode::Hotcold => config.lease_ttl,
                ClusterMode::Single => WorkerTiming::default().batch_timeout,
            },
            ..WorkerTiming::default()
        },
        metrics.clone(),
    ));
    // Subscribed before the first batch, so no commit after it goes unheard;
    // without projections nothing waits for events, so no connection is held.
    let wake = if projections.is_empty() {
        Arc::new(Notify::new())
    } else {
        match &replica {
            Some(replica) => wakeup::listen_split(pool.clone(), replica.pool().clone()).await?,
            None => wakeup::listen(pool.clone()).await?,
        }
    };
    if !projections.is_empty() {
        tracing::info!(
            count = projections.len(),
            partition = partition.key(),
            total = partition.total(),
            "projections registered"
        );
    }

    let (gate, permits) = match args.cluster_mode {
        ClusterMode::Hotcold => {
            let clock = TokioClock::start();
            let (permits, gate) = WriteGate::new(clock);
            (Some(gate), Some((permits, clock)))
        }
        ClusterMode::Single => (None, None),
    };
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
            store: store.clone(),
            cluster: cluster.clone(),
            node: node.clone(),
            gate: gate.clone(),
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

    match (cluster, gate, permits) {
        (Some(cluster), Some(gate), Some((permits, clock))) => {
            let identity = NodeIdentity {
                cluster,
                node,
                daemon_id: args.daemon_id.unwrap_or_else(Uuid::new_v4),
            };
            // Listen before joining: once the row says "cold", an operator or
            // a test may stop the hot node, and its release must not be missed.
            let listener = store.listen_releases().await?;
            store
                .register(
                    &identity,
                    args.min_cold_standbys,
                    &ClusterTiming::from(&config),
                )
                .await?;
            tracing::info!(cluster = %identity.cluster, node = %identity.node, daemon_id = %identity.daemon_id, "joined as a standby");
            let (signal_tx, signal_rx) = mpsc::channel(16);
            let to_driver = signal_tx.clone();
            tokio::spawn(async move {
                shutdown.await;
                tracing::info!(
                    "stopping: finishing the current batch, then handing the lease over"
                );
                let _ = to_driver.send(Signal::Shutdown).await;
            });
            forward_releases(
                store.clone(),
                listener,
                identity.cluster.clone(),
                signal_tx.clone(),
                Duration::from_secs(1),
            );
            // A standby waits on the leader's session, so a crash wakes it
            // at once. Through a transaction pooler a wait's lock could be
            // left on a pooled server connection: off with the leases.
            let (watch_tx, watch_rx) = watch::channel(None);
            if sessions {
                watch_leader_sessions(
                    PgSessionWatch::new(&pool),
                    watch_rx,
                    signal_tx,
                    Duration::from_secs(1),
                );
                // Opened now rather than by the first grant, which then
                // costs one round trip instead of a new connection.
                if let Some(session) = store.lease_session() {
                    if let Err(e) = session.connect().await {
                        tracing::warn!(error = %e, "cannot open the lease session yet");
                    }
                }
            }
            let machine = NodeMachine::new(identity.node.clone(), config.clone(), clock.now());
            let store = Arc::new(store);
            // Without projections the hot node still proves its write path
            // through the fence every heartbeat.
            let work: Box<dyn Processor> = if projections.is_empty() {
                Box::new(WriteProbe::new(
                    store.clone(),
                    identity.clone(),
                    config.heartbeat,
                ))
            } else {
                Box::new(ProjectionProcessor::new(worker, wake))
            };
            let driver = Driver::new(store, identity, config, work, clock);
            let driver = if sessions {
                driver.watch_sessions(watch_tx)
            } else {
                driver
            };
            driver.run(machine, signal_rx, permits, gate).await?;
        }
        _ => {
            // Without coordination the node runs its projections until told
            // to stop, then finishes the current batch.
            let (stop_tx, stop_rx) = watch::channel(false);
            let task = tokio::spawn(async move { worker.run(None, &wake, stop_rx).await });
            shutdown.await;
            tracing::info!("stopping: finishing the current batch");
            let _ = stop_tx.send(true);
            let _ = task.await;
        }
    }
    Ok(())
}

/// A batch's budget without a lease: both tries of a batch (all at once,
/// then event by event) fit inside the worker's own 30-second bound, so the
/// database ends a long batch before the client gives up on it.
const SINGLE_MODE_BATCH_BUDGET: Duration = Duration::from_secs(12);

/// Where this node's batches run and read.
struct Placement<'a> {
    partition: PartitionSpec,
    node: &'a str,
    /// The standby events are read from, if not the primary.
    replica: Option<&'a ReadReplica>,
}

fn batches(
    projections: &[Arc<dyn Projection>],
    at: Placement<'_>,
    pool: &PgPool,
    lease: Option<(PgLeaseStore, String)>,
    budget: Duration,
) -> Vec<Arc<dyn Batches>> {
    let owner = BatchOwner {
        node: Some(at.node.to_owned()),
        epoch: None,
    };
    projections
        .iter()
        .map(|p| {
            let mut runner =
                ProjectionRunner::new(p.clone(), at.partition, owner.clone()).with_budget(budget);
            if let Some(replica) = at.replica {
                runner = runner.reading_from(replica.clone());
            }
            Arc::new(PgBatches::new(runner, pool.clone(), lease.clone())) as Arc<dyn Batches>
        })
        .collect()
}

/// The kernel's host name: stable per host or pod, unlike a process id.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "rillflow-node".to_owned())
}
