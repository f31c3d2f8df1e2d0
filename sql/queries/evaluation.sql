-- Evaluation: streams (one per tracker assignment), their excursions and alarms, lot budgets, logger evidence.

-- What ingest needs to judge a batch, in one round trip: the tracker's assignments that overlap the batch's time
-- range, each with its stream (NULLs before its first judged reading) and that stream's profile document.
-- name: assignments_with_streams(tracker_id, earliest, latest)
SELECT a.id, a.shipment_id, a.tracker_id, a.starts_at, a.ends_at, a.created_at,
       s.state, s.readings, s.updated_at, s.profile_version, p.document AS profile_document
FROM tracker_assignments a
LEFT JOIN evaluation_streams s ON s.assignment_id = a.id
LEFT JOIN stability_profiles p ON p.profile_id = s.profile_id AND p.version = s.profile_version
WHERE a.tracker_id = :tracker_id AND a.starts_at <= :latest AND (a.ends_at IS NULL OR a.ends_at > :earliest)
ORDER BY a.starts_at;

-- name: evaluation_stream(assignment_id)^
SELECT s.assignment_id, s.shipment_id, s.tracker_id, s.profile_id, s.profile_version, s.state, s.readings,
       s.updated_at, p.document AS profile_document
FROM evaluation_streams s
JOIN stability_profiles p ON p.profile_id = s.profile_id AND p.version = s.profile_version
WHERE s.assignment_id = :assignment_id;

-- How many readings each stream of the shipment has judged: every judged batch changes it.
-- name: stream_readings_of_shipment(shipment_id)
SELECT assignment_id, readings FROM evaluation_streams WHERE shipment_id = :shipment_id ORDER BY assignment_id;

-- name: evaluation_streams_of_shipment(shipment_id)
SELECT s.assignment_id, s.shipment_id, s.tracker_id, s.profile_id, s.profile_version, s.state, s.readings,
       s.updated_at, p.document AS profile_document
FROM evaluation_streams s
JOIN stability_profiles p ON p.profile_id = s.profile_id AND p.version = s.profile_version
WHERE s.shipment_id = :shipment_id
ORDER BY s.assignment_id;

-- A stream is keyed by shipment and assignment on PostgreSQL (the distribution column leads: ops/citus/); SQLite
-- keys it by the assignment alone, its rowid, which no composite unique index may name as a conflict target.
-- name: save_evaluation_stream(assignment_id, shipment_id, tracker_id, profile_id, profile_version, state, readings, updated_at)!
INSERT INTO evaluation_streams (assignment_id, shipment_id, tracker_id, profile_id, profile_version, state, readings,
                                updated_at)
VALUES (:assignment_id, :shipment_id, :tracker_id, :profile_id, :profile_version, :state, :readings, :updated_at)
ON CONFLICT (shipment_id, assignment_id) DO UPDATE
SET state = excluded.state, readings = excluded.readings, updated_at = excluded.updated_at;

-- name: save_evaluation_stream_sqlite(assignment_id, shipment_id, tracker_id, profile_id, profile_version, state, readings, updated_at)!
INSERT INTO evaluation_streams (assignment_id, shipment_id, tracker_id, profile_id, profile_version, state, readings,
                                updated_at)
VALUES (:assignment_id, :shipment_id, :tracker_id, :profile_id, :profile_version, :state, :readings, :updated_at)
ON CONFLICT (assignment_id) DO UPDATE
SET state = excluded.state, readings = excluded.readings, updated_at = excluded.updated_at;

-- The readings a rewound stream replays: the tracker's, inside the assignment's range, after a (device_time, seq).
-- name: readings_of_tracker_after(tracker_id, starts_at, ends_at, after_time, after_seq)
SELECT seq, device_time, utc_offset_min, temperature_c, humidity_pct, pressure_kpa,
       latitude, longitude, battery_pct
FROM readings
WHERE tracker_id = :tracker_id AND device_time >= :starts_at AND device_time < :ends_at
  AND (device_time > :after_time OR (device_time = :after_time AND seq > :after_seq))
ORDER BY device_time, seq;

