-- rillflow 0016: a read horizon that only rillflow's own appenders hold back.
--
-- Readers stop below the oldest transaction that may still commit events
-- they would otherwise pass (PROJ-2). Until now that was every transaction
-- open in this database, and, for a role that may not see other sessions'
-- transaction ids in pg_stat_activity, every transaction on the server: a
-- long job that never appends, anywhere, stalled every read model.
--
-- Appenders now register: every append function takes a shared advisory
-- lock (29286, 1) before the transaction takes its id there, through
-- rf_register_appender(). The horizon counts only transactions that hold it
-- (or whose state it cannot tell); the others are passed, under one rule
-- that keeps PROJ-2 exactly as strong:
--
-- * A transaction that took its id before it registered (it wrote
--   something else first) may have been passed already. It may append only
--   while its id is at or above the read floor (the sequence rf_read_floor);
--   rf_register_appender() returns false otherwise and the append is
--   refused with RF007 (retry in a new transaction; a transaction that
--   calls rf_register_appender() before its first write is never refused).
-- * A reader passes an unregistered transaction only once the floor is
--   above it. The floor it compares with is read before it looks at the
--   locks, so an appender that registers after that look reads a floor at
--   least as high and is refused; one that registered before it is seen.
-- * Readers raise the floor, never above the horizon they would use: the
--   oldest registered or unknown transaction, or the snapshot's xmax. A
--   transaction that registered before taking its id is at or above every
--   such horizon, so it is never refused. Raisers take turns (advisory lock
--   (29286, 2)), so the floor never goes down.
--
-- A transaction that holds a lock on an object of another database runs
-- there and can never append here: it is passed at once, floor or not.
--
-- The sequence is read and set outside transactions (a sequence is not
-- MVCC), so an appender in a repeatable-read transaction sees the newest
-- floor too. Locks, not pg_stat_activity, tell whose transaction is whose:
-- pg_locks is readable by every role, and one scan of it is one consistent
-- view of the lock table.
CREATE SEQUENCE rf_read_floor AS bigint MINVALUE 0 START WITH 0;
GRANT SELECT ON SEQUENCE rf_read_floor TO PUBLIC;

-- Registers the calling transaction as an appender; false when it may no
-- longer append (it took its id before registering, and readers have
-- passed it). Call it first in a transaction that writes other tables
-- before it appends, and such a transaction is never refused.
CREATE FUNCTION rf_register_appender() RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    -- SQL, so a caller's IF inlines it as a plain expression rather than
    -- calling a function of its own per append. CASE fixes the order: the
    -- lock, then the floor.
    SELECT CASE
        WHEN pg_advisory_xact_lock_shared(29286, 1)::text IS NULL THEN false
        ELSE pg_current_xact_id_if_assigned() IS NULL
             OR pg_current_xact_id_if_assigned()::text::bigint
                >= coalesce(pg_sequence_last_value('rf_read_floor'), 0)
    END
$$;

-- Raises the read floor to p_floor if that is higher. SECURITY DEFINER: a
-- handler role reads the log but may not write the sequence itself. A
-- raiser that finds another at work leaves it to the next read; the lock
-- is a session lock (a transaction lock would be held through the reader's
-- whole batch), so it is let go on every way out, a cancelled statement
-- included.
CREATE FUNCTION rf_raise_read_floor(p_floor bigint) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF current_setting('transaction_read_only')::boolean OR NOT pg_try_advisory_lock(29286, 2) THEN
        RETURN;
    END IF;
    BEGIN
        IF p_floor > coalesce(pg_sequence_last_value('rf_read_floor'), 0) THEN
            PERFORM setval('rf_read_floor', p_floor);
        END IF;
    EXCEPTION WHEN OTHERS OR query_canceled THEN
        PERFORM pg_advisory_unlock(29286, 2);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(29286, 2);
END
$$;

