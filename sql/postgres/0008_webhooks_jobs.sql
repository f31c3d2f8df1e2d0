-- Webhooks and their delivery log, job runs, silence markers, and commit-ordered positions of notifications.

-- A notification's position is handed out when its transaction commits, in commit order: a reader that has seen
-- position N has seen every notification committed before it. (Identity ids are handed out at insert, and a
-- transaction holding a lower id can commit after one holding a higher id: a reader going by ids could skip it.)
-- The deferred trigger runs at commit and holds one lock from taking the number until the commit is visible;
-- it waits on nothing else, so it cannot deadlock with the locks a use case takes.
ALTER TABLE notifications ADD COLUMN position BIGINT;
UPDATE notifications SET position = id;
CREATE SEQUENCE notification_positions;
SELECT setval('notification_positions', COALESCE((SELECT max(id) FROM notifications), 0) + 1, false);
CREATE INDEX notifications_by_position ON notifications (organisation_id, position);

CREATE FUNCTION notification_position() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('coldchain'), hashtext('notification_positions'));
    UPDATE notifications SET position = nextval('notification_positions') WHERE id = NEW.id;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER notification_position AFTER INSERT ON notifications
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION notification_position();

-- A webhook: where an organisation wants some kinds of its notifications POSTed. Deleting one keeps its row
-- and its delivery log (deleted_at); nothing is sent to it any more.
CREATE TABLE webhooks (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    url             TEXT NOT NULL,
    secret          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    deleted_at      TIMESTAMPTZ
);

CREATE INDEX webhooks_by_organisation ON webhooks (organisation_id, id);

CREATE TABLE webhook_kinds (
    webhook_id BIGINT NOT NULL REFERENCES webhooks (id),
    kind       TEXT NOT NULL,
    PRIMARY KEY (webhook_id, kind)
);

CREATE INDEX webhook_kinds_by_kind ON webhook_kinds (kind, webhook_id);

-- One delivery per webhook and notification, made in the transaction that publishes the notification.
-- While an attempt is under way, next_attempt_at is its lease: another process takes the delivery only after it.
CREATE TABLE webhook_deliveries (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id       BIGINT NOT NULL REFERENCES webhooks (id),
    notification_id  BIGINT NOT NULL REFERENCES notifications (id),
    status           TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ,
    last_status_code INTEGER,
    last_error       TEXT,
    delivered_at     TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL,
    UNIQUE (webhook_id, notification_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

-- Every attempt, written when it starts; an attempt without a duration never reported back (its process died).
CREATE TABLE webhook_attempts (
    delivery_id BIGINT NOT NULL REFERENCES webhook_deliveries (id),
    attempt     INTEGER NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    worker      TEXT NOT NULL,
    duration_ms DOUBLE PRECISION,
    status_code INTEGER,
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt)
);

-- One row per job and tick (the job's fire time on its interval grid), inserted by the one process that runs it.
CREATE TABLE job_runs (
    job         TEXT NOT NULL,
    tick        TIMESTAMPTZ NOT NULL,
    worker      TEXT NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    error       TEXT,
    PRIMARY KEY (job, tick)
);

-- One row per silence of a tracker on duty: the tracker and the time it has been silent since.
CREATE TABLE tracker_silences (
    tracker_id   BIGINT NOT NULL REFERENCES trackers (id),
    silent_since TIMESTAMPTZ NOT NULL,
    noticed_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tracker_id, silent_since)
);
