"""Every WebEngage event and user attribute this project sends, declared once.

The payload builder, the checks before sending, the tests and ``docs/webengage-catalog.md`` (generated
by ``python -m loyalty_sync.webengage.catalog``) all read these declarations.

``USER_ATTRIBUTES`` is the fixed ``PROFILE_ATTRIBUTES`` followed by one attribute per segment file, and
``SEGMENT_EVENTS`` contains the segments' entry events. Both are read from the segment files (see
``loyalty_sync.derive.segments``) on first use, so adding a segment file adds its attribute and event.

WebEngage fixes an attribute's type with the first value it receives and silently drops later values
of another type, so a declared type never changes: add a new attribute instead.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

# WebEngage data types and the JSON we send for each. Dates are strings in WebEngage's
# yyyy-MM-ddTHH:mm:ss±hhmm form.
ATTRIBUTE_TYPES = ("string", "number", "boolean", "date")
MAX_NAME_LENGTH = 49  # names must be shorter than 50 characters
MAX_STRING_LENGTH = 999  # string values must be shorter than 1000 characters
MAX_CUSTOM_ATTRIBUTES_PER_TYPE = 25  # per account; keep room for the merchant's own
RESERVED_PREFIX = "we_"


@dataclass(frozen=True)
class EventAttribute:
    """One ``eventData`` key; ``source`` is the column of the event's SQL query holding the value."""

    key: str
    type: str
    description: str
    source: str | None = None

    @property
    def column(self) -> str:
        return self.source or self.key


@dataclass(frozen=True)
class EventSpec:
    """One WebEngage event, queued from the rows of ``include/sql/deliver/events/<key>.sql``."""

    key: str
    name: str
    fires_when: str
    attributes: tuple[EventAttribute, ...]

    @property
    def query_path(self) -> str:
        return f"deliver/events/{self.key}.sql"

    def event_name(self, prefix: str = "") -> str:
        return f"{prefix}{self.name}"


@dataclass(frozen=True)
class UserAttribute:
    """One user field: a WebEngage system field (top level) or a custom attribute (inside ``attributes``)."""

    name: str
    type: str
    description: str
    source: str
    system: bool = False
    segment: str | None = None  # the segment whose membership this attribute carries

    def value_in(self, row: Mapping[str, Any]) -> Any:
        """Return this attribute's value in a row of ``deliver/user_attributes.sql``.

        A segment attribute reads the row's ``segment_values`` object (segment name to value, members
        only): a boolean attribute is membership, any other type the member's value (None for others).
        """
        if self.segment is None:
            return row.get(self.source)
        values = row.get("segment_values") or {}
        if self.type == "boolean":
            return self.segment in values
        return from_json(self.type, values.get(self.segment))


def from_json(attribute_type: str, value: Any) -> Any:
    """Return a value read back from Postgres ``jsonb`` as the Python type of ``attribute_type``.

    jsonb stores dates as ISO 8601 strings: a date-only string becomes a ``date`` (midnight in the
    merchant's time zone when sent), a timestamp a timezone-aware ``datetime``. Other values pass.
    """
    if attribute_type == "date" and isinstance(value, str):
        return date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    return value


_POINTS = EventAttribute("points", "number", "Coins moved by this transaction.", "amount")
_BALANCE_AFTER = EventAttribute("balance_after", "number", "Coin balance right after the transaction.")
_POINTS_VALUE = EventAttribute("points_value", "number", "Value of `points` in the store currency.")
_CURRENCY = EventAttribute("currency", "string", "Store currency, ISO 4217 (`INR`).")

