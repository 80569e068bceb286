-- rillflow 0009: tenancy.
--
-- * `rf_tenants`: the registry. Only the base schema's copy is consulted; a
--   schema tenant's own schema gets the table too because every schema runs
--   the same migrations, and it stays empty there.
-- * `rf_streams.tenant_id`: the conjoined tenant a stream belongs to, set
--   when the stream is created and never changed afterwards.
-- * `rf_append(..., p_tenant)`: an append on behalf of a tenant. It claims a
--   new stream for the tenant and refuses a stream of anyone else (RF004).
--   The eleven-argument `rf_append` is untouched, so untenanted appends
--   (and binaries from before this migration) run exactly as before.
-- * `rf_archive_tenant_stats`: the archive counters of each conjoined
--   tenant, moved in the same transactions as the totals in
--   `rf_archive_stats`, so `/metrics` can split them by tenant.
-- * `rf_notify_events` names its schema in the payload: channels are
--   database-wide, and each schema tenant's daemons wake only for their own
--   schema's appends instead of everyone's.

CREATE TABLE rf_tenants (
    name       text        PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    mode       text        NOT NULL CHECK (mode IN ('conjoined', 'schema')),
    created_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE rf_streams ADD COLUMN tenant_id text;

CREATE TABLE rf_archive_tenant_stats (
    tenant_id           text   PRIMARY KEY,
    streams_marked      bigint NOT NULL DEFAULT 0,
    streams_reactivated bigint NOT NULL DEFAULT 0,
    events_moved        bigint NOT NULL DEFAULT 0
);
CREATE INDEX rf_streams_tenant_idx ON rf_streams (tenant_id, stream_id) WHERE tenant_id IS NOT NULL;

CREATE FUNCTION rf_streams_keep_tenant() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.tenant_id IS NOT NULL AND NEW.tenant_id IS DISTINCT FROM OLD.tenant_id THEN
        RAISE EXCEPTION 'stream % belongs to tenant %', OLD.stream_id, OLD.tenant_id
            USING ERRCODE = 'RF004';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER rf_streams_keep_tenant
    BEFORE UPDATE OF tenant_id ON rf_streams
    FOR EACH ROW EXECUTE FUNCTION rf_streams_keep_tenant();

CREATE FUNCTION rf_append(
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

CREATE OR REPLACE FUNCTION rf_notify_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rf_events', TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
