"""Load export files into the ``nector`` staging tables.

Each file loads in one transaction: COPY into a temporary table of text columns, check every record
in SQL, set the failures aside in ``sync.rejected_row`` and upsert the rest by natural key, then
record the file in ``sync.export_file``. A crash mid-file therefore leaves neither rows nor a record
of the file, and the next run loads it again.

Two outcomes stop a file from loading at all, and both make the load fail once every other file has
been loaded, so that derive and deliver never run on a partial picture:

- rejected: the checksum, record count, header, CSV syntax, encoding or manifest is wrong;
- quarantined: more than ``max_rejected_share`` of its records failed their checks, which points at
  a broken export rather than a few bad rows.

An operator who accepts the loss sets the file's status to ``dismissed``; later runs then skip it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import logging
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import psycopg
from psycopg import sql
from psycopg.copy import LibpqWriter

from loyalty_sync.contract import ENTITIES, ENTITIES_BY_FILE, Entity
from loyalty_sync.ingest import checks as record_checks
from loyalty_sync.ingest.manifest import Manifest, ManifestError, find_manifests, read_manifest
from loyalty_sync.warehouse.sql import load_sql

log = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20
_UTF8_BOM = b"\xef\xbb\xbf"
GZIP_SUFFIX = ".gz"
# Statuses of sync.export_file that make a later run skip a file with the same path and content.
_DONE_STATUSES = ("loaded", "dismissed")


class FileRejected(Exception):
    """The whole file is rejected. The message gives the reason and what to fix."""


class IngestFailed(RuntimeError):
    """Files were rejected or quarantined; the message lists each with its reason."""


@dataclass
class FileResult:
    """Outcome of one export file."""

    path: str
    entity: str | None
    status: str  # loaded, rejected, quarantined or skipped (loaded or dismissed before)
    rows_in_file: int = 0
    rows_valid: int = 0
    rows_rejected: int = 0
    rows_changed: int = 0
    reason: str | None = None


@dataclass
class LoadSummary:
    files: list[FileResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for result in self.files if result.status == status)

    @property
    def failed_files(self) -> list[FileResult]:
        return [result for result in self.files if result.status in ("rejected", "quarantined")]


def sha256_of(path: Any) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def load_exports(
    conn: psycopg.Connection, export_root: Any, run_id: str, *, max_rejected_share: float = 0.05
) -> LoadSummary:
    """Load every export file under ``export_root`` not loaded before, oldest export first.

    ``export_root`` is a ``pathlib.Path`` or an Airflow ``ObjectStoragePath``. ``conn`` must be in
    autocommit mode, so that each file commits on its own.
    """
    summary = LoadSummary()
    # Room for a large file's landing tables in memory; it takes effect only before the session's first
    # temporary table, and is ignored after.
    conn.execute("SET temp_buffers = '256MB'")
    manifests: list[Manifest] = []
    for manifest_path in find_manifests(export_root):
        try:
            manifests.append(read_manifest(manifest_path))
        except ManifestError as error:
            log.error("Export %s has an invalid manifest; rejecting its files: %s", manifest_path.parent, error)
            for data_path in _data_files(manifest_path.parent):
                summary.files.append(_record_rejection(conn, data_path, export_root, None, None, str(error), run_id))
    manifests.sort(key=lambda manifest: (manifest.exported_at, str(manifest.path)))
    log.info("Found %d exports under %s", len(manifests), export_root)

    for manifest in manifests:
        summary.files.extend(load_export(conn, manifest, export_root, run_id, max_rejected_share))

    log.info(
        "Load finished: %d files loaded, %d rejected, %d quarantined, %d skipped as loaded before; "
        "%d rows valid, %d rejected",
        summary.count("loaded"), summary.count("rejected"), summary.count("quarantined"), summary.count("skipped"),
        sum(r.rows_valid for r in summary.files), sum(r.rows_rejected for r in summary.files),
    )
    return summary


def raise_for_failed_files(summary: LoadSummary) -> None:
    """Raise ``IngestFailed`` naming every rejected or quarantined file of this load."""
    failed = summary.failed_files
    if not failed:
        return
    details = "\n".join(f"  {result.status}: {result.path}: {result.reason}" for result in failed)
    raise IngestFailed(
        f"{len(failed)} export files did not load, so derive and deliver are not run on a partial picture:\n"
        f"{details}\nFix or replace each file (a new sha256 is loaded as a new version), or accept the loss with "
        "UPDATE sync.export_file SET status = 'dismissed' WHERE path = '...'."
    )


def load_export(
    conn: psycopg.Connection, manifest: Manifest, export_root: Any, run_id: str, max_rejected_share: float = 0.05
) -> list[FileResult]:
    """Load the files of one export folder in contract order."""
    results: list[FileResult] = []
    folder = manifest.folder
    on_disk = {path.name: path for path in _data_files(folder)}

    for name in sorted(set(on_disk) - set(manifest.files)):
        reason = f"{name} is not listed in {manifest.path.name}"
        results.append(_record_rejection(conn, on_disk[name], export_root, manifest, None, reason, run_id))
    for name in sorted(set(manifest.files) & set(on_disk)):
        if entity_for(name) is None and not webhooks.is_webhook_file(name):
            reason = f"{name} is not an entity of export contract version 1; expected one of {sorted(ENTITIES_BY_FILE)}"
            results.append(_record_rejection(conn, on_disk[name], export_root, manifest, None, reason, run_id))

    for entity in ENTITIES:
        for name in (entity.file_name, entity.file_name + GZIP_SUFFIX):
            if name not in manifest.files:
                continue
            if name not in on_disk:
                reason = f"{name} is listed in {manifest.path.name} but missing from {folder}"
                results.append(_record_rejection(conn, folder / name, export_root, manifest, entity, reason, run_id))
                continue
            results.append(load_file(conn, on_disk[name], export_root, manifest, entity, run_id, max_rejected_share))

    # Webhook deliveries last: they are often newer than the CSV snapshot of the same export.
    for name in sorted(name for name in manifest.files if webhooks.is_webhook_file(name)):
        if name not in on_disk:
            reason = f"{name} is listed in {manifest.path.name} but missing from {folder}"
            results.append(_record_rejection(conn, folder / name, export_root, manifest, None, reason, run_id))
            continue
        results.append(load_file(conn, on_disk[name], export_root, manifest, None, run_id, max_rejected_share))
    return results


def entity_for(file_name: str) -> Entity | None:
    """Return the contract entity a file name belongs to (``customers.csv`` or ``customers.csv.gz``)."""
    return ENTITIES_BY_FILE.get(file_name.removesuffix(GZIP_SUFFIX))


def load_file(
    conn: psycopg.Connection,
    path: Any,
    export_root: Any,
    manifest: Manifest,
    entity: Entity | None,
    run_id: str,
    max_rejected_share: float = 0.05,
) -> FileResult:
    """Load one file unless a file with the same path and content was loaded or dismissed before.

    ``entity`` is None for a webhook archive, whose deliveries span several entities.
    """
    relative_path = _relative(path, export_root)
    checksum = sha256_of(path)
    done = conn.execute(
        "SELECT status FROM sync.export_file WHERE path = %s AND sha256 = %s AND status = ANY(%s)",
        (relative_path, checksum, list(_DONE_STATUSES)),
    ).fetchone()
    entity_name = entity.name if entity else "webhook_events"
    if done:
        log.info("Skipping %s: %s before with the same sha256", relative_path, done[0])
        return FileResult(relative_path, entity_name, "skipped")

    expected = manifest.files[path.name]
    try:
        if checksum != expected.sha256:
            raise FileRejected(f"sha256 {checksum} does not match the manifest's {expected.sha256}")
        with conn.transaction():
            if entity is None:
                result = webhooks.load_webhook_file(conn, path, relative_path, checksum, manifest, run_id,
                                                    max_rejected_share)
            else:
                result = _load_file_rows(conn, path, relative_path, checksum, manifest, entity, run_id,
                                         max_rejected_share)
    except FileRejected as error:
        return _record_rejection(conn, path, export_root, manifest, entity, str(error), run_id, checksum)
    except webhooks.Quarantined as quarantine:
        result = _record_quarantine(conn, relative_path, checksum, manifest, run_id, quarantine)

    if result.status == "quarantined":
        log.error("Quarantined %s: %s", relative_path, result.reason)
    elif entity is not None:
        log.info(
            "Loaded %s into %s: %d records, %d valid, %d rejected, %d rows changed",
            relative_path, entity.table, result.rows_in_file, result.rows_valid, result.rows_rejected,
            result.rows_changed,
        )
    return result


def _load_file_rows(
    conn: psycopg.Connection,
    path: Any,
    relative_path: str,
    checksum: str,
    manifest: Manifest,
    entity: Entity,
    run_id: str,
    max_rejected_share: float,
) -> FileResult:
    header = _read_header(path)
    file_columns, unknown = _map_header(header, entity, path.name)

    conn.execute(sql.SQL("SET LOCAL TIME ZONE {}").format(sql.Literal(manifest.timezone)))
    # Sorting a large file for the upsert's DISTINCT ON spills to disk at the default 4 MB.
    conn.execute("SET LOCAL work_mem = '256MB'")
    export_file_id = conn.execute(
        """
        INSERT INTO sync.export_file
            (path, sha256, workspace_id, export_id, entity, exported_at, currency_code, status, run_id, unknown_columns)
        VALUES (%s, %s, %s, %s, %s, %s, %s, 'loaded', %s, %s)
        ON CONFLICT (path, sha256) DO UPDATE SET status = 'loaded', reason = NULL, run_id = EXCLUDED.run_id,
                                                 unknown_columns = EXCLUDED.unknown_columns, loaded_at = now()
        RETURNING export_file_id
        """,
        (relative_path, checksum, manifest.workspace_id, manifest.export_id, entity.name, manifest.exported_at,
         manifest.currency_code, run_id, [name for _, name in unknown] or None),
    ).fetchone()[0]
    conn.execute("DELETE FROM sync.rejected_row WHERE export_file_id = %s", (export_file_id,))

    raw_columns = [column.name for column in entity.columns] + [raw for raw, _ in unknown]
    conn.execute(
        sql.SQL(load_sql("ingest/create_raw_records.sql")).format(
            columns=sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(name)) for name in raw_columns)
        )
    )
    physical_lines = _copy_file(conn, path, file_columns)

    rows_in_file = conn.execute("SELECT count(*) FROM raw_records").fetchone()[0]
    expected_rows = manifest.files[path.name].rows
    if rows_in_file != expected_rows:
        raise FileRejected(f"has {rows_in_file} records but the manifest says {expected_rows}")

    outcome = check_and_upsert(
        conn, entity, export_file_id, manifest.workspace_id, unknown, rows_in_file, max_rejected_share,
        relative_path, line_numbers_need_fixing=physical_lines != rows_in_file + 1,
    )
    if unknown:
        log.warning("%s: kept %d columns the contract does not know in _extra: %s",
                    relative_path, len(unknown), [name for _, name in unknown])

    finish_file(conn, export_file_id, outcome)
    return FileResult(relative_path, entity.name, outcome.status, outcome.rows_in_file, outcome.rows_valid,
                      outcome.rows_rejected, outcome.rows_changed, outcome.reason)


@dataclass
class FileOutcome:
    """Counts and status of one file's records after checking and upserting."""

    status: str
    rows_in_file: int
    rows_rejected: int
    rows_changed: int
    reason: str | None = None

    @property
    def rows_valid(self) -> int:
        return self.rows_in_file - self.rows_rejected


