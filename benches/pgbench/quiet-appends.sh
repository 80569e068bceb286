#!/usr/bin/env bash
# What the wake-up NOTIFY cost appends, and what they cost now: single-event
# appends from 8 clients (one per transaction, a new stream each) with
# pgbench, in one run on one server, against a raw single-row INSERT into a
# table with the same indexes as `events`:
#   raw     INSERT INTO raw_events (unique (stream_id, version), (tx_id,
#           position), brin (position))
#   0013    rf_append on a store at the latest migration (0013 and later:
#           appends notify nobody)
#   0012    rf_append on a store reverted to 0012: every append's commit
#           sends the wake-up NOTIFY
# Forms alternate which runs first; each round checkpoints first.
#
#   DATABASE_URL=postgres://user:pw@host:port/postgres benches/pgbench/quiet-appends.sh [SECONDS] [ROUNDS]
#
# Creates the scratch databases rf_bench_q13 and rf_bench_q12 and drops them
# at the end. Needs pgbench and psql, and a built rillflow.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-8}
rounds=${2:-3}
: "${DATABASE_URL:?set DATABASE_URL to an admin URL of the server to measure}"
bin=target/release/rillflow
[ -x "$bin" ] || bin=target/debug/rillflow
[ -x "$bin" ] || { echo "build rillflow first (cargo build --release -p rillflow)" >&2; exit 2; }
base=${DATABASE_URL%%\?*}
q13="${base%/*}/rf_bench_q13"
q12="${base%/*}/rf_bench_q12"
work=$(mktemp -d)
drop_scratch() {
    psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS rf_bench_q13" \
        -c "DROP DATABASE IF EXISTS rf_bench_q12" >/dev/null 2>&1 || true
}
trap 'drop_scratch; rm -rf "$work"' EXIT
drop_scratch
psql -q "$DATABASE_URL" -c "CREATE DATABASE rf_bench_q13" -c "CREATE DATABASE rf_bench_q12"
DATABASE_URL=$q13 "$bin" migrate >/dev/null
DATABASE_URL=$q12 "$bin" migrate >/dev/null
# Back to 0012 whatever came after 0013.
applied=$(DATABASE_URL=$q12 "$bin" migrate --status | grep -c $'\tapplied')
DATABASE_URL=$q12 "$bin" migrate --down $((applied - 12)) >/dev/null
psql -q "$q13" <<'SQL'
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
SQL
cat > "$work/raw.sql" <<'SQL'
INSERT INTO raw_events (stream_id, version, event_type, data)
VALUES (gen_random_uuid(), 1, 'Bench', '{"amount": 10}');
SQL
cat > "$work/append.sql" <<'SQL'
SELECT * FROM rf_append(gen_random_uuid(), 'any', NULL, NULL, NULL, ARRAY['Bench'], NULL,
                        ARRAY['{"amount": 10}'::jsonb], NULL, NULL, NULL);
SQL
tps() {
    psql -q "$1" -c "CHECKPOINT"
    pgbench -n -M prepared -c 8 -j 2 -T "$secs" -f "$2" "$1" 2>&1 \
        | sed -n "s/^tps = \([0-9.]*\).*/\1/p"
}
printf '%-6s %10s %10s %10s %10s %10s\n' round raw 0013 0012 0013/raw 0012/raw
for r in $(seq 1 "$rounds"); do
    case $((r % 3)) in
    1) a=$(tps "$q13" "$work/raw.sql"); b=$(tps "$q13" "$work/append.sql"); c=$(tps "$q12" "$work/append.sql") ;;
    2) b=$(tps "$q13" "$work/append.sql"); c=$(tps "$q12" "$work/append.sql"); a=$(tps "$q13" "$work/raw.sql") ;;
    0) c=$(tps "$q12" "$work/append.sql"); a=$(tps "$q13" "$work/raw.sql"); b=$(tps "$q13" "$work/append.sql") ;;
    esac
    printf '%-6s %10.0f %10.0f %10.0f %10.2f %10.2f\n' "$r" "$a" "$b" "$c" \
        "$(echo "$b / $a" | bc -l)" "$(echo "$c / $a" | bc -l)"
done
