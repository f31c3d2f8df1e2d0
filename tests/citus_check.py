"""A mechanical check of a PostgreSQL schema against a Citus distribution plan (``ops/citus/distribution.sql``).

Citus itself cannot run here; what it would refuse can be read from ``pg_catalog``. The plan is parsed from the
statements an operator runs (``create_reference_table``, ``create_distributed_table`` with its ``colocate_with``)
and the ``-- local: <table>`` lines; the schema is read from the catalog of a migrated database. The rules:

- every table of the schema is placed exactly once, and every placed table exists (a new table cannot slip by);
- a distributed table has its distribution column, and every primary key, unique constraint and unique index of
  it holds that column;
- a foreign key between distributed tables joins tables of one colocation group, on their distribution columns;
  a distributed table may reference a reference table; nothing may reference a distributed table from a
  reference or local table; a reference table references only reference tables;
- distributed and reference tables carry no triggers (Citus refuses them without ``citus.enable_unsafe_triggers``);
- identity columns of distributed and reference tables are ``bigint`` (smaller ones cannot take values on workers).

Partitions are placed with their parent and are not listed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Placement", "Plan", "Schema", "check", "parse_plan", "read_schema"]

Kind = Literal["reference", "distributed", "local"]


@dataclass(frozen=True)
class Placement:
    kind: Kind
    column: str | None = None
    colocate_with: str | None = None


@dataclass
class Plan:
    tables: dict[str, Placement] = field(default_factory=dict)

    def group(self, table: str) -> str:
        """The colocation group of a distributed table: named after the first table of the group."""
        placement = self.tables[table]
        seen = {table}
        while placement.colocate_with not in (None, "none", "default"):
            table = placement.colocate_with
            if table in seen or table not in self.tables:
                break
            seen.add(table)
            placement = self.tables[table]
        return table


_REFERENCE = re.compile(r"^SELECT create_reference_table\('(\w+)'\);$")
_DISTRIBUTED = re.compile(r"^SELECT create_distributed_table\('(\w+)', '(\w+)'(?:, colocate_with => '(\w+)')?\);$")
_LOCAL = re.compile(r"^-- local: (\w+)$")


def parse_plan(text: str) -> tuple[Plan, list[str]]:
    """The plan, and what in the text is not a placement (statements this parser does not know, tables placed
    twice)."""
    plan = Plan()
    problems: list[str] = []

    def place(table: str, placement: Placement) -> None:
        if table in plan.tables:
            problems.append(f"{table}: placed twice in the plan")
        plan.tables[table] = placement

    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if match := _LOCAL.match(line):
            place(match[1], Placement("local"))
        elif not line or line.startswith("--"):
            continue
        elif match := _REFERENCE.match(line):
            place(match[1], Placement("reference"))
        elif match := _DISTRIBUTED.match(line):
            place(match[1], Placement("distributed", column=match[2], colocate_with=match[3]))
        else:
            problems.append(f"line {number}: not a placement the check understands: {line}")
    return plan, problems


@dataclass(frozen=True)
class ForeignKey:
    table: str
    columns: tuple[str, ...]
    references: str
    referenced: tuple[str, ...]


@dataclass
class Schema:
    columns: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each table's columns with their types."""
    unique: dict[str, list[tuple[str, tuple[str | None, ...]]]] = field(default_factory=dict)
    """Each table's unique indexes (primary keys and unique constraints included): name and columns (``None`` for
    an expression)."""
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    triggers: dict[str, list[str]] = field(default_factory=dict)
    identities: dict[str, list[str]] = field(default_factory=dict)


_TABLES = """
SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""
_COLUMNS = """
SELECT attname, format_type(atttypid, atttypmod) AS type, attidentity <> '' AS identity FROM pg_attribute
WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped
"""
_UNIQUE = """
SELECT x.indexrelid::regclass::text AS name,
       array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY AS k(attnum, position)
             LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
             ORDER BY k.position) AS columns
FROM pg_index x WHERE x.indrelid = $1 AND x.indisunique
"""
_FOREIGN_KEYS = """
SELECT f.confrelid::regclass::text AS referenced_table,
       array(SELECT a.attname FROM unnest(f.conkey) WITH ORDINALITY AS k(attnum, position)
             JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = k.attnum ORDER BY k.position) AS columns,
       array(SELECT a.attname FROM unnest(f.confkey) WITH ORDINALITY AS k(attnum, position)
             JOIN pg_attribute a ON a.attrelid = f.confrelid AND a.attnum = k.attnum ORDER BY k.position) AS referenced
