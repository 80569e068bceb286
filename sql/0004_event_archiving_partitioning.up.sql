-- rillflow 0004: the tier of each event row, the key the partitioned backend
-- (0005) splits on. Existing rows are hot unless their stream is archived.

ALTER TABLE events
    ADD COLUMN retention_class text NOT NULL DEFAULT 'hot'
        CONSTRAINT events_retention_class_check CHECK (retention_class IN ('hot', 'cold'));

UPDATE events e SET retention_class = 'cold'
  FROM rf_streams s
 WHERE s.stream_id = e.stream_id AND s.retention_class = 'cold';
