"""Tests of the WebEngage stand-in over real HTTP on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from loyalty_sync.webengage import standin as standin_module
from loyalty_sync.webengage.standin import StandinConfig, WebEngageStandin

LICENSE = "in~~11b5642"
API_KEY = "test-key-in"
OTHER_LICENSE = "~2024b707"
OTHER_API_KEY = "test-key-tilde"
ACCOUNTS = {LICENSE: API_KEY, OTHER_LICENSE: OTHER_API_KEY}

TIMEOUT_SECONDS = 5
PLUGINS_DIR = Path(standin_module.__file__).resolve().parents[2]

USER = {"userId": "member-1", "firstName": "Asha", "attributes": {"tier": "gold", "points": 120}}
EVENT = {
    "userId": "member-1",
    "eventName": "Points Earned",
    "eventTime": "2024-05-01T10:00:00+0530",
    "eventData": {"points": 40, "source": "purchase"},
}
QUEUED_BODY = {"response": {"status": "queued"}}


def error_body(message: str) -> dict[str, Any]:
    return {"response": {"message": message, "status": "error"}}


StandinFactory = Callable[..., WebEngageStandin]


@pytest.fixture
def make_standin() -> Iterator[StandinFactory]:
    """Start stand-ins with ACCOUNTS and the given config overrides, and stop them afterwards."""
    started: list[WebEngageStandin] = []

    def make(**overrides: Any) -> WebEngageStandin:
        server = WebEngageStandin(StandinConfig(accounts=dict(ACCOUNTS), **overrides)).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def standin(make_standin: StandinFactory) -> WebEngageStandin:
    return make_standin()


def post(
    server: WebEngageStandin,
    resource: str,
    body: Any,
    *,
    license_code: str = LICENSE,
    api_key: str | None = API_KEY,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """POST a JSON body, or raw bytes, to one of the stand-in's API endpoints."""
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if api_key is not None:
        all_headers["Authorization"] = f"Bearer {api_key}"
    url = f"{server.base_url}/v1/accounts/{license_code}/{resource}"
    if isinstance(body, bytes):
        return requests.post(url, data=body, headers=all_headers, timeout=TIMEOUT_SECONDS)
    return requests.post(url, json=body, headers=all_headers, timeout=TIMEOUT_SECONDS)


def user(number: int, **fields: Any) -> dict[str, Any]:
    return {"userId": f"member-{number}", **fields}


def event(number: int, **fields: Any) -> dict[str, Any]:
    return {"userId": f"member-{number}", "eventName": "Points Earned", **fields}


# --- accepted requests ---------------------------------------------------------------------


def test_single_user_queued_and_stored(standin: WebEngageStandin) -> None:
    response = post(standin, "users", USER)

    assert response.status_code == 201
    assert response.json() == QUEUED_BODY
    assert standin.accepted_users() == [USER]


def test_single_event_queued_and_stored(standin: WebEngageStandin) -> None:
    response = post(standin, "events", EVENT)

    assert response.status_code == 201
    assert response.json() == QUEUED_BODY
    assert standin.accepted_events() == [EVENT]


def test_bulk_users_stored_in_order(standin: WebEngageStandin) -> None:
    users = [user(number) for number in range(3)]

    response = post(standin, "bulk-users", {"users": users})

    assert response.status_code == 201
    assert response.json() == QUEUED_BODY
    assert standin.accepted_users() == users


def test_bulk_events_stored_in_order(standin: WebEngageStandin) -> None:
    events = [event(number) for number in range(3)]

    response = post(standin, "bulk-events", {"events": events})

    assert response.status_code == 201
    assert response.json() == QUEUED_BODY
    assert standin.accepted_events() == events


def test_bulk_with_25_items_accepted(standin: WebEngageStandin) -> None:
    response = post(standin, "bulk-events", {"events": [event(number) for number in range(25)]})

    assert response.status_code == 201
    assert len(standin.accepted_events()) == 25


def test_anonymous_id_alone_accepted(standin: WebEngageStandin) -> None:
    response = post(standin, "users", {"anonymousId": "anon-1"})

    assert response.status_code == 201


