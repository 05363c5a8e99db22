"""Numbered migrations: applied once, in order, recorded, and upgrading an existing warehouse in place."""

from __future__ import annotations

import shutil

import pytest

from loyalty_sync.contract import ENTITIES
from loyalty_sync.warehouse.migrations import MIGRATIONS_DIR, MigrationError, apply_migrations, discover


# How format_type() spells the contract's SQL types.
FORMATTED_TYPES = {"timestamptz": "timestamp with time zone"}


def test_second_apply_changes_nothing(warehouse):
    assert apply_migrations(warehouse) == []


def test_every_migration_recorded(warehouse):
    recorded = [row[0] for row in warehouse.execute("SELECT name FROM sync.schema_migration ORDER BY version")]

    assert recorded == [migration.name for migration in discover()]


def test_upgrade_applies_only_new_files(warehouse, tmp_path):
    folder = tmp_path / "migrations"
    folder.mkdir()
    for migration in discover():
        shutil.copy(migration.path, folder / migration.path.name)
    (folder / "9999_add_probe_table.sql").write_text("CREATE TABLE sync.probe (id int);")

    applied = apply_migrations(warehouse, folder)

    assert applied == ["9999_add_probe_table"]
    assert warehouse.execute("SELECT to_regclass('sync.probe')").fetchone()[0] == "sync.probe"


def test_changed_applied_migration_rejected(warehouse, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, folder)
    first = sorted(folder.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited after release\n")

    with pytest.raises(MigrationError) as raised:
        apply_migrations(warehouse, folder)

    assert first.stem in str(raised.value)


def test_bad_file_name_rejected(tmp_path):
    (tmp_path / "add_table.sql").write_text("SELECT 1;")

    with pytest.raises(MigrationError):
        discover(tmp_path)


@pytest.mark.parametrize("entity", ENTITIES, ids=lambda entity: entity.name)
def test_staging_table_matches_contract(warehouse, entity):
    schema, table = entity.table.split(".")
    rows = warehouse.execute(
        """
        SELECT column_name, format_type(atttypid, atttypmod)
        FROM information_schema.columns c
        JOIN pg_attribute a ON a.attrelid = (c.table_schema || '.' || c.table_name)::regclass AND a.attname = c.column_name
        WHERE c.table_schema = %s AND c.table_name = %s AND c.column_name NOT LIKE '\\_%%'
        ORDER BY c.ordinal_position
        """,
        (schema, table),
    ).fetchall()
    expected = [(column.name, column.sql_type) for column in entity.columns]
    expected += [(column.name, column.type) for column in entity.derived]

    assert rows == [(name, FORMATTED_TYPES.get(sql_type, sql_type)) for name, sql_type in expected]
