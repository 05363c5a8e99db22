"""Load archived Nector webhook deliveries (``webhook_events.jsonl``) into the staging tables.

Each line is one delivery: ``{"delivery_id", "topic", "received_at", "payload"}``. Every well-formed
delivery is kept raw in ``sync.webhook_delivery``, keyed by delivery id, so a delivery archived twice
loads once. Deliveries of a mapped topic then go through the same checks and upsert as CSV records.
``include/nector/webhook_topics.json`` declares, per topic, which payload keys fill which columns.
A topic without a mapping is counted and kept raw, never fatal.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.copy import LibpqWriter

from loyalty_sync.contract import ENTITIES, Entity
from loyalty_sync.ingest import loader
from loyalty_sync.ingest.manifest import Manifest
from loyalty_sync.paths import PROJECT_ROOT
from loyalty_sync.warehouse.sql import load_sql

log = logging.getLogger(__name__)

WEBHOOK_FILE_NAME = "webhook_events.jsonl"
TOPIC_MAPPING_PATH = PROJECT_ROOT / "include" / "nector" / "webhook_topics.json"
ENVELOPE_FIELDS = {"@delivery_id": "delivery_id", "@topic": "topic", "@received_at": "received_at"}


class MappingError(ValueError):
    """The topic mapping file is invalid; the message names the topic and the key."""


@dataclass(frozen=True)
class TopicMapping:
    topic: str
    entity: Entity
    columns: dict[str, tuple[str, ...]]  # column -> payload paths tried in order
    assumption: str


def is_webhook_file(file_name: str) -> bool:
    return file_name in (WEBHOOK_FILE_NAME, WEBHOOK_FILE_NAME + loader.GZIP_SUFFIX)


@lru_cache(maxsize=4)
def load_topic_mappings(path: Path = TOPIC_MAPPING_PATH) -> dict[str, TopicMapping]:
    """Read and check the topic mapping file.

    Raises:
        MappingError: for an unknown entity or column, a missing required column, or a bad ``same_as``.
    """
    document = json.loads(path.read_text(encoding="utf-8"))
    topics: dict[str, Any] = document["topics"]
    entities = {entity.name: entity for entity in ENTITIES}
    mappings: dict[str, TopicMapping] = {}
    for topic, spec in topics.items():
        source = spec
        if "same_as" in spec:
            source = topics.get(spec["same_as"])
            if source is None or "same_as" in source:
                raise MappingError(f"{path}: topic {topic!r}: same_as {spec['same_as']!r} must name a topic with columns")
        entity = entities.get(source.get("entity", ""))
        if entity is None:
            raise MappingError(f"{path}: topic {topic!r}: unknown entity {source.get('entity')!r}")
        known = {column.name for column in entity.columns}
        columns = {name: tuple(paths) for name, paths in source["columns"].items()}
        unknown = sorted(set(columns) - known)
        if unknown:
            raise MappingError(f"{path}: topic {topic!r}: {entity.name} has no columns {unknown}")
        missing = sorted(set(entity.required_columns) - set(columns))
        if missing:
            raise MappingError(f"{path}: topic {topic!r}: required columns of {entity.name} not mapped: {missing}")
        mappings[topic] = TopicMapping(topic, entity, columns, source.get("assumption", ""))
    return mappings


def load_webhook_file(
    conn: psycopg.Connection,
    path: Any,
    relative_path: str,
    checksum: str,
    manifest: Manifest,
    run_id: str,
    max_rejected_share: float,
) -> loader.FileResult:
    """Load one webhook archive inside the caller's transaction."""
    mappings = load_topic_mappings()
    conn.execute(sql.SQL("SET LOCAL TIME ZONE {}").format(sql.Literal(manifest.timezone)))
    export_file_id = conn.execute(
        """
        INSERT INTO sync.export_file (path, sha256, workspace_id, export_id, entity, exported_at, currency_code, status, run_id)
        VALUES (%s, %s, %s, %s, 'webhook_events', %s, %s, 'loaded', %s)
        ON CONFLICT (path, sha256) DO UPDATE SET status = 'loaded', reason = NULL, run_id = EXCLUDED.run_id,
                                                 loaded_at = now()
        RETURNING export_file_id
        """,
        (relative_path, checksum, manifest.workspace_id, manifest.export_id, manifest.exported_at,
         manifest.currency_code, run_id),
    ).fetchone()[0]
    conn.execute("DELETE FROM sync.rejected_row WHERE export_file_id = %s", (export_file_id,))

    lines = _copy_lines(conn, path)
    expected = manifest.files[path.name].rows
    if lines != expected:
        raise loader.FileRejected(f"has {lines} lines but the manifest says {expected}")

    malformed = _set_aside_malformed(conn, export_file_id)
    new_deliveries = conn.execute(
        load_sql("ingest/insert_webhook_deliveries.sql"),
        {"workspace_id": manifest.workspace_id, "known_topics": sorted(mappings), "export_file_id": export_file_id},
    ).fetchall()
    topics = Counter(topic for _, topic, _ in new_deliveries)
    unknown_topics = Counter(topic for _, topic, status in new_deliveries if status == "unknown_topic")
    if unknown_topics:
        log.warning("%s: kept %d deliveries of topics without a mapping, raw only: %s",
                    relative_path, sum(unknown_topics.values()), dict(unknown_topics))
    duplicates = lines - malformed - len(new_deliveries)

    rows_rejected, rows_changed, status, reason = malformed, 0, "loaded", None
    for entity in ENTITIES:
        entity_topics = sorted(topic for topic, mapping in mappings.items() if mapping.entity is entity and topics[topic])
        if not entity_topics:
            continue
        _fill_raw_records(conn, entity, [mappings[topic] for topic in entity_topics], export_file_id,
                          manifest.workspace_id)
        outcome = loader.check_and_upsert(conn, entity, export_file_id, manifest.workspace_id, [], lines,
                                          max_rejected_share, relative_path, header_lines=0)
        conn.execute("DROP TABLE raw_records, checked_records")
        rows_rejected += outcome.rows_rejected
        rows_changed += outcome.rows_changed
        if outcome.status == "quarantined":
            status, reason = outcome.status, outcome.reason
            break

    if status == "loaded" and lines and rows_rejected / lines > max_rejected_share:
        status = "quarantined"
        reason = (f"{rows_rejected} of {lines} deliveries ({rows_rejected / lines:.1%}) were malformed or failed "
                  f"their checks, above max_rejected_share ({max_rejected_share:.1%}); none loaded.")
    if status == "quarantined":
        # Nothing of a quarantined file may stay loaded; only its rejected rows are kept for diagnosis.
        raise Quarantined(export_file_id, reason or "", lines, rows_rejected)

    outcome = loader.FileOutcome(status, lines, rows_rejected, rows_changed, reason)
    loader.finish_file(conn, export_file_id, outcome)
    log.info("Loaded %s: %d deliveries, %d new, %d already seen, %d malformed, %d records rejected, %d rows changed",
             relative_path, lines, len(new_deliveries), duplicates, malformed, rows_rejected - malformed, rows_changed)
    return loader.FileResult(relative_path, "webhook_events", status, lines, lines - rows_rejected, rows_rejected,
                             rows_changed, reason)