def test_accepted_filtered_by_license_code(standin: WebEngageStandin) -> None:
    post(standin, "users", user(1))
    post(standin, "users", user(2), license_code=OTHER_LICENSE, api_key=OTHER_API_KEY)

    assert standin.accepted_users(LICENSE) == [user(1)]
    assert standin.accepted_users(OTHER_LICENSE) == [user(2)]
    assert standin.accepted_users() == [user(1), user(2)]


def test_accepted_items_are_copies(standin: WebEngageStandin) -> None:
    post(standin, "users", user(1))

    standin.accepted_users()[0]["userId"] = "changed"

    assert standin.accepted_users() == [user(1)]


# --- license code in the path --------------------------------------------------------------


@pytest.mark.parametrize(("license_code", "api_key"), [(LICENSE, API_KEY), (OTHER_LICENSE, OTHER_API_KEY)])
def test_license_code_with_tilde_verbatim(
    standin: WebEngageStandin, license_code: str, api_key: str
) -> None:
    response = post(standin, "users", USER, license_code=license_code, api_key=api_key)

    assert response.status_code == 201
    assert standin.accepted_users(license_code) == [USER]


def test_license_code_percent_encoded(standin: WebEngageStandin, caplog: pytest.LogCaptureFixture) -> None:
    # requests turns %7E back into ~ while preparing a request, so the URL is set afterwards.
    encoded_path = "/v1/accounts/in%7E%7E11b5642/users"
    prepared = requests.Request(
        "POST", f"{standin.base_url}/v1/accounts/placeholder/users", json=USER,
        headers={"Authorization": f"Bearer {API_KEY}"},
    ).prepare()
    prepared.url = standin.base_url + encoded_path

    with caplog.at_level(logging.DEBUG, logger=standin_module.__name__), requests.Session() as session:
        response = session.send(prepared, timeout=TIMEOUT_SECONDS)

    assert f"POST {encoded_path} -> 201" in caplog.messages
    assert response.status_code == 201
    assert standin.accepted_users(LICENSE) == [USER]


# --- authentication and routing errors -----------------------------------------------------


def test_wrong_key_returns_401(standin: WebEngageStandin) -> None:
    response = post(standin, "users", USER, api_key="wrong-key")

    assert response.status_code == 401
    assert response.json()["response"]["status"] == "error"
    assert standin.accepted_users() == []


def test_missing_authorization_returns_401(standin: WebEngageStandin) -> None:
    response = post(standin, "users", USER, api_key=None)

    assert response.status_code == 401
    assert standin.accepted_users() == []


def test_key_of_other_account_returns_401(standin: WebEngageStandin) -> None:
    response = post(standin, "users", USER, api_key=OTHER_API_KEY)

    assert response.status_code == 401


def test_non_bearer_scheme_returns_401(standin: WebEngageStandin) -> None:
    response = post(standin, "users", USER, api_key=None, headers={"Authorization": f"Basic {API_KEY}"})

    assert response.status_code == 401


def test_unknown_license_code_returns_404(standin: WebEngageStandin) -> None:
    response = post(standin, "users", USER, license_code="unknown-license")

    assert response.status_code == 404
    assert response.json()["response"]["status"] == "error"
    assert standin.accepted_users() == []


def test_license_code_checked_before_key(standin: WebEngageStandin) -> None:
    response = post(standin, "users", USER, license_code="unknown-license", api_key="wrong-key")

    assert response.status_code == 404


