"""The demo's settings, run params and dry-run note. The user's settings Variable applies over the demo's own."""

from __future__ import annotations

import json
import os

import pytest

from loyalty_sync.demo import DAG_ID, DEMO_SETTINGS, dags_test_command, demo_params, demo_settings, dry_run_note
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


def test_dry_run_note_lists_new_files(tmp_path):
    old = tmp_path / "webengage-dry-run-old.jsonl"
    old.write_text('{"resource": "bulk-users"}\n', encoding="utf-8")
    os.utime(old, (1_000, 1_000))
    new = tmp_path / "webengage-dry-run-manual__2026.jsonl"
    new.write_text('{"resource": "bulk-users"}\n{"resource": "bulk-events"}\n', encoding="utf-8")

    note = dry_run_note(tmp_path, since=2_000)

    assert note.startswith("Dry run: nothing was sent to WebEngage.")
    assert f"{new} (2 calls)" in note
    assert str(old) not in note


def test_dry_run_note_without_files(tmp_path):
    note = dry_run_note(tmp_path, since=0)

    assert note == f"Dry run: nothing was sent to WebEngage, and no file of bulk calls was written to {tmp_path}."