class Quarantined(Exception):
    """Too many deliveries of a webhook archive failed; its transaction must roll back."""

    def __init__(self, export_file_id: int, reason: str, lines: int, rows_rejected: int) -> None:
        super().__init__(reason)
        self.export_file_id = export_file_id
        self.reason = reason
        self.lines = lines
        self.rows_rejected = rows_rejected


def _copy_lines(conn: psycopg.Connection, path: Any) -> int:
    conn.execute("CREATE TEMP TABLE webhook_lines (line_number bigint GENERATED ALWAYS AS IDENTITY, line text) "
                 "ON COMMIT DROP")
    try:
        with conn.cursor() as cursor, \
                cursor.copy(load_sql("ingest/copy_webhook_lines.sql"), writer=LibpqWriter(cursor)) as copy, \
                loader._open_data(path) as stream:
            while chunk := stream.read(1 << 20):
                copy.write(chunk)
    except psycopg.DataError as error:
        raise loader.FileRejected(f"is not valid UTF-8 JSON lines: {error.diag.message_primary}") from error
    conn.execute("DELETE FROM webhook_lines WHERE btrim(line) = ''")
    return conn.execute("SELECT count(*) FROM webhook_lines").fetchone()[0]


def _set_aside_malformed(conn: psycopg.Connection, export_file_id: int) -> int:
    """Parse every line and record the malformed ones in sync.rejected_row; return how many."""
    conn.execute(
        """
        CREATE TEMP TABLE webhook_docs ON COMMIT DROP AS
        SELECT line_number, doc,
               CASE WHEN doc IS NULL THEN 'invalid JSON'
                    WHEN jsonb_typeof(doc) <> 'object' THEN 'a line must be a JSON object'
                    WHEN coalesce(doc ->> 'delivery_id', '') = '' THEN 'missing delivery_id'
                    WHEN coalesce(doc ->> 'topic', '') = '' THEN 'missing topic'
                    WHEN jsonb_typeof(doc -> 'payload') IS DISTINCT FROM 'object' THEN 'payload must be a JSON object'
               END AS problem,
               line
        FROM (SELECT line_number, nector.try_jsonb(line) AS doc, line FROM webhook_lines) AS parsed
        """
    )
    return conn.execute(
        """
        INSERT INTO sync.rejected_row (export_file_id, record_number, line_number, column_name, value, reason, record)
        SELECT %s, line_number, line_number, NULL, left(line, 1000), problem, jsonb_build_object('line', left(line, 10000))
        FROM webhook_docs
        WHERE problem IS NOT NULL
        """,
        (export_file_id,),
    ).rowcount


