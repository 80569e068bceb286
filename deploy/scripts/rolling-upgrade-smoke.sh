#!/usr/bin/env bash
# Rolling-upgrade smoke test of a hot/cold projection cluster.
#
# Starts a three-node hot/cold cluster on the old binary with a small
# declarative projection (rolling-upgrade-smoke.toml, next to this script),
# appends events in the background the whole time, and upgrades the cluster
# the way docs/hotcold.md describes: schema first, then every standby one at
# a time, then a graceful `projections promote` of an upgraded standby, then
# the former hot node. Once the read model has caught up, it checks in the
# database that every acknowledged event was stored once and applied once:
# nothing lost, nothing doubled, nothing invented. Exits 0 on success and 1
# on any discrepancy, error or timeout; every process and database it started
# is stopped or dropped on the way out, however it ends.
#
# Usage: deploy/scripts/rolling-upgrade-smoke.sh [--old-bin PATH] [--new-bin PATH]
#            [--cluster NAME] [--timeout SECS] [--work-dir DIR]
#        deploy/scripts/rolling-upgrade-smoke.sh --verify-only [--expect-events N]
#
# Database: with DATABASE_URL set, a scratch database is created next to the
# one it names and dropped at the end (the role needs CREATEDB). Without it, a
# throwaway PostgreSQL is started with `rillflow db start --dir` in the work
# directory and stopped at the end. Needs bash 4, psql and the PostgreSQL
# server binaries (only without DATABASE_URL).
#
# --verify-only runs just the final check against DATABASE_URL as it is (no
# scratch database, no daemons): a database where upgrade_smoke_ledger was
# built from UpgradeProbe events. It is how the check itself is tested.

set -euo pipefail

script_dir=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly script_dir
readonly projection_file="$script_dir/rolling-upgrade-smoke.toml"
readonly projection=upgrade_smoke_ledger
readonly event_type=UpgradeProbe
# Short timings, so the smoke takes seconds: a heartbeat a second, a three
# second lease, one second of grace (the tests and the demo use the same).
readonly timing=(--heartbeat-secs 1 --lease-ttl-secs 3 --lease-grace-secs 1)
readonly nodes=(node-a node-b node-c)

old_bin=""
new_bin=""
cluster=upgrade-smoke
timeout_secs=60
work=""
verify_only=0
expect_events=""

usage() {
    sed -n '/^# Usage:/,/^#        .*--verify-only/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

die() {
    echo "error: $*" >&2
    exit 1
}

while (($# > 0)); do
    case $1 in
        --old-bin) old_bin=${2:?--old-bin needs a path}; shift 2 ;;
        --new-bin) new_bin=${2:?--new-bin needs a path}; shift 2 ;;
        --cluster) cluster=${2:?--cluster needs a name}; shift 2 ;;
        --timeout) timeout_secs=${2:?--timeout needs seconds}; shift 2 ;;
        --work-dir) work=${2:?--work-dir needs a directory}; shift 2 ;;
        --verify-only) verify_only=1; shift ;;
        --expect-events) expect_events=${2:?--expect-events needs a count}; shift 2 ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; echo "error: unknown argument: $1" >&2; exit 2 ;;
    esac
done

