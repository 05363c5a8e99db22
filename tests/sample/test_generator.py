"""Tests of the sample export generator: determinism, contract conformance, consistency and segments.

Most tests read one default generation (seed 20261130, anchor date 2026-11-30, 300 customers) and
compute every property from the written CSV files, not from the generator's internals.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import uuid
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest

from loyalty_sync.contract import ENTITIES, ENTITIES_BY_FILE, Column, Entity
from loyalty_sync.sample.__main__ import main
from loyalty_sync.sample.generator import BAD_ROW_KINDS, GenerationSummary, generate_exports

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED_SAMPLE = REPO_ROOT / "include" / "sample_exports"
WORKSPACE = "shopify-demo-brand"
HISTORY_DAY = "2026-11-29"
DELTA_DAY = "2026-11-30"

# End of the anchor date 2026-11-30 in IST, the time as of which the segments are computed.
AS_OF = datetime(2026, 12, 1, tzinfo=timezone(timedelta(hours=5, minutes=30)))
HISTORY_END = AS_OF - timedelta(days=1)
TIER_RANKS = {"Bronze": 1, "Silver": 2, "Gold": 3, "Platinum": 4}
MINIMUM_SEGMENT_LEADS = 3

TIMESTAMP_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
NUMERIC_PATTERN = re.compile(r"-?\d+(\.\d{1,2})?")
INTEGER_PATTERN = re.compile(r"-?\d+")


# --- helpers ------------------------------------------------------------------------------------------

def parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def read_records(folder: Path, entity: Entity) -> list[tuple[int, dict[str, str]]]:
    """Return (record number, row) for every data row of the entity's file."""
    with (folder / entity.file_name).open(encoding="utf-8", newline="") as handle:
        return list(enumerate(csv.DictReader(handle), start=1))


def value_problem(column: Column, raw: str) -> str | None:
    """Return why ``raw`` breaks the column's contract, or None when it fits."""
    value = raw.strip()
    if value == "":
        return f"{column.name} is required" if column.required else None
    if column.type == "uuid" and not UUID_PATTERN.fullmatch(value):
        return f"{column.name} {value!r} is not a UUID"
    if column.type == "boolean" and value not in ("true", "false"):
        return f"{column.name} {value!r} is not a boolean"
    if column.type == "date":
        if not DATE_PATTERN.fullmatch(value):
            return f"{column.name} {value!r} is not YYYY-MM-DD"
        try:
            date.fromisoformat(value)
        except ValueError:
            return f"{column.name} {value!r} is not a valid date"
    if column.type == "timestamptz":
        if not TIMESTAMP_PATTERN.fullmatch(value):
            return f"{column.name} {value!r} is not an ISO 8601 UTC timestamp with milliseconds"
        try:
            parse_timestamp(value)
        except ValueError:
            return f"{column.name} {value!r} is not a valid timestamp"
    if column.type in ("numeric", "integer"):
        pattern = NUMERIC_PATTERN if column.type == "numeric" else INTEGER_PATTERN
        if not pattern.fullmatch(value):
            return f"{column.name} {value!r} is not a plain {column.type}"
        try:
            number = Decimal(value)
        except InvalidOperation:
            return f"{column.name} {value!r} is not a number"
        if column.min_value is not None and number < Decimal(str(column.min_value)):
            return f"{column.name} {value} is below {column.min_value}"
        if column.max_value is not None and number > Decimal(str(column.max_value)):
            return f"{column.name} {value} is above {column.max_value}"
    if column.enum is not None and value.lower() not in column.enum:
        return f"{column.name} {value!r} is not one of {column.enum}"
    return None


def row_problems(entity: Entity, row: dict[str, str]) -> list[str]:
    problems = []
    for column in entity.columns:
        problem = value_problem(column, row[column.name])
        if problem is not None:
            problems.append(problem)
    return problems


