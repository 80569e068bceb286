//! The lease store on PostgreSQL, and the fence every projection write runs
//! under.
//!
//! Every operation is one SQL statement (common table expressions included)
//! and every time judgement in it uses `clock_timestamp()`, the database's
//! clock at the moment the statement looks, rather than `now()`, which is
//! frozen at the start of the transaction (LEASE-2). Callers get durations
//! computed in SQL, never timestamps. Names and values are always bound
//! parameters; the only identifier that reaches SQL is the fixed
//! notification channel [`RELEASE_CHANNEL`] (SEC-1).
//!
//! Lock interplay (LEASE-1): a grant, a renewal, a release and an operator
//! request all update the cluster row, so each waits for every fenced
//! transaction ([`PgLeaseStore::begin_fenced`]) holding that row `FOR SHARE`.
//! Heartbeats and registrations of nodes touch only node rows (and take the
//! foreign key's `FOR KEY SHARE`), so they never wait for writers.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rillflow_core::lease::{
    AcquireOutcome, ClusterTiming, ClusterView, Grant, NodeRole, RenewOutcome,
};
use sqlx::postgres::{PgListener, PgPool};
use sqlx::{Postgres, Row, Transaction};
use uuid::Uuid;

use super::lease_session::PgLeaseSession;
use super::lease_store::{FencedWrites, LeaseError, LeaseStore, NodeIdentity};
use super::pg_lease_rows::{request_written, to_u64, views_from_rows};
use super::pg_lease_sql::*;
use super::release_notices::ReleaseNotices;

/// The channel a release is announced on; the payload is the cluster name.
///
/// Channel names are identifiers, so the cluster name is never part of one.
pub const RELEASE_CHANNEL: &str = "rf_daemon_release";

/// Longest cluster or node name, in characters.
pub const MAX_NAME_CHARS: usize = 63;

/// Failures of [`PgLeaseStore::begin_fenced`].
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// The epoch is no longer the cluster's current one, or its lease has
    /// expired (or was released, or the cluster does not exist): nothing may
    /// be written under it.
    #[error("epoch {epoch} is fenced: the lease moved on or expired")]
    Fenced {
        /// The epoch the writer asked to write under.
        epoch: u64,
    },
    /// The fence check timed out (statement or lock timeout).
    #[error("fence check timed out: {0}")]
    Timeout(String),
    /// The database failed; nothing was written.
    #[error("fence check failed: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for FenceError {
    fn from(err: sqlx::Error) -> Self {
        match err.as_database_error().and_then(|db| db.code()).as_deref() {
            Some("57014") | Some("55P03") => FenceError::Timeout(short_message(&err)),
            _ => FenceError::Database(err),
        }
    }
}

/// [`LeaseStore`] on PostgreSQL (schema `sql/0002_hotcold_daemon.up.sql`).
#[derive(Debug, Clone)]
pub struct PgLeaseStore {
    pool: PgPool,
    session: Option<Arc<PgLeaseSession>>,
}

impl PgLeaseStore {
    /// A store on `pool` whose leases are judged by their ttl alone. The
    /// pool's statement, lock and idle-in-transaction timeouts bound how
    /// long a stuck peer can delay any of these statements (LEASE-3).
    pub fn new(pool: PgPool) -> Self {
        PgLeaseStore {
            pool,
            session: None,
        }
    }

    /// A store whose grants and renewals run on a lease session of their
    /// own (sql/0017), so the leases it is granted end with this process's
    /// session as well as with their ttl. Needs real sessions: not
    /// through a transaction-pooling PgBouncer.
    pub fn with_session_leases(pool: PgPool) -> Self {
        let session = Arc::new(PgLeaseSession::new(&pool));
        PgLeaseStore {
            pool,
            session: Some(session),
        }
    }

    /// The lease session, if leases are bound to one.
    pub fn lease_session(&self) -> Option<&Arc<PgLeaseSession>> {
        self.session.as_ref()
    }

    /// The pool this store uses.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Every cluster as the database sees it, sorted by name.
    pub async fn cluster_views(&self) -> Result<Vec<ClusterView>, LeaseError> {
        let rows = sqlx::query(CLUSTER_VIEWS)
            .fetch_all(&self.pool)
            .await
            .map_err(lease_error)?;
        views_from_rows(&rows)
    }

