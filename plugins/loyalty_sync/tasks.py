"""Entry points of the sync's stages. The DAG calls these; they run just as well from plain Python.

Each stage takes a psycopg connection in autocommit mode (the stages open their own transactions),
the run's settings, the end of its data interval (``as_of``) and its run id, and returns a small
JSON-ready summary.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from loyalty_sync import report
from loyalty_sync.derive.profile import refresh_profiles
from loyalty_sync.derive.segments import load_segment_set
from loyalty_sync.ingest.loader import load_exports, raise_for_failed_files
from loyalty_sync.paths import resolve
from loyalty_sync.settings import SyncSettings
from loyalty_sync.warehouse.migrations import apply_migrations
from loyalty_sync.webengage.deliver import BulkSender, DeliverySummary, deliver_pending, dry_run_path, write_dry_run
from loyalty_sync.webengage.outbox import queue_all

log = logging.getLogger(__name__)


def interval_as_of(data_interval_end: datetime | None, tz: ZoneInfo, now: datetime | None = None) -> datetime:
    """Return the instant flags are computed at: midnight in the merchant's time zone that starts the
    day the data interval ends on. A manual run without a data interval uses today's midnight.

    The nightly 02:00 run's interval ends at 02:00, so ``as_of`` is the midnight before it and the
    run covers whole calendar days.
    """
    moment = data_interval_end or now or datetime.now(tz)
    if moment.tzinfo is None:
        raise ValueError(f"data interval end must be timezone-aware, got {moment!r}")
    return datetime.combine(moment.astimezone(tz).date(), time(0), tzinfo=tz)


def prepare_warehouse(conn: psycopg.Connection) -> list[str]:
    return apply_migrations(conn)


def ingest(conn: psycopg.Connection, settings: SyncSettings, run_id: str) -> dict[str, Any]:
    export_root = open_export_root(settings)
    summary = load_exports(conn, export_root, run_id, max_rejected_share=settings.max_rejected_share)
    raise_for_failed_files(summary)
    return {
        "files_loaded": summary.count("loaded"),
        "files_rejected": summary.count("rejected"),
        "files_skipped": summary.count("skipped"),
        "rows_valid": sum(result.rows_valid for result in summary.files),
        "rows_rejected": sum(result.rows_rejected for result in summary.files),
    }


def open_export_root(settings: SyncSettings) -> Any:
    """Return the export root as a local ``Path`` or, for a URL such as ``s3://…``, an ``ObjectStoragePath``."""
    if "://" not in settings.export_root:
        return resolve(settings.export_root)
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(settings.export_root, conn_id=settings.export_conn_id or None)


def check_segments(settings: SyncSettings) -> list[dict[str, Any]]:
    """Load and check the segment files with the run's parameters; return one summary per segment.

    Raises:
        SegmentError: naming the segment file that is invalid or breaks WebEngage's limits.
    """
    segment_set = load_segment_set(settings)
    return [
        {"segment": segment.name, "attribute": segment.attribute_name, "entry_event": segment.entry_event,
         "parameters": segment_set.parameters[segment.name]}
        for segment in segment_set.segments
    ]


def derive(conn: psycopg.Connection, settings: SyncSettings, as_of: datetime) -> dict[str, int]:
    return refresh_profiles(conn, settings, as_of)


def queue(
    conn: psycopg.Connection, settings: SyncSettings, as_of: datetime, run_id: str,
    *, full_resync: bool = False, redrive_dead_letters: bool = False,
) -> dict[str, Any]:
    summary = queue_all(conn, settings, as_of, run_id, full_resync=full_resync,
                        redrive_dead_letters=redrive_dead_letters)
    return summary.as_dict()


def deliver(
    conn: psycopg.Connection,
    settings: SyncSettings,
    run_id: str,
    sender_for: Callable[[str], BulkSender],
    *,
    concurrency: int | None = None,
    connect: Callable[[], psycopg.Connection] | None = None,
) -> dict[str, int]:
    """Send the pending items of every workspace through ``sender_for(connection id)``.

    ``concurrency`` (default: the ``sender_threads`` setting) sender threads each open a warehouse
    connection with ``connect`` (default: one like ``conn``).
    """
    total = DeliverySummary()
    for workspace_id in _workspaces_to_send(conn):
        sender = sender_for(settings.webengage_conn_id(workspace_id))
        summary = deliver_pending(conn, sender, run_id, workspace_id=workspace_id, batch_size=settings.batch_size,
                                  concurrency=concurrency or settings.sender_threads, connect=connect)
        total.add(summary)
    return total.as_dict()


def deliver_dry_run(
    conn: psycopg.Connection, settings: SyncSettings, as_of: datetime, run_id: str,
    *, full_resync: bool = False, redrive_dead_letters: bool = False,
) -> dict[str, Any]:
    """Queue, then write the bulk calls a delivery would make to a file, and roll everything back.

    Nothing is sent and no delivery state changes: outbox, sent hashes, batches, dead letters and
    attribute types stay as they were. Returns the file's path and what it holds.
    """
    path = dry_run_path(resolve(settings.dry_run_dir), run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    with conn.transaction(force_rollback=True):
        queued = queue_all(conn, settings, as_of, run_id, full_resync=full_resync,
                           redrive_dead_letters=redrive_dead_letters)
        workspaces = {workspace_id: settings.webengage_conn_id(workspace_id) for workspace_id in _workspaces_to_send(conn)}
        with path.open("w", encoding="utf-8") as output:
            written = write_dry_run(conn, output, workspaces, settings.batch_size)
    log.info("Dry run: %d bulk calls with %d users and %d events written to %s; nothing sent, nothing changed",
             written["calls"], written["users"], written["events"], path)
    return {"dry_run_file": str(path), "queued": queued.as_dict(), **written}


def _workspaces_to_send(conn: psycopg.Connection) -> list[str]:
    """Workspaces with items to send, or with a batch a crashed delivery left in flight."""
    rows = conn.execute(
        """
        SELECT workspace_id FROM sync.webengage_outbox WHERE status IN ('pending', 'failed')
        UNION
        SELECT workspace_id FROM sync.webengage_batch WHERE status = 'in_flight'
        ORDER BY 1
        """
    ).fetchall()
    return [row[0] for row in rows]


def summarize(conn: psycopg.Connection, run_id: str, as_of: datetime) -> dict[str, Any]:
    summary = report.build_report(conn, run_id, as_of)
    log.info("Run summary\n%s", report.format_report(summary))
    return summary
