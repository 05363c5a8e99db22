"""The demo's settings: the user's settings Variable applies over the demo's own."""

from __future__ import annotations

import pytest

from loyalty_sync.demo import DEMO_SETTINGS, demo_settings
from loyalty_sync.settings import SyncSettings


def test_demo_settings_alone_without_a_variable():
    assert demo_settings(None) == DEMO_SETTINGS
    assert demo_settings("") == DEMO_SETTINGS


def test_user_settings_apply_over_the_demo_settings():
    settings = demo_settings('{"event_name_prefix": "Sync ", "export_root": "/data/exports"}')

    assert settings["event_name_prefix"] == "Sync "
    assert settings["export_root"] == "/data/exports"
    assert settings["test_account_email_domains"] == DEMO_SETTINGS["test_account_email_domains"]
    SyncSettings.from_mapping(settings)


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_invalid_variable_named(text):
    with pytest.raises(ValueError, match="JSON"):
        demo_settings(text)
