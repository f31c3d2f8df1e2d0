-- Pharmacists' decisions on shipments and their electronic signatures (21 CFR Part 11), the calibration due date
-- of trackers, an organisation's rule for a second signature, and the first signing of a portal session.

ALTER TABLE trackers ADD COLUMN calibration_due_on TEXT;
-- A release after an excursion takes effect only with a second pharmacist's QA approval.
ALTER TABLE organisations ADD COLUMN release_needs_approval INTEGER NOT NULL DEFAULT 0
    CHECK (release_needs_approval IN (0, 1));
-- The first e-signature made in the session: later ones in the same session need the password only (§11.200).
ALTER TABLE sessions ADD COLUMN signed_at TEXT;

-- A decision is never changed: a later one supersedes it (seq + 1). Only the mark that data arriving after the
-- signature changed the evaluation is set, once.
CREATE TABLE decisions (
    id                        INTEGER PRIMARY KEY,
    shipment_id               INTEGER NOT NULL REFERENCES shipments (id),
    seq                       INTEGER NOT NULL CHECK (seq >= 1),
    organisation_id           INTEGER NOT NULL REFERENCES organisations (id),
    outcome                   TEXT NOT NULL CHECK (outcome IN ('release', 'quarantine', 'reject')),
    reason                    TEXT,
    comment                   TEXT,
    recommendation            TEXT NOT NULL CHECK (recommendation IN ('release', 'quarantine', 'reject')),
    snapshot_sha256           TEXT NOT NULL,
    snapshot                  TEXT NOT NULL,
    record_sha256             TEXT NOT NULL,
    requires_approval         INTEGER NOT NULL CHECK (requires_approval IN (0, 1)),
    created_at                TEXT NOT NULL,
    evaluation_changed_at     TEXT,
    evaluation_changed_sha256 TEXT,
    UNIQUE (shipment_id, seq)
);

CREATE TABLE decision_signatures (
    decision_id   INTEGER NOT NULL REFERENCES decisions (id),
    role          TEXT NOT NULL CHECK (role IN ('decision', 'approval')),
    user_id       INTEGER NOT NULL REFERENCES users (id),
    name          TEXT NOT NULL,
    email         TEXT NOT NULL,
    meaning       TEXT NOT NULL,
    signed_at     TEXT NOT NULL,
    record_sha256 TEXT NOT NULL,
    PRIMARY KEY (decision_id, role)
);

CREATE TRIGGER decisions_no_delete BEFORE DELETE ON decisions
BEGIN
    SELECT RAISE(ABORT, 'decisions are never deleted');
END;

CREATE TRIGGER decisions_change_marked_once BEFORE UPDATE ON decisions
WHEN OLD.evaluation_changed_at IS NOT NULL
    OR NEW.id IS NOT OLD.id OR NEW.shipment_id IS NOT OLD.shipment_id OR NEW.seq IS NOT OLD.seq
    OR NEW.organisation_id IS NOT OLD.organisation_id OR NEW.outcome IS NOT OLD.outcome
    OR NEW.reason IS NOT OLD.reason OR NEW.comment IS NOT OLD.comment
    OR NEW.recommendation IS NOT OLD.recommendation OR NEW.snapshot_sha256 IS NOT OLD.snapshot_sha256
    OR NEW.snapshot IS NOT OLD.snapshot OR NEW.record_sha256 IS NOT OLD.record_sha256
    OR NEW.requires_approval IS NOT OLD.requires_approval OR NEW.created_at IS NOT OLD.created_at
BEGIN
    SELECT RAISE(ABORT, 'a decision is never changed: record a new one');
END;

CREATE TRIGGER decision_signatures_no_update BEFORE UPDATE ON decision_signatures
BEGIN
    SELECT RAISE(ABORT, 'signatures are append-only');
END;

CREATE TRIGGER decision_signatures_no_delete BEFORE DELETE ON decision_signatures
BEGIN
    SELECT RAISE(ABORT, 'signatures are append-only');
END;
