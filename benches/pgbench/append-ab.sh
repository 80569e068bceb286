#!/usr/bin/env bash
# A single-event rf_append with the newest migration applied and with it
# reverted, alternating, three rounds: pgbench, 8 clients, one statement per
# transaction, a checkpoint before each run, 10,000 existing streams.
#   existing   'any' version: the three-statement path
#   exact      'exists': the full path (head lock, checks, insert)
# An append that meets a newer writer's transaction id fails with RF003 (the
# store retries it; pgbench counts it as failed, so figures are of commits).
#
#   benches/pgbench/append-ab.sh ADMIN_URL [SECONDS]
#
# Creates the scratch database rf_cmp and drops it at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
U=${1:?usage: append-ab.sh ADMIN_URL [SECONDS]}; secs=${2:-8}
bin=target/release/rillflow
[ -x "$bin" ] || { echo "build rillflow first (cargo build --release -p rillflow)" >&2; exit 2; }
base=${U%/*}
db="$base/rf_cmp"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
psql -q "$U" -c "DROP DATABASE IF EXISTS rf_cmp" -c "CREATE DATABASE rf_cmp"
DATABASE_URL=$db "$bin" migrate >/dev/null
psql -q "$db" >/dev/null <<'SQL'
SELECT count(*) FROM (SELECT rf_append(('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, 'any', NULL, NULL,
                 NULL, ARRAY['Seed'], NULL, ARRAY['{}'::jsonb], NULL, NULL, NULL)
  FROM generate_series(1, 10000) g) s;
VACUUM ANALYZE;
SQL
cat > "$work/existing.sql" <<'SQL'
\set s random(1, 10000)
SELECT * FROM rf_append(('00000000-0000-0000-0000-' || lpad(:s::text, 12, '0'))::uuid, 'any',
                        NULL, NULL, NULL, ARRAY['Bench'], NULL, ARRAY['{"amount": 10}'::jsonb],
                        NULL, NULL, NULL);
SQL
cat > "$work/exact.sql" <<'SQL'
\set s random(1, 10000)
SELECT * FROM rf_append(('00000000-0000-0000-0000-' || lpad(:s::text, 12, '0'))::uuid, 'exists',
                        NULL, NULL, NULL, ARRAY['Bench'], NULL, ARRAY['{"amount": 10}'::jsonb],
                        NULL, NULL, NULL);
SQL
for round in 1 2 3; do
  for m in newest previous; do
    if [ $m = previous ]; then DATABASE_URL=$db "$bin" migrate --down 1 >/dev/null; else DATABASE_URL=$db "$bin" migrate >/dev/null; fi
    for f in existing exact; do
      psql -q "$db" -c "CHECKPOINT"
      tps=$( (pgbench -n -M prepared -c 8 -j 2 -T "$secs" -f "$work/$f.sql" "$db" 2>&1 || true) | sed -n "s/^tps = \([0-9.]*\).*/\1/p")
      printf 'round %s %s %-9s %8.0f tx/s\n' $round $m $f "$tps"
    done
  done
done
psql -q "$U" -c "DROP DATABASE rf_cmp"
