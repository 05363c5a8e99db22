"""Read SQL files from ``include/sql`` and run them."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import psycopg

from loyalty_sync.paths import SQL_DIR


@lru_cache(maxsize=None)
def load_sql(relative_path: str) -> str:
    """Return the text of ``include/sql/<relative_path>``.

    Raises:
        FileNotFoundError: naming the full path, when the file does not exist.
    """
    path = SQL_DIR / relative_path
    if not path.is_file():
        raise FileNotFoundError(f"SQL file not found: {path}")
    return path.read_text(encoding="utf-8")


def run_sql_file(conn: psycopg.Connection, relative_path: str, params: Mapping[str, Any] | None = None) -> int:
    """Run every statement of a SQL file with ``%(name)s`` parameters; return the last statement's row count.

    The file may hold several statements: a client-side cursor binds the parameters, so Postgres
    receives one simple query. The caller owns the transaction.
    """
    with psycopg.ClientCursor(conn) as cursor:
        cursor.execute(load_sql(relative_path), params or {})
        return cursor.rowcount


def fetch_sql_file(conn: psycopg.Connection, relative_path: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run a SQL file holding one query and return its rows as dictionaries."""
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        cursor.execute(load_sql(relative_path), params or {})
        return cursor.fetchall()
