"""Fault injection of the WebEngage stand-in: 5xx, 429 bursts, resets, latency and rejected items."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from loyalty_sync.webengage import standin as standin_module
from loyalty_sync.webengage.standin import FaultConfig, StandinConfig, WebEngageStandin

LICENSE = "~faults1"
API_KEY = "test-key-faults"
TIMEOUT_SECONDS = 5
PLUGINS_DIR = Path(standin_module.__file__).resolve().parents[2]


def event(number: int, **fields: Any) -> dict[str, Any]:
    return {"userId": f"member-{number}", "eventName": "Points Earned", **fields}


@pytest.fixture
def standin() -> Iterator[WebEngageStandin]:
    with WebEngageStandin(StandinConfig(accounts={LICENSE: API_KEY})) as server:
        yield server


def post_events(server: WebEngageStandin, events: list[dict[str, Any]], base_url: str | None = None) -> requests.Response:
    return requests.post(
        f"{base_url or server.base_url}/v1/accounts/{LICENSE}/bulk-events",
        json={"events": events},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=TIMEOUT_SECONDS,
    )


def statuses(server: WebEngageStandin, calls: int) -> list[int | str]:
    """Make ``calls`` calls, each on a fresh connection; a reset connection counts as "reset"."""
    result: list[int | str] = []
    for number in range(calls):
        try:
            result.append(post_events(server, [event(number)]).status_code)
        except requests.ConnectionError:
            result.append("reset")
    return result


def test_no_faults_by_default(standin):
    assert statuses(standin, 5) == [201] * 5
    assert standin.faults() == FaultConfig()


def test_error_rate_share_of_calls(standin):
    standin.set_faults(FaultConfig(error_rate=0.3, seed=7))

    results = statuses(standin, 200)

    assert 40 <= results.count(503) <= 80
    assert results.count(503) + results.count(201) == 200
    assert len(standin.accepted_events()) == results.count(201)


def test_same_seed_same_faults(standin):
    standin.set_faults(FaultConfig(error_rate=0.5, seed=11))
    first = statuses(standin, 30)
    standin.set_faults(FaultConfig(error_rate=0.5, seed=11))

    assert statuses(standin, 30) == first


def test_error_status_configurable(standin):
    standin.set_faults(FaultConfig(error_rate=1.0, error_status=502))

    response = post_events(standin, [event(1)])

    assert response.status_code == 502
    assert response.json() == {"response": {"message": "Error: internal server error (injected fault).",
                                            "status": "error"}}


def test_throttle_bursts_follow_pattern(standin):
    standin.set_faults(FaultConfig(throttle_every=4, throttle_burst=2, retry_after_seconds=3))

    results = statuses(standin, 8)

    assert results == [429, 429, 201, 201, 429, 429, 201, 201]
    response = post_events(standin, [event(1)])
    assert response.headers["Retry-After"] == "3"


def test_injected_429_uses_no_quota():
    config = StandinConfig(accounts={LICENSE: API_KEY}, bulk_limit=2)
    with WebEngageStandin(config, faults=FaultConfig(throttle_every=3, throttle_burst=1)) as server:
        assert statuses(server, 3) == [429, 201, 201]
        assert statuses(server, 1) == [429]
        assert statuses(server, 1) == [429]


def test_reset_stores_nothing(standin):
    standin.set_faults(FaultConfig(reset_rate=1.0))

    results = statuses(standin, 3)

    assert results == ["reset"] * 3
    assert standin.accepted_events() == []
    assert standin.call_counts() == {"bulk-events reset": 3}


def test_reset_seen_by_keep_alive_client(standin):
    session = requests.Session()
    url = f"{standin.base_url}/v1/accounts/{LICENSE}/bulk-events"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    assert session.post(url, json={"events": [event(1)]}, headers=headers, timeout=TIMEOUT_SECONDS).status_code == 201
    standin.set_faults(FaultConfig(reset_rate=1.0))

    with pytest.raises(requests.ConnectionError):
        session.post(url, json={"events": [event(2)]}, headers=headers, timeout=TIMEOUT_SECONDS)

    assert len(standin.accepted_events()) == 1


def test_latency_delays_response(standin):
    standin.set_faults(FaultConfig(latency_seconds=0.2))

    started = time.monotonic()
    response = post_events(standin, [event(1)])

    assert response.status_code == 201
    assert time.monotonic() - started >= 0.2


def test_rejected_item_names_its_index(standin):
    standin.set_faults(FaultConfig(reject_items=({"userId": "member-3", "eventData.points": 5},)))

    rejected = post_events(standin, [event(1), event(3, eventData={"points": 5})])
    accepted = post_events(standin, [event(3, eventData={"points": 6}), event(4)])

    assert rejected.status_code == 400
    assert "item 1 of events was rejected" in rejected.json()["response"]["message"]
    assert accepted.status_code == 201
    assert [item["userId"] for item in standin.accepted_events()] == ["member-3", "member-4"]


def test_pattern_type_must_match(standin):
    standin.set_faults(FaultConfig(reject_items=({"eventData.points": 1},)))

    response = post_events(standin, [event(1, eventData={"points": True})])

    assert response.status_code == 201


def test_reset_keeps_faults(standin):
    faults = FaultConfig(error_rate=1.0)
    standin.set_faults(faults)

    standin.reset()

    assert standin.faults() == faults


@pytest.mark.parametrize(("values", "message"), [
    ({"error_rate": 1.5}, "error_rate must be between 0 and 1"),
    ({"error_status": 404}, "error_status must be a 5xx status"),
    ({"throttle_every": 2, "throttle_burst": 2}, "must be larger than throttle_burst"),
    ({"latency_seconds": -1}, "latency_seconds must not be negative"),
    ({"reject_items": [{}]}, "non-empty JSON objects"),
])
def test_invalid_fault_config_rejected(values, message):
    with pytest.raises(ValueError, match=message):
        FaultConfig.from_json(values)


def test_unknown_fault_setting_rejected():
    with pytest.raises(ValueError, match="unknown fault settings \\['drop'\\]"):
        FaultConfig.from_json({"drop": 1})


def test_faults_set_over_http(standin):
    url = f"{standin.base_url}/_standin/faults"

    response = requests.put(url, json={"error_rate": 1.0, "reject_items": [{"userId": "x"}]}, timeout=TIMEOUT_SECONDS)

    assert response.status_code == 200
    assert response.json()["faults"]["error_rate"] == 1.0
    assert standin.faults().reject_items == ({"userId": "x"},)
    assert requests.get(url, timeout=TIMEOUT_SECONDS).json() == response.json()
    assert post_events(standin, [event(1)]).status_code == 503


def test_invalid_faults_over_http_rejected(standin):
    response = requests.put(f"{standin.base_url}/_standin/faults", json={"error_rate": 2},
                            timeout=TIMEOUT_SECONDS)

    assert response.status_code == 400
    assert "error_rate must be between 0 and 1" in response.json()["response"]["message"]
    assert standin.faults() == FaultConfig()


def test_faults_endpoint_method_not_allowed(standin):
    response = requests.post(f"{standin.base_url}/_standin/faults", json={}, timeout=TIMEOUT_SECONDS)

    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, PUT"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_cli_injects_faults():
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(PLUGINS_DIR)}
    process = subprocess.Popen(
        [sys.executable, "-m", "loyalty_sync.webengage.standin", "--port", str(port), "--account",
         f"{LICENSE}={API_KEY}", "--error-rate", "1", "--error-status", "500", "--latency-ms", "5",
         "--reject-item", '{"userId": "member-9"}'],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "the stand-in did not start within 15 s"
            try:
                faults = requests.get(f"{base_url}/_standin/faults", timeout=1).json()["faults"]
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        response = requests.post(f"{base_url}/v1/accounts/{LICENSE}/bulk-events", json={"events": [event(1)]},
                                 headers={"Authorization": f"Bearer {API_KEY}"}, timeout=TIMEOUT_SECONDS)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)

    assert faults["error_rate"] == 1.0
    assert faults["error_status"] == 500
    assert faults["latency_seconds"] == 0.005
    assert faults["reject_items"] == [{"userId": "member-9"}]
    assert response.status_code == 500
    assert process.returncode == 0


def test_cli_rejects_invalid_reject_item():
    process = subprocess.Popen(
        [sys.executable, "-m", "loyalty_sync.webengage.standin", "--port", "0", "--account", f"{LICENSE}={API_KEY}",
         "--reject-item", "[1]"],
        env={**os.environ, "PYTHONPATH": str(PLUGINS_DIR)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    _, stderr = process.communicate(timeout=10)

    assert process.returncode == 2
    assert "must be a non-empty JSON object" in stderr
