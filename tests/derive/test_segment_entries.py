"""Segment entry events and segment attributes in the outbox: queued once per entry, built from the headers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from loyalty_sync.derive.profile import refresh_profiles
from loyalty_sync.derive.segments import SEGMENT_FOLDER_VARIABLE, default_segment_folder
from loyalty_sync.settings import SyncSettings
from loyalty_sync.webengage.outbox import queue_all
from staging_builder import AS_OF, Builder

DAY = timedelta(days=1)
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def build(warehouse) -> Builder:
    return Builder(warehouse)


def sync(conn: psycopg.Connection, days_after: int = 0, run_id: str = "run-1", **settings: object):
    run_settings = SyncSettings.from_mapping(settings)
    as_of = AS_OF + days_after * DAY
    refresh_profiles(conn, run_settings, as_of)
    return queue_all(conn, run_settings, as_of, run_id)


def entry_items(conn: psycopg.Connection, name: str = "entered:coins_expiring_soon") -> list[dict]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        return cursor.execute(
            "SELECT item_key, status, reason, payload FROM sync.webengage_outbox WHERE name = %s ORDER BY item_key",
            (name,),
        ).fetchall()


def user_attributes(conn: psycopg.Connection, user_id: str) -> dict:
    payload = conn.execute(
        "SELECT payload FROM sync.webengage_outbox WHERE kind = 'user' AND user_id = %s ORDER BY sequence DESC LIMIT 1",
        (user_id,),
    ).fetchone()[0]
    return payload["attributes"]


@pytest.fixture
def expiring(build):
    """A lead whose 100 coins expire 10 days after AS_OF, so it enters coins_expiring_soon on AS_OF."""
    lead = build.customer("Expiring", customer_id="shopify-42")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 300 * DAY, expire_at=AS_OF + 10 * DAY)
    return lead


def test_entry_event_payload(warehouse, expiring):
    summary = sync(warehouse)

    items = entry_items(warehouse)
    assert len(items) == 1
    assert items[0]["status"] == "pending"
    assert items[0]["payload"] == {
        "userId": "42",
        "eventName": "Coins Expiring Soon",
        "eventTime": "2026-12-01T00:00:00+0530",
        "eventData": {"coins": 100, "expires_at": "2026-12-11T00:00:00+0530", "coin_balance": 100},
    }
    assert summary.events_pending["entered:coins_expiring_soon"] == 1


def test_entry_queued_once_same_day(warehouse, expiring):
    sync(warehouse)

    sync(warehouse, run_id="run-1-retry")

    assert len(entry_items(warehouse)) == 1


def test_entry_not_queued_next_night(warehouse, expiring):
    sync(warehouse)

    summary = sync(warehouse, 1, run_id="run-2")

    assert len(entry_items(warehouse)) == 1
    assert "entered:coins_expiring_soon" not in summary.events_pending


def test_reentry_queues_again(warehouse, build, expiring):
    sync(warehouse)
    build.ledger(expiring, "dr", "redeem", 100, AS_OF + 2 * DAY)
    sync(warehouse, 3, run_id="run-2")
    build.ledger(expiring, "cr", "reward", 50, AS_OF + 3 * DAY, expire_at=AS_OF + 20 * DAY)

    sync(warehouse, 4, run_id="run-3")

    items = entry_items(warehouse)
    assert len(items) == 2
    assert items[1]["payload"]["eventTime"] == "2026-12-05T00:00:00+0530"


def test_disabled_entry_event_not_queued(warehouse, expiring):
    sync(warehouse, disabled_events=["entered:coins_expiring_soon"])

    assert entry_items(warehouse) == []


def test_entry_without_customer_id_skipped(warehouse, build):
    lead = build.customer("Anonymous", customer_id=None)
    build.ledger(lead, "cr", "reward", 100, AS_OF - 300 * DAY, expire_at=AS_OF + 10 * DAY)

    sync(warehouse)

    assert [(item["status"], item["reason"]) for item in entry_items(warehouse)] == [
        ("skipped", "lead has no customer id")
    ]


def test_old_entry_not_queued(warehouse, expiring):
    refresh_profiles(warehouse, SyncSettings(), AS_OF)
    refresh_profiles(warehouse, SyncSettings(), AS_OF + 8 * DAY)

    queue_all(warehouse, SyncSettings(), AS_OF + 8 * DAY, "late-run")

    assert entry_items(warehouse) == []


def test_birthday_entry_event(warehouse, build):
    build.customer("Leap", customer_id="shopify-7", dob=date(1996, 2, 29))
    as_of = AS_OF.replace(year=2027, month=2, day=1)
    settings = SyncSettings()
    refresh_profiles(warehouse, settings, as_of)

    queue_all(warehouse, settings, as_of, "run-1")

    payload = entry_items(warehouse, "entered:birthday_this_month")[0]["payload"]
    assert payload["eventName"] == "Birthday Reward Live"
    assert payload["eventData"]["birthday"] == "2027-02-28T00:00:00+0530"


def test_segment_attributes_in_user_payload(warehouse, build, expiring):
    build.customer("Other", customer_id="shopify-43")

    sync(warehouse)

    assert user_attributes(warehouse, "42")["loyalty_has_coins_expiring_soon"] is True
    assert user_attributes(warehouse, "42")["loyalty_vip"] is False
    assert user_attributes(warehouse, "43")["loyalty_has_coins_expiring_soon"] is False


def test_leaving_segment_updates_attribute(warehouse, build, expiring):
    sync(warehouse)
    build.ledger(expiring, "dr", "redeem", 100, AS_OF + DAY)

    sync(warehouse, 2, run_id="run-2")

    assert user_attributes(warehouse, "42")["loyalty_has_coins_expiring_soon"] is False


NEW_SEGMENT = """\
-- name: big_balance
-- description: Holds at least `minimum` coins.
-- attribute: loyalty_big_balance (boolean)
-- parameter: minimum (integer, default 500): Coins that count as a big balance.
-- entry event: Big Balance Reached
-- event data: coins (number, from coin_balance): Coin balance at as_of.
SELECT workspace_id, lead_id, coin_balance FROM loyalty.customer_profile WHERE coin_balance >= %(minimum)s
"""

# Runs derive and queue in a fresh interpreter, where the catalog reads the segment folder named by
# the environment, as a deployment that adds a segment file would.
SUBPROCESS_SCRIPT = textwrap.dedent("""
    import sys
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import psycopg

    from loyalty_sync import tasks
    from loyalty_sync.settings import SyncSettings

    as_of = datetime(2026, 12, 1, tzinfo=ZoneInfo("Asia/Kolkata"))
    settings = SyncSettings.from_mapping({"segment_parameters": {"big_balance": {"minimum": 400}}})
    with psycopg.connect(sys.argv[1], autocommit=True) as conn:
        tasks.derive(conn, settings, as_of)
        tasks.queue(conn, settings, as_of, "subprocess-run")
