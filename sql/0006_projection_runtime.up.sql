-- rillflow 0006: the projection runtime.
--
-- A batch commits its read-model effects, its checkpoint and its bookkeeping
-- (counters, retry state, dead letters) in one transaction (PROJ-1). It locks
-- its checkpoint row FOR UPDATE first, so two workers that somehow run the same
-- partition, an operator's reset or a rebuild all serialise on that row and
-- each sees the others' committed checkpoint.

-- One row per projection: operator controls. Everything a batch writes lives
-- on its own partition's checkpoint row, so partitions never contend here.
CREATE TABLE rf_projections (
    name             text        PRIMARY KEY,
    paused           boolean     NOT NULL DEFAULT false,
    -- Why the runtime paused it (the `stop` error policy); NULL when an
    -- operator paused it or it runs.
    stopped_reason   text,
    total_partitions integer     NOT NULL DEFAULT 1 CHECK (total_partitions >= 1),
    -- Versioned read models: readers use views over `<table>_v<active>`;
    -- a rebuild fills `<table>_v<building>` beside them, then switches.
    active_version   integer     NOT NULL DEFAULT 1 CHECK (active_version >= 1),
    building_version integer     CHECK (building_version > active_version),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Checkpoints per read-model version, so a rebuild's version has its own.
ALTER TABLE rf_checkpoints
    ADD COLUMN model_version       integer     NOT NULL DEFAULT 1,
    DROP CONSTRAINT rf_checkpoints_pkey,
    ADD PRIMARY KEY (projection, model_version, partition_key),
    ADD COLUMN processed_total     bigint      NOT NULL DEFAULT 0,
    ADD COLUMN errors_total        bigint      NOT NULL DEFAULT 0,
    ADD COLUMN dead_lettered_total bigint      NOT NULL DEFAULT 0,
    ADD COLUMN last_processed_at   timestamptz,
    ADD COLUMN last_error          text,
    ADD COLUMN last_error_at       timestamptz,
    -- Who committed the last batch: the lease epoch (hot/cold mode) and node.
    ADD COLUMN owner_epoch         bigint,
    ADD COLUMN owner_node          text,
    -- The event that keeps failing, how often it failed, and when the next
    -- attempt is due (database clock). Kept here so that backoff survives a
    -- restart or a failover instead of hammering a poison event.
    ADD COLUMN retry_position      bigint,
    ADD COLUMN retry_attempts      integer     NOT NULL DEFAULT 0,
    ADD COLUMN retry_not_before    timestamptz;

-- Events whose handler kept failing (PROJ-5). `requeued` rows are applied
-- once more by the next batch of their partition, inside its transaction;
-- success deletes the row in that same transaction.
CREATE TABLE rf_projection_dlq (
    id             bigserial   PRIMARY KEY,
    projection     text        NOT NULL,
    model_version  integer     NOT NULL DEFAULT 1,
    partition_key  integer     NOT NULL,
    tx_id          bigint      NOT NULL,
    position       bigint      NOT NULL,
    stream_id      uuid        NOT NULL,
    version        bigint      NOT NULL,
    event_id       uuid        NOT NULL,
    event_type     text        NOT NULL,
    error          text        NOT NULL,
    attempts       integer     NOT NULL,
    status         text        NOT NULL DEFAULT 'dead' CHECK (status IN ('dead', 'requeued')),
    failed_at      timestamptz NOT NULL DEFAULT now(),
    requeued_at    timestamptz,
    UNIQUE (projection, model_version, position)
);
CREATE INDEX rf_projection_dlq_requeued_idx
    ON rf_projection_dlq (projection, model_version, partition_key) WHERE status = 'requeued';

-- Wake-up: one notification per appending statement, delivered at commit.
-- Identical payloads within a transaction collapse into one. Workers also
-- poll, so a lost notification only costs latency.
CREATE FUNCTION rf_notify_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rf_events', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER rf_events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION rf_notify_events();
CREATE TRIGGER rf_events_archive_notify AFTER INSERT ON events_archive
    FOR EACH STATEMENT EXECUTE FUNCTION rf_notify_events();
