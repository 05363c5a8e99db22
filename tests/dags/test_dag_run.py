"""The whole DAG through ``dag.test()`` on the bundled sample, against Postgres and the stand-in.

The expected events and users are computed here straight from the sample CSV files, independently of
the pipeline's SQL, and compared with what reached the stand-in. Segment entry events are checked
against the membership history the run recorded, and the birthday ones against the CSV files too.
"""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from loyalty_sync.derive.segments import default_segment_folder, load_segments
from loyalty_sync.paths import SAMPLE_EXPORTS_DIR

IST = ZoneInfo("Asia/Kolkata")
RUN_DATE = datetime(2026, 12, 1, 2, 0, tzinfo=IST)
AS_OF = datetime(2026, 12, 1, 0, 0, tzinfo=IST)
OLDEST_SENT = AS_OF - timedelta(days=7)
TEST_DOMAIN = "qa.nector-test.in"
SETTINGS = {"export_root": str(SAMPLE_EXPORTS_DIR), "test_account_email_domains": [TEST_DOMAIN]}


def read_latest(file_name: str, key: str, version: str) -> dict[str, dict[str, str]]:
    """Rows of ``file_name`` across the sample's exports, newest version per key; unparseable rows dropped."""
    latest: dict[str, dict[str, str]] = {}
    for path in sorted(SAMPLE_EXPORTS_DIR.glob(f"*/*/{file_name}")):
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                row = {name: (value or "").strip() for name, value in row.items()}
                stamp = parse_time(row.get(version, ""))
                if stamp is None or not row.get(key):
                    continue
                current = latest.get(row[key])
                if current is None or stamp > parse_time(current[version]):
                    latest[row[key]] = row
    return latest


def parse_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=IST)


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def webengage_time(value: datetime) -> str:
    return value.astimezone(IST).strftime("%Y-%m-%dT%H:%M:%S%z")


def is_date_or_empty(text: str) -> bool:
    try:
        return not text or bool(date.fromisoformat(text))
    except ValueError:
        return False


def eligible_customers() -> dict[str, dict[str, str]]:
    """Leads that become WebEngage users: a valid record with a customer id, not a test account, created
    before as_of."""
    customers = read_latest("customers.csv", "lead_id", "updated_at")
    return {
        lead_id: row
        for lead_id, row in customers.items()
        if is_uuid(lead_id)
        and is_date_or_empty(row["dob"])
        and row["customer_id"]
        and not row["email"].lower().endswith("@" + TEST_DOMAIN)
        and parse_time(row["created_at"]) < AS_OF
    }


def ledger_filter(operation: str, type_: str) -> Callable[[dict[str, str]], bool]:
    def accept(row: dict[str, str]) -> bool:
        try:
            amount_ok = float(row["amount"]) >= 0
        except ValueError:
            amount_ok = False
        return amount_ok and row["operation"] == operation and row["type"] == type_ and row["status"] in ("", "success")

    return accept


# WebEngage event name -> (file, id column, lead column, time column, version column, row filter).
EVENT_SOURCES: dict[str, tuple[str, str, str, str, str, Callable[[dict[str, str]], bool]]] = {
    "Points Earned": ("wallet_transactions.csv", "wallettransaction_id", "lead_id", "created_at", "updated_at",
                      ledger_filter("cr", "reward")),
    "Points Redeemed": ("wallet_transactions.csv", "wallettransaction_id", "lead_id", "created_at", "updated_at",
                        ledger_filter("dr", "redeem")),
    "Reward Unlocked": ("coupons.csv", "coupon_id", "lead_id", "created_at", "updated_at",
                        lambda row: parse_time(row["expire_at"]) is not None or not row["expire_at"]),
    "Referral Completed": ("referrals.csv", "referral_id", "referred_by_lead_id", "completed_at", "updated_at",
                           lambda row: row["status"] == "completed"),
    "Review Submitted": ("reviews.csv", "review_id", "lead_id", "created_at", "updated_at",
                         lambda row: row["rating"].isdigit() and 1 <= int(row["rating"]) <= 5),
    "Tier Changed": ("tier_changes.csv", "event_id", "lead_id", "changed_at", "changed_at", lambda row: True),
}