def test_unknown_resource_returns_400(standin: WebEngageStandin) -> None:
    response = post(standin, "profiles", USER)

    assert response.status_code == 400
    assert "profiles" in response.json()["response"]["message"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_non_post_returns_405(standin: WebEngageStandin, method: str) -> None:
    response = requests.request(
        method,
        f"{standin.base_url}/v1/accounts/{LICENSE}/users",
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=TIMEOUT_SECONDS,
    )

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_unknown_path_returns_404(standin: WebEngageStandin) -> None:
    response = requests.post(f"{standin.base_url}/v2/users", json=USER, timeout=TIMEOUT_SECONDS)

    assert response.status_code == 404
    assert response.json()["response"]["status"] == "error"


# --- body validation -----------------------------------------------------------------------


@pytest.mark.parametrize(("resource", "list_key", "make_item"), [
    ("bulk-users", "users", user),
    ("bulk-events", "events", event),
])
def test_bulk_with_26_items_returns_400(
    standin: WebEngageStandin, resource: str, list_key: str, make_item: Callable[[int], dict[str, Any]]
) -> None:
    response = post(standin, resource, {list_key: [make_item(number) for number in range(26)]})

    assert response.status_code == 400
    assert response.json()["response"]["status"] == "error"
    assert standin.accepted_users() + standin.accepted_events() == []


def test_max_bulk_items_configurable(make_standin: StandinFactory) -> None:
    server = make_standin(max_bulk_items=2)

    response = post(server, "bulk-users", {"users": [user(1), user(2), user(3)]})

    assert response.status_code == 400


@pytest.mark.parametrize("identity", [
    {},
    {"userId": ""},
    {"anonymousId": ""},
    {"userId": "", "anonymousId": ""},
    {"userId": None},
    {"userId": 42},
])
@pytest.mark.parametrize(
    ("resource", "extra_fields"), [("users", {}), ("events", {"eventName": "Points Earned"})]
)
def test_missing_ids_return_400(
    standin: WebEngageStandin, resource: str, extra_fields: dict[str, Any], identity: dict[str, Any]
) -> None:
    response = post(standin, resource, {**identity, **extra_fields})

    assert response.status_code == 400
    assert response.json() == error_body("Error: userId and anonymousId cannot be empty.")


@pytest.mark.parametrize(("resource", "list_key", "make_item"), [
    ("bulk-users", "users", user),
    ("bulk-events", "events", event),
])
def test_bulk_missing_id_rejects_whole_call(
    standin: WebEngageStandin, resource: str, list_key: str, make_item: Callable[[int], dict[str, Any]]
) -> None:
    items = [make_item(0), make_item(1), make_item(2)]
    del items[2]["userId"]

    response = post(standin, resource, {list_key: items})

    assert response.status_code == 400
    message = response.json()["response"]["message"]
    assert message.startswith("Error: userId and anonymousId cannot be empty")
    assert f"item 2 of {list_key}" in message
    assert standin.accepted_users() + standin.accepted_events() == []


@pytest.mark.parametrize("event_name", [None, "", 7])
def test_missing_event_name_returns_400(standin: WebEngageStandin, event_name: Any) -> None:
    body = {"userId": "member-1"}
    if event_name is not None:
        body["eventName"] = event_name

    response = post(standin, "events", body)

    assert response.status_code == 400
    assert response.json() == error_body("Error: eventName cannot be empty.")


def test_bulk_missing_event_name_mentions_index(standin: WebEngageStandin) -> None:
    response = post(standin, "bulk-events", {"events": [event(0), {"userId": "member-1"}]})

    assert response.status_code == 400
    assert "item 1 of events" in response.json()["response"]["message"]
    assert standin.accepted_events() == []


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"userId": NaN}', b"\xff\xfe"])
def test_bad_json_returns_400(standin: WebEngageStandin, body: bytes) -> None:
    response = post(standin, "users", body)

    assert response.status_code == 400
    assert response.json()["response"]["status"] == "error"


@pytest.mark.parametrize(("resource", "body"), [
    ("users", [USER]),
    ("events", "Points Earned"),
    ("bulk-users", [USER]),
    ("bulk-users", {"events": [USER]}),
    ("bulk-users", {"users": USER}),
    ("bulk-users", {"users": []}),
    ("bulk-users", {"users": ["member-1"]}),
    ("bulk-events", {"events": None}),
    ("users", {"userId": "member-1", "attributes": ["tier"]}),
    ("events", {"userId": "member-1", "eventName": "Points Earned", "eventData": "x"}),
])
def test_wrong_shape_returns_400(standin: WebEngageStandin, resource: str, body: Any) -> None:
    response = post(standin, resource, body)

    assert response.status_code == 400
    assert response.json()["response"]["status"] == "error"


def test_transfer_encoding_chunked_returns_411(standin: WebEngageStandin) -> None:
    # A generator body makes requests send the body chunked.
    response = requests.post(
        f"{standin.base_url}/v1/accounts/{LICENSE}/users",
        data=(part for part in [b'{"userId": ', b'"member-1"}']),
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=TIMEOUT_SECONDS,
    )

    assert response.status_code == 411
    assert standin.accepted_users() == []


# --- rate limits ---------------------------------------------------------------------------


