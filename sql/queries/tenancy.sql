-- Organisations and their API tokens.

-- name: list_organisations()
SELECT id, name, kind, created_at FROM organisations ORDER BY id;

-- name: insert_api_token(organisation_id, role, name, token_sha256, created_at)^
INSERT INTO api_tokens (organisation_id, role, name, token_sha256, created_at)
VALUES (:organisation_id, :role, :name, :token_sha256, :created_at)
RETURNING id, organisation_id, role, name, created_at, revoked_at;

-- name: api_token_by_sha256(token_sha256)^
SELECT id, organisation_id, role, name, created_at, revoked_at FROM api_tokens WHERE token_sha256 = :token_sha256;

-- name: api_tokens_of_organisation(organisation_id)
SELECT id, organisation_id, role, name, created_at, revoked_at
FROM api_tokens WHERE organisation_id = :organisation_id ORDER BY id;

-- name: revoke_api_token(id, organisation_id, revoked_at)^
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, :revoked_at)
WHERE id = :id AND organisation_id = :organisation_id
RETURNING id, organisation_id, role, name, created_at, revoked_at;

-- name: get_tracker_by_id(id)^
SELECT id, organisation_id, serial, model, secret, protocol, device_id, created_at, calibration_due_on
FROM trackers WHERE id = :id;

-- name: trackers_of_organisation(organisation_id)
SELECT id FROM trackers WHERE organisation_id = :organisation_id ORDER BY serial;
