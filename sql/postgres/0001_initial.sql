-- The first tables: who, what, which device, and the readings themselves.

CREATE TABLE organisations (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL CHECK (kind IN ('shipper', 'carrier', 'receiver')),
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE products (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    gtin            TEXT,
    name            TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (organisation_id, name)
);

CREATE TABLE lots (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    product_id  BIGINT NOT NULL REFERENCES products (id),
    lot_number  TEXT NOT NULL,
    expires_on  DATE,
    created_at  TIMESTAMPTZ NOT NULL,
    UNIQUE (product_id, lot_number)
);

CREATE TABLE trackers (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id BIGINT REFERENCES organisations (id),
    serial          TEXT NOT NULL UNIQUE,
    model           TEXT,
    secret          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE shipments (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    reference       TEXT NOT NULL,
    product_id      BIGINT REFERENCES products (id),
    lot_id          BIGINT REFERENCES lots (id),
    status          TEXT NOT NULL DEFAULT 'planned'
                    CHECK (status IN ('planned', 'in_transit', 'delivered', 'closed', 'cancelled')),
    created_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (organisation_id, reference)
);

-- Key (tracker, seq): the tracker's own sequence number makes every write idempotent.
-- No foreign key on tracker_id: checking it costs a look-up per row on the hottest insert path (about 40 % of
-- the bulk insert, measured), trackers are never deleted, and ingest resolves the tracker before it writes.
CREATE TABLE readings (
    tracker_id      BIGINT NOT NULL,
    seq             BIGINT NOT NULL CHECK (seq >= 1),
    device_time     TIMESTAMPTZ NOT NULL,
    utc_offset_min  SMALLINT NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    temperature_c   DOUBLE PRECISION,
    humidity_pct    DOUBLE PRECISION,
    pressure_kpa    DOUBLE PRECISION,
    latitude        DOUBLE PRECISION,
    longitude       DOUBLE PRECISION,
    battery_pct     DOUBLE PRECISION,
    PRIMARY KEY (tracker_id, seq)
);

-- "Readings of a shipment in a time range" resolves to a tracker and a device-time range.
CREATE INDEX readings_by_tracker_time ON readings (tracker_id, device_time);

-- Append-only and hash-chained (21 CFR 11.10(e)): each entry hashes the previous one.
CREATE TABLE audit_log (
    id          BIGINT PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    detail      TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL UNIQUE
);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
