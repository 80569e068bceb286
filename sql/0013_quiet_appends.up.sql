-- rillflow 0013: appends notify nobody.
--
-- Since 0006 every appending statement sent a NOTIFY at commit to wake idle
-- projection workers. PostgreSQL serialises the commits of notifying
-- transactions (a database-wide lock taken before commit and held through
-- the WAL flush), so on a durable server appends could no longer share a
-- group commit: the wake-up was the largest single cost of an append.
--
-- Workers now watch the log's commit high-water mark instead (the newest
-- tx_id of the hot and cold tables, two backward index probes), polled by
-- one task per daemon process (adapters/src/projection/wakeup.rs). An event
-- whose commit does not raise that mark was open while a newer one
-- committed: the batch that newer one woke found it held back, and the
-- held-back retry picks it up (PROJ-2). Operator commands still notify
-- (rf_projection_control): they are rare and nobody waits on their commit.
DROP TRIGGER rf_events_archive_notify ON events_archive;
DROP TRIGGER rf_events_notify ON events;
DROP FUNCTION rf_notify_events();