-- How many readings of the tracker a range holds: a stream's first batch replays them all unless they are the
-- batch's own.
-- name: count_readings_of_tracker_between(tracker_id, starts_at, ends_at)$
SELECT count(*) FROM readings
WHERE tracker_id = :tracker_id AND device_time >= :starts_at AND device_time < :ends_at;

-- name: save_budget_spent(assignment_id, rule, shipment_id, spent_min, spending)!
INSERT INTO budget_spent (assignment_id, rule, shipment_id, spent_min, spending)
VALUES (:assignment_id, :rule, :shipment_id, :spent_min, :spending)
ON CONFLICT (shipment_id, assignment_id, rule) DO UPDATE SET spent_min = excluded.spent_min, spending = excluded.spending;

-- Every stream's spending of the lot's lifetime rules: the lot budget's timeline.
-- name: lot_spending(lot_id)
SELECT b.assignment_id, b.shipment_id, b.rule, b.spent_min, b.spending
FROM budget_spent b JOIN shipments s ON s.id = b.shipment_id
WHERE s.lot_id = :lot_id
ORDER BY b.shipment_id, b.assignment_id, b.rule;

-- name: shipment_spending(shipment_id)
SELECT assignment_id, shipment_id, rule, spent_min, spending
FROM budget_spent WHERE shipment_id = :shipment_id
ORDER BY assignment_id, rule;

-- Each rule's minutes spent by the lot's streams, summed, and (rule NULL) how many lifetime alarms stand on them.
-- name: lot_spent_totals(lot_id)
SELECT b.rule AS rule, SUM(b.spent_min) AS spent_min
FROM budget_spent b JOIN shipments s ON s.id = b.shipment_id
WHERE s.lot_id = :lot_id
GROUP BY b.rule
UNION ALL
SELECT NULL, count(*) FROM alarms a JOIN shipments s ON s.id = a.shipment_id
WHERE s.lot_id = :lot_id AND a.scope = 'lifetime' AND a.withdrawn_at IS NULL;

-- name: shipment_spent_totals(shipment_id)
SELECT rule, SUM(spent_min) AS spent_min FROM budget_spent WHERE shipment_id = :shipment_id GROUP BY rule
UNION ALL
SELECT NULL, count(*) FROM alarms WHERE shipment_id = :shipment_id AND scope = 'lifetime' AND withdrawn_at IS NULL;

-- The lifetime alarms standing on the streams of a lot's shipments (at most one per rule where the budget ran out).
-- name: lot_lifetime_alarms(lot_id)
SELECT a.* FROM alarms a JOIN shipments s ON s.id = a.shipment_id
WHERE s.lot_id = :lot_id AND a.scope = 'lifetime' AND a.withdrawn_at IS NULL
ORDER BY a.id;

-- name: shipment_lifetime_alarms(shipment_id)
SELECT * FROM alarms WHERE shipment_id = :shipment_id AND scope = 'lifetime' AND withdrawn_at IS NULL ORDER BY id;

-- The keys of a stream's standing findings: its excursions and its own alarms (a lifetime alarm is the lot's).
-- name: stream_finding_keys(assignment_id)
SELECT event_key FROM excursions WHERE assignment_id = :assignment_id AND withdrawn_at IS NULL
UNION ALL
SELECT event_key FROM alarms WHERE assignment_id = :assignment_id AND withdrawn_at IS NULL AND scope <> 'lifetime';

-- name: withdraw_excursion(assignment_id, event_key, now)!
UPDATE excursions SET withdrawn_at = :now, updated_at = :now
WHERE assignment_id = :assignment_id AND event_key = :event_key AND withdrawn_at IS NULL;

-- name: excursions_of_shipment(shipment_id, withdrawn)
SELECT id, assignment_id, shipment_id, event_key, rule, metric, direction, threshold, started_at, start_seq, ended_at,
       duration_min, uncredited_min, peak, degree_min, custodian_id, detected_at, updated_at, withdrawn_at
FROM excursions
WHERE shipment_id = :shipment_id AND (withdrawn_at IS NULL OR :withdrawn)
ORDER BY started_at, start_seq, rule, id;

