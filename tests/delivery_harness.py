"""Helpers for tests of queueing and delivery: run the stages, break a sender, read the tables."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import psycopg

from loyalty_sync import tasks
from loyalty_sync.derive.profile import refresh_profiles
from loyalty_sync.settings import SyncSettings
from loyalty_sync.webengage.hook import WebEngageHook
from loyalty_sync.webengage.outbox import queue_all
from loyalty_sync.webengage.standin import WebEngageStandin
from staging_builder import AS_OF, Builder

DAY = timedelta(days=1)
# Every table that contains delivery state; a dry run must leave all of them as they were.
DELIVERY_TABLES = (
    "sync.webengage_outbox",
    "sync.webengage_user_state",
    "sync.webengage_batch",
    "sync.webengage_attribute_type",
)


def sync(
    conn: psycopg.Connection, sender: Any, run_id: str, *, concurrency: int = 1, full_resync: bool = False,
    redrive: bool = False, **settings: object,
) -> dict[str, Any]:
    """Derive, queue and deliver, as the DAG's tasks do."""
    run_settings = SyncSettings.from_mapping(settings)
    refresh_profiles(conn, run_settings, AS_OF)
    queued = queue_all(conn, run_settings, AS_OF, run_id, full_resync=full_resync, redrive_dead_letters=redrive)
    delivered = tasks.deliver(conn, run_settings, run_id, lambda conn_id: sender, concurrency=concurrency)
    return {"queued": queued, "delivered": delivered}


def queue_only(conn: psycopg.Connection, run_id: str, **settings: object) -> None:
    run_settings = SyncSettings.from_mapping(settings)
    refresh_profiles(conn, run_settings, AS_OF)
    queue_all(conn, run_settings, AS_OF, run_id)


def seed_events(build: Builder, customers: int, events_each: int) -> None:
    """Add ``customers`` customers with ``events_each`` recent Points Earned events each."""
    for number in range(customers):
        lead = build.customer(f"Customer{number}")
        for event in range(events_each):
            build.ledger(lead, "cr", "reward", 10 + event, AS_OF - DAY + event * timedelta(minutes=1))


def outbox_status(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM sync.webengage_outbox GROUP BY status").fetchall())


def event_keys(standin: WebEngageStandin) -> list[tuple[str, str, str, Any]]:
    """Return one tuple per accepted event, enough to distinguish the events of the seeded data."""
    return [(event["userId"], event["eventName"], event["eventTime"], event["eventData"].get("points"))
            for event in standin.accepted_events()]


def duplicates(keys: list[Any]) -> int:
    """Return how many entries repeat an earlier one."""
    return sum(count - 1 for count in Counter(keys).values())


def table_rows(conn: psycopg.Connection, table: str) -> list[tuple[Any, ...]]:
    """Return every row of ``table`` as text, in a stable order."""
    return conn.execute(f"SELECT t::text FROM {table} AS t ORDER BY 1").fetchall()  # noqa: S608 - fixed table names


def quiet_hook(max_attempts: int = 3, **options: Any) -> WebEngageHook:
    """A hook on the ``webengage`` connection that does not sleep between retries."""
    return WebEngageHook("webengage", max_attempts=max_attempts, sleep=lambda seconds: None, **options)


class CrashingSender:
    """Forwards to a real hook; on call ``crash_at`` dies before or after WebEngage accepts the batch.

    ``KeyboardInterrupt`` stands for the process dying: the delivery records nothing for it, so the
    batch stays in flight, as after a real crash.
    """

    def __init__(self, hook: WebEngageHook, crash_at: int, after_send: bool) -> None:
        self.hook = hook
        self.crash_at = crash_at
        self.after_send = after_send
        self.calls = 0
        self.lock = threading.Lock()

    def send_bulk(self, kind: str, items: Any) -> Any:
        with self.lock:
            self.calls += 1
            call = self.calls
        if call == self.crash_at and not self.after_send:
            raise KeyboardInterrupt("worker killed before sending")
        result = self.hook.send_bulk(kind, items)
        if call == self.crash_at:
            raise KeyboardInterrupt("worker killed after WebEngage accepted the batch")
        return result
