-- Notifications (outbox), webhooks and their deliveries, job runs.

-- name: notifications_after(organisation_id, after_id, limit)
SELECT id, organisation_id, kind, shipment_id, subject, payload, created_at, position
FROM notifications WHERE organisation_id = :organisation_id AND id > :after_id ORDER BY id LIMIT :limit;

-- Positions are given at commit, in commit order (see 0008_webhooks_jobs.sql): an uncommitted row has none yet.
-- name: notifications_after_position(organisation_id, after_position, limit)
SELECT id, organisation_id, kind, shipment_id, subject, payload, created_at, position
FROM notifications WHERE organisation_id = :organisation_id AND position > :after_position
ORDER BY position LIMIT :limit;

-- name: last_notification_position(organisation_id)$
SELECT COALESCE(MAX(position), 0) FROM notifications WHERE organisation_id = :organisation_id;

-- Notifications and their webhook deliveries are inserted by each engine's own statements, a batch at a time
-- (coldchain/storage/postgres.py, sqlite.py): a webhook receives the notifications published after it was
-- created, its delivery made in the publishing transaction, so none is missed and none is made twice.

-- name: insert_webhook(organisation_id, url, secret, created_at)^
INSERT INTO webhooks (organisation_id, url, secret, created_at)
VALUES (:organisation_id, :url, :secret, :created_at)
RETURNING id, organisation_id, url, secret, created_at, deleted_at;

-- name: insert_webhook_kind(webhook_id, kind)!
INSERT INTO webhook_kinds (webhook_id, kind) VALUES (:webhook_id, :kind) ON CONFLICT DO NOTHING;

-- name: webhook_kinds(webhook_id)
SELECT kind FROM webhook_kinds WHERE webhook_id = :webhook_id ORDER BY kind;

-- name: webhooks_of_organisation(organisation_id)
SELECT id, organisation_id, url, secret, created_at, deleted_at
FROM webhooks WHERE organisation_id = :organisation_id AND deleted_at IS NULL ORDER BY id;

-- name: get_webhook(id)^
SELECT id, organisation_id, url, secret, created_at, deleted_at FROM webhooks WHERE id = :id AND deleted_at IS NULL;

-- name: delete_webhook(id, deleted_at)^
UPDATE webhooks SET deleted_at = :deleted_at WHERE id = :id AND deleted_at IS NULL
RETURNING id, organisation_id, url, secret, created_at, deleted_at;

-- name: abandon_deliveries_of_webhook(webhook_id, error)!
UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, last_error = :error
WHERE webhook_id = :webhook_id AND status = 'pending';

-- name: due_deliveries(now, limit)
SELECT d.id, d.attempts, w.url, w.secret,
       n.id AS notification_id, n.organisation_id, n.kind, n.shipment_id, n.subject, n.payload, n.created_at,
       n.position
FROM webhook_deliveries d
JOIN webhooks w ON w.id = d.webhook_id
JOIN notifications n ON n.id = d.notification_id
WHERE d.status = 'pending' AND d.next_attempt_at <= :now AND w.deleted_at IS NULL
ORDER BY d.next_attempt_at, d.id
LIMIT :limit;

-- name: lease_delivery(id, attempts, lease_until)!
UPDATE webhook_deliveries SET attempts = :attempts, next_attempt_at = :lease_until WHERE id = :id;

-- name: insert_webhook_attempt(delivery_id, attempt, started_at, worker)!
INSERT INTO webhook_attempts (delivery_id, attempt, started_at, worker)
VALUES (:delivery_id, :attempt, :started_at, :worker);

-- name: finish_webhook_attempt(delivery_id, attempt, duration_ms, status_code, error)!
UPDATE webhook_attempts SET duration_ms = :duration_ms, status_code = :status_code, error = :error
WHERE delivery_id = :delivery_id AND attempt = :attempt;

-- A late result (its lease ran out and another attempt began) is logged with its attempt but settles nothing.
-- name: settle_delivery(id, attempts, status, next_attempt_at, last_status_code, last_error, delivered_at)!
UPDATE webhook_deliveries
SET status = :status, next_attempt_at = :next_attempt_at, last_status_code = :last_status_code,
    last_error = :last_error, delivered_at = :delivered_at
WHERE id = :id AND attempts = :attempts AND status = 'pending';

-- name: deliveries_of_webhook(webhook_id, limit)
SELECT d.id, d.webhook_id, d.notification_id, n.kind, d.status, d.attempts, d.next_attempt_at,
       d.last_status_code, d.last_error, d.delivered_at, d.created_at
FROM webhook_deliveries d JOIN notifications n ON n.id = d.notification_id
WHERE d.webhook_id = :webhook_id
ORDER BY d.id DESC
LIMIT :limit;

-- name: attempts_of_webhook(webhook_id, from_delivery_id)
SELECT a.delivery_id, a.attempt, a.started_at, a.worker, a.duration_ms, a.status_code, a.error
FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
WHERE d.webhook_id = :webhook_id AND a.delivery_id >= :from_delivery_id
ORDER BY a.delivery_id, a.attempt;

-- name: insert_job_run(job, tick, worker, started_at)^
INSERT INTO job_runs (job, tick, worker, started_at) VALUES (:job, :tick, :worker, :started_at)
ON CONFLICT DO NOTHING
RETURNING job;

-- name: finish_job_run(job, tick, finished_at, error)!
UPDATE job_runs SET finished_at = :finished_at, error = :error WHERE job = :job AND tick = :tick;

-- name: forget_job_runs(job, before)!
DELETE FROM job_runs WHERE job = :job AND tick < :before;

-- name: job_runs(job)
SELECT job, tick, worker, started_at, finished_at, error FROM job_runs
WHERE CAST(:job AS TEXT) IS NULL OR job = :job
ORDER BY tick, job;

-- A tracker is on duty while an open assignment ties it to a shipment that has not yet arrived.
-- name: trackers_on_duty(at)
SELECT t.id AS tracker_id, t.serial, t.organisation_id, a.shipment_id, sh.organisation_id AS shipment_owner_id,
       a.starts_at, s.last_sync_at
FROM tracker_assignments a
JOIN trackers t ON t.id = a.tracker_id
JOIN tracker_sync_state s ON s.tracker_id = a.tracker_id
JOIN shipments sh ON sh.id = a.shipment_id
WHERE a.starts_at <= :at AND (a.ends_at IS NULL OR a.ends_at > :at) AND sh.status IN ('planned', 'in_transit')
ORDER BY t.id;

-- name: insert_tracker_silence(tracker_id, silent_since, noticed_at)^
INSERT INTO tracker_silences (tracker_id, silent_since, noticed_at) VALUES (:tracker_id, :silent_since, :noticed_at)
ON CONFLICT DO NOTHING
RETURNING tracker_id;