EVENTS: tuple[EventSpec, ...] = (
    EventSpec(
        key="points_earned",
        name="Points Earned",
        fires_when="A successful coin credit of type `reward` (order, signup, review or referral reward).",
        attributes=(
            _POINTS,
            _BALANCE_AFTER,
            _POINTS_VALUE,
            _CURRENCY,
            EventAttribute("reason", "string", "Nector's title of the credit, for example `Order reward`.", "title"),
            EventAttribute("order_id", "string", "Store order that earned the coins, when there is one.",
                           "reference_order_id"),
            EventAttribute("expires_at", "date", "When these coins expire, when they do.", "expire_at"),
        ),
    ),
    EventSpec(
        key="points_redeemed",
        name="Points Redeemed",
        fires_when="A successful coin debit of type `redeem`: coins spent on a reward.",
        attributes=(
            _POINTS,
            _BALANCE_AFTER,
            _POINTS_VALUE,
            _CURRENCY,
            EventAttribute("reward_name", "string", "Offer the coins were spent on.", "offer_name"),
            EventAttribute("coupon_code", "string", "Code issued for the reward.", "code"),
        ),
    ),
    EventSpec(
        key="reward_unlocked",
        name="Reward Unlocked",
        fires_when="A coupon is issued to the customer (a redemption, a referral reward or a trigger).",
        attributes=(
            EventAttribute("coupon_code", "string", "Discount code to use at checkout.", "code"),
            EventAttribute("reward_name", "string", "Offer name, for example `₹100 off`.", "offer_name"),
            EventAttribute("discount_type", "string", "`amount` or `percent`.", "fiat_class"),
            EventAttribute("discount_value", "number", "Discount amount or percentage.", "fiat_value"),
            EventAttribute("minimum_cart_value", "number", "Minimum cart value for the code.", "minimumcart_amount"),
            _CURRENCY,
            EventAttribute("coins_spent", "number", "Coins spent on the coupon; 0 for a free reward."),
            EventAttribute("source", "string", "`redeem`, `referral_referee`, `referral_referrer` or `trigger`."),
            EventAttribute("expires_at", "date", "When the code expires, when it does.", "expire_at"),
        ),
    ),
    EventSpec(
        key="referral_completed",
        name="Referral Completed",
        fires_when="A friend referred by the customer completes a qualifying order; sent to the referrer.",
        attributes=(
            EventAttribute("reward_type", "string", "`coins`, `amount_discount`, `percentage_discount` or `free_shipping`.",
                           "referrer_reward_type"),
            EventAttribute("reward_value", "number", "Size of the referrer's reward.", "referrer_reward_value"),
            EventAttribute("referral_code", "string", "Referral code the friend used."),
            EventAttribute("completed_referrals", "number", "Referrals this customer has completed so far."),
        ),
    ),
    EventSpec(
        key="review_submitted",
        name="Review Submitted",
        fires_when="The customer writes a product review.",
        attributes=(
            EventAttribute("rating", "number", "Stars, 1 to 5."),
            EventAttribute("product_id", "string", "Product id on the store platform.", "reference_product_id"),
            EventAttribute("product_name", "string", "Product name.", "reference_product_name"),
            EventAttribute("verified_purchase", "boolean", "The review is tied to an order.", "is_verified"),
        ),
    ),
    EventSpec(
        key="tier_changed",
        name="Tier Changed",
        fires_when="The customer's VIP tier changes, up or down.",
        attributes=(
            EventAttribute("old_tier", "string", "Tier before the change; absent on first entry.", "previous_tier"),
            EventAttribute("new_tier", "string", "Tier after the change."),
            EventAttribute("direction", "string", "`up` or `down`, by tier rank."),
            EventAttribute("tier_expires_at", "date", "When the new tier lapses, when it does."),
        ),
    ),
)
EVENTS_BY_KEY: dict[str, EventSpec] = {event.key: event for event in EVENTS}