def check_and_upsert(
    conn: psycopg.Connection,
    entity: Entity,
    export_file_id: int,
    workspace_id: str,
    unknown: list[tuple[str, str]],
    rows_in_file: int,
    max_rejected_share: float,
    relative_path: str,
    *,
    line_numbers_need_fixing: bool = False,
    header_lines: int = 1,
) -> FileOutcome:
    """Check the records in ``raw_records``, set failures aside and upsert the rest, unless too many fail.

    ``rows_in_file`` is the denominator of the rejected share: for a webhook file it covers every
    delivery of the file, not only those of this entity. ``header_lines`` is added to a record number
    to give its physical line: 1 for a CSV header, 0 for JSON lines numbered by line.
    """
    checks = record_checks.build_checks(entity, workspace_id)

    def check_statement(fast: bool) -> sql.Composed:
        return sql.SQL(load_sql("ingest/check_records.sql")).format(
            cleaned_columns=sql.SQL(",\n").join(record_checks.cleaned_expression(c) for c in entity.columns),
            typed_columns=sql.SQL(",\n").join(record_checks.typed_expression(c, fast) for c in entity.columns),
            failed_check=record_checks.failed_check_expression(checks),
            extra=_extra_expression(unknown),
            typed_names=sql.SQL(", ").join(sql.Identifier(c.name) for c in entity.columns),
        )

    try:
        with conn.transaction():
            conn.execute(check_statement(fast=True))
    except psycopg.DataError as error:
        log.info("%s: a value needs the strict checks (%s); checking every record strictly",
                 relative_path, error.diag.message_primary)
        conn.execute(check_statement(fast=False))
    rows_rejected = conn.execute(
        sql.SQL(load_sql("ingest/insert_rejected_rows.sql")).format(
            export_file_id=sql.Literal(export_file_id), checks=record_checks.checks_values(checks),
            header_lines=sql.Literal(header_lines),
        )
    ).rowcount
    if rows_rejected and line_numbers_need_fixing:
        # Some quoted values span lines, so record number + 1 is not the physical line.
        raw_columns = [column.name for column in entity.columns] + [raw for raw, _ in unknown]
        conn.execute(
            sql.SQL(load_sql("ingest/set_line_numbers.sql")).format(
                export_file_id=sql.Literal(export_file_id), newlines=_newline_count_expression(raw_columns)
            )
        )

    if rows_in_file and rows_rejected / rows_in_file > max_rejected_share:
        reason = (
            f"{rows_rejected} of {rows_in_file} records ({rows_rejected / rows_in_file:.1%}) failed their checks, "
            f"above max_rejected_share ({max_rejected_share:.1%}); none loaded. "
            f"{_top_reasons(conn, export_file_id)}"
        )
        return FileOutcome("quarantined", rows_in_file, rows_rejected, 0, reason)

    rows_changed = _write_staging(conn, entity, export_file_id)
    if rows_rejected:
        _log_rejection_reasons(conn, export_file_id, relative_path)
    return FileOutcome("loaded", rows_in_file, rows_rejected, rows_changed)


