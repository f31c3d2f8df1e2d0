-- Alarms reach people: each user's email preferences (which kinds, for which shipments, at once or in a daily
-- digest, quiet hours, time zone), the shipments a user follows, an organisation's escalation chain and the steps
-- it has walked, and the email outbox with its attempt log.

-- A user without a row gets no email (nobody is mailed before saying so); a chain step names its person directly.
CREATE TABLE notification_preferences (
    user_id      BIGINT PRIMARY KEY REFERENCES users (id),
    shipments    TEXT NOT NULL CHECK (shipments IN ('all', 'followed')),
    cadence      TEXT NOT NULL CHECK (cadence IN ('immediate', 'digest')),
    digest_hour  SMALLINT NOT NULL CHECK (digest_hour BETWEEN 0 AND 23),  -- local hour of the daily digest
    time_zone    TEXT NOT NULL,                                          -- IANA name: times in messages, hours
    quiet_start  TEXT,                                                   -- local 'HH:MM', both or neither
    quiet_end    TEXT,
    updated_at   TIMESTAMPTZ NOT NULL,
    last_digest_on DATE,                                              -- the user's local day of the last digest
    last_digest_at TIMESTAMPTZ,                                                 -- made then (even with nothing to tell)
    CHECK ((quiet_start IS NULL) = (quiet_end IS NULL))
);

CREATE TABLE notification_preference_kinds (
    user_id BIGINT NOT NULL REFERENCES notification_preferences (user_id),
    kind    TEXT NOT NULL,
    PRIMARY KEY (user_id, kind)
);

CREATE TABLE shipment_follows (
    user_id     BIGINT NOT NULL REFERENCES users (id),
    shipment_id BIGINT NOT NULL REFERENCES shipments (id),
    followed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, shipment_id)
);

CREATE INDEX shipment_follows_by_shipment ON shipment_follows (shipment_id, user_id);

-- Who is told, person by person, when an alarm of a shipment the organisation takes part in stays unacknowledged.
-- saved_at: a step whose time (the alarm's detection plus its delay) came before the chain was saved is not sent.
CREATE TABLE escalation_chains (
    organisation_id BIGINT PRIMARY KEY REFERENCES organisations (id),
    saved_at        TIMESTAMPTZ NOT NULL,
    saved_by        TEXT NOT NULL
);

CREATE TABLE escalation_steps (
    organisation_id BIGINT NOT NULL REFERENCES escalation_chains (organisation_id),
    step_no         INTEGER NOT NULL CHECK (step_no >= 1),
    user_id         BIGINT NOT NULL REFERENCES users (id),
    delay_min       INTEGER NOT NULL CHECK (delay_min >= 1),
    PRIMARY KEY (organisation_id, step_no)
);

-- Each step walked, once per alarm and organisation: the key is what makes a step never sent twice.
CREATE TABLE escalation_notices (
    alarm_id        BIGINT NOT NULL REFERENCES alarms (id),
    organisation_id BIGINT NOT NULL REFERENCES organisations (id),
    step_no         INTEGER NOT NULL,
    user_id         BIGINT NOT NULL REFERENCES users (id),
    delay_min       INTEGER NOT NULL,
    notified_at     TIMESTAMPTZ NOT NULL,
    notification_id BIGINT REFERENCES notifications (id),
    PRIMARY KEY (alarm_id, organisation_id, step_no)
);

-- The email outbox. A row per notification and address (UNIQUE: never twice), or a digest per user and local
-- day (UNIQUE: never twice a day). A notification waiting for its user's digest is 'waiting_digest', then
-- 'in_digest' with the digest that carried it. While an attempt is under way next_attempt_at is its lease.
CREATE TABLE emails (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         BIGINT NOT NULL REFERENCES users (id),
    address         TEXT NOT NULL,
    notification_id BIGINT REFERENCES notifications (id),
    digest_on       DATE,
    digest_id       BIGINT REFERENCES emails (id),
    digest_since    TIMESTAMPTZ,                 -- a digest tells what happened after this (the previous digest)
    status          TEXT NOT NULL
        CHECK (status IN ('pending', 'waiting_digest', 'in_digest', 'sent', 'failed', 'cancelled')),
    held_until      TIMESTAMPTZ,                 -- held back by quiet hours until then
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ,
    last_reply      TEXT,
    last_error      TEXT,
    sent_at         TIMESTAMPTZ,
    created_at      TIMESTAMPTZ NOT NULL,
    CHECK ((notification_id IS NULL) <> (digest_on IS NULL)),
    UNIQUE (notification_id, address),
    UNIQUE (user_id, digest_on)
);

CREATE INDEX emails_due ON emails (next_attempt_at) WHERE status = 'pending';
CREATE INDEX emails_waiting_digest ON emails (user_id) WHERE status = 'waiting_digest';
CREATE INDEX emails_of_digest ON emails (digest_id) WHERE digest_id IS NOT NULL;
CREATE INDEX emails_by_user ON emails (user_id, id);

-- Every attempt, written when it starts; one without a duration never reported back (its process stopped).
CREATE TABLE email_attempts (
    email_id    BIGINT NOT NULL REFERENCES emails (id),
    attempt     INTEGER NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL,
    worker      TEXT NOT NULL,
    duration_ms DOUBLE PRECISION,
    reply_code  INTEGER,
    error       TEXT,
    PRIMARY KEY (email_id, attempt)
);

-- How far the planner has read the notifications, by position (commit order): one row.
CREATE TABLE email_cursor (
    id       SMALLINT PRIMARY KEY CHECK (id = 1),
    position BIGINT NOT NULL
);

CREATE INDEX notifications_in_commit_order ON notifications (position);
