-- Undoes 0019: lag, archive status and the mover's backlog go back to
-- counting.
DROP INDEX rf_streams_awaiting_move_idx;
DROP INDEX rf_streams_reactivated_ids_idx;
DROP INDEX rf_streams_cold_ids_idx;
DROP FUNCTION rf_archive_count(text, integer);
DROP FUNCTION rf_projection_lag(bigint, bigint, integer, integer, integer);