def finish_file(conn: psycopg.Connection, export_file_id: int, outcome: FileOutcome) -> None:
    conn.execute(
        """
        UPDATE sync.export_file
        SET status = %s, reason = %s, rows_in_file = %s, rows_valid = %s, rows_rejected = %s, rows_changed = %s
        WHERE export_file_id = %s
        """,
        (outcome.status, outcome.reason, outcome.rows_in_file, outcome.rows_valid, outcome.rows_rejected,
         outcome.rows_changed, export_file_id),
    )


def _write_staging(conn: psycopg.Connection, entity: Entity, export_file_id: int) -> int:
    """Upsert the valid records; into an empty table, insert them and rebuild its secondary indexes.

    Building an index once after the insert is several times faster than updating it row by row,
    which matters for a first load of millions of ledger rows. Returns the rows inserted or updated.
    """
    table = sql.Identifier(*entity.table.split("."))
    empty = conn.execute(sql.SQL("SELECT NOT EXISTS (SELECT 1 FROM {})").format(table)).fetchone()[0]
    if not empty:
        return conn.execute(_upsert_statement(entity, export_file_id)).rowcount

    schema, name = entity.table.split(".")
    indexes = conn.execute(
        """
        SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
        FROM pg_index AS i
        WHERE i.indrelid = %s::regclass AND NOT i.indisprimary AND NOT i.indisunique
        """,
        (f"{schema}.{name}",),
    ).fetchall()
    for index_name, _ in indexes:
        conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(index_name)))
    inserted = conn.execute(_upsert_statement(entity, export_file_id, template="ingest/insert_staging.sql")).rowcount
    for _, definition in indexes:
        conn.execute(definition)
    return inserted