-- STABLE and PL/pgSQL as in 0010: the calling statement's snapshot, plans
-- cached per session, and the lock table read only when something is open
-- below the snapshot's xmax.
CREATE OR REPLACE FUNCTION rf_read_horizon() RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
DECLARE
    snap        pg_snapshot := pg_current_snapshot();
    horizon     bigint := pg_snapshot_xmax(snap)::text::bigint;
    own         bigint := pg_current_xact_id_if_assigned()::text::bigint;
    floor       bigint;
    here        oid := (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
    owner_xids  bigint[];
    owner_vxids text[];
    registered  text[];
    elsewhere   text[];
    away_xids   bigint[];
    counted     bigint;   -- oldest open transaction that holds readers back
    passed      bigint;   -- oldest unregistered one of this database
    guarded     bigint;   -- oldest such one the floor does not cover yet
BEGIN
    IF pg_is_in_recovery() THEN
        -- A standby's snapshots list no open transactions: keep to xmin.
        RETURN pg_snapshot_xmin(snap)::text::bigint;
    END IF;
    -- Our own transaction is not in our snapshot, yet may append.
    IF own < horizon THEN
        horizon := own;
    END IF;
    IF pg_snapshot_xmin(snap)::text::bigint >= horizon THEN
        RETURN horizon;
    END IF;
    -- The floor first, then the locks (see the header).
    floor := coalesce(pg_sequence_last_value('rf_read_floor'), 0);
    -- Every transaction with an id holds the exclusive lock on it; its
    -- registration is a lock of the same virtual transaction, and a lock on
    -- an object of another database shows that it runs there (a backend
    -- stays in one database; 0 marks shared catalogs). One scan.
    SELECT array_agg(l.transactionid::text::bigint) FILTER (WHERE l.locktype = 'transactionid'),
           array_agg(l.virtualtransaction) FILTER (WHERE l.locktype = 'transactionid'),
           array_agg(l.virtualtransaction) FILTER (WHERE l.locktype = 'advisory'
                                                     AND l.database = here),
           array_agg(DISTINCT l.virtualtransaction) FILTER (WHERE l.database <> here
                                                              AND l.database <> 0)
      INTO owner_xids, owner_vxids, registered, elsewhere
      FROM pg_locks l
     WHERE l.granted
       AND ((l.locktype = 'transactionid' AND l.mode = 'ExclusiveLock')
            OR (l.locktype = 'advisory' AND l.classid = 29286::oid AND l.objid = 1::oid
                AND l.objsubid = 2 AND l.database = here)
            OR (l.database <> here AND l.database <> 0));
    -- Where pg_stat_activity shows a transaction's database (to roles that
    -- may see it), it tells the same: a transaction id is unique while open.
    SELECT array_agg(a.backend_xid::text::bigint) INTO away_xids
      FROM pg_stat_get_activity(NULL) a
     WHERE a.backend_xid IS NOT NULL AND a.datid <> here;
    -- A transaction is passed only when its lock shows it open and
    -- unregistered at the scan; one that ended since the snapshot (its
    -- events, if any, are not in it) or cannot be found still counts. One
    -- of another database can never append here and is passed at once;
    -- one of this database (or of no database it shows) waits for the
    -- floor.
    SELECT min(e.x) FILTER (WHERE e.owner IS NULL OR e.owner = ANY (coalesce(registered, '{}'))),
           min(e.x) FILTER (WHERE e.owner IS NOT NULL
                              AND e.owner <> ALL (coalesce(registered, '{}'))
                              AND e.owner <> ALL (coalesce(elsewhere, '{}'))
                              AND e.x % 4294967296 <> ALL (coalesce(away_xids, '{}'))),
           min(e.x) FILTER (WHERE e.owner IS NOT NULL
                              AND e.owner <> ALL (coalesce(registered, '{}'))
                              AND e.owner <> ALL (coalesce(elsewhere, '{}'))
                              AND e.x % 4294967296 <> ALL (coalesce(away_xids, '{}'))
                              AND e.x >= floor)
      INTO counted, passed, guarded
      FROM (SELECT x::text::bigint AS x,
                   (SELECT o.vxid FROM unnest(owner_xids, owner_vxids) AS o(xid, vxid)
                     WHERE o.xid = x::text::bigint % 4294967296 LIMIT 1) AS owner
              FROM pg_snapshot_xip(snap) AS x
             WHERE x::text::bigint < horizon) e;
    horizon := LEAST(horizon, counted);
    IF passed < horizon AND floor < horizon THEN
        -- Let the next reads pass what this one may not yet.
        PERFORM rf_raise_read_floor(horizon);
    END IF;
    RETURN LEAST(horizon, guarded);
