-- rillflow 0010: a read horizon that other databases cannot hold back.
--
-- Readers used to stop at the xmin of their snapshot: the oldest transaction
-- open anywhere on the server. A transaction in another database can never
-- write this database's events, yet it held every reader here back for as
-- long as it stayed open (on a shared server, any long job of any
-- application stalled every read model).
--
-- The horizon is now the oldest of: the snapshot's open transactions that
-- are not known to run in another database, the reader's own transaction
-- (a snapshot does not list it, but a batch may append and must not pass
-- its own events), and the snapshot's xmax. A transaction whose database
-- cannot be told (it ended since the snapshot, it is prepared, its backend
-- is not listed) still counts, so the horizon is never later than gap
-- safety allows (PROJ-2): everything below it that is not visible to the
-- snapshot was written in another database or rolled back.
--
-- STABLE, so it sees the calling statement's snapshot: the rows that
-- statement reads and the horizon come from one snapshot. PL/pgSQL, so its
-- plans are cached per session (a SQL function that cannot be inlined is
-- planned at every call, which cost more than the read itself); the
-- activity list is consulted only when something is open below the
-- snapshot's xmax.
CREATE FUNCTION rf_read_horizon() RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    snap pg_snapshot := pg_current_snapshot();
    horizon bigint := pg_snapshot_xmax(snap)::text::bigint;
    own bigint := pg_current_xact_id_if_assigned()::text::bigint;
    oldest bigint;
BEGIN
    IF pg_is_in_recovery() THEN
        -- A standby's snapshots list no open transactions: keep to xmin.
        RETURN pg_snapshot_xmin(snap)::text::bigint;
    END IF;
    IF own < horizon THEN
        horizon := own;
    END IF;
    -- The snapshot's xmin counts every open transaction and our own.
    IF pg_snapshot_xmin(snap)::text::bigint >= horizon THEN
        RETURN horizon;
    END IF;
    SELECT min(x::text::bigint) INTO oldest
      FROM pg_snapshot_xip(snap) AS x
     WHERE x::text::bigint < horizon
       AND NOT EXISTS (
           -- backend_xid is the 32-bit form; open ones are unique in it.
           SELECT 1 FROM pg_stat_get_activity(NULL) a
            WHERE a.backend_xid::text::bigint = x::text::bigint % 4294967296
              AND a.datid <> (SELECT oid FROM pg_database
                               WHERE datname = current_database()));
    RETURN LEAST(horizon, oldest);
END
$$;
