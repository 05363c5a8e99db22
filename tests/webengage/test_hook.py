"""WebEngageHook over real HTTP against the stand-in: success, auth errors, rate limits, settings."""

from __future__ import annotations

import json
import logging
import threading

import pytest

from standin_connection import STANDIN_API_KEY, STANDIN_LICENSE_CODE, webengage_connection_json
from loyalty_sync.webengage.hook import (
    DATA_CENTER_HOSTS,
    TokenBucket,
    WebEngageBadRequest,
    WebEngageConfigError,
    WebEngageHook,
    WebEngageTransientError,
    _buckets_from_extra,
    resolve_data_center,
)
from loyalty_sync.webengage.standin import FaultConfig, StandinConfig, WebEngageStandin

EVENT = {"userId": "7012345678901", "eventName": "Points Earned", "eventTime": "2026-11-30T10:15:00+0530",
         "eventData": {"points": 120}}


def make_hook(monkeypatch, base_url: str, sleeps: list[float] | None = None, max_attempts: int = 3,
              **extra) -> WebEngageHook:
    monkeypatch.setenv("AIRFLOW_CONN_WEBENGAGE", webengage_connection_json(base_url, **extra))
    recorded = sleeps if sleeps is not None else []
    return WebEngageHook("webengage", max_attempts=max_attempts, sleep=recorded.append)


def test_bulk_events_accepted(monkeypatch, standin):
    hook = make_hook(monkeypatch, standin.base_url)

    result = hook.send_bulk("event", [EVENT, {**EVENT, "userId": "2"}])

    assert result.status_code == 201
    assert [event["userId"] for event in standin.accepted_events(STANDIN_LICENSE_CODE)] == ["7012345678901", "2"]


def test_bulk_users_accepted(monkeypatch, standin):
    hook = make_hook(monkeypatch, standin.base_url)

    hook.send_bulk("user", [{"userId": "1", "attributes": {"loyalty_tier": "Gold"}}])

    assert standin.accepted_users(STANDIN_LICENSE_CODE)[0]["attributes"] == {"loyalty_tier": "Gold"}


def test_connection_extra_not_sent_as_header(monkeypatch, standin):
    hook = make_hook(monkeypatch, standin.base_url)

    session = hook.get_conn()

    assert "data_center" not in session.headers
    assert session.headers["Content-Type"] == "application/json"


def test_single_event_has_request_id(monkeypatch, standin):
    hook = make_hook(monkeypatch, standin.base_url)

    hook.send_one("event", EVENT)
    hook.send_one("event", EVENT)

    assert len(standin.accepted_events()) == 1


def test_wrong_key_fails_fast_without_secret(monkeypatch, standin, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_WEBENGAGE", json.dumps({
        "conn_type": "http", "host": standin.base_url, "login": STANDIN_LICENSE_CODE,
        "password": "wrong-key-value", "extra": json.dumps({"data_center": "india"}),
    }))
    hook = WebEngageHook("webengage", max_attempts=3, sleep=lambda seconds: None)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(WebEngageConfigError) as raised:
        hook.send_bulk("event", [EVENT])

    message = str(raised.value)
    assert "401" in message
    assert "india" in message
    assert STANDIN_LICENSE_CODE in message
    assert "wrong-key-value" not in message
    assert "wrong-key-value" not in caplog.text
    assert standin.call_counts() == {"bulk-events 401": 1}


def test_unknown_license_code_fails_fast(monkeypatch, standin):
    monkeypatch.setenv("AIRFLOW_CONN_WEBENGAGE", json.dumps({
        "conn_type": "http", "host": standin.base_url, "login": "in~~unknown1",
        "password": STANDIN_API_KEY, "extra": json.dumps({"data_center": "api.in"}),
    }))
    hook = WebEngageHook("webengage", max_attempts=3, sleep=lambda seconds: None)

    with pytest.raises(WebEngageConfigError) as raised:
        hook.send_bulk("user", [{"userId": "1"}])

    assert "404" in str(raised.value)
    assert "in~~unknown1" in str(raised.value)


