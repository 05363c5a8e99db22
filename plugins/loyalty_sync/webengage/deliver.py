"""Send pending outbox items to WebEngage in bulk calls and record what was accepted.

Exactly once, and its exceptions:

- Before each bulk call, the batch is recorded in ``sync.webengage_batch`` as ``in_flight``, in a
  transaction of its own. When WebEngage accepts the call, one statement marks the batch's items
  ``sent``, stores the users' attribute hashes and completes the batch record, so the items and the
  record of the accepted batch commit together.
- If the process dies between WebEngage's response and that commit, the items are still pending and the
  next delivery sends them again. WebEngage's bulk endpoints do not deduplicate, so the batch can
  arrive twice. The next delivery finds the batch still ``in_flight``, marks it ``interrupted`` and
  counts it as resent. Each sender has one batch in flight at a time, so at most ``concurrency``
  batches can arrive twice after a crash. The count is an upper bound: a batch cut off before WebEngage
  received it is counted too.
- The hook retries a call whose connection dropped or timed out after the request went out. If
  WebEngage had accepted the first attempt, that batch also arrives twice; the batch record counts
  such retries in ``uncertain_retries``.

Senders: ``concurrency`` threads send batches at once, each with its own Postgres connection (a
psycopg connection must not be used by two threads at a time), and all share the hook, whose token
buckets keep the threads together within the rate limit. The calling thread reads the outbox in queue
order and hands out batches. Every user is sent before the first event, so a journey started by an
event reads current attributes. With more than one sender, batches of the same kind can be accepted
out of queue order; each event carries its own ``eventTime``.

Only one delivery per workspace runs at a time: a session-level advisory lock guards it, and the lock
goes away with the connection if the process dies.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol, TextIO

import psycopg

from loyalty_sync.webengage.hook import (
    BULK_RESOURCES,
    CallResult,
    EncodedJson,
    WebEngageBadRequest,
    WebEngageError,
    WebEngageTransientError,
    encode_bulk_body,
)

log = logging.getLogger(__name__)

# Items read from the outbox at a time, in queue order.
_PAGE_SIZE = 1000
# Kinds in sending order: users first, so a journey triggered by an event reads current attributes.
SEND_ORDER = ("user", "event")
# Seconds the reader waits for room in the senders' queue before it checks again whether they stopped.
_HAND_OUT_TIMEOUT = 0.5
_MAX_ERROR_LENGTH = 2000
# Marks that a sender found no following batch waiting in the queue.
_NOT_TAKEN = object()


class BulkSender(Protocol):
    def send_bulk(self, kind: str, items: Sequence[Mapping[str, Any] | EncodedJson]) -> CallResult: ...


class DeliveryInProgress(RuntimeError):
    """Another delivery holds the workspace's lock."""


@dataclass
class DeliverySummary:
    """Counts of one delivery. ``resent_batches`` were interrupted by a crash and sent again."""

    users_sent: int = 0
    events_sent: int = 0
    batches: int = 0
    dead: int = 0
    failed: int = 0
    rate_limited: int = 0
    retries: int = 0
    uncertain_retries: int = 0
    interrupted_batches: int = 0
    resent_batches: int = 0

    def add(self, other: DeliverySummary) -> None:
        for summary_field in fields(self):
            setattr(self, summary_field.name, getattr(self, summary_field.name) + getattr(other, summary_field.name))

    def as_dict(self) -> dict[str, int]:
        return {summary_field.name: getattr(self, summary_field.name) for summary_field in fields(self)}


@dataclass(frozen=True)
class _Item:
    item_key: str
    payload: EncodedJson


