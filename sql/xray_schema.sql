-- Frozen: part of the 0.1.0 base that every install replays (see lib.rs);
-- schema changes go into a new sql/xray_pg--A--B.sql.
-- Watchtower XRAY tables (schema `xray`). Loaded by the extension script
-- before any function; see docs/sql.md for the reference.
CREATE SCHEMA xray;
COMMENT ON SCHEMA xray IS 'Watchtower XRAY: scan results, exposures and their immutable events';

-- One row per submitted scan. Only `payload` is written by callers; the
-- ingest trigger validates it, fills the other columns and runs the diff.
CREATE TABLE xray.scan_results (
    scan_id          uuid        NOT NULL PRIMARY KEY,
    tenant_id        uuid        NOT NULL,
    schema_version   text        NOT NULL,
    scan_kind        text,
    scan_profile     text,
    started_at       timestamptz NOT NULL,
    finished_at      timestamptz,
    status           text        NOT NULL CHECK (status IN ('applied', 'stale')),
    exposure_count   integer     NOT NULL DEFAULT 0,
    new_count        integer     NOT NULL DEFAULT 0,
    changed_count    integer     NOT NULL DEFAULT 0,
    fixed_count      integer     NOT NULL DEFAULT 0,
    held_open_count  integer     NOT NULL DEFAULT 0,
    error_count      integer     NOT NULL DEFAULT 0,
    ingested_at      timestamptz NOT NULL DEFAULT now(),
    payload          jsonb       NOT NULL
);
CREATE INDEX scan_results_tenant_time ON xray.scan_results (tenant_id, started_at);
COMMENT ON TABLE xray.scan_results IS 'Submitted scan-result payloads; INSERT (payload) runs the exposure diff in the same transaction';
COMMENT ON COLUMN xray.scan_results.status IS 'applied: state and events updated; stale: older than a scan already applied to one of its assets, stored only';
COMMENT ON COLUMN xray.scan_results.held_open_count IS 'Exposures absent from this scan but kept open because the scan did not prove the check ran';

-- Latest state per exposure identity.
CREATE TABLE xray.exposures (
    tenant_id           uuid        NOT NULL,
    identity_key        text        NOT NULL,
    asset_id            uuid        NOT NULL,
    observed_host       text        NOT NULL,
    observed_ip         inet,
    risk_bucket         text        NOT NULL CHECK (risk_bucket IN ('RB1','RB2','RB3','RB4','RB5','RB6','RB7')),
    proto               text        NOT NULL,
    port                integer     NOT NULL CHECK (port BETWEEN 0 AND 65535),
    fingerprint         text        NOT NULL,
    detail              text,
    identity_version    integer     NOT NULL DEFAULT 1,
    fingerprint_version integer     NOT NULL DEFAULT 1,
    status              text        NOT NULL CHECK (status IN ('open', 'fixed', 'suppressed', 'false_positive')),
    first_seen          timestamptz NOT NULL,
    last_seen           timestamptz NOT NULL,
    last_scan_id        uuid        NOT NULL,
    material_hash       text        NOT NULL,
    evidence            jsonb       NOT NULL,
    last_change_type    text        CHECK (last_change_type IN ('NEW', 'CHANGED', 'FIXED')),
    reopen_count        integer     NOT NULL DEFAULT 0,
    fixed_at            timestamptz,
    fixed_scan_id       uuid,
    PRIMARY KEY (tenant_id, identity_key)
);
CREATE INDEX exposures_scope ON xray.exposures (tenant_id, asset_id, status);
COMMENT ON TABLE xray.exposures IS 'Current state of every exposure identity (one row per tenant_id, identity_key)';
COMMENT ON COLUMN xray.exposures.detail IS 'Fingerprint plus material parts, e.g. issue:expired|cert:spki:..., for reading';
COMMENT ON COLUMN xray.exposures.evidence IS 'Evidence of the last NEW or CHANGED event';

-- Immutable history. Rows are only ever inserted by the ingest trigger.
CREATE TABLE xray.exposure_events (
    event_id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scan_id             uuid        NOT NULL,
    tenant_id           uuid        NOT NULL,
    identity_key        text        NOT NULL,
    event_type          text        NOT NULL CHECK (event_type IN ('NEW', 'CHANGED', 'FIXED')),
    risk_bucket         text        NOT NULL,
    asset_id            uuid        NOT NULL,
    observed_host       text        NOT NULL,
    observed_ip         inet,
    proto               text        NOT NULL,
    port                integer     NOT NULL,
    fingerprint         text        NOT NULL,
    detail              text,
    prev_material_hash  text,
    material_hash       text,
    evidence            jsonb       NOT NULL,
    reopened            boolean     NOT NULL DEFAULT false,
    observed_at         timestamptz NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exposure_events_tenant_time ON xray.exposure_events (tenant_id, created_at);
CREATE INDEX exposure_events_identity ON xray.exposure_events (tenant_id, identity_key);
CREATE INDEX exposure_events_scan ON xray.exposure_events (scan_id);
COMMENT ON TABLE xray.exposure_events IS 'Immutable NEW / CHANGED / FIXED events; UPDATE, DELETE and TRUNCATE are refused';
COMMENT ON COLUMN xray.exposure_events.observed_at IS 'The scan''s time (finished_at, else started_at), not the wall clock';
COMMENT ON COLUMN xray.exposure_events.evidence IS 'NEW/CHANGED: current evidence. FIXED: {"last_open": evidence when last open, "proof": what the fixing scan covered}';

-- Newest applied scan per asset, to recognise late (stale) scans.
CREATE TABLE xray.asset_scans (
    tenant_id        uuid        NOT NULL,
    asset_id         uuid        NOT NULL,
    last_scan_id     uuid        NOT NULL,
    last_observed_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, asset_id)
);
COMMENT ON TABLE xray.asset_scans IS 'Newest applied scan per asset; a scan older than this for any of its assets is stored as stale';

CREATE FUNCTION xray.refuse_event_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'xray.exposure_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'integrity_constraint_violation',
              HINT = 'Events are immutable history; triage an exposure instead of editing its events.';
END
$$;
CREATE TRIGGER exposure_events_immutable
    BEFORE UPDATE OR DELETE ON xray.exposure_events
    FOR EACH ROW EXECUTE FUNCTION xray.refuse_event_change();
CREATE TRIGGER exposure_events_no_truncate
    BEFORE TRUNCATE ON xray.exposure_events
    FOR EACH STATEMENT EXECUTE FUNCTION xray.refuse_event_change();
