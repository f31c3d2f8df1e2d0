-- Judging after commit: see PostgreSQL's 0020.
ALTER TABLE tracker_sync_state ADD COLUMN judge_from TEXT;
ALTER TABLE tracker_sync_state ADD COLUMN judge_until TEXT;
ALTER TABLE tracker_sync_state ADD COLUMN judge_since TEXT;
ALTER TABLE tracker_sync_state ADD COLUMN judge_count INTEGER NOT NULL DEFAULT 0 CHECK (judge_count >= 0);
ALTER TABLE tracker_sync_state ADD COLUMN judge_round INTEGER NOT NULL DEFAULT 0 CHECK (judge_round >= 0);

CREATE INDEX tracker_sync_state_waiting ON tracker_sync_state (tracker_id) WHERE judge_from IS NOT NULL;
