"""Queue events and changed users in ``sync.webengage_outbox``.

Queueing is idempotent: an event's key comes from its source row and a user item's key from the user
id and the hash of its attributes, so a second run over the same data queues nothing new. A full
resync keys every user item by the run as well, so each user is queued once per resync run.

Items that cannot be built (a value that does not fit its declared type) are recorded as ``dead``
with the reason. Re-driving dead letters queues them again: catalog events and users are rebuilt from
the current warehouse rows, and any other dead item that has a payload goes back to ``pending``.
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
from loyalty_sync.webengage.attribute_types import check_and_register
from loyalty_sync.webengage.catalog import EVENTS
from loyalty_sync.webengage.payloads import PayloadError, build_event, build_user, payload_hash
from loyalty_sync.webengage.segment_events import queue_segment_entries
from loyalty_sync.warehouse.sql import fetch_sql_file, load_sql

log = logging.getLogger(__name__)

_INSERT_ITEM = """
    INSERT INTO sync.webengage_outbox
        (item_key, kind, workspace_id, lead_id, user_id, name, occurred_at, payload, payload_hash, status, reason,
         queued_run_id, dead_at)
    VALUES (%(item_key)s, %(kind)s, %(workspace_id)s, %(lead_id)s, %(user_id)s, %(name)s, %(occurred_at)s,
            %(payload)s, %(payload_hash)s, %(status)s, %(reason)s, %(run_id)s,
            CASE WHEN %(status)s = 'dead' THEN now() END)
"""
# An existing item with the same key in one of the given statuses is rebuilt in place and queued again.
# Its attempts and last error stay, and a dead one counts as re-driven.
_REQUEUE_ON_CONFLICT = """
    ON CONFLICT (item_key) DO UPDATE
    SET payload = EXCLUDED.payload, payload_hash = EXCLUDED.payload_hash, status = EXCLUDED.status,
        reason = EXCLUDED.reason, batch_id = NULL, sent_run_id = NULL, sent_at = NULL,
        dead_at = CASE WHEN EXCLUDED.status = 'dead' THEN now() END,
        redrive_count = webengage_outbox.redrive_count + (webengage_outbox.status = 'dead')::integer,
        redriven_run_id = CASE WHEN webengage_outbox.status = 'dead' THEN EXCLUDED.queued_run_id
                               ELSE webengage_outbox.redriven_run_id END,
        queued_run_id = CASE WHEN webengage_outbox.status = 'dead' THEN webengage_outbox.queued_run_id
                             ELSE EXCLUDED.queued_run_id END
    WHERE webengage_outbox.status = ANY ({statuses})
