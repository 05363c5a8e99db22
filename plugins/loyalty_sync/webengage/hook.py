"""Airflow hook for WebEngage's REST API, built on the HTTP provider's ``HttpHook``.

Connection fields: login = license code (verbatim, prefix such as ``in~`` included), password = REST
API key, extra ``data_center`` = ``global``, ``india`` or ``ksa``, or the server prefix from Nector's
WebEngage setup guide (``api``, ``api.in``, ``api.india``, ``api.ksa``). A host in the connection
overrides the data center; that is how the local stand-in is reached.

Errors are typed: ``WebEngageConfigError`` (401, 403, 404: fix the connection, do not retry),
``WebEngageBadRequest`` (400: the payload is at fault) and ``WebEngageTransientError`` (429, 5xx,
timeouts, dropped connections, still failing after the configured attempts). Messages name the data
center and license code, never the API key.

One hook can serve several sender threads at once: each thread gets its own HTTP session, and all
of them draw from the hook's token buckets, one per endpoint class (``bulk`` and ``single``). A 429
pauses the whole bucket for the ``Retry-After`` time, so the other threads wait too.

Optional connection extra keys: ``bulk_calls_per_minute`` (default 475), ``single_calls_per_minute``
(default 4750) and ``rate_limit_window_seconds`` (default 60, the length of the server's counting
window; it sizes the bucket's burst so that no window gets more calls than the limit).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from airflow.providers.http.hooks.http import HttpHook
from requests.auth import AuthBase

log = logging.getLogger(__name__)

DATA_CENTER_HOSTS: dict[str, str] = {
    "global": "https://api.webengage.com",
    "india": "https://api.in.webengage.com",
    "ksa": "https://api.ksa.webengage.com",
}
# Server prefixes as merchants copy them from Nector's WebEngage setup guide.
DATA_CENTER_ALIASES: dict[str, str] = {
    "api": "global",
    "api.in": "india",
    "api.india": "india",
    "api.ksa": "ksa",
}
# License code prefixes seen in WebEngage accounts; WebEngage documents only the dashboard host rule.
LICENSE_PREFIX_DATA_CENTERS: dict[str, str] = {"in~": "india", "ksa~": "ksa"}

BULK_RESOURCES = {"event": "bulk-events", "user": "bulk-users"}
BULK_BODY_KEYS = {"event": "events", "user": "users"}
SINGLE_RESOURCES = {"event": "events", "user": "users"}
# Our extra keys; every other extra key the HTTP provider sends as a request header.
_CONNECTION_EXTRA_KEYS = ("data_center", "bulk_calls_per_minute", "single_calls_per_minute", "rate_limit_window_seconds")

DEFAULT_BULK_CALLS_PER_MINUTE = 475.0  # 95% of WebEngage's documented 500 bulk calls a minute
DEFAULT_SINGLE_CALLS_PER_MINUTE = 4750.0  # 95% of the documented 5,000 single calls a minute
DEFAULT_RATE_LIMIT_WINDOW_SECONDS = 60.0  # WebEngage documents its limits per minute
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BACKOFF_SECONDS = 60.0
MAX_BULK_ITEMS = 25


class WebEngageError(Exception):
    """Base class of every WebEngage call failure."""


class WebEngageConfigError(WebEngageError):
    """The connection is wrong (data center, license code or key); retrying will not help."""


class WebEngageBadRequest(WebEngageError):
    """WebEngage rejected the payload (400). ``response_text`` is the body of its response."""

    def __init__(self, message: str, response_text: str) -> None:
        super().__init__(message)
        self.response_text = response_text


class WebEngageTransientError(WebEngageError):
    """Rate limiting, server errors or network failures outlasted every attempt.

    ``attempts``, ``rate_limited`` and ``uncertain_retries`` count the call's requests as in ``CallResult``.
    """

    def __init__(self, message: str, attempts: int = 0, rate_limited: int = 0, uncertain_retries: int = 0) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.rate_limited = rate_limited
        self.uncertain_retries = uncertain_retries


class _BearerAuth(AuthBase):
    """Adds ``Authorization: Bearer <key>``; its repr never shows the key."""

    def __init__(self, api_key: str) -> None:
        self._api_key = api_key

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        return request

    def __repr__(self) -> str:
        return "_BearerAuth(api_key=***)"


class TokenBucket:
    """Thread-safe token bucket: at most ``rate_per_minute`` acquisitions a minute, bursts up to ``burst``."""

    def __init__(
        self,
        rate_per_minute: float,
        burst: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_minute <= 0:
            raise ValueError(f"rate_per_minute must be positive, got {rate_per_minute}")
        self.rate_per_second = rate_per_minute / 60.0
        self.capacity = max(1.0, burst)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping until one is free; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate_per_second)
                self._updated = now
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return waited
                wait = (1.0 - self._tokens) / self.rate_per_second
            self._sleep(wait)
            waited += wait

    def drain(self) -> None:
        """Drop the saved-up tokens, so no burst follows a wait the server asked for."""
        with self._lock:
            self._tokens = 0.0
            self._updated = self._clock()


@dataclass(frozen=True)
class CallResult:
    """A call WebEngage accepted.

    ``attempts`` counts HTTP requests, 429s included, and ``rate_limited`` the 429 responses among them.
    ``uncertain_retries`` counts the retries after a request whose outcome is unknown, because the
    connection dropped or timed out after the request was sent. Each of them may have made the call
    arrive twice.
    """

    status_code: int
    attempts: int
    rate_limit_remaining: int | None
    rate_limited: int = 0
    uncertain_retries: int = 0


def resolve_data_center(value: str | None) -> str:
    """Return ``global``, ``india`` or ``ksa`` for a data center name or server prefix.

    Raises:
        WebEngageConfigError: listing the valid values, for anything else.
    """
    name = (value or "global").strip().lower()
    name = DATA_CENTER_ALIASES.get(name, name)
    if name not in DATA_CENTER_HOSTS:
        valid = sorted(DATA_CENTER_HOSTS) + sorted(DATA_CENTER_ALIASES)
        raise WebEngageConfigError(
            f"unknown WebEngage data_center {value!r} in the connection extra; valid values: {', '.join(valid)}"
        )
    return name


class EncodedJson(str):
    """A JSON object already encoded as text, such as a payload read from Postgres as ``jsonb::text``.

    ``encode_bulk_body`` copies it into the body as it is, which saves decoding and encoding it again.
    """


def encode_bulk_body(kind: str, items: Sequence[Mapping[str, Any] | EncodedJson]) -> bytes:
    """Return the exact request body of a bulk call: ``{"users": [...]}`` or ``{"events": [...]}``."""
    encoded = [
        item if isinstance(item, EncodedJson) else json.dumps(item, separators=(",", ":"), ensure_ascii=False)
        for item in items
    ]
    return f'{{"{BULK_BODY_KEYS[kind]}":[{",".join(encoded)}]}}'.encode("utf-8")


def request_id_for(kind: str, item: dict[str, Any]) -> str:
    """Deterministic ``x-request-id`` for a single-item call, so a retried call is not stored twice."""
    canonical = json.dumps({"kind": kind, "item": item}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


class WebEngageHook(HttpHook):
    """Send users and events to WebEngage's REST API with pacing and retries.

    :param webengage_conn_id: Airflow connection id (type ``http``); see the module docstring.
    :param max_attempts: attempts per call for 5xx, timeouts and dropped connections.
    :param max_rate_limit_waits: 429 responses per call that are waited out before the call fails;
        they do not count against ``max_attempts``, because a 429 requests a wait and does not mean
        the call is broken.
    :param timeout_seconds: timeout of one HTTP request.
    :param sleep: waits between retries, replaceable for tests; receives seconds.
    """

    conn_name_attr = "webengage_conn_id"
    default_conn_name = "webengage"
    conn_type = "http"
    hook_name = "WebEngage"

    def __init__(
        self,
        webengage_conn_id: str = default_conn_name,
        *,
        max_attempts: int = 5,
        max_rate_limit_waits: int = 30,
        timeout_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(method="POST", http_conn_id=webengage_conn_id)
        self.webengage_conn_id = webengage_conn_id
        self.max_attempts = max_attempts
        self.max_rate_limit_waits = max_rate_limit_waits
        self.timeout_seconds = timeout_seconds
        self._sleep = sleep
        # requests.Session is not documented as thread-safe: each sender thread gets its own.
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._session_lock = threading.Lock()
        self.license_code = ""
        self.data_center = ""
        self._buckets: dict[str, TokenBucket] = {}
        # Endpoint class -> monotonic time before which no thread sends, set by a 429.
        self._paused_until: dict[str, float] = {}

    # -- connection -----------------------------------------------------------------------------

    def _set_base_url(self, connection: Any) -> None:
        extra = connection.extra_dejson
        self.data_center = resolve_data_center(extra.get("data_center"))
        if connection.host:
            super()._set_base_url(connection)
        else:
            self.base_url = DATA_CENTER_HOSTS[self.data_center]
            self._base_url_initialized = True

    def _extract_auth(self, connection: Any) -> AuthBase:
        if not connection.login:
            raise WebEngageConfigError(
                f"connection {self.webengage_conn_id!r} has no login: set it to the WebEngage license code"
            )
        if not connection.password:
            raise WebEngageConfigError(
                f"connection {self.webengage_conn_id!r} has no password: set it to the WebEngage REST API key"
            )
        return _BearerAuth(connection.password)

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None) -> requests.Session:
        session = super().get_conn(headers=headers, extra_options=extra_options)
        for key in _CONNECTION_EXTRA_KEYS:
            session.headers.pop(key, None)
        session.headers["Content-Type"] = "application/json"
        _read_environment_once(session, self.base_url)

        connection = self.get_connection(self.webengage_conn_id)
        with self._session_lock:
            # The buckets are shared by every session of this hook, so they are made once.
            if not self._buckets:
                self.license_code = connection.login
                self._buckets = _buckets_from_extra(connection.extra_dejson)
                self._warn_on_region_mismatch()
                log.info("WebEngage connection %s: data center %s, license code %s, base URL %s",
                         self.webengage_conn_id, self.data_center, self.license_code, self.base_url)
        return session

    def _warn_on_region_mismatch(self) -> None:
        for prefix, data_center in LICENSE_PREFIX_DATA_CENTERS.items():
            if self.license_code.lower().startswith(prefix) and self.data_center != data_center:
                log.warning(
                    "License code %s looks like a %s account but the connection's data center is %s; "
                    "calls will fail with 401 or 404 if the data center is wrong",
                    self.license_code, data_center, self.data_center,
                )

    @property
    def session(self) -> requests.Session:
        """The calling thread's HTTP session, opened on first use; it keeps connections alive."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self.get_conn()
            self._local.session = session
            with self._session_lock:
                self._sessions.append(session)
        return session

    def close(self) -> None:
        """Close every thread's session; a later call opens new ones."""
        with self._session_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
            self._local = threading.local()

    # -- calls ----------------------------------------------------------------------------------

    def send_bulk(self, kind: str, items: Sequence[Mapping[str, Any] | EncodedJson]) -> CallResult:
        """POST up to 25 users or events (``kind`` is ``user`` or ``event``) to the bulk endpoint."""
        if not 1 <= len(items) <= MAX_BULK_ITEMS:
            raise ValueError(f"a bulk call takes 1 to {MAX_BULK_ITEMS} items, got {len(items)}")
        return self._post(BULK_RESOURCES[kind], encode_bulk_body(kind, items), "bulk", headers={})

    def send_one(self, kind: str, item: dict[str, Any]) -> CallResult:
        """POST one user or event with a deterministic ``x-request-id``."""
        data = json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return self._post(SINGLE_RESOURCES[kind], data, "single", headers={"x-request-id": request_id_for(kind, item)})

    def _post(self, resource: str, data: bytes, rate_class: str, headers: dict[str, str]) -> CallResult:
        session = self.session
        bucket = self._buckets[rate_class]
        url = f"{self.base_url.rstrip('/')}/v1/accounts/{self.license_code}/{resource}"
        failures = 0  # attempts that failed with 5xx, a timeout or a dropped connection
        rate_limited = 0
        uncertain = False  # the previous attempt may have reached WebEngage
        uncertain_retries = 0

        while True:
            self._wait_out_pause(rate_class)
            bucket.acquire()
            if uncertain:
                uncertain_retries += 1
            try:
                response = session.send(self._prepare(session, url, data, headers), timeout=self.timeout_seconds)
            except (requests.ConnectionError, requests.Timeout) as error:
                failures += 1
                uncertain = _may_have_reached_server(error)
                reason = type(error).__name__
                wait = self._backoff(failures)
            else:
                uncertain = False
                status = response.status_code
                attempts = failures + rate_limited + 1
                if 200 <= status < 300:
                    return CallResult(status, attempts, _int_header(response, "X-RateLimit-Remaining"),
                                      rate_limited, uncertain_retries)
                if status in (401, 403, 404):
                    raise WebEngageConfigError(self._config_error_message(status, resource))
                if status == 400:
                    raise WebEngageBadRequest(f"WebEngage rejected the {resource} call (400): {response.text[:500]}",
                                              response.text)
                if status not in RETRY_STATUSES:
                    raise WebEngageBadRequest(
                        f"WebEngage returned {status} to the {resource} call: {response.text[:500]}", response.text
                    )
                reason = f"HTTP {status}"
                if status == 429:
                    rate_limited += 1
                    wait = self._retry_after(response, rate_limited)
                    self._pause(rate_class, wait)
                else:
                    failures += 1
                    wait = self._backoff(failures)

            attempts = failures + rate_limited
            if failures >= self.max_attempts or rate_limited > self.max_rate_limit_waits:
                raise WebEngageTransientError(
                    f"{resource} call to data center {self.data_center} failed {attempts} times "
                    f"({rate_limited} of them 429), last with {reason}",
                    attempts, rate_limited, uncertain_retries,
                )
            log.warning("WebEngage %s call failed with %s (attempt %d; %d of %d failures, %d of %d 429s); "
                        "retrying in %.1f s", resource, reason, attempts, failures, self.max_attempts,
                        rate_limited, self.max_rate_limit_waits, wait)
            if reason != "HTTP 429":  # after a 429, _wait_out_pause waits for every thread
                self._sleep(wait)

    def _prepare(
        self, session: requests.Session, url: str, data: bytes, headers: dict[str, str]
    ) -> requests.PreparedRequest:
        """Return a POST of ``data`` to ``url``, copied from the thread's prepared template for ``url``.

        ``Session.post`` merges the session's headers, auth and settings into every request, which was
        about 40% of the client's CPU time per call in a profile of the delivery benchmark. The template
        is prepared by the session once, so it carries the same headers and auth.
        """
        templates: dict[str, requests.PreparedRequest] = self._local.__dict__.setdefault("templates", {})
        template = templates.get(url)
        if template is None:
            template = session.prepare_request(requests.Request("POST", url, data=b"{}"))
            templates[url] = template
        prepared = template.copy()
        prepared.prepare_body(data, None)
        prepared.headers.update(headers)
        return prepared

    def _pause(self, rate_class: str, seconds: float) -> None:
        """Make every thread of this hook wait ``seconds`` before its next call of ``rate_class``."""
        with self._session_lock:
            until = time.monotonic() + seconds
            self._paused_until[rate_class] = max(self._paused_until.get(rate_class, 0.0), until)
        self._buckets[rate_class].drain()

    def _wait_out_pause(self, rate_class: str) -> None:
        with self._session_lock:
            remaining = self._paused_until.get(rate_class, 0.0) - time.monotonic()
        if remaining > 0:
            self._sleep(remaining)

    def _config_error_message(self, status: int, resource: str) -> str:
        meaning = {401: "the API key was not accepted", 403: "the API key lacks permission",
                   404: "the license code is unknown on this host"}[status]
        return (
            f"WebEngage returned {status} to the {resource} call: {meaning}. Data center {self.data_center}, "
            f"license code {self.license_code}, base URL {self.base_url}. Check that the connection "
            f"{self.webengage_conn_id!r} has the license code as login, a current REST API key (of an admin with "
            "Account Management and Update Data permissions, or a service account) as password, and the "
            "data center the dashboard URL shows."
        )

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter: up to 1, 2, 4 ... seconds, capped at 60."""
        return random.uniform(0.5, 1.0) * min(MAX_BACKOFF_SECONDS, 2.0 ** (attempt - 1))

    def _retry_after(self, response: requests.Response, attempt: int) -> float:
        retry_after = response.headers.get("Retry-After")
        if retry_after is not None:
            try:
                return min(MAX_BACKOFF_SECONDS, max(0.0, float(retry_after)))
            except ValueError:
                pass
        if _int_header(response, "X-RateLimit-Remaining") == 0:
            # WebEngage's limits are per minute; without Retry-After, wait out a good part of one.
            return min(MAX_BACKOFF_SECONDS, math.ceil(self._backoff(attempt + 3)))
        return self._backoff(attempt)


def _buckets_from_extra(extra: Mapping[str, Any]) -> dict[str, TokenBucket]:
    window = float(extra.get("rate_limit_window_seconds", DEFAULT_RATE_LIMIT_WINDOW_SECONDS))
    if window <= 0:
        raise WebEngageConfigError(f"rate_limit_window_seconds={window} in the connection extra must be positive")
    rates = {
        "bulk": float(extra.get("bulk_calls_per_minute", DEFAULT_BULK_CALLS_PER_MINUTE)),
        "single": float(extra.get("single_calls_per_minute", DEFAULT_SINGLE_CALLS_PER_MINUTE)),
    }
    return {rate_class: _bucket(rate, window) for rate_class, rate in rates.items()}


def _bucket(rate_per_minute: float, window_seconds: float) -> TokenBucket:
    # Any window of the server contains at most rate x window + burst of our calls. A burst of 5% of
    # one window's calls keeps that within the limit when the rate is 95% of it.
    calls_per_window = rate_per_minute * window_seconds / 60.0
    return TokenBucket(rate_per_minute, burst=calls_per_window * 0.05)


def _read_environment_once(session: requests.Session, url: str) -> None:
    """Resolve the proxy and CA bundle variables for ``url`` now instead of on every request.

    With ``trust_env`` on, requests reads them from the environment for each request, which cost about
    a quarter of a millisecond per call in a profile of the delivery benchmark. Every call of this
    hook goes to the same host, so resolving them once gives the same result.
    """
    if not session.trust_env:
        return
    for scheme, proxy in requests.utils.get_environ_proxies(url).items():
        session.proxies.setdefault(scheme, proxy)
    if session.verify is True:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
    session.trust_env = False


def _may_have_reached_server(error: requests.RequestException) -> bool:
    """Tell whether a failed request may have been received: anything but a failure to connect.

    NOTE: a 5xx counts as not received. A gateway that returns 502 or 504 after WebEngage accepted the
    call would make the retry a duplicate that no counter shows.
    """
    if isinstance(error, requests.ConnectTimeout):
        return False
    cause = error.args[0] if error.args else None
    reason = getattr(cause, "reason", cause)
    return not isinstance(reason, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError))


def _int_header(response: requests.Response, name: str) -> int | None:
    try:
        return int(response.headers[name])
    except (KeyError, ValueError):
        return None
