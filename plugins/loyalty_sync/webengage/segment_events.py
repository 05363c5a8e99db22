"""Queue the entry events of segments in ``sync.webengage_outbox``, once per entry.

A segment file may declare an entry event. When the derive stage records that a lead entered the
segment on a run day, this module queues one event for that entry, keyed by segment, lead and entry
day, so a rerun or the next night queues nothing again. The event's time is the start of the entry
day in the merchant's time zone (the ``as_of`` of the run that saw the entry) and its ``eventData``
comes from the values recorded at entry. Entries older than ``max_event_age_days`` before the run day
are not queued, matching the age limit of activity events.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from loyalty_sync.derive.segments import ENTRY_EVENT_KEY_PREFIX
from loyalty_sync.settings import SyncSettings
from loyalty_sync.warehouse.sql import fetch_sql_file
from loyalty_sync.webengage import catalog
from loyalty_sync.webengage.payloads import PayloadError, build_event, payload_hash

log = logging.getLogger(__name__)

_INSERT_ENTRY_EVENT = """
    INSERT INTO sync.webengage_outbox
        (item_key, kind, workspace_id, lead_id, user_id, name, occurred_at, payload, payload_hash, status, reason,
         queued_run_id)
    VALUES (%(item_key)s, 'event', %(workspace_id)s, %(lead_id)s, %(user_id)s, %(name)s, %(occurred_at)s,
            %(payload)s, %(payload_hash)s, %(status)s, %(reason)s, %(run_id)s)
    ON CONFLICT (item_key) DO NOTHING
"""


def queue_segment_entries(conn: psycopg.Connection, settings: SyncSettings, as_of: datetime, run_id: str,
                          summary: Any) -> None:
    """Queue the entry event of each segment entry not queued yet; runs in the caller's transaction.

    ``summary`` is the outbox's ``QueueSummary``: pending items count under the event key
    (``entered:<segment>``), skipped and dead ones under their reason.
    """
    tz = settings.tz
    as_of_date = as_of.astimezone(tz).date()
    for spec in catalog.segment_events():
        if spec.key in settings.disabled_events:
            log.info("Entry event %s is disabled by the disabled_events setting", spec.key)
            continue
        rows = fetch_sql_file(conn, "deliver/segment_entries.sql", {
            "segment": spec.key.removeprefix(ENTRY_EVENT_KEY_PREFIX),
            "item_key_prefix": f"{spec.key}:",
            "oldest_entry_day": as_of_date - timedelta(days=settings.max_event_age_days),
            "as_of_date": as_of_date,
        })
        items = [_entry_item(spec, row, settings, run_id) for row in rows]
        for item in items:
            if item["status"] == "pending":
                summary.events_pending[spec.key] += 1
            elif item["status"] == "skipped":
                summary.events_skipped[item["reason"]] += 1
            else:
                summary.events_dead[item["reason"]] += 1
        if items:
            with conn.cursor() as cursor:
                cursor.executemany(_INSERT_ENTRY_EVENT, items)
        log.info("Entry event %s: %d new entries", spec.key, len(items))


def _entry_item(spec: catalog.EventSpec, row: dict[str, Any], settings: SyncSettings, run_id: str) -> dict[str, Any]:
    tz = settings.tz
    occurred_at = datetime.combine(row["entered_on"], time(0), tzinfo=tz)
    item: dict[str, Any] = {
        "item_key": row["item_key"], "workspace_id": row["workspace_id"], "lead_id": row["lead_id"],
        "user_id": row["user_id"], "name": spec.key, "occurred_at": occurred_at, "payload": None,
        "payload_hash": None, "status": "pending", "reason": None, "run_id": run_id,
    }
    if not row["has_profile"]:
        return {**item, "status": "skipped", "reason": "lead is not in the customers export"}
    if row["user_id"] is None:
        return {**item, "status": "skipped", "reason": "lead has no customer id"}
    details = row["entry_details"] or {}
    event_row = {
        "user_id": row["user_id"],
        "occurred_at": occurred_at,
        **{attribute.key: catalog.from_json(attribute.type, details.get(attribute.key)) for attribute in spec.attributes},
    }
    try:
        payload = build_event(spec, event_row, tz, settings.event_name_prefix)
    except PayloadError as error:
        return {**item, "status": "dead", "reason": str(error)}
    return {**item, "payload": Jsonb(payload), "payload_hash": payload_hash(payload)}