class Sample:
    """One generated workspace folder, read back from disk."""

    def __init__(self, root: Path, summary: GenerationSummary) -> None:
        self.root = root
        self.summary = summary
        self.workspace = root / WORKSPACE
        self.history = self.workspace / HISTORY_DAY
        self.delta = self.workspace / DELTA_DAY
        self.bad = {(bad.file, bad.record) for bad in summary.bad_rows}

    def valid_rows(self, folder: Path, entity: Entity) -> list[dict[str, str]]:
        return [row for number, row in read_records(folder, entity)
                if (entity.file_name, number) not in self.bad or folder != self.history]

    def merged(self, entity_name: str, *, include_delta: bool = True) -> list[dict[str, str]]:
        """Upsert the valid rows of history, then of delta, by natural key. A newer version value wins."""
        entity = next(entity for entity in ENTITIES if entity.name == entity_name)
        latest: dict[tuple[str, ...], dict[str, str]] = {}
        folders = [self.history, self.delta] if include_delta else [self.history]
        for folder in folders:
            for row in self.valid_rows(folder, entity):
                key = tuple(row[name] for name in entity.natural_key)
                current = latest.get(key)
                version = parse_timestamp(row[entity.version_column])
                if current is None or version > parse_timestamp(current[entity.version_column]):
                    latest[key] = row
        return list(latest.values())


def fifo_lots(ledger: list[dict[str, str]]) -> dict[str, list[list]]:
    """Return the credit lots of each lead as [expire_at, coins left], using ``replay_ledger``."""
    lots, _ = replay_ledger(ledger)
    return lots


def replay_ledger(ledger: list[dict[str, str]]) -> tuple[dict[str, list[list]], list[str]]:
    """Replay the success rows of each lead in created_at order, consuming the credits that expire first.

    Returns the credit lots per lead as [expire_at, coins left], and the ids of ``expire`` debits whose
    amount differs from the coins left in the credits due by their created_at.
    """
    lots: dict[str, list[list]] = defaultdict(list)
    mismatched_expiries = []
    rows = sorted((row for row in ledger if row["status"] == "success"), key=lambda row: row["created_at"])
    for row in rows:
        amount = int(Decimal(row["amount"]))
        lead_lots = lots[row["lead_id"]]
        if row["operation"] == "cr":
            lead_lots.append([parse_timestamp(row["expire_at"]), amount])
            continue
        if row["type"] == "expire":
            moment = parse_timestamp(row["created_at"])
            due = sum(coins for expire_at, coins in lead_lots if expire_at <= moment)
            if due != amount:
                mismatched_expiries.append(row["wallettransaction_id"])
        for lot in sorted(lead_lots, key=lambda lot: lot[0]):
            consumed = min(lot[1], amount)
            lot[1] -= consumed
            amount -= consumed
        assert amount == 0, f"debit {row['wallettransaction_id']} exceeds the credits of lead {row['lead_id']}"
    return lots, mismatched_expiries


def ledger_balances(ledger: list[dict[str, str]]) -> dict[str, int]:
    balances: dict[str, int] = defaultdict(int)
    for row in ledger:
        if row["status"] == "success":
            sign = 1 if row["operation"] == "cr" else -1
            balances[row["lead_id"]] += sign * int(Decimal(row["amount"]))
    return balances


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# --- fixtures -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    root = tmp_path_factory.mktemp("default")
    return Sample(root, generate_exports(root))


