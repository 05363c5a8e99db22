"""Load export files into the ``nector`` staging tables.

Each file loads in one transaction: COPY into a temporary table of text columns, check every record
in SQL, set the failures aside in ``sync.rejected_row`` and upsert the rest by natural key, then
record the file in ``sync.export_file``. A crash mid-file therefore leaves neither rows nor a record
of the file, and the next run loads it again. A file whose checksum, record count, header or CSV
syntax is wrong is rejected whole: none of its rows load and ``sync.export_file`` records the reason.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from loyalty_sync.contract import ENTITIES, ENTITIES_BY_FILE, Entity
from loyalty_sync.ingest import checks as record_checks
from loyalty_sync.ingest.manifest import Manifest, ManifestError, find_manifests, read_manifest
from loyalty_sync.warehouse.sql import load_sql

log = logging.getLogger(__name__)

_COPY_CHUNK_BYTES = 1 << 20
_UTF8_BOM = b"\xef\xbb\xbf"


class FileRejected(Exception):
    """The whole file is rejected. The message gives the reason and what to fix."""


@dataclass
class FileResult:
    """Outcome of one export file."""

    path: str
    entity: str | None
    status: str  # loaded, rejected or skipped (loaded before)
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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_COPY_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def load_exports(conn: psycopg.Connection, export_root: Path, run_id: str) -> LoadSummary:
    """Load every export file under ``export_root`` not loaded before, oldest export first.

    ``conn`` must be in autocommit mode, so that each file commits on its own.
    """
    summary = LoadSummary()
    manifests: list[Manifest] = []
    for manifest_path in find_manifests(export_root):
        try:
            manifests.append(read_manifest(manifest_path))
        except ManifestError as error:
            log.error("Export %s has an invalid manifest; rejecting its files: %s", manifest_path.parent, error)
            for csv_path in sorted(manifest_path.parent.glob("*.csv")):
                summary.files.append(
                    _record_rejection(conn, csv_path, export_root, None, None, str(error), run_id)
                )
    manifests.sort(key=lambda manifest: (manifest.exported_at, str(manifest.path)))
    log.info("Found %d exports under %s", len(manifests), export_root)

    for manifest in manifests:
        summary.files.extend(load_export(conn, manifest, export_root, run_id))

    log.info(
        "Load finished: %d files loaded, %d rejected, %d already loaded; %d rows valid, %d rejected",
        summary.count("loaded"), summary.count("rejected"), summary.count("skipped"),
        sum(r.rows_valid for r in summary.files), sum(r.rows_rejected for r in summary.files),
    )
    return summary


def load_export(conn: psycopg.Connection, manifest: Manifest, export_root: Path, run_id: str) -> list[FileResult]:
    """Load the files of one export folder in contract order."""
    results: list[FileResult] = []
    folder = manifest.folder
    on_disk = {path.name for path in folder.glob("*.csv")}

    for name in sorted(on_disk - set(manifest.files)):
        reason = f"{name} is not listed in {manifest.path.name}"
        results.append(_record_rejection(conn, folder / name, export_root, manifest, None, reason, run_id))
    for name in sorted(set(manifest.files) - set(ENTITIES_BY_FILE)):
        if name in on_disk:
            reason = f"{name} is not an entity of export contract version 1; expected one of {sorted(ENTITIES_BY_FILE)}"
            results.append(_record_rejection(conn, folder / name, export_root, manifest, None, reason, run_id))

    for entity in ENTITIES:
        if entity.file_name not in manifest.files:
            continue
        path = folder / entity.file_name
        if not path.is_file():
            reason = f"{entity.file_name} is listed in {manifest.path.name} but missing from {folder}"
            results.append(_record_rejection(conn, path, export_root, manifest, entity, reason, run_id))
            continue
        results.append(load_file(conn, path, export_root, manifest, entity, run_id))
    return results


def load_file(
    conn: psycopg.Connection, path: Path, export_root: Path, manifest: Manifest, entity: Entity, run_id: str
) -> FileResult:
    """Load one file unless a file with the same path and content was loaded before."""
    relative_path = _relative(path, export_root)
    checksum = sha256_of(path)
    already = conn.execute(
        "SELECT 1 FROM sync.export_file WHERE path = %s AND sha256 = %s AND status = 'loaded'",
        (relative_path, checksum),
    ).fetchone()
    if already:
        log.info("Skipping %s: loaded before with the same sha256", relative_path)
        return FileResult(relative_path, entity.name, "skipped")

    expected = manifest.files[entity.file_name]
    try:
        if checksum != expected.sha256:
            raise FileRejected(f"sha256 {checksum} does not match the manifest's {expected.sha256}")
        with conn.transaction():
            result = _load_file_rows(conn, path, relative_path, checksum, manifest, entity, run_id)
    except FileRejected as error:
        return _record_rejection(conn, path, export_root, manifest, entity, str(error), run_id, checksum)

    log.info(
        "Loaded %s into %s: %d records, %d valid, %d rejected, %d rows changed",
        relative_path, entity.table, result.rows_in_file, result.rows_valid, result.rows_rejected, result.rows_changed,
    )
    return result


def _load_file_rows(
    conn: psycopg.Connection,
    path: Path,
    relative_path: str,
    checksum: str,
    manifest: Manifest,
    entity: Entity,
    run_id: str,
) -> FileResult:
    header = _read_header(path)
    file_columns = _map_header(header, entity, path.name)

    conn.execute(sql.SQL("SET LOCAL TIME ZONE {}").format(sql.Literal(manifest.timezone)))
    export_file_id = conn.execute(
        """
        INSERT INTO sync.export_file
            (path, sha256, workspace_id, export_id, entity, exported_at, currency_code, status, run_id)
        VALUES (%s, %s, %s, %s, %s, %s, %s, 'loaded', %s)
        ON CONFLICT (path, sha256) DO UPDATE SET status = 'loaded', reason = NULL, run_id = EXCLUDED.run_id,
                                                 loaded_at = now()
        RETURNING export_file_id
        """,
        (relative_path, checksum, manifest.workspace_id, manifest.export_id, entity.name, manifest.exported_at,
         manifest.currency_code, run_id),
    ).fetchone()[0]

    raw_columns = [column.name for column in entity.columns] + [name for name in file_columns if name.startswith("_extra_")]
    conn.execute(
        sql.SQL(load_sql("ingest/create_raw_records.sql")).format(
            columns=sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(name)) for name in raw_columns)
        )
    )
    _copy_file(conn, path, file_columns)

    rows_in_file = conn.execute("SELECT count(*) FROM raw_records").fetchone()[0]
    expected_rows = manifest.files[entity.file_name].rows
    if rows_in_file != expected_rows:
        raise FileRejected(f"has {rows_in_file} records but the manifest says {expected_rows}")

    checks = record_checks.build_checks(entity, manifest.workspace_id)
    conn.execute(
        sql.SQL(load_sql("ingest/check_records.sql")).format(
            cleaned_columns=sql.SQL(",\n").join(record_checks.cleaned_expression(c) for c in entity.columns),
            typed_columns=sql.SQL(",\n").join(record_checks.typed_expression(c) for c in entity.columns),
            failed_check=record_checks.failed_check_expression(checks),
        )
    )
    rows_rejected = conn.execute(
        sql.SQL(load_sql("ingest/insert_rejected_rows.sql")).format(
            export_file_id=sql.Literal(export_file_id), checks=record_checks.checks_values(checks)
        )
    ).rowcount
    rows_changed = conn.execute(_upsert_statement(entity, export_file_id)).rowcount

    if rows_rejected:
        _log_rejection_reasons(conn, export_file_id, relative_path)
    conn.execute(
        """
        UPDATE sync.export_file
        SET rows_in_file = %s, rows_valid = %s, rows_rejected = %s, rows_changed = %s
        WHERE export_file_id = %s
        """,
        (rows_in_file, rows_in_file - rows_rejected, rows_rejected, rows_changed, export_file_id),
    )
    return FileResult(
        relative_path, entity.name, "loaded", rows_in_file, rows_in_file - rows_rejected, rows_rejected, rows_changed
    )


def _upsert_statement(entity: Entity, export_file_id: int) -> sql.Composed:
    columns = [column.name for column in entity.columns] + [column.name for column in entity.derived]
    values = [sql.Identifier(column.name) for column in entity.columns] + [
        sql.SQL(column.expression) for column in entity.derived
    ]
    updatable = [name for name in columns if name not in entity.natural_key]
    return sql.SQL(load_sql("ingest/upsert_staging.sql")).format(
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


def _read_header(path: Path) -> list[str]:
    with path.open("rb") as handle:
        first_line = handle.readline()
    if not first_line.strip():
        raise FileRejected("is empty: expected a header row")
    try:
        text = first_line.removeprefix(_UTF8_BOM).decode("utf-8")
    except UnicodeDecodeError as error:
        raise FileRejected(f"header is not valid UTF-8: {error}") from error
    return next(csv.reader(io.StringIO(text)))


def _map_header(header: list[str], entity: Entity, file_name: str) -> list[str]:
    """Return the raw-table column for each header field; header names match in any case and order."""
    known = {column.name for column in entity.columns}
    mapped: list[str] = []
    seen: set[str] = set()
    unknown: list[str] = []
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
            unknown.append(field_name)
            mapped.append(f"_extra_{position}")

    missing = [name for name in entity.required_columns if name not in seen]
    if missing:
        raise FileRejected(f"required columns missing from the header: {', '.join(missing)}")
    if unknown:
        log.warning("%s: ignoring %d columns the contract does not know: %s", file_name, len(unknown), unknown)
    return mapped


def _copy_file(conn: psycopg.Connection, path: Path, file_columns: list[str]) -> None:
    statement = sql.SQL(load_sql("ingest/copy_raw_records.sql")).format(
        columns=sql.SQL(", ").join(sql.Identifier(name) for name in file_columns)
    )
    try:
        with conn.cursor() as cursor, cursor.copy(statement) as copy, path.open("rb") as handle:
            while chunk := handle.read(_COPY_CHUNK_BYTES):
                copy.write(chunk)
    except psycopg.DataError as error:
        diagnostic = error.diag
        where = f" ({diagnostic.context.strip()})" if diagnostic.context else ""
        raise FileRejected(f"is not valid CSV: {diagnostic.message_primary}{where}") from error


def _log_rejection_reasons(conn: psycopg.Connection, export_file_id: int, relative_path: str) -> None:
    rows = conn.execute(
        """
        SELECT column_name, reason, count(*)
        FROM sync.rejected_row
        WHERE export_file_id = %s
        GROUP BY column_name, reason
        ORDER BY count(*) DESC, column_name
        """,
        (export_file_id,),
    ).fetchall()
    for column_name, reason, count in rows:
        log.warning("%s: set aside %d records, column %s: %s", relative_path, count, column_name, reason)


def _record_rejection(
    conn: psycopg.Connection,
    path: Path,
    export_root: Path,
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


def _relative(path: Path, export_root: Path) -> str:
    try:
        return path.relative_to(export_root).as_posix()
    except ValueError:
        return path.as_posix()
