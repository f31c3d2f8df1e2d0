-- Offline sync: what the service holds of each tracker's log, and the readings it could not accept.

CREATE TABLE tracker_sync_state (
    tracker_id          BIGINT PRIMARY KEY REFERENCES trackers (id),
    acked_through       BIGINT NOT NULL DEFAULT 0,
    max_seq             BIGINT NOT NULL DEFAULT 0,
    readings_new        BIGINT NOT NULL DEFAULT 0,
    readings_duplicate  BIGINT NOT NULL DEFAULT 0,
    readings_quarantined BIGINT NOT NULL DEFAULT 0,
    batches             BIGINT NOT NULL DEFAULT 0,
    last_sync_at        TIMESTAMPTZ,
    clock_offset_s      DOUBLE PRECISION,
    clock_flagged       BOOLEAN NOT NULL DEFAULT FALSE
);

INSERT INTO tracker_sync_state (tracker_id) SELECT id FROM trackers;

-- Acknowledged like stored readings, so one bad row never blocks a tracker's queue; kept with the reason.
CREATE TABLE quarantined_readings (
    tracker_id  BIGINT NOT NULL REFERENCES trackers (id),
    seq         BIGINT NOT NULL CHECK (seq >= 1),
    received_at TIMESTAMPTZ NOT NULL,
    reason      TEXT NOT NULL,
    reading     TEXT NOT NULL,
    PRIMARY KEY (tracker_id, seq)
);
