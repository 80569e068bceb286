-- Undoes 0020: checkpoints no longer record their timeline; lease epochs
-- count on from the row again.
DROP TRIGGER rf_checkpoints_timeline ON rf_checkpoints;
DROP FUNCTION rf_checkpoint_timeline();
ALTER TABLE rf_checkpoints
    DROP COLUMN timeline, DROP COLUMN prev_timeline, DROP COLUMN prev_tx_id,
    DROP COLUMN prev_position;
DROP FUNCTION rf_epoch_floor();
DROP FUNCTION rf_wal_timeline();