    /// One cluster as the database sees it; None when it does not exist.
    pub async fn cluster_view(&self, cluster: &str) -> Result<Option<ClusterView>, LeaseError> {
        check_name("cluster", cluster)?;
        let rows = sqlx::query(CLUSTER_VIEW)
            .bind(cluster)
            .fetch_all(&self.pool)
            .await
            .map_err(lease_error)?;
        Ok(views_from_rows(&rows)?.into_iter().next())
    }

    /// Asks the cluster to move the lease to `node` (`--force`: even if it
    /// lags). Replaces any pending promotion; the grant to `node` clears it.
    /// Fails with [`LeaseError::InvalidName`] when the cluster or the node
    /// does not exist.
    pub async fn request_promote(
        &self,
        cluster: &str,
        node: &str,
        force: bool,
    ) -> Result<(), LeaseError> {
        check_name("cluster", cluster)?;
        check_name("node", node)?;
        let row = sqlx::query(REQUEST_PROMOTE)
            .bind(cluster)
            .bind(node)
            .bind(force)
            .fetch_one(&self.pool)
            .await
            .map_err(lease_error)?;
        request_written(&row, cluster, Some(node))
    }

    /// Asks `node` (None: the holder of the current, unexpired lease) to give
    /// its lease up; its release clears the request. With None and no valid
    /// lease there is nobody to demote and nothing is written. Fails with
    /// [`LeaseError::InvalidName`] when the cluster or the named node does
    /// not exist.
    pub async fn request_demote(
        &self,
        cluster: &str,
        node: Option<&str>,
    ) -> Result<(), LeaseError> {
        check_name("cluster", cluster)?;
        if let Some(node) = node {
            check_name("node", node)?;
        }
        let row = sqlx::query(REQUEST_DEMOTE)
            .bind(cluster)
            .bind(node)
            .fetch_one(&self.pool)
            .await
            .map_err(lease_error)?;
        match node {
            Some(_) => request_written(&row, cluster, node),
            None => {
                let cluster_exists: bool = row.try_get("cluster_exists").map_err(lease_error)?;
                if cluster_exists {
                    Ok(())
                } else {
                    Err(no_cluster(cluster))
                }
            }
        }
    }

    /// Begins the transaction a projection of `cluster` must write in under
    /// `epoch` (LEASE-1).
    ///
    /// Contract: every projection write (read-model rows, checkpoints,
    /// dead-letter rows) happens inside the returned transaction, and only a
    /// commit of it makes them count. The transaction starts by checking, by
    /// the database clock, that `epoch` is the cluster's current epoch and
    /// its lease unexpired, and keeps the cluster row locked `FOR SHARE`
    /// until it ends. Any grant of a later epoch updates that row, so it
    /// waits until this transaction commits or rolls back: a write committed
    /// under `epoch` can never interleave with a grant of `epoch + 1`, however
    /// long the writer was paused. Keep these transactions short: the
    /// holder's own renewals and any takeover wait for them, and the pool's
    /// `idle_in_transaction_session_timeout` ends a frozen one.
    ///
    /// Fails with [`FenceError::Fenced`] when the epoch is not current, its
    /// lease expired or was released, or the cluster does not exist.
    pub async fn begin_fenced(
        &self,
        cluster: &str,
        epoch: u64,
    ) -> Result<Transaction<'static, Postgres>, FenceError> {
        Self::begin_fenced_on(&self.pool, cluster, epoch).await
    }

    /// [`Self::begin_fenced`] on a connection of `pool`, which may log in
    /// as another role than this store's (a handler role): the check runs
    /// in a SECURITY DEFINER function (sql/0012), so that role needs no
    /// rights on the lease tables.
    pub async fn begin_fenced_on(
        pool: &PgPool,
        cluster: &str,
        epoch: u64,
    ) -> Result<Transaction<'static, Postgres>, FenceError> {
        let Ok(epoch_param) = i64::try_from(epoch) else {
            return Err(FenceError::Fenced { epoch });
        };
        let mut tx = pool.begin().await?;
        let current: bool = sqlx::query_scalar(FENCE)
            .bind(cluster)
            .bind(epoch_param)
            .fetch_one(&mut *tx)
            .await?;
        if !current {
            tx.rollback().await?;
            return Err(FenceError::Fenced { epoch });
        }
        Ok(tx)
    }

    /// Commits the hot node's write-path probe under the fence of `epoch`:
    /// the same path every projection write takes, exercised once per
    /// heartbeat so a hot node that cannot write shows in its row.
    pub async fn probe_fenced_write(
        &self,
        node: &NodeIdentity,
        epoch: u64,
    ) -> Result<(), FenceError> {
        let mut tx = self.begin_fenced(&node.cluster, epoch).await?;
        sqlx::query(PROBE)
            .bind(&node.cluster)
            .bind(&node.node)
            .bind(i64::try_from(epoch).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A listener subscribed to [`RELEASE_CHANNEL`]: each notification's
    /// payload is the name of a cluster whose leader just released its
    /// lease. It holds one connection of the pool while it lives.
    pub async fn listen_releases(&self) -> Result<PgListener, LeaseError> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(lease_error)?;
        listener
            .listen(RELEASE_CHANNEL)
            .await
            .map_err(lease_error)?;
        Ok(listener)
    }
}

