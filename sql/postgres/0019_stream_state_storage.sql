-- A stream's state (evaluation_streams.state, about 100 kB at one reading a minute with a 24 h MKT window) is
-- rewritten by every ingest batch. PostgreSQL's default TOAST compression (pglz) spent about 5 ms of each such
-- write compressing it; lz4 compresses it nearly as well in a fraction of that time. lz4 needs PostgreSQL 14
-- built with it: elsewhere the state is kept out of line uncompressed, which costs disk, not time.
DO $$
BEGIN
    EXECUTE 'ALTER TABLE evaluation_streams ALTER COLUMN state SET COMPRESSION lz4';
EXCEPTION WHEN syntax_error OR feature_not_supported OR invalid_parameter_value THEN
    EXECUTE 'ALTER TABLE evaluation_streams ALTER COLUMN state SET STORAGE EXTERNAL';
END
$$;
