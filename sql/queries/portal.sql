-- What the portal reads in bulk: the board of shipments in transit (a fixed number of statements whatever the
-- number of shipments), a shipment's readings by key, and the alarm inbox across shipments.
-- :party scopes every statement to the shipments an organisation takes part in (NULL: the operator, all).

-- name: board_shipments(party)
SELECT s.id, s.organisation_id, s.reference, s.product_id, p.name AS product_name, s.lot_id, l.lot_number,
       s.origin_name, s.origin_lat, s.origin_lon, s.destination_name, s.destination_lat, s.destination_lon,
       s.promised_at, s.priority, s.receiver_id
FROM shipments s JOIN products p ON p.id = s.product_id LEFT JOIN lots l ON l.id = s.lot_id
WHERE s.status = 'in_transit'
  AND (CAST(:party AS BIGINT) IS NULL OR s.organisation_id = :party OR s.receiver_id = :party
       OR EXISTS (SELECT 1 FROM shipment_legs g WHERE g.shipment_id = s.id AND g.carrier_id = :party))
ORDER BY s.id;

-- name: board_latest_readings(party)
-- The latest reading with a temperature and the latest with a position, of every tracker assignment. The rows are
-- joined back within the assignment's time as well as by number: on PostgreSQL that leaves out the partitions of
-- months before the assignment began.
WITH latest AS (
    SELECT a.shipment_id, a.tracker_id, a.starts_at, a.ends_at,
           (SELECT r.seq FROM readings r
            WHERE r.tracker_id = a.tracker_id AND r.device_time >= a.starts_at
              AND (a.ends_at IS NULL OR r.device_time < a.ends_at) AND r.temperature_c IS NOT NULL
            ORDER BY r.device_time DESC LIMIT 1) AS temperature_seq,
           (SELECT r.seq FROM readings r
            WHERE r.tracker_id = a.tracker_id AND r.device_time >= a.starts_at
              AND (a.ends_at IS NULL OR r.device_time < a.ends_at) AND r.latitude IS NOT NULL
            ORDER BY r.device_time DESC LIMIT 1) AS position_seq
    FROM tracker_assignments a JOIN shipments s ON s.id = a.shipment_id
    WHERE s.status = 'in_transit'
      AND (CAST(:party AS BIGINT) IS NULL OR s.organisation_id = :party OR s.receiver_id = :party
           OR EXISTS (SELECT 1 FROM shipment_legs g WHERE g.shipment_id = s.id AND g.carrier_id = :party))
)
SELECT x.shipment_id, x.tracker_id,
       t.device_time AS temperature_at, t.temperature_c,
       p.device_time AS position_at, p.latitude, p.longitude
FROM latest x
LEFT JOIN readings t ON t.tracker_id = x.tracker_id AND t.seq = x.temperature_seq AND t.device_time >= x.starts_at
                       AND (x.ends_at IS NULL OR t.device_time < x.ends_at)
LEFT JOIN readings p ON p.tracker_id = x.tracker_id AND p.seq = x.position_seq AND p.device_time >= x.starts_at
                       AND (x.ends_at IS NULL OR p.device_time < x.ends_at);

-- name: board_open_alarms(party)
SELECT a.shipment_id, count(*) AS open_alarms,
       sum(CASE WHEN a.escalated_at IS NULL THEN 0 ELSE 1 END) AS escalated,
       sum(CASE WHEN a.late THEN 1 ELSE 0 END) AS late
FROM alarms a JOIN shipments s ON s.id = a.shipment_id
WHERE a.acknowledged_at IS NULL AND a.withdrawn_at IS NULL AND s.status = 'in_transit'
  AND (CAST(:party AS BIGINT) IS NULL OR s.organisation_id = :party OR s.receiver_id = :party
       OR EXISTS (SELECT 1 FROM shipment_legs g WHERE g.shipment_id = s.id AND g.carrier_id = :party))
GROUP BY a.shipment_id;

-- name: board_sync_and_eta(party)
SELECT s.id AS shipment_id,
       (SELECT max(t.last_sync_at) FROM tracker_assignments a JOIN tracker_sync_state t ON t.tracker_id = a.tracker_id
        WHERE a.shipment_id = s.id) AS last_sync_at,
       e.computed_at AS eta_computed_at, e.at_risk AS eta_at_risk, e.estimate AS eta_estimate,
       c.party_id AS custodian_id, o.name AS custodian_name
FROM shipments s
LEFT JOIN shipment_etas e ON e.shipment_id = s.id
LEFT JOIN custody_events c ON c.shipment_id = s.id AND c.seq = (
    SELECT max(x.seq) FROM custody_events x WHERE x.shipment_id = s.id AND x.party_id IS NOT NULL)
LEFT JOIN organisations o ON o.id = c.party_id
WHERE s.status = 'in_transit'
  AND (CAST(:party AS BIGINT) IS NULL OR s.organisation_id = :party OR s.receiver_id = :party
       OR EXISTS (SELECT 1 FROM shipment_legs g WHERE g.shipment_id = s.id AND g.carrier_id = :party));

-- name: shipment_readings(shipment_id, start, end, after_time, after_tracker, after_seq, limit)
SELECT t.serial, r.tracker_id, r.seq, r.device_time, r.utc_offset_min, r.received_at, r.temperature_c,
       r.humidity_pct, r.pressure_kpa, r.latitude, r.longitude, r.battery_pct
FROM tracker_assignments a
JOIN trackers t ON t.id = a.tracker_id
JOIN readings r ON r.tracker_id = a.tracker_id AND r.device_time >= a.starts_at
                AND (a.ends_at IS NULL OR r.device_time < a.ends_at)
WHERE a.shipment_id = :shipment_id AND r.device_time >= :start AND r.device_time < :end
  AND (r.device_time > :after_time
       OR (r.device_time = :after_time AND (r.tracker_id > :after_tracker
                                            OR (r.tracker_id = :after_tracker AND r.seq > :after_seq))))
ORDER BY r.device_time, r.tracker_id, r.seq
LIMIT :limit;

-- name: alarm_inbox(party, limit)
-- Unacknowledged standing alarms, escalated ones first, then the most recently detected.
SELECT a.*, s.reference
FROM alarms a JOIN shipments s ON s.id = a.shipment_id
WHERE a.acknowledged_at IS NULL AND a.withdrawn_at IS NULL
  AND (CAST(:party AS BIGINT) IS NULL OR s.organisation_id = :party OR s.receiver_id = :party
       OR EXISTS (SELECT 1 FROM shipment_legs g WHERE g.shipment_id = s.id AND g.carrier_id = :party))
ORDER BY CASE WHEN a.escalated_at IS NULL THEN 1 ELSE 0 END, a.detected_at DESC, a.id DESC
LIMIT :limit;
