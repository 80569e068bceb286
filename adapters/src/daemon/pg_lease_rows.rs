//! Decoding the rows of the lease statements (`pg_lease_sql.rs`) into the
//! core's cluster views, and the outcome of operator requests.

use rillflow_core::lease::{
    ClusterTiming, ClusterView, LeaseSession, NodeRole, NodeView, PromoteRequest,
};
use sqlx::postgres::PgRow;
use sqlx::{Postgres, Row};

use super::lease_store::LeaseError;
use super::pg_lease_store::{lease_error, no_cluster};

/// Groups view rows (ordered by cluster, then node) into cluster views.
pub(super) fn views_from_rows(rows: &[PgRow]) -> Result<Vec<ClusterView>, LeaseError> {
    let mut views: Vec<ClusterView> = Vec::new();
    for row in rows {
        let cluster: String = get(row, "cluster_name")?;
        if views.last().is_none_or(|v| v.cluster != cluster) {
            let promote_node: Option<String> = get(row, "promote_node")?;
            let force: bool = get(row, "promote_force")?;
            let min: i32 = get(row, "min_cold_standbys")?;
            views.push(ClusterView {
                cluster,
                epoch: to_u64(get(row, "cluster_epoch")?, "epoch")?,
                leader: get(row, "leader_node")?,
                lease_remaining_ms: get(row, "lease_remaining_ms")?,
                min_cold_standbys: u32::try_from(min).map_err(|_| corrupt("min_cold_standbys"))?,
                timing: ClusterTiming {
                    heartbeat_ms: get::<i32>(row, "heartbeat_ms")?.into(),
                    lease_ttl_ms: get::<i32>(row, "lease_ttl_ms")?.into(),
                    lease_grace_ms: get::<i32>(row, "lease_grace_ms")?.into(),
                },
                since_last_failover_ms: get(row, "since_last_failover_ms")?,
                promote: promote_node.map(|node| PromoteRequest { node, force }),
                demote: get(row, "demote_node")?,
                nodes: Vec::new(),
                lease_session: lease_session(row)?,
            });
        }
        let Some(name) = get::<Option<String>>(row, "node_name")? else {
            continue;
        };
        let role: String = get(row, "role")?;
        let node = NodeView {
            name,
            role: NodeRole::parse(&role).ok_or_else(|| corrupt("node role"))?,
            epoch: to_u64(get(row, "node_epoch")?, "node epoch")?,
            heartbeat_age_ms: get(row, "heartbeat_age_ms")?,
        };
        views
            .last_mut()
            .expect("a view was pushed for this row's cluster above")
            .nodes
            .push(node);
    }
    Ok(views)
}

/// The session lock a view row's lease is bound to, and whether a session
/// still holds it.
fn lease_session(row: &PgRow) -> Result<Option<LeaseSession>, LeaseError> {
    let key: Option<i64> = get(row, "lease_lock_key")?;
    let alive: Option<bool> = get(row, "lease_session_alive")?;
    Ok(key.map(|key| LeaseSession {
        key,
        alive: alive.unwrap_or(false),
    }))
}

pub(super) fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T, LeaseError>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(column).map_err(lease_error)
}

pub(super) fn to_u64(value: i64, what: &str) -> Result<u64, LeaseError> {
    u64::try_from(value).map_err(|_| corrupt(what))
}

fn corrupt(what: &str) -> LeaseError {
    LeaseError::Unavailable(format!("unexpected {what} in the daemon tables"))
}

/// The outcome of a promote or demote request naming `node`.
pub(super) fn request_written(
    row: &PgRow,
    cluster: &str,
    node: Option<&str>,
) -> Result<(), LeaseError> {
    let written: i64 = get(row, "written")?;
    let cluster_exists: bool = get(row, "cluster_exists")?;
    match (written, cluster_exists, node) {
        (1, _, _) => Ok(()),
        (_, false, _) => Err(no_cluster(cluster)),
        (_, true, Some(node)) => Err(LeaseError::InvalidName(format!(
            "cluster {cluster:?} has no node named {node:?}"
        ))),
        (_, true, None) => Ok(()),
    }
}
