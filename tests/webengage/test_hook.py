"""WebEngageHook over real HTTP against the stand-in: success, auth errors, rate limits, settings."""

from __future__ import annotations

import json
import logging

import pytest

from standin_connection import STANDIN_API_KEY, STANDIN_LICENSE_CODE, webengage_connection_json
from loyalty_sync.webengage.hook import (
    DATA_CENTER_HOSTS,
    TokenBucket,
    WebEngageBadRequest,
    WebEngageConfigError,
    WebEngageHook,
    WebEngageTransientError,
    resolve_data_center,
)
from loyalty_sync.webengage.standin import StandinConfig, WebEngageStandin

EVENT = {"userId": "7012345678901", "eventName": "Points Earned", "eventTime": "2026-11-30T10:15:00+0530",
         "eventData": {"points": 120}}


def make_hook(monkeypatch, base_url: str, sleeps: list[float] | None = None, **extra) -> WebEngageHook:
    monkeypatch.setenv("AIRFLOW_CONN_WEBENGAGE", webengage_connection_json(base_url, **extra))
    recorded = sleeps if sleeps is not None else []
    return WebEngageHook("webengage", max_attempts=3, sleep=recorded.append)


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
        hook = WebEngageHook("webengage", max_attempts=3, sleep=sleeps.append)
        hook.send_bulk("event", [EVENT])

        with pytest.raises(WebEngageTransientError):
            hook.send_bulk("event", [EVENT])

        assert server.call_counts()["bulk-events 429"] == 3
        assert len(sleeps) == 2


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
