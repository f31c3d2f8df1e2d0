-- Named statements shared by both engines (loaded with aiosql; parameters are :name).

-- name: insert_organisation(name, kind, created_at)^
INSERT INTO organisations (name, kind, created_at)
VALUES (:name, :kind, :created_at)
ON CONFLICT (name) DO NOTHING
RETURNING id, name, kind, created_at;

-- name: get_organisation(id)^
SELECT id, name, kind, created_at FROM organisations WHERE id = :id;

-- name: insert_tracker(organisation_id, serial, model, secret, protocol, device_id, created_at, calibration_due_on)^
INSERT INTO trackers (organisation_id, serial, model, secret, protocol, device_id, created_at, calibration_due_on)
VALUES (:organisation_id, :serial, :model, :secret, :protocol, :device_id, :created_at, :calibration_due_on)
ON CONFLICT (serial) DO NOTHING
RETURNING id, organisation_id, serial, model, secret, protocol, device_id, created_at, calibration_due_on;

-- name: get_tracker_by_serial(serial)^
SELECT id, organisation_id, serial, model, secret, protocol, device_id, created_at, calibration_due_on
FROM trackers
WHERE serial = :serial;

-- name: get_tracker_by_device_id(device_id)^
SELECT id, organisation_id, serial, model, secret, protocol, device_id, created_at, calibration_due_on
FROM trackers
WHERE device_id = :device_id AND protocol = 'osmand';

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

-- A transaction's entries, chained at its commit, in one statement (executemany).
-- name: insert_audit_entries(id, at, actor, action, subject, detail, prev_hash, hash)*!
INSERT INTO audit_log (id, at, actor, action, subject, detail, prev_hash, hash)
VALUES (:id, :at, :actor, :action, :subject, :detail, :prev_hash, :hash);

-- name: audit_entries(after_id, limit)
SELECT id, at, actor, action, subject, detail, prev_hash, hash
FROM audit_log WHERE id > :after_id ORDER BY id LIMIT :limit;

-- name: insert_sync_state(tracker_id)!
INSERT INTO tracker_sync_state (tracker_id) VALUES (:tracker_id);

-- name: get_sync_state(tracker_id)^
-- With the span of device time the tracker's assignments cover (watched_from NULL: never assigned), and whether a
-- shipment of them has a signed decision not yet marked changed (decided).
SELECT s.tracker_id, s.acked_through, s.max_seq, s.readings_new, s.readings_duplicate, s.readings_quarantined,
       s.readings_conflicting, s.batches, s.last_sync_at, s.last_sent_at, s.clock_offset_s, s.clock_flagged,
       s.max_refused_seq, s.judge_from, s.judge_until, s.judge_since, s.judge_count, s.judge_round,
       (SELECT min(a.starts_at) FROM tracker_assignments a WHERE a.tracker_id = s.tracker_id) AS watched_from,
       (SELECT CASE WHEN max(a.ends_at IS NULL) = 1 THEN NULL ELSE max(a.ends_at) END
        FROM tracker_assignments a WHERE a.tracker_id = s.tracker_id) AS watched_to,
       EXISTS (SELECT 1 FROM tracker_assignments a JOIN decisions d ON d.shipment_id = a.shipment_id
               WHERE a.tracker_id = s.tracker_id AND d.evaluation_changed_at IS NULL) AS decided
FROM tracker_sync_state s WHERE s.tracker_id = :tracker_id;

-- name: sync_states(organisation_id)
SELECT t.serial, s.tracker_id, s.acked_through, s.max_seq, s.readings_new, s.readings_duplicate,
       s.readings_quarantined, s.readings_conflicting, s.batches, s.last_sync_at, s.last_sent_at, s.clock_offset_s,
       s.clock_flagged, s.max_refused_seq, s.judge_from, s.judge_until, s.judge_since, s.judge_count, s.judge_round
FROM tracker_sync_state s JOIN trackers t ON t.id = s.tracker_id
WHERE CAST(:organisation_id AS BIGINT) IS NULL OR t.organisation_id = :organisation_id
ORDER BY t.serial;

-- name: save_sync_state(tracker_id, acked_through, max_seq, readings_new, readings_duplicate, readings_quarantined, readings_conflicting, batches, last_sync_at, last_sent_at, clock_offset_s, clock_flagged, max_refused_seq, judge_from, judge_until, judge_since, judge_count, judge_round)!
UPDATE tracker_sync_state
SET acked_through = :acked_through, max_seq = :max_seq, readings_new = :readings_new,
    readings_duplicate = :readings_duplicate, readings_quarantined = :readings_quarantined,
    readings_conflicting = :readings_conflicting, batches = :batches, last_sync_at = :last_sync_at,
    last_sent_at = :last_sent_at, clock_offset_s = :clock_offset_s, clock_flagged = :clock_flagged,
    max_refused_seq = :max_refused_seq, judge_from = :judge_from, judge_until = :judge_until,
    judge_since = :judge_since, judge_count = :judge_count, judge_round = :judge_round