def test_bad_request_raises_with_response(monkeypatch, standin):
    hook = make_hook(monkeypatch, standin.base_url)

    with pytest.raises(WebEngageBadRequest) as raised:
        hook.send_bulk("event", [{"eventName": "Points Earned"}])

    assert "userId and anonymousId cannot be empty" in raised.value.response_text


def test_rate_limited_call_waits_and_succeeds():
    config = StandinConfig(accounts={STANDIN_LICENSE_CODE: STANDIN_API_KEY}, bulk_limit=1, window_seconds=1.0)
    with WebEngageStandin(config) as server, pytest.MonkeyPatch.context() as monkeypatch:
        import time

        sleeps: list[float] = []

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            time.sleep(min(seconds, 2.0))

        monkeypatch.setenv("AIRFLOW_CONN_WEBENGAGE", webengage_connection_json(server.base_url))
        hook = WebEngageHook("webengage", max_attempts=3, sleep=sleep)
        hook.send_bulk("event", [EVENT])

        result = hook.send_bulk("event", [{**EVENT, "userId": "2"}])

        assert result.attempts == 2
        assert server.call_counts()["bulk-events 429"] == 1
        assert 0 < sleeps[0] <= 1.0
        assert len(server.accepted_events()) == 2


def test_rate_limit_exhausted_raises_transient():
    config = StandinConfig(accounts={STANDIN_LICENSE_CODE: STANDIN_API_KEY}, bulk_limit=1, window_seconds=60.0)
    with WebEngageStandin(config) as server, pytest.MonkeyPatch.context() as monkeypatch:
        sleeps: list[float] = []
        monkeypatch.setenv("AIRFLOW_CONN_WEBENGAGE", webengage_connection_json(server.base_url))
        hook = WebEngageHook("webengage", max_attempts=3, max_rate_limit_waits=2, sleep=sleeps.append)
        hook.send_bulk("event", [EVENT])

        with pytest.raises(WebEngageTransientError) as raised:
            hook.send_bulk("event", [EVENT])

        assert server.call_counts()["bulk-events 429"] == 3
        assert raised.value.rate_limited == 3
        assert len(sleeps) == 2
        assert min(sleeps) > 50


def test_connection_refused_retried_then_raises(monkeypatch):
    sleeps: list[float] = []
    # Port 9 on loopback: nothing listens there on a test machine.
    hook = make_hook(monkeypatch, "http://127.0.0.1:9", sleeps)

    with pytest.raises(WebEngageTransientError):
        hook.send_bulk("event", [EVENT])

    assert len(sleeps) == 2


@pytest.mark.parametrize(("value", "expected"), [
    ("global", "global"), ("India", "india"), (" ksa ", "ksa"), ("api", "global"),
    ("api.in", "india"), ("api.india", "india"), ("api.ksa", "ksa"), (None, "global"),
])
def test_data_center_names_and_prefixes(value, expected):
    assert resolve_data_center(value) == expected


def test_unknown_data_center_lists_valid_values():
    with pytest.raises(WebEngageConfigError) as raised:
        resolve_data_center("eu")

    assert "'eu'" in str(raised.value)
    assert "api.india" in str(raised.value)
    assert "global" in str(raised.value)


def test_data_center_without_host_picks_api_host(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WEBENGAGE", json.dumps({
        "conn_type": "http", "login": "in~~abc", "password": "k", "extra": json.dumps({"data_center": "api.india"}),
    }))
    hook = WebEngageHook("webengage")

    hook.get_conn()

    assert hook.base_url == DATA_CENTER_HOSTS["india"]


def test_region_mismatch_warns(monkeypatch, standin, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_WEBENGAGE", json.dumps({
        "conn_type": "http", "host": standin.base_url, "login": "in~~abc", "password": "k",
        "extra": json.dumps({"data_center": "global"}),
    }))
    caplog.set_level(logging.WARNING)

    WebEngageHook("webengage").get_conn()

    assert "looks like a india account" in caplog.text


