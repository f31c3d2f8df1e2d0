-- Scale: readings partitioned by month of device time, the seals that keep a shipment's readings digest once
-- retention drops its months, and keys that let the schema be distributed with Citus (ops/citus/).

-- 1. Readings, partitioned by the UTC month of their device time. A partitioned table's primary key must hold the
-- partition key, so (tracker_id, seq) is no longer unique by itself in the database: ingest decides "new,
-- duplicate or conflict" in code, under the tracker's lock, from a look-up of the batch's numbers across every
-- partition (coldchain.services.sync). Rows dated outside every monthly partition (clocks far off) land in the
-- default partition, so an insert never fails for want of a partition.
ALTER TABLE readings RENAME TO readings_unpartitioned;
ALTER TABLE readings_unpartitioned RENAME CONSTRAINT readings_pkey TO readings_unpartitioned_pkey;
ALTER INDEX readings_by_tracker_time RENAME TO readings_unpartitioned_by_tracker_time;

CREATE TABLE readings (
    tracker_id      BIGINT NOT NULL,
    seq             BIGINT NOT NULL CHECK (seq >= 1),
    device_time     TIMESTAMPTZ NOT NULL,
    utc_offset_min  SMALLINT NOT NULL,
    received_at     TIMESTAMPTZ NOT NULL,
    temperature_c   DOUBLE PRECISION,
    humidity_pct    DOUBLE PRECISION,
    pressure_kpa    DOUBLE PRECISION,
    latitude        DOUBLE PRECISION,
    longitude       DOUBLE PRECISION,
    battery_pct     DOUBLE PRECISION,
    PRIMARY KEY (tracker_id, seq, device_time)
) PARTITION BY RANGE (device_time);

-- "Readings of a shipment in a time range" resolves to a tracker and a device-time range; the primary key serves
-- the look-up by (tracker_id, seq), in every partition.
CREATE INDEX readings_by_tracker_time ON readings (tracker_id, device_time);

CREATE TABLE readings_default PARTITION OF readings DEFAULT;

-- The partition of one UTC month, named readings_YYYY_MM; false when it exists already. Safe from several
-- processes at once (an advisory lock, then a look for the table). Rows of that month already in the default
-- partition are moved into the new partition before it is attached, so none is lost or left behind.
CREATE FUNCTION readings_partition(month DATE) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    first_day DATE := date_trunc('month', month)::date;
    part TEXT := 'readings_' || to_char(first_day, 'YYYY_MM');
    low TIMESTAMPTZ := first_day::timestamp AT TIME ZONE 'UTC';
    high TIMESTAMPTZ := (first_day + INTERVAL '1 month')::timestamp AT TIME ZONE 'UTC';
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('coldchain'), hashtext('readings_partitions'));
    IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relname = part AND n.nspname = current_schema()) THEN
        RETURN FALSE;
    END IF;
    IF EXISTS (SELECT 1 FROM readings_default WHERE device_time >= low AND device_time < high) THEN
        EXECUTE format('CREATE TABLE %I (LIKE readings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format(
            'WITH moved AS (DELETE FROM readings_default WHERE device_time >= $1 AND device_time < $2 RETURNING *)'
            ' INSERT INTO %I SELECT * FROM moved', part
        ) USING low, high;
        EXECUTE format('ALTER TABLE readings ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', part, low, high);
    ELSE
        EXECUTE format('CREATE TABLE %I PARTITION OF readings FOR VALUES FROM (%L) TO (%L)', part, low, high);
    END IF;
    RETURN TRUE;
END;
$$;

-- A partition for every month of the last ten years that holds readings, and for this month and the next three
-- (the service makes more ahead at start-up and every hour); then every row is copied across.
SELECT readings_partition(month)
FROM (
    SELECT DISTINCT date_trunc('month', device_time AT TIME ZONE 'UTC')::date AS month
    FROM readings_unpartitioned
    WHERE device_time >= now() - INTERVAL '10 years' AND device_time < now() + INTERVAL '4 months'
    UNION
    SELECT generate_series(date_trunc('month', now() AT TIME ZONE 'UTC'),
                           date_trunc('month', now() AT TIME ZONE 'UTC') + INTERVAL '3 months',
                           INTERVAL '1 month')::date
) months
ORDER BY month;

INSERT INTO readings (tracker_id, seq, device_time, utc_offset_min, received_at, temperature_c, humidity_pct,
                      pressure_kpa, latitude, longitude, battery_pct)
SELECT tracker_id, seq, device_time, utc_offset_min, received_at, temperature_c, humidity_pct, pressure_kpa,
       latitude, longitude, battery_pct
FROM readings_unpartitioned;

DROP TABLE readings_unpartitioned;

-- 2. What a shipment's certificate needs of its readings once retention has dropped them: the readings' SHA-256
-- (the CSV export's), their number, and the first and last reading (the data's span). Written once, by retention,
-- in the transaction that drops the first month of the shipment's readings; never changed.
CREATE TABLE readings_seals (
    shipment_id     BIGINT PRIMARY KEY REFERENCES shipments (id),
    readings        BIGINT NOT NULL CHECK (readings >= 0),
    readings_sha256 TEXT NOT NULL,
    first_reading   TEXT,  -- JSON of the reading, as the export orders them
    last_reading    TEXT,
    sealed_at       TIMESTAMPTZ NOT NULL
);

CREATE FUNCTION readings_seals_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'readings_seals is append-only';
END;
$$;

CREATE TRIGGER readings_seals_no_change BEFORE UPDATE OR DELETE ON readings_seals
    FOR EACH ROW EXECUTE FUNCTION readings_seals_are_append_only();
CREATE TRIGGER readings_seals_no_truncate BEFORE TRUNCATE ON readings_seals
    FOR EACH STATEMENT EXECUTE FUNCTION readings_seals_are_append_only();

-- 3. Keys for Citus (ops/citus/distribution.sql): every primary key, unique constraint and foreign key between
-- distributed tables carries the distribution column. The tracker's tables are distributed by tracker_id, the
-- evaluation streams and budgets by shipment_id. Excursions and alarms stay on the coordinator (other records
-- refer to them by id): their foreign key names the stream's assignment, a reference table, not the stream.
ALTER TABLE sync_conflicts DROP CONSTRAINT sync_conflicts_pkey, ADD PRIMARY KEY (tracker_id, id);

ALTER TABLE budget_spent DROP CONSTRAINT budget_spent_assignment_id_fkey;
ALTER TABLE excursions
    DROP CONSTRAINT excursions_assignment_id_fkey,
    ADD FOREIGN KEY (assignment_id) REFERENCES tracker_assignments (id);
ALTER TABLE alarms
    DROP CONSTRAINT alarms_assignment_id_fkey,
    ADD FOREIGN KEY (assignment_id) REFERENCES tracker_assignments (id);

ALTER TABLE evaluation_streams DROP CONSTRAINT evaluation_streams_pkey, ADD PRIMARY KEY (shipment_id, assignment_id);
CREATE INDEX evaluation_streams_by_assignment ON evaluation_streams (assignment_id);
-- shipment_id leads the new key: the old index on it alone is redundant.
DROP INDEX evaluation_streams_by_shipment;

ALTER TABLE budget_spent
    DROP CONSTRAINT budget_spent_pkey,
    ADD PRIMARY KEY (shipment_id, assignment_id, rule),
    ADD FOREIGN KEY (shipment_id, assignment_id) REFERENCES evaluation_streams (shipment_id, assignment_id);
DROP INDEX budget_spent_by_shipment;