-- name: alarm_by_key(assignment_id, event_key)^
SELECT * FROM alarms WHERE assignment_id = :assignment_id AND event_key = :event_key;

-- name: get_alarm(id)^
SELECT * FROM alarms WHERE id = :id;

-- An alarm raised again by re-judging: the same condition (same key), so the same row; detected_at stays.
-- name: restore_alarm(id, met_at, now)^
UPDATE alarms SET met_at = :met_at, withdrawn_at = NULL, updated_at = :now WHERE id = :id
RETURNING *;

-- name: withdraw_alarm(assignment_id, event_key, now)^
UPDATE alarms SET withdrawn_at = :now, updated_at = :now
WHERE assignment_id = :assignment_id AND event_key = :event_key AND withdrawn_at IS NULL
RETURNING *;

-- name: alarms_of_shipment(shipment_id, withdrawn)
SELECT * FROM alarms
WHERE shipment_id = :shipment_id AND (withdrawn_at IS NULL OR :withdrawn)
ORDER BY began_at, began_seq, rule, id;

-- name: acknowledge_alarm(id, acknowledged_by, acknowledgement, now)^
UPDATE alarms SET acknowledged_at = :now, acknowledged_by = :acknowledged_by, acknowledgement = :acknowledgement,
                  updated_at = :now
WHERE id = :id AND acknowledged_at IS NULL
RETURNING *;

-- name: escalate_alarms(detected_before, now)
UPDATE alarms SET escalated_at = :now, updated_at = :now
WHERE acknowledged_at IS NULL AND escalated_at IS NULL AND withdrawn_at IS NULL AND detected_at < :detected_before
RETURNING *;

-- name: logger_file_by_digest(shipment_id, file_sha256)^
SELECT id, shipment_id, tracker_id, vendor, model, serial, file_name, file_sha256, utc_offset_min, readings,
       first_reading_at, last_reading_at, imported_by, imported_at
FROM logger_files WHERE shipment_id = :shipment_id AND file_sha256 = :file_sha256;

-- name: insert_logger_file(shipment_id, tracker_id, vendor, model, serial, file_name, file_sha256, content, utc_offset_min, readings, first_reading_at, last_reading_at, document, imported_by, imported_at)^
INSERT INTO logger_files (shipment_id, tracker_id, vendor, model, serial, file_name, file_sha256, content,
                          utc_offset_min, readings, first_reading_at, last_reading_at, document, imported_by,
                          imported_at)
VALUES (:shipment_id, :tracker_id, :vendor, :model, :serial, :file_name, :file_sha256, :content, :utc_offset_min,
        :readings, :first_reading_at, :last_reading_at, :document, :imported_by, :imported_at)
ON CONFLICT (shipment_id, file_sha256) DO NOTHING
RETURNING id, shipment_id, tracker_id, vendor, model, serial, file_name, file_sha256, utc_offset_min, readings,
          first_reading_at, last_reading_at, imported_by, imported_at;

-- name: logger_files_of_shipment(shipment_id)
SELECT id, shipment_id, tracker_id, vendor, model, serial, file_name, file_sha256, utc_offset_min, readings,
       first_reading_at, last_reading_at, imported_by, imported_at
FROM logger_files WHERE shipment_id = :shipment_id ORDER BY id;

-- name: insert_logger_day(logger_file_id, day_no, day, min_c, min_at, max_c, max_at, mean_c, beyond, events, sensor_timeout_min)!
INSERT INTO logger_days (logger_file_id, day_no, day, min_c, min_at, max_c, max_at, mean_c, beyond, events,
                         sensor_timeout_min)
VALUES (:logger_file_id, :day_no, :day, :min_c, :min_at, :max_c, :max_at, :mean_c, :beyond, :events,
        :sensor_timeout_min);

-- name: logger_days_of_file(logger_file_id)
SELECT day_no, day, min_c, min_at, max_c, max_at, mean_c, beyond, events, sensor_timeout_min
FROM logger_days WHERE logger_file_id = :logger_file_id ORDER BY day, day_no;
