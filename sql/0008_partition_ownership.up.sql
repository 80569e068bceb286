-- rillflow 0008: dynamic partition ownership.
--
-- Workers of a projection register and heartbeat here; each partition is
-- owned through a lease of its own with an epoch that grows on every grant,
-- the same discipline as the cluster lease (LEASE-1): a batch commits only
-- inside a transaction that holds its partition's current, unexpired epoch.
-- Liveness and expiry are judged by the database clock alone (LEASE-2).

CREATE TABLE rf_projection_workers (
    projection   text        NOT NULL,
    worker       text        NOT NULL,
    heartbeat_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The worker's lease ttl: it counts as live until heartbeat_at + ttl.
    ttl_ms       bigint      NOT NULL CHECK (ttl_ms > 0),
    PRIMARY KEY (projection, worker)
);

-- Rows are never deleted, so a partition's epoch only grows, even across
-- repartitions that drop and later bring back a partition key.
CREATE TABLE rf_partition_leases (
    projection    text        NOT NULL,
    partition_key integer     NOT NULL CHECK (partition_key >= 0),
    owner         text,
    epoch         bigint      NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    expires_at    timestamptz,
    -- When an owner released it (an expired lease is unowned from its
    -- expiry), and the time spent unowned before the current grant: the
    -- source of projection_unowned_partition_seconds_total.
    released_at   timestamptz,
    unowned_secs  float8      NOT NULL DEFAULT 0 CHECK (unowned_secs >= 0),
    PRIMARY KEY (projection, partition_key),
    CHECK ((owner IS NULL) = (expires_at IS NULL))
);

-- What earlier partitionings applied beyond this checkpoint (layers of
-- per-partition cursors, see core's ownership::carry): written by
-- `projections repartition`, pruned by batches as they pass it, dropped by a
-- checkpoint reset.
ALTER TABLE rf_checkpoints ADD COLUMN carry jsonb NOT NULL DEFAULT '[]';
