-- People of organisations, their sessions and failed sign-ins.

-- name: insert_user(organisation_id, role, name, email, password_hash, created_at)^
INSERT INTO users (organisation_id, role, name, email, password_hash, created_at, updated_at)
VALUES (:organisation_id, :role, :name, :email, :password_hash, :created_at, :created_at)
ON CONFLICT (email) DO NOTHING
RETURNING id, organisation_id, role, name, email, password_hash, disabled_at, created_at;

-- name: get_user(id)^
SELECT id, organisation_id, role, name, email, password_hash, disabled_at, created_at FROM users WHERE id = :id;

-- name: user_by_email(email)^
SELECT id, organisation_id, role, name, email, password_hash, disabled_at, created_at
FROM users WHERE email = :email;

-- name: users_of_organisation(organisation_id)
SELECT id, organisation_id, role, name, email, password_hash, disabled_at, created_at
FROM users WHERE organisation_id = :organisation_id ORDER BY id;

-- name: set_user_disabled(id, disabled_at, now)^
UPDATE users SET disabled_at = :disabled_at, updated_at = :now WHERE id = :id
RETURNING id, organisation_id, role, name, email, password_hash, disabled_at, created_at;

-- name: set_user_password(id, password_hash, now)^
UPDATE users SET password_hash = :password_hash, updated_at = :now WHERE id = :id
RETURNING id, organisation_id, role, name, email, password_hash, disabled_at, created_at;

-- name: insert_session(id_sha256, user_id, csrf_token, client, created_at, expires_at)!
INSERT INTO sessions (id_sha256, user_id, csrf_token, client, created_at, last_seen_at, expires_at)
VALUES (:id_sha256, :user_id, :csrf_token, :client, :created_at, :created_at, :expires_at);

-- name: get_session(id_sha256)^
SELECT id_sha256, user_id, csrf_token, client, created_at, last_seen_at, expires_at, ended_at
FROM sessions WHERE id_sha256 = :id_sha256;

-- name: touch_session(id_sha256, now)!
UPDATE sessions SET last_seen_at = :now WHERE id_sha256 = :id_sha256 AND ended_at IS NULL;

-- name: end_session(id_sha256, now)!
UPDATE sessions SET ended_at = :now WHERE id_sha256 = :id_sha256 AND ended_at IS NULL;

-- name: end_sessions_of_user(user_id, now)!
UPDATE sessions SET ended_at = :now WHERE user_id = :user_id AND ended_at IS NULL;

-- name: insert_login_failure(email, client, at)!
INSERT INTO login_failures (email, client, at) VALUES (:email, :client, :at);

-- name: login_failures_of_email(email, since)$
SELECT count(*) FROM login_failures WHERE email = :email AND at >= :since;

-- name: login_failures_of_client(client, since)$
SELECT count(*) FROM login_failures WHERE client = :client AND at >= :since;

-- name: forget_sessions_ended_before(before, idle_before)
-- Sessions that ended before :before: signed out (or ended by an admin), past their lifetime, or idle since
-- :idle_before (their last request was more than the idle timeout before :before).
DELETE FROM sessions WHERE ended_at < :before OR expires_at < :before OR last_seen_at < :idle_before
RETURNING id_sha256;

-- name: forget_login_failures_before(before)!
DELETE FROM login_failures WHERE at < :before;

-- name: clear_login_failures(email)!
DELETE FROM login_failures WHERE email = :email;