def _upsert_statement(entity: Entity, export_file_id: int, template: str = "ingest/upsert_staging.sql") -> sql.Composed:
    columns = [column.name for column in entity.columns] + [column.name for column in entity.derived]
    values = [sql.Identifier(column.name) for column in entity.columns] + [
        sql.SQL(column.expression) for column in entity.derived
    ]
    updatable = [name for name in columns if name not in entity.natural_key]
    return sql.SQL(load_sql(template)).format(
        table=sql.Identifier(*entity.table.split(".")),
        columns=sql.SQL(", ").join(sql.Identifier(name) for name in columns),
        key=sql.SQL(", ").join(sql.Identifier(name) for name in entity.natural_key),
        values=sql.SQL(", ").join(values),
        export_file_id=sql.Literal(export_file_id),
        version=sql.Identifier(entity.version_column),
        assignments=sql.SQL(", ").join(
            sql.SQL("{name} = EXCLUDED.{name}").format(name=sql.Identifier(name)) for name in updatable
        ),
    )


def _extra_expression(unknown: list[tuple[str, str]]) -> sql.Composable:
    """Return a jsonb expression of the unknown columns' values keyed by their header names, NULL when empty."""
    if not unknown:
        return sql.SQL("NULL::jsonb")
    pairs = sql.SQL(", ").join(
        sql.SQL("{}, NULLIF(btrim({}), '')").format(sql.Literal(name), sql.Identifier(raw)) for raw, name in unknown
    )
    return sql.SQL("NULLIF(jsonb_strip_nulls(jsonb_build_object({})), '{{}}'::jsonb)").format(pairs)


