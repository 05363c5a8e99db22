"""Settings: defaults, the Variable and per-run overrides, and clear errors for bad values."""

from __future__ import annotations

import json

import pytest

from loyalty_sync.settings import SettingsError, SyncSettings


def test_defaults_documented_values():
    settings = SyncSettings()

    assert settings.timezone == "Asia/Kolkata"
    assert settings.max_event_age_days == 7
    assert settings.segment_parameters == {}
    assert settings.reserved_custom_attributes_per_type == 10
    assert settings.batch_size == 25


def test_override_wins_over_variable():
    variable = json.dumps({"max_event_age_days": 30, "test_account_email_domains": ["qa.example.in"]})

    settings = SyncSettings.load(variable, {"max_event_age_days": 2})

    assert settings.max_event_age_days == 2
    assert settings.test_account_email_domains == ("qa.example.in",)


def test_unknown_setting_lists_valid_names():
    with pytest.raises(SettingsError) as raised:
        SyncSettings.load(json.dumps({"max_event_age": 3}))

    assert "max_event_age" in str(raised.value)
    assert "max_event_age_days" in str(raised.value)


@pytest.mark.parametrize(("values", "fragment"), [
    ({"max_event_age_days": "7"}, "expected a whole number"),
    ({"max_event_age_days": 0}, "must be a positive whole number"),
    ({"batch_size": 26}, "1 to 25"),
    ({"timezone": "India/Mumbai"}, "not a known IANA time zone"),
    ({"user_id_source": "email"}, "platform_customer_id"),
    ({"disabled_events": ["points_earnt"]}, "unknown events"),
    ({"test_account_emails": "qa@example.com"}, "expected a list of strings"),
    ({"webengage_connections": {"brand": 1}}, "expected an object of strings"),
])
def test_invalid_value_names_setting(values, fragment):
    with pytest.raises(SettingsError) as raised:
        SyncSettings.from_mapping(values)

    assert fragment in str(raised.value)


def test_variable_must_be_json_object():
    with pytest.raises(SettingsError) as raised:
        SyncSettings.load("[1, 2]")

    assert "JSON object" in str(raised.value)


def test_workspace_connection_defaults_to_webengage():
    settings = SyncSettings.from_mapping({"webengage_connections": {"brand-b": "webengage_brand_b"}})

    assert settings.webengage_conn_id("brand-b") == "webengage_brand_b"
    assert settings.webengage_conn_id("brand-a") == "webengage"
