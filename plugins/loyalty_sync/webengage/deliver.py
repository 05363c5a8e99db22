"""Send pending outbox items to WebEngage in bulk calls and record what was accepted.

An item becomes ``sent`` only after WebEngage accepted its batch, in the same transaction that records
the batch, one transaction per batch. If the process dies between WebEngage's response and that
commit, the batch is still pending and the next run sends it again: WebEngage's bulk endpoints have
no deduplication, so at most that one batch can arrive twice.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from loyalty_sync.webengage.hook import CallResult, WebEngageBadRequest

log = logging.getLogger(__name__)

# Items read from the outbox at a time; every one of them leaves `pending` before the next read.
_PAGE_SIZE = 1000
# Kinds in sending order: users first, so a journey triggered by an event reads current attributes.
SEND_ORDER = ("user", "event")


class BulkSender(Protocol):
    def send_bulk(self, kind: str, items: Sequence[dict[str, Any]]) -> CallResult: ...


@dataclass
class DeliverySummary:
    users_sent: int = 0
    events_sent: int = 0
    batches: int = 0
    dead: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"users_sent": self.users_sent, "events_sent": self.events_sent, "batches": self.batches,
                "dead": self.dead}


@dataclass(frozen=True)
class _Item:
    item_key: str
    workspace_id: str
    user_id: str | None
    payload: dict[str, Any]
    payload_hash: str | None


def deliver_pending(
    conn: psycopg.Connection, sender: BulkSender, run_id: str, *, workspace_id: str, batch_size: int = 25
) -> DeliverySummary:
    """Send every pending item of ``workspace_id``, users first, in batches of ``batch_size``.

    ``conn`` must be in autocommit mode. WebEngage errors other than 400 propagate, leaving the
    items of the failed batch pending for the next attempt.
    """
    summary = DeliverySummary()
    for kind in SEND_ORDER:
        while items := _read_pending(conn, kind, workspace_id):
            for start in range(0, len(items), batch_size):
                _send_batch(conn, sender, kind, items[start:start + batch_size], run_id, summary)
    log.info("Delivered workspace %s: %s", workspace_id, summary.as_dict())
    return summary


def _read_pending(conn: psycopg.Connection, kind: str, workspace_id: str) -> list[_Item]:
    rows = conn.execute(
        """
        SELECT item_key, workspace_id, user_id, payload, payload_hash
        FROM sync.webengage_outbox
        WHERE kind = %s AND status = 'pending' AND workspace_id = %s
        ORDER BY sequence
        LIMIT %s
        """,
        (kind, workspace_id, _PAGE_SIZE),
    ).fetchall()
    return [_Item(*row) for row in rows]


def _send_batch(
    conn: psycopg.Connection, sender: BulkSender, kind: str, batch: list[_Item], run_id: str, summary: DeliverySummary
) -> None:
    try:
        sender.send_bulk(kind, [item.payload for item in batch])
    except WebEngageBadRequest as error:
        if len(batch) == 1:
            _mark_dead(conn, batch[0], error.response_text or str(error))
            summary.dead += 1
            return
        # A 400 does not say which item is at fault: halve the batch until the bad ones stand alone.
        log.warning("WebEngage rejected a batch of %d %ss; splitting it to find the bad items", len(batch), kind)
        middle = len(batch) // 2
        _send_batch(conn, sender, kind, batch[:middle], run_id, summary)
        _send_batch(conn, sender, kind, batch[middle:], run_id, summary)
        return

    _mark_sent(conn, kind, batch, run_id)
    summary.batches += 1
    if kind == "user":
        summary.users_sent += len(batch)
    else:
        summary.events_sent += len(batch)


def _mark_sent(conn: psycopg.Connection, kind: str, batch: list[_Item], run_id: str) -> None:
    keys = [item.item_key for item in batch]
    batch_id = hashlib.sha256("\n".join(keys).encode("utf-8")).hexdigest()[:20]
    with conn.transaction():
        conn.execute(
            """
            UPDATE sync.webengage_outbox
            SET status = 'sent', batch_id = %s, sent_run_id = %s, sent_at = now(), attempts = attempts + 1,
                last_error = NULL
            WHERE item_key = ANY (%s) AND status = 'pending'
            """,
            (batch_id, run_id, keys),
        )
        if kind == "user":
            with conn.cursor() as cursor:
                cursor.executemany(
                    """
                    INSERT INTO sync.webengage_user_state (workspace_id, user_id, payload_hash, item_key, sent_at)
                    VALUES (%s, %s, %s, %s, now())
                    ON CONFLICT (workspace_id, user_id) DO UPDATE
                    SET payload_hash = EXCLUDED.payload_hash, item_key = EXCLUDED.item_key, sent_at = EXCLUDED.sent_at
                    """,
                    [(item.workspace_id, item.user_id, item.payload_hash, item.item_key) for item in batch],
                )


def _mark_dead(conn: psycopg.Connection, item: _Item, error_text: str) -> None:
    log.warning("WebEngage rejected item %s; recorded as dead: %s", item.item_key, error_text[:300])
    with conn.transaction():
        conn.execute(
            """
            UPDATE sync.webengage_outbox
            SET status = 'dead', reason = 'rejected by WebEngage', last_error = %s, attempts = attempts + 1
            WHERE item_key = %s AND status = 'pending'
            """,
            (error_text[:2000], item.item_key),
        )
