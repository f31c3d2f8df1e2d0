-- The first tables: who, what, which device, and the readings themselves.
-- Times are TEXT in ISO 8601 UTC with microseconds ('2026-01-01T00:00:00.000000+00:00'): they sort as they read.

CREATE TABLE organisations (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('shipper', 'carrier', 'receiver')),
    created_at  TEXT NOT NULL
);

CREATE TABLE products (
    id              INTEGER PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id),
    gtin            TEXT,
    name            TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    UNIQUE (organisation_id, name)
);

CREATE TABLE lots (
    id          INTEGER PRIMARY KEY,
    product_id  INTEGER NOT NULL REFERENCES products (id),
    lot_number  TEXT NOT NULL,
    expires_on  TEXT,
    created_at  TEXT NOT NULL,
    UNIQUE (product_id, lot_number)
);

CREATE TABLE trackers (
    id              INTEGER PRIMARY KEY,
    organisation_id INTEGER REFERENCES organisations (id),
    serial          TEXT NOT NULL UNIQUE,
    model           TEXT,
    secret          TEXT NOT NULL,
    created_at      TEXT NOT NULL
);

CREATE TABLE shipments (
    id              INTEGER PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id),
    reference       TEXT NOT NULL,
    product_id      INTEGER REFERENCES products (id),
    lot_id          INTEGER REFERENCES lots (id),
    status          TEXT NOT NULL DEFAULT 'planned'
                    CHECK (status IN ('planned', 'in_transit', 'delivered', 'closed', 'cancelled')),
    created_at      TEXT NOT NULL,
    UNIQUE (organisation_id, reference)
);

-- Key (tracker, seq): the tracker's own sequence number makes every write idempotent.
-- No foreign key on tracker_id: a look-up per row on the hottest insert path; ingest resolves the tracker first.
CREATE TABLE readings (
    tracker_id      INTEGER NOT NULL,
    seq             INTEGER NOT NULL CHECK (seq >= 1),
    device_time     TEXT NOT NULL,
    utc_offset_min  INTEGER NOT NULL,
    received_at     TEXT NOT NULL,
    temperature_c   REAL,
    humidity_pct    REAL,
    pressure_kpa    REAL,
    latitude        REAL,
    longitude       REAL,
    battery_pct     REAL,
    PRIMARY KEY (tracker_id, seq)
) WITHOUT ROWID;

CREATE INDEX readings_by_tracker_time ON readings (tracker_id, device_time);

-- Append-only and hash-chained (21 CFR 11.10(e)): each entry hashes the previous one.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE
);

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
