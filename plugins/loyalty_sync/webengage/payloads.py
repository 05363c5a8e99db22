"""Turn warehouse rows into WebEngage event and user payloads that follow the documented rules.

Rules enforced here: dates as ``yyyy-MM-ddTHH:mm:ss±hhmm`` in the merchant's time zone, ids as
strings, numbers as finite JSON numbers, phones in E.164, strings shorter than 1000 characters. An
attribute without a value is left out, because an absent key never clears a value in WebEngage. Only
the custom attributes listed in the ``clear_on_null`` setting are sent as null. Consent flags are
sent only when the export records them, so ``whatsappOptIn`` is true only after explicit consent and
otherwise stays at WebEngage's default of false.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from loyalty_sync.webengage.catalog import MAX_STRING_LENGTH, USER_ATTRIBUTES, EventSpec

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
GENDERS = ("male", "female", "other")


class PayloadError(ValueError):
    """A value cannot be sent as its declared type; the item is recorded as dead with this reason."""


def format_datetime(value: datetime | date, tz: ZoneInfo) -> str:
    """Format as WebEngage's ``yyyy-MM-ddTHH:mm:ss±hhmm``; a date means midnight in ``tz``."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise PayloadError(f"timestamp {value.isoformat()} has no time zone")
        moment = value.astimezone(tz)
    else:
        moment = datetime.combine(value, time(0), tzinfo=tz)
    return moment.strftime("%Y-%m-%dT%H:%M:%S%z")


def to_json_value(attribute_type: str, value: Any, tz: ZoneInfo, name: str) -> Any:
    """Convert one value to the JSON WebEngage expects for ``attribute_type``; None stays None.

    Raises:
        PayloadError: naming the attribute and the value when it does not fit the type.
    """
    if value is None:
        return None
    if attribute_type == "string":
        text = str(value)
        if len(text) > MAX_STRING_LENGTH:
            raise PayloadError(f"{name} is {len(text)} characters long; WebEngage takes at most {MAX_STRING_LENGTH}")
        return text
    if attribute_type == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
            raise PayloadError(f"{name}={value!r} is not a number")
        if isinstance(value, Decimal):
            if not value.is_finite():
                raise PayloadError(f"{name}={value} is not a finite number")
            return int(value) if value == value.to_integral_value() else float(value)
        if isinstance(value, float) and not math.isfinite(value):
            raise PayloadError(f"{name}={value} is not a finite number")
        return value
    if attribute_type == "boolean":
        if not isinstance(value, bool):
            raise PayloadError(f"{name}={value!r} is not a boolean")
        return value
    if attribute_type == "date":
        if not isinstance(value, (datetime, date)):
            raise PayloadError(f"{name}={value!r} is not a date")
        return format_datetime(value, tz)
    raise PayloadError(f"{name} has unknown type {attribute_type!r}")


def build_event(spec: EventSpec, row: Mapping[str, Any], tz: ZoneInfo, name_prefix: str = "") -> dict[str, Any]:
    """Build one event item for ``/bulk-events`` from a row of the event's query."""
    event_data: dict[str, Any] = {}
    for attribute in spec.attributes:
        value = to_json_value(attribute.type, row.get(attribute.column), tz, f"{spec.name}.{attribute.key}")
        if value is not None:
            event_data[attribute.key] = value
    return {
        "userId": str(row["user_id"]),
        "eventName": spec.event_name(name_prefix),
        "eventTime": format_datetime(row["occurred_at"], tz),
        "eventData": event_data,
    }


def build_user(
    row: Mapping[str, Any], tz: ZoneInfo, clear_on_null: frozenset[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """Build one user item for ``/bulk-users`` from a row of ``deliver/user_attributes.sql``.

    A custom attribute named in ``clear_on_null`` is sent as null when the row has no value for it.
    """
    user: dict[str, Any] = {"userId": str(row["user_id"])}
    attributes: dict[str, Any] = {}
    for attribute in USER_ATTRIBUTES:
        value = to_json_value(attribute.type, attribute.value_in(row), tz, attribute.name)
        if value is None:
            if not attribute.system and attribute.name in clear_on_null:
                attributes[attribute.name] = None
            continue
        if attribute.name == "phone" and not E164.match(value):
            raise PayloadError(f"phone {value!r} is not in E.164 form")
        if attribute.name == "gender" and value not in GENDERS:
            continue
        if attribute.system:
            user[attribute.name] = value
        else:
            attributes[attribute.name] = value
    user["attributes"] = attributes
    return user


def payload_hash(payload: Mapping[str, Any]) -> str:
    """Return a stable sha256 of a payload: the same content always hashes the same."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
