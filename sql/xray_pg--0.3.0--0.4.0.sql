-- xray_pg 0.3.0 -> 0.4.0: a faster ingest trigger (issue 6, BENCHMARKS.md).
--
-- - xray.scan_results.payload is compressed with lz4 instead of pglz. The
--   payload is the largest value the ingest writes; lz4 stores it faster and,
--   on scanner output, smaller. Rows already stored keep their compression
--   until they are rewritten; both read the same.
-- - The ingest trigger now records assets and endpoints from the payload it
--   has already decoded, with one statement per table, instead of calling
--   xray.record_inventory(), which walked the payload again in SQL. The
--   function has no other caller and is dropped.

ALTER TABLE xray.scan_results ALTER COLUMN payload SET COMPRESSION lz4;

DROP FUNCTION xray.record_inventory(uuid, uuid, timestamptz, jsonb);
