"""Queue events and changed users in ``sync.webengage_outbox``.

Queueing is idempotent: an event's key comes from its source row and a user item's key from the user
id and the hash of its attributes, so a second run over the same data queues nothing new.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from loyalty_sync.settings import SyncSettings
from loyalty_sync.webengage.catalog import EVENTS
from loyalty_sync.webengage.payloads import PayloadError, build_event, build_user, payload_hash
from loyalty_sync.warehouse.sql import fetch_sql_file, load_sql

log = logging.getLogger(__name__)

_INSERT_ITEM = """
    INSERT INTO sync.webengage_outbox
        (item_key, kind, workspace_id, lead_id, user_id, name, occurred_at, payload, payload_hash, status, reason,
         queued_run_id)
    VALUES (%(item_key)s, %(kind)s, %(workspace_id)s, %(lead_id)s, %(user_id)s, %(name)s, %(occurred_at)s,
            %(payload)s, %(payload_hash)s, %(status)s, %(reason)s, %(run_id)s)
    ON CONFLICT (item_key) DO NOTHING
"""


@dataclass
class QueueSummary:
    """Counts of what one queueing pass added to the outbox."""

    events_pending: Counter[str] = field(default_factory=Counter)
    events_skipped: Counter[str] = field(default_factory=Counter)  # by reason
    events_dead: Counter[str] = field(default_factory=Counter)  # by reason
    users_pending: int = 0
    users_unchanged: int = 0
    users_superseded: int = 0
    users_dead: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_pending": dict(self.events_pending),
            "events_skipped": dict(self.events_skipped),
            "events_dead": dict(self.events_dead),
            "users_pending": self.users_pending,
            "users_unchanged": self.users_unchanged,
            "users_superseded": self.users_superseded,
            "users_dead": self.users_dead,
        }


def queue_all(conn: psycopg.Connection, settings: SyncSettings, as_of: datetime, run_id: str) -> QueueSummary:
    """Queue new events and changed users in one transaction. ``conn`` must be in autocommit mode."""
    summary = QueueSummary()
    with conn.transaction():
        queue_events(conn, settings, as_of, run_id, summary)
        queue_users(conn, settings, run_id, summary)
    log.info("Queued for WebEngage: %s", json.dumps(summary.as_dict(), sort_keys=True))
    return summary


def queue_events(
    conn: psycopg.Connection, settings: SyncSettings, as_of: datetime, run_id: str, summary: QueueSummary
) -> None:
    """Queue every enabled event's new source rows; old activity and leads without an id are skipped."""
    tz = settings.tz
    oldest_sent = as_of - timedelta(days=settings.max_event_age_days)
    for spec in EVENTS:
        if spec.key in settings.disabled_events:
            log.info("Event %s is disabled by the disabled_events setting", spec.key)
            continue
        statement = sql.SQL(load_sql("deliver/new_event_rows.sql")).format(event_query=sql.SQL(load_sql(spec.query_path)))
        with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
            rows = cursor.execute(
                statement, {"as_of": as_of, "item_key_prefix": f"{spec.key}:", "coin_value": settings.coin_value}
            ).fetchall()

        items = []
        for row in rows:
            item = {
                "item_key": row["item_key"], "kind": "event", "workspace_id": row["workspace_id"],
                "lead_id": row["lead_id"], "user_id": row["user_id"], "name": spec.key,
                "occurred_at": row["occurred_at"], "payload": None, "payload_hash": None,
                "status": "pending", "reason": None, "run_id": run_id,
            }
            if not row["has_profile"]:
                item.update(status="skipped", reason="lead is not in the customers export")
            elif row["user_id"] is None:
                item.update(status="skipped", reason="lead has no customer id")
            else:
                try:
                    payload = build_event(spec, row, tz, settings.event_name_prefix)
                except PayloadError as error:
                    item.update(status="dead", reason=str(error))
                else:
                    item.update(payload=Jsonb(payload), payload_hash=payload_hash(payload))
                    if row["occurred_at"] < oldest_sent:
                        item.update(
                            status="skipped",
                            reason=f"older than max_event_age_days ({settings.max_event_age_days}) before the interval end",
                        )
            items.append(item)

            if item["status"] == "pending":
                summary.events_pending[spec.key] += 1
            elif item["status"] == "skipped":
                summary.events_skipped[item["reason"]] += 1
            else:
                summary.events_dead[item["reason"]] += 1

        if items:
            with conn.cursor() as cursor:
                cursor.executemany(_INSERT_ITEM, items)
        log.info("Event %s: %d new source rows", spec.key, len(items))


def queue_users(conn: psycopg.Connection, settings: SyncSettings, run_id: str, summary: QueueSummary) -> None:
    """Queue a user item for every profile whose attributes differ from what WebEngage last accepted."""
    tz = settings.tz
    current_hashes: list[tuple[str, str, str]] = []
    items = []
    for row in fetch_sql_file(conn, "deliver/user_attributes.sql"):
        try:
            payload = build_user(row, tz)
        except PayloadError as error:
            summary.users_dead += 1
            log.warning("User %s of %s not queued: %s", row["user_id"], row["workspace_id"], error)
            continue
        digest = payload_hash(payload)
        current_hashes.append((row["workspace_id"], row["user_id"], digest))
        if digest == row["sent_payload_hash"]:
            summary.users_unchanged += 1
            continue
        items.append({
            "item_key": f"user:{row['workspace_id']}:{row['user_id']}:{digest[:24]}", "kind": "user",
            "workspace_id": row["workspace_id"], "lead_id": row["lead_id"], "user_id": row["user_id"],
            "name": "user", "occurred_at": None, "payload": Jsonb(payload), "payload_hash": digest,
            "status": "pending", "reason": None, "run_id": run_id,
        })

    if items:
        with conn.cursor() as cursor:
            cursor.executemany(_INSERT_ITEM, items)
    summary.users_pending = len(items)

    # A pending update that no longer matches the user's current attributes would send stale values.
    workspaces, user_ids, hashes = (list(column) for column in zip(*current_hashes)) if current_hashes else ([], [], [])
    summary.users_superseded = conn.execute(
        """
        UPDATE sync.webengage_outbox AS outbox
        SET status = 'superseded', reason = 'replaced by newer attributes before it was sent'
        WHERE outbox.kind = 'user'
          AND outbox.status = 'pending'
          AND NOT EXISTS (
              SELECT 1
              FROM unnest(%s::text[], %s::text[], %s::text[]) AS current (workspace_id, user_id, payload_hash)
              WHERE current.workspace_id = outbox.workspace_id
                AND current.user_id = outbox.user_id
                AND current.payload_hash = outbox.payload_hash)
        """,
        (workspaces, user_ids, hashes),
    ).rowcount