WHERE tracker_id = :tracker_id;

-- name: trackers_waiting_for_judgement(shipment_id, since, limit)
-- With judging after commit: the trackers whose stored readings are not judged yet, of one shipment's
-- assignments (shipment_id NULL: of any), waiting since before :since, lowest id first.
SELECT s.tracker_id FROM tracker_sync_state s
WHERE s.judge_from IS NOT NULL AND s.judge_since < :since
  AND (CAST(:shipment_id AS BIGINT) IS NULL
       OR s.tracker_id IN (SELECT a.tracker_id FROM tracker_assignments a WHERE a.shipment_id = :shipment_id))
ORDER BY s.tracker_id
LIMIT :limit;

-- name: held_seqs(tracker_id, after_seq, up_to_seq)
SELECT seq FROM readings WHERE tracker_id = :tracker_id AND seq > :after_seq AND seq <= :up_to_seq
UNION
SELECT seq FROM quarantined_readings WHERE tracker_id = :tracker_id AND seq > :after_seq AND seq <= :up_to_seq
ORDER BY seq;

-- name: insert_sync_conflict(tracker_id, seq, received_at, held_as, held, sent, sent_reason)^
INSERT INTO sync_conflicts (tracker_id, seq, received_at, held_as, held, sent, sent_reason)
VALUES (:tracker_id, :seq, :received_at, :held_as, :held, :sent, :sent_reason)
ON CONFLICT DO NOTHING
RETURNING id;

-- name: sync_conflicts_of_tracker(tracker_id, limit)
SELECT id, seq, received_at, held_as, held, sent, sent_reason FROM sync_conflicts
WHERE tracker_id = :tracker_id ORDER BY id DESC LIMIT :limit;

-- name: quarantined_of_tracker(tracker_id)
SELECT seq, received_at, reason, reading FROM quarantined_readings WHERE tracker_id = :tracker_id ORDER BY seq;

-- name: insert_profile_version(profile_id, version, name, document, created_at)^
INSERT INTO stability_profiles (profile_id, version, name, document, created_at)
VALUES (:profile_id, :version, :name, :document, :created_at)
ON CONFLICT (profile_id, version) DO NOTHING
RETURNING profile_id, version, document;

-- name: latest_profile(profile_id)^
SELECT profile_id, version, document FROM stability_profiles
WHERE profile_id = :profile_id ORDER BY version DESC LIMIT 1;

-- name: profile_version(profile_id, version)^
SELECT profile_id, version, document FROM stability_profiles WHERE profile_id = :profile_id AND version = :version;

-- name: latest_profiles()
SELECT p.profile_id, p.version, p.document FROM stability_profiles p
WHERE p.version = (SELECT max(q.version) FROM stability_profiles q WHERE q.profile_id = p.profile_id)
ORDER BY p.profile_id;

-- name: insert_product(organisation_id, gtin, name, profile_id, created_at)^
INSERT INTO products (organisation_id, gtin, name, profile_id, created_at)
VALUES (:organisation_id, :gtin, :name, :profile_id, :created_at)
ON CONFLICT (organisation_id, name) DO NOTHING
RETURNING id, organisation_id, gtin, name, profile_id, created_at;

-- name: get_product(id)^
SELECT id, organisation_id, gtin, name, profile_id, created_at FROM products WHERE id = :id;

-- name: products_of_organisation(organisation_id)
SELECT id, organisation_id, gtin, name, profile_id, created_at FROM products
WHERE organisation_id = :organisation_id ORDER BY id;

-- name: insert_lot(product_id, lot_number, expires_on, created_at)^
INSERT INTO lots (product_id, lot_number, expires_on, created_at)
VALUES (:product_id, :lot_number, :expires_on, :created_at)
ON CONFLICT (product_id, lot_number) DO NOTHING
RETURNING id, product_id, lot_number, expires_on, created_at;

-- name: get_lot(id)^
SELECT id, product_id, lot_number, expires_on, created_at FROM lots WHERE id = :id;

-- name: lots_of_product(product_id)
SELECT id, product_id, lot_number, expires_on, created_at FROM lots WHERE product_id = :product_id ORDER BY id;

-- name: all_products()
SELECT id, organisation_id, gtin, name, profile_id, created_at FROM products ORDER BY id;

-- name: set_tracker_calibration(id, due_on)!
UPDATE trackers SET calibration_due_on = :due_on WHERE id = :id;
