-- Back to one plain `events` table, rows and redirect state preserved.

ALTER TABLE events RENAME TO events_partitioned;
ALTER INDEX events_position_brin RENAME TO events_partitioned_position_brin;
ALTER INDEX events_stream_version_idx RENAME TO events_partitioned_stream_version_idx;
ALTER INDEX events_tx_position_idx RENAME TO events_partitioned_tx_position_idx;
ALTER TABLE events_partitioned RENAME CONSTRAINT events_retention_class_check
    TO events_partitioned_retention_class_check;

CREATE TABLE events (
    position        bigint      NOT NULL,
    tx_id           bigint      NOT NULL,
    stream_id       uuid        NOT NULL,
    version         bigint      NOT NULL CHECK (version >= 1),
    event_id        uuid        NOT NULL DEFAULT gen_random_uuid(),
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL DEFAULT 1,
    data            jsonb       NOT NULL,
    headers         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    causation_id    uuid,
    correlation_id  uuid,
    partition_hash  integer     NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    retention_class text        NOT NULL DEFAULT 'hot'
        CONSTRAINT events_retention_class_check CHECK (retention_class IN ('hot', 'cold'))
);

INSERT INTO events (position, tx_id, stream_id, version, event_id, event_type, schema_version, data,
                    headers, causation_id, correlation_id, partition_hash, created_at, retention_class)
SELECT position, tx_id, stream_id, version, event_id, event_type, schema_version, data,
       headers, causation_id, correlation_id, partition_hash, created_at, retention_class
  FROM events_partitioned;

CREATE UNIQUE INDEX events_stream_version_idx ON events (stream_id, version);
CREATE INDEX events_tx_position_idx ON events (tx_id, position);
CREATE INDEX events_position_brin ON events USING brin (position);

DO $$
DECLARE
    v_enabled boolean;
BEGIN
    SELECT t.tgenabled <> 'D' INTO v_enabled
      FROM pg_trigger t
     WHERE t.tgrelid = 'events_partitioned'::regclass AND t.tgname = 'rf_events_redirect_archived'
       AND t.tgparentid = 0;
    CREATE TRIGGER rf_events_redirect_archived
        BEFORE INSERT ON events
        FOR EACH ROW EXECUTE FUNCTION rf_events_redirect_archived();
    IF NOT coalesce(v_enabled, false) THEN
        ALTER TABLE events DISABLE TRIGGER rf_events_redirect_archived;
    END IF;
END
$$;

DROP TABLE events_partitioned CASCADE;
