-- rillflow 0001: the event store.
--
-- Ordering and gap safety (PROJ-2, PROJ-3): every event records the id of the
-- transaction that wrote it (`tx_id`, an xid8 as bigint) and a position from a
-- standalone sequence. Readers order by (tx_id, position) and never read a
-- transaction id at or above the xmin of their own snapshot, so an event that
-- took a low position but commits late is still ahead of every reader.
-- The stream head row in `rf_streams` is the single authority for a stream's
-- version (ARCH-2); no correctness rule depends on a unique index, because a
-- partitioned `events` table (0005) cannot carry one.

CREATE FUNCTION rf_partition_hash(p_stream uuid) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    -- First 32 bits of the uuid, sign bit cleared. Mirrored by
    -- rillflow_core::partition::partition_hash; the two must agree.
    SELECT (('x' || substr(replace(p_stream::text, '-', ''), 1, 8))::bit(32)::integer) & 2147483647
$$;

CREATE TABLE rf_streams (
    stream_id      uuid        PRIMARY KEY,
    version        bigint      NOT NULL CHECK (version >= 0),
    last_tx_id     bigint      NOT NULL,
    partition_hash integer     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE SEQUENCE rf_events_position_seq AS bigint START WITH 1;

CREATE TABLE events (
    position       bigint      NOT NULL,
    tx_id          bigint      NOT NULL,
    stream_id      uuid        NOT NULL,
    version        bigint      NOT NULL CHECK (version >= 1),
    event_id       uuid        NOT NULL DEFAULT gen_random_uuid(),
    event_type     text        NOT NULL,
    schema_version integer     NOT NULL DEFAULT 1,
    data           jsonb       NOT NULL,
    headers        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    causation_id   uuid,
    correlation_id uuid,
    partition_hash integer     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
-- Defence in depth only: the head row already serialises versions.
CREATE UNIQUE INDEX events_stream_version_idx ON events (stream_id, version);
-- The global feed's order.
CREATE INDEX events_tx_position_idx ON events (tx_id, position);
-- Lookups by position are rare (operators, `events tail --from`). Positions
-- are unique by construction (one sequence) and grow with the heap, so a
-- BRIN index finds them for almost no write cost, where a third btree would
-- cost appends about a fifth of their throughput.
CREATE INDEX events_position_brin ON events USING brin (position);

CREATE TABLE rf_idempotency (
    stream_id     uuid        NOT NULL,
    idem_key      text        NOT NULL,
    first_version bigint      NOT NULL,
    last_version  bigint      NOT NULL,
    positions     bigint[]    NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream_id, idem_key)
);

CREATE TABLE rf_checkpoints (
    projection    text        NOT NULL,
    partition_key integer     NOT NULL DEFAULT 0,
    tx_id         bigint      NOT NULL DEFAULT 0,
    position      bigint      NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, partition_key)
);

