DROP TRIGGER IF EXISTS rf_events_archive_notify ON events_archive;
DROP TRIGGER IF EXISTS rf_events_notify ON events;
DROP FUNCTION IF EXISTS rf_notify_events();
DROP TABLE IF EXISTS rf_projection_dlq;
ALTER TABLE rf_checkpoints
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
