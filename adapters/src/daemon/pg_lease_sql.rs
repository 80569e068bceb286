//! The statements of [`PgLeaseStore`](super::pg_lease_store::PgLeaseStore),
//! schema `sql/0002_hotcold_daemon.up.sql`. Each constant is one statement;
//! `$n` are always bound values, never spliced text (SEC-1). Every time
//! judgement uses `clock_timestamp()`, the database's clock (LEASE-2).

/// The columns of a cluster view: one row per node (or one row with NULL
/// node columns for a cluster without nodes). Needs `t.now` (one
/// `clock_timestamp()` reading, so all ages in a view share one instant),
/// cluster `c` and node rows `n`. Durations in ms, rounded; NULL timestamps
/// give NULL durations.
macro_rules! view_columns {
    () => {
        "c.cluster_name,
         c.epoch AS cluster_epoch,
         c.leader_node,
         (extract(epoch FROM c.lease_expires_at - t.now) * 1000)::bigint AS lease_remaining_ms,
         c.min_cold_standbys,
         c.heartbeat_ms,
         c.lease_ttl_ms,
         c.lease_grace_ms,
         (extract(epoch FROM t.now - c.last_failover_at) * 1000)::bigint AS since_last_failover_ms,
         c.promote_node,
         c.promote_force,
         c.demote_node,
         c.lease_lock_key,
         CASE WHEN c.lease_lock_key IS NOT NULL
              THEN rf_session_lock_held(c.lease_lock_key) END AS lease_session_alive,
         n.node_name,
         n.role,
         n.epoch AS node_epoch,
         (extract(epoch FROM t.now - n.heartbeat_at) * 1000)::bigint AS heartbeat_age_ms"
    };
}

/// Every cluster as the database sees it. `MATERIALIZED` keeps the clock
/// reading a single value; "C" collation sorts names by bytes, as Rust
/// sorts strings.
macro_rules! cluster_views {
    ($scope:literal) => {
        concat!(
            "WITH t AS MATERIALIZED (SELECT clock_timestamp() AS now)
     SELECT ",
            view_columns!(),
            "
     FROM t
     CROSS JOIN rf_daemon_clusters c
     LEFT JOIN rf_daemon_nodes n ON n.cluster_name = c.cluster_name
     WHERE ",
            $scope,
            "
     ORDER BY c.cluster_name COLLATE \"C\", n.node_name COLLATE \"C\""
        )
    };
}

/// Every cluster.
pub(super) const CLUSTER_VIEWS: &str = cluster_views!("true");

/// One cluster ($1). A statement of its own rather than `$1 IS NULL OR`,
/// which a cached generic plan cannot turn into a key lookup.
pub(super) const CLUSTER_VIEW: &str = cluster_views!("c.cluster_name = $1");