#[async_trait]
impl ReleaseNotices for PgLeaseStore {
    type Listener = PgListener;

    async fn listen(&self) -> Result<PgListener, LeaseError> {
        self.listen_releases().await
    }

    async fn next(&self, listener: &mut PgListener) -> Result<String, LeaseError> {
        let notification = listener.recv().await.map_err(lease_error)?;
        Ok(notification.payload().to_owned())
    }
}

#[async_trait]
impl FencedWrites for PgLeaseStore {
    async fn fenced_write(&self, node: &NodeIdentity, epoch: u64) -> Result<bool, LeaseError> {
        match self.probe_fenced_write(node, epoch).await {
            Ok(()) => Ok(true),
            Err(FenceError::Fenced { .. }) => Ok(false),
            Err(FenceError::Timeout(e)) => Err(LeaseError::Timeout(e)),
            Err(FenceError::Database(e)) => Err(lease_error(e)),
        }
    }
}

#[async_trait]
impl LeaseStore for PgLeaseStore {
    async fn register(
        &self,
        node: &NodeIdentity,
        min_cold_standbys: u32,
        timing: &ClusterTiming,
    ) -> Result<(), LeaseError> {
        check_identity(node)?;
        let min = i32::try_from(min_cold_standbys).map_err(|_| {
            LeaseError::InvalidName(format!(
                "min_cold_standbys {min_cold_standbys} is out of range"
            ))
        })?;
        let ms = |what: &str, v: i64| {
            i32::try_from(v)
                .map_err(|_| LeaseError::InvalidName(format!("{what} of {v} ms is out of range")))
        };
        let row = sqlx::query(REGISTER)
            .bind(&node.cluster)
            .bind(&node.node)
            .bind(node.daemon_id)
            .bind(min)
            .bind(ms("heartbeat", timing.heartbeat_ms)?)
            .bind(ms("lease ttl", timing.lease_ttl_ms)?)
            .bind(ms("lease grace", timing.lease_grace_ms)?)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| {
                if unique_violation(&e) {
                    LeaseError::InvalidName(format!(
                        "node {:?} of cluster {:?} or daemon id {} was registered concurrently \
                         by another daemon",
                        node.node, node.cluster, node.daemon_id
                    ))
                } else {
                    lease_error(e)
                }
            })?;
        let other_owner: Option<Uuid> = row.try_get("other_owner").map_err(lease_error)?;
        if let Some(owner) = other_owner {
            let current: Option<String> = row.try_get("current_name").map_err(lease_error)?;
            return Err(LeaseError::InvalidName(format!(
                "node name {:?} of cluster {:?} belongs to daemon {owner}, while daemon {} \
                 is registered as {:?}",
                node.node,
                node.cluster,
                node.daemon_id,
                current.unwrap_or_default()
            )));
        }
        let written: i64 = row.try_get("written").map_err(lease_error)?;
        if written != 1 {
            return Err(LeaseError::Unavailable(
                "registration raced with a concurrent change of the node row; retry".to_owned(),
            ));
        }
        Ok(())
    }

    async fn heartbeat(
        &self,
        node: &NodeIdentity,
        role: NodeRole,
        epoch: u64,
    ) -> Result<ClusterView, LeaseError> {
        check_identity(node)?;
        let epoch = i64::try_from(epoch)
            .map_err(|_| LeaseError::Unavailable(format!("epoch {epoch} is out of range")))?;
        let replaced = |by: Uuid| LeaseError::Replaced {
            cluster: node.cluster.clone(),
            node: node.node.clone(),
            by,
        };
        let rows = sqlx::query(HEARTBEAT)
            .bind(&node.cluster)
            .bind(&node.node)
            .bind(node.daemon_id)
            .bind(role.as_str())
            .bind(epoch)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| {
                if unique_violation(&e) {
                    // Our daemon id already names another row of the
                    // cluster: another process runs with this id under a
                    // different name (`--daemon-id` reused).
                    replaced(node.daemon_id)
                } else if foreign_key_violation(&e) {
                    LeaseError::Unavailable(format!("cluster {:?} is not registered", node.cluster))
                } else {
                    lease_error(e)
                }
            })?;
        let Some(first) = rows.first() else {
            return Err(LeaseError::Unavailable(format!(
                "cluster {:?} disappeared during the heartbeat",
                node.cluster
            )));
        };
        let written: i64 = first.try_get("written").map_err(lease_error)?;
        if written != 1 {
            let owner: Option<Uuid> = first.try_get("owner").map_err(lease_error)?;
            return Err(match owner {
                Some(by) if by != node.daemon_id => replaced(by),
                _ => LeaseError::Unavailable(
                    "heartbeat raced with a concurrent change of the node row; retry".to_owned(),
                ),
            });
        }
        views_from_rows(&rows)?
            .into_iter()
            .next()
            .ok_or_else(|| LeaseError::Unavailable("empty cluster view".to_owned()))
    }

    async fn try_acquire(
        &self,
        node: &NodeIdentity,
        ttl: Duration,
        grace: Duration,
    ) -> Result<AcquireOutcome, LeaseError> {
        check_identity(node)?;
        let query = |key: Option<i64>| {
            sqlx::query(TRY_ACQUIRE)
                .bind(&node.cluster)
                .bind(&node.node)
                .bind(node.daemon_id)
                .bind(micros(ttl))
                .bind(micros(grace))
                .bind(key)
        };
        let row = match &self.session {
            None => query(None).fetch_optional(&self.pool).await,
            Some(session) => session.fetch_optional(|key| query(Some(key))).await,
        }
        .map_err(lease_error)?;
        let Some(row) = row else {
            return Ok(AcquireOutcome::Denied);
        };
        let epoch: i64 = row.try_get("epoch").map_err(lease_error)?;
        let remaining: i64 = row.try_get("remaining_us").map_err(lease_error)?;
        let bound: bool = row.try_get("session_bound").map_err(lease_error)?;
        if self.session.is_some() && !bound {
            warn_unbound();
        }
        Ok(AcquireOutcome::Granted(Grant {
            epoch: to_u64(epoch, "epoch")?,
            valid_for: from_micros(remaining),
        }))
    }

    async fn renew(
        &self,
        node: &NodeIdentity,
        epoch: u64,
        ttl: Duration,
    ) -> Result<RenewOutcome, LeaseError> {
        check_identity(node)?;
        let Ok(epoch) = i64::try_from(epoch) else {
            // No grant ever had such an epoch.
            return Ok(RenewOutcome::Lost);
        };
        let query = || {
            sqlx::query(RENEW)
                .bind(&node.cluster)
                .bind(&node.node)
                .bind(node.daemon_id)
                .bind(epoch)
                .bind(micros(ttl))
        };
        let row = match &self.session {
            None => query().fetch_optional(&self.pool).await,
            Some(session) => session.fetch_optional(|_| query()).await,
        }
        .map_err(lease_error)?;
        let remaining: Option<i64> = row.map(|r| r.try_get(0)).transpose().map_err(lease_error)?;
        Ok(match remaining {
            Some(us) => RenewOutcome::Renewed {
                valid_for: from_micros(us),
            },
            None => RenewOutcome::Lost,
        })
    }

    async fn release(&self, node: &NodeIdentity, epoch: u64) -> Result<(), LeaseError> {
        check_identity(node)?;
        let Ok(epoch) = i64::try_from(epoch) else {
            return Ok(());
        };
        // On the pool: a release needs no session, and one whose lease
        // session broke must still get through.
        sqlx::query(RELEASE)
            .bind(&node.cluster)
            .bind(&node.node)
            .bind(epoch)
            .execute(&self.pool)
            .await
            .map_err(lease_error)?;
        Ok(())
    }

    async fn mark_stopped(&self, node: &NodeIdentity) -> Result<(), LeaseError> {
        check_identity(node)?;
        sqlx::query(MARK_STOPPED)
            .bind(&node.cluster)
            .bind(&node.node)
            .bind(node.daemon_id)
            .execute(&self.pool)
            .await
            .map_err(lease_error)?;
        Ok(())
    }
}