@pytest.fixture(scope="module")
def clean_sample(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    root = tmp_path_factory.mktemp("clean")
    return Sample(root, generate_exports(root, bad_rows=False))


# --- determinism --------------------------------------------------------------------------------------

def test_same_seed_identical_bytes(sample: Sample, tmp_path: Path) -> None:
    generate_exports(tmp_path)
    assert folder_bytes(tmp_path / WORKSPACE) == folder_bytes(sample.workspace)


def test_different_seed_differs(sample: Sample, tmp_path: Path) -> None:
    generate_exports(tmp_path, seed=7)
    other = folder_bytes(tmp_path / WORKSPACE)
    mine = folder_bytes(sample.workspace)
    assert other.keys() == mine.keys()
    assert other[f"{HISTORY_DAY}/customers.csv"] != mine[f"{HISTORY_DAY}/customers.csv"]
    assert other[f"{HISTORY_DAY}/wallet_transactions.csv"] != mine[f"{HISTORY_DAY}/wallet_transactions.csv"]


def test_committed_sample_matches_generation(sample: Sample) -> None:
    committed = COMMITTED_SAMPLE / WORKSPACE
    assert committed.is_dir(), f"{committed} is missing; run python -m loyalty_sync.sample --out {COMMITTED_SAMPLE}"
    assert folder_bytes(committed) == folder_bytes(sample.workspace), (
        "include/sample_exports differs from a fresh generation; "
        "regenerate it with: PYTHONPATH=plugins python -m loyalty_sync.sample --out include/sample_exports"
    )


# --- files and manifests ------------------------------------------------------------------------------

def test_folders_have_every_entity_file(sample: Sample) -> None:
    for folder in (sample.history, sample.delta):
        names = sorted(path.name for path in folder.iterdir())
        assert names == sorted([entity.file_name for entity in ENTITIES] + ["manifest.json"])


def test_headers_follow_contract_order(sample: Sample) -> None:
    for folder in (sample.history, sample.delta):
        for entity in ENTITIES:
            with (folder / entity.file_name).open(encoding="utf-8", newline="") as handle:
                header = next(csv.reader(handle))
            assert header == [column.name for column in entity.columns], f"{folder.name}/{entity.file_name}"


def test_manifest_rows_match_files(sample: Sample) -> None:
    for folder in (sample.history, sample.delta):
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        assert list(manifest["files"]) == [entity.file_name for entity in ENTITIES]
        for name, entry in manifest["files"].items():
            assert entry["rows"] == len(read_records(folder, ENTITIES_BY_FILE[name])), f"{folder.name}/{name}"


def test_manifest_sha256_matches_files(sample: Sample) -> None:
    for folder in (sample.history, sample.delta):
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        for name, entry in manifest["files"].items():
            assert entry["sha256"] == hashlib.sha256((folder / name).read_bytes()).hexdigest(), f"{folder.name}/{name}"


def test_manifest_header_fields(sample: Sample) -> None:
    expected = {
        HISTORY_DAY: "2026-11-29T20:30:00.000Z",
        DELTA_DAY: "2026-11-30T20:30:00.000Z",
    }
    for day, exported_at in expected.items():
        manifest = json.loads((sample.workspace / day / "manifest.json").read_text(encoding="utf-8"))
        assert manifest["contract_version"] == "1"
        assert manifest["workspace_id"] == WORKSPACE
        assert manifest["export_id"] == f"{WORKSPACE}-{day}"
        assert manifest["exported_at"] == exported_at
        assert manifest["timezone"] == "Asia/Kolkata"
        assert manifest["currency_code"] == "INR"
        assert manifest["coin_name"] == "Coins"
        assert manifest["coin_expiry_days"] == 365


def test_summary_rows_match_manifest(sample: Sample) -> None:
    for export in sample.summary.exports:
        manifest = json.loads((export.folder / "manifest.json").read_text(encoding="utf-8"))
        assert export.rows == {name: entry["rows"] for name, entry in manifest["files"].items()}


def test_files_use_unix_newlines(sample: Sample) -> None:
    for folder in (sample.history, sample.delta):
        for entity in ENTITIES:
            assert b"\r\n" not in (folder / entity.file_name).read_bytes(), f"{folder.name}/{entity.file_name}"


# --- contract conformance -----------------------------------------------------------------------------

def test_valid_values_parse_by_type(sample: Sample) -> None:
    for folder in (sample.history, sample.delta):
        for entity in ENTITIES:
            for number, row in read_records(folder, entity):
                if folder == sample.history and (entity.file_name, number) in sample.bad:
                    continue
                assert row_problems(entity, row) == [], f"{folder.name}/{entity.file_name} record {number}"


def test_natural_keys_unique_per_file(sample: Sample) -> None:
    for folder in (sample.history, sample.delta):
        for entity in ENTITIES:
            keys = [tuple(row[name] for name in entity.natural_key) for row in sample.valid_rows(folder, entity)]
            assert len(keys) == len(set(keys)), f"{folder.name}/{entity.file_name}"


def test_ids_are_uuid_version_4(sample: Sample) -> None:
    for entity in ENTITIES:
        uuid_columns = [column.name for column in entity.columns if column.type == "uuid"]
        for row in sample.merged(entity.name):
            for name in uuid_columns:
                if row[name]:
                    assert uuid.UUID(row[name]).version == 4, f"{entity.name}.{name} {row[name]}"


def test_tier_change_event_ids_are_uuids(sample: Sample) -> None:
    for row in sample.merged("tier_changes"):
        assert uuid.UUID(row["event_id"]).version == 4


# --- deliberately bad rows ----------------------------------------------------------------------------

def test_each_bad_kind_present(sample: Sample) -> None:
    kinds = [bad.kind for bad in sample.summary.bad_rows]
    assert sorted(kinds) == sorted(BAD_ROW_KINDS)
    assert 6 <= len(kinds) <= 10


def test_bad_rows_only_in_history(sample: Sample) -> None:
    for bad in sample.summary.bad_rows:
        assert bad.export_id == f"{WORKSPACE}-{HISTORY_DAY}"


def test_bad_rows_spread_over_files(sample: Sample) -> None:
    files = {bad.file for bad in sample.summary.bad_rows}
    assert len(files) >= 4


def test_bad_rows_break_contract(sample: Sample) -> None:
    for bad in sample.summary.bad_rows:
        if bad.kind == "stale_duplicate":
            continue
        entity = ENTITIES_BY_FILE[bad.file]
        row = dict(read_records(sample.history, entity))[bad.record]
        problems = row_problems(entity, row)
        assert len(problems) == 1, f"{bad}: {problems}"
        assert problems[0].startswith(bad.column), f"{bad}: {problems}"


def test_stale_duplicate_is_older(sample: Sample) -> None:
    (bad,) = [bad for bad in sample.summary.bad_rows if bad.kind == "stale_duplicate"]
    entity = ENTITIES_BY_FILE[bad.file]
    records = dict(read_records(sample.history, entity))
    stale = records[bad.record]
    originals = [(number, row) for number, row in records.items()
                 if row["wallettransaction_id"] == stale["wallettransaction_id"] and number != bad.record]
    assert len(originals) == 1
    number, original = originals[0]
    assert number < bad.record
    assert row_problems(entity, stale) == []
    assert parse_timestamp(stale["updated_at"]) < parse_timestamp(original["updated_at"])


def test_expected_bad_values_present(sample: Sample) -> None:
    values = {}
    for bad in sample.summary.bad_rows:
        entity = ENTITIES_BY_FILE[bad.file]
        values[bad.kind] = dict(read_records(sample.history, entity))[bad.record][bad.column]
    assert values["negative_amount"] == "-50"
    assert values["unparseable_timestamp"] == "31/11/2026 10:00"
    assert values["missing_required"] == ""
    assert values["unknown_enum"] == "credit"
    assert values["out_of_range"] == "7"
    assert values["invalid_date"] == "1996-02-30"
    assert not UUID_PATTERN.fullmatch(values["invalid_uuid"])


def test_no_bad_rows_option(clean_sample: Sample) -> None:
    assert clean_sample.summary.bad_rows == ()
    for entity in ENTITIES:
        for number, row in read_records(clean_sample.history, entity):
            assert row_problems(entity, row) == [], f"{entity.file_name} record {number}"


def test_bad_rows_are_only_extras(sample: Sample, clean_sample: Sample) -> None:
    for entity in ENTITIES:
        with_bad = [row for number, row in read_records(sample.history, entity)
                    if (entity.file_name, number) not in sample.bad]
        without_bad = [row for _, row in read_records(clean_sample.history, entity)]
        assert with_bad == without_bad, entity.file_name
    assert folder_bytes(sample.delta) == folder_bytes(clean_sample.delta)


# --- consistency --------------------------------------------------------------------------------------

@pytest.mark.parametrize("include_delta", [False, True], ids=["history", "merged"])
def test_coins_available_matches_ledger(sample: Sample, include_delta: bool) -> None:
    balances = ledger_balances(sample.merged("wallet_transactions", include_delta=include_delta))
    customers = sample.merged("customers", include_delta=include_delta)
    assert customers
    for customer in customers:
        assert int(customer["coins_available"]) == balances.get(customer["lead_id"], 0), customer["lead_id"]


@pytest.mark.parametrize("include_delta", [False, True], ids=["history", "merged"])
def test_customer_tier_is_latest_change(sample: Sample, include_delta: bool) -> None:
    latest: dict[str, dict[str, str]] = {}
    for change in sample.merged("tier_changes", include_delta=include_delta):
        current = latest.get(change["lead_id"])
        if current is None or change["changed_at"] > current["changed_at"]:
            latest[change["lead_id"]] = change
    for customer in sample.merged("customers", include_delta=include_delta):
        assert customer["tier"] == latest[customer["lead_id"]]["new_tier"], customer["lead_id"]


def test_tier_changes_chain_per_lead(sample: Sample) -> None:
    changes: dict[str, list[dict[str, str]]] = defaultdict(list)
    for change in sample.merged("tier_changes"):
        changes[change["lead_id"]].append(change)
    for lead_id, lead_changes in changes.items():
        lead_changes.sort(key=lambda change: change["changed_at"])
        assert lead_changes[0]["previous_tier"] == "", lead_id
        for before, after in zip(lead_changes, lead_changes[1:]):
            assert after["previous_tier"] == before["new_tier"], lead_id


def test_tier_names_exist_in_tiers(sample: Sample) -> None:
    tiers = {row["tier_name"]: int(row["rank"]) for row in sample.merged("tiers")}
    assert tiers == TIER_RANKS
    for change in sample.merged("tier_changes"):
        assert change["new_tier"] in tiers
        assert change["previous_tier"] in tiers or change["previous_tier"] == ""


def test_expired_credits_fully_debited(sample: Sample) -> None:
    lots = fifo_lots(sample.merged("wallet_transactions"))
    for lead_id, lead_lots in lots.items():
        for expire_at, coins_left in lead_lots:
            if expire_at < AS_OF:
                assert coins_left == 0, f"lead {lead_id}: {coins_left} coins past {expire_at} not expired"


def test_expire_debits_match_due_credits(sample: Sample) -> None:
    _, mismatched = replay_ledger(sample.merged("wallet_transactions"))
    assert mismatched == []


def test_credits_expire_after_365_days(sample: Sample) -> None:
    for row in sample.merged("wallet_transactions"):
        if row["operation"] == "cr":
            delta = parse_timestamp(row["expire_at"]) - parse_timestamp(row["created_at"])
            assert delta == timedelta(days=365), row["wallettransaction_id"]
        else:
            assert row["expire_at"] == "", row["wallettransaction_id"]


def test_redeem_debits_have_coupons(sample: Sample) -> None:
    coupons = {row["coupon_id"]: row for row in sample.merged("coupons")}
    redeems = [row for row in sample.merged("wallet_transactions") if row["type"] == "redeem"]
    assert redeems
    for debit in redeems:
        assert debit["operation"] == "dr"
        coupon = coupons[debit["coupon_id"]]
        assert coupon["source"] == "redeem"
        assert coupon["lead_id"] == debit["lead_id"]
        assert Decimal(coupon["coins_spent"]) == Decimal(debit["amount"])


def test_coupon_use_matches_status(sample: Sample) -> None:
    for coupon in sample.merged("coupons"):
        used = coupon["status"] == "used"
        assert bool(coupon["used_at"]) == used, coupon["coupon_id"]
        assert bool(coupon["used_order_id"]) == used, coupon["coupon_id"]
        if coupon["status"] == "expired":
            assert parse_timestamp(coupon["expire_at"]) < AS_OF, coupon["coupon_id"]
        if used:
            assert parse_timestamp(coupon["used_at"]) < parse_timestamp(coupon["expire_at"]), coupon["coupon_id"]


def test_coupon_statuses_all_present(sample: Sample) -> None:
    statuses = {coupon["status"] for coupon in sample.merged("coupons")}
    assert statuses == {"issued", "used", "expired"}


def test_completed_referrals_reward_referrer(sample: Sample) -> None:
    rewards = defaultdict(list)
    for row in sample.merged("wallet_transactions"):
        if row["operation"] == "cr" and row["title"] == "Referral reward" and row["status"] == "success":
            rewards[row["lead_id"]].append(parse_timestamp(row["created_at"]))
    completed = [row for row in sample.merged("referrals") if row["status"] == "completed"]
    assert completed
    for referral in completed:
        completed_at = parse_timestamp(referral["completed_at"])
        times = rewards[referral["referred_by_lead_id"]]
        assert any(completed_at <= moment <= completed_at + timedelta(minutes=1) for moment in times), (
            referral["referral_id"])


def test_referral_statuses_all_present(sample: Sample) -> None:
    statuses = {referral["status"] for referral in sample.merged("referrals")}
    assert statuses == {"created", "completed", "cancelled"}


def test_ledger_has_every_type(sample: Sample) -> None:
    pairs = {(row["operation"], row["type"]) for row in sample.merged("wallet_transactions")}
    for pair in [("cr", "reward"), ("dr", "redeem"), ("dr", "expire"), ("dr", "revert"), ("cr", "adjust")]:
        assert pair in pairs, pair


def test_ledger_has_pending_and_failed(sample: Sample) -> None:
    statuses = [row["status"] for row in sample.merged("wallet_transactions")]
    assert "pending" in statuses
    assert "failed" in statuses
    assert statuses.count("success") > 0.95 * len(statuses)


def test_ratings_skew_high(sample: Sample) -> None:
    ratings = [int(row["rating"]) for row in sample.merged("reviews")]
    assert set(ratings) == {1, 2, 3, 4, 5}
    assert sum(ratings) / len(ratings) >= 3.8
    assert ratings.count(5) > ratings.count(1)


# --- delta export -------------------------------------------------------------------------------------

def test_delta_rows_are_anchor_day(sample: Sample) -> None:
    history_rows = {entity.name: sample.valid_rows(sample.history, entity) for entity in ENTITIES}
    for entity in ENTITIES:
        for row in sample.valid_rows(sample.delta, entity):
            version = parse_timestamp(row[entity.version_column])
            resent = row in history_rows[entity.name]
            assert resent or HISTORY_END <= version < AS_OF, f"{entity.file_name} {row}"


def test_delta_resends_unchanged_rows(sample: Sample) -> None:
    for name in ("customers", "wallet_transactions", "coupons"):
        entity = next(entity for entity in ENTITIES if entity.name == name)
        history_rows = sample.valid_rows(sample.history, entity)
        resent = [row for row in sample.valid_rows(sample.delta, entity) if row in history_rows]
        assert len(resent) >= 2, name


def test_delta_has_changed_leads(sample: Sample) -> None:
    history = {row["lead_id"]: row for row in sample.valid_rows(sample.history, ENTITIES_BY_FILE["customers.csv"])}
    changed = [row for row in sample.valid_rows(sample.delta, ENTITIES_BY_FILE["customers.csv"])
               if row["lead_id"] in history and row["updated_at"] > history[row["lead_id"]]["updated_at"]]
    assert len(changed) >= MINIMUM_SEGMENT_LEADS


def test_delta_has_new_leads(sample: Sample) -> None:
    history_ids = {row["lead_id"] for row in sample.valid_rows(sample.history, ENTITIES_BY_FILE["customers.csv"])}
    new = [row for row in sample.valid_rows(sample.delta, ENTITIES_BY_FILE["customers.csv"])
           if row["lead_id"] not in history_ids]
    assert len(new) >= 2
    for row in new:
        assert parse_timestamp(row["created_at"]) >= HISTORY_END


def test_delta_has_daily_activity(sample: Sample) -> None:
    for name in ("wallet_transactions.csv", "coupons.csv", "reviews.csv", "tier_changes.csv"):
        assert sample.summary.exports[1].rows[name] > 0, name


def test_history_spans_fourteen_months(sample: Sample) -> None:
    created = [parse_timestamp(row["created_at"]) for row in sample.merged("customers")]
    assert min(created) < AS_OF - timedelta(days=410)


# --- customers ----------------------------------------------------------------------------------------

def test_test_accounts_present(sample: Sample) -> None:
    accounts = [row for row in sample.merged("customers") if row["email"].strip().endswith("@qa.nector-test.in")]
    assert sorted(row["name"] for row in accounts) == ["QA Test 1", "QA Test 2", "QA Test 3"]


def test_two_leads_without_customer_id(sample: Sample) -> None:
    leads = [row for row in sample.merged("customers") if row["customer_id"] == ""]
    assert len(leads) == 2


def test_customer_ids_have_shopify_prefix(sample: Sample) -> None:
    for row in sample.merged("customers"):
        if row["customer_id"]:
            assert re.fullmatch(r"shopify-\d{13}", row["customer_id"]), row["customer_id"]


def test_indian_mobiles_have_ten_digits(sample: Sample) -> None:
    for row in sample.merged("customers"):
        if row["country"] == "ind" and row["mobile"]:
            assert re.fullmatch(r"[6-9]\d{9}", row["mobile"]), row["mobile"]


def test_some_foreign_customers(sample: Sample) -> None:
    foreign = [row for row in sample.merged("customers") if row["country"] != "ind"]
    assert len(foreign) >= 2
    for row in foreign:
        assert re.fullmatch(r"[a-z]{3}", row["country"])
        assert re.fullmatch(r"\d{9,10}", row["mobile"])


def test_emails_include_messy_variants(sample: Sample) -> None:
    emails = [row["email"] for row in sample.merged("customers") if row["email"]]
    assert any(email != email.strip() for email in emails)
    assert any(email.strip() != email.strip().lower() for email in emails)
    assert all("@" in email for email in emails)


def test_consent_mostly_filled(sample: Sample) -> None:
    customers = sample.merged("customers")
    for name in ("email_opt_in", "sms_opt_in", "whatsapp_opt_in"):
        values = [row[name] for row in customers]
        assert values.count("") > 0, name
        assert values.count("") < len(values) / 3, name


def test_whatsapp_opt_in_minority(sample: Sample) -> None:
    values = [row["whatsapp_opt_in"] for row in sample.merged("customers")]
    assert 0 < values.count("true") < len(values) / 3


def test_referred_friends_use_codes(sample: Sample) -> None:
    codes = {row["referral_code"] for row in sample.merged("customers")}
    referred = [row for row in sample.merged("customers") if row["referred_by_referral_code"]]
    assert referred
    for row in referred:
        assert row["referred_by_referral_code"] in codes


# --- segments as of the end of the anchor date --------------------------------------------------------

def test_segment_earned_never_redeemed(sample: Sample) -> None:
    ledger = sample.merged("wallet_transactions")
    earned = {row["lead_id"] for row in ledger if row["operation"] == "cr" and row["status"] == "success"}
    redeemed = {row["lead_id"] for row in ledger if row["operation"] == "dr" and row["type"] == "redeem"}
    assert len(earned - redeemed) >= MINIMUM_SEGMENT_LEADS


def test_segment_open_unexpired_coupon(sample: Sample) -> None:
    leads = {row["lead_id"] for row in sample.merged("coupons")
             if row["status"] == "issued" and not row["used_at"] and parse_timestamp(row["expire_at"]) > AS_OF}
    assert len(leads) >= MINIMUM_SEGMENT_LEADS


def test_segment_credits_expiring_soon(sample: Sample) -> None:
    lots = fifo_lots(sample.merged("wallet_transactions"))
    leads = {lead_id for lead_id, lead_lots in lots.items()
             if any(coins > 0 and AS_OF < expire_at <= AS_OF + timedelta(days=30) for expire_at, coins in lead_lots)}
    assert len(leads) >= MINIMUM_SEGMENT_LEADS


def test_segment_referral_completed_last_week(sample: Sample) -> None:
    week_start = AS_OF - timedelta(days=7)
    leads = {row["referred_by_lead_id"] for row in sample.merged("referrals")
             if row["status"] == "completed" and week_start <= parse_timestamp(row["completed_at"]) < AS_OF}
    assert len(leads) >= MINIMUM_SEGMENT_LEADS


def test_segment_review_last_month(sample: Sample) -> None:
    leads = {row["lead_id"] for row in sample.merged("reviews")
             if AS_OF - timedelta(days=30) <= parse_timestamp(row["created_at"]) < AS_OF}
    assert len(leads) >= MINIMUM_SEGMENT_LEADS


def test_segment_tier_upgrade_last_week(sample: Sample) -> None:
    leads = {row["lead_id"] for row in sample.merged("tier_changes")
             if row["previous_tier"]
             and TIER_RANKS[row["new_tier"]] > TIER_RANKS[row["previous_tier"]]
             and AS_OF - timedelta(days=7) <= parse_timestamp(row["changed_at"]) < AS_OF}
    assert len(leads) >= MINIMUM_SEGMENT_LEADS


def test_segment_active_on_anchor_day(sample: Sample) -> None:
    leads = {row["lead_id"] for row in sample.merged("wallet_transactions")
             if HISTORY_END <= parse_timestamp(row["created_at"]) < AS_OF}
    assert len(leads) >= MINIMUM_SEGMENT_LEADS


def test_segment_inactive_over_week(sample: Sample) -> None:
    last_activity: dict[str, datetime] = {}
    for row in sample.merged("wallet_transactions"):
        moment = parse_timestamp(row["created_at"])
        last_activity[row["lead_id"]] = max(moment, last_activity.get(row["lead_id"], moment))
    leads = [lead_id for lead_id, moment in last_activity.items() if moment < AS_OF - timedelta(days=7)]
    assert len(leads) >= MINIMUM_SEGMENT_LEADS


# --- arguments and command line -----------------------------------------------------------------------

def test_tiny_generation_works(tmp_path: Path) -> None:
    summary = generate_exports(tmp_path, customers=1)
    assert summary.exports[0].rows["customers.csv"] >= 1
    sample = Sample(tmp_path, summary)
    for entity in ENTITIES:
        for row in sample.valid_rows(sample.history, entity):
            assert row_problems(entity, row) == [], entity.file_name


def test_rejects_zero_customers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="customers"):
        generate_exports(tmp_path, customers=0)


