-- rillflow 0002: coordination state of the hot/cold projection daemon.
--
-- A cluster row carries the fencing state: `epoch` grows on every lease grant,
-- and every projection write checks it under this row's lock (LEASE-1).
-- Lease expiry is always judged by the database clock (LEASE-2).
--
-- The statements that read and write these tables live in
-- adapters/src/daemon/pg_lease_store.rs; each is a single statement judged
-- by clock_timestamp(). A release is announced with
-- pg_notify('rf_daemon_release', <cluster name>): the channel is fixed and the
-- cluster name travels as the payload, so no name is ever spliced into an
-- identifier (SEC-1).

CREATE TABLE rf_daemon_clusters (
    cluster_name      text        PRIMARY KEY,
    epoch             bigint      NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    leader_node       text,
    lease_token       uuid,
    lease_expires_at  timestamptz,
    min_cold_standbys integer     NOT NULL DEFAULT 1 CHECK (min_cold_standbys >= 0),
    last_failover_at  timestamptz,
    -- When the current (or last) lease was granted, by the database clock.
    lease_granted_at  timestamptz,
    -- The timing the daemons run with, recorded by the most recent node to
    -- join, so read-only tools (cluster-status, promote, metrics) judge
    -- liveness the way the daemons do.
    heartbeat_ms      integer     NOT NULL DEFAULT 5000  CHECK (heartbeat_ms > 0),
    lease_ttl_ms      integer     NOT NULL DEFAULT 30000 CHECK (lease_ttl_ms > heartbeat_ms),
    lease_grace_ms    integer     NOT NULL DEFAULT 5000  CHECK (lease_grace_ms >= 0),
    -- Operator requests (`projections promote` / `demote`). They live on the
    -- cluster row so that every node reads them with its heartbeat and the
    -- grant that fulfils a promotion clears it in the same statement.
    -- `promote_force` (--force) lets a lagging or unhealthy node be promoted
    -- (LEASE-4); it means nothing without a node.
    promote_node      text,
    promote_force     boolean     NOT NULL DEFAULT false,
    -- The node asked to give its lease up; cleared by its release.
    demote_node       text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    -- A leader always has an expiry; a release keeps the expiry (set to the
    -- release time) so "free for" can be measured from it.
    CHECK (leader_node IS NULL OR lease_expires_at IS NOT NULL),
    CHECK (promote_node IS NOT NULL OR NOT promote_force)
);

-- One row per node name. A restarted node reuses its row (LEASE-5): the key is
-- the operator-visible name, never a process id.
CREATE TABLE rf_daemon_nodes (
    cluster_name      text        NOT NULL REFERENCES rf_daemon_clusters (cluster_name) ON DELETE CASCADE,
    node_name         text        NOT NULL,
    daemon_id         uuid        NOT NULL,
    role              text        NOT NULL DEFAULT 'cold'
                                  CHECK (role IN ('hot', 'cold', 'demoting', 'stopped')),
    epoch             bigint      NOT NULL DEFAULT 0 CHECK (epoch >= 0),
    lease_token       uuid,
    lease_expires_at  timestamptz,
    heartbeat_at      timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz NOT NULL DEFAULT now(),
    -- The hot node's last fenced commit (its write-path probe) and the epoch
    -- it was made under: proof that writes go through, and a record that no
    -- write of an old epoch landed after a newer grant (LEASE-1).
    fenced_epoch      bigint,
    fenced_write_at   timestamptz,
    processed_tx_id   bigint,
    processed_position bigint,
    hostname          text,
    version           text,
    PRIMARY KEY (cluster_name, node_name)
);
-- A daemon id names one node within its cluster (`--daemon-id` reclaims that
-- row under a new name). Unique per cluster rather than globally, so a daemon
-- moved to another cluster never fails on the row it left behind (LEASE-5).
CREATE UNIQUE INDEX rf_daemon_nodes_daemon_id_idx ON rf_daemon_nodes (cluster_name, daemon_id);
CREATE INDEX rf_daemon_nodes_heartbeat_idx ON rf_daemon_nodes (cluster_name, heartbeat_at DESC);
