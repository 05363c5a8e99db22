"""Compute every segment's members and record who entered and left on the run day.

Each segment's query becomes one partition of ``loyalty.segment_member``. Then the membership
history (``loyalty.segment_membership_history``) and the daily counts (``loyalty.segment_day``) are
brought up to the run day, the local date of ``as_of``:

- a member without an open stay enters on that day, with the entry event's data recorded;
- an open stay whose lead is no longer a member ends on that day;
- a rerun of the same day first undoes what the previous run of that day recorded, so it records
  the day again from the current data;
- a run for a day before the latest recorded day (a backfill) leaves history and counts alone
  and logs a warning, because the later days were computed from that history.
"""

from __future__ import annotations

import json
import logging
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql

from loyalty_sync.derive.rebuild import detach_partition, partitions, rebuild_partition
from loyalty_sync.derive.segments import SegmentDefinition, SegmentError, SegmentSet, bind_value
from loyalty_sync.warehouse.sql import run_sql_file

log = logging.getLogger(__name__)

MEMBER_PARENT = "segment_member"


def refresh_segments(conn: psycopg.Connection, segment_set: SegmentSet, as_of: datetime, as_of_date: date) -> list[str]:
    """Rebuild every segment's members, then record the run day's entries, exits and counts.

    Runs in the caller's transaction, after the shared tables are built. Returns the names of the
    segments whose history was recorded. Segments whose history already goes past the run day are
    left out.

    Raises:
        SegmentError: naming the segment file whose query failed or returned a lead twice.
    """
    for segment in segment_set.segments:
        _build_members(conn, segment, segment_set.parameters[segment.name], as_of)
    _drop_removed_segments(conn, {segment.name for segment in segment_set.segments})
    run_sql_file(conn, "derive/segment_members_without_profile.sql")
    _write_registry(conn, segment_set, as_of)

    latest_days = dict(conn.execute("SELECT segment, max(as_of_date) FROM loyalty.segment_day GROUP BY segment").fetchall())
    recorded = []
    day_recorded = False
    for segment in segment_set.segments:
        latest = latest_days.get(segment.name)
        day_recorded = day_recorded or latest == as_of_date
        if latest is not None and latest > as_of_date:
            log.warning(
                "Segment %s: history is recorded up to %s, so this run for %s leaves history and daily counts alone",
                segment.name, latest, as_of_date,
            )
        else:
            recorded.append(segment.name)
    if recorded:
        run_sql_file(conn, "derive/segment_history.sql",
                     {"segments": recorded, "as_of_date": as_of_date, "day_recorded": day_recorded})
        run_sql_file(conn, "derive/segment_days.sql", {
            "segments": recorded,
            "as_of_date": as_of_date,
            "as_of": as_of,
            "parameters": [json.dumps(segment_set.parameters[name]) for name in recorded],
            "definitions": [segment_set.get(name).sha256 for name in recorded],  # type: ignore[union-attr]
        })
        log.info("Recorded entries, exits and counts of %d segments for %s", len(recorded), as_of_date)
    return recorded


def _build_members(conn: psycopg.Connection, segment: SegmentDefinition, parameters: dict[str, Any], as_of: datetime) -> int:
    types = {parameter.name: parameter.type for parameter in segment.parameters}
    params = {name: bind_value(types[name], value) for name, value in parameters.items()}
    params["as_of"] = as_of
    try:
        return rebuild_partition(
            conn,
            MEMBER_PARENT,
            f"{MEMBER_PARENT}_{segment.name}",
            member_query(segment),
            params,
            bound=sql.SQL("FOR VALUES IN ({})").format(sql.Literal(segment.name)),
            analyze=False,
        )
    except psycopg.errors.UniqueViolation as error:
        raise SegmentError(
            f"{segment.path}: the query returns a lead more than once ({error.diag.message_detail}); "
            "return one row per workspace_id and lead_id"
        ) from error
    except psycopg.Error as error:
        raise SegmentError(f"{segment.path}: the query failed: {str(error).strip()}") from error
    except KeyError as error:
        raise SegmentError(
            f"{segment.path}: the query uses parameter {error} that the header does not declare; "
            "add '-- parameter: ...' or write a literal % as %%"
        ) from error


def member_query(segment: SegmentDefinition) -> sql.Composed:
    """Return the SELECT that turns a segment query's rows into ``loyalty.segment_member`` rows."""
    if segment.attribute_type == "boolean":
        attribute_value = sql.SQL("NULL::jsonb")
    else:
        attribute_value = sql.SQL("to_jsonb(member.attribute_value)")
    if segment.event_data:
        entry_details = sql.SQL("jsonb_build_object({})").format(sql.SQL(", ").join(
            sql.SQL("{}, member.{}").format(sql.Literal(field.key), sql.Identifier(field.column))
            for field in segment.event_data
        ))
    else:
        entry_details = sql.SQL("NULL::jsonb")
    head = sql.SQL(
        "SELECT {name}::text AS segment, member.workspace_id::text AS workspace_id, member.lead_id::uuid AS lead_id, "
        "{attribute_value} AS attribute_value, {entry_details} AS entry_details, %(as_of)s::timestamptz AS as_of "
        "FROM (\n"
    ).format(name=sql.Literal(segment.name), attribute_value=attribute_value, entry_details=entry_details)
    return head + sql.SQL(segment.query) + sql.SQL("\n) AS member")


def _drop_removed_segments(conn: psycopg.Connection, names: set[str]) -> None:
    """Drop the member partitions of segments whose file is gone; their history stays."""
    current = {f"{MEMBER_PARENT}_{name}" for name in names}
    for partition in partitions(conn, MEMBER_PARENT):
        if partition not in current:
            log.warning("Segment partition %s has no segment file any more; dropping its members", partition)
            detach_partition(conn, MEMBER_PARENT, partition)


def _write_registry(conn: psycopg.Connection, segment_set: SegmentSet, as_of: datetime) -> None:
    conn.execute("DELETE FROM loyalty.segment")
    with conn.cursor() as cursor:
        cursor.executemany(
            """
            INSERT INTO loyalty.segment (segment, position, file, description, attribute_name, attribute_type,
                                         parameters, entry_event, event_data, definition_sha256, query, as_of)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            [
                (
                    segment.name, position, str(segment.path), segment.description, segment.attribute_name,
                    segment.attribute_type, json.dumps(segment_set.parameters[segment.name]), segment.entry_event,
                    json.dumps([
                        {"key": f.key, "type": f.type, "column": f.column, "description": f.description}
                        for f in segment.event_data
                    ]),
                    segment.sha256, segment.query, as_of,
                )
                for position, segment in enumerate(segment_set.segments, start=1)
            ],
        )
