-- rillflow 0018: partition leases and worker registrations bound to the
-- worker's database session, as 0017 binds the hot node's lease.
--
-- A worker in `--partitions auto` mode keeps one lease session (its own
-- connection, holding an exclusive advisory lock under a random key) and
-- heartbeats, claims and renews on it. Its registration and every
-- partition lease it is granted there record the key. When the worker's
-- process dies, its backend exits and the lock goes: its registration no
-- longer counts as live and its leases are free at once, instead of after
-- their ttl, so the survivors' quotas grow and they claim the partitions
-- within a round trip of hearing of it.
--
-- The ttl still bounds everything: a frozen or cut-off worker keeps its
-- session open and is waited out as before. A registration or lease made
-- without the lock (`--session-leases off`, or a transaction pooler that
-- put the statement on another server connection) records no key and is
-- judged by its ttl alone. The partition fence (rf_fence_partition) is
-- unchanged: it checks the epoch, which every new grant raises, so a worker
-- whose session ended while a batch ran cannot commit once its partition
-- has moved.

-- Keys of the advisory int8 locks some session of this database holds
-- exclusively: one scan of pg_locks for a whole view, where calling
-- rf_session_lock_held (0017) per row would scan it once per row.
CREATE FUNCTION rf_session_locks_held() RETURNS SETOF bigint
LANGUAGE sql VOLATILE AS $$
    SELECT (l.classid::bigint << 32) | l.objid::bigint
      FROM pg_locks l
     WHERE l.locktype = 'advisory'
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.objsubid = 1
       AND l.mode = 'ExclusiveLock'
       AND l.granted
$$;

-- The session the worker's last heartbeat ran on; NULL: judged by its
-- heartbeat's age alone.
ALTER TABLE rf_projection_workers ADD COLUMN lease_lock_key bigint;

-- The session the current lease is bound to; NULL for a lease judged by
-- its ttl alone, and once released.
ALTER TABLE rf_partition_leases ADD COLUMN lease_lock_key bigint;
