ALTER TABLE rf_checkpoints DROP COLUMN IF EXISTS carry;
DROP TABLE IF EXISTS rf_partition_leases;
DROP TABLE IF EXISTS rf_projection_workers;