def test_token_bucket_paces_calls():
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(rate_per_minute=60, clock=lambda: now[0], sleep=sleep)
    for _ in range(4):
        bucket.acquire()

    assert sum(sleeps) == pytest.approx(3.0)


def test_threads_share_rate_limit():
    # The stand-in allows 10 bulk calls a second. 4 threads at a shared 6 a second stay within it even
    # when a call arrives up to half a second late; 4 separate buckets would send 24 a second.
    config = StandinConfig(accounts={STANDIN_LICENSE_CODE: STANDIN_API_KEY}, bulk_limit=10, window_seconds=1.0)
    with WebEngageStandin(config) as server, pytest.MonkeyPatch.context() as monkeypatch:
        hook = make_hook(monkeypatch, server.base_url, bulk_calls_per_minute=360, rate_limit_window_seconds=1)

        def send(number: int) -> None:
            for call in range(4):
                hook.send_bulk("event", [{**EVENT, "userId": f"{number}-{call}"}])

        threads = [threading.Thread(target=send, args=(number,)) for number in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)

        assert server.call_counts() == {"bulk-events 201": 16}
        assert len(hook._sessions) == 4


def test_429_pauses_every_thread(monkeypatch, standin):
    standin.set_faults(FaultConfig(throttle_every=100, throttle_burst=1, retry_after_seconds=1))
    sleeps: list[float] = []
    hook = make_hook(monkeypatch, standin.base_url, sleeps)

    first = hook.send_bulk("event", [EVENT])
    other_thread = threading.Thread(target=hook.send_bulk, args=("event", [{**EVENT, "userId": "2"}]))
    other_thread.start()
    other_thread.join(timeout=10)

    assert first.rate_limited == 1
    assert first.attempts == 2
    # The first thread waits out its own 429, the other thread what is left of that pause.
    assert len(sleeps) == 2
    assert all(0 < seconds <= 1.0 for seconds in sleeps)
    assert len(standin.accepted_events()) == 2


def test_reset_retries_counted_uncertain(monkeypatch, standin):
    standin.set_faults(FaultConfig(reset_rate=1.0))
    hook = make_hook(monkeypatch, standin.base_url)

    with pytest.raises(WebEngageTransientError) as raised:
        hook.send_bulk("event", [EVENT])

    assert raised.value.attempts == 3
    assert raised.value.uncertain_retries == 2
    assert standin.call_counts() == {"bulk-events reset": 3}


def test_refused_connection_not_uncertain(monkeypatch):
    hook = make_hook(monkeypatch, "http://127.0.0.1:9")

    with pytest.raises(WebEngageTransientError) as raised:
        hook.send_bulk("event", [EVENT])

    assert raised.value.uncertain_retries == 0


def test_retried_5xx_reported_in_result(monkeypatch, standin):
    standin.set_faults(FaultConfig(error_rate=0.5, seed=5))
    hook = make_hook(monkeypatch, standin.base_url, max_attempts=20)

    results = [hook.send_bulk("event", [{**EVENT, "userId": str(number)}]) for number in range(10)]

    assert sum(result.attempts - 1 for result in results) == standin.call_counts()["bulk-events 503"]
    assert len(standin.accepted_events()) == 10


@pytest.mark.parametrize(("extra", "capacity"), [
    ({}, 475 * 0.05),
    ({"bulk_calls_per_minute": 2850, "rate_limit_window_seconds": 10}, 2850 / 6 * 0.05),
    ({"bulk_calls_per_minute": 60, "rate_limit_window_seconds": 1}, 1.0),
])
def test_burst_sized_to_window(extra, capacity):
    buckets = _buckets_from_extra(extra)

    assert buckets["bulk"].capacity == pytest.approx(capacity)


def test_invalid_window_rejected():
    with pytest.raises(WebEngageConfigError, match="rate_limit_window_seconds"):
        _buckets_from_extra({"rate_limit_window_seconds": 0})


def test_token_bucket_drain_stops_burst():
    now = [0.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(rate_per_minute=60, burst=5, clock=lambda: now[0], sleep=sleep)
    bucket.drain()
    bucket.acquire()

    assert sum(sleeps) == pytest.approx(1.0)
