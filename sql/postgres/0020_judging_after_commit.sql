-- Judging after commit (COLDCHAIN_JUDGE_AFTER_COMMIT): a tracker's readings stored but not judged yet, kept in
-- the row its batches already lock and write. judge_from and judge_until: the span of device time to judge (NULL:
-- nothing waits); judge_since: when the first of it was received; judge_count: how many readings wait;
-- judge_round: how many judgements after commit were made, which tags the batches a process hands to its judge in
-- memory.
ALTER TABLE tracker_sync_state
    ADD COLUMN judge_from  TIMESTAMPTZ,
    ADD COLUMN judge_until TIMESTAMPTZ,
    ADD COLUMN judge_since TIMESTAMPTZ,
    ADD COLUMN judge_count BIGINT NOT NULL DEFAULT 0 CHECK (judge_count >= 0),
    ADD COLUMN judge_round BIGINT NOT NULL DEFAULT 0 CHECK (judge_round >= 0);

CREATE INDEX tracker_sync_state_waiting ON tracker_sync_state (tracker_id) WHERE judge_from IS NOT NULL;