"""


def _insert_statement(requeue_statuses: list[str]) -> sql.Composed | str:
    """Return the insert of new items that also queues again existing ones in ``requeue_statuses``."""
    if not requeue_statuses:
        return _INSERT_ITEM + "ON CONFLICT (item_key) DO NOTHING"
    return sql.SQL(_INSERT_ITEM + _REQUEUE_ON_CONFLICT).format(statuses=sql.Literal(requeue_statuses))


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
    redriven: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "events_pending": dict(self.events_pending),
            "events_skipped": dict(self.events_skipped),
            "events_dead": dict(self.events_dead),
            "users_pending": self.users_pending,
            "users_unchanged": self.users_unchanged,
            "users_superseded": self.users_superseded,
            "users_dead": self.users_dead,
            "redriven": self.redriven,
        }


def queue_all(
    conn: psycopg.Connection,
    settings: SyncSettings,
    as_of: datetime,
    run_id: str,
    *,
    full_resync: bool = False,
    redrive_dead_letters: bool = False,
) -> QueueSummary:
    """Queue new events and changed users in one transaction. ``conn`` must be in autocommit mode.

    ``full_resync`` queues every user, changed or not. ``redrive_dead_letters`` queues dead items again.

    Raises:
        CatalogRuleError: when the catalog breaks a WebEngage naming, count or type rule; nothing is queued.
    """
    summary = QueueSummary()
    with conn.transaction():
        workspaces = [row[0] for row in conn.execute("SELECT DISTINCT workspace_id FROM loyalty.customer_profile")]
        check_and_register(conn, settings, run_id, workspaces)
        queue_events(conn, settings, as_of, run_id, summary, redrive=redrive_dead_letters)
        queue_segment_entries(conn, settings, as_of, run_id, summary)
        queue_users(conn, settings, run_id, summary, full_resync=full_resync, redrive=redrive_dead_letters)
        if redrive_dead_letters:
            summary.redriven = _redrive_remaining(conn, run_id)
    log.info("Queued for WebEngage: %s", json.dumps(summary.as_dict(), sort_keys=True))
    return summary


def queue_events(
    conn: psycopg.Connection, settings: SyncSettings, as_of: datetime, run_id: str, summary: QueueSummary,
    *, redrive: bool = False,
) -> None:
    """Queue every enabled event's new source rows; old activity and leads without an id are skipped.

    With ``redrive``, source rows of dead events are built again, and the age limit does not apply to them.
    """
    tz = settings.tz
    oldest_sent = as_of - timedelta(days=settings.max_event_age_days)
    dead_keys = _dead_keys(conn, "event") if redrive else set()
    for spec in EVENTS:
        if spec.key in settings.disabled_events:
            log.info("Event %s is disabled by the disabled_events setting", spec.key)
            continue
        statement = sql.SQL(load_sql("deliver/new_event_rows.sql")).format(event_query=sql.SQL(load_sql(spec.query_path)))
        with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
            rows = cursor.execute(
                statement, {"as_of": as_of, "item_key_prefix": f"{spec.key}:", "coin_value": settings.coin_value,
                            "redrive": redrive}
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
                    if row["occurred_at"] < oldest_sent and row["item_key"] not in dead_keys:
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
                cursor.executemany(_insert_statement(["dead"] if redrive else []), items)
        log.info("Event %s: %d new source rows", spec.key, len(items))


def queue_users(
    conn: psycopg.Connection, settings: SyncSettings, run_id: str, summary: QueueSummary,
    *, full_resync: bool = False, redrive: bool = False,
) -> None:
    """Queue a user item for every profile whose attributes differ from what WebEngage last accepted.

    ``full_resync`` queues every user. A user whose attributes cannot be built is recorded as dead.
    """
    tz = settings.tz
    clear_on_null = frozenset(settings.clear_on_null)
    current_keys: list[str] = []
    items = []
    for row in fetch_sql_file(conn, "deliver/user_attributes.sql"):
        item = {
            "kind": "user", "workspace_id": row["workspace_id"], "lead_id": row["lead_id"],
            "user_id": row["user_id"], "name": "user", "occurred_at": None, "run_id": run_id,
        }
        try:
            payload = build_user(row, tz, clear_on_null)
        except PayloadError as error:
            summary.users_dead += 1
            reason = str(error)
            # Keyed by the reason, so the same bad value is recorded once however many runs see it.
            item_key = f"user:{row['workspace_id']}:{row['user_id']}:rejected:{payload_hash({'reason': reason})[:24]}"
            items.append({**item, "item_key": item_key, "payload": None, "payload_hash": None,
                          "status": "dead", "reason": reason})
            current_keys.append(item_key)
            continue
        digest = payload_hash(payload)
        item_key = f"user:{row['workspace_id']}:{row['user_id']}:{digest[:24]}"
        if full_resync:
            item_key += f":resync:{run_id}"
        current_keys.append(item_key)
        if digest == row["sent_payload_hash"] and not full_resync:
            summary.users_unchanged += 1
            continue
        items.append({**item, "item_key": item_key, "payload": Jsonb(payload), "payload_hash": digest,
                      "status": "pending", "reason": None})
        summary.users_pending += 1

    # Only users whose attributes differ from the sent ones get here, so an earlier item with the same
    # key (the user's attributes went back to an earlier state) is queued again. A resync key is new
    # for every run, and an item a retried resync run already sent must stay sent.
    requeue = [] if full_resync else ["sent", "superseded"]
    if redrive:
        requeue.append("dead")
    if items:
        with conn.cursor() as cursor:
            cursor.executemany(_insert_statement(requeue), items)

    # An update still to send that is not the user's current one would send stale values. Re-driving also
    # retires dead updates that a newer one replaced.
    replaceable = ["pending", "failed", "dead"] if redrive else ["pending", "failed"]
    summary.users_superseded = conn.execute(
        """
        UPDATE sync.webengage_outbox AS outbox
        SET status = 'superseded', reason = 'replaced by newer attributes before it was sent'
        WHERE outbox.kind = 'user'
          AND outbox.status = ANY (%s)
          AND outbox.redriven_run_id IS DISTINCT FROM %s
          AND NOT EXISTS (SELECT 1 FROM unnest(%s::text[]) AS current (item_key)
                          WHERE current.item_key = outbox.item_key)
        """,
        (replaceable, run_id, current_keys),
    ).rowcount


def _dead_keys(conn: psycopg.Connection, kind: str) -> set[str]:
    rows = conn.execute("SELECT item_key FROM sync.webengage_outbox WHERE kind = %s AND status = 'dead'", (kind,))
    return {row[0] for row in rows}


def _redrive_remaining(conn: psycopg.Connection, run_id: str) -> int:
    """Send again the dead items that were not rebuilt, with their stored payload; return all re-driven."""
    conn.execute(
        """
        UPDATE sync.webengage_outbox
        SET status = 'pending', reason = NULL, batch_id = NULL, dead_at = NULL,
            redrive_count = redrive_count + 1, redriven_run_id = %s
        WHERE status = 'dead' AND kind = 'event' AND payload IS NOT NULL AND redriven_run_id IS DISTINCT FROM %s
        """,
        (run_id, run_id),
    )
    return conn.execute(
        "SELECT count(*) FROM sync.webengage_outbox WHERE redriven_run_id = %s AND status <> 'dead'", (run_id,)
    ).fetchone()[0]
