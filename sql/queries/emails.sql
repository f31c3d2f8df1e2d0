-- Email notifications: people's preferences, the shipments they follow, escalation chains and the steps walked,
-- and the email outbox with its attempts.

-- name: get_preferences(user_id)^
SELECT user_id, shipments, cadence, digest_hour, time_zone, quiet_start, quiet_end, updated_at
FROM notification_preferences WHERE user_id = :user_id;

-- name: preference_kinds(user_id)
SELECT kind FROM notification_preference_kinds WHERE user_id = :user_id ORDER BY kind;

-- name: upsert_preferences(user_id, shipments, cadence, digest_hour, time_zone, quiet_start, quiet_end, updated_at)!
INSERT INTO notification_preferences (user_id, shipments, cadence, digest_hour, time_zone, quiet_start, quiet_end,
                                      updated_at)
VALUES (:user_id, :shipments, :cadence, :digest_hour, :time_zone, :quiet_start, :quiet_end, :updated_at)
ON CONFLICT (user_id) DO UPDATE SET
    shipments = excluded.shipments, cadence = excluded.cadence, digest_hour = excluded.digest_hour,
    time_zone = excluded.time_zone, quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end,
    updated_at = excluded.updated_at;

-- name: delete_preference_kinds(user_id)!
DELETE FROM notification_preference_kinds WHERE user_id = :user_id;

-- name: insert_preference_kind(user_id, kind)!
INSERT INTO notification_preference_kinds (user_id, kind) VALUES (:user_id, :kind) ON CONFLICT DO NOTHING;

-- name: preferences_of_organisation(organisation_id)
SELECT p.user_id, p.shipments, p.cadence, p.digest_hour, p.time_zone, p.quiet_start, p.quiet_end, p.updated_at
FROM notification_preferences p JOIN users u ON u.id = p.user_id
WHERE u.organisation_id = :organisation_id ORDER BY p.user_id;

-- name: preference_kinds_of_organisation(organisation_id)
SELECT k.user_id, k.kind
FROM notification_preference_kinds k JOIN users u ON u.id = k.user_id
WHERE u.organisation_id = :organisation_id ORDER BY k.user_id, k.kind;

-- Active users who chose a daily digest, with the local day of their last one.
-- name: digest_candidates()
SELECT p.user_id, p.last_digest_on
FROM notification_preferences p JOIN users u ON u.id = p.user_id
WHERE u.disabled_at IS NULL AND p.cadence = 'digest'
ORDER BY p.user_id;

-- Once a day per user: only the first transaction to record the day changes the row.
-- name: mark_digest_day(user_id, day, now)^
UPDATE notification_preferences SET last_digest_on = :day, last_digest_at = :now
WHERE user_id = :user_id AND (last_digest_on IS NULL OR last_digest_on < :day)
RETURNING user_id;

-- name: last_digest_at(user_id)$
SELECT last_digest_at FROM notification_preferences WHERE user_id = :user_id;

-- name: insert_follow(user_id, shipment_id, followed_at)^
INSERT INTO shipment_follows (user_id, shipment_id, followed_at) VALUES (:user_id, :shipment_id, :followed_at)
ON CONFLICT DO NOTHING
RETURNING shipment_id;

-- name: delete_follow(user_id, shipment_id)^
DELETE FROM shipment_follows WHERE user_id = :user_id AND shipment_id = :shipment_id RETURNING shipment_id;

-- name: followed_shipments(user_id)
SELECT shipment_id FROM shipment_follows WHERE user_id = :user_id ORDER BY shipment_id;

-- name: followers_of_shipment(shipment_id)
SELECT user_id FROM shipment_follows WHERE shipment_id = :shipment_id ORDER BY user_id;

-- name: get_chain(organisation_id)^
SELECT organisation_id, saved_at, saved_by FROM escalation_chains WHERE organisation_id = :organisation_id;

