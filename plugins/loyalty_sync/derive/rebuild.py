"""Rebuild a derived table by building a new partition with CREATE TABLE AS and swapping it in.

Every derived table is a partitioned table. A rebuild runs the table's query as ``CREATE TABLE AS``
into a fresh table. Postgres can plan that statement in parallel, and it leaves no dead rows and
maintains no index row by row. The rebuild then detaches and drops the old partition and attaches
the new one. It runs inside the caller's transaction, so concurrent readers wait for the commit and
then see the new rows, never a half-built table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)


def rebuild_partition(
    conn: psycopg.Connection,
    parent: str,
    partition: str,
    query: sql.Composable,
    params: Mapping[str, Any],
    *,
    bound: sql.Composable | None = None,
    unlogged: bool = False,
    analyze: bool = True,
) -> int:
    """Replace partition ``partition`` of ``parent`` (both in schema ``loyalty``) with the rows of ``query``.

    ``bound`` is the partition bound, for example ``FOR VALUES IN ('vip')``; by default the partition is
    the table's DEFAULT partition, its only one. ``unlogged`` skips the write-ahead log: the table is
    emptied after a database crash until the next run rebuilds it. ``analyze`` collects statistics on
    the new rows for the queries of the later steps, which read them before autovacuum would. Returns
    the number of rows.

    Raises:
        psycopg.Error: from the query, or when its columns do not match the parent's, or when the
            parent's primary key finds a duplicate.
    """
    parent_id = sql.Identifier("loyalty", parent)
    partition_id = sql.Identifier("loyalty", partition)
    build_name = f"{partition}_build"
    build_id = sql.Identifier("loyalty", build_name)

    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(build_id))
    with psycopg.ClientCursor(conn) as cursor:
        cursor.execute(
            sql.SQL("CREATE {persistence} TABLE {build} AS ").format(
                persistence=sql.SQL("UNLOGGED" if unlogged else ""), build=build_id
            ) + query,
            params,
        )
        rows = cursor.rowcount

    if analyze:
        conn.execute(sql.SQL("ANALYZE {}").format(build_id))

    required = _not_null_columns(conn, parent)
    if required:
        conn.execute(
            sql.SQL("ALTER TABLE {} ").format(build_id)
            + sql.SQL(", ").join(sql.SQL("ALTER COLUMN {} SET NOT NULL").format(sql.Identifier(c)) for c in required)
        )

    detach_partition(conn, parent, partition)
    conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(build_id, sql.Identifier(partition)))
    conn.execute(
        sql.SQL("ALTER TABLE {parent} ATTACH PARTITION {partition} {bound}").format(
            parent=parent_id, partition=partition_id, bound=bound if bound is not None else sql.SQL("DEFAULT")
        )
    )
    log.info("Rebuilt loyalty.%s (partition %s): %d rows", parent, partition, rows)
    return rows


def detach_partition(conn: psycopg.Connection, parent: str, partition: str) -> None:
    """Detach and drop ``loyalty.<partition>`` when it is a partition of ``loyalty.<parent>``."""
    if partition in partitions(conn, parent):
        conn.execute(
            sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(
                sql.Identifier("loyalty", parent), sql.Identifier("loyalty", partition)
            )
        )
        conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("loyalty", partition)))


def partitions(conn: psycopg.Connection, parent: str) -> list[str]:
    """Return the names of the partitions of ``loyalty.<parent>``."""
    rows = conn.execute(
        """
        SELECT child.relname
        FROM pg_inherits AS inheritance
        JOIN pg_class AS child ON child.oid = inheritance.inhrelid
        WHERE inheritance.inhparent = to_regclass(%s)
        ORDER BY child.relname
        """,
        (f"loyalty.{parent}",),
    ).fetchall()
    return [row[0] for row in rows]


def _not_null_columns(conn: psycopg.Connection, parent: str) -> list[str]:
    rows = conn.execute(
        """
        SELECT attname FROM pg_attribute
        WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped AND attnotnull
        ORDER BY attnum
        """,
        (f"loyalty.{parent}",),
    ).fetchall()
    return [row[0] for row in rows]


def rebuild_from_file(
    conn: psycopg.Connection, parent: str, sql_text: str, params: Mapping[str, Any], *, unlogged: bool,
    analyze: bool = True,
) -> int:
    """Rebuild ``loyalty.<parent>`` (a table with a single DEFAULT partition) from a SELECT in ``sql_text``."""
    return rebuild_partition(conn, parent, f"{parent}_current", sql.SQL(sql_text), params, unlogged=unlogged,
                             analyze=analyze)
