-- rillflow 0020: the WAL timeline, to tell what was written before a lossy
-- failover from what was written after it: on checkpoints, and in lease
-- epochs.
--
-- After a lossy failover (a promoted asynchronous standby that had not
-- received the last commits), positions and transaction ids of the lost
-- events are handed out again. A reader that resumes from a cursor token
-- of a lost event must rewind to a point it has read past and that no new
-- event sorts before (rillflow_core::log_history). Checkpoints written
-- before the failover give such a point; checkpoints written after it do
-- not, and only the timeline tells them apart: a promotion starts a new
-- one.

-- The timeline WAL is written on now; NULL when it cannot be told. On a
-- primary the current WAL file's name says it at once (the checkpoint
-- record pg_control_checkpoint() reports still names the old timeline
-- until the first checkpoint after a promotion). pg_walfile_name() is
-- refused during recovery; a standby reports its last restartpoint's
-- timeline, which may lag behind but is never ahead, and readers only
-- trust fewer checkpoints for a timeline that is too low.
CREATE FUNCTION rf_wal_timeline() RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT pg_is_in_recovery() THEN
        RETURN ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint;
    END IF;
    BEGIN
        RETURN (SELECT timeline_id FROM pg_control_checkpoint());
    EXCEPTION WHEN insufficient_privilege THEN
        RETURN NULL;
    END;
END
$$;

-- timeline: the one the key (tx_id, position) was written on; NULL for
-- rows not written since this migration, trusted by no reader.
-- prev_*: the key the row held when its timeline last changed, and that
-- timeline. A projection that goes on after a failover moves its
-- checkpoint among the new events at once; the key it had before the
-- failover is what still proves which events are older than it, so it is
-- kept (one timeline back: a reader who slept through two failovers
-- rewinds to the start of the log).
ALTER TABLE rf_checkpoints
    ADD COLUMN timeline      bigint,
    ADD COLUMN prev_timeline bigint,
    ADD COLUMN prev_tx_id    bigint,
    ADD COLUMN prev_position bigint;

-- Every write of a checkpoint's key records the timeline, whichever code
-- path makes it (batches, resets, rebuilds, repartitioning), so none can
-- forget to. A trigger's assignments need no column privilege, so handler
-- roles need no new grant. It costs a function call on a row the batch
-- writes anyway: no other row, no other lock.
CREATE FUNCTION rf_checkpoint_timeline() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_now bigint := rf_wal_timeline();
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.timeline IS DISTINCT FROM v_now THEN
        NEW.prev_timeline := OLD.timeline;
        NEW.prev_tx_id := OLD.tx_id;
        NEW.prev_position := OLD.position;
    END IF;
    NEW.timeline := v_now;
    RETURN NEW;
END
$$;

CREATE TRIGGER rf_checkpoints_timeline
    BEFORE INSERT OR UPDATE OF tx_id, position ON rf_checkpoints
    FOR EACH ROW EXECUTE FUNCTION rf_checkpoint_timeline();

-- The lowest epoch a lease granted now may have: (timeline - 1) << 32.
-- After a lossy failover the leases the old primary granted after the
-- standby's last replayed commit are gone from the rows, and counting on
-- from what survived would grant their epochs again, to other nodes, while
-- a node that holds one of them may still be running. Fences compare
-- epochs only (rf_fence_cluster, rf_fence_partition), so both could write.
-- Starting each timeline's epochs above every epoch of the timelines
-- before it (fewer than 2^32 grants each) means an epoch is never granted
-- twice: a node holding a lost one is fenced on its next batch and loses
-- its renewal. On timeline 1 it is 0 and changes nothing.
CREATE FUNCTION rf_epoch_floor() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT (coalesce(rf_wal_timeline(), 1) - 1) << 32
$$;
