-- Reverts 0015: no batches and no core; rf_append as 0014 left it, and the
-- tenanted rf_append as 0009 defined it (it claims a new stream after the
-- inner append created it).
ALTER TABLE rf_streams RESET (fillfactor);

DROP FUNCTION rf_append_batch(uuid[], text[], bigint[], text[], text[], integer[], integer[],
                              uuid[], text[], integer[], jsonb[], jsonb[], uuid[], uuid[]);

CREATE OR REPLACE FUNCTION rf_append(
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
    v_stream_class text;           -- the head's retention class
    v_class     text := 'hot';     -- the tier this append's rows go to
    v_events    bytea[];           -- a digest per event (type, data, ...)
    v_digest    bytea;             -- what the idempotency key stands for
    v_prior     bytea;
    v_other     uuid;
    v_found     bigint;            -- ids of this append already recorded
    v_same      bigint;            -- ... for these very events of this stream
    v_lo        bigint;
    v_hi        bigint;
    v_reused    uuid;
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
    -- The common append, one event to any version of a hot stream with no
    -- key and no ids, in three statements: the head written (created or
    -- moved on) in one guarded upsert, a position, the row. Anything the
    -- guard turns away (a writer with a newer transaction id: RF003; a cold
    -- stream) leaves the head locked and unchanged, and the full path below
    -- reads it again and decides.
    IF v_n = 1 AND p_idem_key IS NULL AND p_event_ids IS NULL AND p_expected_kind = 'any' THEN
        v_xid := pg_current_xact_id()::text::bigint;
        INSERT INTO rf_streams AS s (stream_id, version, last_tx_id, partition_hash)
             VALUES (p_stream, 1, v_xid, rf_partition_hash(p_stream))
        ON CONFLICT (stream_id) DO UPDATE
           SET version = s.version + 1, last_tx_id = v_xid, updated_at = now()
         WHERE s.last_tx_id <= v_xid AND s.retention_class = 'hot'
        RETURNING s.version, s.partition_hash INTO v_last, v_hash;
        IF FOUND THEN
            v_positions := ARRAY[nextval('rf_events_position_seq')];
            INSERT INTO events (position, tx_id, stream_id, version, event_id, event_type,
                                schema_version, data, headers, causation_id, correlation_id,
                                partition_hash, retention_class)
            VALUES (v_positions[1], v_xid, p_stream, v_last, gen_random_uuid(), p_types[1],
                    coalesce(p_schema_versions[1], 1), p_data[1],
                    coalesce(p_headers[1], '{}'::jsonb), p_causation[1], p_correlation[1],
                    v_hash, 'hot');
            RETURN QUERY SELECT v_last, v_last, v_positions, false;
            RETURN;
        END IF;
    END IF;
    IF p_idem_key IS NOT NULL THEN
        -- The arguments as sent (jsonb text is canonical: key order and
        -- spacing of the payloads do not matter).
        v_digest := sha256(convert_to(jsonb_build_array(
            p_event_ids, p_types, p_schema_versions, p_data, p_headers, p_causation, p_correlation
        )::text, 'UTF8'));
    END IF;
    IF p_event_ids IS NOT NULL THEN
        IF (SELECT count(i) <> count(DISTINCT i) FROM unnest(p_event_ids) AS i) THEN
            RAISE EXCEPTION 'an event id appears twice in one append' USING ERRCODE = 'RF002';
        END IF;
        -- One digest per event, defaults filled in, so that the same event
        -- sent again digests the same however the caller spelled it.
        v_events := ARRAY(
            SELECT sha256(convert_to(jsonb_build_array(
                       e.event_type, coalesce(e.schema_version, 1), e.data,
                       coalesce(e.headers, '{}'::jsonb), e.causation_id, e.correlation_id
                   )::text, 'UTF8'))
              FROM unnest(p_types, p_schema_versions, p_data, p_headers, p_causation, p_correlation)
                   WITH ORDINALITY AS e(event_type, schema_version, data, headers,
                                        causation_id, correlation_id, ord)
             ORDER BY e.ord);
    END IF;

    -- Lock the head first: every append to the stream queues here.
    SELECT s.version, s.last_tx_id, s.partition_hash, s.retention_class
      INTO v_current, v_last_tx, v_hash, v_stream_class
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
            SELECT i.first_version, i.last_version, i.positions, i.request_digest
              INTO v_first, v_last, v_positions, v_prior
              FROM rf_idempotency i WHERE i.stream_id = p_stream AND i.idem_key = p_idem_key;
            IF FOUND THEN
                -- Keys recorded before 0011 carry no digest: a retry as before.
                IF v_prior IS NOT NULL AND v_prior <> v_digest THEN
                    RAISE EXCEPTION 'idempotency key % was already used for a different append to stream %',
                        p_idem_key, p_stream USING ERRCODE = 'RF005';
                END IF;
                RETURN QUERY SELECT v_first, v_last, v_positions, true;
                RETURN;
            END IF;
        END IF;
        IF p_event_ids IS NOT NULL THEN
            -- The same events under the same ids on this stream, in the
            -- same order, are a retry: the first result, nothing written.
            SELECT count(*),
                   count(*) FILTER (WHERE r.stream_id = p_stream AND r.digest = v_events[d.ord]),
                   min(r.version - d.ord), max(r.version - d.ord)
              INTO v_found, v_same, v_lo, v_hi
              FROM unnest(p_event_ids) WITH ORDINALITY AS d(id, ord)
              JOIN rf_event_ids r ON r.event_id = d.id;
            IF v_found = v_n AND v_same = v_n AND v_lo = v_hi THEN
                v_positions := ARRAY(
                    SELECT e.position FROM (
                        SELECT position, version FROM events
                         WHERE stream_id = p_stream AND version BETWEEN v_lo + 1 AND v_lo + v_n
                        UNION ALL
                        SELECT position, version FROM events_archive
                         WHERE stream_id = p_stream AND version BETWEEN v_lo + 1 AND v_lo + v_n
                    ) e ORDER BY e.version);
                RETURN QUERY SELECT v_lo + 1, v_lo + v_n, v_positions, true;
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
    -- On the partitioned backend a stream whose events were all moved cold
    -- keeps growing in the cold partition (rillflow_core::archive::append_target).
    -- Hot streams never pay for the settings lookup.
    IF p_idem_key IS NOT NULL THEN
        SELECT i.stream_id INTO v_other FROM (
            SELECT stream_id FROM rf_idempotency
             WHERE idem_key = p_idem_key AND request_digest IS NOT NULL
            UNION ALL
            SELECT stream_id FROM rf_idempotency
             WHERE idem_key = p_idem_key AND request_digest IS NULL
        ) i WHERE i.stream_id <> p_stream LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'idempotency key % was already used for stream %', p_idem_key, v_other
                USING ERRCODE = 'RF005';
        END IF;
    END IF;
    IF p_event_ids IS NOT NULL THEN
        SELECT d.id INTO v_reused
          FROM unnest(p_event_ids) WITH ORDINALITY AS d(id, ord)
          JOIN rf_event_ids r ON r.event_id = d.id
         ORDER BY d.ord LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'event id % was already used for other events', v_reused
                USING ERRCODE = 'RF006', DETAIL = v_reused::text;
        END IF;
    END IF;

    IF v_stream_class = 'cold'
       AND EXISTS (SELECT 1 FROM rf_archive_settings WHERE backend = 'partitioned') THEN
        v_class := 'cold';
    END IF;

    v_positions := ARRAY(SELECT nextval('rf_events_position_seq') FROM generate_series(1, v_n));

    INSERT INTO events (position, tx_id, stream_id, version, event_id, event_type, schema_version,
                        data, headers, causation_id, correlation_id, partition_hash, retention_class)
    SELECT v_positions[e.ord], v_xid, p_stream, v_current + e.ord,
           coalesce(e.event_id, gen_random_uuid()), e.event_type, coalesce(e.schema_version, 1),
           e.data, coalesce(e.headers, '{}'::jsonb), e.causation_id, e.correlation_id, v_hash, v_class
      FROM unnest(p_event_ids, p_types, p_schema_versions, p_data, p_headers, p_causation, p_correlation)
           WITH ORDINALITY AS e(event_id, event_type, schema_version, data, headers,
                                causation_id, correlation_id, ord);

    -- A concurrent append reusing the key or an id on another stream waits
    -- on these unique indexes and fails once this one commits.
    IF p_idem_key IS NOT NULL THEN
        INSERT INTO rf_idempotency (stream_id, idem_key, first_version, last_version, positions,
                                    request_digest)
             VALUES (p_stream, p_idem_key, v_current + 1, v_current + v_n, v_positions, v_digest);
    END IF;
    IF p_event_ids IS NOT NULL THEN
        INSERT INTO rf_event_ids (event_id, stream_id, version, digest)
        SELECT d.id, p_stream, v_current + d.ord, v_events[d.ord]
          FROM unnest(p_event_ids) WITH ORDINALITY AS d(id, ord)
         WHERE d.id IS NOT NULL;
    END IF;

    RETURN QUERY SELECT v_current + 1, v_current + v_n, v_positions, false;
END
$$;

CREATE OR REPLACE FUNCTION rf_append(
    p_stream            uuid,
    p_expected_kind     text,
    p_expected_version  bigint,
    p_idem_key          text,
    p_event_ids         uuid[],
    p_types             text[],
    p_schema_versions   integer[],
    p_data              jsonb[],
    p_headers           jsonb[],
    p_causation         uuid[],
    p_correlation       uuid[],
    p_tenant            text
) RETURNS TABLE (first_version bigint, last_version bigint, positions bigint[], replayed boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_owner text;
    v_found boolean;
    r       record;
BEGIN
    -- The head lock the inner append takes anyway, taken first so the
    -- owner read here cannot change before the append.
    SELECT s.tenant_id INTO v_owner FROM rf_streams s WHERE s.stream_id = p_stream FOR UPDATE;
    v_found := FOUND;
    IF v_found AND v_owner IS DISTINCT FROM p_tenant THEN
        RAISE EXCEPTION 'stream % does not belong to tenant %', p_stream, p_tenant
            USING ERRCODE = 'RF004';
    END IF;
    SELECT * INTO r FROM rf_append(p_stream, p_expected_kind, p_expected_version, p_idem_key,
                                   p_event_ids, p_types, p_schema_versions, p_data,
                                   p_headers, p_causation, p_correlation);
    IF NOT v_found THEN
        -- Claim the stream only if this append created it. If someone else
        -- created it between the read above and the inner append's insert,
        -- its owner is theirs, and raising rolls this append back whole.
        IF r.first_version = 1 AND NOT r.replayed THEN
            UPDATE rf_streams SET tenant_id = p_tenant
             WHERE stream_id = p_stream AND tenant_id IS NULL;
        END IF;
        SELECT s.tenant_id INTO v_owner FROM rf_streams s WHERE s.stream_id = p_stream;
        IF v_owner IS DISTINCT FROM p_tenant THEN
            RAISE EXCEPTION 'stream % does not belong to tenant %', p_stream, p_tenant
                USING ERRCODE = 'RF004';
        END IF;
    END IF;
    RETURN QUERY SELECT r.first_version, r.last_version, r.positions, r.replayed;
END
$$;

DROP FUNCTION rf_append_core(uuid, text, bigint, text, uuid[], text[], integer[], jsonb[],
                             jsonb[], uuid[], uuid[], text);
