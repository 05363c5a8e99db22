"""Payload formatting against WebEngage's documented rules and the catalog's declared types."""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from loyalty_sync.webengage.catalog import EVENTS_BY_KEY, USER_ATTRIBUTES
from loyalty_sync.webengage.payloads import PayloadError, build_event, build_user, format_datetime, payload_hash, to_json_value

IST = ZoneInfo("Asia/Kolkata")
WEBENGAGE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{4}$")


def test_datetime_in_webengage_form():
    value = datetime(2026, 11, 30, 3, 45, 7, 450000, tzinfo=timezone.utc)

    assert format_datetime(value, IST) == "2026-11-30T09:15:07+0530"


def test_date_means_local_midnight():
    assert format_datetime(date(1994, 8, 17), IST) == "1994-08-17T00:00:00+0530"


def test_naive_datetime_rejected():
    with pytest.raises(PayloadError):
        format_datetime(datetime(2026, 11, 30, 9, 0), IST)


@pytest.mark.parametrize(("value", "expected"), [
    (Decimal("150.00"), 150),
    (Decimal("12.50"), 12.5),
    (7, 7),
])
def test_numbers_sent_as_json_numbers(value, expected):
    result = to_json_value("number", value, IST, "points")

    assert result == expected
    assert type(result) is type(expected)


def test_boolean_not_accepted_as_number():
    with pytest.raises(PayloadError):
        to_json_value("number", True, IST, "points")


def test_long_string_rejected_naming_attribute():
    with pytest.raises(PayloadError) as raised:
        to_json_value("string", "x" * 1000, IST, "Review Submitted.product_name")

    assert "Review Submitted.product_name" in str(raised.value)


def test_event_ids_are_strings_and_nulls_omitted():
    row = {
        "user_id": 7012345678901, "occurred_at": datetime(2026, 11, 30, 4, 0, tzinfo=timezone.utc),
        "amount": Decimal("100"), "balance_after": Decimal("250"), "points_value": Decimal("100"),
        "currency": "INR", "title": "Order reward", "reference_order_id": None, "expire_at": None,
    }

    event = build_event(EVENTS_BY_KEY["points_earned"], row, IST, "Sync ")

    assert event["userId"] == "7012345678901"
    assert event["eventName"] == "Sync Points Earned"
    assert WEBENGAGE_DATE.match(event["eventTime"])
    assert event["eventData"] == {"points": 100, "balance_after": 250, "points_value": 100, "currency": "INR",
                                  "reason": "Order reward"}


def test_user_payload_types_follow_catalog():
    row = {source: None for source in (a.source for a in USER_ATTRIBUTES)}
    row.update(user_id="42", first_name="Diya", email="diya@example.com", mobile_e164="+919876543210",
               coin_balance=Decimal("10"), segment_values={"earned_never_redeemed": True},
               next_coin_expiry_at=datetime(2026, 12, 20, tzinfo=IST))

    user = build_user(row, IST)

    assert user["userId"] == "42"
    assert user["phone"] == "+919876543210"
    assert user["attributes"]["loyalty_coin_balance"] == 10
    assert user["attributes"]["loyalty_earned_never_redeemed"] is True
    assert user["attributes"]["loyalty_vip"] is False
    assert user["attributes"]["loyalty_next_coin_expiry_at"] == "2026-12-20T00:00:00+0530"
    assert "lastName" not in user


def test_user_with_invalid_phone_rejected():
    row = {"user_id": "42", "mobile_e164": "98765"}

    with pytest.raises(PayloadError):
        build_user(row, IST)


def test_payload_hash_ignores_key_order():
    assert payload_hash({"a": 1, "b": [1, 2]}) == payload_hash({"b": [1, 2], "a": 1})
    assert payload_hash({"a": 1}) != payload_hash({"a": 2})


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), float("nan"), float("-inf")])
def test_non_finite_number_rejected(value):
    with pytest.raises(PayloadError, match="not a finite number"):
        to_json_value("number", value, IST, "points")


def test_null_left_out_by_default():
    row = {"user_id": "42", "tier": None, "coin_balance": Decimal("5")}

    user = build_user(row, IST)

    assert "loyalty_tier" not in user["attributes"]
    assert user["attributes"]["loyalty_coin_balance"] == 5


def test_null_sent_when_configured():
    row = {"user_id": "42", "tier": None, "email": None}

    user = build_user(row, IST, clear_on_null=frozenset({"loyalty_tier", "email"}))

    assert user["attributes"]["loyalty_tier"] is None
    # System fields are never cleared: WebEngage validates them even when null.
    assert "email" not in user


@pytest.mark.parametrize(("consent", "expected"), [(True, True), (False, False), (None, "absent")])
def test_whatsapp_opt_in_only_from_consent(consent, expected):
    row = {"user_id": "42", "email_opt_in": True, "sms_opt_in": True, "whatsapp_opt_in": consent}

    user = build_user(row, IST)

    assert user.get("whatsappOptIn", "absent") == expected
    assert user["emailOptIn"] is True
    assert user["smsOptIn"] is True


def test_opt_ins_are_booleans():
    row = {"user_id": "42", "email_opt_in": "yes"}

    with pytest.raises(PayloadError, match="emailOptIn='yes' is not a boolean"):
        build_user(row, IST)