def test_rate_limit_headers_decrease(make_standin: StandinFactory) -> None:
    server = make_standin(single_limit=5)

    first = post(server, "users", USER)
    second = post(server, "users", USER)

    assert first.headers["X-RateLimit-Limit"] == "5"
    assert first.headers["X-RateLimit-Remaining"] == "4"
    assert second.headers["X-RateLimit-Remaining"] == "3"


def test_bulk_limit_in_headers(make_standin: StandinFactory) -> None:
    server = make_standin(bulk_limit=7)

    response = post(server, "bulk-users", {"users": [USER]})

    assert response.headers["X-RateLimit-Limit"] == "7"
    assert response.headers["X-RateLimit-Remaining"] == "6"


@pytest.mark.parametrize("send", [
    pytest.param(lambda server: post(server, "users", USER, api_key="wrong-key"), id="401"),
    pytest.param(lambda server: post(server, "users", {"firstName": "Asha"}), id="400 missing id"),
    pytest.param(lambda server: post(server, "profiles", USER), id="400 unknown resource"),
    pytest.param(
        lambda server: requests.get(
            f"{server.base_url}/v1/accounts/{LICENSE}/users", timeout=TIMEOUT_SECONDS
        ),
        id="405",
    ),
])
def test_error_responses_carry_rate_limit_headers(
    standin: WebEngageStandin, send: Callable[[WebEngageStandin], requests.Response]
) -> None:
    response = send(standin)

    assert "X-RateLimit-Limit" in response.headers
    assert "X-RateLimit-Remaining" in response.headers


def test_rejected_body_uses_quota(make_standin: StandinFactory) -> None:
    server = make_standin(single_limit=5)

    post(server, "users", {"firstName": "Asha"})
    response = post(server, "users", USER)

    assert response.headers["X-RateLimit-Remaining"] == "3"


def test_wrong_key_uses_no_quota(make_standin: StandinFactory) -> None:
    server = make_standin(single_limit=5)

    post(server, "users", USER, api_key="wrong-key")
    response = post(server, "users", USER)

    assert response.headers["X-RateLimit-Remaining"] == "4"


def test_past_limit_returns_429(make_standin: StandinFactory) -> None:
    server = make_standin(single_limit=2, window_seconds=30)
    post(server, "users", user(1))
    post(server, "users", user(2))

    response = post(server, "users", user(3))

    assert response.status_code == 429
    assert response.json()["response"]["status"] == "error"
    assert response.headers["X-RateLimit-Remaining"] == "0"
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    assert standin_user_ids(server) == ["member-1", "member-2"]


def standin_user_ids(server: WebEngageStandin) -> list[str]:
    return [accepted["userId"] for accepted in server.accepted_users()]


def test_accepted_again_after_window(make_standin: StandinFactory) -> None:
    server = make_standin(single_limit=1, window_seconds=1)
    post(server, "users", user(1))
    limited = post(server, "users", user(2))

    # The window is 1 s long, so 3 s is ample. A 429 does not count, so retrying does not extend the window.
    deadline = time.monotonic() + 3
    retried = post(server, "users", user(2))
    while retried.status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.1)
        retried = post(server, "users", user(2))

    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert retried.status_code == 201
    assert standin_user_ids(server) == ["member-1", "member-2"]


def test_bulk_endpoints_share_one_limit(make_standin: StandinFactory) -> None:
    server = make_standin(bulk_limit=1)

    first = post(server, "bulk-users", {"users": [user(1)]})
    second = post(server, "bulk-events", {"events": [event(1)]})

    assert first.status_code == 201
    assert second.status_code == 429


def test_bulk_and_single_limits_separate(make_standin: StandinFactory) -> None:
    server = make_standin(bulk_limit=1)
    post(server, "bulk-users", {"users": [user(1)]})

    bulk = post(server, "bulk-users", {"users": [user(2)]})
    single = post(server, "users", user(3))

    assert bulk.status_code == 429
    assert single.status_code == 201
    assert single.headers["X-RateLimit-Limit"] == "5000"


def test_users_and_events_limits_separate(make_standin: StandinFactory) -> None:
    server = make_standin(single_limit=1)
    post(server, "users", user(1))

    users = post(server, "users", user(2))
    events = post(server, "events", event(1))

    assert users.status_code == 429
    assert events.status_code == 201


