-- Reverts 0010: readers built before it compute their horizon themselves.
DROP FUNCTION rf_read_horizon();