END
$$;

CREATE OR REPLACE FUNCTION rf_append_core(
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
    p_correlation       uuid[],
    p_tenant            text     -- NULL: no tenant check (operators, untenanted stores)
) RETURNS TABLE (o_first bigint, o_last bigint, o_positions bigint[], o_replayed boolean,
                 o_code text, o_message text, o_detail text)
LANGUAGE plpgsql
-- Generic plans: replanning each statement (custom plans) cost 6-20 % of an
-- append on a durable server, and every statement here is an index lookup
-- or an insert whose plan does not depend on the values.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_n         integer := coalesce(array_length(p_types, 1), 0);
    v_current   bigint;
    v_last_tx   bigint;
    v_hash      integer;
    v_xid       bigint;
    v_exists    boolean;
    v_owner     text;
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
        RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint[], NULL::boolean,
            'RF002', 'an append needs at least one event', NULL::text;
        RETURN;
    END IF;
    -- Optional columns may be passed as NULL when no event sets them; unnest
    -- pads them with NULLs and the defaults apply.
    IF coalesce(array_length(p_data, 1), 0) <> v_n
       OR coalesce(array_length(p_event_ids, 1), v_n) <> v_n
       OR coalesce(array_length(p_schema_versions, 1), v_n) <> v_n
       OR coalesce(array_length(p_headers, 1), v_n) <> v_n
       OR coalesce(array_length(p_causation, 1), v_n) <> v_n
       OR coalesce(array_length(p_correlation, 1), v_n) <> v_n THEN
        RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint[], NULL::boolean,
            'RF002', 'append arrays differ in length', NULL::text;
        RETURN;
    END IF;
    IF p_expected_kind IS NULL OR p_expected_kind NOT IN ('any', 'no_stream', 'exists', 'exact') THEN
        RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint[], NULL::boolean,
            'RF002', format('unknown expected version kind %s', p_expected_kind), NULL::text;
        RETURN;
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
            RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint[], NULL::boolean,
                'RF002', 'an event id appears twice in one append', NULL::text;
            RETURN;
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

    -- Registered before this transaction can take its id here (PROJ-2,
    -- sql/0016): readers then wait for it. A transaction that took its id
    -- earlier, unregistered, may already have been passed.
    IF NOT rf_register_appender() THEN
        RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint[], NULL::boolean,
            'RF007', format('transaction %s wrote before its first append and readers have passed it; '
                            'retry in a new transaction (or call rf_register_appender() before its first write)',
                            pg_current_xact_id()), NULL::text;
        RETURN;
    END IF;

    -- Judge, then write the head. A stream created by another writer
    -- between the read and the insert is judged again against its head.
    LOOP
        -- Lock the head first: every append to the stream queues here.
        SELECT s.version, s.last_tx_id, s.partition_hash, s.retention_class, s.tenant_id
          INTO v_current, v_last_tx, v_hash, v_stream_class, v_owner
          FROM rf_streams s WHERE s.stream_id = p_stream FOR UPDATE;
        v_exists := FOUND;
        -- The lock above assigned this transaction's id unless it already had one.
        v_xid := pg_current_xact_id()::text::bigint;

        IF v_exists THEN
            IF p_tenant IS NOT NULL AND v_owner IS DISTINCT FROM p_tenant THEN
                RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint[], NULL::boolean,
                    'RF004', format('stream %s does not belong to tenant %s', p_stream, p_tenant),
                    NULL::text;
                RETURN;
            END IF;
            IF v_last_tx > v_xid THEN
                RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint[], NULL::boolean,
                    'RF003', format('transaction id %s is older than the stream''s last writer %s',
                                    v_xid, v_last_tx), NULL::text;
                RETURN;
            END IF;
            IF p_idem_key IS NOT NULL THEN
                SELECT i.first_version, i.last_version, i.positions, i.request_digest
                  INTO v_first, v_last, v_positions, v_prior
                  FROM rf_idempotency i WHERE i.stream_id = p_stream AND i.idem_key = p_idem_key;
                IF FOUND THEN
                    -- Keys recorded before 0011 carry no digest: a retry as before.
                    IF v_prior IS NOT NULL AND v_prior <> v_digest THEN
                        RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint[], NULL::boolean,
                            'RF005', format('idempotency key %s was already used for a different append to stream %s',
                                            p_idem_key, p_stream), NULL::text;
                        RETURN;
                    END IF;
                    RETURN QUERY SELECT v_first, v_last, v_positions, true, NULL::text, NULL::text, NULL::text;
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
                    RETURN QUERY SELECT v_lo + 1, v_lo + v_n, v_positions, true,
                        NULL::text, NULL::text, NULL::text;
                    RETURN;
                END IF;
            END IF;
        ELSE
            v_current := 0;
            v_stream_class := 'hot';
        END IF;
        IF (p_expected_kind = 'no_stream' AND v_current <> 0)
           OR (p_expected_kind = 'exists' AND v_current = 0)
           OR (p_expected_kind = 'exact' AND v_current <> p_expected_version) THEN
            RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint[], NULL::boolean,
                'RF001', 'wrong expected version', v_current::text;
            RETURN;
        END IF;
        -- A key or an id that stands for something on another stream.
        IF p_idem_key IS NOT NULL THEN
            SELECT i.stream_id INTO v_other FROM (
                SELECT stream_id FROM rf_idempotency
                 WHERE idem_key = p_idem_key AND request_digest IS NOT NULL
                UNION ALL
                SELECT stream_id FROM rf_idempotency
                 WHERE idem_key = p_idem_key AND request_digest IS NULL
            ) i WHERE i.stream_id <> p_stream LIMIT 1;
            IF FOUND THEN
                RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint[], NULL::boolean,
                    'RF005', format('idempotency key %s was already used for stream %s',
                                    p_idem_key, v_other), NULL::text;
                RETURN;
            END IF;
        END IF;
        IF p_event_ids IS NOT NULL THEN
            SELECT d.id INTO v_reused
              FROM unnest(p_event_ids) WITH ORDINALITY AS d(id, ord)
              JOIN rf_event_ids r ON r.event_id = d.id
             ORDER BY d.ord LIMIT 1;
            IF FOUND THEN
                RETURN QUERY SELECT NULL::bigint, NULL::bigint, NULL::bigint[], NULL::boolean,
                    'RF006', format('event id %s was already used for other events', v_reused),
                    v_reused::text;
                RETURN;
            END IF;
        END IF;

        -- Judged: from here on this append writes.
        IF v_exists THEN
            UPDATE rf_streams
               SET version = v_current + v_n, last_tx_id = v_xid, updated_at = now()
             WHERE stream_id = p_stream;
            EXIT;
        END IF;
        v_hash := rf_partition_hash(p_stream);
        INSERT INTO rf_streams (stream_id, version, last_tx_id, partition_hash, tenant_id)
             VALUES (p_stream, v_n, v_xid, v_hash, p_tenant)
        ON CONFLICT (stream_id) DO NOTHING;
        EXIT WHEN FOUND;
    END LOOP;

    -- Positions are taken up front (not via RETURNING) because the archive
    -- redirect trigger may divert rows to another table. They ascend in
    -- append order. unnest walks the payload arrays once; subscripting them
    -- per row would rescan their variable-length elements.
    -- On the partitioned backend a stream whose events were all moved cold
    -- keeps growing in the cold partition (rillflow_core::archive::append_target).
    -- Hot streams never pay for the settings lookup.
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

    RETURN QUERY SELECT v_current + 1, v_current + v_n, v_positions, false,
        NULL::text, NULL::text, NULL::text;
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
    p_correlation       uuid[]
) RETURNS TABLE (first_version bigint, last_version bigint, positions bigint[], replayed boolean)
LANGUAGE plpgsql
-- Generic plans, as in rf_append_core.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    r           record;
    v_n         integer := coalesce(array_length(p_types, 1), 0);
    v_xid       bigint;
    v_last      bigint;
    v_hash      integer;
    v_positions bigint[];