def deliver_pending(
    conn: psycopg.Connection,
    sender: BulkSender,
    run_id: str,
    *,
    workspace_id: str,
    batch_size: int = 25,
    concurrency: int = 1,
    connect: Callable[[], psycopg.Connection] | None = None,
) -> DeliverySummary:
    """Send every pending or failed item of ``workspace_id``, users first, in batches of ``batch_size``.

    ``conn`` must be in autocommit mode. With ``concurrency`` above 1, each sender thread opens its own
    connection with ``connect`` (by default, one like ``conn``). A WebEngage error other than 400 stops
    the delivery and propagates once the batches in flight are finished. The items of the failing
    batch become ``failed`` after 429, 5xx and network errors, and stay untouched after 401, 403 and 404.

    Raises:
        DeliveryInProgress: when another delivery of the workspace is running.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    summary = DeliverySummary()
    _lock_workspace(conn, workspace_id)
    try:
        summary.interrupted_batches = _mark_interrupted(conn, run_id, workspace_id)
        for kind in SEND_ORDER:
            batches = pending_batches(conn, workspace_id, kind, batch_size)
            if concurrency == 1:
                worker = _Sender(conn, sender, run_id, workspace_id, summary, threading.Lock())
                for items in batches:
                    worker.deliver(kind, items)
            else:
                _deliver_concurrently(batches, kind, sender, run_id, workspace_id, summary, concurrency,
                                      connect or _connection_like(conn))
        summary.resent_batches = _count_resent(conn, run_id, workspace_id)
    finally:
        _unlock_workspace(conn, workspace_id)
    log.info("Delivered workspace %s: %s", workspace_id, summary.as_dict())
    return summary


def pending_batches(conn: psycopg.Connection, workspace_id: str, kind: str, batch_size: int) -> Iterator[list[_Item]]:
    """Yield the items still to send, in queue order, as batches of up to ``batch_size``.

    Reads by key set (``sequence`` after the last one read), so items handed out but not yet sent are
    not read twice.
    """
    last_sequence = 0
    while True:
        rows = conn.execute(
            """
            SELECT item_key, payload::text, sequence
            FROM sync.webengage_outbox
            WHERE workspace_id = %s AND kind = %s AND status IN ('pending', 'failed') AND sequence > %s
              AND payload IS NOT NULL
            ORDER BY sequence
            LIMIT %s
            """,
            (workspace_id, kind, last_sequence, _PAGE_SIZE),
        ).fetchall()
        if not rows:
            return
        last_sequence = rows[-1][2]
        items = [_Item(item_key, EncodedJson(payload)) for item_key, payload, _ in rows]
        for start in range(0, len(items), batch_size):
            yield items[start:start + batch_size]
        if len(rows) < _PAGE_SIZE:
            return


def write_dry_run(
    conn: psycopg.Connection, output: TextIO, workspaces: Mapping[str, str], batch_size: int = 25
) -> dict[str, int]:
    """Write the bulk calls a delivery would make, one JSON object a line, and change nothing.

    ``workspaces`` maps each workspace to its WebEngage connection id. Each line contains the workspace,
    the connection id, the kind, the resource, the item keys and the request body as it would be sent.
    """
    counts = {"calls": 0, "users": 0, "events": 0}
    for workspace_id, conn_id in workspaces.items():
        for kind in SEND_ORDER:
            for items in pending_batches(conn, workspace_id, kind, batch_size):
                body = encode_bulk_body(kind, [item.payload for item in items]).decode("utf-8")
                line = {
                    "workspace_id": workspace_id,
                    "webengage_conn_id": conn_id,
                    "kind": kind,
                    "resource": BULK_RESOURCES[kind],
                    "item_keys": [item.item_key for item in items],
                    "body": json.loads(body),
                }
                output.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
                counts["calls"] += 1
                counts["users" if kind == "user" else "events"] += len(items)
    return counts


# -- one sender ---------------------------------------------------------------------------------


class _Sender:
    """Sends batches over one Postgres connection, one batch at a time."""

    def __init__(
        self,
        conn: psycopg.Connection,
        sender: BulkSender,
        run_id: str,
        workspace_id: str,
        summary: DeliverySummary,
        summary_lock: threading.Lock,
    ) -> None:
        self.conn = conn
        self.sender = sender
        self.run_id = run_id
        self.workspace_id = workspace_id
        self.summary = summary
        self.summary_lock = summary_lock
        # The next batch, recorded in flight by the transaction that completed the previous one.
        self._recorded: tuple[list[_Item], str] | None = None

    def deliver(self, kind: str, items: list[_Item], following: list[_Item] | None = None) -> None:
        """Send one batch; on a 400 split it until the bad items stand alone and dead-letter them.

        ``following`` is the batch this sender sends next. When WebEngage accepts ``items``, the
        transaction that records that also records ``following`` in flight, which saves a round trip
        to Postgres per call.
        """
        batch_id = self._take_recorded(items) or self._record_in_flight(kind, items)
        try:
            result = self.sender.send_bulk(kind, [item.payload for item in items])
        except WebEngageBadRequest as error:
            response = error.response_text or str(error)
            if len(items) == 1:
                self._mark_dead(batch_id, items[0], response)
                return
            self._finish(batch_id, "rejected", error=response)
            # A 400 does not say which item is at fault: halve the batch until the bad ones stand alone.
            log.warning("WebEngage rejected a batch of %d %ss; splitting it to find the bad items", len(items), kind)
            middle = len(items) // 2
            self.deliver(kind, items[:middle])
            self.deliver(kind, items[middle:])
            return
        except WebEngageTransientError as error:
            self._mark_failed(batch_id, items, error)
            raise
        except WebEngageError as error:
            self._finish(batch_id, "failed", error=str(error))
            raise
        # Any other exception leaves the batch in flight: its outcome is unknown.
        self._mark_sent(batch_id, kind, items, result, following)

    def discard_recorded(self) -> None:
        """Delete the in-flight record of a following batch that was never sent, because delivery stopped."""
        if self._recorded is None:
            return
        _, batch_id = self._recorded
        self._recorded = None
        try:
            self.conn.execute("DELETE FROM sync.webengage_batch WHERE batch_id = %s AND status = 'in_flight'",
                              (batch_id,))
        except psycopg.Error as error:
            log.warning("Failed to delete the in-flight record of batch %s, which was not sent; the next delivery "
                        "marks it interrupted: %s", batch_id, error)

    def _take_recorded(self, items: list[_Item]) -> str | None:
        if self._recorded is None or self._recorded[0] is not items:
            return None
        batch_id = self._recorded[1]
        self._recorded = None
        return batch_id

    def _record_in_flight(self, kind: str, items: list[_Item]) -> str:
        batch_id = uuid.uuid4().hex
        # %b sends the item keys in binary, which psycopg encodes four times faster than a text array.
        self.conn.execute(
            """
            INSERT INTO sync.webengage_batch (batch_id, run_id, workspace_id, kind, item_keys, status, sender)
            VALUES (%s, %s, %s, %s, %b, 'in_flight', %s)
            """,
            (batch_id, self.run_id, self.workspace_id, kind, [item.item_key for item in items],
             threading.current_thread().name),
        )
        return batch_id

    def _mark_sent(
        self, batch_id: str, kind: str, items: list[_Item], result: CallResult, following: list[_Item] | None
    ) -> None:
        # One statement is one transaction in autocommit mode: items, user hashes and batch commit together,
        # and with them the in-flight record of the following batch, which commits before its call.
        # The item keys come from the batch record, which saves sending them a second time. The following
        # batch's keys go in binary (%b), as in _record_in_flight.
        following_id = uuid.uuid4().hex if following else None
        sent = self.conn.execute(
            """
            WITH following AS (
                INSERT INTO sync.webengage_batch (batch_id, run_id, workspace_id, kind, item_keys, status, sender)
                SELECT %(following_id)s, %(run_id)s, %(workspace_id)s, %(kind)s, %(following_keys)b, 'in_flight',
                       %(sender)s
                WHERE %(following_id)s::text IS NOT NULL
            ), sent AS (
                UPDATE sync.webengage_outbox
                SET status = 'sent', batch_id = %(batch_id)s, sent_run_id = %(run_id)s, sent_at = now(),
                    attempts = attempts + 1, last_error = NULL
                WHERE item_key = ANY ((SELECT item_keys FROM sync.webengage_batch WHERE batch_id = %(batch_id)s)::text[])
                  AND status IN ('pending', 'failed')
                RETURNING kind, workspace_id, user_id, payload_hash, item_key, sequence
            ), latest_user AS (
                SELECT DISTINCT ON (workspace_id, user_id) workspace_id, user_id, payload_hash, item_key
                FROM sent
                WHERE kind = 'user'
                ORDER BY workspace_id, user_id, sequence DESC
            ), user_state AS (
                INSERT INTO sync.webengage_user_state (workspace_id, user_id, payload_hash, item_key, sent_at)
                SELECT workspace_id, user_id, payload_hash, item_key, now() FROM latest_user
                ON CONFLICT (workspace_id, user_id) DO UPDATE
                SET payload_hash = EXCLUDED.payload_hash, item_key = EXCLUDED.item_key, sent_at = EXCLUDED.sent_at
            )
            UPDATE sync.webengage_batch
            SET status = 'accepted', finished_at = now(), attempts = %(attempts)s, rate_limited = %(rate_limited)s,
                uncertain_retries = %(uncertain_retries)s
            WHERE batch_id = %(batch_id)s
            RETURNING (SELECT count(*) FROM sent)
            """,
            {"batch_id": batch_id, "run_id": self.run_id, "attempts": result.attempts,
             "rate_limited": result.rate_limited, "uncertain_retries": result.uncertain_retries,
             "following_id": following_id, "workspace_id": self.workspace_id, "kind": kind,
             "following_keys": [item.item_key for item in following] if following else [],
             "sender": threading.current_thread().name},
        ).fetchone()[0]
        if following:
            self._recorded = (following, following_id)
        if sent != len(items):
            log.warning("Batch %s: WebEngage accepted %d items but only %d were still to send", batch_id, len(items), sent)
        with self.summary_lock:
            self.summary.batches += 1
            if kind == "user":
                self.summary.users_sent += sent
            else:
                self.summary.events_sent += sent
            self.summary.rate_limited += result.rate_limited
            self.summary.retries += result.attempts - 1
            self.summary.uncertain_retries += result.uncertain_retries

    def _mark_dead(self, batch_id: str, item: _Item, response: str) -> None:
        log.warning("WebEngage rejected item %s; recorded as dead: %s", item.item_key, response[:300])
        self.conn.execute(
            """
            WITH dead AS (
                UPDATE sync.webengage_outbox
                SET status = 'dead', reason = 'rejected by WebEngage', last_error = %(error)s, dead_at = now(),
                    attempts = attempts + 1, batch_id = %(batch_id)s
                WHERE item_key = %(item_key)s AND status IN ('pending', 'failed')
            )
            UPDATE sync.webengage_batch
            SET status = 'rejected', finished_at = now(), attempts = 1, error = %(error)s
            WHERE batch_id = %(batch_id)s
            """,
            {"error": response[:_MAX_ERROR_LENGTH], "batch_id": batch_id, "item_key": item.item_key},
        )
        with self.summary_lock:
            self.summary.dead += 1

    def _mark_failed(self, batch_id: str, items: list[_Item], error: WebEngageTransientError) -> None:
        self.conn.execute(
            """
            WITH failed AS (
                UPDATE sync.webengage_outbox
                SET status = 'failed', attempts = attempts + 1, last_error = %(error)s
                WHERE item_key = ANY ((SELECT item_keys FROM sync.webengage_batch WHERE batch_id = %(batch_id)s)::text[])
                  AND status IN ('pending', 'failed')
            )
            UPDATE sync.webengage_batch
            SET status = 'failed', finished_at = now(), attempts = %(attempts)s, rate_limited = %(rate_limited)s,
                uncertain_retries = %(uncertain_retries)s, error = %(error)s
            WHERE batch_id = %(batch_id)s
            """,
            {"error": str(error)[:_MAX_ERROR_LENGTH], "attempts": error.attempts, "rate_limited": error.rate_limited,
             "uncertain_retries": error.uncertain_retries, "batch_id": batch_id},
        )
        with self.summary_lock:
            self.summary.failed += len(items)
            self.summary.rate_limited += error.rate_limited
            self.summary.uncertain_retries += error.uncertain_retries

    def _finish(self, batch_id: str, status: str, error: str) -> None:
        self.conn.execute(
            "UPDATE sync.webengage_batch SET status = %s, finished_at = now(), error = %s WHERE batch_id = %s",
            (status, error[:_MAX_ERROR_LENGTH], batch_id),
        )


# -- several senders ----------------------------------------------------------------------------


def _deliver_concurrently(
    batches: Iterator[list[_Item]],
    kind: str,
    sender: BulkSender,
    run_id: str,
    workspace_id: str,
    summary: DeliverySummary,
    concurrency: int,
    connect: Callable[[], psycopg.Connection],
) -> None:
    """Hand ``batches`` to ``concurrency`` sender threads and wait for all of them to finish.

    The first error stops the hand-out. The senders finish the batch they hold, then read the rest of
    the queue without sending it, and the first error is raised here.
    """
    work: queue.Queue[list[_Item] | None] = queue.Queue(maxsize=concurrency * 2)
    stop = threading.Event()
    errors: list[BaseException] = []
    summary_lock = threading.Lock()
    connections: list[psycopg.Connection] = []
    threads: list[threading.Thread] = []
    try:
        for number in range(concurrency):
            connections.append(connect())
            worker = _Sender(connections[-1], sender, run_id, workspace_id, summary, summary_lock)
            thread = threading.Thread(target=_run_sender, args=(worker, kind, work, stop, errors),
                                      name=f"webengage-sender-{number + 1}", daemon=True)
            thread.start()
            threads.append(thread)

        for items in batches:
            if not _hand_out(work, items, stop):
                break
    finally:
        for _ in threads:
            work.put(None)  # every sender reads the queue until it gets None, so this put does not block for long
        for thread in threads:
            thread.join()
        for connection in connections:
            connection.close()
    if errors:
        raise errors[0]


def _hand_out(work: queue.Queue[list[_Item] | None], items: list[_Item], stop: threading.Event) -> bool:
    """Put a batch in the queue; return False, without putting it, once the senders stopped."""
    while not stop.is_set():
        try:
            work.put(items, timeout=_HAND_OUT_TIMEOUT)
            return True
        except queue.Full:
            continue
    return False


def _run_sender(
    worker: _Sender, kind: str, work: queue.Queue[list[_Item] | None], stop: threading.Event,
    errors: list[BaseException],
) -> None:
    items = work.get()
    try:
        while items is not None:
            # The following batch, if one is waiting: delivering items records it in flight.
            try:
                following = work.get_nowait()
            except queue.Empty:
                following = _NOT_TAKEN
            if not stop.is_set():
                try:
                    worker.deliver(kind, items, following if following is not _NOT_TAKEN else None)
                except BaseException as error:  # noqa: BLE001 - handed to the calling thread, which raises it
                    errors.append(error)
                    stop.set()
            items = following if following is not _NOT_TAKEN else work.get()
    finally:
        worker.discard_recorded()


def _connection_like(conn: psycopg.Connection) -> Callable[[], psycopg.Connection]:
    """Return a function opening autocommit connections with ``conn``'s parameters and password."""
    dsn = conn.info.dsn
    password = conn.info.password

    def connect() -> psycopg.Connection:
        if password:
            return psycopg.connect(dsn, password=password, autocommit=True)
        return psycopg.connect(dsn, autocommit=True)

    return connect


