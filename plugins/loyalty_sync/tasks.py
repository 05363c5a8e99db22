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
from loyalty_sync.ingest.loader import load_exports, raise_for_failed_files
from loyalty_sync.paths import resolve
from loyalty_sync.settings import SyncSettings
from loyalty_sync.warehouse.migrations import apply_migrations
from loyalty_sync.webengage.deliver import BulkSender, DeliverySummary, deliver_pending
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


def derive(conn: psycopg.Connection, settings: SyncSettings, as_of: datetime) -> dict[str, int]:
    return refresh_profiles(conn, settings, as_of)


def queue(conn: psycopg.Connection, settings: SyncSettings, as_of: datetime, run_id: str) -> dict[str, Any]:
    return queue_all(conn, settings, as_of, run_id).as_dict()


def deliver(
    conn: psycopg.Connection, settings: SyncSettings, run_id: str, sender_for: Callable[[str], BulkSender]
) -> dict[str, int]:
    """Send the pending items of every workspace through ``sender_for(connection id)``."""
    workspaces = [
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT workspace_id FROM sync.webengage_outbox WHERE status = 'pending' ORDER BY 1"
        ).fetchall()
    ]
    total = DeliverySummary()
    for workspace_id in workspaces:
        sender = sender_for(settings.webengage_conn_id(workspace_id))
        summary = deliver_pending(conn, sender, run_id, workspace_id=workspace_id, batch_size=settings.batch_size)
        total.users_sent += summary.users_sent
        total.events_sent += summary.events_sent
        total.batches += summary.batches
        total.dead += summary.dead
    return total.as_dict()


def summarize(conn: psycopg.Connection, run_id: str, as_of: datetime) -> dict[str, Any]:
    summary = report.build_report(conn, run_id, as_of)
    log.info("Run summary\n%s", report.format_report(summary))
    return summary
