-- Reverts 0009. Conjoined tenants' streams stay; only their tags go.
CREATE OR REPLACE FUNCTION rf_notify_events() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('rf_events', '');
    RETURN NULL;
END
$$;
DROP FUNCTION rf_append(uuid, text, bigint, text, uuid[], text[], integer[], jsonb[], jsonb[], uuid[], uuid[], text);
DROP TRIGGER rf_streams_keep_tenant ON rf_streams;
DROP FUNCTION rf_streams_keep_tenant();
DROP INDEX rf_streams_tenant_idx;
ALTER TABLE rf_streams DROP COLUMN tenant_id;
DROP TABLE rf_archive_tenant_stats;
DROP TABLE rf_tenants;
