-- 0.7.0 -> 0.8.0: what a 0.7.0 database needs to be, object by object, a fresh 0.8.0
-- install (nweb under attack, the rest: docs/design.md D42-).
\echo Use "ALTER EXTENSION xray_pg UPDATE TO '0.8.0'" to load this file. \quit