[[ $timeout_secs =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a positive number of seconds"
[[ -z $expect_events || $expect_events =~ ^[0-9]+$ ]] || die "--expect-events must be a count"
[[ $cluster =~ ^[A-Za-z0-9._-]+$ ]] || die "--cluster may use letters, digits, '.', '_' and '-' only"

# Binaries: the given paths, else `rillflow` on PATH (the same binary for
# both is a fine smoke of the procedure itself).
resolve_bin() {
    local given=$1 found
    if [[ -n $given ]]; then
        [[ -x $given ]] || die "$given is not an executable file"
        found=$given
    else
        found=$(command -v rillflow) || die "no rillflow on PATH; pass --old-bin and --new-bin"
    fi
    # Absolute, so that changing directory cannot change which binary runs.
    echo "$(cd -- "$(dirname -- "$found")" && pwd)/$(basename -- "$found")"
}

find_psql() {
    local candidates
    if command -v psql >/dev/null 2>&1; then
        command -v psql
        return
    fi
    # Debian keeps the client of each major version here too; take the newest.
    shopt -s nullglob
    candidates=(/usr/lib/postgresql/*/bin/psql)
    shopt -u nullglob
    if ((${#candidates[@]} > 0)); then
        printf '%s\n' "${candidates[@]}" | sort -V | tail -n 1
        return
    fi
    die "psql not found (install the PostgreSQL client, e.g. apt-get install postgresql-client)"
}

psql_bin=$(find_psql)

# Runs one SQL statement on database URL $1; prints unaligned rows, fields
# separated by '|'.
sql() {
    "$psql_bin" -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

# ---------------------------------------------------------------------------
# JSON. `cluster-status --output json` is the daemon's own account of the
# cluster; the script reads it without jq by flattening it into
# "path<TAB>value" lines such as "clusters.0.nodes.1.role<TAB>cold".
# ---------------------------------------------------------------------------
json_flatten() {
    awk '
        { buf = buf $0 "\n" }
        function path(   p, k) {
            p = ""
            for (k = 1; k <= d; k++) p = p (k > 1 ? "." : "") key[k]
            return p
        }
        # A value starts: in an array it takes the next index.
        function begin_value() { if (d > 0 && type[d] == "a") key[d] = ++idx[d] - 1 }
        # A value ended: in an object the next string is a key again.
        function end_value() { if (d > 0 && type[d] == "o") want_key[d] = 1 }
        END {
            n = length(buf); i = 1; d = 0
            while (i <= n) {
                c = substr(buf, i, 1)
                if (c == "{" || c == "[") {
                    begin_value()
                    d++
                    type[d] = (c == "{") ? "o" : "a"
                    want_key[d] = 1; idx[d] = 0; key[d] = ""
                    i++
                } else if (c == "}" || c == "]") {
                    d--
                    end_value()
                    i++
                } else if (c == "\"") {
                    j = i + 1; s = ""
                    while (j <= n && substr(buf, j, 1) != "\"") {
                        if (substr(buf, j, 1) == "\\") { s = s substr(buf, j, 2); j += 2 }
                        else { s = s substr(buf, j, 1); j++ }
                    }
                    i = j + 1
                    if (type[d] == "o" && want_key[d]) { key[d] = s; want_key[d] = 0 }
                    else { begin_value(); print path() "\t" s; end_value() }
                } else if (c ~ /[-0-9tfn]/) {
                    j = i
                    while (j <= n && substr(buf, j, 1) ~ /[-+.0-9a-zA-Z]/) j++
                    begin_value(); print path() "\t" substr(buf, i, j - i); end_value()
                    i = j
                } else {
                    i++
                }
            }
        }'
}

# The cluster as `cluster-status` reports it, flattened.
status_flat() {
    "$cli_bin" projections cluster-status --cluster "$cluster" --output json 2>>"$logs/cli.log" |
        json_flatten
}

# One line per node the cluster reports: NAME ROLE LIVE HOT.
node_table() {
    local flat
    flat=$(status_flat) || return 1
    awk -F '\t' '
        match($1, /^clusters\.0\.nodes\.[0-9]+\./) {
            i = substr($1, 18, RLENGTH - 18); f = substr($1, RLENGTH + 1)
            if (!(i in seen)) { seen[i] = 1; order[++n] = i }
            v[i, f] = $2
        }
        END { for (k = 1; k <= n; k++) { i = order[k]; print v[i, "name"], v[i, "role"], v[i, "live"], v[i, "hot"] } }
    ' <<<"$flat"
}

# The cluster's fencing epoch: every lease grant raises it by one.
cluster_epoch() {
    status_flat | awk -F '\t' '$1 == "clusters.0.epoch" { print $2 }'
}

# The node holding the valid lease, if any.
hot_node() {
    node_table | awk '$4 == "true" { print $1 }'
}

# True when NAME runs as a standby that could take the lease: cold, heard
# from within the lease ttl, not hot.
is_live_standby() {
    node_table | awk -v n="$1" '$1 == n && $2 == "cold" && $3 == "true" && $4 == "false" { ok = 1 } END { exit !ok }'
}

# True when NAME announced a clean exit (or is no longer reported).
is_stopped() {
    local table
    table=$(node_table) || return 1
    awk -v n="$1" '$1 == n && ($2 != "stopped" || $3 == "true") { running = 1 } END { exit running }' <<<"$table"
}

# True when one node is hot and every other node is a live standby.
is_settled() {
    local table name
    table=$(node_table) || return 1
    [[ $(awk '$4 == "true"' <<<"$table" | wc -l) -eq 1 ]] || return 1
    for name in "${nodes[@]}"; do
        awk -v n="$name" '$1 == n && $3 == "true" && ($4 == "true" || $2 == "cold") { ok = 1 } END { exit !ok }' <<<"$table" ||
            return 1
    done
}

# Polls a condition (a command) every 200 ms until it holds, for at most
# --timeout seconds.
wait_for() {
    local what=$1 deadline=$((SECONDS + timeout_secs))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || die "timed out after ${timeout_secs} s waiting for $what (logs: $logs)"
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------
# The final check, from the database alone.
# ---------------------------------------------------------------------------
readonly verify_sql="
WITH stored AS (
    SELECT position, event_id, (data->>'seq')::bigint AS seq FROM events WHERE event_type = '$event_type'
    UNION ALL
    SELECT position, event_id, (data->>'seq')::bigint FROM events_archive WHERE event_type = '$event_type'
)
SELECT (SELECT count(*) FROM stored),
       (SELECT count(DISTINCT seq) FROM stored),
       (SELECT count(*) FROM $projection),
       (SELECT count(*) FROM stored s
         WHERE NOT EXISTS (SELECT 1 FROM $projection l WHERE l.position = s.position)),
       (SELECT count(*) FROM $projection WHERE applied > 1),
       (SELECT count(*) FROM $projection l
         WHERE NOT EXISTS (SELECT 1 FROM stored s
                            WHERE s.position = l.position AND s.event_id = l.event_id AND s.seq = l.seq))"

# Prints the figures and returns non-zero on any discrepancy. $1: the
# database URL; $2: acknowledged appends, or empty when unknown.
verify() {
    local url=$1 acknowledged=$2 figures stored distinct projected missing doubled invented
    figures=$(sql "$url" "$verify_sql") || die "cannot read the store and the read model"
    IFS='|' read -r stored distinct projected missing doubled invented <<<"$figures"
    local ok=1
    row() { printf '%-42s %s\n' "$1" "$2"; }
    echo
    row CHECK RESULT
    if [[ -n $acknowledged ]]; then
        row "events appended (acknowledged)" "$acknowledged"
        ((stored == acknowledged)) || ok=0
    fi
    row "events in the store" "$stored"
    row "distinct sequence numbers in the store" "$distinct"
    row "events projected" "$projected"
    row "missing from the read model" "$missing"
    row "applied more than once" "$doubled"
    row "in the read model but not in the store" "$invented"
    ((distinct == stored && projected == stored && missing == 0 && doubled == 0 && invented == 0)) || ok=0
    if ((ok)); then
        echo
        echo "PASS: every acknowledged event was stored once and applied exactly once"
    else
        echo
        echo "FAIL: the read model does not match the acknowledged events (figures above)"
        return 1
    fi
}

if ((verify_only)); then
    [[ -n ${DATABASE_URL:-} ]] || die "--verify-only checks the database named by DATABASE_URL; set it"
    verify "$DATABASE_URL" "$expect_events"
    exit
fi

old_bin=$(resolve_bin "$old_bin")
new_bin=$(resolve_bin "$new_bin")
[[ -f $projection_file ]] || die "missing $projection_file"

# ---------------------------------------------------------------------------
# Everything started from here on is undone by cleanup(), however the script
# ends: the writer, the nodes, the scratch database or the local server.
# ---------------------------------------------------------------------------
if [[ -z $work ]]; then
    work=$(mktemp -d "${TMPDIR:-/tmp}/rillflow-upgrade-smoke.XXXXXX")
else
    mkdir -p "$work"
fi
work=$(cd -- "$work" && pwd)
logs="$work/logs"
mkdir -p "$logs"
acked="$work/acknowledged"
stop_file="$work/stop-appending"
: >"$acked"

declare -A node_pid=() node_bin=()
writer_pid=""
scratch_db=""
admin_url=""
local_pg=""
cli_bin=$old_bin

cleanup() {
    local rc=$? name pid waited
    set +e
    trap - EXIT INT TERM
    if [[ -n $writer_pid ]]; then
        touch "$stop_file"
        kill -TERM "$writer_pid" 2>/dev/null
        wait "$writer_pid" 2>/dev/null
    fi
    # SIGTERM first (a hot node hands its lease over), SIGKILL after 10 s.
    for name in "${!node_pid[@]}"; do
        kill -TERM "${node_pid[$name]}" 2>/dev/null
    done
    for name in "${!node_pid[@]}"; do
        pid=${node_pid[$name]}
        waited=0
        while kill -0 "$pid" 2>/dev/null && ((waited < 50)); do
            sleep 0.2
            waited=$((waited + 1))
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [[ -n $scratch_db ]]; then
        sql "$admin_url" "DROP DATABASE IF EXISTS \"$scratch_db\" WITH (FORCE)" >/dev/null ||
            echo "warning: could not drop the scratch database $scratch_db" >&2
    fi
    if [[ -n $local_pg ]]; then
        "$old_bin" db stop --dir "$local_pg" >/dev/null 2>&1 ||
            echo "warning: could not stop the local PostgreSQL in $local_pg" >&2
        rm -rf "$local_pg"
    fi
    if ((rc == 0)); then
        rm -rf "$work"
    else
        echo "logs kept in $logs" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
step() {
    echo "[$1/9] $2 (+$((SECONDS - started)) s)" >&2
}

# Same flags for every node and every binary; only the binary changes.
start_node() {
    local name=$1 bin=$2
    RUST_LOG=info "$bin" projections run-loop \
        --cluster-mode hotcold --cluster-name "$cluster" --node-name "$name" \
        "${timing[@]}" --min-cold-standbys 2 --poll-interval-ms 200 \
        --projections "$projection_file" >>"$logs/$name.log" 2>&1 &
    node_pid[$name]=$!
    node_bin[$name]=$bin
}

# Graceful stop (SIGTERM); the node must exit 0 within the timeout.
stop_node() {
    local name=$1 pid=${node_pid[$1]} deadline=$((SECONDS + timeout_secs)) rc=0
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do
        ((SECONDS < deadline)) || die "$name did not exit within ${timeout_secs} s of SIGTERM"
        sleep 0.1
    done
    wait "$pid" || rc=$?
    unset "node_pid[$name]"
    ((rc == 0)) || die "$name exited with status $rc after SIGTERM (log: $logs/$name.log)"
}

# Stops NAME, starts it again on the new binary under the same name, and
# waits until the cluster reports it as a live standby.
upgrade_node() {
    local name=$1
    stop_node "$name"
    wait_for "$name to report its clean exit" is_stopped "$name"
    start_node "$name" "$new_bin"
    wait_for "$name to rejoin as a live standby on the new binary" is_live_standby "$name"
    echo "      $name runs the new binary and stands by" >&2
    keeps_projecting "after $name's restart"
}

acknowledged_count() {
    wc -l <"$acked" | tr -d ' '
}

# Appends one event at a time, round-robin over eight streams, until the stop
# file appears. Each event carries a sequence number and an idempotency key
# made from it, so a retried append whose first attempt did commit cannot
# store it twice; a sequence number is recorded only once acknowledged.
writer() {
    local seq=0 tries stream
    local streams=(
        5d1c0a00-0000-4000-8000-000000000001 5d1c0a00-0000-4000-8000-000000000002
        5d1c0a00-0000-4000-8000-000000000003 5d1c0a00-0000-4000-8000-000000000004
        5d1c0a00-0000-4000-8000-000000000005 5d1c0a00-0000-4000-8000-000000000006
        5d1c0a00-0000-4000-8000-000000000007 5d1c0a00-0000-4000-8000-000000000008
    )
    while [[ ! -e $stop_file ]]; do
        seq=$((seq + 1))
        stream=${streams[$((seq % ${#streams[@]}))]}
        tries=0
        until "$old_bin" events append --stream "$stream" \
            --type "$event_type" --data "{\"seq\":$seq}" \
            --idempotency-key "upgrade-smoke-$seq" >/dev/null 2>>"$logs/writer.log"; do
            tries=$((tries + 1))
            if ((tries >= 25)); then
                echo "append $seq failed $tries times" >>"$logs/writer.log"
                exit 1
            fi
            sleep 0.2
        done
        echo "$seq" >>"$acked"
        sleep 0.05
    done
}

projected_count() {
    sql "$db_url" "SELECT count(*) FROM $projection" 2>/dev/null
}

# True once N events were acknowledged and N applied.
appended_and_projected() {
    local n
    (($(acknowledged_count) >= $1)) || return 1
    n=$(projected_count) || return 1
    ((n >= $1))
}

# Waits until the cluster, in whatever state the last step left it, has
# appended and projected five events more than it had: every intermediate
# mix of old and new nodes must keep projecting, not only the end state.
keeps_projecting() {
    local mark
    mark=$(($(acknowledged_count) + 5))
    wait_for "the cluster to project new events $1" appended_and_projected "$mark"
}

caught_up() {
    local stored projected
    stored=$(sql "$db_url" "SELECT (SELECT count(*) FROM events WHERE event_type = '$event_type')
                                 + (SELECT count(*) FROM events_archive WHERE event_type = '$event_type')") || return 1
    projected=$(projected_count) || return 1
    ((projected >= stored))
}

# ---------------------------------------------------------------------------
step 1 "preparing a database"
if [[ -n ${DATABASE_URL:-} ]]; then
    admin_url=$DATABASE_URL
    scratch_db="rillflow_upgrade_smoke_$$_${RANDOM}"
    sql "$admin_url" "CREATE DATABASE \"$scratch_db\"" >/dev/null ||
        { scratch_db=""; die "cannot create a scratch database (the role needs CREATEDB)"; }
    # The same server, user and options; only the database differs.
    query=""
    base=$admin_url
    if [[ $base == *\?* ]]; then
        query="?${base#*\?}"
        base=${base%%\?*}
    fi
    authority=${base#*://}
    authority=${authority%%/*}
    db_url="${base%%://*}://$authority/$scratch_db$query"
    echo "      scratch database $scratch_db" >&2
else
    local_pg="$work/pg"
    db_url=$("$old_bin" db start --dir "$local_pg" 2>>"$logs/db.log") ||
        die "cannot start a local PostgreSQL (log: $logs/db.log)"
    echo "      throwaway PostgreSQL in $local_pg" >&2
fi
# Every rillflow command below, the nodes included, talks to it.
export DATABASE_URL=$db_url

step 2 "migrating with the old binary"
"$old_bin" migrate >>"$logs/migrate.log" 2>&1 ||
    die "migrate (old binary) failed (log: $logs/migrate.log)"

step 3 "starting ${#nodes[@]} nodes on the old binary"
for name in "${nodes[@]}"; do
    start_node "$name" "$old_bin"
done
wait_for "one hot node and two live standbys" is_settled
first_hot=$(hot_node) || die "cannot read the cluster status"
first_epoch=$(cluster_epoch) || die "cannot read the cluster status"
echo "      $first_hot is hot (epoch $first_epoch)" >&2

step 4 "appending events in the background"
writer &
writer_pid=$!
keeps_projecting "on the old binary"

step 5 "migrating with the new binary (schema first)"
"$new_bin" migrate >>"$logs/migrate.log" 2>&1 || die "migrate (new binary) failed (log: $logs/migrate.log)"
cli_bin=$new_bin

step 6 "restarting each standby on the new binary"
hot=$(hot_node) || die "cannot read the cluster status"
for name in "${nodes[@]}"; do
    if [[ $name != "$hot" ]]; then
        upgrade_node "$name"
    fi
done

step 7 "handing the hot role to an upgraded standby (projections promote)"
hot=$(hot_node) || die "cannot read the cluster status"
[[ -n $hot ]] || die "no hot node after the standby restarts"
target=""
for name in "${nodes[@]}"; do
    if [[ $name != "$hot" && ${node_bin[$name]} == "$new_bin" ]]; then
        target=$name
        break
    fi
done
[[ -n $target ]] || die "no upgraded standby to promote"
before=$(date +%s%N)
"$new_bin" projections promote --cluster "$cluster" --node "$target" --wait-secs "$timeout_secs" \
    >>"$logs/cli.log" 2>&1 || die "promote of $target failed (log: $logs/cli.log)"
promote_ms=$((($(date +%s%N) - before) / 1000000))
[[ $(hot_node) == "$target" ]] || die "$target is not hot after the promote"
echo "      $target is hot; promote returned after $promote_ms ms" >&2
keeps_projecting "after the promote"

step 8 "restarting the former hot node ($hot) on the new binary"
upgrade_node "$hot"
wait_for "one hot node and two live standbys" is_settled
final_hot=$(hot_node) || die "cannot read the cluster status"
final_epoch=$(cluster_epoch) || die "cannot read the cluster status"

step 9 "stopping appends, waiting for the read model to catch up, verifying"
touch "$stop_file"
writer_rc=0
wait "$writer_pid" || writer_rc=$?
writer_pid=""
((writer_rc == 0)) || die "the writer gave up (log: $logs/writer.log)"
acknowledged=$(acknowledged_count)
# A lost event would keep this wait from ending; the check below then names
# the figures rather than only the timeout.
deadline=$((SECONDS + timeout_secs))
until caught_up; do
    if ((SECONDS >= deadline)); then
        echo "error: the read model did not catch up within ${timeout_secs} s" >&2
        break
    fi
    sleep 0.2
done

echo "rolling upgrade smoke of cluster $cluster ($((SECONDS - started)) s)"
printf '%-42s %s\n' "old binary" "$("$old_bin" --version) ($old_bin)"
printf '%-42s %s\n' "new binary" "$("$new_bin" --version) ($new_bin)"
printf '%-42s %s\n' "hot node before / after" "$first_hot / $final_hot"
printf '%-42s %s\n' "lease grants during the upgrade" "$((final_epoch - first_epoch)) (1 expected: the promote)"
printf '%-42s %s\n' "promote returned after" "$promote_ms ms"
sql "$db_url" "SELECT applied_by, count(*) FROM $projection GROUP BY 1 ORDER BY 1" |
    while IFS='|' read -r session count; do
        printf '%-42s %s\n' "events applied by ${session#rillflow-daemon }" "$count"
    done
verify "$db_url" "$acknowledged"