/// Creates the cluster row if missing (min_cold_standbys and timing set to
/// ours), then
/// (re)claims this node's row as a cold standby: the row of our daemon id,
/// renamed to our name, if the cluster has one; else the row of our name,
/// taken over with our id; else a new row. When the name belongs to a row
/// other than our daemon id's, nothing is written and `other_owner` names
/// that row's owner.
///
/// All parts read the same snapshot, so `renamed` and `claimed` never both
/// act. The foreign key of a new node row is checked at the end of the
/// statement and sees the cluster row inserted by `new_cluster`. A
/// concurrent registration of the same cluster can win the insert; its
/// settings then stay until the next registration. The settings are updated
/// only when they differ: an update of the cluster row would wait for open
/// fenced transactions.
///
/// Rows of nodes unheard of for a day are deleted (`forgotten`): pods of a
/// Deployment get new names on every restart, and their rows would pile up
/// for ever. Never the leader's row, nor ours; a forgotten node that comes
/// back puts its row back with its next heartbeat.
pub(super) const REGISTER: &str = "
WITH forgotten AS (
    DELETE FROM rf_daemon_nodes d
    USING rf_daemon_clusters c
    WHERE d.cluster_name = $1 AND c.cluster_name = $1
      AND d.heartbeat_at < clock_timestamp() - interval '1 day'
      AND d.node_name <> $2 AND d.daemon_id <> $3
      AND c.leader_node IS DISTINCT FROM d.node_name
),
mine AS (
    SELECT node_name FROM rf_daemon_nodes WHERE cluster_name = $1 AND daemon_id = $3
),
other_owner AS (
    SELECT n.daemon_id
    FROM rf_daemon_nodes n, mine
    WHERE n.cluster_name = $1 AND n.node_name = $2 AND mine.node_name <> $2
),
new_cluster AS (
    INSERT INTO rf_daemon_clusters (cluster_name, min_cold_standbys, heartbeat_ms, lease_ttl_ms, lease_grace_ms)
    VALUES ($1, $4, $5, $6, $7)
    ON CONFLICT (cluster_name) DO NOTHING
),
settings AS (
    UPDATE rf_daemon_clusters
    SET min_cold_standbys = $4, heartbeat_ms = $5, lease_ttl_ms = $6, lease_grace_ms = $7,
        updated_at = clock_timestamp()
    WHERE cluster_name = $1
      AND (min_cold_standbys, heartbeat_ms, lease_ttl_ms, lease_grace_ms) IS DISTINCT FROM ($4, $5, $6, $7)
      AND NOT EXISTS (SELECT 1 FROM other_owner)
),
renamed AS (
    UPDATE rf_daemon_nodes
    SET node_name = $2, role = 'cold', epoch = 0, lease_token = NULL, lease_expires_at = NULL,
        heartbeat_at = clock_timestamp(), started_at = clock_timestamp()
    WHERE cluster_name = $1 AND daemon_id = $3
      AND NOT EXISTS (SELECT 1 FROM other_owner)
    RETURNING 1
),
claimed AS (
    INSERT INTO rf_daemon_nodes AS n
        (cluster_name, node_name, daemon_id, role, epoch, heartbeat_at, started_at)
    SELECT $1, $2, $3, 'cold', 0, clock_timestamp(), clock_timestamp()
    WHERE NOT EXISTS (SELECT 1 FROM mine)
    ON CONFLICT (cluster_name, node_name) DO UPDATE
    SET daemon_id = EXCLUDED.daemon_id, role = 'cold', epoch = 0,
        lease_token = NULL, lease_expires_at = NULL,
        heartbeat_at = EXCLUDED.heartbeat_at, started_at = EXCLUDED.started_at
    RETURNING 1
)
SELECT (SELECT daemon_id FROM other_owner) AS other_owner,
       (SELECT node_name FROM mine) AS current_name,
       (SELECT count(*) FROM renamed) + (SELECT count(*) FROM claimed) AS written";

/// Writes this node's role, epoch and heartbeat (keyed by cluster, name and
/// daemon id) and reads the cluster view in the same statement. An upsert,
/// so a node whose row was deleted puts it back; when another daemon id owns
/// the name the update does not apply (`written` = 0) and `owner` says who.
///
/// All parts share one snapshot, in which our row still has its old values:
/// the view therefore takes our row from `me` (the written values) and the
/// others from the table.
pub(super) const HEARTBEAT: &str = concat!(
    "WITH t AS MATERIALIZED (SELECT clock_timestamp() AS now),
     me AS (
         INSERT INTO rf_daemon_nodes AS n (cluster_name, node_name, daemon_id, role, epoch, heartbeat_at)
         SELECT $1, $2, $3, $4, $5, t.now FROM t
         ON CONFLICT (cluster_name, node_name) DO UPDATE
         SET role = EXCLUDED.role, epoch = EXCLUDED.epoch, heartbeat_at = EXCLUDED.heartbeat_at
         WHERE n.daemon_id = EXCLUDED.daemon_id
         RETURNING n.node_name, n.role, n.epoch, n.heartbeat_at
     ),
     nodes AS (
         SELECT node_name, role, epoch, heartbeat_at
         FROM rf_daemon_nodes
         WHERE cluster_name = $1 AND node_name <> $2
         UNION ALL
         SELECT node_name, role, epoch, heartbeat_at FROM me
     )
     SELECT (SELECT count(*) FROM me) AS written,
            (SELECT daemon_id FROM rf_daemon_nodes WHERE cluster_name = $1 AND node_name = $2) AS owner,
     ",
    view_columns!(),
    "
     FROM t
     CROSS JOIN rf_daemon_clusters c
     LEFT JOIN nodes n ON true
     WHERE c.cluster_name = $1
     ORDER BY n.node_name COLLATE \"C\""
);

