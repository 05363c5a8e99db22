"""Delivery to the WebEngage stand-in on loopback: the outbox sender next to a naive client, in one run.

Run it with ``make bench-deliver`` or ``python benchmarks/bench_deliver.py --help``. It

1. creates a scratch database on the Postgres server named by ``LOYALTY_BENCH_DATABASE_URL`` (default
   the local server on 127.0.0.1:5432), migrates it, and drops it at the end;
2. builds the payloads of ``--events`` Points Earned events and ``--users`` users with the project's
   payload builder, and freezes them out of the garbage collector's sight (``gc.freeze``), because a
   delivery task does not hold such a heap;
3. measures a naive client that posts one event per request, sequentially, with a new connection per
   request (``requests.post``) and records nothing. It is bounded by ``--naive-max-events`` and
   ``--naive-max-seconds``, and its rate is extrapolated to the full set. A keep-alive variant
   (``requests.Session``) is measured the same way, as a stronger baseline;
4. fills the outbox with every item and times ``tasks.deliver`` to a stand-in without a rate limit,
   outbox bookkeeping included (batch records, items marked sent, user hashes). It then measures the
   naive clients again: the ratios use the mean of the runs before and after, because other work on
   shared cores changes the rates over minutes;
5. fills the outbox again and times delivery to a stand-in that allows ``--limit-calls`` bulk calls per
   ``--limit-window-seconds``, with the client paced at 95% of that, and reports the share of the
   limit used and the share of calls that got a 429 response.

Each stand-in runs as its own process (``python -m loyalty_sync.webengage.standin``) on 127.0.0.1, so
the client and the server do not share one interpreter. Next to the rates it reports the CPU time per
item of the client, the stand-in and the Postgres backends together, read from ``/proc``, which
depends less on other load than wall-clock time. Every loop is bounded in count, and each delivery is
stopped after ``--max-seconds`` by stopping its stand-in.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "plugins"))
# The hook reads its connection through Airflow, which writes a config file into AIRFLOW_HOME.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="loyalty-bench-airflow-"))

import psycopg  # noqa: E402
import requests  # noqa: E402

from loyalty_sync import tasks  # noqa: E402
from loyalty_sync.settings import SyncSettings  # noqa: E402
from loyalty_sync.warehouse.migrations import apply_migrations  # noqa: E402
from loyalty_sync.warehouse.scratch import scratch_database  # noqa: E402
from loyalty_sync.webengage.catalog import EVENTS_BY_KEY  # noqa: E402
from loyalty_sync.webengage.hook import WebEngageHook  # noqa: E402
from loyalty_sync.webengage.payloads import build_event, build_user, payload_hash  # noqa: E402

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LICENSE_CODE = "~bench01"
API_KEY = "bench-key-for-the-local-stand-in"
WORKSPACE = "bench-brand"
CONN_ID = "webengage_bench"
IST = ZoneInfo("Asia/Kolkata")
STARTED = datetime(2026, 11, 30, 9, 0, tzinfo=IST)


# -- payloads -----------------------------------------------------------------------------------


def build_payloads(events: int, users: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Build ``events`` Points Earned events spread over ``users`` users, and the users' attributes."""
    spec = EVENTS_BY_KEY["points_earned"]
    event_payloads = []
    for number in range(events):
        row = {
            "user_id": str(7_000_000_000 + number % users),
            "occurred_at": STARTED + timedelta(seconds=number),
            "amount": Decimal(10 + number % 90),
            "balance_after": Decimal(500 + number % 1000),
            "points_value": Decimal(10 + number % 90),
            "currency": "INR",
            "title": "Order reward",
            "reference_order_id": f"order-{number}",
            "expire_at": STARTED + timedelta(days=365),
        }
        event_payloads.append(build_event(spec, row, IST))
    user_payloads = []
    for number in range(users):
        row = {
            "user_id": str(7_000_000_000 + number), "first_name": "Customer", "last_name": f"Number {number}",
            "email": f"customer{number}@example.com", "mobile_e164": f"+9198{number:08d}",
            "email_opt_in": number % 3 == 0, "sms_opt_in": number % 2 == 0, "tier": "Silver",
            "coin_balance": Decimal(number % 2000), "lifetime_coins_earned": Decimal(number % 5000),
            "lifetime_coins_redeemed": Decimal(number % 700), "referral_code": f"REF{number}",
            "unused_coupon_count": number % 3, "review_count": number % 4, "completed_referral_count": number % 2,
            "last_activity_at": STARTED, "earned_never_redeemed": number % 5 == 0, "has_unused_coupon": True,
            "has_coins_expiring_soon": False, "completed_referral_recently": False, "reviewed_recently": False,
            "tier_upgraded_recently": False,
        }
        user_payloads.append(build_user(row, IST))
    return event_payloads, user_payloads


