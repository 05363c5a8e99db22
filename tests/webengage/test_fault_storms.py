"""Delivery through a stand-in injecting faults: 5xx, 429 bursts, resets, latency. Everything arrives
once, and nothing breaks WebEngage's silent-drop rules."""

from __future__ import annotations

import pytest

from delivery_harness import duplicates, event_keys, outbox_status, quiet_hook, seed_events, sync
from loyalty_sync import report
from loyalty_sync.webengage.standin import FaultConfig
from standin_connection import webengage_connection_json
from staging_builder import AS_OF, Builder

STORMS = {
    "errors": FaultConfig(error_rate=0.3, seed=1),
    "resets": FaultConfig(reset_rate=0.3, seed=2),
    "throttle bursts": FaultConfig(throttle_every=7, throttle_burst=3, retry_after_seconds=0),
    "everything": FaultConfig(error_rate=0.3, reset_rate=0.1, throttle_every=11, throttle_burst=4,
                              retry_after_seconds=0, latency_seconds=0.002, seed=3),
}


@pytest.fixture
def fast_pacing(webengage_conn_env, monkeypatch):
    """The stand-in connection with a pace of 60,000 bulk calls a minute, so waits after 429s stay short."""
    monkeypatch.setenv("AIRFLOW_CONN_WEBENGAGE",
                       webengage_connection_json(webengage_conn_env.base_url, bulk_calls_per_minute=60000))
    return webengage_conn_env


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("storm", list(STORMS))
def test_storm_delivers_everything_once(warehouse, fast_pacing, storm, concurrency):
    standin = fast_pacing
    seed_events(Builder(warehouse), customers=50, events_each=6)
    standin.set_faults(STORMS[storm])

    result = sync(warehouse, quiet_hook(max_attempts=10), "run-1", concurrency=concurrency)

    keys = event_keys(standin)
    assert len(keys) == 300
    assert duplicates(keys) == 0
    assert sorted(user["userId"] for user in standin.accepted_users()) == sorted({key[0] for key in keys})
    assert outbox_status(warehouse) == {"sent": 350}
    assert result["delivered"]["retries"] > 0
    assert standin.violations() == []


def test_storm_counts_in_run_report(warehouse, fast_pacing):
    standin = fast_pacing
    seed_events(Builder(warehouse), customers=30, events_each=5)
    standin.set_faults(FaultConfig(error_rate=0.2, reset_rate=0.1, throttle_every=5, throttle_burst=1,
                                   retry_after_seconds=0, seed=4))

    sync(warehouse, quiet_hook(max_attempts=10), "run-1", concurrency=2)
    delivery = report.build_report(warehouse, "run-1", AS_OF)["delivery"]

    calls = standin.call_counts()
    assert delivery["rate_limited"] == calls.get("bulk-users 429", 0) + calls.get("bulk-events 429", 0)
    failures = sum(count for call, count in calls.items() if call.endswith((" 503", " reset")))
    assert delivery["retries"] == delivery["rate_limited"] + failures
    resets = calls.get("bulk-users reset", 0) + calls.get("bulk-events reset", 0)
    assert delivery["uncertain_retries"] == resets
    assert delivery["batches"] == calls.get("bulk-users 201", 0) + calls.get("bulk-events 201", 0)


def test_long_throttle_burst_waited_out(warehouse, fast_pacing):
    standin = fast_pacing
    seed_events(Builder(warehouse), customers=5, events_each=1)
    # 12 429s in a row: more than max_attempts, fewer than max_rate_limit_waits.
    standin.set_faults(FaultConfig(throttle_every=13, throttle_burst=12, retry_after_seconds=0))

    sync(warehouse, quiet_hook(max_attempts=3), "run-1")

    assert len(event_keys(standin)) == 5
    assert outbox_status(warehouse) == {"sent": 10}
