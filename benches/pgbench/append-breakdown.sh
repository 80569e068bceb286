#!/usr/bin/env bash
# Where a single-event append's time goes: pgbench, 8 clients, one statement
# per transaction, each form in turn on one server, a checkpoint before each:
#   raw         INSERT into a plain table with the indexes of `events`
#   events      INSERT straight into `events` (list- then range-partitioned,
#               the disabled redirect trigger), values computed by the client
#   head        INSERT of a new stream's head row into `rf_streams` alone
#   head+event  both inserts in one transaction, no function
#   new         rf_append to a new stream (what a first append does)
#   existing    rf_append to one of 10,000 existing streams
#
#   DATABASE_URL=postgres://user:pw@host:port/postgres benches/pgbench/append-breakdown.sh [SECONDS]
#
# Creates the scratch database rf_bench_breakdown and drops it at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-8}
: "${DATABASE_URL:?set DATABASE_URL to an admin URL of the server to measure}"
bin=target/release/rillflow
[ -x "$bin" ] || bin=target/debug/rillflow
[ -x "$bin" ] || { echo "build rillflow first (cargo build --release -p rillflow)" >&2; exit 2; }
base=${DATABASE_URL%%\?*}
db="${base%/*}/rf_bench_breakdown"
work=$(mktemp -d)
drop_scratch() { psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS rf_bench_breakdown" >/dev/null 2>&1 || true; }
trap 'drop_scratch; rm -rf "$work"' EXIT
drop_scratch
psql -q "$DATABASE_URL" -c "CREATE DATABASE rf_bench_breakdown"
DATABASE_URL=$db "$bin" migrate >/dev/null
psql -q "$db" <<'SQL'
CREATE TABLE raw_events (
    position   bigint GENERATED ALWAYS AS IDENTITY,
    tx_id      bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
    stream_id  uuid   NOT NULL,
    version    bigint NOT NULL,
    event_id   uuid   NOT NULL DEFAULT gen_random_uuid(),
    event_type text   NOT NULL,
    data       jsonb  NOT NULL,
    headers    jsonb  NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX ON raw_events (stream_id, version);
CREATE INDEX ON raw_events (tx_id, position);
CREATE INDEX ON raw_events USING brin (position);
SELECT rf_append(('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, 'any', NULL, NULL,
                 NULL, ARRAY['Seed'], NULL, ARRAY['{}'::jsonb], NULL, NULL, NULL)
  FROM generate_series(1, 10000) g;
VACUUM ANALYZE;
SQL
cat > "$work/raw.sql" <<'SQL'
INSERT INTO raw_events (stream_id, version, event_type, data)
VALUES (gen_random_uuid(), 1, 'Bench', '{"amount": 10}');
SQL
cat > "$work/events.sql" <<'SQL'
INSERT INTO events (position, tx_id, stream_id, version, event_type, data, partition_hash)
VALUES (nextval('rf_events_position_seq'), pg_current_xact_id()::text::bigint, gen_random_uuid(), 1,
        'Bench', '{"amount": 10}', 7);
SQL
cat > "$work/head.sql" <<'SQL'
INSERT INTO rf_streams (stream_id, version, last_tx_id, partition_hash)
VALUES (gen_random_uuid(), 1, pg_current_xact_id()::text::bigint, 7);
SQL
cat > "$work/both.sql" <<'SQL'
WITH s AS (SELECT gen_random_uuid() AS id, pg_current_xact_id()::text::bigint AS tx),
h AS (INSERT INTO rf_streams (stream_id, version, last_tx_id, partition_hash)
      SELECT id, 1, tx, 7 FROM s)
INSERT INTO events (position, tx_id, stream_id, version, event_type, data, partition_hash)
SELECT nextval('rf_events_position_seq'), tx, id, 1, 'Bench', '{"amount": 10}', 7 FROM s;
SQL
cat > "$work/new.sql" <<'SQL'
SELECT * FROM rf_append(gen_random_uuid(), 'any', NULL, NULL, NULL, ARRAY['Bench'], NULL,
                        ARRAY['{"amount": 10}'::jsonb], NULL, NULL, NULL);
SQL
cat > "$work/existing.sql" <<'SQL'
\set s random(1, 10000)
SELECT * FROM rf_append(('00000000-0000-0000-0000-' || lpad(:s::text, 12, '0'))::uuid, 'any',
                        NULL, NULL, NULL, ARRAY['Bench'], NULL, ARRAY['{"amount": 10}'::jsonb],
                        NULL, NULL, NULL);
SQL
for form in raw events head both new existing; do
    psql -q "$db" -c "CHECKPOINT"
    tps=$(pgbench -n -M prepared -c 8 -j 2 -T "$secs" -f "$work/$form.sql" "$db" 2>&1 \
        | sed -n "s/^tps = \([0-9.]*\).*/\1/p")
    printf '%-10s %10.0f tx/s\n' "$form" "$tps"
done
