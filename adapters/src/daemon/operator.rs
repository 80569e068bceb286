//! The operator's requests to a hot/cold cluster (`projections promote` and
//! `demote`): what the CLI checks before it writes a request, and the
//! statements that record it, behind a trait so the simulation's operator
//! runs the very same checks against its model database (SIM-1).
//!
//! A request only names a node on the cluster row; the daemons read it with
//! their heartbeats and act on it through core's failover rules
//! (`should_step_down`, `should_try_acquire`). The grant to a promoted node
//! clears its promotion, a release by a demoted node its demotion, and a
//! grant to any other node a demotion (`TRY_ACQUIRE`, `RELEASE` in
//! `pg_lease_sql.rs`).

use async_trait::async_trait;
use rillflow_core::lease::failover::{check_promote, FailoverRules, PromoteRefusal};
use rillflow_core::lease::ClusterView;

use super::lease_store::LeaseError;
use super::pg_lease_store::PgLeaseStore;

/// Reading a cluster and recording operator requests, one statement each.
#[async_trait]
pub trait ClusterAdmin: Send + Sync {
    /// The cluster as the database sees it now; None when it does not exist.
    async fn cluster_view(&self, cluster: &str) -> Result<Option<ClusterView>, LeaseError>;

    /// Records a promotion of `node` (`force`: even a lagging one), replacing
    /// any pending one. [`LeaseError::InvalidName`] when the cluster or the
    /// node does not exist. Checks nothing else: see [`promote`].
    async fn request_promote(
        &self,
        cluster: &str,
        node: &str,
        force: bool,
    ) -> Result<(), LeaseError>;

    /// Records a demotion of `node`, or (None) of the holder of the current
    /// unexpired lease; with None and no such lease nothing is written.
    /// [`LeaseError::InvalidName`] when the cluster or the named node does
    /// not exist.
    async fn request_demote(&self, cluster: &str, node: Option<&str>) -> Result<(), LeaseError>;
}

#[async_trait]
impl ClusterAdmin for PgLeaseStore {
    async fn cluster_view(&self, cluster: &str) -> Result<Option<ClusterView>, LeaseError> {
        PgLeaseStore::cluster_view(self, cluster).await
    }

    async fn request_promote(
        &self,
        cluster: &str,
        node: &str,
        force: bool,
    ) -> Result<(), LeaseError> {
        PgLeaseStore::request_promote(self, cluster, node, force).await
    }

    async fn request_demote(&self, cluster: &str, node: Option<&str>) -> Result<(), LeaseError> {
        PgLeaseStore::request_demote(self, cluster, node).await
    }
}

/// Why an operator request was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// The cluster does not exist.
    #[error("no cluster named {0:?}")]
    NoCluster(String),
    /// The promotion breaks a rule of [`check_promote`] (LEASE-4).
    #[error(transparent)]
    Refused(#[from] PromoteRefusal),
    /// The cluster has no node of that name.
    #[error("cluster {cluster} has no node {node:?}")]
    NoNode {
        /// The cluster.
        cluster: String,
        /// The node asked for.
        node: String,
    },
    /// No node holds a valid lease, so there is nobody to demote.
    #[error("cluster {0} has no hot node to demote")]
    NoHotNode(String),
    /// The node named for demotion does not hold the valid lease.
    #[error("{node} is not hot in cluster {cluster}")]
    NotHot {
        /// The cluster.
        cluster: String,
        /// The node asked for.
        node: String,
    },
    /// The database failed or refused a name.
    #[error(transparent)]
    Store(#[from] LeaseError),
}

/// `projections promote`: reads the cluster, checks the promotion with
/// [`check_promote`] under the timing the cluster records, and records it.
/// Returns the view it judged.
pub async fn promote<S: ClusterAdmin + ?Sized>(
    store: &S,
    cluster: &str,
    node: &str,
    force: bool,
) -> Result<ClusterView, OperatorError> {
    let view = store
        .cluster_view(cluster)
        .await?
        .ok_or_else(|| OperatorError::NoCluster(cluster.to_owned()))?;
    check_promote(&view, node, force, &FailoverRules::for_timing(&view.timing))?;
    store.request_promote(cluster, node, force).await?;
    Ok(view)
}

/// `projections demote`: the named node, or (None) the holder of the valid
/// lease, must hold the valid lease; records its demotion and returns its
/// name.
pub async fn demote<S: ClusterAdmin + ?Sized>(
    store: &S,
    cluster: &str,
    node: Option<&str>,
) -> Result<String, OperatorError> {
    let view = store
        .cluster_view(cluster)
        .await?
        .ok_or_else(|| OperatorError::NoCluster(cluster.to_owned()))?;
    let target = match (node, &view.leader) {
        (Some(n), _) if view.node(n).is_none() => {
            return Err(OperatorError::NoNode {
                cluster: cluster.to_owned(),
                node: n.to_owned(),
            })
        }
        (Some(n), _) => n.to_owned(),
        (None, Some(leader)) if view.holds_valid_lease(leader) => leader.clone(),
        (None, _) => return Err(OperatorError::NoHotNode(cluster.to_owned())),
    };
    if !view.holds_valid_lease(&target) {
        return Err(OperatorError::NotHot {
            cluster: cluster.to_owned(),
            node: target,
        });
    }
    store.request_demote(cluster, Some(&target)).await?;
    Ok(target)
}
