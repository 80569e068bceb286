-- rillflow 0017: leases bound to the holder's database session.
--
-- A daemon keeps one connection of its own (its lease session) and holds
-- an exclusive session-level advisory lock on it, under a key it draws at
-- random when the session opens. A lease granted on that session records
-- the key. When the holder's process dies, the kernel closes its socket,
-- its backend exits and the lock is released within milliseconds: the
-- lease is free at once instead of after its ttl and grace, and standbys
-- waiting for a share lock on the key wake up the moment it goes.
--
-- The ttl still bounds every lease: a frozen or partitioned holder keeps
-- its session (and its lock) open, and is waited out as before. A lease
-- granted without a lock (`--session-leases off`, or a transaction-pooling
-- PgBouncer, where the lock and the grant land on different server
-- connections) records no key and is judged by its ttl alone.
--
-- Keys are 64-bit advisory keys; pg_locks shows their high half as
-- `classid` and their low half as `objid`, with `objsubid` 1.

-- Whether some session of this database holds the advisory lock `key`
-- exclusively. Read from pg_locks, which every role may read: a try-lock
-- here would need the caller to hold nothing that conflicts, and would
-- leave a share lock behind for the rest of the transaction.
CREATE FUNCTION rf_session_lock_held(p_key bigint) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'advisory'
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = ((p_key >> 32) & 4294967295)::oid
          AND l.objid = (p_key & 4294967295)::oid
          AND l.objsubid = 1
          AND l.mode = 'ExclusiveLock'
          AND l.granted)
$$;

-- Whether the calling session itself holds the advisory lock `key`
-- exclusively: a grant or renewal binds a lease to a key only when the
-- statement runs on the session that holds it.
CREATE FUNCTION rf_session_lock_mine(p_key bigint) RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT EXISTS (
        SELECT 1 FROM pg_locks l
        WHERE l.locktype = 'advisory'
          AND l.pid = pg_backend_pid()
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = ((p_key >> 32) & 4294967295)::oid
          AND l.objid = (p_key & 4294967295)::oid
          AND l.objsubid = 1
          AND l.mode = 'ExclusiveLock'
          AND l.granted)
$$;

-- The key of the session the current lease is bound to; NULL for a lease
-- judged by its ttl alone (and after a release).
ALTER TABLE rf_daemon_clusters ADD COLUMN lease_lock_key bigint;