/// Grants the lease with the next epoch if nobody holds one that is valid or
/// within `grace` ($5, µs) of its expiry, or if we hold it ourselves; only
/// to a node whose row our daemon id owns. A takeover from another node
/// whose lease ran out (not released) is an automatic failover and stamps
/// `last_failover_at` (LEASE-4). A promotion naming us is fulfilled; a
/// demotion naming someone else is moot once they lost the lease. The
/// remaining time is measured after the write, floored to µs.
///
/// A released lease (leader NULL) is free at once, which also covers a
/// promotion target taking over after the leader handed off; so is a lease
/// bound to a session lock ($6 when the grant was made, sql/0017) that no
/// session holds any more: its holder's session ended.
///
/// The grant binds the new lease to the lock key $6 only when this very
/// session holds it; otherwise (no key given, or a transaction pooler put
/// the statement on another server connection) the lease is judged by its
/// ttl alone, and `session_bound` says so.
///
/// The next epoch is at least `rf_epoch_floor()` (sql/0020): after a lossy failover the grants the old primary made
/// after the standby's last replayed commit are gone, and counting on from
/// the surviving row would hand their epochs out again, to other nodes.
/// The fence checks the epoch alone, so a node still holding such an epoch
/// could then write beside the new holder (LEASE-1).
pub(super) const TRY_ACQUIRE: &str = "
UPDATE rf_daemon_clusters c
SET epoch = greatest(c.epoch + 1, rf_epoch_floor()),
    leader_node = $2,
    lease_lock_key = CASE WHEN rf_session_lock_mine($6) THEN $6 END,
    lease_token = gen_random_uuid(),
    lease_expires_at = clock_timestamp() + $4 * interval '1 microsecond',
    lease_granted_at = clock_timestamp(),
    last_failover_at = CASE WHEN c.leader_node IS NOT NULL AND c.leader_node <> $2
                            THEN clock_timestamp() ELSE c.last_failover_at END,
    promote_node = CASE WHEN c.promote_node = $2 THEN NULL ELSE c.promote_node END,
    promote_force = CASE WHEN c.promote_node = $2 THEN false ELSE c.promote_force END,
    demote_node = CASE WHEN c.demote_node = $2 THEN c.demote_node ELSE NULL END,
    updated_at = clock_timestamp()
WHERE c.cluster_name = $1
  AND EXISTS (SELECT 1 FROM rf_daemon_nodes n
              WHERE n.cluster_name = $1 AND n.node_name = $2 AND n.daemon_id = $3)
  AND (c.leader_node IS NULL
       OR c.leader_node = $2
       OR c.lease_expires_at IS NULL
       OR c.lease_expires_at + $5 * interval '1 microsecond' < clock_timestamp()
       OR (c.lease_lock_key IS NOT NULL AND NOT rf_session_lock_held(c.lease_lock_key)))
RETURNING c.epoch,
          floor(extract(epoch FROM c.lease_expires_at - clock_timestamp()) * 1000000)::bigint
              AS remaining_us,
          c.lease_lock_key IS NOT NULL AS session_bound";

/// Extends the lease of epoch $4 to `ttl` ($5, µs) from now if we still hold
/// it and it has not expired, and, for a lease bound to a session lock, only
/// on the session that holds that lock: a node whose session was replaced
/// has lost the lease (anyone may take it) and must stand by. Never
/// shortens it: the node keeps the later of its old and new deadlines.
pub(super) const RENEW: &str = "
UPDATE rf_daemon_clusters c
SET lease_expires_at = greatest(c.lease_expires_at, clock_timestamp() + $5 * interval '1 microsecond'),
    updated_at = clock_timestamp()
