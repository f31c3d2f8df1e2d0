-- People of an organisation (portal users), their server-side sessions, and failed logins (for lock-outs).

CREATE TABLE users (
    id              INTEGER PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id),
    role            TEXT NOT NULL CHECK (role IN ('admin', 'logistics', 'pharmacist', 'carrier', 'auditor')),
    name            TEXT NOT NULL,
    email           TEXT NOT NULL UNIQUE,  -- stored lower-case: one account per address across the service
    password_hash   TEXT NOT NULL,         -- argon2id, PHC string
    disabled_at     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE INDEX users_by_organisation ON users (organisation_id, id);

-- The cookie carries 256 random bits; only their SHA-256 is stored, so a copy of this table opens no session.
CREATE TABLE sessions (
    id_sha256    TEXT PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users (id),
    csrf_token   TEXT NOT NULL,
    client       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    expires_at   TEXT NOT NULL,  -- the absolute lifetime's end
    ended_at     TEXT
);

CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE login_failures (
    id      INTEGER PRIMARY KEY,
    email   TEXT NOT NULL,
    client  TEXT NOT NULL,
    at      TEXT NOT NULL
);

CREATE INDEX login_failures_by_email ON login_failures (email, at);
CREATE INDEX login_failures_by_client ON login_failures (client, at);