BEGIN
    IF NOT rf_register_appender() THEN
        RAISE EXCEPTION 'transaction % wrote before its first append and readers have passed it; retry in a new transaction (or call rf_register_appender() before its first write)',
            pg_current_xact_id() USING ERRCODE = 'RF007';
    END IF;
    -- The common append, events to any version of a hot stream with no key
    -- and no ids: the head written (created or moved on) in one guarded
    -- upsert, positions, the rows; one event in three statements, more in
    -- four. Anything the guard turns away (a writer with a newer
    -- transaction id; a cold stream) leaves the head locked and unchanged,
    -- and the full path (the core) reads it again and decides.
    IF v_n >= 1 AND coalesce(array_length(p_data, 1), 0) = v_n
       AND coalesce(array_length(p_schema_versions, 1), v_n) = v_n
       AND coalesce(array_length(p_headers, 1), v_n) = v_n
       AND coalesce(array_length(p_causation, 1), v_n) = v_n
       AND coalesce(array_length(p_correlation, 1), v_n) = v_n
       AND p_idem_key IS NULL AND p_event_ids IS NULL AND p_expected_kind = 'any' THEN
        v_xid := pg_current_xact_id()::text::bigint;
        INSERT INTO rf_streams AS s (stream_id, version, last_tx_id, partition_hash)
             VALUES (p_stream, v_n, v_xid, rf_partition_hash(p_stream))
        ON CONFLICT (stream_id) DO UPDATE
           SET version = s.version + v_n, last_tx_id = v_xid, updated_at = now()
         WHERE s.last_tx_id <= v_xid AND s.retention_class = 'hot'
        RETURNING s.version, s.partition_hash INTO v_last, v_hash;
        IF FOUND AND v_n = 1 THEN
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
        ELSIF FOUND THEN
            -- Positions up front, as in the core: a redirect trigger may
            -- divert rows, so RETURNING cannot be relied on for them.
            v_positions := ARRAY(SELECT nextval('rf_events_position_seq')
                                   FROM generate_series(1, v_n));
            INSERT INTO events (position, tx_id, stream_id, version, event_id, event_type,
                                schema_version, data, headers, causation_id, correlation_id,
                                partition_hash, retention_class)
            SELECT v_positions[e.ord], v_xid, p_stream, v_last - v_n + e.ord, gen_random_uuid(),
                   e.event_type, coalesce(e.schema_version, 1), e.data,
                   coalesce(e.headers, '{}'::jsonb), e.causation_id, e.correlation_id,
                   v_hash, 'hot'
              FROM unnest(p_types, p_schema_versions, p_data, p_headers, p_causation,
                          p_correlation)
                   WITH ORDINALITY AS e(event_type, schema_version, data, headers,
                                        causation_id, correlation_id, ord);
            RETURN QUERY SELECT v_last - v_n + 1, v_last, v_positions, false;
            RETURN;
        END IF;
    END IF;
    SELECT * INTO r FROM rf_append_core(p_stream, p_expected_kind, p_expected_version, p_idem_key,
                                        p_event_ids, p_types, p_schema_versions, p_data,
                                        p_headers, p_causation, p_correlation, NULL);
    IF r.o_code IS NOT NULL AND r.o_detail IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = r.o_code, MESSAGE = r.o_message;
    ELSIF r.o_code IS NOT NULL THEN
        RAISE EXCEPTION USING ERRCODE = r.o_code, MESSAGE = r.o_message, DETAIL = r.o_detail;
    END IF;
    RETURN QUERY SELECT r.o_first, r.o_last, r.o_positions, r.o_replayed;
