-- Reverts 0012. Roles made by `handler-role create` and their grants stay;
-- without the policies they would see every projection's rows, so revoke
-- them (or drop the roles) first.
DROP FUNCTION rf_fence_partition(text, integer, bigint);
DROP FUNCTION rf_fence_cluster(text, bigint);
DROP POLICY rf_handler_rows ON rf_projection_dlq;
ALTER TABLE rf_projection_dlq DISABLE ROW LEVEL SECURITY;
DROP POLICY rf_handler_rows ON rf_projections;
ALTER TABLE rf_projections DISABLE ROW LEVEL SECURITY;
DROP POLICY rf_handler_rows ON rf_checkpoints;
ALTER TABLE rf_checkpoints DISABLE ROW LEVEL SECURITY;
DROP FUNCTION rf_handler_may(text, name);
DROP FUNCTION rf_handled_by(name);
DROP TABLE rf_handler_roles;
