//! The statements of [`super::PgOwnershipStore`], each one round trip judged
//! by the database clock.
//!
//! Registrations and leases made on a worker's lease session record its key
//! (sql/0018): `CASE WHEN pg_backend_pid() = pid THEN key END`, with the key
//! and server process id of the session, binds them only when the statement
//! runs on the server process holding the lock, so a statement sent without
//! a session (NULLs), or put on another server connection by a transaction
//! pooler, records no key and is judged by its ttl alone. The process id
//! stands in for 0017's `rf_session_lock_mine`, which reads pg_locks: cheap
//! enough for one lease per cluster, not for a renewal per partition per
//! round. A registration or lease whose key no session holds any more is
//! treated as gone: the worker's session ended.

/// Records a worker as alive now, live for `ttl_ms` ($3), bound to the
/// session key $5 if this runs on its server process $6. Wakes the others on $4 when the
/// worker was not live before under this very session: it is new, it had
/// gone stale, or it comes back on a new session (a restart, or a session
/// that broke). Their quotas just fell.
pub(super) const HEARTBEAT: &str = "
WITH before AS (
    SELECT w.lease_lock_key AS key,
           w.heartbeat_at + make_interval(secs => w.ttl_ms / 1000.0) > clock_timestamp() AS fresh
      FROM rf_projection_workers w
     WHERE w.projection = $1 AND w.worker = $2),
beat AS (
    INSERT INTO rf_projection_workers AS w (projection, worker, ttl_ms, lease_lock_key)
    VALUES ($1, $2, $3, CASE WHEN pg_backend_pid() = $6 THEN $5 END)
    ON CONFLICT (projection, worker)
    DO UPDATE SET heartbeat_at = clock_timestamp(), ttl_ms = EXCLUDED.ttl_ms,
                  lease_lock_key = EXCLUDED.lease_lock_key
    RETURNING w.lease_lock_key AS key)
SELECT pg_notify($4, $1) FROM beat
 WHERE NOT EXISTS (SELECT 1 FROM before b
                    WHERE b.fresh AND b.key IS NOT DISTINCT FROM beat.key)";

/// Removes a worker's registration (a graceful leave) and wakes the others
/// on $3: their quotas just grew.
pub(super) const LEAVE: &str = "
WITH w AS (DELETE FROM rf_projection_workers WHERE projection = $1 AND worker = $2
           RETURNING projection)
SELECT pg_notify($3, projection) FROM w";

/// A projection's view in one round trip and one read of pg_locks, as
/// rows of four kinds:
/// - `w`: a live worker (`name`), with its session `key`: heartbeat younger
///   than $2 ms and, when bound to a session, that session still open;
/// - `d`: a worker (`name`) whose heartbeat is younger than $2 ms but whose
///   session `key` ended: it died since;
/// - `l`: a lease held now, partition `num` by `name` under `epoch`:
///   unexpired and, when bound to a session, that session still open;
/// - `p`: the partition count (`num`), when the projection is registered.
pub(super) const VIEW: &str = "
WITH held AS MATERIALIZED (SELECT rf_session_locks_held() AS key)
SELECT 'w' AS kind, w.worker AS name, w.lease_lock_key AS key,
       NULL::integer AS num, NULL::bigint AS epoch
  FROM rf_projection_workers w
 WHERE w.projection = $1
   AND w.heartbeat_at > clock_timestamp() - make_interval(secs => $2::float8 / 1000)
   AND (w.lease_lock_key IS NULL OR w.lease_lock_key IN (SELECT key FROM held))
UNION ALL
SELECT 'd', w.worker, w.lease_lock_key, NULL, NULL
  FROM rf_projection_workers w
 WHERE w.projection = $1
   AND w.heartbeat_at > clock_timestamp() - make_interval(secs => $2::float8 / 1000)
   AND w.lease_lock_key NOT IN (SELECT key FROM held)
UNION ALL
SELECT 'l', l.owner, NULL, l.partition_key, l.epoch
  FROM rf_partition_leases l
 WHERE l.projection = $1 AND l.owner IS NOT NULL AND l.expires_at > clock_timestamp()
   AND (l.lease_lock_key IS NULL OR l.lease_lock_key IN (SELECT key FROM held))
UNION ALL
SELECT 'p', NULL, NULL, p.total_partitions, NULL
  FROM rf_projections p WHERE p.name = $1
ORDER BY kind, name, num";

/// Takes partition $2 for worker $3 for $4 ms, bound to session key $5 if
/// this runs on its server process $6, when nobody holds it: never granted, released,
/// expired, or bound to a session that ended. Returns the new epoch, which
/// is never one a lossy failover may have lost (`rf_epoch_floor()`,
/// sql/0020, as for cluster leases).
///
/// A lease freed by its session's end was unowned for a moment nobody
/// recorded; its gap counts as nothing in `unowned_secs` (the `greatest`
/// below, since its expiry still lies ahead).
pub(super) const CLAIM: &str = "
INSERT INTO rf_partition_leases AS l
       (projection, partition_key, owner, epoch, expires_at, lease_lock_key)
VALUES ($1, $2, $3, greatest(1, rf_epoch_floor()),
        clock_timestamp() + make_interval(secs => $4::float8 / 1000),
        CASE WHEN pg_backend_pid() = $6 THEN $5 END)
ON CONFLICT (projection, partition_key) DO UPDATE
   SET owner = EXCLUDED.owner, epoch = greatest(l.epoch + 1, EXCLUDED.epoch),
       expires_at = EXCLUDED.expires_at,
       lease_lock_key = EXCLUDED.lease_lock_key,
       released_at = NULL,
       unowned_secs = l.unowned_secs + greatest(0, extract(epoch FROM
           clock_timestamp() - coalesce(l.released_at, l.expires_at, clock_timestamp())))
 WHERE l.owner IS NULL OR l.expires_at <= clock_timestamp()
    OR (l.lease_lock_key IS NOT NULL AND NOT rf_session_lock_held(l.lease_lock_key))
RETURNING l.epoch";

/// Extends the lease of partition $2 held under epoch $3 by $4 ms if it is
/// still held and unexpired and, when bound to a session, only on that
/// session (key $5, server process $6): a worker whose session was replaced
/// has lost it (anyone may claim it) and must claim again like everyone
/// else.
pub(super) const RENEW: &str = "
UPDATE rf_partition_leases
   SET expires_at = clock_timestamp() + make_interval(secs => $4::float8 / 1000)
 WHERE projection = $1 AND partition_key = $2 AND epoch = $3
   AND owner IS NOT NULL AND expires_at > clock_timestamp()
   AND (lease_lock_key IS NULL OR (lease_lock_key = $5 AND pg_backend_pid() = $6))
RETURNING epoch";

/// Gives up the lease of partition $2 held under epoch $3 and wakes the
/// others on $4. The notice goes out at commit, so a woken worker finds it
/// free.
pub(super) const RELEASE: &str = "
WITH r AS (
    UPDATE rf_partition_leases
       SET owner = NULL, expires_at = NULL, lease_lock_key = NULL,
           released_at = least(clock_timestamp(), expires_at)
     WHERE projection = $1 AND partition_key = $2 AND epoch = $3 AND owner IS NOT NULL
    RETURNING projection)
SELECT pg_notify($4, projection) FROM r";

/// Wakes every worker of projection $2 (on channel $1).
pub(super) const ANNOUNCE: &str = "SELECT pg_notify($1, $2)";