def _newline_count_expression(raw_columns: list[str]) -> sql.Composable:
    joined = sql.SQL("concat({})").format(sql.SQL(", ").join(sql.Identifier(name) for name in raw_columns))
    return sql.SQL("length({joined}) - length(replace({joined}, E'\\n', ''))").format(joined=joined)


@contextmanager
def _open_data(path: Any) -> Iterator[IO[bytes]]:
    """Open a data file for reading its decompressed bytes, with any UTF-8 byte order mark dropped."""
    with path.open("rb") as raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if path.name.endswith(GZIP_SUFFIX) else raw
        try:
            first = stream.read(len(_UTF8_BOM))
            yield _PrefixedStream(first.removeprefix(_UTF8_BOM), stream)
        except (EOFError, gzip.BadGzipFile, zlib.error) as error:
            raise FileRejected(f"is not a complete gzip file: {error}") from error


class _PrefixedStream(io.RawIOBase):
    """A stream that returns ``prefix`` before the rest of ``stream``."""

    def __init__(self, prefix: bytes, stream: IO[bytes]) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._prefix:
            return self._stream.read(size)
        head, self._prefix = self._prefix, b""
        if size < 0:
            return head + self._stream.read()
        return head + self._stream.read(size - len(head)) if size > len(head) else head

    def readline(self, size: int = -1) -> bytes:
        if self._prefix:
            head, self._prefix = self._prefix, b""
            if b"\n" in head:
                line, rest = head.split(b"\n", 1)
                self._prefix = rest
                return line + b"\n"
            return head + self._stream.readline()
        return self._stream.readline()


def _read_header(path: Any) -> list[str]:
    try:
        with _open_data(path) as stream:
            first_line = stream.readline()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise FileRejected(f"is not a complete gzip file: {error}") from error
    if not first_line.strip():
        raise FileRejected("is empty: expected a header row")
    try:
        text = first_line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileRejected(f"header is not valid UTF-8: {error}") from error
    return next(csv.reader(io.StringIO(text)))


def _map_header(header: list[str], entity: Entity, file_name: str) -> tuple[list[str], list[tuple[str, str]]]:
    """Return the raw-table column for each header field, and the (raw column, header name) of unknown ones.

    Header names match the contract in any case and order, with surrounding spaces ignored.
    """
    known = {column.name for column in entity.columns}
    mapped: list[str] = []
    seen: set[str] = set()
    unknown: list[tuple[str, str]] = []
    for position, field_name in enumerate(header, start=1):
        name = field_name.strip().lower()
        if not name:
            raise FileRejected(f"header field {position} is empty")
        if name in seen:
            raise FileRejected(f"header names column {name!r} twice")
        seen.add(name)
        if name in known:
            mapped.append(name)
        else:
            raw = f"_extra_{position}"
            unknown.append((raw, field_name.strip()))
            mapped.append(raw)

    missing = [name for name in entity.required_columns if name not in seen]
    if missing:
        raise FileRejected(f"required columns missing from the header: {', '.join(missing)}")
    return mapped, unknown


def _copy_file(conn: psycopg.Connection, path: Any, file_columns: list[str]) -> int:
    """Stream the file into ``raw_records``; return its number of physical lines."""
    statement = sql.SQL(load_sql("ingest/copy_raw_records.sql")).format(
        columns=sql.SQL(", ").join(sql.Identifier(name) for name in file_columns)
    )
    newlines = 0
    last_byte = b""
    try:
        # LibpqWriter sends each chunk before reading the next. psycopg's default writer queues up to
        # 1024 chunks in memory whenever the server falls behind, so memory would grow with the file.
        with conn.cursor() as cursor, cursor.copy(statement, writer=LibpqWriter(cursor)) as copy, \
                _open_data(path) as stream:
            while chunk := stream.read(_CHUNK_BYTES):
                newlines += chunk.count(b"\n")
                last_byte = chunk[-1:]
                copy.write(chunk)
    except psycopg.DataError as error:
        diagnostic = error.diag
        where = f" ({diagnostic.context.strip()})" if diagnostic.context else ""
        raise FileRejected(f"is not valid CSV: {diagnostic.message_primary}{where}") from error
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise FileRejected(f"is not a complete gzip file: {error}") from error
    return newlines + (1 if last_byte not in (b"", b"\n") else 0)


