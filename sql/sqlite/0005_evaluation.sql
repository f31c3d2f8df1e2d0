-- Evaluation at ingest: each tracker assignment is judged as one stream against the shipment's pinned profile.
-- A stream keeps the engine's state (MessagePack bytes: running sums, open excursions, bounded window buffers and
-- checkpoints, never the readings); what it finds is stored by the stable key of each finding, so re-judging after
-- late data updates a row instead of adding one, and a finding the late data took back is marked withdrawn, never
-- deleted. Logger files imported as evidence keep their original bytes.
-- Times are TEXT in ISO 8601 UTC with microseconds, days TEXT yyyy-mm-dd, flags 0/1.

CREATE TABLE evaluation_streams (
    assignment_id   INTEGER PRIMARY KEY REFERENCES tracker_assignments (id),
    shipment_id     INTEGER NOT NULL REFERENCES shipments (id),
    tracker_id      INTEGER NOT NULL REFERENCES trackers (id),
    -- The profile version the state was made for (the shipment's pin, copied so ingest need not read the shipment).
    profile_id      TEXT NOT NULL,
    profile_version INTEGER NOT NULL,
    state           BLOB NOT NULL,
    readings        INTEGER NOT NULL,
    updated_at      TEXT NOT NULL,
    FOREIGN KEY (profile_id, profile_version) REFERENCES stability_profiles (profile_id, version)
);

CREATE INDEX evaluation_streams_by_shipment ON evaluation_streams (shipment_id);

-- Minutes beyond each lifetime rule's threshold a stream spent: the lot's stability budget is the sum over the
-- streams of its shipments (REFERENCE §4).
CREATE TABLE budget_spent (
    assignment_id   INTEGER NOT NULL REFERENCES evaluation_streams (assignment_id),
    rule            TEXT NOT NULL,
    shipment_id     INTEGER NOT NULL REFERENCES shipments (id),
    spent_min       REAL NOT NULL CHECK (spent_min >= 0),
    PRIMARY KEY (assignment_id, rule)
);

CREATE INDEX budget_spent_by_shipment ON budget_spent (shipment_id);
CREATE INDEX shipments_by_lot ON shipments (lot_id);

CREATE TABLE excursions (
    id              INTEGER PRIMARY KEY,
    assignment_id   INTEGER NOT NULL REFERENCES evaluation_streams (assignment_id),
    shipment_id     INTEGER NOT NULL REFERENCES shipments (id),
    event_key       TEXT NOT NULL,
    rule            TEXT NOT NULL,
    metric          TEXT NOT NULL,
    direction       TEXT NOT NULL,
    threshold       REAL NOT NULL,
    started_at      TEXT NOT NULL,
    start_seq       INTEGER NOT NULL,
    ended_at        TEXT,
    duration_min    REAL NOT NULL,
    uncredited_min  REAL NOT NULL,
    peak            REAL NOT NULL,
    degree_min      REAL NOT NULL,
    -- The party holding the shipment when the excursion began (chain of custody); NULL when nobody is known.
    custodian_id    INTEGER REFERENCES organisations (id),
    detected_at     TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    withdrawn_at    TEXT,
    UNIQUE (assignment_id, event_key)
);

CREATE INDEX excursions_by_shipment ON excursions (shipment_id, started_at);

CREATE TABLE alarms (
    id              INTEGER PRIMARY KEY,
    assignment_id   INTEGER NOT NULL REFERENCES evaluation_streams (assignment_id),
    shipment_id     INTEGER NOT NULL REFERENCES shipments (id),
    event_key       TEXT NOT NULL,
    rule            TEXT NOT NULL,
    action          TEXT NOT NULL,
    metric          TEXT NOT NULL,
    direction       TEXT NOT NULL,
    threshold       REAL NOT NULL,
    mode            TEXT NOT NULL,
    scope           TEXT NOT NULL,
    delay_min       REAL NOT NULL,
    began_at        TEXT NOT NULL,      -- device time the condition began
    began_seq       INTEGER NOT NULL,
    met_at          TEXT NOT NULL,      -- device time the condition was met
    detected_at     TEXT NOT NULL,      -- service time the alarm was first raised; never changes
    late            INTEGER NOT NULL,   -- detected long after met_at (buffered data), so not presented as live
    acknowledged_at TEXT,
    acknowledged_by TEXT,
    acknowledgement TEXT,
    escalated_at    TEXT,
    withdrawn_at    TEXT,
    updated_at      TEXT NOT NULL,
    UNIQUE (assignment_id, event_key),
    CHECK ((acknowledged_at IS NULL) = (acknowledged_by IS NULL))
);

CREATE INDEX alarms_by_shipment ON alarms (shipment_id, began_at);
CREATE INDEX alarms_awaiting_acknowledgement ON alarms (detected_at)
    WHERE acknowledged_at IS NULL AND escalated_at IS NULL AND withdrawn_at IS NULL;

-- A logger export imported into a shipment's evidence: the file as received, who the device is, and what it said.
CREATE TABLE logger_files (
    id              INTEGER PRIMARY KEY,
    shipment_id     INTEGER NOT NULL REFERENCES shipments (id),
    tracker_id      INTEGER REFERENCES trackers (id),  -- the logger as a tracker, when the file has readings
    vendor          TEXT NOT NULL,
    model           TEXT NOT NULL,
    serial          TEXT NOT NULL,
    file_name       TEXT,
    file_sha256     TEXT NOT NULL,
    content         BLOB NOT NULL,
    utc_offset_min  INTEGER NOT NULL,
    readings        INTEGER NOT NULL,
    first_reading_at TEXT,
    last_reading_at TEXT,
    document        TEXT NOT NULL,  -- JSON: device, configuration, run summary and markers as parsed
    imported_by     TEXT NOT NULL,
    imported_at     TEXT NOT NULL,
    UNIQUE (shipment_id, file_sha256)
);

-- The per-day evidence of a logger (Berlinger Hist blocks): what summary-only devices give instead of readings.
CREATE TABLE logger_days (
    logger_file_id  INTEGER NOT NULL REFERENCES logger_files (id),
    day_no          INTEGER NOT NULL,
    day             TEXT NOT NULL,
    min_c           REAL,
    min_at          TEXT,
    max_c           REAL,
    max_at          TEXT,
    mean_c          REAL,
    beyond          TEXT NOT NULL,  -- JSON: per alarm limit, minutes beyond it that day and when its alarm was met
    events          INTEGER,
    sensor_timeout_min INTEGER,
    PRIMARY KEY (logger_file_id, day_no)
);
