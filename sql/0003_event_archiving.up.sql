-- rillflow 0003: archival metadata and the dual-table cold store.
--
-- The stream head stays in `rf_streams` whatever tier the events live in, so
-- versions and idempotency keep working after a stream moves cold (ARCH-2).
-- The redirect switch is the enabled state of the trigger itself: it is stored
-- in the catalog, costs nothing while disabled, and no start-up path resets it.

ALTER TABLE rf_streams
    ADD COLUMN archived_at     timestamptz,
    ADD COLUMN archived_by     text,
    ADD COLUMN archive_reason  text,
    ADD COLUMN retention_class text NOT NULL DEFAULT 'hot'
        CONSTRAINT rf_streams_retention_class_check CHECK (retention_class IN ('hot', 'cold'));
CREATE INDEX rf_streams_archived_idx ON rf_streams (archived_at) WHERE archived_at IS NOT NULL;

CREATE TABLE events_archive (
    position       bigint      NOT NULL,
    tx_id          bigint      NOT NULL,
    stream_id      uuid        NOT NULL,
    version        bigint      NOT NULL,
    event_id       uuid        NOT NULL,
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL DEFAULT 1,
    data           jsonb       NOT NULL,
    headers        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    causation_id   uuid,
    correlation_id uuid,
    partition_hash integer     NOT NULL,
    created_at     timestamptz NOT NULL,
    archived_at    timestamptz NOT NULL DEFAULT now(),
    archived_by    text,
    archive_reason text
);
CREATE INDEX events_archive_position_idx ON events_archive (position);
CREATE INDEX events_archive_stream_version_idx ON events_archive (stream_id, version);
CREATE INDEX events_archive_tx_position_idx ON events_archive (tx_id, position);

CREATE FUNCTION rf_events_redirect_archived() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM rf_streams s
                WHERE s.stream_id = NEW.stream_id AND s.archived_at IS NOT NULL) THEN
        INSERT INTO events_archive (position, tx_id, stream_id, version, event_id, event_type,
                                    schema_version, data, headers, causation_id, correlation_id,
                                    partition_hash, created_at, archived_by, archive_reason)
        VALUES (NEW.position, NEW.tx_id, NEW.stream_id, NEW.version, NEW.event_id, NEW.event_type,
                NEW.schema_version, NEW.data, NEW.headers, NEW.causation_id, NEW.correlation_id,
                NEW.partition_hash, NEW.created_at, 'redirect', 'append to archived stream');
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER rf_events_redirect_archived
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION rf_events_redirect_archived();
-- Off until an operator turns it on (`rillflow archive redirect --enable true`).
ALTER TABLE events DISABLE TRIGGER rf_events_redirect_archived;