""")


def test_new_segment_file_picked_up(warehouse, build, database_url, tmp_path):
    folder = tmp_path / "segments"
    shutil.copytree(default_segment_folder(), folder)
    (folder / "big_balance.sql").write_text(NEW_SEGMENT)
    rich = build.customer("Rich", customer_id="shopify-77")
    build.ledger(rich, "cr", "reward", 450, AS_OF - 3 * DAY)
    build.customer("Poor", customer_id="shopify-78")

    result = subprocess.run(
        [sys.executable, "-c", SUBPROCESS_SCRIPT, database_url],
        env={**os.environ, SEGMENT_FOLDER_VARIABLE: str(folder), "PYTHONPATH": str(REPO_ROOT / "plugins")},
        capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert warehouse.execute(
        "SELECT lead_id FROM loyalty.segment_member WHERE segment = 'big_balance'"
    ).fetchall() == [(rich,)]
    assert user_attributes(warehouse, "77")["loyalty_big_balance"] is True
    assert user_attributes(warehouse, "78")["loyalty_big_balance"] is False
    events = [item["payload"] for item in entry_items(warehouse, "entered:big_balance")]
    assert events == [{"userId": "77", "eventName": "Big Balance Reached", "eventTime": "2026-12-01T00:00:00+0530",
                       "eventData": {"coins": 450}}]
