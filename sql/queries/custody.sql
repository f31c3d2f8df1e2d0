-- Chain of custody: events (hash-chained per shipment), the chain heads, hand-over proposals.

-- name: custody_events(shipment_id)
SELECT shipment_id, seq, kind, party_id, counterparty_id, place_name, place_lat, place_lon, occurred_at,
       recorded_at, signers, note, prev_hash, hash
FROM custody_events WHERE shipment_id = :shipment_id ORDER BY seq;

-- name: custody_head(shipment_id)^
SELECT seq, hash FROM custody_heads WHERE shipment_id = :shipment_id;

-- name: insert_custody_event(shipment_id, seq, kind, party_id, counterparty_id, place_name, place_lat, place_lon, occurred_at, recorded_at, signers, note, prev_hash, hash)$
INSERT INTO custody_events (shipment_id, seq, kind, party_id, counterparty_id, place_name, place_lat, place_lon,
                            occurred_at, recorded_at, signers, note, prev_hash, hash)
VALUES (:shipment_id, :seq, :kind, :party_id, :counterparty_id, :place_name, :place_lat, :place_lon,
        :occurred_at, :recorded_at, :signers, :note, :prev_hash, :hash)
ON CONFLICT (shipment_id, seq) DO NOTHING
RETURNING seq;

-- name: save_custody_head(shipment_id, seq, hash)!
INSERT INTO custody_heads (shipment_id, seq, hash) VALUES (:shipment_id, :seq, :hash)
ON CONFLICT (shipment_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash;

-- name: arrival_watch(tracker_id)
-- The tracker's assignments to in-transit shipments whose arrival is not recorded yet: one query per batch.
SELECT a.shipment_id, a.starts_at, a.ends_at, s.destination_name, s.destination_lat, s.destination_lon,
       s.geofence_m
FROM tracker_assignments a JOIN shipments s ON s.id = a.shipment_id
WHERE a.tracker_id = :tracker_id AND s.status = 'in_transit'
  AND NOT EXISTS (SELECT 1 FROM custody_events e WHERE e.shipment_id = a.shipment_id AND e.kind = 'arrived')
ORDER BY a.starts_at;

-- name: insert_handover(shipment_id, from_id, to_id, place_name, place_lat, place_lon, occurred_at, note, proposer_token_id, proposer_user_id, proposer_name, proposer_email, proposed_at)$
INSERT INTO custody_handovers (shipment_id, from_id, to_id, place_name, place_lat, place_lon, occurred_at, note,
                               proposer_token_id, proposer_user_id, proposer_name, proposer_email, proposed_at)
VALUES (:shipment_id, :from_id, :to_id, :place_name, :place_lat, :place_lon, :occurred_at, :note,
        :proposer_token_id, :proposer_user_id, :proposer_name, :proposer_email, :proposed_at)
RETURNING id;

-- name: get_handover(shipment_id, id)^
SELECT id, shipment_id, from_id, to_id, place_name, place_lat, place_lon, occurred_at, note, proposer_token_id,
       proposer_user_id, proposer_name, proposer_email, proposed_at, acceptor_token_id, acceptor_user_id,
       acceptor_name, acceptor_email, accepted_at, event_seq
FROM custody_handovers WHERE shipment_id = :shipment_id AND id = :id;

-- name: pending_handovers(shipment_id)
SELECT id, shipment_id, from_id, to_id, place_name, place_lat, place_lon, occurred_at, note, proposer_token_id,
       proposer_user_id, proposer_name, proposer_email, proposed_at, acceptor_token_id, acceptor_user_id,
       acceptor_name, acceptor_email, accepted_at, event_seq
FROM custody_handovers WHERE shipment_id = :shipment_id AND accepted_at IS NULL ORDER BY id;

-- name: accept_handover(id, acceptor_token_id, acceptor_user_id, acceptor_name, acceptor_email, accepted_at, event_seq)$
UPDATE custody_handovers
SET acceptor_token_id = :acceptor_token_id, acceptor_user_id = :acceptor_user_id, acceptor_name = :acceptor_name,
    acceptor_email = :acceptor_email, accepted_at = :accepted_at, event_seq = :event_seq
WHERE id = :id AND accepted_at IS NULL
RETURNING id;
