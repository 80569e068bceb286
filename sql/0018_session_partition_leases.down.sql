-- Undoes 0018: partition leases and worker registrations are judged by
-- their ttl alone again.
ALTER TABLE rf_partition_leases DROP COLUMN lease_lock_key;
ALTER TABLE rf_projection_workers DROP COLUMN lease_lock_key;
DROP FUNCTION rf_session_locks_held();
