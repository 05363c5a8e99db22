"""Membership history and daily counts across run days: entries, exits, reruns, backfills, removed segments."""

from __future__ import annotations

import logging
import shutil
from datetime import date, timedelta

import psycopg
import pytest

from loyalty_sync.derive.profile import refresh_profiles
from loyalty_sync.derive.segments import default_segment_folder, load_segment_set
from loyalty_sync.settings import SyncSettings
from staging_builder import AS_OF, Builder

DAY = timedelta(days=1)
RUN_DAY = AS_OF.date()


@pytest.fixture
def build(warehouse) -> Builder:
    return Builder(warehouse)


def refresh(conn: psycopg.Connection, days_after: int = 0, **kwargs) -> dict[str, int]:
    return refresh_profiles(conn, SyncSettings(), AS_OF + days_after * DAY, **kwargs)


def stays(conn: psycopg.Connection, segment: str = "reviewed_recently") -> list[tuple[date, date | None]]:
    rows = conn.execute(
        "SELECT entered_on, left_on FROM loyalty.segment_membership_history WHERE segment = %s ORDER BY entered_on",
        (segment,),
    ).fetchall()
    return [tuple(row) for row in rows]


def day_counts(conn: psycopg.Connection, segment: str = "reviewed_recently") -> list[tuple[date, int, int, int]]:
    rows = conn.execute(
        "SELECT as_of_date, members, entered, exited FROM loyalty.segment_day WHERE segment = %s ORDER BY as_of_date",
        (segment,),
    ).fetchall()
    return [tuple(row) for row in rows]


@pytest.fixture
def reviewer(build):
    """A lead in reviewed_recently (30 days) on the first two run days and out on the third."""
    lead = build.customer("Reviewer")
    build.review(lead, AS_OF - 29 * DAY)
    return lead


def test_entry_recorded_on_run_day(warehouse, reviewer):
    refresh(warehouse)

    assert stays(warehouse) == [(RUN_DAY, None)]
    assert day_counts(warehouse) == [(RUN_DAY, 1, 1, 0)]


def test_still_member_next_day_no_entry(warehouse, reviewer):
    refresh(warehouse)

    refresh(warehouse, 1)

    assert stays(warehouse) == [(RUN_DAY, None)]
    assert day_counts(warehouse)[-1] == (RUN_DAY + DAY, 1, 0, 0)


def test_exit_recorded_on_run_day(warehouse, reviewer):
    refresh(warehouse)
    refresh(warehouse, 1)

    refresh(warehouse, 2)

    assert stays(warehouse) == [(RUN_DAY, RUN_DAY + 2 * DAY)]
    assert day_counts(warehouse)[-1] == (RUN_DAY + 2 * DAY, 0, 0, 1)


def test_reentry_starts_new_stay(warehouse, build, reviewer):
    refresh(warehouse)
    refresh(warehouse, 2)
    build.review(reviewer, AS_OF + 2 * DAY + timedelta(hours=5))

    refresh(warehouse, 3)

    assert stays(warehouse) == [(RUN_DAY, RUN_DAY + 2 * DAY), (RUN_DAY + 3 * DAY, None)]


def test_same_day_rerun_same_history(warehouse, reviewer):
    refresh(warehouse)
    refresh(warehouse, 2)
    first = (stays(warehouse), day_counts(warehouse))

    refresh(warehouse, 2)

    assert (stays(warehouse), day_counts(warehouse)) == first


def test_rerun_after_data_change_rerecords_day(warehouse, build):
    lead = build.customer("Late")
    refresh(warehouse)
    assert stays(warehouse) == []
    build.review(lead, AS_OF - DAY)

    refresh(warehouse)

    assert stays(warehouse) == [(RUN_DAY, None)]
    assert day_counts(warehouse) == [(RUN_DAY, 1, 1, 0)]


def test_rerun_undoes_exit_of_that_day(warehouse, build, reviewer):
    refresh(warehouse)
    refresh(warehouse, 2)
    build.review(reviewer, AS_OF + DAY)

    refresh(warehouse, 2)

    assert stays(warehouse) == [(RUN_DAY, None)]


def test_backfill_leaves_history_alone(warehouse, reviewer, caplog):
    refresh(warehouse, 2)
    first = (stays(warehouse), day_counts(warehouse))

    with caplog.at_level(logging.WARNING, logger="loyalty_sync.derive.membership"):
        refresh(warehouse)

    assert (stays(warehouse), day_counts(warehouse)) == first
    assert "leaves history and daily counts alone" in caplog.text
    assert warehouse.execute("SELECT count(*) FROM loyalty.segment_member WHERE segment = 'reviewed_recently'").fetchone()[0] == 1


def test_counts_per_workspace_include_empty(warehouse, build):
    build.customer("Nobody")

    refresh(warehouse)

    counts = warehouse.execute("SELECT segment, members FROM loyalty.segment_day ORDER BY segment").fetchall()
    assert len(counts) == warehouse.execute("SELECT count(*) FROM loyalty.segment").fetchone()[0]
    assert all(members == 0 for _, members in counts)


def test_removed_segment_members_dropped(warehouse, reviewer, tmp_path):
    refresh(warehouse)
    folder = tmp_path / "segments"
    shutil.copytree(default_segment_folder(), folder)
    (folder / "reviewed_recently.sql").unlink()

    refresh(warehouse, 1, segment_set=load_segment_set(SyncSettings(), folder))

    assert warehouse.execute("SELECT count(*) FROM loyalty.segment_member WHERE segment = 'reviewed_recently'").fetchone()[0] == 0
    assert "reviewed_recently" not in {row[0] for row in warehouse.execute("SELECT segment FROM loyalty.segment")}
    assert stays(warehouse) == [(RUN_DAY, None)]


def test_registry_records_parameters(warehouse, build):
    build.customer("Someone")

    refresh_profiles(warehouse, SyncSettings.from_mapping({"segment_parameters": {"idle_coins": {"days": 45}}}), AS_OF)

    parameters = warehouse.execute("SELECT parameters FROM loyalty.segment WHERE segment = 'idle_coins'").fetchone()[0]
    assert parameters == {"days": 45}
    recorded = warehouse.execute(
        "SELECT DISTINCT parameters FROM loyalty.segment_day WHERE segment = 'idle_coins'"
    ).fetchall()
    assert recorded == [({"days": 45},)]