# Attributes read from the profile; each segment file adds one more (see ``user_attributes``).
PROFILE_ATTRIBUTES: tuple[UserAttribute, ...] = (
    UserAttribute("firstName", "string", "First word of the lead's name.", "first_name", system=True),
    UserAttribute("lastName", "string", "Rest of the lead's name.", "last_name", system=True),
    UserAttribute("email", "string", "Email, trimmed and lower-cased.", "email", system=True),
    UserAttribute("phone", "string", "Mobile in E.164 form.", "mobile_e164", system=True),
    UserAttribute("birthDate", "date", "Date of birth at midnight in the merchant's time zone.", "birth_date", system=True),
    UserAttribute("gender", "string", "`male`, `female` or `other`.", "gender", system=True),
    UserAttribute("emailOptIn", "boolean", "Marketing email consent, when the export has it.", "email_opt_in", system=True),
    UserAttribute("smsOptIn", "boolean", "Marketing SMS consent, when the export has it.", "sms_opt_in", system=True),
    UserAttribute("whatsappOptIn", "boolean", "True only with explicit WhatsApp consent.", "whatsapp_opt_in", system=True),
    UserAttribute("loyalty_coin_balance", "number", "Coin balance.", "coin_balance"),
    UserAttribute("loyalty_coins_earned", "number", "Coins earned as rewards, lifetime.", "lifetime_coins_earned"),
    UserAttribute("loyalty_coins_redeemed", "number", "Coins spent on rewards, lifetime.", "lifetime_coins_redeemed"),
    UserAttribute("loyalty_tier", "string", "Current VIP tier.", "tier"),
    UserAttribute("loyalty_referral_code", "string", "The customer's own referral code.", "referral_code"),
    UserAttribute("loyalty_coins_expiring_soon", "number",
                  "Unspent coins expiring within the `days` parameter of segment `coins_expiring_soon` (30).",
                  "coins_expiring_soon"),
    UserAttribute("loyalty_next_coin_expiry_at", "date", "When the next unspent coins expire.", "next_coin_expiry_at"),
    UserAttribute("loyalty_unused_coupons", "number", "Issued coupons not used and not expired.", "unused_coupon_count"),
    UserAttribute("loyalty_next_coupon_expiry_at", "date", "When the next unused coupon expires.", "next_coupon_expiry_at"),
    UserAttribute("loyalty_completed_referrals", "number", "Referrals completed, lifetime.", "completed_referral_count"),
    UserAttribute("loyalty_review_count", "number", "Reviews written, lifetime.", "review_count"),
    UserAttribute("loyalty_last_activity_at", "date", "Last ledger, coupon, referral or review activity.",
                  "last_activity_at"),
)


_segment_declarations: tuple[tuple[UserAttribute, ...], tuple[EventSpec, ...]] | None = None


def _load_segment_declarations() -> tuple[tuple[UserAttribute, ...], tuple[EventSpec, ...]]:
    """Read the segment files once per process: their user attributes and entry events.

    Raises:
        SegmentError: naming the segment file that is invalid.
    """
    global _segment_declarations
    if _segment_declarations is None:
        from loyalty_sync.derive.segments import default_segment_folder, load_segments  # imports this module

        segments = load_segments(default_segment_folder())
        _segment_declarations = (
            tuple(segment.user_attribute for segment in segments),
            tuple(spec for segment in segments if (spec := segment.event_spec()) is not None),
        )
    return _segment_declarations


def user_attributes() -> tuple[UserAttribute, ...]:
    """Return every user attribute: the profile's, then one per segment file in file name order."""
    return PROFILE_ATTRIBUTES + _load_segment_declarations()[0]


def segment_events() -> tuple[EventSpec, ...]:
    """Return the entry events the segment files declare, keyed ``entered:<segment>``."""
    return _load_segment_declarations()[1]


def __getattr__(name: str) -> Any:
    # USER_ATTRIBUTES and SEGMENT_EVENTS are computed on first access, after this module has loaded,
    # because reading the segment files imports a module that imports this one.
    if name == "USER_ATTRIBUTES":
        return user_attributes()
    if name == "SEGMENT_EVENTS":
        return segment_events()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def catalog_problems(event_name_prefix: str = "") -> list[str]:
    """Return every way the catalog breaks WebEngage's naming and count rules (empty when it fits)."""
    problems: list[str] = []

    def check_name(kind: str, name: str) -> None:
        if name.lower().startswith(RESERVED_PREFIX):
            problems.append(f"{kind} {name!r} starts with the reserved prefix {RESERVED_PREFIX!r}")
        if len(name) > MAX_NAME_LENGTH:
            problems.append(f"{kind} {name!r} is {len(name)} characters; WebEngage takes at most {MAX_NAME_LENGTH}")

    for event in EVENTS + segment_events():
        check_name("event name", event.event_name(event_name_prefix))
        for attribute in event.attributes:
            check_name(f"attribute of {event.name}", attribute.key)
            if attribute.type not in ATTRIBUTE_TYPES:
                problems.append(f"{event.name}.{attribute.key} has unknown type {attribute.type!r}")
    custom_per_type: dict[str, int] = {}
    for user_attribute in user_attributes():
        if user_attribute.type not in ATTRIBUTE_TYPES:
            problems.append(f"user attribute {user_attribute.name} has unknown type {user_attribute.type!r}")
        if not user_attribute.system:
            check_name("user attribute", user_attribute.name)
            custom_per_type[user_attribute.type] = custom_per_type.get(user_attribute.type, 0) + 1
    for attribute_type, count in custom_per_type.items():
        if count > MAX_CUSTOM_ATTRIBUTES_PER_TYPE:
            problems.append(
                f"{count} custom {attribute_type} user attributes; WebEngage allows {MAX_CUSTOM_ATTRIBUTES_PER_TYPE} per type"
            )
    return problems


