-- 0.8.0 -> 0.9.0: what a 0.8.0 database needs to be, object by object, a fresh 0.9.0
-- install (nweb under attack, the rest: docs/design.md D44-).
\echo Use "ALTER EXTENSION xray_pg UPDATE TO '0.9.0'" to load this file. \quit
