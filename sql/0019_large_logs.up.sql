-- rillflow 0019: figures that cost the same on a large log as on a small one.
--
-- * `rf_projection_lag`: a checkpoint's lag from at most `p_cap` index
--   entries per tier, estimated from positions beyond. The statement it
--   replaced asked for "any p_cap rows after the checkpoint" without an
--   order; on a large log the planner chose a sequential scan that it
--   expected to stop early, and a caught-up checkpoint (no such row) made it
--   read the whole table on every scrape. Here each tier is walked in its
--   (tx_id, position) index order under a LIMIT, and the function carries
--   its own planner settings (whatever the caller's): with sequential,
--   bitmap and sort paths disabled, the only plan left on any statistics is
--   the ordered index walk that stops after `p_cap` entries (the
--   partitioned backend merges the walks of its partitions, still in index
--   order). The disabled paths
--   carry a huge cost, which would make Postgres compile the plan with JIT
--   (a quarter of a second on every call), so JIT is off here too.
-- * `rf_archive_count`: the figures of `archive status`, counted up to a
--   cap and taken from the planner's estimates beyond (marked as such;
--   `--exact` counts everything), so the command costs the same at any size.
-- * `rf_streams_awaiting_move_idx`: the mover's backlog (archived streams
--   with events still hot) is counted from an index as small as that
--   backlog, not as large as everything ever archived.

CREATE FUNCTION rf_projection_lag(
    p_tx         bigint,
    p_position   bigint,
    p_partitions integer,
    p_key        integer,
    p_cap        integer
) RETURNS TABLE (lag bigint, exact boolean)
LANGUAGE sql STABLE
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_sort = off
SET enable_indexscan = on
SET jit = off
AS $$
    WITH sample AS (
        SELECT count(*) FILTER (WHERE x.tier = 'h') AS hot,
               count(*) FILTER (WHERE x.tier = 'c') AS cold,
               count(*) FILTER (WHERE p_partitions <= 1
                                   OR x.partition_hash % p_partitions = p_key) AS mine
          FROM ((SELECT 'h' AS tier, e.partition_hash FROM events e
                  WHERE (e.tx_id, e.position) > (p_tx, p_position)
                  ORDER BY e.tx_id, e.position
                  LIMIT p_cap)
                UNION ALL
                (SELECT 'c', a.partition_hash FROM events_archive a
                  WHERE (a.tx_id, a.position) > (p_tx, p_position)
                  ORDER BY a.tx_id, a.position
                  LIMIT p_cap)) x)
    SELECT CASE
             WHEN s.hot < p_cap AND s.cold < p_cap THEN s.mine
             -- Past the cap: the positions issued since the checkpoint,
             -- times this partition's share of the sample. Positions of
             -- rolled-back appends make it err high; the share is the
             -- sample's, which is the log right after the checkpoint.
             ELSE greatest(s.mine,
                           round((q.last_value - p_position)::numeric * s.mine
                                 / greatest(s.hot + s.cold, 1))::bigint)
           END,
           s.hot < p_cap AND s.cold < p_cap
      FROM sample s, rf_events_position_seq q
$$;

COMMENT ON FUNCTION rf_projection_lag(bigint, bigint, integer, integer, integer) IS
    'Events of partition p_key (of p_partitions) after the checkpoint (p_tx, p_position): exact when '
    'fewer than p_cap lie after it in each tier, else estimated from positions. Reads at most p_cap '
    'index entries per tier under any statistics.';

-- One of the counts `archive status` shows: exact up to p_cap rows, else
-- the planner's estimate (never below the cap). The name picks the
-- statement; nothing from the caller reaches the SQL text. Each filtered
-- count has a partial index below, and the function's own settings leave
-- the planner no plan but an index walk that stops at the cap.
CREATE FUNCTION rf_archive_count(p_count text, p_cap integer) RETURNS TABLE (n bigint, exact boolean)
LANGUAGE plpgsql VOLATILE
SET enable_seqscan = off
SET enable_bitmapscan = off
SET enable_indexscan = on
SET enable_indexonlyscan = on
SET jit = off
AS $$
DECLARE
    v_from text;
    v_plan json;
BEGIN
    v_from := CASE p_count
        WHEN 'streams' THEN 'rf_streams'
        WHEN 'streams_archived' THEN 'rf_streams WHERE archived_at IS NOT NULL'
        WHEN 'streams_cold' THEN 'rf_streams WHERE retention_class = ''cold'''
        WHEN 'streams_reactivated' THEN
            'rf_streams WHERE reactivated_at IS NOT NULL AND archived_at IS NULL'
        WHEN 'events_hot' THEN 'events_hot'
        WHEN 'events_cold' THEN 'events_cold'
        WHEN 'events_archive' THEN 'events_archive'
    END;
    IF v_from IS NULL THEN
        RAISE EXCEPTION 'no archive count named %', p_count USING ERRCODE = 'RF002';
    END IF;
    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT %s) x', v_from, p_cap) INTO n;
    exact := n < p_cap;
    IF NOT exact THEN
        EXECUTE 'EXPLAIN (FORMAT JSON) SELECT 1 FROM ' || v_from INTO v_plan;
        n := greatest(n, (v_plan -> 0 -> 'Plan' ->> 'Plan Rows')::numeric::bigint);
    END IF;
    RETURN NEXT;
END
$$;

CREATE INDEX rf_streams_cold_ids_idx ON rf_streams (stream_id) WHERE retention_class = 'cold';
CREATE INDEX rf_streams_reactivated_ids_idx ON rf_streams (stream_id)
    WHERE reactivated_at IS NOT NULL AND archived_at IS NULL;

CREATE INDEX rf_streams_awaiting_move_idx ON rf_streams (tenant_id)
    WHERE archived_at IS NOT NULL AND retention_class = 'hot';