def render_markdown() -> str:
    """Return the catalog as the Markdown page for marketers, ``docs/webengage-catalog.md``."""
    lines = [
        "# WebEngage events and user attributes",
        "",
        "Generated from `plugins/loyalty_sync/webengage/catalog.py` by `make docs`; do not edit by hand.",
        "",
        "Each nightly run sends the events below for loyalty activity not sent before, up to the midnight",
        "that ends the previous day, and updates the attributes of every customer whose values changed.",
        "Activity older than `max_event_age_days` (7 by default) before that midnight is recorded but not",
        "sent, so the first run does not start journeys on old history.",
        "Event names get the optional `event_name_prefix` setting in front, and `disabled_events` switches",
        "events off by their key. Dates are sent as `yyyy-MM-ddTHH:mm:ss±hhmm` in the merchant's time zone.",
        "",
        "## Events",
        "",
    ]
    for event in EVENTS:
        lines += [f"### {event.name}", "", f"Key `{event.key}`. Fires when: {event.fires_when}", "",
                  "| eventData key | type | meaning |", "|---|---|---|"]
        lines += [f"| `{a.key}` | {a.type} | {a.description} |" for a in event.attributes]
        lines.append("")
    lines += _segment_sections()
    lines += [
        "## User attributes",
        "",
        "System fields are WebEngage's own top-level fields; custom attributes arrive under `attributes`.",
        "An attribute without a value is left out, so it never clears a value already in WebEngage.",
        "",
        "| name | kind | type | meaning |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| `{a.name}` | {_attribute_kind(a)} | {a.type} | {a.description} |" for a in user_attributes()
    ]
    return "\n".join(lines) + "\n"


def _attribute_kind(attribute: UserAttribute) -> str:
    if attribute.system:
        return "system"
    return f"segment `{attribute.segment}`" if attribute.segment else "custom"


def _segment_sections() -> list[str]:
    """Return the Markdown of the segments and their entry events."""
    from loyalty_sync.derive.segments import default_segment_folder, load_segments

    segments = load_segments(default_segment_folder())
    lines = [
        "## Segments",
        "",
        "Each file under `include/sql/segments/` is a segment: its members get the segment's boolean",
        "user attribute set to true, everyone else false. Parameters change per merchant with the",
        "`segment_parameters` setting, for example `{\"coins_expiring_soon\": {\"days\": 15}}`. A segment",
        "with an entry event queues that event once each time a customer enters it.",
        "",
    ]
    for segment in segments:
        lines += [f"### {segment.name}", "", segment.description, "",
                  f"User attribute `{segment.attribute_name}` ({segment.attribute_type})."]
        if segment.parameters:
            lines += ["", "| parameter | type | default | meaning |", "|---|---|---|---|"]
            lines += [
                f"| `{p.name}` | {p.type} | `{json.dumps(p.default)}` | {p.description} |" for p in segment.parameters
            ]
        if segment.entry_event:
            lines += ["", f"Entry event **{segment.entry_event}** (key `{segment.event_key}`), with eventData:", "",
                      "| eventData key | type | meaning |", "|---|---|---|"]
            lines += [f"| `{field.key}` | {field.type} | {field.description} |" for field in segment.event_data]
        lines.append("")
    return lines


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
