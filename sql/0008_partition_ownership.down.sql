DROP TABLE IF EXISTS rf_partition_leases;
DROP TABLE IF EXISTS rf_projection_workers;