def _top_reasons(conn: psycopg.Connection, export_file_id: int) -> str:
    rows = conn.execute(
        """
        SELECT column_name, reason, count(*) FROM sync.rejected_row WHERE export_file_id = %s
        GROUP BY column_name, reason ORDER BY count(*) DESC, column_name LIMIT 3
        """,
        (export_file_id,),
    ).fetchall()
    return "Most frequent: " + "; ".join(f"{column} {reason} ({count})" for column, reason, count in rows) + "."


def _log_rejection_reasons(conn: psycopg.Connection, export_file_id: int, relative_path: str) -> None:
    rows = conn.execute(
        """
        SELECT column_name, reason, count(*), min(line_number)
        FROM sync.rejected_row
        WHERE export_file_id = %s
        GROUP BY column_name, reason
        ORDER BY count(*) DESC, column_name
        """,
        (export_file_id,),
    ).fetchall()
    for column_name, reason, count, first_line in rows:
        log.warning("%s: set aside %d records (first on line %d), column %s: %s",
                    relative_path, count, first_line, column_name, reason)


def _record_quarantine(
    conn: psycopg.Connection, relative_path: str, checksum: str, manifest: Manifest, run_id: str, quarantine: Any
) -> FileResult:
    """Record a quarantined webhook archive after its transaction rolled back, so nothing of it stays."""
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO sync.export_file (path, sha256, workspace_id, export_id, entity, exported_at, status, reason,
                                          rows_in_file, rows_rejected, run_id)
            VALUES (%s, %s, %s, %s, 'webhook_events', %s, 'quarantined', %s, %s, %s, %s)
            ON CONFLICT (path, sha256) DO UPDATE SET status = 'quarantined', reason = EXCLUDED.reason,
                rows_in_file = EXCLUDED.rows_in_file, rows_rejected = EXCLUDED.rows_rejected,
                run_id = EXCLUDED.run_id, loaded_at = now()
            """,
            (relative_path, checksum, manifest.workspace_id, manifest.export_id, manifest.exported_at,
             quarantine.reason, quarantine.lines, quarantine.rows_rejected, run_id),
        )
    return FileResult(relative_path, "webhook_events", "quarantined", quarantine.lines,
                      quarantine.lines - quarantine.rows_rejected, quarantine.rows_rejected, 0, quarantine.reason)


def _record_rejection(
    conn: psycopg.Connection,
    path: Any,
    export_root: Any,
    manifest: Manifest | None,
    entity: Entity | None,
    reason: str,
    run_id: str,
    checksum: str | None = None,
) -> FileResult:
    relative_path = _relative(path, export_root)
    log.error("Rejected %s: %s", relative_path, reason)
    if checksum is None:
        checksum = sha256_of(path) if path.is_file() else (manifest.files[path.name].sha256 if manifest else "")
    with conn.transaction():
        dismissed = conn.execute(
            "SELECT 1 FROM sync.export_file WHERE path = %s AND sha256 = %s AND status = 'dismissed'",
            (relative_path, checksum),
        ).fetchone()
        if dismissed:
            log.info("Skipping %s: dismissed by an operator", relative_path)
            return FileResult(relative_path, entity.name if entity else None, "skipped", reason=reason)
        conn.execute(
            """
            INSERT INTO sync.export_file (path, sha256, workspace_id, export_id, entity, exported_at, status, reason, run_id)
            VALUES (%s, %s, %s, %s, %s, %s, 'rejected', %s, %s)
            ON CONFLICT (path, sha256) DO UPDATE SET reason = EXCLUDED.reason, run_id = EXCLUDED.run_id, loaded_at = now()
            """,
            (
                relative_path,
                checksum,
                manifest.workspace_id if manifest else None,
                manifest.export_id if manifest else None,
                entity.name if entity else None,
                manifest.exported_at if manifest else None,
                reason,
                run_id,
            ),
        )
    return FileResult(relative_path, entity.name if entity else None, "rejected", reason=reason)


def _data_files(folder: Any) -> list[Any]:
    suffixes = (".csv", ".csv" + GZIP_SUFFIX, ".jsonl", ".jsonl" + GZIP_SUFFIX)
    return sorted((path for path in folder.iterdir() if path.name.endswith(suffixes)), key=lambda path: path.name)


def _relative(path: Any, export_root: Any) -> str:
    root = str(export_root).rstrip("/")
    text = str(path)
    return text[len(root) + 1:] if text.startswith(root + "/") else text


# Imported last: the webhook loader builds on this module's check and upsert step.
from loyalty_sync.ingest import webhooks  # noqa: E402
