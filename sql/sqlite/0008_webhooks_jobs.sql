-- Webhooks and their delivery log, job runs, silence markers, and commit-ordered positions of notifications.

-- A notification's position is its place in commit order, so a reader that has seen position N has seen every
-- notification committed before it. SQLite has one writer at a time (BEGIN IMMEDIATE holds the write lock until
-- COMMIT), so ids are already in commit order and the position is the id.
ALTER TABLE notifications ADD COLUMN position INTEGER;
UPDATE notifications SET position = id;
CREATE INDEX notifications_by_position ON notifications (organisation_id, position);

CREATE TRIGGER notification_position AFTER INSERT ON notifications
BEGIN
    UPDATE notifications SET position = NEW.id WHERE id = NEW.id;
END;

-- A webhook: where an organisation wants some kinds of its notifications POSTed. Deleting one keeps its row
-- and its delivery log (deleted_at); nothing is sent to it any more.
CREATE TABLE webhooks (
    id              INTEGER PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id),
    url             TEXT NOT NULL,
    secret          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    deleted_at      TEXT
);

CREATE INDEX webhooks_by_organisation ON webhooks (organisation_id, id);

CREATE TABLE webhook_kinds (
    webhook_id INTEGER NOT NULL REFERENCES webhooks (id),
    kind       TEXT NOT NULL,
    PRIMARY KEY (webhook_id, kind)
);

CREATE INDEX webhook_kinds_by_kind ON webhook_kinds (kind, webhook_id);

-- One delivery per webhook and notification, made in the transaction that publishes the notification.
-- While an attempt is under way, next_attempt_at is its lease: another process takes the delivery only after it.
CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY,
    webhook_id       INTEGER NOT NULL REFERENCES webhooks (id),
    notification_id  INTEGER NOT NULL REFERENCES notifications (id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT,
    last_status_code INTEGER,
    last_error       TEXT,
    delivered_at     TEXT,
    created_at       TEXT NOT NULL,
    UNIQUE (webhook_id, notification_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- Every attempt, written when it starts; an attempt without a duration never reported back (its process died).
CREATE TABLE webhook_attempts (
    delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries (id),
    attempt     INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    worker      TEXT NOT NULL,
    duration_ms REAL,
    status_code INTEGER,
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt)
);

-- One row per job and tick (the job's fire time on its interval grid), inserted by the one process that runs it.
CREATE TABLE job_runs (
    job         TEXT NOT NULL,
    tick        TEXT NOT NULL,
    worker      TEXT NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    error       TEXT,
    PRIMARY KEY (job, tick)
);

-- One row per silence of a tracker on duty: the tracker and the time it has been silent since.
CREATE TABLE tracker_silences (
    tracker_id   INTEGER NOT NULL REFERENCES trackers (id),
    silent_since TEXT NOT NULL,
    noticed_at   TEXT NOT NULL,
    PRIMARY KEY (tracker_id, silent_since)
);