def test_limits_counted_per_license_code(make_standin: StandinFactory) -> None:
    server = make_standin(single_limit=1)
    post(server, "users", user(1))

    same_account = post(server, "users", user(2))
    other_account = post(server, "users", user(3), license_code=OTHER_LICENSE, api_key=OTHER_API_KEY)

    assert same_account.status_code == 429
    assert other_account.status_code == 201


# --- x-request-id --------------------------------------------------------------------------


def test_repeated_request_id_stored_once(standin: WebEngageStandin) -> None:
    headers = {"x-request-id": "request-1"}

    first = post(standin, "events", EVENT, headers=headers)
    repeat = post(standin, "events", EVENT, headers=headers)

    assert first.status_code == 201
    assert repeat.status_code == 201
    assert repeat.json() == QUEUED_BODY
    assert standin.accepted_events() == [EVENT]


def test_different_request_ids_both_stored(standin: WebEngageStandin) -> None:
    post(standin, "users", user(1), headers={"x-request-id": "request-1"})
    post(standin, "users", user(2), headers={"x-request-id": "request-2"})

    assert standin_user_ids(standin) == ["member-1", "member-2"]


def test_requests_without_id_both_stored(standin: WebEngageStandin) -> None:
    post(standin, "users", user(1))
    post(standin, "users", user(1))

    assert standin_user_ids(standin) == ["member-1", "member-1"]


def test_rejected_request_id_not_remembered(standin: WebEngageStandin) -> None:
    headers = {"x-request-id": "request-1"}

    post(standin, "users", {"firstName": "Asha"}, headers=headers)
    post(standin, "users", user(1), headers=headers)

    assert standin_user_ids(standin) == ["member-1"]


def test_request_id_ignored_on_bulk(standin: WebEngageStandin) -> None:
    headers = {"x-request-id": "request-1"}

    post(standin, "bulk-users", {"users": [user(1)]}, headers=headers)
    post(standin, "bulk-users", {"users": [user(1)]}, headers=headers)

    assert standin_user_ids(standin) == ["member-1", "member-1"]


# --- violations ----------------------------------------------------------------------------

VIOLATION_CASES = [
    # (resource, body, expected kind, expected field)
    ("events", event(1, eventName="we_points"), "reserved_prefix", "eventName"),
    ("users", user(1, attributes={"we_tier": "gold"}), "reserved_prefix", "attributes.we_tier"),
    ("events", event(1, eventData={"we_source": "app"}), "reserved_prefix", "eventData.we_source"),
    ("events", event(1, eventName="E" * 50), "name_too_long", "eventName"),
    ("users", user(1, attributes={"a" * 50: 1}), "name_too_long", "attributes." + "a" * 50),
    ("events", event(1, eventData={"k" * 50: 1}), "name_too_long", "eventData." + "k" * 50),
    ("users", user(1, attributes={"bio": "x" * 1000}), "value_too_long", "attributes.bio"),
    ("users", user(1, company="x" * 1000), "value_too_long", "company"),
    (
        "events",
        event(1, eventData={"items": [{"name": "x" * 1000}]}),
        "value_too_long",
        "eventData.items[0].name",
    ),
    ("users", user(1, phone="9876543210"), "invalid_phone", "phone"),
    ("users", user(1, phone="+0987654321"), "invalid_phone", "phone"),
    ("users", user(1, phone="+91 98765 43210"), "invalid_phone", "phone"),
    ("users", user(1, phone="+12345"), "invalid_phone", "phone"),
    ("users", user(1, phone=919876543210), "invalid_phone", "phone"),
    ("events", event(1, eventTime="2024-05-01T10:00:00Z"), "invalid_datetime", "eventTime"),
    ("events", event(1, eventTime="2024-05-01T10:00:00+05:30"), "invalid_datetime", "eventTime"),
    ("events", event(1, eventTime="2024-05-01 10:00:00+0530"), "invalid_datetime", "eventTime"),
    ("events", event(1, eventTime=1714537800), "invalid_datetime", "eventTime"),
    ("users", user(1, birthDate="1990-01-01"), "invalid_datetime", "birthDate"),
    ("users", user(1, gender="Male"), "invalid_gender", "gender"),
    ("users", user(1, gender="f"), "invalid_gender", "gender"),
    ("users", user(1, emailOptIn="true"), "invalid_boolean", "emailOptIn"),
    ("users", user(1, smsOptIn=1), "invalid_boolean", "smsOptIn"),
    ("users", user(1, whatsappOptIn="yes"), "invalid_boolean", "whatsappOptIn"),
    ("users", {"userId": 123, "anonymousId": "anon-1"}, "invalid_user_id", "userId"),
    ("users", user(1, userId="u" * 101), "invalid_user_id", "userId"),
]


