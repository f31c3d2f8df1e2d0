-- The audit trail for auditors: entries found by subject (a shipment's entries) without reading the whole trail,
-- and the latest scheduled verification of each hash chain (the audit trail, each shipment's custody chain) with
-- the break already reported, so a break is notified once and not at every run.

CREATE INDEX audit_log_by_subject ON audit_log (subject, id);

CREATE TABLE chain_checks (
    chain           TEXT PRIMARY KEY,           -- 'audit' or 'custody:<shipment id>'
    checked_at      TIMESTAMPTZ NOT NULL,
    intact          BOOLEAN NOT NULL,
    checked         BIGINT NOT NULL,            -- entries (events) verified
    broken_at       BIGINT,                     -- the first broken entry's id (event's seq); NULL when intact
    head_hash       TEXT,
    reported_break  BIGINT                      -- the break last notified; a new break is notified again
);
