"""Numbered schema migrations from ``include/sql/migrations``, applied at the start of every run.

A migration is a file ``NNNN_description.sql``. The pending ones run in one transaction together with
the rows that record them in ``sync.schema_migration``, so an install upgrades in place and a failed
migration leaves nothing applied. An applied file must never change: its checksum is compared on
every run.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from loyalty_sync.paths import SQL_DIR

log = logging.getLogger(__name__)

MIGRATIONS_DIR = SQL_DIR / "migrations"
_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# Any fixed number works; it only has to be the same for every process that migrates this warehouse.
_LOCK_KEY = 7_402_391_115


class MigrationError(RuntimeError):
    """The warehouse schema cannot be brought up to date."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Return the migration files in version order.

    Raises:
        MigrationError: for a file that does not follow ``NNNN_description.sql`` or a repeated number.
    """
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"invalid migration file name {path.name!r} in {directory}: expected NNNN_description.sql")
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(f"migration number {version:04d} is used twice in {directory}")
        migrations[version] = Migration(version, path.stem, path)
    return [migrations[version] for version in sorted(migrations)]


def apply_migrations(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration; return the names applied by this call.

    Concurrent callers wait on an advisory lock, so two runs starting together migrate once.

    Raises:
        MigrationError: when an applied migration's file changed since it was applied.
    """
    migrations = discover(directory)
    applied_now: list[str] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute("CREATE SCHEMA IF NOT EXISTS sync")
        conn.execute(
            """
            CREATE TABLE IF NOT EXISTS sync.schema_migration (
                version    integer     PRIMARY KEY,
                name       text        NOT NULL,
                checksum   text        NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        applied = dict(conn.execute("SELECT version, checksum FROM sync.schema_migration").fetchall())

        for migration in migrations:
            if migration.version in applied:
                if applied[migration.version] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.name} changed after it was applied; add a new migration instead"
                    )
                continue
            log.info("Applying migration %s", migration.name)
            conn.execute(migration.sql)
            conn.execute(
                "INSERT INTO sync.schema_migration (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            applied_now.append(migration.name)

    if applied_now:
        log.info("Applied %d migrations: %s", len(applied_now), ", ".join(applied_now))
    else:
        log.info("Warehouse schema is up to date (%d migrations)", len(migrations))
    return applied_now
