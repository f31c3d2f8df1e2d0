"""The migrated PostgreSQL schema against the Citus distribution plan (ops/citus/distribution.sql), checked from
pg_catalog by tests/citus_check.py; and the check itself, shown to catch each rule broken in a scratch database."""

from __future__ import annotations

import asyncpg

from tests.citus_check import check, parse_plan, read_schema
from tests.paths import CITUS_PLAN


async def test_every_table_of_the_migrated_schema_is_placed_and_keeps_citus_rules(postgres_database: str) -> None:
    plan, unreadable = parse_plan(CITUS_PLAN.read_text(encoding="utf-8"))
    conn = await asyncpg.connect(postgres_database)
    try:
        schema = await read_schema(conn)
    finally:
        await conn.close()

    assert unreadable == []
    assert check(plan, schema) == []
    # The large tables are distributed, on the columns their keys lead with.
    assert {table: plan.group(table) for table, p in plan.tables.items() if p.kind == "distributed"} == {
        "readings": "readings",
        "quarantined_readings": "readings",
        "sync_conflicts": "readings",
        "tracker_sync_state": "readings",
        "tracker_silences": "readings",
        "evaluation_streams": "evaluation_streams",
        "budget_spent": "evaluation_streams",
        "shipment_etas": "evaluation_streams",
    }
    assert "readings_default" not in plan.tables and "readings_default" not in schema.columns  # a partition


BROKEN_PLAN = """
SELECT create_reference_table('parties');
SELECT create_distributed_table('devices', 'device_id', colocate_with => 'none');
SELECT create_distributed_table('samples', 'device_id', colocate_with => 'devices');
SELECT create_distributed_table('trips', 'trip_id', colocate_with => 'none');
SELECT create_distributed_table('legs', 'trip_id', colocate_with => 'trips');
SELECT create_distributed_table('stops', 'trip_id', colocate_with => 'trips');
SELECT create_reference_table('kinds');
-- local: notes
-- local: ghosts
SELECT create_distributed_table('devices', 'device_id');
SELECT master_create_worker_shards('devices', 16, 1);
"""

BROKEN_SCHEMA = """
CREATE TABLE parties (id BIGINT PRIMARY KEY, name TEXT UNIQUE);
CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT);
CREATE TABLE kinds (id SMALLINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note_id BIGINT REFERENCES notes (id));
CREATE TABLE devices (
    device_id BIGINT PRIMARY KEY, serial TEXT UNIQUE, party_id BIGINT REFERENCES parties (id)
);
CREATE TABLE samples (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, device_id BIGINT NOT NULL REFERENCES devices (device_id)
);
CREATE TABLE trips (trip_id BIGINT PRIMARY KEY, device_id BIGINT REFERENCES devices (device_id));
CREATE TABLE legs (trip_id BIGINT NOT NULL, leg_no INT NOT NULL, note_id BIGINT REFERENCES notes (id),
                   PRIMARY KEY (trip_id, leg_no));
CREATE TABLE stops (trip_id BIGINT NOT NULL, leg_no INT NOT NULL, stop_no INT NOT NULL,
                    PRIMARY KEY (trip_id, leg_no, stop_no));
ALTER TABLE stops ADD UNIQUE (leg_no, stop_no), ADD FOREIGN KEY (leg_no, trip_id) REFERENCES legs (leg_no, trip_id);
ALTER TABLE legs ADD UNIQUE (leg_no, trip_id);
CREATE TABLE stray (id BIGINT PRIMARY KEY);
CREATE INDEX stray_by_id ON stray (id);
ALTER TABLE notes ADD COLUMN trip_id BIGINT REFERENCES trips (trip_id);
CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no'; END; $$;
CREATE TRIGGER devices_no_delete BEFORE DELETE ON devices FOR EACH ROW EXECUTE FUNCTION refuse();
"""


async def test_the_check_reports_every_table_that_breaks_a_rule(empty_postgres_database: str) -> None:
    conn = await asyncpg.connect(empty_postgres_database)
    try:
        await conn.execute(BROKEN_SCHEMA)
        schema = await read_schema(conn)
    finally:
        await conn.close()
    plan, unreadable = parse_plan(BROKEN_PLAN)

    assert unreadable == [
        "devices: placed twice in the plan",
        "line 12: not a placement the check understands: SELECT master_create_worker_shards('devices', 16, 1);",
    ]
    assert sorted(check(plan, schema)) == sorted(
        [
            "stray: a table the plan does not place",
            "ghosts: placed by the plan but not in the schema",
            "devices: unique index devices_serial_key ['serial'] lacks the distribution column device_id",
            "devices: distributed table with trigger devices_no_delete",
            "samples: unique index samples_pkey ['id'] lacks the distribution column device_id",
            "stops: unique index stops_leg_no_stop_no_key ['leg_no', 'stop_no'] lacks the distribution column trip_id",
            "kinds: reference table with an identity column of type smallint (bigint only)",
            "kinds (note_id) -> notes (id): a reference table may reference only reference tables",
            "trips (device_id) -> devices (device_id): distributed tables of different colocation groups",
            "legs (note_id) -> notes (id): a distributed table may not reference a local table",
            "notes (trip_id) -> trips (trip_id): a local table may not reference a distributed table",
        ]
    )


async def test_a_schema_that_keeps_the_rules_passes_the_check(empty_postgres_database: str) -> None:
    conn = await asyncpg.connect(empty_postgres_database)
    try:
        await conn.execute(
            "CREATE TABLE parties (id BIGINT PRIMARY KEY, name TEXT UNIQUE);"
            "CREATE TABLE trips (trip_id BIGINT PRIMARY KEY, party_id BIGINT REFERENCES parties (id));"
            "CREATE TABLE legs (trip_id BIGINT NOT NULL REFERENCES trips (trip_id),"
            " id BIGINT GENERATED ALWAYS AS IDENTITY, PRIMARY KEY (trip_id, id));"
            "CREATE TABLE notes (id BIGINT PRIMARY KEY, party_id BIGINT REFERENCES parties (id));"
        )
        schema = await read_schema(conn)
    finally:
        await conn.close()
    plan, _ = parse_plan(
        "SELECT create_reference_table('parties');\n"
        "SELECT create_distributed_table('trips', 'trip_id', colocate_with => 'none');\n"
        "SELECT create_distributed_table('legs', 'trip_id', colocate_with => 'trips');\n"
        "-- local: notes\n"
    )
    assert check(plan, schema) == []
    # The same foreign key across two groups is refused, which colocating the tables mends.
    separate, _ = parse_plan(
        "SELECT create_reference_table('parties');\n"
        "SELECT create_distributed_table('trips', 'trip_id', colocate_with => 'none');\n"
        "SELECT create_distributed_table('legs', 'trip_id', colocate_with => 'none');\n"
        "-- local: notes\n"
    )
    assert check(separate, schema) == [
        "legs (trip_id) -> trips (trip_id): distributed tables of different colocation groups"
    ]