@pytest.mark.parametrize(("resource", "body", "kind", "field"), VIOLATION_CASES)
def test_violation_recorded(
    standin: WebEngageStandin, resource: str, body: dict[str, Any], kind: str, field: str
) -> None:
    response = post(standin, resource, body)

    assert response.status_code == 201
    assert [(found["kind"], found["field"]) for found in standin.violations()] == [(kind, field)]


def test_every_violation_kind_has_a_case() -> None:
    assert {case[2] for case in VIOLATION_CASES} | {"type_conflict"} == set(standin_module.VIOLATION_KINDS)


def test_violation_record_fields(standin: WebEngageStandin) -> None:
    post(standin, "bulk-users", {"users": [user(1), user(2, gender="Male")]})

    [violation] = standin.violations()

    assert violation["license_code"] == LICENSE
    assert violation["resource"] == "bulk-users"
    assert violation["index"] == 1
    assert violation["value"] == "Male"
    assert violation["detail"]


def test_user_attribute_type_conflict(standin: WebEngageStandin) -> None:
    post(standin, "users", user(1, attributes={"points": 10}))
    post(standin, "users", user(2, attributes={"points": "10"}))

    violations = standin.violations()

    assert [(found["kind"], found["field"], found["value"]) for found in violations] == [
        ("type_conflict", "attributes.points", "10")
    ]


def test_event_attribute_type_conflict(standin: WebEngageStandin) -> None:
    events = [event(1, eventData={"points": 10}), event(2, eventData={"points": [10]})]
    post(standin, "bulk-events", {"events": events})

    violations = standin.violations()

    assert [(found["kind"], found["index"], found["field"]) for found in violations] == [
        ("type_conflict", 1, "eventData.points")
    ]


def test_boolean_after_number_is_type_conflict(standin: WebEngageStandin) -> None:
    post(standin, "users", user(1, attributes={"active": 1}))
    post(standin, "users", user(2, attributes={"active": True}))

    assert [found["kind"] for found in standin.violations()] == ["type_conflict"]


def test_event_attribute_types_per_event_name(standin: WebEngageStandin) -> None:
    post(standin, "events", event(1, eventName="Points Earned", eventData={"amount": 10}))
    post(standin, "events", event(1, eventName="Reward Redeemed", eventData={"amount": "voucher"}))

    assert standin.violations() == []


def test_attribute_types_kept_per_account(standin: WebEngageStandin) -> None:
    post(standin, "users", user(1, attributes={"points": 10}))
    post(
        standin, "users", user(1, attributes={"points": "10"}),
        license_code=OTHER_LICENSE, api_key=OTHER_API_KEY,
    )

    assert standin.violations() == []


def test_user_and_event_attribute_types_separate(standin: WebEngageStandin) -> None:
    post(standin, "users", user(1, attributes={"points": 10}))
    post(standin, "events", event(1, eventData={"points": "ten"}))

    assert standin.violations() == []


def test_clean_payload_records_no_violations(standin: WebEngageStandin) -> None:
    clean_user = {
        "userId": "u" * 100,
        "firstName": "Asha",
        "birthDate": "1990-01-01T00:00:00+0530",
        "gender": "female",
        "email": "asha@example.com",
        "phone": "+919876543210",
        "emailOptIn": True,
        "smsOptIn": False,
        "whatsappOptIn": True,
        "attributes": {
            "n" * 49: "x" * 999,
            "points": 10,
            "balance": 10.5,
            "tags": ["gold"],
            "optional": None,
        },
    }
    clean_event = {
        "userId": "member-1",
        "eventName": "E" * 49,
        "eventTime": "2024-05-01T10:00:00-0800",
        "eventData": {"points": 40, "details": {"store": "x" * 999}, "we": "prefix needs the underscore"},
    }

    post(standin, "users", clean_user)
    post(standin, "users", {**clean_user, "attributes": {"points": 11.5, "optional": "now a string"}})
    post(standin, "bulk-events", {"events": [clean_event, clean_event]})

    assert standin.violations() == []


