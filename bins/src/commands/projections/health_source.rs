//! What the daemon's health server reports: the database's view of every
//! cluster, plus this process's own role.

use async_trait::async_trait;
use rillflow_adapters::daemon::{PgLeaseStore, WriteGate};
use rillflow_adapters::health::HealthSource;
use rillflow_core::lease::health::{evaluate, ClusterHealth, HealthRules};
use serde_json::{json, Value};

pub struct DaemonHealth {
    pub store: PgLeaseStore,
    pub cluster: Option<String>,
    pub node: String,
    pub gate: Option<WriteGate>,
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
