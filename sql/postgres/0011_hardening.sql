-- Hardening: a tracker's protocol fixed at registration (OsmAnd devices name themselves by a generated device id,
-- never by their serial), sync conflicts kept with both values, and what replay detection needs.

-- Every tracker registered before this migration signs its batches: it stays 'hmac'. An OsmAnd device is
-- registered again as 'osmand' and configured with the device id it gets.
ALTER TABLE trackers ADD COLUMN protocol TEXT NOT NULL DEFAULT 'hmac' CHECK (protocol IN ('hmac', 'osmand'));
ALTER TABLE trackers ADD COLUMN device_id TEXT;
CREATE UNIQUE INDEX trackers_by_device_id ON trackers (device_id);

-- last_sent_at: the newest sent_at of a batch taken as fresh; a batch sent no later is a replay or a late copy.
-- max_refused_seq: the highest sequence number kept in quarantine for its number alone (too far past max_seq),
-- which max_seq does not cover.
ALTER TABLE tracker_sync_state ADD COLUMN readings_conflicting BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tracker_sync_state ADD COLUMN last_sent_at TIMESTAMPTZ;
ALTER TABLE tracker_sync_state ADD COLUMN max_refused_seq BIGINT NOT NULL DEFAULT 0;

-- A copy of a held sequence number with other values (or valid where the held one is quarantined): the held
-- reading stays, the copy is kept here beside it. The same copy sent again is recorded once.
CREATE TABLE sync_conflicts (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tracker_id  BIGINT NOT NULL REFERENCES trackers (id),
    seq         BIGINT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    held_as     TEXT NOT NULL CHECK (held_as IN ('reading', 'quarantined')),
    held        TEXT NOT NULL,
    sent        TEXT NOT NULL,
    sent_reason TEXT,
    UNIQUE (tracker_id, seq, sent)
);
