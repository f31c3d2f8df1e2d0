-- The tracker's logbook (SQLite). Named statements, loaded by tracker_sim/logbook.py.

-- name: create_schema
-- AUTOINCREMENT, not a plain INTEGER PRIMARY KEY: SQLite then never hands out a rowid it has used before,
-- even after the rows holding the highest ones were deleted (https://sqlite.org/autoinc.html). Pruning
-- acknowledged readings therefore can never make a sequence number come back.
CREATE TABLE IF NOT EXISTS readings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    device_time TEXT NOT NULL,
    temperature_c REAL,
    humidity_pct REAL,
    pressure_kpa REAL,
    latitude REAL,
    longitude REAL,
    battery_pct REAL,
    -- 1 once the service confirmed it holds this reading although it still misses an older one
    held INTEGER NOT NULL DEFAULT 0,
    -- UTC time (RFC 3339, fixed width, so text order is time order) the reading became acknowledged
    acked_at TEXT
);
CREATE TABLE IF NOT EXISTS logbook_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    acked_through INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO logbook_state (id, acked_through) VALUES (1, 0);
CREATE TABLE IF NOT EXISTS logbook_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
PRAGMA user_version = 1;

-- name: insert_reading
INSERT INTO readings (device_time, temperature_c, humidity_pct, pressure_kpa, latitude, longitude, battery_pct)
VALUES (?, ?, ?, ?, ?, ?, ?);

-- name: last_seq
SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'readings'), 0);

-- name: acked_through
SELECT acked_through FROM logbook_state WHERE id = 1;

-- name: set_acked_through
UPDATE logbook_state SET acked_through = ? WHERE id = 1;

-- name: pending
SELECT seq, device_time, temperature_c, humidity_pct, pressure_kpa, latitude, longitude, battery_pct
FROM readings
WHERE seq > (SELECT acked_through FROM logbook_state WHERE id = 1) AND held = 0
ORDER BY seq
LIMIT ?;

-- name: readings_from
SELECT seq, device_time, temperature_c, humidity_pct, pressure_kpa, latitude, longitude, battery_pct
FROM readings
WHERE seq >= ?
ORDER BY seq;

-- name: mark_held
UPDATE readings SET held = 1 WHERE seq BETWEEN ? AND ?;

-- name: mark_missing
UPDATE readings SET held = 0 WHERE seq BETWEEN ? AND ?;

-- name: mark_acked
UPDATE readings SET acked_at = ? WHERE seq > ? AND seq <= ? AND acked_at IS NULL;

-- name: unacknowledge_above
UPDATE readings SET held = 0, acked_at = NULL WHERE seq > ?;

-- name: prune
DELETE FROM readings
WHERE seq <= (SELECT acked_through FROM logbook_state WHERE id = 1) AND acked_at <= ?;

-- name: counts
SELECT
    count(*),
    count(*) FILTER (WHERE seq > (SELECT acked_through FROM logbook_state WHERE id = 1) AND held = 0)
FROM readings;

-- name: get_meta
SELECT value FROM logbook_meta WHERE key = ?;

-- name: set_meta
INSERT INTO logbook_meta (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;
