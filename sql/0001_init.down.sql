DROP FUNCTION IF EXISTS rf_append(uuid, text, bigint, text, uuid[], text[], integer[], jsonb[], jsonb[], uuid[], uuid[]);
DROP TABLE IF EXISTS rf_checkpoints;
DROP TABLE IF EXISTS rf_idempotency;
DROP TABLE IF EXISTS events;
DROP SEQUENCE IF EXISTS rf_events_position_seq;
DROP TABLE IF EXISTS rf_streams;
DROP FUNCTION IF EXISTS rf_partition_hash(uuid);
