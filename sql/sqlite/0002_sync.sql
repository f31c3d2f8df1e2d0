-- Offline sync: what the service holds of each tracker's log, and the readings it could not accept.

CREATE TABLE tracker_sync_state (
    tracker_id          INTEGER PRIMARY KEY REFERENCES trackers (id),
    acked_through       INTEGER NOT NULL DEFAULT 0,
    max_seq             INTEGER NOT NULL DEFAULT 0,
    readings_new        INTEGER NOT NULL DEFAULT 0,
    readings_duplicate  INTEGER NOT NULL DEFAULT 0,
    readings_quarantined INTEGER NOT NULL DEFAULT 0,
    batches             INTEGER NOT NULL DEFAULT 0,
    last_sync_at        TEXT,
    clock_offset_s      REAL,
    clock_flagged       INTEGER NOT NULL DEFAULT 0
);

INSERT INTO tracker_sync_state (tracker_id) SELECT id FROM trackers;

-- Acknowledged like stored readings, so one bad row never blocks a tracker's queue; kept with the reason.
CREATE TABLE quarantined_readings (
    tracker_id  INTEGER NOT NULL REFERENCES trackers (id),
    seq         INTEGER NOT NULL CHECK (seq >= 1),
    received_at TEXT NOT NULL,
    reason      TEXT NOT NULL,
    reading     TEXT NOT NULL,
    PRIMARY KEY (tracker_id, seq)
) WITHOUT ROWID;
