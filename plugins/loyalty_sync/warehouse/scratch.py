"""Scratch databases for the tests, the generated docs and the benchmarks."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo


@contextmanager
def scratch_database(server_dsn: str, prefix: str) -> Iterator[str]:
    """Create an empty database on ``server_dsn``'s server, yield its DSN and drop it afterwards.

    The database is named ``<prefix>_<random hex>``, so concurrent runs never share one. The drop
    uses ``WITH (FORCE)``, so connections left open by the caller do not keep the database alive.
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(server_dsn, dbname=name)
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
