-- Named statements shared by both engines (loaded with aiosql; parameters are :name).

-- name: insert_organisation(name, kind, created_at)^
INSERT INTO organisations (name, kind, created_at)
VALUES (:name, :kind, :created_at)
ON CONFLICT (name) DO NOTHING
RETURNING id, name, kind, created_at;

-- name: get_organisation(id)^
SELECT id, name, kind, created_at FROM organisations WHERE id = :id;

-- name: insert_tracker(organisation_id, serial, model, secret, created_at)^
INSERT INTO trackers (organisation_id, serial, model, secret, created_at)
VALUES (:organisation_id, :serial, :model, :secret, :created_at)
ON CONFLICT (serial) DO NOTHING
RETURNING id, organisation_id, serial, model, secret, created_at;

-- name: get_tracker_by_serial(serial)^
SELECT id, organisation_id, serial, model, secret, created_at FROM trackers WHERE serial = :serial;

-- name: count_readings()$
SELECT count(*) FROM readings;

-- name: count_readings_of_tracker(tracker_id)$
SELECT count(*) FROM readings WHERE tracker_id = :tracker_id;

-- name: readings_between(tracker_id, start, end)
SELECT seq, device_time, utc_offset_min, temperature_c, humidity_pct, pressure_kpa,
       latitude, longitude, battery_pct
FROM readings
WHERE tracker_id = :tracker_id AND device_time >= :start AND device_time < :end
ORDER BY device_time, seq;

-- name: last_audit_entry()^
SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1;

-- name: insert_audit_entry(id, at, actor, action, subject, detail, prev_hash, hash)!
INSERT INTO audit_log (id, at, actor, action, subject, detail, prev_hash, hash)
VALUES (:id, :at, :actor, :action, :subject, :detail, :prev_hash, :hash);

-- name: audit_entries(after_id, limit)
SELECT id, at, actor, action, subject, detail, prev_hash, hash
FROM audit_log WHERE id > :after_id ORDER BY id LIMIT :limit;
