-- Scale, SQLite's part (its readings are not partitioned: retention deletes a month's rows instead of dropping a
-- partition): the seals that keep a shipment's readings digest once retention has removed its months, and the
-- unique key the shared statement storing budgets names as its conflict target since PostgreSQL's keys carry the
-- distribution column (sql/postgres/0018_partitioned_readings.sql). An evaluation stream stays keyed by its
-- assignment here (its rowid, which a composite unique index cannot name as a conflict target:
-- save_evaluation_stream_sqlite).

CREATE TABLE readings_seals (
    shipment_id     INTEGER PRIMARY KEY REFERENCES shipments (id),
    readings        INTEGER NOT NULL CHECK (readings >= 0),
    readings_sha256 TEXT NOT NULL,
    first_reading   TEXT,
    last_reading    TEXT,
    sealed_at       TEXT NOT NULL
);

CREATE TRIGGER readings_seals_no_update BEFORE UPDATE ON readings_seals
BEGIN
    SELECT RAISE(ABORT, 'readings_seals is append-only');
END;

CREATE TRIGGER readings_seals_no_delete BEFORE DELETE ON readings_seals
BEGIN
    SELECT RAISE(ABORT, 'readings_seals is append-only');
END;

CREATE UNIQUE INDEX budget_spent_by_shipment_key ON budget_spent (shipment_id, assignment_id, rule);
