"""Every setting of a sync run except endpoints and secrets, which live in Airflow connections.

Settings come from three layers, later ones winning: the defaults below, the JSON object in the
Airflow Variable ``loyalty_sync_settings``, and the ``settings`` object in the DAG run's params.
Unknown names and values of the wrong type are rejected with the name, the value and what is valid.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

VARIABLE_KEY = "loyalty_sync_settings"
DEFAULT_WEBENGAGE_CONN_ID = "webengage"


class SettingsError(ValueError):
    """A setting has an unknown name or an invalid value."""


@dataclass(frozen=True)
class SyncSettings:
    """Typed settings of one run; see ``docs/settings.md`` for each field."""

    # Folder (or path relative to the project root) searched for export folders holding a manifest.json.
    export_root: str = "include/sample_exports"
    # Merchant time zone, used for event timestamps sent to WebEngage and day boundaries.
    timezone: str = "Asia/Kolkata"
    # Activity older than this many days before the end of the data interval is recorded as skipped,
    # not sent, so a first run does not fire journeys on months of history.
    max_event_age_days: int = 7
    # Window of the "coins expiring soon" flag, in days after the end of the data interval.
    coins_expiring_within_days: int = 30
    # Windows of the "recently" flags, in days before the end of the data interval.
    referral_window_days: int = 7
    review_window_days: int = 30
    tier_upgrade_window_days: int = 7
    # Test accounts: left out of profiles, segments and WebEngage, and counted in the run report.
    test_account_customer_ids: tuple[str, ...] = ()
    test_account_emails: tuple[str, ...] = ()
    test_account_email_domains: tuple[str, ...] = ()
    # Prefix for every WebEngage event name, for merchants who also run Nector's own WebEngage
    # integration and want to tell the two apart, for example "Sync ".
    event_name_prefix: str = ""
    # Catalog keys of events that are not queued, for example ["review_submitted"].
    disabled_events: tuple[str, ...] = ()
    # What becomes the WebEngage userId: "platform_customer_id" (customer id without the platform
    # prefix, `shopify-123` -> `123`) or "customer_id" (as Nector holds it).
    user_id_source: str = "platform_customer_id"
    # Value of one coin in the store currency, for the `points_value` event attributes.
    coin_value: float = 1.0
    # Airflow connection of each workspace's WebEngage account; a workspace not listed uses
    # "webengage". One Nector workspace (brand) maps to one WebEngage account.
    webengage_connections: dict[str, str] = field(default_factory=dict)
    # Items per bulk call; WebEngage accepts at most 25.
    batch_size: int = 25
    # HTTP attempts per WebEngage call before the run fails (429 and 5xx are retried).
    max_attempts: int = 5
    request_timeout_seconds: float = 30.0

    def __post_init__(self) -> None:
        _check_positive(self, "max_event_age_days", "coins_expiring_within_days", "referral_window_days",
                        "review_window_days", "tier_upgrade_window_days", "max_attempts")
        if not 1 <= self.batch_size <= 25:
            raise SettingsError(f"batch_size={self.batch_size} is invalid: WebEngage accepts 1 to 25 items per bulk call")
        if self.user_id_source not in ("platform_customer_id", "customer_id"):
            raise SettingsError(
                f"user_id_source={self.user_id_source!r} is invalid: use 'platform_customer_id' or 'customer_id'"
            )
        if self.coin_value < 0:
            raise SettingsError(f"coin_value={self.coin_value} is invalid: it must not be negative")
        if self.request_timeout_seconds <= 0:
            raise SettingsError(f"request_timeout_seconds={self.request_timeout_seconds} is invalid: it must be positive")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise SettingsError(f"timezone={self.timezone!r} is not a known IANA time zone, for example 'Asia/Kolkata'") from error
        from loyalty_sync.webengage.catalog import EVENTS  # imported here: the catalog reads settings types

        unknown_events = sorted(set(self.disabled_events) - {event.key for event in EVENTS})
        if unknown_events:
            raise SettingsError(
                f"disabled_events has unknown events {unknown_events}; valid: {sorted(event.key for event in EVENTS)}"
            )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def webengage_conn_id(self, workspace_id: str) -> str:
        return self.webengage_connections.get(workspace_id, DEFAULT_WEBENGAGE_CONN_ID)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SyncSettings:
        """Build settings from a mapping of field names to JSON values, converting lists to tuples.

        Raises:
            SettingsError: for an unknown name or a value of the wrong type.
        """
        hints = get_type_hints(cls)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(f"unknown settings {unknown}; valid settings: {sorted(known)}")

        converted: dict[str, Any] = {}
        for name, value in values.items():
            converted[name] = _convert(name, value, hints[name])
        return cls(**converted)

    @classmethod
    def load(cls, variable_json: str | None = None, overrides: Mapping[str, Any] | None = None) -> SyncSettings:
        """Merge the Variable's JSON object and per-run overrides over the defaults."""
        merged: dict[str, Any] = {}
        if variable_json:
            try:
                from_variable = json.loads(variable_json)
            except json.JSONDecodeError as error:
                raise SettingsError(f"Variable {VARIABLE_KEY} is not valid JSON: {error}") from error
            if not isinstance(from_variable, dict):
                raise SettingsError(f"Variable {VARIABLE_KEY} must be a JSON object, got {type(from_variable).__name__}")
            merged.update(from_variable)
        merged.update(overrides or {})
        return cls.from_mapping(merged)

    def as_dict(self) -> dict[str, Any]:
        """Return the settings as JSON-ready values (tuples become lists)."""
        return {
            f.name: list(value) if isinstance(value := getattr(self, f.name), tuple) else value
            for f in dataclasses.fields(self)
        }


def _check_positive(settings: SyncSettings, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        if value <= 0:
            raise SettingsError(f"{name}={value} is invalid: it must be a positive whole number")


def _convert(name: str, value: Any, hint: Any) -> Any:
    expected = str(hint)
    if expected.startswith("tuple"):
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
            raise SettingsError(f"{name}={value!r} is invalid: expected a list of strings")
        return tuple(value)
    if expected.startswith("dict"):
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise SettingsError(f"{name}={value!r} is invalid: expected an object of strings")
        return dict(value)
    if hint is bool or expected == "bool":
        if not isinstance(value, bool):
            raise SettingsError(f"{name}={value!r} is invalid: expected true or false")
        return value
    if hint is int or expected == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{name}={value!r} is invalid: expected a whole number")
        return value
    if hint is float or expected == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingsError(f"{name}={value!r} is invalid: expected a number")
        return float(value)
    if hint is str or expected == "str":
        if not isinstance(value, str):
            raise SettingsError(f"{name}={value!r} is invalid: expected a string")
        return value
    return value
