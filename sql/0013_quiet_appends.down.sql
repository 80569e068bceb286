-- Reverts 0013: every appending statement notifies rf_events again, with
-- its schema as the payload (as 0009 left it), for daemons built before
-- 0013 that wait on it.
CREATE FUNCTION rf_notify_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rf_events', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
CREATE TRIGGER rf_events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION rf_notify_events();
CREATE TRIGGER rf_events_archive_notify AFTER INSERT ON events_archive
    FOR EACH STATEMENT EXECUTE FUNCTION rf_notify_events();
