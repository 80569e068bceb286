-- rillflow 0002: coordination state of the hot/cold projection daemon.
--
-- A cluster row carries the fencing state: `epoch` grows on every lease grant,
-- and every projection write checks it under this row's lock (LEASE-1).
-- Lease expiry is always judged by the database clock (LEASE-2).

CREATE TABLE rf_daemon_clusters (
    cluster_name      text        PRIMARY KEY,
    epoch             bigint      NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    leader_node       text,
    lease_token       uuid,
    lease_expires_at  timestamptz,
    min_cold_standbys integer     NOT NULL DEFAULT 1 CHECK (min_cold_standbys >= 0),
    last_failover_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- One row per node name. A restarted node reuses its row (LEASE-5): the key is
-- the operator-visible name, never a process id.
CREATE TABLE rf_daemon_nodes (
    cluster_name      text        NOT NULL REFERENCES rf_daemon_clusters (cluster_name) ON DELETE CASCADE,
    node_name         text        NOT NULL,
    daemon_id         uuid        NOT NULL,
    role              text        NOT NULL DEFAULT 'cold'
                                  CHECK (role IN ('hot', 'cold', 'demoting', 'stopped')),
    epoch             bigint      NOT NULL DEFAULT 0,
    lease_token       uuid,
    lease_expires_at  timestamptz,
    heartbeat_at      timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz NOT NULL DEFAULT now(),
    processed_tx_id   bigint,
    processed_position bigint,
    hostname          text,
    version           text,
    PRIMARY KEY (cluster_name, node_name)
);
CREATE UNIQUE INDEX rf_daemon_nodes_daemon_id_idx ON rf_daemon_nodes (daemon_id);
CREATE INDEX rf_daemon_nodes_heartbeat_idx ON rf_daemon_nodes (cluster_name, heartbeat_at DESC);
