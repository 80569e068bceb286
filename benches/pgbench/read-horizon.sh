#!/usr/bin/env bash
# What the read horizon (rf_read_horizon, sql/0010) and the held-back probe
# cost a projection batch's read, against the same read bounded by the
# snapshot's xmin (the horizon before 0010), in one run on one server:
# pgbench, two readers, quiet and beside four writers whose short
# transactions keep the snapshot's list of open transactions non-empty.
#
#   DATABASE_URL=postgres://user:pw@host:port/postgres benches/pgbench/read-horizon.sh [SECONDS]
#
# Creates the scratch database rf_bench_horizon (100,000 events in 1,000
# streams) with `rillflow migrate`, and drops it at the end. Needs pgbench
# and psql, and a built rillflow (target/release or target/debug).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-6}
: "${DATABASE_URL:?set DATABASE_URL to an admin URL of the server to measure}"
bin=target/release/rillflow
[ -x "$bin" ] || bin=target/debug/rillflow
[ -x "$bin" ] || { echo "build rillflow first (cargo build --release -p rillflow)" >&2; exit 2; }
base=${DATABASE_URL%%\?*}
db_url="${base%/*}/rf_bench_horizon"
work=$(mktemp -d)
trap 'psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS rf_bench_horizon" >/dev/null 2>&1; rm -rf "$work"' EXIT

psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS rf_bench_horizon" -c "CREATE DATABASE rf_bench_horizon"
DATABASE_URL=$db_url "$bin" migrate >/dev/null
psql -q "$db_url" <<'SQL'
DO $$
BEGIN
  FOR i IN 1..1000 LOOP
    PERFORM rf_append(gen_random_uuid(), 'any', NULL, NULL,
      array(SELECT gen_random_uuid() FROM generate_series(1, 100)),
      array(SELECT 'Bench'::text FROM generate_series(1, 100)),
      array(SELECT 1 FROM generate_series(1, 100)),
      array(SELECT jsonb_build_object('n', g) FROM generate_series(1, 100) g),
      array(SELECT '{}'::jsonb FROM generate_series(1, 100)),
      array(SELECT NULL::uuid FROM generate_series(1, 100)),
      array(SELECT NULL::uuid FROM generate_series(1, 100)));
  END LOOP;
END $$;
CREATE TABLE bench_writes (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
INSERT INTO bench_writes SELECT g, 0 FROM generate_series(1, 16) g;
VACUUM ANALYZE;
SQL

cols="position, tx_id, stream_id, version, event_id, event_type, schema_version, data, headers, causation_id, correlation_id, partition_hash, created_at"
# The partition read of a batch (EventStore::read_partition_in), first 500
# events of the whole log; HORIZON and HELD differ between the two.
read_sql() {
    cat <<SQL
WITH horizon AS (SELECT $1 AS upto),
held AS (SELECT $2 AS held_back),
tail AS (
  SELECT tx_id AS tail_tx, position AS tail_position FROM (
    (SELECT tx_id, position FROM events WHERE tx_id < (SELECT upto FROM horizon) ORDER BY tx_id DESC, position DESC LIMIT 1)
    UNION ALL
    (SELECT tx_id, position FROM events_archive WHERE tx_id < (SELECT upto FROM horizon) ORDER BY tx_id DESC, position DESC LIMIT 1)
  ) t ORDER BY tx_id DESC, position DESC LIMIT 1),
ev AS (
  SELECT $cols FROM (
    (SELECT $cols FROM events WHERE (tx_id, position) > (0, 0) AND tx_id < (SELECT upto FROM horizon) ORDER BY tx_id, position LIMIT 500)
    UNION ALL
    (SELECT $cols FROM events_archive WHERE (tx_id, position) > (0, 0) AND tx_id < (SELECT upto FROM horizon) ORDER BY tx_id, position LIMIT 500)
  ) e ORDER BY tx_id, position LIMIT 500)
SELECT ev.*, tail.tail_tx, tail.tail_position, held.held_back
  FROM held LEFT JOIN tail ON true LEFT JOIN ev ON true ORDER BY ev.tx_id, ev.position;
SQL
}
read_sql "pg_snapshot_xmin(pg_current_snapshot())::text::bigint" "false" > "$work/xmin.sql"
read_sql "rf_read_horizon()" \
    "EXISTS (SELECT 1 FROM events WHERE tx_id >= (SELECT upto FROM horizon)) OR EXISTS (SELECT 1 FROM events_archive WHERE tx_id >= (SELECT upto FROM horizon))" \
    > "$work/horizon.sql"
cat > "$work/writer.sql" <<'SQL'
BEGIN;
UPDATE bench_writes SET n = n + 1 WHERE id = :client_id;
SELECT pg_sleep(0.002);
COMMIT;
SQL

tps() { pgbench -n -c 2 -j 2 -T "$secs" -f "$1" "$db_url" 2>/dev/null | awk '/^tps/ {printf "%.0f", $3}'; }
round() {
    local label=$1
    for i in 1 2 3; do
        local a b
        a=$(tps "$work/xmin.sql"); b=$(tps "$work/horizon.sql")
        echo "$label $i: xmin $a reads/s, rf_read_horizon $b reads/s, ratio $(awk "BEGIN {printf \"%.2f\", $b / $a}")"
    done
}
round quiet
pgbench -n -c 4 -j 2 -T $((secs * 6 + 10)) -f "$work/writer.sql" "$db_url" >/dev/null 2>&1 &
writers=$!
sleep 1
round "4 writers"
wait "$writers"
