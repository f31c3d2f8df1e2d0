-- Pharmacists' decisions on shipments and their electronic signatures (21 CFR Part 11), the calibration due date
-- of trackers, an organisation's rule for a second signature, and the first signing of a portal session.

ALTER TABLE trackers ADD COLUMN calibration_due_on DATE;
-- A release after an excursion takes effect only with a second pharmacist's QA approval.
ALTER TABLE organisations ADD COLUMN release_needs_approval BOOLEAN NOT NULL DEFAULT FALSE;
-- The first e-signature made in the session: later ones in the same session need the password only (§11.200).
ALTER TABLE sessions ADD COLUMN signed_at TIMESTAMPTZ;

-- A decision is never changed: a later one supersedes it (seq + 1). Only the mark that data arriving after the
-- signature changed the evaluation is set, once.
CREATE TABLE decisions (
    id                        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    shipment_id               BIGINT NOT NULL REFERENCES shipments (id),
    seq                       INTEGER NOT NULL CHECK (seq >= 1),
    organisation_id           BIGINT NOT NULL REFERENCES organisations (id),
    outcome                   TEXT NOT NULL CHECK (outcome IN ('release', 'quarantine', 'reject')),
    reason                    TEXT,
    comment                   TEXT,
    recommendation            TEXT NOT NULL CHECK (recommendation IN ('release', 'quarantine', 'reject')),
    snapshot_sha256           TEXT NOT NULL,
    snapshot                  TEXT NOT NULL,
    record_sha256             TEXT NOT NULL,
    requires_approval         BOOLEAN NOT NULL,
    created_at                TIMESTAMPTZ NOT NULL,
    evaluation_changed_at     TIMESTAMPTZ,
    evaluation_changed_sha256 TEXT,
    UNIQUE (shipment_id, seq)
);

CREATE TABLE decision_signatures (
    decision_id   BIGINT NOT NULL REFERENCES decisions (id),
    role          TEXT NOT NULL CHECK (role IN ('decision', 'approval')),
    user_id       BIGINT NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    email         TEXT NOT NULL,
    meaning       TEXT NOT NULL,
    signed_at     TIMESTAMPTZ NOT NULL,
    record_sha256 TEXT NOT NULL,
    PRIMARY KEY (decision_id, role)
);

CREATE FUNCTION decisions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'decisions are never deleted';
    END IF;
    IF OLD.evaluation_changed_at IS NOT NULL
        OR (to_jsonb(NEW) - 'evaluation_changed_at' - 'evaluation_changed_sha256')
           IS DISTINCT FROM (to_jsonb(OLD) - 'evaluation_changed_at' - 'evaluation_changed_sha256') THEN
        RAISE EXCEPTION 'a decision is never changed: record a new one';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER decisions_guard BEFORE UPDATE OR DELETE ON decisions
    FOR EACH ROW EXECUTE FUNCTION decisions_guard();
CREATE TRIGGER decisions_no_truncate BEFORE TRUNCATE ON decisions
    FOR EACH STATEMENT EXECUTE FUNCTION decisions_guard();

CREATE FUNCTION decision_signatures_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'signatures are append-only';
END;
$$;

CREATE TRIGGER decision_signatures_no_change BEFORE UPDATE OR DELETE ON decision_signatures
    FOR EACH ROW EXECUTE FUNCTION decision_signatures_are_append_only();
CREATE TRIGGER decision_signatures_no_truncate BEFORE TRUNCATE ON decision_signatures
    FOR EACH STATEMENT EXECUTE FUNCTION decision_signatures_are_append_only();