-- name: chain_steps(organisation_id)
SELECT step_no, user_id, delay_min FROM escalation_steps WHERE organisation_id = :organisation_id ORDER BY step_no;

-- name: upsert_chain(organisation_id, saved_at, saved_by)!
INSERT INTO escalation_chains (organisation_id, saved_at, saved_by) VALUES (:organisation_id, :saved_at, :saved_by)
ON CONFLICT (organisation_id) DO UPDATE SET saved_at = excluded.saved_at, saved_by = excluded.saved_by;

-- name: delete_chain_steps(organisation_id)!
DELETE FROM escalation_steps WHERE organisation_id = :organisation_id;

-- name: insert_chain_step(organisation_id, step_no, user_id, delay_min)!
INSERT INTO escalation_steps (organisation_id, step_no, user_id, delay_min)
VALUES (:organisation_id, :step_no, :user_id, :delay_min);

-- name: organisations_with_chains()
SELECT DISTINCT organisation_id FROM escalation_steps ORDER BY organisation_id;

-- Standing, unacknowledged alarms of the shipments a party takes part in, detected at or after :since.
-- name: open_alarms_of_party(party, since)
SELECT a.id, a.shipment_id, a.detected_at
FROM alarms a JOIN shipments s ON s.id = a.shipment_id
WHERE a.acknowledged_at IS NULL AND a.withdrawn_at IS NULL AND a.detected_at >= :since
  AND (s.organisation_id = :party OR s.receiver_id = :party
       OR EXISTS (SELECT 1 FROM shipment_legs g WHERE g.shipment_id = s.id AND g.carrier_id = :party))
ORDER BY a.detected_at, a.id;

-- name: insert_escalation_notice(alarm_id, organisation_id, step_no, user_id, delay_min, notified_at)^
INSERT INTO escalation_notices (alarm_id, organisation_id, step_no, user_id, delay_min, notified_at)
VALUES (:alarm_id, :organisation_id, :step_no, :user_id, :delay_min, :notified_at)
ON CONFLICT DO NOTHING
RETURNING alarm_id;

-- name: set_escalation_notification(alarm_id, organisation_id, step_no, notification_id)!
UPDATE escalation_notices SET notification_id = :notification_id
WHERE alarm_id = :alarm_id AND organisation_id = :organisation_id AND step_no = :step_no;

-- name: escalation_notices_of_alarm(alarm_id)
SELECT alarm_id, organisation_id, step_no, user_id, delay_min, notified_at, notification_id
FROM escalation_notices WHERE alarm_id = :alarm_id ORDER BY organisation_id, step_no;

-- name: get_email_cursor()$
SELECT position FROM email_cursor WHERE id = 1;

-- name: set_email_cursor(position)!
INSERT INTO email_cursor (id, position) VALUES (1, :position)
ON CONFLICT (id) DO UPDATE SET position = excluded.position;

-- name: max_notification_position()$
SELECT COALESCE(MAX(position), 0) FROM notifications;

-- Every organisation's committed notifications after :after_position, in commit order.
-- name: notifications_in_commit_order(after_position, limit)
SELECT id, organisation_id, kind, shipment_id, subject, payload, created_at, position
FROM notifications WHERE position > :after_position ORDER BY position LIMIT :limit;

-- name: insert_email(user_id, address, notification_id, status, next_attempt_at, held_until, created_at)^
INSERT INTO emails (user_id, address, notification_id, status, next_attempt_at, held_until, created_at)
VALUES (:user_id, :address, :notification_id, :status, :next_attempt_at, :held_until, :created_at)
ON CONFLICT DO NOTHING
RETURNING id;

-- name: insert_digest(user_id, address, digest_on, digest_since, created_at)^
INSERT INTO emails (user_id, address, digest_on, digest_since, status, next_attempt_at, created_at)
VALUES (:user_id, :address, :digest_on, :digest_since, 'pending', :created_at, :created_at)
ON CONFLICT DO NOTHING
RETURNING id;