def _fill_raw_records(
    conn: psycopg.Connection, entity: Entity, mappings: list[TopicMapping], export_file_id: int, workspace_id: str
) -> None:
    """Put the new deliveries of ``mappings``' topics into ``raw_records``, numbered by their line."""
    columns = [column.name for column in entity.columns]
    conn.execute(
        sql.SQL(load_sql("ingest/create_raw_records.sql")).format(
            columns=sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(name)) for name in columns)
        )
    )
    selects = []
    for mapping in mappings:
        values = [_path_expression(mapping.columns.get(name, ()), workspace_id) for name in columns]
        selects.append(
            sql.SQL("SELECT d.line_number, {values} FROM webhook_docs AS d "
                    "JOIN sync.webhook_delivery AS w ON w.export_file_id = {file} AND w.line_number = d.line_number "
                    "WHERE w.topic = {topic}").format(
                values=sql.SQL(", ").join(values), file=sql.Literal(export_file_id), topic=sql.Literal(mapping.topic)
            )
        )
    conn.execute(
        sql.SQL("INSERT INTO raw_records (record_number, {columns}) OVERRIDING SYSTEM VALUE {selects}").format(
            columns=sql.SQL(", ").join(sql.Identifier(name) for name in columns),
            selects=sql.SQL(" UNION ALL ").join(selects),
        )
    )


def _path_expression(paths: tuple[str, ...], workspace_id: str) -> sql.Composable:
    """The first non-empty value among ``paths`` in a delivery, as text."""
    if not paths:
        return sql.SQL("NULL::text")
    options: list[sql.Composable] = []
    for path in paths:
        if path == "@workspace_id":
            options.append(sql.Literal(workspace_id))
        elif path == "@received_at":
            # Unix seconds or ISO 8601 in the envelope, handed on as ISO 8601 in UTC.
            options.append(sql.SQL(
                "to_char(nector.received_at(d.doc ->> 'received_at') AT TIME ZONE 'UTC', "
                "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
            ))
        elif path in ENVELOPE_FIELDS:
            options.append(sql.SQL("NULLIF(d.doc ->> {}, '')").format(sql.Literal(ENVELOPE_FIELDS[path])))
        else:
            keys = sql.Literal("{" + ",".join(path.split(".")) + "}")
            options.append(sql.SQL("NULLIF(d.doc -> 'payload' #>> {}, '')").format(keys))
    return sql.SQL("coalesce({})").format(sql.SQL(", ").join(options))
