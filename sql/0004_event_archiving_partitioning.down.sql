ALTER TABLE events DROP COLUMN IF EXISTS retention_class;
