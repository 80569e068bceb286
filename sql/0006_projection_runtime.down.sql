DROP TRIGGER IF EXISTS rf_events_archive_notify ON events_archive;
DROP TRIGGER IF EXISTS rf_events_notify ON events;
DROP FUNCTION IF EXISTS rf_notify_events();
DROP TABLE IF EXISTS rf_projection_dlq;
-- Keep each projection's live version only, then the old key.
DELETE FROM rf_checkpoints c USING rf_projections p
 WHERE p.name = c.projection AND c.model_version <> p.active_version;
ALTER TABLE rf_checkpoints
    DROP CONSTRAINT rf_checkpoints_pkey,
    DROP COLUMN model_version,
    ADD PRIMARY KEY (projection, partition_key),
    DROP COLUMN IF EXISTS processed_total,
    DROP COLUMN IF EXISTS errors_total,
    DROP COLUMN IF EXISTS dead_lettered_total,
    DROP COLUMN IF EXISTS last_processed_at,
    DROP COLUMN IF EXISTS last_error,
    DROP COLUMN IF EXISTS last_error_at,
    DROP COLUMN IF EXISTS owner_epoch,
    DROP COLUMN IF EXISTS owner_node,
    DROP COLUMN IF EXISTS retry_position,
    DROP COLUMN IF EXISTS retry_attempts,
    DROP COLUMN IF EXISTS retry_not_before;
DROP TABLE IF EXISTS rf_projections;
