"""Local stand-in for WebEngage's REST API, faithful to its documented behaviour.

Tests and the local demo send to it what they would send to WebEngage. It serves
``POST /v1/accounts/{license_code}/{resource}`` for the resources ``users``, ``events``,
``bulk-users`` and ``bulk-events`` on a ``ThreadingHTTPServer``, using only the standard library.

It implements these documented behaviours:

- Bearer authentication. A wrong or missing API key returns 401, and a wrong license code
  returns 404 (https://docs.webengage.com/docs/rest-api-getting-started). The license code
  is checked first.
- ``users`` and ``events`` take one object. ``bulk-users`` takes ``{"users": [...]}`` and
  ``bulk-events`` takes ``{"events": [...]}``, with at most 25 items.
- Every item needs a non-empty string ``userId`` or ``anonymousId``, and every event a
  non-empty string ``eventName``. Other errors are 400 too: invalid JSON, a body of the wrong
  shape, an unknown resource. Every error body has the form
  ``{"response": {"message": "...", "status": "error"}}``.
- Success is ``{"response": {"status": "queued"}}``.
- Every response to a known license code carries ``X-RateLimit-Limit`` and
  ``X-RateLimit-Remaining``. Limits count per license code and endpoint class. The two bulk
  endpoints share one class, and ``users`` and ``events`` each have their own. A request over
  the limit returns 429 and stores nothing.
- On ``users`` and ``events``, a repeated ``x-request-id`` within 4 hours returns success
  but is not stored again.

WebEngage also returns "queued" for data that it later drops. The stand-in stores such data
but records each problem as a violation (the kinds are listed in ``VIOLATION_KINDS``), so a
test can assert that a client produced none.

Assumptions, because WebEngage does not document them:

- Success is HTTP 201.
- A bulk body with more than 25 items returns 400.
- A 429 carries ``Retry-After``, in whole seconds until the window resets, rounded up.
- The body of the 404 for an unknown license code has the usual error form.
- The default limits (500 requests per minute for both bulk endpoints together, 5000 per
  minute for each single endpoint) are the figures this project plans with. WebEngage can
  set other limits per account.

Choices of this stand-in, where WebEngage's behaviour is unknown:

- Rate limits use fixed windows that start at the first counted request. A request counts
  once the license code, the API key, the resource and the method are valid, so a 400 for a
  bad body uses up quota but 401, 404, 405 and 429 responses do not.
- An empty bulk list returns 400.
- ``x-request-id`` values are remembered per license code, across ``users`` and ``events``.
- A field that is present is checked even when it is null, so ``"phone": null`` is an invalid
  phone. Null custom attribute values have no type, so they are not type-checked.

Faults can be injected on request, to test a client against a bad day (``FaultConfig``): a
share of calls that get a 5xx response, bursts of 429, added latency, connections reset before the call
is accepted, and a 400 for every call that carries a given item. Injected 5xx, 429 and resets
happen before anything is stored or counted against the rate limit, so a client that retries
them must end up with every item stored once. Set them with ``set_faults``, with
``PUT /_standin/faults`` or with the command line options.

Paths under ``/_standin/`` are not part of WebEngage's API. Without authentication, they
return the accepted data, the violations and the call counts, reset them, and read or set
the injected faults. Run ``python -m loyalty_sync.webengage.standin --help`` for the command
line.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hmac
import ipaddress
import json
import logging
import math
import os
import random
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger(__name__)

SINGLE_RESOURCES = ("users", "events")
BULK_RESOURCES = ("bulk-users", "bulk-events")
RESOURCES = SINGLE_RESOURCES + BULK_RESOURCES

# Resource -> endpoint class that its rate limit is counted in.
ENDPOINT_CLASSES: dict[str, str] = {
    "users": "users",
    "events": "events",
    "bulk-users": "bulk",
    "bulk-events": "bulk",
}

# Resource -> the kind of item it carries, which is also the key of the list in a bulk body.
ITEM_KINDS: dict[str, str] = {
    "users": "users",
    "bulk-users": "users",
    "events": "events",
    "bulk-events": "events",
}

REQUEST_ID_TTL_SECONDS = 4 * 60 * 60
ACCOUNTS_ENV_VAR = "WEBENGAGE_STANDIN_ACCOUNTS"

VIOLATION_KINDS = (
    "reserved_prefix",  # event name or attribute key starts with "we_"
    "name_too_long",  # event name or attribute key of MAX_NAME_LENGTH characters or more
    "value_too_long",  # string value of MAX_STRING_LENGTH characters or more, at any depth
    "invalid_phone",  # phone is not E.164
    "invalid_datetime",  # eventTime or birthDate is not yyyy-MM-ddTHH:mm:ss±hhmm
    "invalid_gender",  # gender is not male, female or other
    "type_conflict",  # attribute type differs from the first type seen for it in the account
    "invalid_boolean",  # emailOptIn, smsOptIn or whatsappOptIn is not a JSON boolean
    "invalid_user_id",  # userId is not a string or is longer than MAX_USER_ID_LENGTH
)

RESERVED_PREFIX = "we_"
MAX_NAME_LENGTH = 50
MAX_STRING_LENGTH = 1000
MAX_USER_ID_LENGTH = 100
E164_PATTERN = re.compile(r"\+[1-9]\d{6,14}", re.ASCII)
DATETIME_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}", re.ASCII)
GENDERS = ("male", "female", "other")
OPT_IN_FIELDS = ("emailOptIn", "smsOptIn", "whatsappOptIn")


@dataclass
class StandinConfig:
    """Accounts and limits of a stand-in server."""

    accounts: dict[str, str]  # license code -> API key
    bulk_limit: int = 500  # requests per window, shared by bulk-users and bulk-events
    single_limit: int = 5000  # requests per window, for users and for events separately
    window_seconds: float = 60.0
    max_bulk_items: int = 25

    def __post_init__(self) -> None:
        for name in ("bulk_limit", "single_limit", "max_bulk_items"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.window_seconds <= 0:
            raise ValueError(f"window_seconds must be positive, got {self.window_seconds}")


@dataclass(frozen=True)
class FaultConfig:
    """Faults the stand-in injects into calls to ``/v1/accounts/...``; the default injects none.

    ``error_rate`` and ``reset_rate`` are shares of calls (0 to 1), drawn from a random generator
    seeded with ``seed`` so a run can be repeated. Every ``throttle_every``-th call starts a burst of
    ``throttle_burst`` calls that get a 429 response with ``Retry-After: retry_after_seconds``. ``latency_seconds``
    delays every response. A call carrying an item that matches one of ``reject_items`` gets a 400
    naming the item. A pattern matches an item when each of its keys (a dotted path such as
    ``eventData.points``) has the pattern's value in the item.
    """

    error_rate: float = 0.0
    error_status: int = 503
    reset_rate: float = 0.0
    throttle_every: int = 0
    throttle_burst: int = 0
    retry_after_seconds: int = 1
    latency_seconds: float = 0.0
    reject_items: tuple[dict[str, Any], ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "reset_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        if not 500 <= self.error_status <= 599:
            raise ValueError(f"error_status must be a 5xx status, got {self.error_status}")
        for name in ("throttle_every", "throttle_burst", "retry_after_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.throttle_burst > 0 and self.throttle_every <= self.throttle_burst:
            raise ValueError(
                f"throttle_every ({self.throttle_every}) must be larger than throttle_burst ({self.throttle_burst}), "
                "or no call would ever get through"
            )
        if self.latency_seconds < 0:
            raise ValueError(f"latency_seconds must not be negative, got {self.latency_seconds}")
        if not all(isinstance(pattern, dict) and pattern for pattern in self.reject_items):
            raise ValueError("reject_items must be non-empty JSON objects")

    @classmethod
    def from_json(cls, document: Any) -> FaultConfig:
        """Build a config from a decoded JSON object with the field names as keys.

        Raises:
            ValueError: for an unknown key or an invalid value.
        """
        if not isinstance(document, dict):
            raise ValueError("fault config must be a JSON object")
        known = {config_field.name for config_field in dataclasses.fields(cls)}
        unknown = sorted(set(document) - known)
        if unknown:
            raise ValueError(f"unknown fault settings {unknown}; valid: {sorted(known)}")
        values = dict(document)
        if "reject_items" in values:
            if not isinstance(values["reject_items"], list):
                raise ValueError("reject_items must be a list of JSON objects")
            values["reject_items"] = tuple(values["reject_items"])
        try:
            return cls(**values)
        except TypeError as error:
            raise ValueError(f"invalid fault config: {error}") from error

    def as_json(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["reject_items"] = list(self.reject_items)
        return values


def _matches(item: Any, pattern: Mapping[str, Any]) -> bool:
    for path, expected in pattern.items():
        value: Any = item
        for key in path.split("."):
            if not isinstance(value, dict) or key not in value:
                return False
            value = value[key]
        if value != expected or type(value) is not type(expected):
            return False
    return True


@dataclass(frozen=True)
class _Response:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


# Returned instead of a response when an injected fault resets the connection.
_RESET = _Response(0, {})


@dataclass(frozen=True)
class _ApiRequest:
    method: str
    license_code: str
    resource: str
    authorization: str | None
    request_id: str | None
    body: bytes


@dataclass
class _RateWindow:
    started_at: float
    count: int = 0


@dataclass(frozen=True)
class _Finding:
    """One violation in one item, before the server adds where the item came from."""

    kind: str
    field: str
    value: Any
    detail: str


class _BadRequest(Exception):
    """A request body that WebEngage rejects with 400. The message is the response message."""


# ---------------------------------------------------------------------------------------------
# Response bodies


def _error_response(status: int, message: str, headers: Mapping[str, str] | None = None) -> _Response:
    body = {"response": {"message": message, "status": "error"}}
    return _Response(status, body, dict(headers or {}))


def _queued_response(headers: Mapping[str, str]) -> _Response:
    return _Response(201, {"response": {"status": "queued"}}, dict(headers))


def _rate_limit_headers(limit: int, remaining: int) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(max(remaining, 0))}


# ---------------------------------------------------------------------------------------------
# Request validation (400 responses)


def _is_non_empty_string(value: Any) -> bool:
    return isinstance(value, str) and value != ""


# The JSON type name of each type json.loads returns. The checks below run for every value of every
# item, and a dictionary lookup on the exact type costs a quarter of a chain of isinstance checks.
_JSON_TYPE_NAMES: dict[type, str | None] = {
    type(None): None, bool: "boolean", int: "number", float: "number", str: "string", dict: "object",
    list: "array",
}


def _json_type(value: Any) -> str | None:
    """Return the JSON type name of a value decoded by json.loads, or None for null."""
    return _JSON_TYPE_NAMES[type(value)]


def _reject_json_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, although Python's json module accepts them by default.
    raise ValueError(f"{name} is not valid JSON")


def _decode_json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_json_constant)
    except UnicodeDecodeError as error:
        raise _BadRequest(f"Error: request body is not UTF-8: {error}.") from error
    except ValueError as error:
        raise _BadRequest(f"Error: request body is not valid JSON: {error}.") from error


def _bulk_items(document: Any, list_key: str, max_items: int) -> list[Any]:
    items = document.get(list_key) if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise _BadRequest(f'Error: request body must be a JSON object with a "{list_key}" array.')
    if not items:
        raise _BadRequest(f'Error: "{list_key}" must contain at least one item.')
    if len(items) > max_items:
        raise _BadRequest(
            f"Error: {len(items)} {list_key} in one request, the maximum is {max_items}."
        )
    return items


def _validate_item(item: Any, item_kind: str, position: str) -> None:
    """Raise _BadRequest if WebEngage rejects the item. ``position`` ends each message."""
    if not isinstance(item, dict):
        raise _BadRequest(f"Error: each of the {item_kind} must be a JSON object{position}.")
    if not (_is_non_empty_string(item.get("userId")) or _is_non_empty_string(item.get("anonymousId"))):
        raise _BadRequest(f"Error: userId and anonymousId cannot be empty{position}.")
    if item_kind == "events" and not _is_non_empty_string(item.get("eventName")):
        raise _BadRequest(f"Error: eventName cannot be empty{position}.")

    attributes_key = "attributes" if item_kind == "users" else "eventData"
    attributes = item.get(attributes_key)
    if attributes is not None and not isinstance(attributes, dict):
        raise _BadRequest(f"Error: {attributes_key} must be a JSON object{position}.")


def _parse_items(resource: str, body: bytes, max_items: int) -> list[dict[str, Any]]:
    """Decode and validate a request body and return its items, one for a single endpoint."""
    document = _decode_json(body)
    item_kind = ITEM_KINDS[resource]

    if resource in SINGLE_RESOURCES:
        if not isinstance(document, dict):
            raise _BadRequest("Error: request body must be a JSON object.")
        _validate_item(document, item_kind, "")
        return [document]

    items = _bulk_items(document, item_kind, max_items)
    for index, item in enumerate(items):
        _validate_item(item, item_kind, f" (item {index} of {item_kind})")
    return items


# ---------------------------------------------------------------------------------------------
# Violations: data that WebEngage accepts and then drops or mangles


def _check_name(name: str, field_name: str) -> list[_Finding]:
    findings = []
    if name.startswith(RESERVED_PREFIX):
        detail = f"names starting with {RESERVED_PREFIX!r} are reserved for WebEngage"
        findings.append(_Finding("reserved_prefix", field_name, name, detail))
    if len(name) >= MAX_NAME_LENGTH:
        detail = f"{len(name)} characters, names must be shorter than {MAX_NAME_LENGTH}"
        findings.append(_Finding("name_too_long", field_name, name, detail))
    return findings


def _check_long_strings(value: Any, path: str) -> list[_Finding]:
    """Find string values of MAX_STRING_LENGTH characters or more, in nested values too."""
    if isinstance(value, str):
        if len(value) < MAX_STRING_LENGTH:
            return []
        detail = f"{len(value)} characters, strings must be shorter than {MAX_STRING_LENGTH}"
        return [_Finding("value_too_long", path, value, detail)]
    if isinstance(value, dict):
        children: Any = value.items()
    elif isinstance(value, list):
        children = enumerate(value)
    else:
        return []
    findings = []
    for key, child in children:
        # Most values are short strings or numbers: skip them before building the child's path.
        # Exact types: json.loads returns no subclasses.
        child_type = type(child)
        if child_type is str:
            if len(child) < MAX_STRING_LENGTH:
                continue
        elif child_type is not dict and child_type is not list:
            continue
        if isinstance(key, int):
            child_path = f"{path}[{key}]"
        else:
            child_path = f"{path}.{key}" if path else key
        findings.extend(_check_long_strings(child, child_path))
    return findings


def _check_pattern(
    item: dict[str, Any], field_name: str, pattern: re.Pattern[str], kind: str
) -> list[_Finding]:
    if field_name not in item:
        return []
    value = item[field_name]
    if isinstance(value, str) and pattern.fullmatch(value):
        return []
    return [_Finding(kind, field_name, value, f"does not match {pattern.pattern}")]


def _check_user_id(item: dict[str, Any]) -> list[_Finding]:
    if "userId" not in item:
        return []
    user_id = item["userId"]
    if not isinstance(user_id, str):
        return [_Finding("invalid_user_id", "userId", user_id, "userId must be a string")]
    if len(user_id) > MAX_USER_ID_LENGTH:
        detail = f"{len(user_id)} characters, the maximum is {MAX_USER_ID_LENGTH}"
        return [_Finding("invalid_user_id", "userId", user_id, detail)]
    return []


def _check_attributes(
    attributes: dict[str, Any],
    container: str,
    type_key_prefix: tuple[str, ...],
    first_types: dict[tuple[str, ...], dict[str, str]],
) -> list[_Finding]:
    """Check custom attribute names and types, recording the first type of each attribute.

    ``first_types`` maps ``type_key_prefix`` to the first JSON type seen for each attribute name in
    this account. Null values have no type and are neither checked nor recorded.
    """
    findings = []
    seen_types = first_types.setdefault(type_key_prefix, {})
    for name, value in attributes.items():
        # The field name is built only for a finding, because most attributes have none.
        if name.startswith(RESERVED_PREFIX) or len(name) >= MAX_NAME_LENGTH:
            findings.extend(_check_name(name, f"{container}.{name}"))

        value_type = _json_type(value)
        if value_type is None:
            continue
        first_type = seen_types.setdefault(name, value_type)
        if value_type != first_type:
            detail = f"{value_type}, but the first value seen was a {first_type}"
            findings.append(_Finding("type_conflict", f"{container}.{name}", value, detail))
    return findings


def _check_user(user: dict[str, Any], first_types: dict[tuple[str, ...], dict[str, str]]) -> list[_Finding]:
    """Find the violations in one accepted user."""
    findings = _check_user_id(user)
    findings += _check_pattern(user, "phone", E164_PATTERN, "invalid_phone")
    findings += _check_pattern(user, "birthDate", DATETIME_PATTERN, "invalid_datetime")
    if "gender" in user and user["gender"] not in GENDERS:
        detail = f"gender must be one of {', '.join(GENDERS)}"
        findings.append(_Finding("invalid_gender", "gender", user["gender"], detail))
    for name in OPT_IN_FIELDS:
        if name in user and not isinstance(user[name], bool):
            findings.append(_Finding("invalid_boolean", name, user[name], f"{name} must be true or false"))
    findings += _check_attributes(user.get("attributes") or {}, "attributes", ("user",), first_types)
    findings += _check_long_strings(user, "")
    return findings


def _check_event(event: dict[str, Any], first_types: dict[tuple[str, ...], dict[str, str]]) -> list[_Finding]:
    """Find the violations in one accepted event. Event attributes are typed per event name."""
    event_name = event["eventName"]
    findings = _check_user_id(event)
    findings += _check_name(event_name, "eventName")
    findings += _check_pattern(event, "eventTime", DATETIME_PATTERN, "invalid_datetime")
    type_key_prefix = ("event", event_name)
    findings += _check_attributes(event.get("eventData") or {}, "eventData", type_key_prefix, first_types)
    findings += _check_long_strings(event, "")
    return findings


# ---------------------------------------------------------------------------------------------
# The server


class WebEngageStandin:
    """HTTP server that imitates WebEngage's data endpoints and records what it accepts.

    All state sits behind one lock, so request threads and test code can read and write it
    at the same time. Use it as a context manager, or call ``start`` and ``stop``.
    """

    def __init__(
        self, config: StandinConfig, host: str = "127.0.0.1", port: int = 0, faults: FaultConfig | None = None
    ) -> None:
        self._config = config
        self._host = host
        self._port = port
        self._server: _StandinHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._clear_state()
        self.set_faults(faults or FaultConfig())

    def _clear_state(self) -> None:
        self._accepted: dict[str, list[tuple[str, dict[str, Any]]]] = {"users": [], "events": []}
        self._violations: list[dict[str, Any]] = []
        self._call_counts: Counter[str] = Counter()
        self._rate_windows: dict[tuple[str, str], _RateWindow] = {}
        # (license code, x-request-id) -> monotonic time of the stored request.
        self._request_ids: dict[tuple[str, str], float] = {}
        # license code -> attribute key -> first JSON type, see _check_attributes.
        self._first_types: dict[str, dict[tuple[str, ...], dict[str, str]]] = {}

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> WebEngageStandin:
        """Bind the socket and serve in a daemon thread. Raises OSError if binding fails."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self._server = _StandinHTTPServer((self._host, self._port), self)
        # A short poll interval keeps stop() fast, because shutdown() waits for the next poll.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="webengage-standin",
            daemon=True,
        )
        self._thread.start()
        logger.debug("WebEngage stand-in serving on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving and close the socket. Does nothing if the server is not running."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> WebEngageStandin:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """URL of the running server, such as ``http://127.0.0.1:8765``."""
        if self._server is None:
            raise RuntimeError("the stand-in is not running, call start() first")
        host, port = self._server.server_address[:2]
        if ":" in str(host):
            return f"http://[{host}]:{port}"
        return f"http://{host}:{port}"

    # --- introspection ---------------------------------------------------------------------

    def accepted_events(self, license_code: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the stored events in arrival order, optionally of one account."""
        return self._accepted_items("events", license_code)

    def accepted_users(self, license_code: str | None = None) -> list[dict[str, Any]]:
        """Return copies of the stored users in arrival order, optionally of one account."""
        return self._accepted_items("users", license_code)

    def _accepted_items(self, item_kind: str, license_code: str | None) -> list[dict[str, Any]]:
        with self._lock:
            return self._copy_accepted(item_kind, license_code)

    def _copy_accepted(self, item_kind: str, license_code: str | None) -> list[dict[str, Any]]:
        """Return copies of stored items. The caller holds the lock."""
        return [
            copy.deepcopy(item)
            for item_license_code, item in self._accepted[item_kind]
            if license_code is None or item_license_code == license_code
        ]

    def violations(self) -> list[dict[str, Any]]:
        """Return the recorded violations in arrival order.

        Each one has the keys license_code, resource, index (of the item in the request body,
        0 for a single endpoint), kind (one of VIOLATION_KINDS), field, value and detail.
        """
        with self._lock:
            return copy.deepcopy(self._violations)

    def call_counts(self) -> dict[str, int]:
        """Return the number of API responses per ``"<resource> <status>"``, such as ``"users 429"``.

        Requests to paths outside ``/v1/accounts/{license_code}/{resource}`` count as
        ``"unknown-path 404"``. Requests to ``/_standin/`` are not counted.
        """
        with self._lock:
            return dict(self._call_counts)

    def reset(self) -> None:
        """Forget accepted data, violations, call counts, rate windows, request ids and types.

        The injected faults stay; ``set_faults(FaultConfig())`` removes them.
        """
        with self._lock:
            self._clear_state()
            self._fault_calls = 0

    def set_faults(self, faults: FaultConfig) -> None:
        """Inject ``faults`` from the next call on, restarting their random draws and burst count."""
        with self._lock:
            self._faults = faults
            self._fault_random = random.Random(faults.seed)
            self._fault_calls = 0

    def faults(self) -> FaultConfig:
        """Return the faults being injected."""
        with self._lock:
            return self._faults

    # --- request handling ------------------------------------------------------------------

    def _handle_api_request(self, request: _ApiRequest) -> _Response:
        """Process one call to ``/v1/accounts/{license_code}/{resource}`` and count its status.

        Returns ``_RESET`` when an injected fault resets the connection; the call then counts as
        ``"<resource> reset"``.
        """
        with self._lock:
            latency = self._faults.latency_seconds
        if latency:
            time.sleep(latency)
        with self._lock:
            response = self._injected_fault() or self._respond(request)
            status = "reset" if response is _RESET else str(response.status)
            self._call_counts[f"{request.resource} {status}"] += 1
        return response

    def _injected_fault(self) -> _Response | None:
        """Draw the faults for one call: a 429 burst, a reset or a 5xx. The caller holds the lock."""
        faults = self._faults
        self._fault_calls += 1
        if faults.throttle_burst and (self._fault_calls - 1) % faults.throttle_every < faults.throttle_burst:
            retry_after = faults.retry_after_seconds
            message = f"Error: rate limit exceeded (injected fault), retry after {retry_after} seconds."
            return _error_response(429, message, {"Retry-After": str(retry_after)})
        # Both draws happen for every call, so one share does not change the other's sequence.
        reset_draw = self._fault_random.random()
        error_draw = self._fault_random.random()
        if reset_draw < faults.reset_rate:
            return _RESET
        if error_draw < faults.error_rate:
            return _error_response(faults.error_status, "Error: internal server error (injected fault).")
        return None

    def _rejected_item(self, items: list[dict[str, Any]], resource: str) -> _Response | None:
        """Return a 400 for the first item matching a ``reject_items`` pattern. The caller holds the lock."""
        for index, item in enumerate(items):
            for pattern in self._faults.reject_items:
                if _matches(item, pattern):
                    message = (f"Error: item {index} of {ITEM_KINDS[resource]} was rejected "
                               f"(injected fault, matches {json.dumps(pattern, sort_keys=True)}).")
                    return _error_response(400, message, {})
        return None

    def _count_unknown_path(self) -> None:
        with self._lock:
            self._call_counts["unknown-path 404"] += 1

    def _respond(self, request: _ApiRequest) -> _Response:
        api_key = self._config.accounts.get(request.license_code)
        if api_key is None:
            return _error_response(404, f"Error: license code {request.license_code!r} not found.")

        endpoint_class = ENDPOINT_CLASSES.get(request.resource)
        headers = self._current_limit_headers(request.license_code, endpoint_class)
        if not _is_authorized(request.authorization, api_key):
            return _error_response(401, "Error: invalid or missing API key.", headers)
        if endpoint_class is None:
            message = f"Error: unknown resource {request.resource!r}, expected one of {', '.join(RESOURCES)}."
            return _error_response(400, message, headers)
        if request.method != "POST":
            message = f"Error: method {request.method} not allowed, use POST."
            return _error_response(405, message, {**headers, "Allow": "POST"})

        rejection = self._count_request(request.license_code, endpoint_class)
        if rejection is not None:
            return rejection
        headers = self._current_limit_headers(request.license_code, endpoint_class)

        try:
            items = _parse_items(request.resource, request.body, self._config.max_bulk_items)
        except _BadRequest as error:
            return _error_response(400, str(error), headers)
        rejection = self._rejected_item(items, request.resource)
        if rejection is not None:
            return _Response(rejection.status, rejection.body, headers)

        if not self._is_repeated_request_id(request):
            self._store(request.license_code, request.resource, items)
        return _queued_response(headers)

    # --- rate limits -----------------------------------------------------------------------

    def _limit_for(self, endpoint_class: str | None) -> int:
        return self._config.bulk_limit if endpoint_class == "bulk" else self._config.single_limit

    def _live_window(self, license_code: str, endpoint_class: str, now: float) -> _RateWindow | None:
        window = self._rate_windows.get((license_code, endpoint_class))
        if window is None or now - window.started_at >= self._config.window_seconds:
            return None
        return window

    def _current_limit_headers(self, license_code: str, endpoint_class: str | None) -> dict[str, str]:
        """Return the rate-limit headers without counting a request.

        NOTE: a resource outside the four has no endpoint class. Its responses report the
        single-endpoint limit with nothing used, because WebEngage's headers for it are unknown.
        """
        limit = self._limit_for(endpoint_class)
        if endpoint_class is None:
            return _rate_limit_headers(limit, limit)
        window = self._live_window(license_code, endpoint_class, time.monotonic())
        used = window.count if window is not None else 0
        return _rate_limit_headers(limit, limit - used)

    def _count_request(self, license_code: str, endpoint_class: str) -> _Response | None:
        """Count one request in its window, or return the 429 response if the window is full."""
        now = time.monotonic()
        limit = self._limit_for(endpoint_class)
        window = self._live_window(license_code, endpoint_class, now)
        if window is None:
            window = _RateWindow(started_at=now)
            self._rate_windows[(license_code, endpoint_class)] = window

        if window.count < limit:
            window.count += 1
            return None

        seconds_left = window.started_at + self._config.window_seconds - now
        retry_after = max(1, math.ceil(seconds_left))
        headers = {**_rate_limit_headers(limit, 0), "Retry-After": str(retry_after)}
        message = f"Error: rate limit of {limit} requests exceeded, retry after {retry_after} seconds."
        return _error_response(429, message, headers)

    # --- storage ---------------------------------------------------------------------------

    def _is_repeated_request_id(self, request: _ApiRequest) -> bool:
        """Return True for a repeat, otherwise remember the id of a single-endpoint request."""
        if request.resource not in SINGLE_RESOURCES or not request.request_id:
            return False
        now = time.monotonic()
        key = (request.license_code, request.request_id)
        stored_at = self._request_ids.get(key)
        if stored_at is not None and now - stored_at < REQUEST_ID_TTL_SECONDS:
            return True
        self._request_ids[key] = now
        return False

    def _store(self, license_code: str, resource: str, items: list[dict[str, Any]]) -> None:
        item_kind = ITEM_KINDS[resource]
        check = _check_user if item_kind == "users" else _check_event
        first_types = self._first_types.setdefault(license_code, {})
        for index, item in enumerate(items):
            for finding in check(item, first_types):
                self._violations.append(
                    {
                        "license_code": license_code,
                        "resource": resource,
                        "index": index,
                        "kind": finding.kind,
                        "field": finding.field,
                        "value": finding.value,
                        "detail": finding.detail,
                    }
                )
            self._accepted[item_kind].append((license_code, item))

    # --- /_standin/ endpoints --------------------------------------------------------------

    def _handle_introspection_request(self, method: str, path: str, query: str, body: bytes = b"") -> _Response:
        """Serve ``GET /_standin/accepted|violations|calls``, ``POST /_standin/reset`` and
        ``GET`` or ``PUT /_standin/faults``."""
        routes = {
            "/_standin/accepted": ("GET",),
            "/_standin/violations": ("GET",),
            "/_standin/calls": ("GET",),
            "/_standin/reset": ("POST",),
            "/_standin/faults": ("GET", "PUT"),
        }
        allowed = routes.get(path)
        if allowed is None:
            return _error_response(404, f"Error: no stand-in endpoint {path}.")
        if method not in allowed:
            message = f"Error: method {method} not allowed, use {' or '.join(allowed)}."
            return _error_response(405, message, {"Allow": ", ".join(allowed)})

        if path == "/_standin/faults":
            if method == "PUT":
                try:
                    self.set_faults(FaultConfig.from_json(_decode_json(body)))
                except (_BadRequest, ValueError) as error:
                    return _error_response(400, f"Error: {error}")
            return _Response(200, {"faults": self.faults().as_json()})

        if path == "/_standin/accepted":
            license_code = parse_qs(query).get("license_code", [None])[0]
            with self._lock:
                body = {
                    "events": self._copy_accepted("events", license_code),
                    "users": self._copy_accepted("users", license_code),
                }
        elif path == "/_standin/violations":
            body = {"violations": self.violations()}
        elif path == "/_standin/calls":
            body = {"calls": self.call_counts()}
        else:
            self.reset()
            body = {"status": "reset"}
        return _Response(200, body)


def _is_authorized(authorization: str | None, api_key: str) -> bool:
    if authorization is None:
        return False
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token.strip().encode("utf-8"), api_key.encode("utf-8"))


# ---------------------------------------------------------------------------------------------
# HTTP plumbing


class _StandinHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], standin: WebEngageStandin) -> None:
        self.standin = standin
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind also resolves the host name with socket.getfqdn, which can
        # wait for DNS. Nothing here uses that name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = port


def _split_api_path(path: str) -> tuple[str, str] | None:
    """Return (license code, resource) from ``/v1/accounts/{license_code}/{resource}``.

    Each segment is percent-decoded on its own, so ``%7E`` in a license code becomes ``~``.
    """
    segments = path.split("/")
    if len(segments) != 5 or segments[:3] != ["", "v1", "accounts"]:
        return None
    license_code, resource = unquote(segments[3]), unquote(segments[4])
    if not license_code or not resource:
        return None
    return license_code, resource


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A response goes out in one write when the request is done (handle_one_request flushes), not
    # one for the headers and one for the body.
    wbufsize = 64 * 1024
    # A body larger than the buffer (the introspection endpoints' lists) still takes a second write.
    # With Nagle's algorithm on, that write would wait for the client's delayed ACK (about 40 ms on
    # Linux).
    disable_nagle_algorithm = True
    server: _StandinHTTPServer

    def do_POST(self) -> None:
        self._dispatch()

    do_GET = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_POST

    def do_HEAD(self) -> None:
        self._dispatch(send_body=False)

    def _dispatch(self, send_body: bool = True) -> None:
        body = self._read_body()
        if body is None:
            return

        standin = self.server.standin
        url = urlsplit(self.path)
        api_path = _split_api_path(url.path)
        if url.path.startswith("/_standin/"):
            response = standin._handle_introspection_request(self.command, url.path, url.query, body)
            self._send(response, send_body, "-", "-")
        elif api_path is not None:
            license_code, resource = api_path
            request = _ApiRequest(
                method=self.command,
                license_code=license_code,
                resource=resource,
                authorization=self.headers.get("Authorization"),
                request_id=self.headers.get("x-request-id"),
                body=body,
            )
            response = standin._handle_api_request(request)
            if response is _RESET:
                self._reset_connection()
            else:
                self._send(response, send_body, license_code, resource)
        else:
            standin._count_unknown_path()
            response = _error_response(404, f"Error: no endpoint {url.path}.")
            self._send(response, send_body, "-", "-")

    def _read_body(self) -> bytes | None:
        """Read the request body, which a missing Content-Length makes empty.

        A chunked body gets a 411 response and an invalid Content-Length a 400, and both return None.
        """
        if "Transfer-Encoding" in self.headers:
            self.close_connection = True
            self._send(_error_response(411, "Error: Content-Length is required."), True, "-", "-")
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if length < 0:
                raise ValueError(length)
        except ValueError:
            self.close_connection = True
            self._send(_error_response(400, "Error: invalid Content-Length."), True, "-", "-")
            return None
        return self.rfile.read(length)

    def _reset_connection(self) -> None:
        """Close the connection with a TCP reset and no response, as a crashed server would."""
        logger.info("%s %s -> connection reset (injected fault)", self.command, self.path)
        self.close_connection = True
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _send(self, response: _Response, send_body: bool, license_code: str, resource: str) -> None:
        # Logged before the response goes out, so a client that has the response also has the log.
        logger.debug("%s %s -> %d", self.command, self.path, response.status)
        if response.status >= 300:
            message = response.body.get("response", {}).get("message", "")
            logger.info(
                "license_code=%s resource=%s status=%d: %s", license_code, resource, response.status, message
            )

        payload = json.dumps(response.body).encode("utf-8")
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if send_body:
            self.wfile.write(payload)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Do nothing, because ``_send`` logs each request with more context."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - name set by the base class
        logger.debug("%s - %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - name set by the base class
        logger.info("%s - %s", self.address_string(), format % args)


# ---------------------------------------------------------------------------------------------
# Command line


def _parse_account(text: str) -> tuple[str, str]:
    """Split ``LICENSE=KEY`` at the first ``=``.

    The error message leaves out the text, because it contains an API key.
    """
    license_code, separator, api_key = text.strip().partition("=")
    if not separator or not license_code or not api_key:
        raise ValueError("expected LICENSE=KEY with a non-empty license code and API key")
    return license_code, api_key


def _read_accounts(account_args: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """Return the accounts from ``--account`` or, if none is given, from the environment."""
    if account_args:
        sources = [(f"--account value {number}", text) for number, text in enumerate(account_args, 1)]
    else:
        entries = [entry for entry in environ.get(ACCOUNTS_ENV_VAR, "").split(",") if entry.strip()]
        sources = [(f"{ACCOUNTS_ENV_VAR} entry {number}", text) for number, text in enumerate(entries, 1)]
    if not sources:
        raise ValueError(f"no accounts given. Pass --account LICENSE=KEY or set {ACCOUNTS_ENV_VAR}.")

    accounts: dict[str, str] = {}
    for source, text in sources:
        try:
            license_code, api_key = _parse_account(text)
        except ValueError as error:
            raise ValueError(f"{source} is invalid: {error}") from None
        if license_code in accounts:
            message = f"license code {license_code!r} is given more than once. Give each account once."
            raise ValueError(message)
        accounts[license_code] = api_key
    return accounts


def _parse_reject_item(text: str) -> dict[str, Any]:
    try:
        pattern = json.loads(text)
    except ValueError as error:
        raise ValueError(f"--reject-item {text!r} is not valid JSON: {error}") from None
    if not isinstance(pattern, dict) or not pattern:
        raise ValueError(f"--reject-item {text!r} must be a non-empty JSON object")
    return pattern


def _is_loopback_host(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loyalty_sync.webengage.standin",
        description="Serve a local stand-in for WebEngage's REST API until SIGTERM or SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8765, help="TCP port, 0 for any free port (default: %(default)s)"
    )
    parser.add_argument(
        "--account",
        action="append",
        default=[],
        metavar="LICENSE=KEY",
        help=(
            "license code and API key of an account, repeatable. Without it the accounts come from "
            f"{ACCOUNTS_ENV_VAR} as LICENSE=KEY,LICENSE2=KEY2, which keeps keys out of the process list."
        ),
    )
    parser.add_argument(
        "--bulk-limit", type=int, default=500,
        help="requests per window for bulk-users and bulk-events together (default: %(default)s)",
    )
    parser.add_argument(
        "--single-limit", type=int, default=5000,
        help="requests per window for users, and separately for events (default: %(default)s)",
    )
    parser.add_argument(
        "--window-seconds", type=float, default=60.0,
        help="length of a rate-limit window in seconds (default: %(default)s)",
    )

    faults = parser.add_argument_group(
        "injected faults", "Faults to inject from the start; PUT /_standin/faults changes them while running."
    )
    faults.add_argument("--error-rate", type=float, default=0.0,
                        help="share of calls (0 to 1) that get an --error-status response (default: %(default)s)")
    faults.add_argument("--error-status", type=int, default=503, help="5xx status of injected errors (default: %(default)s)")
    faults.add_argument("--reset-rate", type=float, default=0.0,
                        help="share of calls (0 to 1) whose connection is reset before the call is accepted "
                             "(default: %(default)s)")
    faults.add_argument("--throttle-every", type=int, default=0,
                        help="start a burst of 429 responses every this many calls, 0 for never (default: %(default)s)")
    faults.add_argument("--throttle-burst", type=int, default=0,
                        help="calls that get a 429 response in each burst (default: %(default)s)")
    faults.add_argument("--retry-after", type=int, default=1,
                        help="Retry-After of injected 429 responses, in seconds (default: %(default)s)")
    faults.add_argument("--latency-ms", type=float, default=0.0,
                        help="delay added to every API response, in milliseconds (default: %(default)s)")
    faults.add_argument("--reject-item", action="append", default=[], metavar="JSON",
                        help='answer 400 to any call carrying an item matching this JSON object, for example '
                             '\'{"userId": "42"}\'; repeatable')
    faults.add_argument("--fault-seed", type=int, default=0,
                        help="seed of the random draws for --error-rate and --reset-rate (default: %(default)s)")

    parser.add_argument(
        "--allow-non-loopback", action="store_true",
        help="allow a --host that is not a loopback address, for example in a container",
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="logging level. DEBUG logs every request (default: %(default)s)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-in from the command line and return the exit status."""
    parser = _build_parser()
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=arguments.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    if not arguments.allow_non_loopback and not _is_loopback_host(arguments.host):
        parser.error(
            f"--host {arguments.host} is not a loopback address. "
            "Pass --allow-non-loopback to listen on it anyway."
        )
    try:
        accounts = _read_accounts(arguments.account, os.environ)
        config = StandinConfig(
            accounts=accounts,
            bulk_limit=arguments.bulk_limit,
            single_limit=arguments.single_limit,
            window_seconds=arguments.window_seconds,
        )
        fault_config = FaultConfig(
            error_rate=arguments.error_rate,
            error_status=arguments.error_status,
            reset_rate=arguments.reset_rate,
            throttle_every=arguments.throttle_every,
            throttle_burst=arguments.throttle_burst,
            retry_after_seconds=arguments.retry_after,
            latency_seconds=arguments.latency_ms / 1000.0,
            reject_items=tuple(_parse_reject_item(text) for text in arguments.reject_item),
            seed=arguments.fault_seed,
        )
    except ValueError as error:
        parser.error(str(error))

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("received %s, stopping", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    standin = WebEngageStandin(config, host=arguments.host, port=arguments.port, faults=fault_config)
    try:
        standin.start()
    except OSError as error:
        logger.error("failed to listen on %s port %d: %s", arguments.host, arguments.port, error)
        return 1
    license_codes = ", ".join(sorted(accounts))
    logger.info("WebEngage stand-in listening on %s for license codes %s", standin.base_url, license_codes)

    # The timeout lets the main thread run the signal handler promptly on every platform.
    while not stop_requested.wait(timeout=0.5):
        pass
    standin.stop()
    logger.info("WebEngage stand-in stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
