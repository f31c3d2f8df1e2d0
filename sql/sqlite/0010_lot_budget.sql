-- The lot's stability budget as one timeline in device time: each stream keeps, next to the minutes it spent beyond
-- a lifetime rule's threshold, the intervals it spent them in (MessagePack: [start, end, seq] with epoch seconds),
-- so the lot's crossing is found in device time whatever order the trackers synced in. Rows stored before keep
-- their minutes with no intervals: they count as spent before every interval (earlier, never hidden).

ALTER TABLE budget_spent ADD COLUMN spending BLOB NOT NULL DEFAULT x'';
