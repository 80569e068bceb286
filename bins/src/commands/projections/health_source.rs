//! What the daemon's health server reports: the database's view of every
//! cluster and projection and the archive counters, plus this process's own role and batch timings.

use std::sync::Arc;

use async_trait::async_trait;
use prometheus::proto::MetricFamily;
use rillflow_adapters::archive::ArchiveStats;
use rillflow_adapters::daemon::{PgLeaseStore, WriteGate};
use rillflow_adapters::health::HealthSource;
use rillflow_adapters::projection::{ProjectionCatalog, ProjectionStatus, RuntimeMetrics};
use rillflow_core::lease::health::{evaluate, ClusterHealth, HealthRules};
use serde_json::{json, Value};

pub struct DaemonHealth {
    pub store: PgLeaseStore,
    pub cluster: Option<String>,
    pub node: String,
    pub gate: Option<WriteGate>,
    pub catalog: ProjectionCatalog,
    pub max_lag: i64,
    pub metrics: Arc<RuntimeMetrics>,
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

    fn local_metrics(&self) -> Vec<MetricFamily> {
        self.metrics.gather()
    }

    fn local(&self) -> Value {
        let epoch = self.gate.as_ref().and_then(WriteGate::epoch_now);
        let role = match (&self.gate, epoch) {
            (None, _) => "single",
            (Some(_), Some(_)) => "hot",
            (Some(_), None) => "cold",
        };
        json!({ "name": self.node, "cluster": self.cluster, "role": role, "epoch": epoch })
    }
}
