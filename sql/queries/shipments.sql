-- Shipments, their legs and the trackers assigned to them.

-- name: insert_shipment(organisation_id, reference, product_id, lot_id, quantity, profile_id, profile_version, origin_name, origin_lat, origin_lon, destination_name, destination_lat, destination_lon, geofence_m, waypoints, receiver_id, promised_at, priority, status, created_at)$
INSERT INTO shipments (organisation_id, reference, product_id, lot_id, quantity, profile_id, profile_version,
                       origin_name, origin_lat, origin_lon, destination_name, destination_lat, destination_lon,
                       geofence_m, waypoints, receiver_id, promised_at, priority, status, created_at, updated_at)
VALUES (:organisation_id, :reference, :product_id, :lot_id, :quantity, :profile_id, :profile_version,
        :origin_name, :origin_lat, :origin_lon, :destination_name, :destination_lat, :destination_lon,
        :geofence_m, :waypoints, :receiver_id, :promised_at, :priority, :status, :created_at, :created_at)
ON CONFLICT (organisation_id, reference) DO NOTHING
RETURNING id;

-- name: insert_leg(shipment_id, leg_no, carrier_id, mode)!
INSERT INTO shipment_legs (shipment_id, leg_no, carrier_id, mode) VALUES (:shipment_id, :leg_no, :carrier_id, :mode);

-- name: get_shipment(id)^
SELECT * FROM shipments WHERE id = :id;

-- name: legs_of_shipment(shipment_id)
SELECT leg_no, carrier_id, mode FROM shipment_legs WHERE shipment_id = :shipment_id ORDER BY leg_no;

-- name: shipment_ids_of_party(organisation_id, status)
SELECT s.id FROM shipments s
WHERE (s.organisation_id = :organisation_id OR s.receiver_id = :organisation_id
       OR EXISTS (SELECT 1 FROM shipment_legs l WHERE l.shipment_id = s.id AND l.carrier_id = :organisation_id))
  AND (CAST(:status AS TEXT) IS NULL OR s.status = :status)
ORDER BY s.id;

-- name: all_shipment_ids(status)
SELECT id FROM shipments WHERE (CAST(:status AS TEXT) IS NULL OR status = :status) ORDER BY id;

-- name: set_shipment_status(id, status, updated_at)!
UPDATE shipments SET status = :status, updated_at = :updated_at WHERE id = :id;

-- name: insert_assignment(shipment_id, tracker_id, starts_at, ends_at, created_at)^
INSERT INTO tracker_assignments (shipment_id, tracker_id, starts_at, ends_at, created_at)
VALUES (:shipment_id, :tracker_id, :starts_at, :ends_at, :created_at)
RETURNING id, shipment_id, tracker_id, starts_at, ends_at, created_at;

-- name: end_assignment(id, ends_at)!
UPDATE tracker_assignments SET ends_at = :ends_at WHERE id = :id;

-- name: assignments_of_tracker(tracker_id)
SELECT id, shipment_id, tracker_id, starts_at, ends_at, created_at
FROM tracker_assignments WHERE tracker_id = :tracker_id ORDER BY starts_at;

-- name: assignments_of_shipment(shipment_id)
SELECT id, shipment_id, tracker_id, starts_at, ends_at, created_at
FROM tracker_assignments WHERE shipment_id = :shipment_id ORDER BY starts_at, id;

-- name: get_eta(shipment_id)^
SELECT shipment_id, computed_at, at_risk, estimate FROM shipment_etas WHERE shipment_id = :shipment_id;

-- name: upsert_eta(shipment_id, computed_at, at_risk, estimate)!
INSERT INTO shipment_etas (shipment_id, computed_at, at_risk, estimate)
VALUES (:shipment_id, :computed_at, :at_risk, :estimate)
ON CONFLICT (shipment_id) DO UPDATE
SET computed_at = excluded.computed_at, at_risk = excluded.at_risk, estimate = excluded.estimate;
