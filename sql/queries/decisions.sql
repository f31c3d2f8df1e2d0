-- Pharmacists' decisions, their signatures, and what the worklist and the signing rules read.

-- name: insert_decision(shipment_id, seq, organisation_id, outcome, reason, comment, recommendation, snapshot_sha256, snapshot, record_sha256, requires_approval, created_at)$
INSERT INTO decisions (shipment_id, seq, organisation_id, outcome, reason, comment, recommendation, snapshot_sha256,
                       snapshot, record_sha256, requires_approval, created_at)
VALUES (:shipment_id, :seq, :organisation_id, :outcome, :reason, :comment, :recommendation, :snapshot_sha256,
        :snapshot, :record_sha256, :requires_approval, :created_at)
RETURNING id;

-- name: insert_decision_signature(decision_id, role, user_id, name, email, meaning, signed_at, record_sha256)!
INSERT INTO decision_signatures (decision_id, role, user_id, name, email, meaning, signed_at, record_sha256)
VALUES (:decision_id, :role, :user_id, :name, :email, :meaning, :signed_at, :record_sha256);

-- name: decisions_of_shipment(shipment_id)
SELECT id, shipment_id, seq, organisation_id, outcome, reason, comment, recommendation, snapshot_sha256, snapshot,
       record_sha256, requires_approval, created_at, evaluation_changed_at, evaluation_changed_sha256
FROM decisions WHERE shipment_id = :shipment_id ORDER BY seq;

-- name: signatures_of_shipment(shipment_id)
SELECT s.decision_id, s.role, s.user_id, s.name, s.email, s.meaning, s.signed_at, s.record_sha256
FROM decision_signatures s JOIN decisions d ON d.id = s.decision_id
WHERE d.shipment_id = :shipment_id
ORDER BY s.decision_id, s.signed_at, s.role;

-- name: mark_decision_changed(id, at, sha256)!
UPDATE decisions SET evaluation_changed_at = :at, evaluation_changed_sha256 = :sha256
WHERE id = :id AND evaluation_changed_at IS NULL;

-- name: decided_shipments_of_tracker(tracker_id, earliest, latest)
-- Shipments whose latest decision is still unmarked and that the tracker watched within [earliest, latest].
SELECT DISTINCT a.shipment_id
FROM tracker_assignments a
JOIN decisions d ON d.shipment_id = a.shipment_id
WHERE a.tracker_id = :tracker_id
  AND a.starts_at <= :latest AND (a.ends_at IS NULL OR a.ends_at > :earliest)
  AND d.evaluation_changed_at IS NULL
  AND d.seq = (SELECT max(seq) FROM decisions WHERE shipment_id = a.shipment_id)
ORDER BY a.shipment_id;

-- name: decidable_shipments(party)
-- Delivered or closed shipments the party takes part in (all, for NULL), with when they were last changed.
SELECT DISTINCT s.id, s.updated_at
FROM shipments s
LEFT JOIN shipment_legs l ON l.shipment_id = s.id
WHERE s.status IN ('delivered', 'closed')
  AND (CAST(:party AS BIGINT) IS NULL OR s.organisation_id = :party OR s.receiver_id = :party
       OR l.carrier_id = :party)
ORDER BY s.id;

-- name: get_release_policy(id)$
SELECT release_needs_approval FROM organisations WHERE id = :id;

-- name: set_release_policy(id, required)!
UPDATE organisations SET release_needs_approval = :required WHERE id = :id;

-- name: mark_session_signed(id_sha256, now)!
UPDATE sessions SET signed_at = :now WHERE id_sha256 = :id_sha256 AND signed_at IS NULL;

-- name: session_signed_at(id_sha256)^
SELECT signed_at FROM sessions WHERE id_sha256 = :id_sha256;
