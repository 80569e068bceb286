DROP TRIGGER IF EXISTS rf_events_redirect_archived ON events;
DROP FUNCTION IF EXISTS rf_events_redirect_archived();
DROP TABLE IF EXISTS events_archive;
DROP INDEX IF EXISTS rf_streams_archived_idx;
ALTER TABLE rf_streams
    DROP COLUMN IF EXISTS retention_class,
    DROP COLUMN IF EXISTS archive_reason,
    DROP COLUMN IF EXISTS archived_by,
    DROP COLUMN IF EXISTS archived_at;