def test_rejected_call_records_no_violations(standin: WebEngageStandin) -> None:
    post(standin, "bulk-users", {"users": [user(1, gender="Male"), {"firstName": "Asha"}]})

    assert standin.violations() == []


def test_repeated_request_id_records_no_violations(standin: WebEngageStandin) -> None:
    headers = {"x-request-id": "request-1"}

    post(standin, "users", user(1, gender="Male"), headers=headers)
    post(standin, "users", user(1, gender="Male"), headers=headers)

    assert len(standin.violations()) == 1


# --- introspection -------------------------------------------------------------------------


def get_json(server: WebEngageStandin, path: str) -> Any:
    response = requests.get(f"{server.base_url}{path}", timeout=TIMEOUT_SECONDS)
    response.raise_for_status()
    return response.json()


def test_call_counts_by_resource_and_status(make_standin: StandinFactory) -> None:
    server = make_standin(bulk_limit=1)
    post(server, "bulk-events", {"events": [event(1)]})
    post(server, "bulk-events", {"events": [event(1)]})
    post(server, "users", USER, api_key="wrong-key")

    assert server.call_counts() == {"bulk-events 201": 1, "bulk-events 429": 1, "users 401": 1}


def test_introspection_accepted(standin: WebEngageStandin) -> None:
    post(standin, "users", user(1))
    post(standin, "events", event(2), license_code=OTHER_LICENSE, api_key=OTHER_API_KEY)

    everything = get_json(standin, "/_standin/accepted")
    first_account = get_json(standin, f"/_standin/accepted?license_code={LICENSE}")
    second_account = get_json(standin, "/_standin/accepted?license_code=%7E2024b707")

    assert everything == {"events": [event(2)], "users": [user(1)]}
    assert first_account == {"events": [], "users": [user(1)]}
    assert second_account == {"events": [event(2)], "users": []}


def test_introspection_violations(standin: WebEngageStandin) -> None:
    post(standin, "users", user(1, gender="Male"))

    assert get_json(standin, "/_standin/violations") == {"violations": standin.violations()}
    assert len(standin.violations()) == 1


def test_introspection_calls(standin: WebEngageStandin) -> None:
    post(standin, "users", USER)

    assert get_json(standin, "/_standin/calls") == {"calls": {"users 201": 1}}


def test_introspection_not_counted(standin: WebEngageStandin) -> None:
    get_json(standin, "/_standin/calls")

    assert standin.call_counts() == {}


def test_introspection_reset(make_standin: StandinFactory) -> None:
    server = make_standin(single_limit=1)
    post(server, "users", user(1, gender="Male"))
    post(server, "users", user(2))

    response = requests.post(f"{server.base_url}/_standin/reset", timeout=TIMEOUT_SECONDS)

    assert response.status_code == 200
    assert get_json(server, "/_standin/accepted") == {"events": [], "users": []}
    assert server.violations() == []
    assert server.call_counts() == {}
    assert post(server, "users", user(3)).status_code == 201


def test_reset_forgets_request_ids_and_types(standin: WebEngageStandin) -> None:
    post(standin, "users", user(1, attributes={"points": 10}), headers={"x-request-id": "request-1"})

    standin.reset()
    post(standin, "users", user(1, attributes={"points": "10"}), headers={"x-request-id": "request-1"})

    assert standin_user_ids(standin) == ["member-1"]
    assert standin.violations() == []


def test_introspection_wrong_method_returns_405(standin: WebEngageStandin) -> None:
    response = requests.get(f"{standin.base_url}/_standin/reset", timeout=TIMEOUT_SECONDS)

    assert response.status_code == 405


def test_introspection_unknown_path_returns_404(standin: WebEngageStandin) -> None:
    response = requests.get(f"{standin.base_url}/_standin/nothing", timeout=TIMEOUT_SECONDS)

    assert response.status_code == 404


# --- logging and lifecycle -----------------------------------------------------------------