FROM pg_constraint f WHERE f.conrelid = $1 AND f.contype = 'f' AND f.conparentid = 0
"""
_TRIGGERS = "SELECT tgname FROM pg_trigger WHERE tgrelid = $1 AND NOT tgisinternal"


async def read_schema(conn: Any) -> Schema:
    """The tables of the connection's current schema as the rules need them (an asyncpg connection)."""
    schema = Schema()
    for table in await conn.fetch(_TABLES):
        name, oid = table["relname"], table["oid"]
        columns = await conn.fetch(_COLUMNS, oid)
        schema.columns[name] = {row["attname"]: row["type"] for row in columns}
        schema.identities[name] = [row["type"] for row in columns if row["identity"]]
        schema.unique[name] = [(row["name"], tuple(row["columns"])) for row in await conn.fetch(_UNIQUE, oid)]
        schema.foreign_keys += [
            ForeignKey(name, tuple(row["columns"]), row["referenced_table"], tuple(row["referenced"]))
            for row in await conn.fetch(_FOREIGN_KEYS, oid)
        ]
        schema.triggers[name] = [row["tgname"] for row in await conn.fetch(_TRIGGERS, oid)]
    return schema


def check(plan: Plan, schema: Schema) -> list[str]:
    """Every way the schema breaks Citus's rules under the plan, one sentence each (empty: it can be distributed)."""
    unplaced, missing = set(schema.columns) - set(plan.tables), set(plan.tables) - set(schema.columns)
    problems = [f"{table}: a table the plan does not place" for table in sorted(unplaced)]
    problems += [f"{table}: placed by the plan but not in the schema" for table in sorted(missing)]
    for table, placement in sorted(plan.tables.items()):
        if table not in schema.columns:
            continue
        if placement.kind == "distributed":
            problems += _distributed(plan, schema, table, placement)
        if placement.kind in ("distributed", "reference"):
            problems += [
                f"{table}: {placement.kind} table with trigger {trigger}" for trigger in schema.triggers[table]
            ]
            problems += [
                f"{table}: {placement.kind} table with an identity column of type {kind} (bigint only)"
                for kind in schema.identities[table]
                if kind != "bigint"
            ]
    for key in schema.foreign_keys:
        problems += _foreign_key(plan, key)
    return problems


def _distributed(plan: Plan, schema: Schema, table: str, placement: Placement) -> list[str]:
    column = placement.column
    assert column is not None
    if column not in schema.columns[table]:
        return [f"{table}: has no distribution column {column}"]
    problems = [
        f"{table}: unique index {name} {list(columns)} lacks the distribution column {column}"
        for name, columns in schema.unique[table]
        if column not in columns
    ]
    anchor = placement.colocate_with
    if anchor not in (None, "none", "default"):
        other = plan.tables.get(anchor)
        if other is None or other.kind != "distributed":
            problems.append(f"{table}: colocated with {anchor}, which is not a distributed table")
        elif schema.columns.get(anchor, {}).get(other.column or "") != schema.columns[table][column]:
            problems.append(f"{table}: colocated with {anchor} on a distribution column of another type")
    return problems


def _foreign_key(plan: Plan, key: ForeignKey) -> list[str]:
    source, target = plan.tables.get(key.table), plan.tables.get(key.references)
    if source is None or target is None:
        return []  # an unplaced table is reported once, above
    where = f"{key.table} ({', '.join(key.columns)}) -> {key.references} ({', '.join(key.referenced)})"
    if target.kind == "distributed":
        if source.kind != "distributed":
            return [f"{where}: a {source.kind} table may not reference a distributed table"]
        if plan.group(key.table) != plan.group(key.references):
            return [f"{where}: distributed tables of different colocation groups"]
        if (source.column, target.column) not in set(zip(key.columns, key.referenced, strict=True)):
            return [f"{where}: a foreign key between distributed tables must join their distribution columns"]
        return []
    if source.kind == "reference" and target.kind == "local":
        return [f"{where}: a reference table may reference only reference tables"]
    if source.kind == "distributed" and target.kind == "local":
        return [f"{where}: a distributed table may not reference a local table"]
    return []
