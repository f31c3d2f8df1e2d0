-- Tenancy and shipments: API tokens scoped to one organisation with a role; shipments with their route, legs
-- (one carrier each) and the trackers assigned to them for a time range.

-- A token is shown once and stored as the SHA-256 of its text (tokens are 256-bit random: no slow hash needed).
CREATE TABLE api_tokens (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    role            TEXT NOT NULL CHECK (role IN ('admin', 'logistics', 'pharmacist', 'carrier', 'auditor')),
    name            TEXT NOT NULL,
    token_sha256    TEXT NOT NULL UNIQUE,
    created_at      TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ
);

CREATE INDEX api_tokens_by_organisation ON api_tokens (organisation_id);

-- No shipment was ever stored before this migration: the table is rebuilt whole.
DROP TABLE shipments;

CREATE TABLE shipments (
    id                  BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id     BIGINT NOT NULL REFERENCES organisations (id),
    reference           TEXT NOT NULL,
    product_id          BIGINT NOT NULL REFERENCES products (id),
    lot_id              BIGINT REFERENCES lots (id),
    quantity            INTEGER NOT NULL CHECK (quantity > 0),
    -- The profile version the shipment is judged against, pinned when the shipment is created.
    profile_id          TEXT NOT NULL,
    profile_version     INTEGER NOT NULL,
    origin_name         TEXT NOT NULL,
    origin_lat          DOUBLE PRECISION NOT NULL,
    origin_lon          DOUBLE PRECISION NOT NULL,
    destination_name    TEXT NOT NULL,
    destination_lat     DOUBLE PRECISION NOT NULL,
    destination_lon     DOUBLE PRECISION NOT NULL,
    geofence_m          DOUBLE PRECISION NOT NULL CHECK (geofence_m > 0),
    waypoints           TEXT NOT NULL,  -- JSON [[lat, lon], ...] between origin and destination
    receiver_id         BIGINT REFERENCES organisations (id),
    promised_at         TIMESTAMPTZ,
    priority            TEXT NOT NULL CHECK (priority IN ('standard', 'urgent')),
    status              TEXT NOT NULL
                        CHECK (status IN ('planned', 'in_transit', 'delivered', 'closed', 'cancelled')),
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL,
    UNIQUE (organisation_id, reference),
    FOREIGN KEY (profile_id, profile_version) REFERENCES stability_profiles (profile_id, version)
);

CREATE INDEX shipments_by_receiver ON shipments (receiver_id);

CREATE TABLE shipment_legs (
    shipment_id BIGINT NOT NULL REFERENCES shipments (id),
    leg_no      INTEGER NOT NULL CHECK (leg_no >= 1),
    carrier_id  BIGINT NOT NULL REFERENCES organisations (id),
    mode        TEXT NOT NULL CHECK (mode IN ('road', 'air', 'sea', 'rail')),
    PRIMARY KEY (shipment_id, leg_no)
);

CREATE INDEX shipment_legs_by_carrier ON shipment_legs (carrier_id, shipment_id);

-- A tracker belongs to at most one shipment at any instant: [starts_at, ends_at), ends_at NULL while open.
CREATE TABLE tracker_assignments (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id BIGINT NOT NULL REFERENCES shipments (id),
    tracker_id  BIGINT NOT NULL REFERENCES trackers (id),
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ,
    created_at  TIMESTAMPTZ NOT NULL,
    CHECK (ends_at IS NULL OR ends_at > starts_at)
);

CREATE INDEX tracker_assignments_by_tracker ON tracker_assignments (tracker_id, starts_at);
CREATE INDEX tracker_assignments_by_shipment ON tracker_assignments (shipment_id);
