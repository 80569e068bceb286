//! Dynamic ownership figures of projections, read with their status:
//! grants, unowned partitions and time, live workers and their holdings.

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::status::{OwnershipStatus, WorkerOwnership};

/// Lease figures per projection: grants, partitions without a live lease
/// (unexpired, and its session open when it is bound to one, sql/0018), and
/// the time partitions spent unowned (closed gaps plus open ones), for the
/// projections `{scope}` selects.
const LOAD_OWNERSHIP: &str = "
WITH held AS (SELECT rf_session_locks_held() AS key)
SELECT p.name,
       (SELECT count(*) FROM rf_partition_leases l WHERE l.projection = p.name) AS lease_rows,
       (SELECT coalesce(sum(l.epoch), 0)::bigint FROM rf_partition_leases l
         WHERE l.projection = p.name) AS grants,
       (SELECT count(*) FROM generate_series(0, p.total_partitions - 1) AS k
         WHERE NOT EXISTS (SELECT 1 FROM rf_partition_leases l
                            WHERE l.projection = p.name AND l.partition_key = k
                              AND l.owner IS NOT NULL AND l.expires_at > clock_timestamp()
                              AND (l.lease_lock_key IS NULL
                                   OR l.lease_lock_key IN (SELECT key FROM held))))
         AS unowned,
       (SELECT coalesce(sum(l.unowned_secs + CASE
                  WHEN l.owner IS NULL OR l.expires_at <= clock_timestamp()
                  THEN coalesce(greatest(0, extract(epoch FROM clock_timestamp()
                                - coalesce(l.released_at, l.expires_at)))::float8, 0)
                  ELSE 0 END), 0)::float8
          FROM rf_partition_leases l WHERE l.projection = p.name) AS unowned_secs
FROM rf_projections p WHERE {scope}";

/// Live workers (heartbeat younger than their ttl, session open when their
/// registration names one) and what they hold, of the projections `{scope}`
/// selects.
const LOAD_WORKERS: &str = "
WITH held AS (SELECT rf_session_locks_held() AS key)
SELECT w.projection, w.worker,
       (SELECT count(*) FROM rf_partition_leases l
         WHERE l.projection = w.projection AND l.owner = w.worker
           AND l.expires_at > clock_timestamp()
           AND (l.lease_lock_key IS NULL OR l.lease_lock_key IN (SELECT key FROM held))) AS owned
FROM rf_projection_workers w
WHERE {scope}
  AND w.heartbeat_at + make_interval(secs => w.ttl_ms / 1000.0) > clock_timestamp()
  AND (w.lease_lock_key IS NULL OR w.lease_lock_key IN (SELECT key FROM held))
ORDER BY w.projection, w.worker";

/// The ownership rows of one status load, for every projection in it.
pub(crate) struct OwnershipRows {
    owned: Vec<PgRow>,
    workers: Vec<PgRow>,
}

impl OwnershipRows {
    /// Loads them for `name`, or for every projection.
    pub(crate) async fn load(pool: &PgPool, name: Option<&str>) -> Result<Self, sqlx::Error> {
        // One projection or all: separate statements rather than
        // `$1 IS NULL OR`, which a cached generic plan cannot turn into a
        // key lookup.
        let (projections, workers) = match name {
            Some(_) => ("p.name = $1", "w.projection = $1"),
            None => ("$1::text IS NULL", "$1::text IS NULL"),
        };
        Ok(OwnershipRows {
            owned: sqlx::query(&LOAD_OWNERSHIP.replace("{scope}", projections))
                .bind(name)
                .fetch_all(pool)
                .await?,
            workers: sqlx::query(&LOAD_WORKERS.replace("{scope}", workers))
                .bind(name)
                .fetch_all(pool)
                .await?,
        })
    }

    /// The ownership of projection `name` (all empty for static partitions).
    pub(crate) fn status(&self, name: &str) -> Result<OwnershipStatus, sqlx::Error> {
        ownership_status(name, &self.owned, &self.workers)
    }
}

fn ownership_status(
    name: &str,
    owned: &[PgRow],
    workers: &[PgRow],
) -> Result<OwnershipStatus, sqlx::Error> {
    let mine =
        |row: &&PgRow, column: &str| row.try_get::<String, _>(column).ok().as_deref() == Some(name);
    let workers: Vec<WorkerOwnership> = workers
        .iter()
        .filter(|r| mine(r, "projection"))
        .map(|r| {
            Ok(WorkerOwnership {
                worker: r.try_get("worker")?,
                partitions_owned: r.try_get("owned")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    let Some(row) = owned.iter().find(|r| mine(r, "name")) else {
        return Ok(OwnershipStatus::default());
    };
    let lease_rows: i64 = row.try_get("lease_rows")?;
    if lease_rows == 0 && workers.is_empty() {
        return Ok(OwnershipStatus::default());
    }
    Ok(OwnershipStatus {
        dynamic: true,
        workers,
        rebalances_total: row.try_get("grants")?,
        unowned_partitions: row.try_get("unowned")?,
        unowned_seconds_total: row.try_get("unowned_secs")?,
    })
}
