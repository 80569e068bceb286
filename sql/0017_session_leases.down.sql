-- Undoes 0017: leases are judged by their ttl alone again.
ALTER TABLE rf_daemon_clusters DROP COLUMN lease_lock_key;
DROP FUNCTION rf_session_lock_mine(bigint);
DROP FUNCTION rf_session_lock_held(bigint);