def expected_events() -> set[tuple[str, str, str]]:
    customers = eligible_customers()
    expected = set()
    for event_name, (file_name, key, lead_column, time_column, version, accept) in EVENT_SOURCES.items():
        for row in read_latest(file_name, key, version).values():
            occurred = parse_time(row[time_column])
            customer = customers.get(row[lead_column])
            if customer is None or occurred is None or not accept(row):
                continue
            if OLDEST_SENT <= occurred < AS_OF:
                user_id = customer["customer_id"].split("-", 1)[1]
                expected.add((user_id, event_name, webengage_time(occurred)))
    return expected


# Entry events of segments: one per lead entering a segment on the run day, at the start of that day.
# Read from the segment files, so that a segment a merchant adds counts as an entry, not as activity.
ENTRY_EVENT_NAMES = {segment.entry_event for segment in load_segments(default_segment_folder()) if segment.entry_event}


def recorded_entries(warehouse) -> set[tuple[str, str, str]]:
    """Entry events the membership history calls for: entries on the run day of leads with a customer id."""
    rows = warehouse.execute(
        """
        SELECT profile.user_id, segment.entry_event
        FROM loyalty.segment_membership_history AS stay
        JOIN loyalty.segment AS segment USING (segment)
        JOIN loyalty.customer_profile AS profile USING (workspace_id, lead_id)
        WHERE stay.entered_on = %s AND segment.entry_event IS NOT NULL AND profile.user_id IS NOT NULL
        """,
        (AS_OF.date(),),
    ).fetchall()
    assert rows, "the sample has no segment entries with an entry event"
    return {(user_id, event_name, webengage_time(AS_OF)) for user_id, event_name in rows}


def expected_birthday_events() -> set[tuple[str, str, str]]:
    """Birthday Reward Live for every eligible customer born in December, the month of as_of."""
    return {
        (row["customer_id"].split("-", 1)[1], "Birthday Reward Live", webengage_time(AS_OF))
        for row in eligible_customers().values()
        if row["dob"] and date.fromisoformat(row["dob"]).month == AS_OF.month
    }


@pytest.fixture
def sample_run_environment(airflow_db, warehouse, warehouse_conn_env, webengage_conn_env, monkeypatch) -> Iterator:
    monkeypatch.setenv("AIRFLOW_VAR_LOYALTY_SYNC_SETTINGS", json.dumps(SETTINGS))
    yield webengage_conn_env


@pytest.fixture
def dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags")).dags["nector_webengage_sync"]


def test_sample_run_delivers_expected_then_nothing(sample_run_environment, dag, warehouse):
    standin = sample_run_environment

    first = dag.test(logical_date=RUN_DATE)

    assert first.state == "success"
    received = [(e["userId"], e["eventName"], e["eventTime"]) for e in standin.accepted_events()]
    assert len(received) == len(set(received)), "an event reached WebEngage twice"
    activity = {event for event in received if event[1] not in ENTRY_EVENT_NAMES}
    assert activity == expected_events()
    entries = {event for event in received if event[1] in ENTRY_EVENT_NAMES}
    assert entries == recorded_entries(warehouse)
    assert {event for event in entries if event[1] == "Birthday Reward Live"} == expected_birthday_events()
    received_users = sorted(user["userId"] for user in standin.accepted_users())
    expected_users = sorted(row["customer_id"].split("-", 1)[1] for row in eligible_customers().values())
    assert received_users == expected_users
    assert standin.violations() == []
    calls_after_first = sum(standin.call_counts().values())

    second = dag.test(logical_date=RUN_DATE)

    assert second.state == "success"
    assert sum(standin.call_counts().values()) == calls_after_first


def test_sample_run_records_bad_rows(sample_run_environment, dag, warehouse):
    dag.test(logical_date=RUN_DATE)

    rejected = warehouse.execute(
        "SELECT f.entity, r.column_name, r.value FROM sync.rejected_row r JOIN sync.export_file f USING (export_file_id) "
        "ORDER BY 1, 2"
    ).fetchall()
    assert ("wallet_transactions", "amount", "-50") in rejected
    assert ("wallet_transactions", "operation", "credit") in rejected
    assert ("reviews", "rating", "7") in rejected
    assert ("coupons", "expire_at", "31/11/2026 10:00") in rejected
    assert len(rejected) == 7
    report = warehouse.execute("SELECT summary FROM sync.run_report").fetchone()[0]
    assert {row["segment"]: row["customers"] for row in report["segments"]}["test_accounts"] == 3