/// Says once per process that a grant could not be bound to the lease
/// session: the lock and the grant ran on different server connections.
fn warn_unbound() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "the lease was granted on a connection that does not hold this daemon's session \
             lock, so it is judged by its ttl alone; behind a transaction-pooling PgBouncer, \
             run with --session-leases off"
        );
    }
}

// ---------------------------------------------------------------------------
// Errors.

pub(super) fn no_cluster(cluster: &str) -> LeaseError {
    LeaseError::InvalidName(format!("no cluster named {cluster:?}"))
}

/// Microseconds of `d` as a bound value; absurd durations saturate (the
/// database then refuses the out-of-range timestamp).
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// A remaining time measured by the database; negative means none.
fn from_micros(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

fn check_identity(node: &NodeIdentity) -> Result<(), LeaseError> {
    check_names(&node.cluster, &node.node)
}

/// Checks a cluster and node name the way every lease statement does, so a
/// command can refuse bad names before it touches the database.
pub fn check_names(cluster: &str, node: &str) -> Result<(), LeaseError> {
    check_name("cluster", cluster)?;
    check_name("node", node)
}

/// Names are 1 to 63 printable characters without surrounding spaces, so
/// they fit every display and never carry control characters into logs.
fn check_name(what: &str, name: &str) -> Result<(), LeaseError> {
    let chars = name.chars().count();
    let problem = if chars == 0 {
        Some("is empty")
    } else if chars > MAX_NAME_CHARS {
        Some("is longer than 63 characters")
    } else if name.chars().any(char::is_control) {
        Some("contains control characters")
    } else if name.trim() != name {
        Some("starts or ends with white space")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(LeaseError::InvalidName(format!(
            "{what} name {name:?} {problem}"
        ))),
    }
}

fn unique_violation(err: &sqlx::Error) -> bool {
    sqlstate(err).as_deref() == Some("23505")
}

fn foreign_key_violation(err: &sqlx::Error) -> bool {
    sqlstate(err).as_deref() == Some("23503")
}

fn sqlstate(err: &sqlx::Error) -> Option<String> {
    err.as_database_error()
        .and_then(|db| db.code())
        .map(|c| c.into_owned())
}

/// Maps a database failure to a lease error with a short, one-line message:
/// statement and lock timeouts are [`LeaseError::Timeout`], everything else
/// [`LeaseError::Unavailable`].
pub(super) fn lease_error(err: sqlx::Error) -> LeaseError {
    let message = short_message(&err);
    match sqlstate(&err).as_deref() {
        // query_canceled (statement_timeout) and lock_not_available (lock_timeout)
        Some("57014") | Some("55P03") => LeaseError::Timeout(message),
        _ => LeaseError::Unavailable(message),
    }
}

/// One line of at most 160 characters describing `err`, without connection
/// details that could carry credentials.
fn short_message(err: &sqlx::Error) -> String {
    let text = match err {
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => format!("{} (SQLSTATE {code})", db.message()),
            None => db.message().to_owned(),
        },
        sqlx::Error::Configuration(_) => "invalid database configuration".to_owned(),
        sqlx::Error::Tls(_) => "TLS failure talking to the database".to_owned(),
        sqlx::Error::Io(e) => format!("cannot talk to the database: {e}"),
        sqlx::Error::PoolTimedOut => "no database connection became free in time".to_owned(),
        sqlx::Error::PoolClosed => "the connection pool is closed".to_owned(),
        other => other.to_string(),
    };
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(160) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["a", "billing-projections", "nœud 2", &"x".repeat(63)] {
            assert!(check_name("node", good).is_ok(), "{good:?}");
        }
        for bad in ["", " a", "a ", "a\nb", "a\u{7f}", &"x".repeat(64)] {
            assert!(
                matches!(check_name("node", bad), Err(LeaseError::InvalidName(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn invalid_name_messages_stay_on_one_line() {
        let Err(LeaseError::InvalidName(msg)) = check_name("cluster", "a\nb") else {
            panic!("a newline is not allowed");
        };
        assert!(!msg.contains('\n'), "{msg}");
    }

    #[test]
    fn durations_cross_as_microseconds() {
        assert_eq!(micros(Duration::from_millis(1500)), 1_500_000);
        assert_eq!(micros(Duration::MAX), i64::MAX);
        assert_eq!(from_micros(-5), Duration::ZERO);
        assert_eq!(from_micros(2_000), Duration::from_millis(2));
    }
}
