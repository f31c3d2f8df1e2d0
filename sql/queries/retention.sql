-- Retention of readings: which shipments own readings in a month about to be removed, and the seals that keep a
-- shipment's readings digest once they are gone.

-- A reading belongs to the shipment its tracker was assigned to at the reading's device time.
-- name: shipments_with_readings(start, end)
SELECT s.id AS shipment_id, s.status,
       (SELECT count(*) FROM tracker_assignments o WHERE o.shipment_id = s.id AND o.ends_at IS NULL)
           AS open_assignments,
       EXISTS (SELECT 1 FROM readings_seals z WHERE z.shipment_id = s.id) AS sealed
FROM shipments s
WHERE s.id IN (
    SELECT a.shipment_id FROM tracker_assignments a
    WHERE a.starts_at < :end AND (a.ends_at IS NULL OR a.ends_at > :start)
      AND EXISTS (SELECT 1 FROM readings r
                  WHERE r.tracker_id = a.tracker_id AND r.device_time >= :start AND r.device_time < :end
                    AND r.device_time >= a.starts_at AND (a.ends_at IS NULL OR r.device_time < a.ends_at)))
ORDER BY s.id;

-- name: readings_seal(shipment_id)^
SELECT shipment_id, readings, readings_sha256, first_reading, last_reading, sealed_at
FROM readings_seals WHERE shipment_id = :shipment_id;

-- name: insert_readings_seal(shipment_id, readings, readings_sha256, first_reading, last_reading, sealed_at)^
INSERT INTO readings_seals (shipment_id, readings, readings_sha256, first_reading, last_reading, sealed_at)
VALUES (:shipment_id, :readings, :readings_sha256, :first_reading, :last_reading, :sealed_at)
ON CONFLICT (shipment_id) DO NOTHING
RETURNING shipment_id;
