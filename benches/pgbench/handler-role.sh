#!/usr/bin/env bash
# What a handler role (sql/0012) costs a batch's bookkeeping, against the
# statements before 0012, in one run on one server: pgbench, two clients,
# each transaction a batch without events — fence, checkpoint lock, advance,
# commit — in three forms, alternating:
#   before     the lease row read FOR SHARE directly, as the store's owner
#   owner      rf_fence_cluster(), as the store's owner (what every daemon
#              now runs; row security does not apply to the owner)
#   handler    rf_fence_cluster(), as a handler role (row security checks
#              every checkpoint row it touches)
#
#   DATABASE_URL=postgres://user:pw@host:port/postgres benches/pgbench/handler-role.sh [SECONDS] [ROUNDS]
#
# Creates the scratch database rf_bench_handler and the role rf_bench_handler
# (password 'bench', for this run only), and drops both at the end. Needs
# pgbench and psql, and a built rillflow (target/release or target/debug).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
rounds=${2:-3}
: "${DATABASE_URL:?set DATABASE_URL to an admin URL of the server to measure}"
bin=target/release/rillflow
[ -x "$bin" ] || bin=target/debug/rillflow
[ -x "$bin" ] || { echo "build rillflow first (cargo build --release -p rillflow)" >&2; exit 2; }
base=${DATABASE_URL%%\?*}
db_url="${base%/*}/rf_bench_handler"
hostpart=${base#*@}
handler_url="postgres://rf_bench_handler:bench@${hostpart%/*}/rf_bench_handler"
work=$(mktemp -d)
drop_scratch() {
    psql -q "$DATABASE_URL" -c "DROP DATABASE IF EXISTS rf_bench_handler" \
        -c "DROP ROLE IF EXISTS rf_bench_handler" >/dev/null 2>&1 || true
}
trap 'drop_scratch; cat "$work/pgbench.log" 2>/dev/null | grep -i error | head -3; rm -rf "$work"' EXIT
drop_scratch

psql -q "$DATABASE_URL" -c "CREATE DATABASE rf_bench_handler"
DATABASE_URL=$db_url "$bin" migrate >/dev/null
# Two projections, one per client, so the clients contend on the lease row
# (shared) and not on a checkpoint row; and a few others, as a store has.
for p in bench_a bench_b; do
    DATABASE_URL=$db_url "$bin" projections handler-role create rf_bench_handler \
        --projection "$p" --read-models rf_bench_models >/dev/null
done
psql -q "$db_url" <<'SQL'
ALTER ROLE rf_bench_handler PASSWORD 'bench';
INSERT INTO rf_projections (name) SELECT 'bench_' || c FROM unnest(ARRAY['a', 'b']) c;
INSERT INTO rf_projections (name) SELECT 'other_' || g FROM generate_series(1, 50) g;
INSERT INTO rf_checkpoints (projection, partition_key) SELECT name, 0 FROM rf_projections;
INSERT INTO rf_daemon_clusters (cluster_name, epoch, leader_node, lease_token, lease_expires_at)
VALUES ('bench', 7, 'n1', gen_random_uuid(), now() + interval '1 day');
VACUUM ANALYZE;
SQL

batch() {
    local fence=$1
    cat <<SQL
\set p random(0, 1)
BEGIN;
$fence
SELECT c.tx_id, c.position, p.paused FROM rf_checkpoints c JOIN rf_projections p ON p.name = c.projection
 WHERE c.projection = CASE WHEN :p::int = 0 THEN 'bench_a' ELSE 'bench_b' END AND c.partition_key = 0 AND c.model_version = 1
 FOR UPDATE OF c;
UPDATE rf_checkpoints SET tx_id = tx_id + 1, position = position + 1, updated_at = clock_timestamp()
 WHERE projection = CASE WHEN :p::int = 0 THEN 'bench_a' ELSE 'bench_b' END AND partition_key = 0 AND model_version = 1;
COMMIT;
SQL
}
batch "SELECT 1 FROM rf_daemon_clusters WHERE cluster_name = 'bench' AND epoch = 7 AND lease_expires_at > clock_timestamp() FOR SHARE;" > "$work/before.sql"
batch "SELECT rf_fence_cluster('bench', 7);" > "$work/fenced.sql"

tps() {
    # Every run updates the same two rows tens of thousands of times; without
    # a vacuum first, whichever form ran later would scan the dead versions
    # the earlier ones left.
    psql -q "$db_url" -c "VACUUM rf_checkpoints, rf_projections, rf_daemon_clusters"
    pgbench -n -M prepared -c 2 -j 2 -T "$secs" -f "$2" "$1" 2>&1 \
        | tee -a "$work/pgbench.log" | sed -n "s/^tps = \([0-9.]*\).*/\1/p"
}
printf '%-6s %12s %12s %12s %10s %10s\n' round before owner handler owner/b handler/b
# Each round starts with another form, so that none always runs first.
for r in $(seq 1 "$rounds"); do
    case $((r % 3)) in
    1) b=$(tps "$db_url" "$work/before.sql"); o=$(tps "$db_url" "$work/fenced.sql"); h=$(tps "$handler_url" "$work/fenced.sql") ;;
    2) o=$(tps "$db_url" "$work/fenced.sql"); h=$(tps "$handler_url" "$work/fenced.sql"); b=$(tps "$db_url" "$work/before.sql") ;;
    0) h=$(tps "$handler_url" "$work/fenced.sql"); b=$(tps "$db_url" "$work/before.sql"); o=$(tps "$db_url" "$work/fenced.sql") ;;
    esac
    printf '%-6s %12s %12s %12s %10.2f %10.2f\n' "$r" "$b" "$o" "$h" \
        "$(echo "$o / $b" | bc -l)" "$(echo "$h / $b" | bc -l)"
done
