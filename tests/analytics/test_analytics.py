"""The analytics schema: documented views, the read-only role, and the generated data dictionary."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from loyalty_sync.analytics.data_dictionary import render_markdown, undocumented
from loyalty_sync.derive.profile import refresh_profiles
from loyalty_sync.settings import SyncSettings
from loyalty_sync.warehouse.migrations import MIGRATIONS_DIR
from staging_builder import AS_OF, Builder

DAY = timedelta(days=1)
DOCS = Path(__file__).resolve().parents[2] / "docs"
ROLE = "loyalty_analyst"


def analytics_views(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT table_name FROM information_schema.views WHERE table_schema = 'analytics' ORDER BY 1"
    ).fetchall()
    return [row[0] for row in rows]


@pytest.fixture
def derived(warehouse) -> psycopg.Connection:
    """A warehouse with one customer of each kind, derived as of AS_OF."""
    build = Builder(warehouse)
    lead = build.customer("Asha", customer_id="shopify-11", tier="Gold")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 10 * DAY, expire_at=AS_OF + 5 * DAY)
    build.ledger(lead, "dr", "redeem", 30, AS_OF - 5 * DAY)
    qa = build.customer("QA", email="qa@qa.nector-test.in")
    build.ledger(qa, "cr", "reward", 100, AS_OF - 10 * DAY)
    refresh_profiles(warehouse, SyncSettings.from_mapping({"test_account_email_domains": ["qa.nector-test.in"]}), AS_OF)
    return warehouse


@pytest.fixture
def analyst(derived) -> psycopg.Connection:
    """The warehouse connection acting as the read-only role inside a transaction rolled back afterwards."""
    derived.execute("BEGIN")
    derived.execute(f"SET LOCAL ROLE {ROLE}")
    yield derived
    derived.execute("ROLLBACK")


def test_every_view_and_column_documented(warehouse):
    assert undocumented(warehouse) == []


def test_expected_views_present(warehouse):
    assert {"customer_profile", "wallet_ledger", "segment_membership", "segment_membership_history",
            "segment_daily", "customer_delivery", "segment"} <= set(analytics_views(warehouse))


def test_data_dictionary_is_current(warehouse):
    committed = (DOCS / "data-dictionary.md").read_text(encoding="utf-8")

    assert committed == render_markdown(warehouse), "docs/data-dictionary.md is stale: run make docs"


def test_analyst_reads_every_view(analyst):
    for view in analytics_views(analyst):
        analyst.execute(f"SELECT * FROM analytics.{view} LIMIT 1").fetchall()

    assert analyst.execute("SELECT current_user").fetchone()[0] == ROLE
    assert analyst.execute("SELECT count(*) FROM analytics.customer_profile").fetchone()[0] == 1


@pytest.mark.parametrize("statement", [
    "INSERT INTO analytics.segment_daily (segment) VALUES ('x')",
    "UPDATE analytics.customer_profile SET coin_balance = 0",
    "DELETE FROM analytics.segment_membership_history",
    "TRUNCATE loyalty.customer_profile",
    "CREATE TABLE analytics.scratch (id int)",
    "CREATE VIEW analytics.scratch AS SELECT 1",
])
def test_analyst_cannot_write(analyst, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        analyst.execute(statement)


@pytest.mark.parametrize("table", [
    "nector.customers", "nector.wallet_transactions", "loyalty.customer_profile", "loyalty.segment_member",
    "sync.webengage_outbox", "sync.export_file",
])
def test_analyst_cannot_read_other_schemas(analyst, table):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        analyst.execute(f"SELECT 1 FROM {table} LIMIT 1")


def test_role_migration_tolerates_existing_role(warehouse):
    migration = next(MIGRATIONS_DIR.glob("0011_*.sql")).read_text(encoding="utf-8")
    assert warehouse.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()[0] == 1

    warehouse.execute("BEGIN")
    try:
        warehouse.execute("DROP SCHEMA analytics CASCADE")
        warehouse.execute(migration)
    finally:
        warehouse.execute("ROLLBACK")


def test_role_cannot_log_in(warehouse):
    assert warehouse.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone()[0] is False


def test_ledger_view_running_balance(derived):
    balances = derived.execute(
        "SELECT balance_after FROM analytics.wallet_ledger ORDER BY created_at"
    ).fetchall()

    assert balances == [(100,), (70,)]


def test_membership_view_has_entry_day(derived):
    rows = derived.execute(
        "SELECT segment, user_id, entered_on FROM analytics.segment_membership WHERE segment = 'coins_expiring_soon'"
    ).fetchall()

    assert rows == [("coins_expiring_soon", "11", AS_OF.date())]


def test_daily_view_counts_entries(derived):
    row = derived.execute(
        "SELECT members, entered, exited, net_change FROM analytics.segment_daily "
        "WHERE segment = 'coins_expiring_soon' AND as_of_date = %s", (AS_OF.date(),)
    ).fetchone()

    assert row == (1, 1, 0, 1)


def test_delivery_view_one_row_per_customer(derived):
    rows = derived.execute(
        "SELECT user_id, attributes_sent_at, events_sent, items_dead FROM analytics.customer_delivery"
    ).fetchall()

    assert rows == [("11", None, 0, 0)]
