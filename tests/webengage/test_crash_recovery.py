"""A delivery process killed with SIGKILL mid-run, then a rerun: every event arrives, and only the
batches the rerun reports as resent can have arrived twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from delivery_harness import duplicates, event_keys, outbox_status, queue_only, quiet_hook, seed_events
from loyalty_sync import tasks
from loyalty_sync.settings import SyncSettings
from loyalty_sync.webengage.standin import FaultConfig
from staging_builder import Builder

REPO_ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = 3

DELIVER_SCRIPT = textwrap.dedent(
    """
    import sys
    import psycopg
    from loyalty_sync import tasks
    from loyalty_sync.settings import SyncSettings
    from loyalty_sync.webengage.hook import WebEngageHook

    with psycopg.connect(sys.argv[1], autocommit=True) as conn:
        hook = WebEngageHook("webengage", max_attempts=2)
        tasks.deliver(conn, SyncSettings(), "run-killed", lambda conn_id: hook, concurrency=int(sys.argv[2]))
    """
)


def wait_for_advisory_locks_released(conn, timeout_seconds: float = 30) -> None:
    """Wait until no other session of the database holds an advisory lock.

    The killed process's server sessions end only once they notice the closed connection, and until
    then one of them still holds the workspace's delivery lock.
    """
    deadline = time.monotonic() + timeout_seconds
    query = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid() "
             "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
    while conn.execute(query).fetchone()[0]:
        assert time.monotonic() < deadline, f"the killed process still held an advisory lock after {timeout_seconds} s"
        time.sleep(0.05)


@pytest.mark.parametrize("kill_after_events", [60, 210])
def test_killed_delivery_rerun_bounded_duplicates(warehouse, webengage_conn_env, database_url, kill_after_events):
    standin = webengage_conn_env
    seed_events(Builder(warehouse), customers=40, events_each=10)
    queue_only(warehouse, "run-1")
    # Slow responses keep several batches in flight when the process dies.
    standin.set_faults(FaultConfig(latency_seconds=0.1))
    child = subprocess.Popen(
        [sys.executable, "-c", DELIVER_SCRIPT, database_url, str(CONCURRENCY)],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "plugins")},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(standin.accepted_events()) < kill_after_events and child.poll() is None:
            assert time.monotonic() < deadline, "the delivery process did not get far enough in 60 s"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    wait_for_advisory_locks_released(warehouse)
    accepted_before_rerun = len(standin.accepted_events())
    standin.set_faults(FaultConfig())

    rerun = tasks.deliver(warehouse, SyncSettings(), "run-2", lambda conn_id: quiet_hook(), concurrency=CONCURRENCY)

    keys = event_keys(standin)
    assert len(set(keys)) == 400
    assert outbox_status(warehouse) == {"sent": 440}
    assert kill_after_events <= accepted_before_rerun < 400
    assert rerun["resent_batches"] <= CONCURRENCY
    assert duplicates(keys) <= 25 * rerun["resent_batches"]
