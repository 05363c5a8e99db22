"""Summarise a run from the bookkeeping tables: files, rows, segments, events and users."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from loyalty_sync.warehouse.sql import fetch_sql_file

log = logging.getLogger(__name__)


def build_report(conn: psycopg.Connection, run_id: str, as_of: datetime) -> dict[str, Any]:
    """Collect the run's counts, store them in ``sync.run_report`` and return them."""
    report = {
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "files": fetch_sql_file(conn, "report/files.sql", {"run_id": run_id}),
        "rejected_files": fetch_sql_file(conn, "report/rejected_files.sql", {"run_id": run_id}),
        # A list, not an object: jsonb does not keep key order.
        "segments": [
            {key: row[key] for key in ("segment", "customers", "entered", "exited") if row[key] is not None}
            for row in fetch_sql_file(conn, "derive/segment_sizes.sql", {"as_of_date": as_of.date()})
        ],
        "events": fetch_sql_file(conn, "report/events.sql", {"run_id": run_id}),
        "delivery": fetch_sql_file(conn, "report/delivery.sql", {"run_id": run_id})[0],
    }
    with conn.transaction():
        conn.execute(
            """
            INSERT INTO sync.run_report (run_id, as_of, summary) VALUES (%s, %s, %s)
            ON CONFLICT (run_id) DO UPDATE SET as_of = EXCLUDED.as_of, summary = EXCLUDED.summary, created_at = now()
            """,
            (run_id, as_of, Jsonb(report)),
        )
    return report


def format_report(report: dict[str, Any]) -> str:
    """Render a report as the plain-text summary the report task logs and the demo prints."""
    lines = [f"Data as of {report['as_of']} (Airflow run {report['run_id']})", "", "Files loaded and rejected per entity:"]
    if not report["files"]:
        lines.append("  (no new files)")
    for row in report["files"]:
        if row["status"] != "loaded":
            lines.append(f"  {row['entity'] or '(unknown)':<20} {row['status']:<9} files={row['files']}")
            continue
        lines.append(
            f"  {row['entity'] or '(unknown)':<20} {row['status']:<9} files={row['files']:<3} rows={row['rows_in_file']:<7} "
            f"valid={row['rows_valid']:<7} rejected={row['rows_rejected']:<5} changed={row['rows_changed']}"
        )
    if report.get("rejected_files"):
        lines += ["", "Files rejected whole (none of their rows loaded):"]
        lines += [f"  {row['path']}: {row['reason']}" for row in report["rejected_files"]]
    lines += ["", "Segments (customers):"]
    lines += [
        f"  {row['segment']:<30} {row['customers']}"
        + (f" (entered {row['entered']}, left {row['exited']})" if "entered" in row else "")
        for row in report["segments"]
    ]
    lines += ["", "Events queued by this run:"]
    if not report["events"]:
        lines.append("  (none)")
    for row in report["events"]:
        lines.append(f"  {row['event']:<20} {row['status']:<8} {row['items']:<6} {row['reason'] or ''}".rstrip())
    delivery = report["delivery"]
    lines += [
        "",
        "Delivered to WebEngage by this run:",
        f"  {'users sent':<30} {delivery['users_sent']}",
        f"  {'events sent':<30} {delivery['events_sent']}",
        f"  {'bulk calls accepted':<30} {delivery['batches']}",
        f"  {'bulk calls rejected (400)':<30} {delivery['rejected_calls']}",
        f"  {'bulk calls failed':<30} {delivery['failed_calls']}",
        f"  {'retries':<30} {delivery['retries']}",
        f"  {'429 responses':<30} {delivery['rate_limited']}",
        f"  {'resent after a crash':<30} {delivery['resent_batches']} batches (each may have arrived twice)",
        f"  {'retried after unknown outcome':<30} {delivery['uncertain_retries']} (each may have arrived twice)",
        f"  {'dead letters re-driven':<30} {delivery['redriven']}",
        f"  {'dead (this run)':<30} {delivery['dead_this_run']}",
        f"  {'still pending':<30} {delivery['pending']}",
        f"  {'failed, sent again next run':<30} {delivery['failed']}",
        f"  {'dead (all runs)':<30} {delivery['dead']}  (SELECT * FROM sync.webengage_dead_letter)",
    ]
    return "\n".join(lines)