WHERE c.cluster_name = $1
  AND c.leader_node = $2
  AND c.epoch = $4
  AND c.lease_expires_at > clock_timestamp()
  AND (c.lease_lock_key IS NULL OR rf_session_lock_mine(c.lease_lock_key))
  AND EXISTS (SELECT 1 FROM rf_daemon_nodes n
              WHERE n.cluster_name = $1 AND n.node_name = $2 AND n.daemon_id = $3)
RETURNING floor(extract(epoch FROM c.lease_expires_at - clock_timestamp()) * 1000000)::bigint";

/// Gives up the lease of epoch $3 if we hold it: no leader, expiry now (so
/// "free for" counts from here, and the fence of $3 closes), our demotion
/// request fulfilled. Wakes the standbys on the fixed channel with the
/// cluster name as payload; the notification is delivered on commit.
pub(super) const RELEASE: &str = "
WITH released AS (
    UPDATE rf_daemon_clusters c
    SET leader_node = NULL,
        lease_expires_at = clock_timestamp(),
        lease_lock_key = NULL,
        demote_node = CASE WHEN c.demote_node = $2 THEN NULL ELSE c.demote_node END,
        updated_at = clock_timestamp()
    WHERE c.cluster_name = $1 AND c.leader_node = $2 AND c.epoch = $3
    RETURNING c.cluster_name
)
SELECT pg_notify('rf_daemon_release', cluster_name) FROM released";

/// Our row, if still ours, as stopped: it no longer counts as a standby.
pub(super) const MARK_STOPPED: &str = "
UPDATE rf_daemon_nodes
SET role = 'stopped', heartbeat_at = clock_timestamp()
WHERE cluster_name = $1 AND node_name = $2 AND daemon_id = $3";

/// Records a promotion request for an existing node of an existing cluster.
pub(super) const REQUEST_PROMOTE: &str = "
WITH requested AS (
    UPDATE rf_daemon_clusters c
    SET promote_node = $2, promote_force = $3, updated_at = clock_timestamp()
    WHERE c.cluster_name = $1
      AND EXISTS (SELECT 1 FROM rf_daemon_nodes n WHERE n.cluster_name = $1 AND n.node_name = $2)
    RETURNING 1
)
SELECT (SELECT count(*) FROM requested) AS written,
       EXISTS (SELECT 1 FROM rf_daemon_clusters WHERE cluster_name = $1) AS cluster_exists";

/// Records a demotion request for node $2, or (NULL) for the holder of the
/// current unexpired lease.
pub(super) const REQUEST_DEMOTE: &str = "
WITH requested AS (
    UPDATE rf_daemon_clusters c
    SET demote_node = coalesce($2, c.leader_node), updated_at = clock_timestamp()
    WHERE c.cluster_name = $1
      AND CASE WHEN $2::text IS NULL
               THEN c.leader_node IS NOT NULL AND c.lease_expires_at > clock_timestamp()
               ELSE EXISTS (SELECT 1 FROM rf_daemon_nodes n
                            WHERE n.cluster_name = $1 AND n.node_name = $2)
          END
    RETURNING 1
)
SELECT (SELECT count(*) FROM requested) AS written,
       EXISTS (SELECT 1 FROM rf_daemon_clusters WHERE cluster_name = $1) AS cluster_exists";

/// The fence: epoch $2 is current and unexpired, and the row stays locked
/// `FOR SHARE` until the transaction ends. Under READ COMMITTED, a grant in
/// flight makes this wait and then re-check the new row version, which no
/// longer matches.
/// (`rf_fence_cluster` reads the cluster row `FOR SHARE` where `epoch` is
/// current and unexpired, on the database clock.)
pub(super) const FENCE: &str = "SELECT rf_fence_cluster($1, $2)";

/// The write-path probe: stamps our node row with the epoch and the time.
/// Runs inside a fenced transaction.
pub(super) const PROBE: &str = "
UPDATE rf_daemon_nodes
SET fenced_epoch = $3, fenced_write_at = clock_timestamp()
WHERE cluster_name = $1 AND node_name = $2";