# -- bookkeeping across deliveries --------------------------------------------------------------


def _lock_name(workspace_id: str) -> str:
    return f"loyalty_sync.webengage_delivery:{workspace_id}"


def _lock_workspace(conn: psycopg.Connection, workspace_id: str) -> None:
    locked = conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (_lock_name(workspace_id),)).fetchone()[0]
    if not locked:
        raise DeliveryInProgress(
            f"another delivery to WebEngage for workspace {workspace_id} is running; wait for it to finish"
        )


def _unlock_workspace(conn: psycopg.Connection, workspace_id: str) -> None:
    try:
        conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (_lock_name(workspace_id),))
    except psycopg.Error as error:
        # A broken connection has lost the lock already; the error that broke it is the one to raise.
        log.warning("Could not release the delivery lock of workspace %s: %s", workspace_id, error)


def _mark_interrupted(conn: psycopg.Connection, run_id: str, workspace_id: str) -> int:
    """Mark the batches a crashed delivery left in flight; their items are sent again."""
    interrupted = conn.execute(
        """
        UPDATE sync.webengage_batch
        SET status = 'interrupted', finished_at = now(),
            error = 'still in flight when run ' || %s || ' started: the outcome was never recorded, so the items '
                    'were sent again and may have arrived twice'
        WHERE workspace_id = %s AND status = 'in_flight'
        """,
        (run_id, workspace_id),
    ).rowcount
    if interrupted:
        log.warning("%d batches of workspace %s were in flight when an earlier delivery stopped; their items are "
                    "sent again and may arrive at WebEngage twice", interrupted, workspace_id)
    return interrupted


def _count_resent(conn: psycopg.Connection, run_id: str, workspace_id: str) -> int:
    return conn.execute(
        """
        SELECT count(*)
        FROM sync.webengage_batch AS batch
        WHERE batch.workspace_id = %s AND batch.status = 'interrupted'
          AND EXISTS (SELECT 1 FROM sync.webengage_outbox AS outbox
                      WHERE outbox.item_key = ANY (batch.item_keys) AND outbox.sent_run_id = %s)
        """,
        (workspace_id, run_id),
    ).fetchone()[0]


def dry_run_path(directory: Path, run_id: str) -> Path:
    """Return the file a dry run of ``run_id`` writes, with characters unsafe in file names replaced."""
    safe = "".join(character if character.isalnum() or character in "-_." else "_" for character in run_id)
    return directory / f"webengage-dry-run-{safe}.jsonl"
