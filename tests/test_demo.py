"""The demo's settings and run params: the user's settings Variable applies over the demo's own."""

from __future__ import annotations

import json

import pytest

from loyalty_sync.demo import DAG_ID, DEMO_SETTINGS, dags_test_command, demo_params, demo_settings
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


def test_demo_params_become_the_run_conf():
    params = demo_params('{"dry_run": true, "concurrency": 2}')

    command = dags_test_command("2026-12-01T02:00:00+05:30", params)

    assert command[:5] == ["airflow", "dags", "test", DAG_ID, "2026-12-01T02:00:00+05:30"]
    assert command[5] == "--conf"
    assert json.loads(command[6]) == {"dry_run": True, "concurrency": 2}


def test_no_params_no_conf():
    assert demo_params(None) == {}
    assert dags_test_command("2026-12-01", {}) == ["airflow", "dags", "test", DAG_ID, "2026-12-01"]


@pytest.mark.parametrize("text", ["{dry_run: true}", '"dry_run"'])
def test_invalid_params_named(text):
    with pytest.raises(ValueError, match="JSON"):
        demo_params(text)