-- One append, one statement, one round trip. Error codes:
--   RF001 wrong expected version (DETAIL carries the actual version)
--   RF002 malformed request
--   RF003 this transaction's id is older than the stream's last writer; the
--         caller retries in a fresh transaction so that stream order and
--         (tx_id, position) order agree (PROJ-3).
CREATE FUNCTION rf_append(
    p_stream            uuid,
    p_expected_kind     text,    -- 'any' | 'no_stream' | 'exists' | 'exact'
    p_expected_version  bigint,  -- used with 'exact'
    p_idem_key          text,
    p_event_ids         uuid[],
    p_types             text[],
    p_schema_versions   integer[],
    p_data              jsonb[],
    p_headers           jsonb[],
    p_causation         uuid[],
    p_correlation       uuid[]
) RETURNS TABLE (first_version bigint, last_version bigint, positions bigint[], replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_n         integer := coalesce(array_length(p_types, 1), 0);
    v_current   bigint;
    v_last_tx   bigint;
    v_hash      integer;
    v_xid       bigint;
    v_exists    boolean;
    v_head_done boolean := false;  -- the head already carries this append
    v_positions bigint[];
    v_first     bigint;
    v_last      bigint;
BEGIN
    IF v_n = 0 THEN
        RAISE EXCEPTION 'an append needs at least one event' USING ERRCODE = 'RF002';
    END IF;
    -- Optional columns may be passed as NULL when no event sets them; unnest
    -- pads them with NULLs and the defaults apply.
    IF coalesce(array_length(p_data, 1), 0) <> v_n
       OR coalesce(array_length(p_event_ids, 1), v_n) <> v_n
       OR coalesce(array_length(p_schema_versions, 1), v_n) <> v_n
       OR coalesce(array_length(p_headers, 1), v_n) <> v_n
       OR coalesce(array_length(p_causation, 1), v_n) <> v_n
       OR coalesce(array_length(p_correlation, 1), v_n) <> v_n THEN
        RAISE EXCEPTION 'append arrays differ in length' USING ERRCODE = 'RF002';
    END IF;
    IF p_expected_kind NOT IN ('any', 'no_stream', 'exists', 'exact') THEN
        RAISE EXCEPTION 'unknown expected version kind %', p_expected_kind USING ERRCODE = 'RF002';
    END IF;

    -- Lock the head first: every append to the stream queues here.
    SELECT s.version, s.last_tx_id, s.partition_hash INTO v_current, v_last_tx, v_hash
      FROM rf_streams s WHERE s.stream_id = p_stream FOR UPDATE;
    v_exists := FOUND;
    -- The lock above assigned this transaction's id unless it already had one.
    v_xid := pg_current_xact_id()::text::bigint;

    IF NOT v_exists THEN
        IF p_expected_kind = 'exists'
           OR (p_expected_kind = 'exact' AND p_expected_version <> 0) THEN
            RAISE EXCEPTION 'wrong expected version' USING ERRCODE = 'RF001', DETAIL = '0';
        END IF;
        v_hash := rf_partition_hash(p_stream);
        INSERT INTO rf_streams (stream_id, version, last_tx_id, partition_hash)
             VALUES (p_stream, v_n, v_xid, v_hash)
        ON CONFLICT (stream_id) DO NOTHING;
        IF FOUND THEN
            v_current := 0;
            v_head_done := true;
        ELSE
            -- Another writer created the stream first; take its lock like any append.
            SELECT s.version, s.last_tx_id INTO v_current, v_last_tx
              FROM rf_streams s WHERE s.stream_id = p_stream FOR UPDATE;
        END IF;
    END IF;

    IF NOT v_head_done THEN
        IF v_last_tx > v_xid THEN
            RAISE EXCEPTION 'transaction id % is older than the stream''s last writer %', v_xid, v_last_tx
                USING ERRCODE = 'RF003';
        END IF;
        IF p_idem_key IS NOT NULL THEN
            SELECT i.first_version, i.last_version, i.positions INTO v_first, v_last, v_positions
              FROM rf_idempotency i WHERE i.stream_id = p_stream AND i.idem_key = p_idem_key;
            IF FOUND THEN
                RETURN QUERY SELECT v_first, v_last, v_positions, true;
                RETURN;
            END IF;
        END IF;
        IF (p_expected_kind = 'no_stream' AND v_current <> 0)
           OR (p_expected_kind = 'exists' AND v_current = 0)
           OR (p_expected_kind = 'exact' AND v_current <> p_expected_version) THEN
            RAISE EXCEPTION 'wrong expected version' USING ERRCODE = 'RF001', DETAIL = v_current::text;
        END IF;
        UPDATE rf_streams
           SET version = v_current + v_n, last_tx_id = v_xid, updated_at = now()
         WHERE stream_id = p_stream;
    END IF;

    -- Positions are taken up front (not via RETURNING) because the archive
    -- redirect trigger may divert rows to another table. They ascend in
    -- append order. unnest walks the payload arrays once; subscripting them
    -- per row would rescan their variable-length elements.
    v_positions := ARRAY(SELECT nextval('rf_events_position_seq') FROM generate_series(1, v_n));

    INSERT INTO events (position, tx_id, stream_id, version, event_id, event_type, schema_version,
                        data, headers, causation_id, correlation_id, partition_hash)
    SELECT v_positions[e.ord], v_xid, p_stream, v_current + e.ord,
           coalesce(e.event_id, gen_random_uuid()), e.event_type, coalesce(e.schema_version, 1),
           e.data, coalesce(e.headers, '{}'::jsonb), e.causation_id, e.correlation_id, v_hash
      FROM unnest(p_event_ids, p_types, p_schema_versions, p_data, p_headers, p_causation, p_correlation)
           WITH ORDINALITY AS e(event_id, event_type, schema_version, data, headers,
                                causation_id, correlation_id, ord);

    IF p_idem_key IS NOT NULL THEN
        INSERT INTO rf_idempotency (stream_id, idem_key, first_version, last_version, positions)
             VALUES (p_stream, p_idem_key, v_current + 1, v_current + v_n, v_positions);
    END IF;

    RETURN QUERY SELECT v_current + 1, v_current + v_n, v_positions, false;
END
$$;
