"""The loader against a real Postgres: types, upserts, rejected rows and whole-file rejections."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from export_builder import WORKSPACE, csv_text, write_export
from loyalty_sync.ingest import loader
from loyalty_sync.ingest.loader import load_exports

LEAD_1 = "0b8e6f52-3c1a-4d7e-9f20-6a1b2c3d4e01"
LEAD_2 = "0b8e6f52-3c1a-4d7e-9f20-6a1b2c3d4e02"
TX_1 = "7d41c0aa-52e9-4b1f-8c3e-1f0e9a6b2c10"


def customer(lead_id: str = LEAD_1, **values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "workspace_id": WORKSPACE,
        "lead_id": lead_id,
        "customer_id": "shopify-7012345678901",
        "name": "Aarav Kapoor",
        "email": "aarav@example.com",
        "mobile": "9876543210",
        "country": "ind",
        "created_at": "2026-01-05T04:12:00.000Z",
        "updated_at": "2026-01-05T04:12:00.000Z",
    }
    row.update(values)
    return row


def transaction(**values: object) -> dict[str, object]:
    row: dict[str, object] = {
        "workspace_id": WORKSPACE,
        "wallettransaction_id": TX_1,
        "lead_id": LEAD_1,
        "operation": "cr",
        "type": "reward",
        "status": "success",
        "amount": "200",
        "created_at": "2026-03-14T10:05:44.000Z",
        "updated_at": "2026-03-14T10:05:44.000Z",
    }
    row.update(values)
    return row


def load(conn: psycopg.Connection, root: Path, run_id: str = "run-1", max_rejected_share: float = 1.0) -> loader.LoadSummary:
    """Load with quarantine off unless asked, so one bad record among few does not quarantine its file."""
    return load_exports(conn, root, run_id, max_rejected_share=max_rejected_share)


def test_customer_columns_typed_and_normalised(warehouse, tmp_path):
    row = customer(email="  Aarav.K@Example.COM ", mobile="098765 43210", dob="1994-08-17", email_opt_in="TRUE")
    write_export(tmp_path / "2026-11-29", {"customers.csv": csv_text("customers.csv", [row])})

    load(warehouse, tmp_path)

    stored = warehouse.execute(
        "SELECT email, mobile_e164, platform, platform_customer_id, dob::text, email_opt_in, created_at::text "
        "FROM nector.customers"
    ).fetchone()
    assert stored[0] == "aarav.k@example.com"
    assert stored[1] == "+919876543210"
    assert stored[2] == "shopify"
    assert stored[3] == "7012345678901"
    assert stored[4] == "1994-08-17"
    assert stored[5] is True
    assert stored[6].startswith("2026-01-05")


def test_timestamp_without_offset_uses_manifest_time_zone(warehouse, tmp_path):
    row = customer(created_at="2026-01-05 09:42:00", updated_at="2026-01-05 09:42:00")
    write_export(tmp_path / "2026-11-29", {"customers.csv": csv_text("customers.csv", [row])}, timezone="Asia/Kolkata")

    load(warehouse, tmp_path)

    created = warehouse.execute("SELECT created_at AT TIME ZONE 'UTC' FROM nector.customers").fetchone()[0]
    assert created.isoformat() == "2026-01-05T04:12:00"


def test_header_in_any_order_and_case(warehouse, tmp_path):
    text = "UPDATED_AT,Lead_Id,workspace_id,Created_At,NAME\n" \
           f"2026-01-05T04:12:00Z,{LEAD_1},{WORKSPACE},2026-01-05T04:12:00Z,Diya\n"
    write_export(tmp_path / "2026-11-29", {"customers.csv": text})

    load(warehouse, tmp_path)

    assert warehouse.execute("SELECT name FROM nector.customers").fetchone()[0] == "Diya"


def test_newer_version_replaces_row(warehouse, tmp_path):
    write_export(tmp_path / "a", {"customers.csv": csv_text("customers.csv", [customer(name="Old")])},
                 exported_at="2026-11-28T20:30:00Z")
    write_export(tmp_path / "b", {"customers.csv": csv_text(
        "customers.csv", [customer(name="New", updated_at="2026-02-01T00:00:00Z")])})

    load(warehouse, tmp_path)

    assert warehouse.execute("SELECT name FROM nector.customers").fetchone()[0] == "New"


@pytest.mark.parametrize("updated_at", ["2026-01-05T04:12:00.000Z", "2025-12-01T00:00:00Z"])
def test_equal_or_older_version_changes_nothing(warehouse, tmp_path, updated_at):
    write_export(tmp_path / "a", {"customers.csv": csv_text("customers.csv", [customer(name="First")])},
                 exported_at="2026-11-28T20:30:00Z")
    write_export(tmp_path / "b", {"customers.csv": csv_text(
        "customers.csv", [customer(name="Second", updated_at=updated_at)])})

    summary = load(warehouse, tmp_path)

    assert warehouse.execute("SELECT name FROM nector.customers").fetchone()[0] == "First"
    assert summary.files[1].rows_changed == 0


def test_duplicate_key_in_file_keeps_newest(warehouse, tmp_path):
    rows = [
        customer(name="Newest", updated_at="2026-03-01T00:00:00Z"),
        customer(name="Older", updated_at="2026-02-01T00:00:00Z"),
    ]
    write_export(tmp_path / "a", {"customers.csv": csv_text("customers.csv", rows)})

    load(warehouse, tmp_path)

    assert warehouse.execute("SELECT name FROM nector.customers").fetchone()[0] == "Newest"


def test_duplicate_key_tie_keeps_later_record(warehouse, tmp_path):
    rows = [customer(name="Earlier record"), customer(name="Later record")]
    write_export(tmp_path / "a", {"customers.csv": csv_text("customers.csv", rows)})

    load(warehouse, tmp_path)

    assert warehouse.execute("SELECT name FROM nector.customers").fetchone()[0] == "Later record"


BAD_TRANSACTIONS = [
    ({"amount": "-50"}, "amount", "-50", "below the minimum 0"),
    ({"created_at": "31/11/2026 10:00"}, "created_at", "31/11/2026 10:00", "invalid timestamp"),
    ({"created_at": "2026-02-30T10:00:00Z"}, "created_at", "2026-02-30T10:00:00Z", "invalid timestamp"),
    ({"lead_id": ""}, "lead_id", None, "missing required value"),
    ({"lead_id": "lead-42"}, "lead_id", "lead-42", "invalid UUID"),
    ({"operation": "credit"}, "operation", "credit", "not one of: cr, dr"),
    ({"amount": "12abc"}, "amount", "12abc", "invalid number"),
    ({"workspace_id": "other-brand"}, "workspace_id", "other-brand", "does not match the manifest"),
]


@pytest.mark.parametrize(("values", "column", "value", "reason"), BAD_TRANSACTIONS)
def test_bad_row_set_aside_with_reason(warehouse, tmp_path, values, column, value, reason):
    good = transaction(wallettransaction_id="7d41c0aa-52e9-4b1f-8c3e-1f0e9a6b2c11")
    bad = transaction(**values)
    write_export(tmp_path / "a", {"wallet_transactions.csv": csv_text("wallet_transactions.csv", [good, bad])})

    summary = load(warehouse, tmp_path)

    rejected = warehouse.execute(
        "SELECT r.record_number, r.column_name, r.value, r.reason, f.path "
        "FROM sync.rejected_row r JOIN sync.export_file f USING (export_file_id)"
    ).fetchall()
    assert len(rejected) == 1
    record_number, rejected_column, rejected_value, rejected_reason, path = rejected[0]
    assert record_number == 2
    assert rejected_column == column
    assert rejected_value == value
    assert reason in rejected_reason
    assert path == "a/wallet_transactions.csv"
    assert warehouse.execute("SELECT count(*) FROM nector.wallet_transactions").fetchone()[0] == 1
    assert summary.files[0].rows_rejected == 1


def test_same_file_twice_loads_once(warehouse, tmp_path):
    write_export(tmp_path / "a", {"customers.csv": csv_text("customers.csv", [customer()])})
    load(warehouse, tmp_path, "run-1")
    loaded_at = warehouse.execute("SELECT _loaded_at FROM nector.customers").fetchone()[0]

    second = load(warehouse, tmp_path, "run-2")

    assert [result.status for result in second.files] == ["skipped"]
    assert warehouse.execute("SELECT _loaded_at FROM nector.customers").fetchone()[0] == loaded_at
    assert warehouse.execute("SELECT count(*) FROM sync.export_file").fetchone()[0] == 1


def test_checksum_mismatch_rejects_whole_file(warehouse, tmp_path):
    write_export(tmp_path / "a", {"customers.csv": csv_text("customers.csv", [customer()])},
                 manifest_overrides={"customers.csv": {"sha256": "0" * 64}})

    summary = load(warehouse, tmp_path)

    assert summary.files[0].status == "rejected"
    assert "sha256" in summary.files[0].reason
    assert warehouse.execute("SELECT count(*) FROM nector.customers").fetchone()[0] == 0
    assert warehouse.execute("SELECT status FROM sync.export_file").fetchone()[0] == "rejected"


def test_row_count_mismatch_rejects_whole_file(warehouse, tmp_path):
    write_export(tmp_path / "a", {"customers.csv": csv_text("customers.csv", [customer()])},
                 manifest_overrides={"customers.csv": {"rows": 5}})

    summary = load(warehouse, tmp_path)

    assert summary.files[0].status == "rejected"
    assert "has 1 records but the manifest says 5" in summary.files[0].reason
    assert warehouse.execute("SELECT count(*) FROM nector.customers").fetchone()[0] == 0


def test_missing_required_column_rejects_file(warehouse, tmp_path):
    text = f"workspace_id,lead_id,created_at\n{WORKSPACE},{LEAD_1},2026-01-05T04:12:00Z\n"
    write_export(tmp_path / "a", {"customers.csv": text})

    summary = load(warehouse, tmp_path)

    assert summary.files[0].status == "rejected"
    assert "updated_at" in summary.files[0].reason
    assert warehouse.execute("SELECT count(*) FROM nector.customers").fetchone()[0] == 0


def test_broken_csv_rejects_file_naming_line(warehouse, tmp_path):
    rows = csv_text("customers.csv", [customer()])
    text = rows + f'{WORKSPACE},{LEAD_2},shopify-1,"unterminated,,,,,,,,,,,,,,,,\n'
    write_export(tmp_path / "a", {"customers.csv": text}, manifest_overrides={"customers.csv": {"rows": 2}})

    summary = load(warehouse, tmp_path)

    assert summary.files[0].status == "rejected"
    assert "line" in summary.files[0].reason
    assert warehouse.execute("SELECT count(*) FROM nector.customers").fetchone()[0] == 0


def test_crash_mid_file_leaves_nothing_then_reloads(warehouse, tmp_path, monkeypatch):
    write_export(tmp_path / "a", {"customers.csv": csv_text("customers.csv", [customer(), customer(LEAD_2)])})
    original = loader._upsert_statement

    def crash(*args, **kwargs):
        raise RuntimeError("worker died")

    monkeypatch.setattr(loader, "_upsert_statement", crash)
    with pytest.raises(RuntimeError):
        load(warehouse, tmp_path, "run-1")
    assert warehouse.execute("SELECT count(*) FROM sync.export_file").fetchone()[0] == 0
    assert warehouse.execute("SELECT count(*) FROM nector.customers").fetchone()[0] == 0

    monkeypatch.setattr(loader, "_upsert_statement", original)
    summary = load(warehouse, tmp_path, "run-2")

    assert summary.files[0].status == "loaded"
    assert warehouse.execute("SELECT count(*) FROM nector.customers").fetchone()[0] == 2


def test_exports_load_oldest_first(warehouse, tmp_path):
    # The newer export sorts first by folder name; exported_at decides the order.
    write_export(tmp_path / "a-newer", {"customers.csv": csv_text("customers.csv", [customer(name="B")])},
                 exported_at="2026-11-30T20:30:00Z")
    write_export(tmp_path / "z-older", {"customers.csv": csv_text("customers.csv", [customer(name="A")])},
                 exported_at="2026-11-29T20:30:00Z")

    summary = load(warehouse, tmp_path)

    assert [result.path for result in summary.files] == ["z-older/customers.csv", "a-newer/customers.csv"]


def test_file_not_in_manifest_rejected(warehouse, tmp_path):
    folder = write_export(tmp_path / "a", {"customers.csv": csv_text("customers.csv", [customer()])})
    (folder / "orders.csv").write_text("order_id\n1\n")

    summary = load(warehouse, tmp_path)

    rejected = [result for result in summary.files if result.status == "rejected"]
    assert [result.path for result in rejected] == ["a/orders.csv"]
    assert warehouse.execute("SELECT count(*) FROM nector.customers").fetchone()[0] == 1


def test_invalid_manifest_rejects_its_files(warehouse, tmp_path):
    folder = write_export(tmp_path / "a", {"customers.csv": csv_text("customers.csv", [customer()])})
    (folder / "manifest.json").write_text('{"workspace_id": "x"}')

    summary = load(warehouse, tmp_path)

    assert summary.files[0].status == "rejected"
    assert "manifest key" in summary.files[0].reason


def test_late_file_for_old_date_adds_only_new(warehouse, tmp_path):
    write_export(tmp_path / "2026-11-30", {"customers.csv": csv_text("customers.csv", [
        customer(name="Current", updated_at="2026-11-30T10:00:00Z")])}, exported_at="2026-11-30T20:30:00Z")
    load(warehouse, tmp_path, "run-1")
    # The export of an earlier day arrives a day late: its copy of the lead is older, its new lead is not.
    write_export(tmp_path / "2026-11-28", {"customers.csv": csv_text("customers.csv", [
        customer(name="Stale", updated_at="2026-11-28T10:00:00Z"), customer(LEAD_2, name="Late arrival")])},
        exported_at="2026-11-28T20:30:00Z")

    summary = load(warehouse, tmp_path, "run-2")

    names = dict(warehouse.execute("SELECT lead_id::text, name FROM nector.customers").fetchall())
    assert names == {LEAD_1: "Current", LEAD_2: "Late arrival"}
    assert [result.status for result in summary.files] == ["loaded", "skipped"]


def test_new_content_same_name_loads_as_version(warehouse, tmp_path):
    write_export(tmp_path / "a", {"customers.csv": csv_text("customers.csv", [customer(name="First")])})
    load(warehouse, tmp_path, "run-1")
    write_export(tmp_path / "a", {"customers.csv": csv_text(
        "customers.csv", [customer(name="Corrected", updated_at="2026-02-01T00:00:00Z")])})

    summary = load(warehouse, tmp_path, "run-2")

    assert summary.files[0].status == "loaded"
    assert warehouse.execute("SELECT name FROM nector.customers").fetchone()[0] == "Corrected"
    assert warehouse.execute("SELECT count(*) FROM sync.export_file WHERE path = 'a/customers.csv'").fetchone()[0] == 2


def test_ingest_task_fails_after_loading_the_rest(warehouse, tmp_path):
    from loyalty_sync import tasks
    from loyalty_sync.ingest.loader import IngestFailed
    from loyalty_sync.settings import SyncSettings

    write_export(tmp_path / "a", {
        "customers.csv": csv_text("customers.csv", [customer()]),
        "reviews.csv": "workspace_id,review_id\nx,y\n",
    })

    with pytest.raises(IngestFailed) as raised:
        tasks.ingest(warehouse, SyncSettings.from_mapping({"export_root": str(tmp_path)}), "run-1")

    assert "a/reviews.csv" in str(raised.value)
    assert "dismissed" in str(raised.value)
    assert warehouse.execute("SELECT count(*) FROM nector.customers").fetchone()[0] == 1


def test_dismissed_file_skipped_later(warehouse, tmp_path):
    write_export(tmp_path / "a", {"reviews.csv": "workspace_id,review_id\nx,y\n"})
    load(warehouse, tmp_path, "run-1")
    warehouse.execute("UPDATE sync.export_file SET status = 'dismissed' WHERE path = 'a/reviews.csv'")

    summary = load(warehouse, tmp_path, "run-2")

    assert [result.status for result in summary.files] == ["skipped"]


@pytest.mark.parametrize(("mobile", "country", "expected"), [
    ("9876543210", "ind", "+919876543210"),
    ("09876543210", None, "+919876543210"),
    ("+91 98765-43210", "ind", "+919876543210"),
    ("501234567", "SAU", "+966501234567"),
    ("0501234567", "are", "+971501234567"),
    ("2025550146", "usa", "+12025550146"),
    ("12345", "ind", None),
    ("9876543210", "xyz", None),
])
def test_mobile_to_e164_by_country(warehouse, mobile, country, expected):
    assert warehouse.execute("SELECT nector.to_e164(%s, %s)", (mobile, country)).fetchone()[0] == expected
