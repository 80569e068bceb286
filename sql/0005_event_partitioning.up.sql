-- rillflow 0005: `events` becomes a partitioned table.
--
--   events                    LIST (retention_class)
--     events_hot              RANGE (bucket_month)  -> events_hot_default
--     events_cold             RANGE (bucket_month)  -> events_cold_default
--
-- Partitioned tables cannot enforce uniqueness on columns outside the
-- partition key, so the indexes below are plain; versions stay unique because
-- every append serialises on its stream head row (ARCH-2). Monthly partitions
-- are added by `rillflow archive partition`; the defaults keep writes flowing.

ALTER TABLE events RENAME TO events_unpartitioned;
ALTER INDEX events_position_brin RENAME TO events_unpartitioned_position_brin;
ALTER INDEX events_stream_version_idx RENAME TO events_unpartitioned_stream_version_idx;
ALTER INDEX events_tx_position_idx RENAME TO events_unpartitioned_tx_position_idx;
ALTER TABLE events_unpartitioned RENAME CONSTRAINT events_retention_class_check
    TO events_unpartitioned_retention_class_check;

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
        CONSTRAINT events_retention_class_check CHECK (retention_class IN ('hot', 'cold')),
    bucket_month    date        NOT NULL DEFAULT (date_trunc('month', now() AT TIME ZONE 'UTC'))::date
) PARTITION BY LIST (retention_class);

CREATE TABLE events_hot  PARTITION OF events FOR VALUES IN ('hot')  PARTITION BY RANGE (bucket_month);
CREATE TABLE events_cold PARTITION OF events FOR VALUES IN ('cold') PARTITION BY RANGE (bucket_month);
CREATE TABLE events_hot_default  PARTITION OF events_hot  DEFAULT;
CREATE TABLE events_cold_default PARTITION OF events_cold DEFAULT;

INSERT INTO events (position, tx_id, stream_id, version, event_id, event_type, schema_version, data,
                    headers, causation_id, correlation_id, partition_hash, created_at,
                    retention_class, bucket_month)
SELECT position, tx_id, stream_id, version, event_id, event_type, schema_version, data,
       headers, causation_id, correlation_id, partition_hash, created_at,
       retention_class, (date_trunc('month', created_at AT TIME ZONE 'UTC'))::date
  FROM events_unpartitioned;

CREATE INDEX events_position_brin ON events USING brin (position);
CREATE INDEX events_stream_version_idx ON events (stream_id, version);
CREATE INDEX events_tx_position_idx ON events (tx_id, position);

-- Move the redirect trigger over, keeping whatever state the operator chose.
DO $$
DECLARE
    v_enabled boolean;
BEGIN
    SELECT t.tgenabled <> 'D' INTO v_enabled
      FROM pg_trigger t
     WHERE t.tgrelid = 'events_unpartitioned'::regclass AND t.tgname = 'rf_events_redirect_archived';
    CREATE TRIGGER rf_events_redirect_archived
        BEFORE INSERT ON events
        FOR EACH ROW EXECUTE FUNCTION rf_events_redirect_archived();
    IF NOT coalesce(v_enabled, false) THEN
        ALTER TABLE events DISABLE TRIGGER rf_events_redirect_archived;
    END IF;
END
$$;

DROP TABLE events_unpartitioned;