def test_rejects_path_like_workspace(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workspace_id"):
        generate_exports(tmp_path, workspace_id="../elsewhere")


def test_cli_replaces_only_generated_exports(tmp_path: Path) -> None:
    replaced = tmp_path / WORKSPACE / HISTORY_DAY / "stale.csv"
    replaced.parent.mkdir(parents=True)
    replaced.write_text("old\n", encoding="utf-8")
    own_export = tmp_path / WORKSPACE / "2020-01-01" / "customers.csv"
    own_export.parent.mkdir(parents=True)
    own_export.write_text("mine\n", encoding="utf-8")
    neighbour = tmp_path / "other-workspace" / "keep.txt"
    neighbour.parent.mkdir()
    neighbour.write_text("keep\n", encoding="utf-8")

    assert main(["--out", str(tmp_path), "--customers", "20", "--seed", "3"]) == 0

    assert not replaced.exists()
    assert own_export.read_text(encoding="utf-8") == "mine\n"
    assert neighbour.read_text(encoding="utf-8") == "keep\n"
    assert sorted(path.name for path in (tmp_path / WORKSPACE).iterdir()) == ["2020-01-01", HISTORY_DAY, DELTA_DAY]
    assert not (tmp_path / f".{WORKSPACE}.partial").exists()


def test_cli_prints_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["--out", str(tmp_path), "--customers", "20"])
    output = capsys.readouterr().out
    assert "wallet_transactions.csv" in output
    assert "Deliberately bad rows:" in output
    assert "(negative_amount)" in output
