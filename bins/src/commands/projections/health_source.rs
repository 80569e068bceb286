//! What the daemon's health server reports: the database's view of every
//! cluster and projection and the archive counters, plus this process's own role and batch timings.

use std::sync::Arc;

use async_trait::async_trait;
use prometheus::proto::MetricFamily;
use rillflow_adapters::archive::ArchiveStats;
use rillflow_adapters::daemon::{HistoryWatch, PgLeaseStore, WriteGate};
use rillflow_adapters::health::{self, diag, HealthSource};
use rillflow_adapters::projection::{ProjectionCatalog, ProjectionStatus, RuntimeMetrics};
use rillflow_adapters::replica::ReplicaWatch;
use rillflow_core::lease::health::{evaluate, ClusterHealth, HealthRules};
use serde_json::{json, Value};

use crate::cli::{RunLoopArgs, Switch};

pub struct DaemonHealth {
    pub store: PgLeaseStore,
    pub cluster: Option<String>,
    pub node: String,
    pub gate: Option<WriteGate>,
    pub catalog: ProjectionCatalog,
    pub max_lag: i64,
    pub metrics: Arc<RuntimeMetrics>,
    /// What it noticed of a changed history (a promotion, a vanished
    /// checkpoint).
    pub history: Arc<HistoryWatch>,
    /// This daemon's settings, secrets redacted, for the diagnostics bundle.
    pub config: Value,
    /// The schema tenant it serves, labelled on every metric.
    pub tenant: Option<String>,
    /// The standby it reads events from, if any.
    pub replica: Option<ReplicaWatch>,
}

/// Serves `source` on `addr` from the background snapshot, the bundle over
/// HTTP only with `diag_token`; the server runs until the process ends.
pub async fn serve(
    addr: std::net::SocketAddr,
    source: DaemonHealth,
    diag_token: Option<&str>,
) -> anyhow::Result<()> {
    use anyhow::Context;
    let diag = match diag_token {
        Some(token) => health::DiagAccess::Token(token.into()),
        None => health::DiagAccess::Off,
    };
    let (bound, _server) = health::serve(
        addr,
        Arc::new(source),
        diag,
        health::RefreshConfig::default(),
    )
    .await
    .with_context(|| format!("cannot serve health on {addr}"))?;
    tracing::info!(%bound, "health and metrics served");
    Ok(())
}

/// The daemon's settings as the diagnostics bundle shows them.
pub fn daemon_config(args: &RunLoopArgs, node: &str) -> Value {
    diag::redact(json!({
        "database_url": args.db.database_url,
        "read_database_url": args.source.read.read_database_url,
        "tenant": args.db.tenant.as_ref().map(ToString::to_string),
        "cluster_mode": format!("{:?}", args.cluster_mode).to_lowercase(),
        "cluster_name": args.cluster_name,
        "node_name": node,
        "heartbeat_secs": args.heartbeat_secs,
        "lease_ttl_secs": args.lease_ttl_secs,
        "lease_grace_secs": args.lease_grace_secs,
        "min_cold_standbys": args.min_cold_standbys,
        "session_leases": args.session_leases == Switch::On,
        "health_bind": args.health_bind.map(|a| a.to_string()),
        "diag_over_http": args.diag_token.is_some(),
        "projections": args.source.projections.as_ref().map(|p| p.display().to_string()),
        "partitions": format!("{:?}", args.source.partitions).to_lowercase(),
        "partition_key": args.source.partition_key,
        "total_partitions": args.source.total_partitions,
        "poll_interval_ms": args.poll_interval_ms,
        "max_lag": args.max_lag,
    }))
}

#[async_trait]
impl HealthSource for DaemonHealth {
    async fn clusters(&self) -> Result<Vec<ClusterHealth>, String> {
        let views = self
            .store
            .cluster_views()
            .await
            .map_err(|e| e.to_string())?;
        Ok(views
            .iter()
            .map(|v| evaluate(v, &HealthRules::for_timing(&v.timing)))
            .collect())
    }

    async fn projections(&self) -> Result<Vec<ProjectionStatus>, String> {
        self.catalog.list().await.map_err(|e| e.to_string())
    }

    async fn archive(&self) -> Result<Option<ArchiveStats>, String> {
        ArchiveStats::load(self.catalog.pool())
            .await
            .map(Some)
            .map_err(|e| e.to_string())
    }

    fn max_lag(&self) -> i64 {
        self.max_lag
    }

    fn tenant(&self) -> Option<String> {
        self.tenant.clone()
    }

    fn local_metrics(&self) -> Vec<MetricFamily> {
        let mut families = self.metrics.gather();
        families.extend(self.history.gather());
        if let Some(replica) = &self.replica {
            families.extend(replica.gather());
        }
        families
    }

    fn local(&self) -> Value {
        let epoch = self.gate.as_ref().and_then(WriteGate::epoch_now);
        let role = match (&self.gate, epoch) {
            (None, _) => "single",
            (Some(_), Some(_)) => "hot",
            (Some(_), None) => "cold",
        };
        json!({
            "name": self.node,
            "cluster": self.cluster,
            "role": role,
            "epoch": epoch,
            "tenant": self.tenant,
            "read_replica": self.replica.as_ref().map(ReplicaWatch::report),
        })
    }

    async fn diag(&self) -> Option<Value> {
        Some(diag::bundle(self.catalog.pool(), self.local(), self.config.clone()).await)
    }
}