-- name: gather_into_digest(user_id, digest_id)!
UPDATE emails SET status = 'in_digest', digest_id = :digest_id, next_attempt_at = NULL
WHERE user_id = :user_id AND status = 'waiting_digest';

-- name: waiting_for_digest(user_id)$
SELECT count(*) FROM emails WHERE user_id = :user_id AND status = 'waiting_digest';

-- name: digest_since(id)$
SELECT digest_since FROM emails WHERE id = :id;

-- A user back from digests to immediate emails: what waited goes out one by one.
-- name: release_waiting_digest(user_id, now)!
UPDATE emails SET status = 'pending', next_attempt_at = :now WHERE user_id = :user_id AND status = 'waiting_digest';

-- name: due_emails(now, limit)
SELECT id, attempts, user_id, address, notification_id, digest_on, created_at
FROM emails WHERE status = 'pending' AND next_attempt_at <= :now
ORDER BY next_attempt_at, id
LIMIT :limit;

-- name: lease_email(id, attempts, lease_until)!
UPDATE emails SET attempts = :attempts, next_attempt_at = :lease_until WHERE id = :id;

-- name: insert_email_attempt(email_id, attempt, started_at, worker)!
INSERT INTO email_attempts (email_id, attempt, started_at, worker) VALUES (:email_id, :attempt, :started_at, :worker);

-- name: get_notification(id)^
SELECT id, organisation_id, kind, shipment_id, subject, payload, created_at, position FROM notifications WHERE id = :id;

-- name: notifications_of_digest(digest_id)
SELECT n.id, n.organisation_id, n.kind, n.shipment_id, n.subject, n.payload, n.created_at, n.position
FROM emails e JOIN notifications n ON n.id = e.notification_id
WHERE e.digest_id = :digest_id ORDER BY n.position, n.id;

-- name: finish_email_attempt(email_id, attempt, duration_ms, reply_code, error)!
UPDATE email_attempts SET duration_ms = :duration_ms, reply_code = :reply_code, error = :error
WHERE email_id = :email_id AND attempt = :attempt;

-- A late result (its lease ran out and another attempt began) is logged with its attempt but settles nothing.
-- name: settle_email(id, attempts, status, next_attempt_at, last_reply, last_error, sent_at)!
UPDATE emails
SET status = :status, next_attempt_at = :next_attempt_at, last_reply = :last_reply, last_error = :last_error,
    sent_at = :sent_at
WHERE id = :id AND attempts = :attempts AND status = 'pending';

-- name: emails_of_organisation(organisation_id, limit)
SELECT e.id, e.user_id, e.address, e.notification_id, n.kind, e.digest_on, e.digest_id, e.status, e.held_until,
       e.attempts, e.next_attempt_at, e.last_reply, e.last_error, e.sent_at, e.created_at
FROM emails e JOIN users u ON u.id = e.user_id LEFT JOIN notifications n ON n.id = e.notification_id
WHERE u.organisation_id = :organisation_id
ORDER BY e.id DESC
LIMIT :limit;

-- name: emails_of_user(user_id, limit)
SELECT e.id, e.user_id, e.address, e.notification_id, n.kind, e.digest_on, e.digest_id, e.status, e.held_until,
       e.attempts, e.next_attempt_at, e.last_reply, e.last_error, e.sent_at, e.created_at
FROM emails e LEFT JOIN notifications n ON n.id = e.notification_id
WHERE e.user_id = :user_id
ORDER BY e.id DESC
LIMIT :limit;

-- name: attempts_of_emails(from_id, to_id, organisation_id)
SELECT a.email_id, a.attempt, a.started_at, a.worker, a.duration_ms, a.reply_code, a.error
FROM email_attempts a JOIN emails e ON e.id = a.email_id JOIN users u ON u.id = e.user_id
WHERE a.email_id BETWEEN :from_id AND :to_id AND u.organisation_id = :organisation_id
ORDER BY a.email_id, a.attempt;
