"""Every setting of a sync run except endpoints and secrets, which live in Airflow connections.

Settings come from three layers, later ones winning: the defaults below, the JSON object in the
Airflow Variable ``loyalty_sync_settings``, and the ``settings`` object in the DAG run's params.
Unknown names and values of the wrong type are rejected with the name, the value and what is valid.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, get_type_hints
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

VARIABLE_KEY = "loyalty_sync_settings"
DEFAULT_WEBENGAGE_CONN_ID = "webengage"


class SettingsError(ValueError):
    """A setting has an unknown name or an invalid value."""


# Former settings -> (segment, parameter) that replaced them.
_MOVED_TO_SEGMENT_PARAMETERS = {
    "coins_expiring_within_days": ("coins_expiring_soon", "days"),
    "referral_window_days": ("referral_completed_recently", "days"),
    "review_window_days": ("reviewed_recently", "days"),
    "tier_upgrade_window_days": ("tier_upgraded_recently", "days"),
}


def _setting(default: Any, help_text: str) -> Any:
    """Declare a settings field with its help text; a ``None`` default means an empty dict."""
    if default is None:
        return field(default_factory=dict, metadata={"help": help_text})
    return field(default=default, metadata={"help": help_text})


@dataclass(frozen=True)
class SyncSettings:
    """Typed settings of one run. Each field's help text is rendered into ``docs/settings.md``."""

    export_root: str = _setting(
        "include/sample_exports",
        "Folder searched, at any depth, for export folders containing a manifest.json: a local path "
        "(relative to the project root) or an object storage URL such as `s3://bucket/nector/`.",
    )
    export_conn_id: str = _setting(
        "",
        "Airflow connection for an `export_root` in object storage (`s3://bucket/prefix` with an `aws` "
        "connection; `gs://` once the Google provider is installed). Empty for a local folder.",
    )
    max_rejected_share: float = _setting(
        0.05,
        "A file with a larger share of records failing their checks is quarantined whole (none of its rows "
        "load) and the run fails, since that points at a broken export rather than a few bad rows.",
    )
    timezone: str = _setting(
        "Asia/Kolkata",
        "Merchant time zone (IANA name): day boundaries of the flags and the offset of every date sent to WebEngage.",
    )
    max_event_age_days: int = _setting(
        7,
        "Activity older than this many days before the end of the data interval is recorded as skipped, "
        "not sent, so a first run does not fire journeys on months of history. User attributes are always sent.",
    )
    segment_parameters: dict[str, dict[str, Any]] = _setting(
        None, "Segment parameters that differ from the defaults in the segment files, by segment and parameter, "
              "for example `{\"coins_expiring_soon\": {\"days\": 15}}`. docs/webengage-catalog.md lists them."
    )
    reserved_custom_attributes_per_type: int = _setting(
        10, "Custom WebEngage user attributes of each data type kept free for the merchant's own. WebEngage allows "
            "25 per type; a run fails, naming the segment file, when the catalog and the segments leave fewer free."
    )
    coin_expiry_days: int = _setting(
        0, "Days after which coins expire, for credits exported without `expire_at` (Nector's expiry period, "
           "the manifest's `coin_expiry_days`); 0 means such credits never expire."
    )
    derive_work_mem: str = _setting(
        "256MB", "Postgres `work_mem` of the derive stage's transaction: memory per sort or hash step before it "
                 "spills to disk, for example `64MB`."
    )
    test_account_customer_ids: tuple[str, ...] = _setting(
        (), "Customer ids of test accounts, with or without the platform prefix. Test accounts are left out of "
            "profiles, segments and WebEngage, and counted in the run report."
    )
    test_account_emails: tuple[str, ...] = _setting((), "Emails of test accounts (compared lower-cased).")
    test_account_email_domains: tuple[str, ...] = _setting((), "Email domains whose accounts are test accounts.")
    event_name_prefix: str = _setting(
        "", "Put in front of every WebEngage event name, for merchants who also run Nector's own WebEngage "
            "integration and want to tell the two apart, for example `Sync `."
    )
    disabled_events: tuple[str, ...] = _setting((), "Catalog keys of events that are not queued, for example `review_submitted`.")
    user_id_source: str = _setting(
        "platform_customer_id",
        "What becomes the WebEngage userId: `platform_customer_id` (the customer id without its platform prefix, "
        "`shopify-123` -> `123`) or `customer_id` (as Nector holds it).",
    )
    coin_value: float = _setting(1.0, "Value of one coin in the store currency, for the `points_value` event attributes.")
    webengage_connections: dict[str, str] = _setting(
        None, "Airflow connection id of each workspace's WebEngage account; a workspace not listed uses `webengage`. "
              "One Nector workspace (brand) sends to one WebEngage account."
    )
    batch_size: int = _setting(25, "Items per bulk call; WebEngage accepts at most 25.")
    max_attempts: int = _setting(5, "HTTP attempts per WebEngage call for 5xx, timeouts and dropped connections.")
    max_rate_limit_waits: int = _setting(
        30, "429 responses per WebEngage call that are waited out (as `Retry-After` says) before the call fails; "
            "they do not count against `max_attempts`."
    )
    request_timeout_seconds: float = _setting(30.0, "Timeout of one HTTP request to WebEngage, in seconds.")
    sender_threads: int = _setting(
        4, "Bulk calls the deliver task makes at once (one thread and one warehouse connection each); all share "
           "the rate limit. After a crash, up to this many batches can arrive at WebEngage twice. The run's "
           "`concurrency` param overrides it."
    )
    clear_on_null: tuple[str, ...] = _setting(
        (), "Custom user attributes whose value is cleared in WebEngage (sent as null) when the warehouse has none. "
            "Any other attribute without a value is left out, so WebEngage keeps the value it has."
    )
    dry_run_dir: str = _setting(
        "dry_runs", "Folder where a run with the `dry_run` param writes the bulk calls it would make, one JSON "
                    "object a line. A relative path is read from the project root."
    )

    def __post_init__(self) -> None:
        _check_positive(self, "max_event_age_days", "max_attempts", "max_rate_limit_waits", "sender_threads")
        if not 0 <= self.reserved_custom_attributes_per_type <= 25:
            raise SettingsError(
                f"reserved_custom_attributes_per_type={self.reserved_custom_attributes_per_type} is invalid: "
                "use 0 to 25, since WebEngage allows 25 custom attributes per type"
            )
        if self.coin_expiry_days < 0:
            raise SettingsError(f"coin_expiry_days={self.coin_expiry_days} is invalid: use 0 (never) or more days")
        if not re.fullmatch(r"[1-9][0-9]*(kB|MB|GB)", self.derive_work_mem):
            raise SettingsError(f"derive_work_mem={self.derive_work_mem!r} is invalid: use a size such as '256MB'")
        if not 1 <= self.batch_size <= 25:
            raise SettingsError(f"batch_size={self.batch_size} is invalid: WebEngage accepts 1 to 25 items per bulk call")
        if self.user_id_source not in ("platform_customer_id", "customer_id"):
            raise SettingsError(
                f"user_id_source={self.user_id_source!r} is invalid: use 'platform_customer_id' or 'customer_id'"
            )
        if not 0 <= self.max_rejected_share <= 1:
            raise SettingsError(f"max_rejected_share={self.max_rejected_share} is invalid: use a share from 0 to 1")
        if self.coin_value < 0:
            raise SettingsError(f"coin_value={self.coin_value} is invalid: it must not be negative")
        if self.request_timeout_seconds <= 0:
            raise SettingsError(f"request_timeout_seconds={self.request_timeout_seconds} is invalid: it must be positive")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise SettingsError(f"timezone={self.timezone!r} is not a known IANA time zone, for example 'Asia/Kolkata'") from error
        from loyalty_sync.webengage.catalog import EVENTS, SEGMENT_EVENTS, USER_ATTRIBUTES  # imported here: the catalog reads settings types

        custom_attributes = {attribute.name for attribute in USER_ATTRIBUTES if not attribute.system}
        unknown_attributes = sorted(set(self.clear_on_null) - custom_attributes)
        if unknown_attributes:
            raise SettingsError(
                f"clear_on_null has attributes that are not custom user attributes: {unknown_attributes}; "
                f"valid: {sorted(custom_attributes)}"
            )

        if self.segment_parameters:
            from loyalty_sync.derive.segments import SegmentError, default_segment_folder, load_segments, resolve_parameters

            try:
                resolve_parameters(load_segments(default_segment_folder()), self.segment_parameters)
            except SegmentError as error:
                raise SettingsError(str(error)) from error

        event_keys = {event.key for event in EVENTS + SEGMENT_EVENTS}
        unknown_events = sorted(set(self.disabled_events) - event_keys)
        if unknown_events:
            raise SettingsError(f"disabled_events has unknown events {unknown_events}; valid: {sorted(event_keys)}")

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
        moved = sorted(set(values) & set(_MOVED_TO_SEGMENT_PARAMETERS))
        if moved:
            raise SettingsError(
                f"settings {moved} are now segment parameters; set them in segment_parameters, for example "
                + ", ".join(f"{{\"{_MOVED_TO_SEGMENT_PARAMETERS[name][0]}\": {{\"{_MOVED_TO_SEGMENT_PARAMETERS[name][1]}\": "
                            f"{values[name]!r}}}}}" for name in moved)
            )
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
    if expected.startswith("dict[str, dict"):
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in value.items()):
            raise SettingsError(f"{name}={value!r} is invalid: expected an object of objects")
        return {key: dict(inner) for key, inner in value.items()}
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


def render_markdown() -> str:
    """Return the settings reference, ``docs/settings.md``."""
    defaults = SyncSettings().as_dict()
    lines = [
        "# Settings",
        "",
        "Generated from `plugins/loyalty_sync/settings.py` by `make docs`; do not edit by hand.",
        "",
        f"Set them as a JSON object in the Airflow Variable `{VARIABLE_KEY}`; a run's `settings` param",
        "overrides single keys for that run only. Unknown names and values of the wrong type fail the run",
        "with the name and what is valid. Endpoints and secrets are not settings: they live in the",
        "connections `loyalty_warehouse` and `webengage`.",
        "",
        "| setting | default | meaning |",
        "|---|---|---|",
    ]
    for settings_field in dataclasses.fields(SyncSettings):
        default = json.dumps(defaults[settings_field.name], ensure_ascii=False)
        lines.append(f"| `{settings_field.name}` | `{default}` | {settings_field.metadata['help']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
