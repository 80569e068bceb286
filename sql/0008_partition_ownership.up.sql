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
    PRIMARY KEY (projection, worker)
);

CREATE TABLE rf_partition_leases (
    projection    text        NOT NULL,
    partition_key integer     NOT NULL CHECK (partition_key >= 0),
    owner         text,
    epoch         bigint      NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    expires_at    timestamptz,
    PRIMARY KEY (projection, partition_key),
    CHECK ((owner IS NULL) = (expires_at IS NULL))
);