# -- stand-in process ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class StandinProcess:
    """The stand-in's command line in a child process on 127.0.0.1."""

    def __init__(self, bulk_limit: int, single_limit: int, window_seconds: float) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "loyalty_sync.webengage.standin", "--host", "127.0.0.1", "--port", str(self.port),
             "--bulk-limit", str(bulk_limit), "--single-limit", str(single_limit),
             "--window-seconds", str(window_seconds), "--log-level", "WARNING"],
            env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "plugins"),
                 "WEBENGAGE_STANDIN_ACCOUNTS": f"{LICENSE_CODE}={API_KEY}"},
        )
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the stand-in exited with {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the stand-in did not start within 30 s")
            try:
                requests.get(f"{self.base_url}/_standin/calls", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.1)

    def calls(self) -> dict[str, int]:
        return requests.get(f"{self.base_url}/_standin/calls", timeout=30).json()["calls"]

    def accepted_counts(self) -> tuple[int, int]:
        accepted = requests.get(f"{self.base_url}/_standin/accepted", timeout=300).json()
        return len(accepted["events"]), len(accepted["users"])

    def violations(self) -> int:
        return len(requests.get(f"{self.base_url}/_standin/violations", timeout=60).json()["violations"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# -- CPU accounting -----------------------------------------------------------------------------


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a local process, or None where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class MeasuredConnection(psycopg.Connection):
    """A connection that adds the CPU time its Postgres backend used to ``backend_cpu`` when it closes.

    Works only with a Postgres server on this machine; elsewhere ``backend_cpu`` stays None.
    """

    backend_cpu: list[float | None] = []

    def close(self) -> None:
        if not self.closed:
            pid = self.info.backend_pid
            cpu = process_cpu_seconds(pid)
            MeasuredConnection.backend_cpu.append(cpu)
        super().close()


@dataclass
class CpuUse:
    """CPU seconds of the client process, the stand-in process and the Postgres backends."""

    client: float
    standin: float | None
    postgres: float | None

    def per_item_us(self, items: int) -> str:
        parts = [self.client, self.standin, self.postgres]
        known = [part for part in parts if part is not None]
        total = sum(known) / items * 1e6
        return f"{total:,.0f}" + ("" if len(known) == len(parts) else " (partial)")


# -- naive client -------------------------------------------------------------------------------


@dataclass
class NaiveResult:
    name: str
    events: int
    seconds: float
    cpu: CpuUse

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def run_naive(name: str, standin: StandinProcess, events: list[dict[str, Any]], keep_alive: bool, max_events: int,
              max_seconds: float) -> NaiveResult:
    """Post one event per request, in order, until ``max_events`` or ``max_seconds``; record nothing."""
    url = f"{standin.base_url}/v1/accounts/{LICENSE_CODE}/events"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    session = requests.Session() if keep_alive else None
    post = session.post if session is not None else requests.post
    client_before, standin_before = own_cpu_seconds(), process_cpu_seconds(standin.process.pid)
    started = time.perf_counter()
    sent = 0
    for event in events[:max_events]:
        response = post(url, json=event, headers=headers, timeout=30)
        response.raise_for_status()
        sent += 1
        if time.perf_counter() - started >= max_seconds:
            break
    seconds = time.perf_counter() - started
    standin_after = process_cpu_seconds(standin.process.pid)
    cpu = CpuUse(own_cpu_seconds() - client_before,
                 None if standin_before is None or standin_after is None else standin_after - standin_before, 0.0)
    return NaiveResult(name, sent, seconds, cpu)


# -- outbox sender ------------------------------------------------------------------------------


def fill_outbox(conn: psycopg.Connection, events: list[dict[str, Any]], users: list[dict[str, Any]]) -> float:
    """Empty the delivery tables and queue every item as pending; return the seconds it took."""
    started = time.perf_counter()
    conn.execute("TRUNCATE sync.webengage_outbox, sync.webengage_user_state, sync.webengage_batch")
    with conn.cursor() as cursor, cursor.copy(
        "COPY sync.webengage_outbox (item_key, kind, workspace_id, user_id, name, payload, payload_hash, status, "
        "queued_run_id) FROM STDIN"
    ) as copy:
        for number, user in enumerate(users):
            text = json.dumps(user, separators=(",", ":"))
            copy.write_row((f"user:{WORKSPACE}:{number}", "user", WORKSPACE, user["userId"], "user", text,
                            payload_hash(user), "pending", "bench"))
        for number, event in enumerate(events):
            text = json.dumps(event, separators=(",", ":"))
            copy.write_row((f"points_earned:{WORKSPACE}:{number}", "event", WORKSPACE, event["userId"],
                            "points_earned", text, None, "pending", "bench"))
    conn.execute("ANALYZE sync.webengage_outbox")
    return time.perf_counter() - started


@dataclass
class DeliveryResult:
    name: str
    items: int
    seconds: float
    cpu: CpuUse
    calls: dict[str, int]
    accepted_events: int
    accepted_users: int
    violations: int
    summary: dict[str, int]

    @property
    def rate(self) -> float:
        return self.items / self.seconds

    @property
    def bulk_calls(self) -> int:
        return sum(count for call, count in self.calls.items() if call.startswith("bulk-"))

    @property
    def rate_limited(self) -> int:
        return sum(count for call, count in self.calls.items() if call.endswith(" 429"))


def run_delivery(name: str, conn: psycopg.Connection, database_url: str, standin: StandinProcess, items: int,
                 concurrency: int, extra: dict[str, Any], max_seconds: float) -> DeliveryResult:
    """Deliver the filled outbox through the hook and time it; stop the stand-in after ``max_seconds``."""
    os.environ[f"AIRFLOW_CONN_{CONN_ID.upper()}"] = json.dumps({
        "conn_type": "http", "host": standin.base_url, "login": LICENSE_CODE, "password": API_KEY,
        "extra": json.dumps({"data_center": "global", **extra}),
    })
    settings = SyncSettings(webengage_connections={WORKSPACE: CONN_ID})
    hook = WebEngageHook(CONN_ID, max_attempts=3)
    MeasuredConnection.backend_cpu = []
    main_backend_before = process_cpu_seconds(conn.info.backend_pid)
    client_before, standin_before = own_cpu_seconds(), process_cpu_seconds(standin.process.pid)
    watchdog = threading.Timer(max_seconds, standin.stop)
    watchdog.start()
    started = time.perf_counter()
    try:
        summary = tasks.deliver(conn, settings, f"bench-{name}", lambda conn_id: hook, concurrency=concurrency,
                                connect=lambda: MeasuredConnection.connect(database_url, autocommit=True))
    finally:
        seconds = time.perf_counter() - started
        watchdog.cancel()
        hook.close()
    if standin.process.poll() is not None:
        raise RuntimeError(f"delivery '{name}' took longer than --max-seconds={max_seconds}")
    cpu = CpuUse(own_cpu_seconds() - client_before, _delta(standin_before, process_cpu_seconds(standin.process.pid)),
                 _postgres_cpu(main_backend_before, process_cpu_seconds(conn.info.backend_pid)))
    accepted_events, accepted_users = standin.accepted_counts()
    return DeliveryResult(name, items, seconds, cpu, standin.calls(), accepted_events, accepted_users,
                          standin.violations(), summary)


def _delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


def _postgres_cpu(main_before: float | None, main_after: float | None) -> float | None:
    senders = MeasuredConnection.backend_cpu
    main = _delta(main_before, main_after)
    if main is None or any(cpu is None for cpu in senders):
        return None
    return main + sum(cpu for cpu in senders if cpu is not None)


# -- report -------------------------------------------------------------------------------------


def report(arguments: argparse.Namespace, naive: list[NaiveResult], unlimited: DeliveryResult,
           limited: DeliveryResult | None, fill_seconds: float) -> str:
    total = arguments.events + arguments.users
    fresh = [result for result in naive if result.name.startswith("new connection")]
    fresh_rate = sum(result.rate for result in fresh) / len(fresh)
    lines = [
        f"items: {arguments.events} events + {arguments.users} users = {total}; sender threads: "
        f"{arguments.concurrency}; outbox filled with COPY in {fill_seconds:.1f} s (not counted)",
        "",
        "| client | items sent | seconds | items/s | vs naive (new connection, mean) | CPU µs per item |",
        "|---|---|---|---|---|---|",
    ]
    for result in naive:
        estimate = total / result.rate
        lines.append(f"| naive, {result.name} | {result.events} (bounded; {total} would take an estimated "
                     f"{estimate:,.0f} s) | {result.seconds:.1f} | {result.rate:,.0f} | "
                     f"{result.rate / fresh_rate:.2f}x | {result.cpu.per_item_us(result.events)} |")
    lines.append(f"| outbox sender, no rate limit | {unlimited.items} | {unlimited.seconds:.1f} | "
                 f"{unlimited.rate:,.0f} | {unlimited.rate / fresh_rate:.1f}x | "
                 f"{unlimited.cpu.per_item_us(unlimited.items)} |")
    keep_alive = [result for result in naive if result.name.startswith("keep-alive")]
    keep_alive_rate = sum(result.rate for result in keep_alive) / len(keep_alive)
    cpu = unlimited.cpu
    lines += [
        "",
        f"no limit: {unlimited.bulk_calls} bulk calls, {unlimited.rate_limited} answered 429; stand-in stored "
        f"{unlimited.accepted_events} events and {unlimited.accepted_users} users; violations: {unlimited.violations}",
        f"vs naive with keep-alive (mean): {unlimited.rate / keep_alive_rate:.1f}x",
        f"outbox sender CPU seconds: client {cpu.client:.1f}, stand-in {_seconds(cpu.standin)}, "
        f"Postgres backends {_seconds(cpu.postgres)}",
    ]
    if limited is not None:
        limit_rate = arguments.limit_calls / arguments.limit_window_seconds
        used = limited.calls.get("bulk-users 201", 0) + limited.calls.get("bulk-events 201", 0)
        share = used / limited.seconds / limit_rate
        lines += [
            "",
            f"limited to {arguments.limit_calls} bulk calls per {arguments.limit_window_seconds:g} s "
            f"({limit_rate:.1f}/s), client paced at 95%: {used} accepted calls in {limited.seconds:.1f} s = "
            f"{used / limited.seconds:.2f}/s, {share:.1%} of the limit; {limited.rate_limited} of "
            f"{limited.bulk_calls} calls answered 429 ({limited.rate_limited / limited.bulk_calls:.2%}); "
            f"stand-in stored {limited.accepted_events} events and {limited.accepted_users} users; "
            f"violations: {limited.violations}",
        ]
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def check(result: DeliveryResult, events: int, users: int) -> None:
    if (result.accepted_events, result.accepted_users) != (events, users):
        raise RuntimeError(f"{result.name}: the stand-in stored {result.accepted_events} events and "
                           f"{result.accepted_users} users, expected {events} and {users}")
    if result.summary["events_sent"] != events or result.summary["users_sent"] != users:
        raise RuntimeError(f"{result.name}: the outbox recorded {result.summary}, expected {events} events and "
                           f"{users} users sent")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to deliver (default: %(default)s)")
    parser.add_argument("--users", type=int, default=50_000, help="users to deliver (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=4, help="sender threads (default: %(default)s)")
    parser.add_argument("--naive-max-events", type=int, default=5000,
                        help="events the naive client sends at most, each time (default: %(default)s)")
    parser.add_argument("--naive-max-seconds", type=float, default=20.0,
                        help="seconds the naive client runs at most, each time (default: %(default)s)")
    parser.add_argument("--limit-calls", type=int, default=500,
                        help="bulk calls the limited stand-in allows per window (default: %(default)s)")
    parser.add_argument("--limit-window-seconds", type=float, default=10.0,
                        help="length of the limited stand-in's window (default: %(default)s)")
    parser.add_argument("--skip-limited", action="store_true", help="leave out the rate-limited delivery")
    parser.add_argument("--max-seconds", type=float, default=900.0,
                        help="stop a delivery that runs longer than this (default: %(default)s)")
    arguments = parser.parse_args(argv)

    server_url = os.environ.get("LOYALTY_BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    print(f"building {arguments.events} events and {arguments.users} users", flush=True)
    events, users = build_payloads(arguments.events, arguments.users)
    # The payloads stay in memory for the whole run, millions of objects that every full collection of
    # the garbage collector would walk again. A delivery task keeps one page of the outbox at a time,
    # so gc.freeze() takes these out of the collections.
    gc.freeze()
    with scratch_database(server_url, "loyalty_bench_deliver") as database_url, \
            psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET client_min_messages TO warning")
        apply_migrations(conn)
        output = run_all(arguments, conn, database_url, events, users)
    print()
    print(output)
    return 0


def run_naive_pair(arguments: argparse.Namespace, standin: StandinProcess, events: list[dict[str, Any]],
                   when: str) -> list[NaiveResult]:
    results = []
    for name, keep_alive in (("new connection per request", False), ("keep-alive", True)):
        print(f"naive client, {name}, {when}", flush=True)
        results.append(run_naive(f"{name}, {when}", standin, events, keep_alive, arguments.naive_max_events,
                                 arguments.naive_max_seconds))
    return results


def run_all(arguments: argparse.Namespace, conn: psycopg.Connection, database_url: str,
            events: list[dict[str, Any]], users: list[dict[str, Any]]) -> str:
    """Run the naive client before and after the unlimited delivery, so drifting load on shared cores
    shows up in both, then the limited delivery."""
    unlimited_calls = 100_000_000
    total = len(events) + len(users)

    fill_seconds = fill_outbox(conn, events, users)
    standin = StandinProcess(unlimited_calls, unlimited_calls, 60.0)
    try:
        naive = run_naive_pair(arguments, standin, events, "before")
    finally:
        standin.stop()
    standin = StandinProcess(unlimited_calls, unlimited_calls, 60.0)
    try:
        print(f"outbox sender, no limit, {arguments.concurrency} threads", flush=True)
        unlimited = run_delivery("unlimited", conn, database_url, standin, total, arguments.concurrency,
                                 {"bulk_calls_per_minute": 60_000_000}, arguments.max_seconds)
    finally:
        standin.stop()
    check(unlimited, len(events), len(users))
    standin = StandinProcess(unlimited_calls, unlimited_calls, 60.0)
    try:
        naive += run_naive_pair(arguments, standin, events, "after")
    finally:
        standin.stop()

    limited = None
    if not arguments.skip_limited:
        fill_outbox(conn, events, users)
        standin = StandinProcess(arguments.limit_calls, unlimited_calls, arguments.limit_window_seconds)
        pace = 0.95 * arguments.limit_calls * 60.0 / arguments.limit_window_seconds
        try:
            print(f"outbox sender, {arguments.limit_calls} calls per {arguments.limit_window_seconds:g} s", flush=True)
            limited = run_delivery("limited", conn, database_url, standin, total, arguments.concurrency,
                                   {"bulk_calls_per_minute": pace,
                                    "rate_limit_window_seconds": arguments.limit_window_seconds},
                                   arguments.max_seconds)
        finally:
            standin.stop()
        check(limited, len(events), len(users))
    return report(arguments, naive, unlimited, limited, fill_seconds)


if __name__ == "__main__":
    sys.exit(main())
