DROP TABLE IF EXISTS rf_daemon_nodes;
DROP TABLE IF EXISTS rf_daemon_clusters;
