"""A dry run of the deliver stage writes the exact bulk calls and changes no delivery state."""

from __future__ import annotations

import json

from delivery_harness import DAY, DELIVERY_TABLES, quiet_hook, seed_events, sync, table_rows
from loyalty_sync import tasks
from loyalty_sync.derive.profile import refresh_profiles
from loyalty_sync.settings import SyncSettings
from staging_builder import AS_OF, Builder


def dry_run(conn, tmp_path, run_id: str, **options) -> dict:
    settings = SyncSettings(dry_run_dir=str(tmp_path))
    refresh_profiles(conn, settings, AS_OF)
    return tasks.deliver_dry_run(conn, settings, AS_OF, run_id, **options)


def segment_entry_events(conn, lead) -> int:
    """Count the open stays of ``lead`` in segments with an entry event."""
    return conn.execute(
        "SELECT count(*) FROM loyalty.segment_membership_history AS stay JOIN loyalty.segment USING (segment) "
        "WHERE segment.entry_event IS NOT NULL AND stay.lead_id = %s AND stay.left_on IS NULL",
        (lead,),
    ).fetchone()[0]


def read_lines(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_dry_run_leaves_tables_unchanged(warehouse, webengage_conn_env, tmp_path):
    standin = webengage_conn_env
    build = Builder(warehouse)
    seed_events(build, customers=30, events_each=2)
    sync(warehouse, quiet_hook(), "run-1")
    lead = build.customer("Newcomer")
    build.ledger(lead, "cr", "reward", 500, AS_OF - DAY)
    warehouse.execute("UPDATE sync.webengage_outbox SET status = 'dead', reason = 'test' "
                      "WHERE item_key = (SELECT min(item_key) FROM sync.webengage_outbox WHERE kind = 'event')")
    refresh_profiles(warehouse, SyncSettings(), AS_OF)
    before = {table: table_rows(warehouse, table) for table in DELIVERY_TABLES}
    calls_before = standin.call_counts()

    result = dry_run(warehouse, tmp_path, "run-2", full_resync=True, redrive_dead_letters=True)

    for table in DELIVERY_TABLES:
        assert table_rows(warehouse, table) == before[table], f"{table} changed"
    assert standin.call_counts() == calls_before
    assert result["users"] == 31
    # The newcomer's Points Earned and the redriven dead letter, plus any segment entry of the newcomer.
    # The bundled segments give it none, but a segment a merchant adds may.
    assert result["events"] == 2 + segment_entry_events(warehouse, lead)
    assert result["calls"] == 3


def test_dry_run_file_matches_real_delivery(warehouse, webengage_conn_env, tmp_path):
    standin = webengage_conn_env
    seed_events(Builder(warehouse), customers=30, events_each=2)

    result = dry_run(warehouse, tmp_path, "run-1")
    sync(warehouse, quiet_hook(), "run-1")

    lines = read_lines(result["dry_run_file"])
    assert [line["resource"] for line in lines] == ["bulk-users", "bulk-users", "bulk-events", "bulk-events",
                                                    "bulk-events"]
    written_users = [user for line in lines if line["kind"] == "user" for user in line["body"]["users"]]
    written_events = [event for line in lines if line["kind"] == "event" for event in line["body"]["events"]]
    assert written_users == standin.accepted_users()
    assert written_events == standin.accepted_events()
    keys = [key for line in lines for key in line["item_keys"]]
    sent = [row[0] for row in warehouse.execute(
        "SELECT item_key FROM sync.webengage_outbox WHERE status = 'sent' ORDER BY kind = 'event', sequence")]
    assert keys == sent
    assert {line["webengage_conn_id"] for line in lines} == {"webengage"}


def test_dry_run_file_named_after_run(warehouse, webengage_conn_env, tmp_path):
    seed_events(Builder(warehouse), customers=1, events_each=1)

    result = dry_run(warehouse, tmp_path, "manual__2026-12-01T02:00:00+05:30")

    assert result["dry_run_file"] == str(tmp_path / "webengage-dry-run-manual__2026-12-01T02_00_00_05_30.jsonl")
