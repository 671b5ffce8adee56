-- The views' columns and types: what dashboards and the docs rely on.
SELECT c.relname AS view, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
 WHERE n.nspname IN ('xray', 'nweb') AND c.relkind = 'v'
 ORDER BY n.nspname DESC, c.relname, a.attnum;
-- The xray views run with the caller's rights, so row-level security applies;
-- nweb's hold public data and are the only ones that do not.
SELECT n.nspname, c.relname, c.reloptions
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname IN ('xray', 'nweb') AND c.relkind = 'v' AND NOT coalesce('security_invoker=true' = ANY (c.reloptions), false)
 ORDER BY 1, 2;