def test_logs_non_2xx_without_key(standin: WebEngageStandin, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger=standin_module.__name__):
        post(standin, "users", USER)
        post(standin, "users", USER, api_key="wrong-key")

    info_messages = [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]
    assert any(f"license_code={LICENSE} resource=users status=401" in message for message in info_messages)
    assert API_KEY not in caplog.text
    assert "wrong-key" not in caplog.text


def test_config_rejects_non_positive_window() -> None:
    with pytest.raises(ValueError, match="window_seconds"):
        StandinConfig(accounts=dict(ACCOUNTS), window_seconds=0)


def test_base_url_before_start_raises() -> None:
    with pytest.raises(RuntimeError):
        WebEngageStandin(StandinConfig(accounts=dict(ACCOUNTS))).base_url


def test_context_manager_stops_server() -> None:
    with WebEngageStandin(StandinConfig(accounts=dict(ACCOUNTS))) as server:
        base_url = server.base_url
        assert post(server, "users", USER).status_code == 201

    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base_url}/_standin/calls", timeout=TIMEOUT_SECONDS)


# --- command line --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_cli(arguments: list[str], extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {name: value for name, value in os.environ.items() if name != standin_module.ACCOUNTS_ENV_VAR}
    env["PYTHONPATH"] = str(PLUGINS_DIR)
    env.update(extra_env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "loyalty_sync.webengage.standin", *arguments],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until_serving(base_url: str, process: subprocess.Popen[str], timeout_seconds: float = 15) -> None:
    """Poll the stand-in until it responds, or fail when the process exits or the time is up."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the stand-in exited with {process.returncode}: {process.stderr.read()}")
        try:
            requests.get(f"{base_url}/_standin/calls", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    pytest.fail(f"the stand-in did not answer at {base_url} within {timeout_seconds} s")


def stop_cli(process: subprocess.Popen[str], signal_number: int) -> tuple[int, str]:
    """Send the signal, wait at most 10 s, and return the exit status and stderr."""
    process.send_signal(signal_number)
    try:
        _, stderr = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate(timeout=10)
    return process.returncode, stderr


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_signal(signal_number: int) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    process = run_cli([
        "--host", "127.0.0.1", "--port", str(port), "--account", f"{LICENSE}={API_KEY}",
        "--single-limit", "3", "--window-seconds", "30",
    ])
    try:
        wait_until_serving(base_url, process)
        response = requests.post(
            f"{base_url}/v1/accounts/{LICENSE}/users",
            json=USER,
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=TIMEOUT_SECONDS,
        )
    finally:
        returncode, stderr = stop_cli(process, signal_number)

    assert response.status_code == 201
    assert response.headers["X-RateLimit-Limit"] == "3"
    assert returncode == 0
    assert f"listening on {base_url}" in stderr
    assert API_KEY not in stderr


def test_cli_reads_accounts_from_environment() -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    accounts = f"{LICENSE}={API_KEY},{OTHER_LICENSE}={OTHER_API_KEY}"
    process = run_cli(["--port", str(port)], extra_env={standin_module.ACCOUNTS_ENV_VAR: accounts})
    try:
        wait_until_serving(base_url, process)
        response = requests.post(
            f"{base_url}/v1/accounts/{OTHER_LICENSE}/users",
            json=USER,
            headers={"Authorization": f"Bearer {OTHER_API_KEY}"},
            timeout=TIMEOUT_SECONDS,
        )
    finally:
        returncode, _ = stop_cli(process, signal.SIGTERM)

    assert response.status_code == 201
    assert returncode == 0


def test_cli_rejects_non_loopback_host() -> None:
    process = run_cli(["--host", "0.0.0.0", "--port", "0", "--account", f"{LICENSE}={API_KEY}"])
    _, stderr = process.communicate(timeout=10)

    assert process.returncode == 2
    assert "--allow-non-loopback" in stderr


def test_cli_without_accounts_exits_2() -> None:
    process = run_cli(["--port", "0"])
    _, stderr = process.communicate(timeout=10)

    assert process.returncode == 2
    assert standin_module.ACCOUNTS_ENV_VAR in stderr


def test_cli_invalid_account_hides_value() -> None:
    process = run_cli(["--port", "0", "--account", "secret-key-without-license"])
    _, stderr = process.communicate(timeout=10)

    assert process.returncode == 2
    assert "LICENSE=KEY" in stderr
    assert "secret-key-without-license" not in stderr