END
$$;

CREATE OR REPLACE FUNCTION rf_append_batch(
    p_streams           uuid[],
    p_expected_kinds    text[],
    p_expected_versions bigint[],
    p_idem_keys         text[],
    p_tenants           text[],
    p_counts            integer[],
    p_columns           integer[],
    p_event_ids         uuid[],
    p_types             text[],
    p_schema_versions   integer[],
    p_data              jsonb[],
    p_headers           jsonb[],
    p_causation         uuid[],
    p_correlation       uuid[]
) RETURNS TABLE (o_index integer, o_first bigint, o_last bigint, o_positions bigint[],
                 o_replayed boolean, o_code text, o_message text, o_detail text)
LANGUAGE plpgsql AS $$
DECLARE
    v_appends integer := coalesce(array_length(p_streams, 1), 0);
    v_events  integer := coalesce(array_length(p_types, 1), 0);
    v_lo      integer := 1;
    v_hi      integer;
    v_cols    integer;
    v_xid     bigint;
    v_plain   uuid[];     -- streams whose appends are all plain
    v_done    uuid[];     -- ... and whose heads the upsert moved on
    v_before  bigint[];   -- their versions before this batch
    v_hashes  integer[];
    v_total   bigint;
    v_pos     bigint[];
BEGIN
    IF coalesce(array_length(p_expected_kinds, 1), 0) <> v_appends
       OR coalesce(array_length(p_expected_versions, 1), 0) <> v_appends
       OR coalesce(array_length(p_idem_keys, 1), 0) <> v_appends
       OR coalesce(array_length(p_tenants, 1), 0) <> v_appends
       OR coalesce(array_length(p_counts, 1), 0) <> v_appends
       OR coalesce(array_length(p_columns, 1), 0) <> v_appends
       OR (SELECT coalesce(sum(c), 0) FROM unnest(p_counts) c) <> v_events
       OR EXISTS (SELECT 1 FROM unnest(p_counts) c WHERE c IS NULL OR c < 1)
       OR coalesce(array_length(p_data, 1), 0) <> v_events THEN
        RAISE EXCEPTION 'append batch arrays do not line up' USING ERRCODE = 'RF002';
    END IF;

    IF NOT rf_register_appender() THEN
        RAISE EXCEPTION 'transaction % wrote before its first append and readers have passed it; retry in a new transaction (or call rf_register_appender() before its first write)',
            pg_current_xact_id() USING ERRCODE = 'RF007';
    END IF;

    v_plain := ARRAY(
        SELECT a.s FROM unnest(p_streams, p_expected_kinds, p_idem_keys, p_tenants, p_columns)
                        AS a(s, kind, idem, tenant, cols)
         GROUP BY a.s
        HAVING bool_and(a.kind = 'any' AND a.idem IS NULL AND a.tenant IS NULL
                        AND coalesce(a.cols, 0) & 1 = 0)
         ORDER BY a.s);
    IF cardinality(v_plain) > 0 THEN
        v_xid := pg_current_xact_id()::text::bigint;
        WITH totals AS (
            SELECT a.s AS stream_id, sum(a.n)::bigint AS n
              FROM unnest(p_streams, p_counts) AS a(s, n)
             WHERE a.s = ANY (v_plain)
             GROUP BY a.s),
        moved AS (
            INSERT INTO rf_streams AS h (stream_id, version, last_tx_id, partition_hash)
            SELECT t.stream_id, t.n, v_xid, rf_partition_hash(t.stream_id)
              FROM totals t ORDER BY t.stream_id
            ON CONFLICT (stream_id) DO UPDATE
               SET version = h.version + EXCLUDED.version, last_tx_id = v_xid, updated_at = now()
             WHERE h.last_tx_id <= v_xid AND h.retention_class = 'hot'
            RETURNING h.stream_id, h.version, h.partition_hash)
        SELECT coalesce(array_agg(m.stream_id), '{}'), coalesce(array_agg(m.version - t.n), '{}'),
               coalesce(array_agg(m.partition_hash), '{}')
          INTO v_done, v_before, v_hashes
          FROM moved m JOIN totals t USING (stream_id);
    END IF;

    IF cardinality(v_done) > 0 THEN
        SELECT coalesce(sum(a.n), 0) INTO v_total
          FROM unnest(p_streams, p_counts) AS a(s, n) WHERE a.s = ANY (v_done);
        v_pos := ARRAY(SELECT nextval('rf_events_position_seq') FROM generate_series(1, v_total));
        RETURN QUERY
        -- One row per event of the written streams: its append, version,
        -- place in the event arrays, and rank, which picks its position.
        WITH r AS (
            SELECT b.ord, b.s AS stream_id, b.base + k AS version, b.off + k AS e, b.hash,
                   row_number() OVER (ORDER BY b.ord, k) AS rn
              FROM (SELECT a.ord, a.s, a.n, a.off, d.hash,
                           d.before + sum(a.n) OVER (PARTITION BY a.s ORDER BY a.ord) - a.n AS base
                      FROM (SELECT u.s, u.n, u.ord, sum(u.n) OVER (ORDER BY u.ord) - u.n AS off
                              FROM unnest(p_streams, p_counts) WITH ORDINALITY AS u(s, n, ord)) a
                      JOIN unnest(v_done, v_before, v_hashes) AS d(s, before, hash) ON d.s = a.s) b,
                   generate_series(1, b.n) AS k),
        written AS (
            INSERT INTO events (position, tx_id, stream_id, version, event_id, event_type,
                                schema_version, data, headers, causation_id, correlation_id,
                                partition_hash, retention_class)
            SELECT v_pos[r.rn], v_xid, r.stream_id, r.version, gen_random_uuid(), x.event_type,
                   coalesce(x.schema_version, 1), x.data, coalesce(x.headers, '{}'::jsonb),
                   x.causation_id, x.correlation_id, r.hash, 'hot'
              FROM r
              JOIN unnest(p_types, p_schema_versions, p_data, p_headers, p_causation, p_correlation)
                   WITH ORDINALITY AS x(event_type, schema_version, data, headers, causation_id,
                                        correlation_id, e)
                ON x.e = r.e)
        SELECT r.ord::integer, min(r.version), max(r.version),
               array_agg(v_pos[r.rn] ORDER BY r.rn), false, NULL::text, NULL::text, NULL::text
          FROM r GROUP BY r.ord;
    END IF;

    FOR i IN 1 .. v_appends LOOP
        v_hi := v_lo + p_counts[i] - 1;
        IF NOT p_streams[i] = ANY (coalesce(v_done, '{}')) THEN
            v_cols := coalesce(p_columns[i], 0);
            RETURN QUERY SELECT i, c.* FROM rf_append_core(
                p_streams[i], p_expected_kinds[i], p_expected_versions[i], p_idem_keys[i],
                CASE WHEN v_cols & 1 <> 0 THEN p_event_ids[v_lo:v_hi] END,
                p_types[v_lo:v_hi],
                CASE WHEN v_cols & 2 <> 0 THEN p_schema_versions[v_lo:v_hi] END,
                p_data[v_lo:v_hi],
                CASE WHEN v_cols & 4 <> 0 THEN p_headers[v_lo:v_hi] END,
                CASE WHEN v_cols & 8 <> 0 THEN p_causation[v_lo:v_hi] END,
                CASE WHEN v_cols & 16 <> 0 THEN p_correlation[v_lo:v_hi] END,
                p_tenants[i]) c;
        END IF;
        v_lo := v_hi + 1;
    END LOOP;
END
$$;
