-- Notifications (outbox), webhooks and their deliveries, job runs.

-- name: insert_notification(organisation_id, kind, shipment_id, subject, payload, created_at)$
INSERT INTO notifications (organisation_id, kind, shipment_id, subject, payload, created_at)
VALUES (:organisation_id, :kind, :shipment_id, :subject, :payload, :created_at)
RETURNING id;

-- name: notifications_after(organisation_id, after_id, limit)
SELECT id, organisation_id, kind, shipment_id, subject, payload, created_at
FROM notifications WHERE organisation_id = :organisation_id AND id > :after_id ORDER BY id LIMIT :limit;
