"""Profile totals and segment flags on hand-built customers, including the window boundaries."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import psycopg
import pytest

from loyalty_sync.derive.profile import refresh_profiles
from loyalty_sync.settings import SyncSettings
from staging_builder import AS_OF, IST, Builder

@pytest.fixture
def build(warehouse) -> Builder:
    return Builder(warehouse)


def profile(conn: psycopg.Connection, lead_id: uuid.UUID) -> dict | None:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        return cursor.execute("SELECT * FROM loyalty.customer_profile WHERE lead_id = %s", (lead_id,)).fetchone()


def refresh(conn: psycopg.Connection, **settings: object) -> dict[str, int]:
    return refresh_profiles(conn, SyncSettings.from_mapping(settings), AS_OF)


DAY = timedelta(days=1)


def test_earned_never_redeemed(warehouse, build):
    earner = build.customer("Earner")
    build.ledger(earner, "cr", "reward", 100, AS_OF - 10 * DAY)
    redeemer = build.customer("Redeemer")
    build.ledger(redeemer, "cr", "reward", 100, AS_OF - 10 * DAY)
    build.ledger(redeemer, "dr", "redeem", 50, AS_OF - 5 * DAY)

    refresh(warehouse)

    assert profile(warehouse, earner)["earned_never_redeemed"] is True
    assert profile(warehouse, redeemer)["earned_never_redeemed"] is False


def test_expiry_and_reversal_are_not_redemptions(warehouse, build):
    lead = build.customer("Expired")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 400 * DAY, expire_at=AS_OF - 35 * DAY)
    build.ledger(lead, "dr", "expire", 60, AS_OF - 35 * DAY)
    build.ledger(lead, "dr", "revert", 40, AS_OF - 30 * DAY)

    refresh(warehouse)

    assert profile(warehouse, lead)["earned_never_redeemed"] is True
    assert profile(warehouse, lead)["lifetime_coins_redeemed"] == 0
    assert profile(warehouse, lead)["lifetime_coins_expired"] == 60


def test_redemption_after_as_of_not_seen(warehouse, build):
    lead = build.customer("Later")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 10 * DAY)
    build.ledger(lead, "dr", "redeem", 50, AS_OF + timedelta(minutes=1))

    refresh(warehouse)

    assert profile(warehouse, lead)["earned_never_redeemed"] is True
    assert profile(warehouse, lead)["coin_balance"] == 100


def test_credit_at_2359_counts_0001_does_not(warehouse, build):
    lead = build.customer("Midnight")
    build.ledger(lead, "cr", "reward", 10, datetime(2026, 11, 30, 23, 59, tzinfo=IST))
    build.ledger(lead, "cr", "reward", 1000, datetime(2026, 12, 1, 0, 1, tzinfo=IST))

    refresh(warehouse)

    assert profile(warehouse, lead)["coin_balance"] == 10
    assert profile(warehouse, lead)["last_activity_at"] == datetime(2026, 11, 30, 23, 59, tzinfo=IST)


def test_pending_and_failed_transactions_ignored(warehouse, build):
    lead = build.customer("Pending")
    build.ledger(lead, "cr", "reward", 100, AS_OF - DAY)
    build.ledger(lead, "cr", "reward", 500, AS_OF - DAY, status="pending")
    build.ledger(lead, "dr", "redeem", 100, AS_OF - DAY, status="failed")

    refresh(warehouse)

    assert profile(warehouse, lead)["coin_balance"] == 100
    assert profile(warehouse, lead)["lifetime_coins_redeemed"] == 0


@pytest.mark.parametrize(("used_at", "expire_at", "expected"), [
    (None, None, True),
    (None, AS_OF + DAY, True),
    (None, AS_OF - DAY, False),
    (None, AS_OF, False),
    (AS_OF - DAY, None, False),
    (AS_OF + DAY, None, True),
])
def test_unused_unexpired_coupon(warehouse, build, used_at, expire_at, expected):
    lead = build.customer("Coupon")
    build.coupon(lead, AS_OF - 20 * DAY, used_at=used_at, expire_at=expire_at)

    refresh(warehouse)

    assert profile(warehouse, lead)["has_unused_coupon"] is expected


def test_coupon_issued_after_as_of_not_counted(warehouse, build):
    lead = build.customer("Future")
    build.coupon(lead, AS_OF + timedelta(seconds=1))

    refresh(warehouse)

    assert profile(warehouse, lead)["has_unused_coupon"] is False


@pytest.mark.parametrize(("expires_in", "expected"), [
    (10 * DAY, 100),
    (30 * DAY, 100),
    (30 * DAY + timedelta(seconds=1), 0),
    (-DAY, 0),
])
def test_coins_expiring_within_window(warehouse, build, expires_in, expected):
    lead = build.customer("Expiring")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 300 * DAY, expire_at=AS_OF + expires_in)

    refresh(warehouse)

    assert profile(warehouse, lead)["coins_expiring_soon"] == expected
    assert profile(warehouse, lead)["has_coins_expiring_soon"] is (expected > 0)


def test_spent_coins_do_not_expire(warehouse, build):
    lead = build.customer("Spender")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 340 * DAY, expire_at=AS_OF + 25 * DAY)
    build.ledger(lead, "cr", "reward", 80, AS_OF - 100 * DAY, expire_at=AS_OF + 265 * DAY)
    build.ledger(lead, "dr", "redeem", 60, AS_OF - 50 * DAY)

    refresh(warehouse)

    assert profile(warehouse, lead)["coins_expiring_soon"] == 40
    assert profile(warehouse, lead)["coin_balance"] == 120


@pytest.mark.parametrize(("completed_at", "status", "expected"), [
    (AS_OF - 7 * DAY, "completed", True),
    (AS_OF - 7 * DAY - timedelta(seconds=1), "completed", False),
    (AS_OF + DAY, "completed", False),
    (None, "created", False),
])
def test_referral_completed_recently(warehouse, build, completed_at, status, expected):
    lead = build.customer("Referrer")
    build.referral(lead, status, completed_at)

    refresh(warehouse)

    assert profile(warehouse, lead)["completed_referral_recently"] is expected


@pytest.mark.parametrize(("reviewed_at", "expected"), [
    (AS_OF - 30 * DAY, True),
    (AS_OF - 31 * DAY, False),
    (AS_OF - timedelta(seconds=1), True),
])
def test_reviewed_recently(warehouse, build, reviewed_at, expected):
    lead = build.customer("Reviewer")
    build.review(lead, reviewed_at)

    refresh(warehouse)

    assert profile(warehouse, lead)["reviewed_recently"] is expected


def test_tier_upgrade_flags_but_downgrade_does_not(warehouse, build):
    upgraded = build.customer("Upgraded")
    build.tier_change(upgraded, "Silver", "Gold", AS_OF - 3 * DAY)
    downgraded = build.customer("Downgraded")
    build.tier_change(downgraded, "Gold", "Silver", AS_OF - 3 * DAY)

    refresh(warehouse)

    assert profile(warehouse, upgraded)["tier_upgraded_recently"] is True
    assert profile(warehouse, upgraded)["tier"] == "Gold"
    assert profile(warehouse, downgraded)["tier_upgraded_recently"] is False
    assert profile(warehouse, downgraded)["tier"] == "Silver"


def test_old_tier_upgrade_not_recent(warehouse, build):
    lead = build.customer("Veteran")
    build.tier_change(lead, "Bronze", "Silver", AS_OF - 8 * DAY)

    refresh(warehouse)

    assert profile(warehouse, lead)["tier_upgraded_recently"] is False


def test_test_accounts_left_out(warehouse, build):
    qa = build.customer("QA", email="qa1@qa.nector-test.in")
    by_id = build.customer("ById", customer_id="shopify-999")
    real = build.customer("Real")

    sizes = refresh(warehouse, test_account_email_domains=["qa.nector-test.in"], test_account_customer_ids=["999"])

    assert profile(warehouse, qa) is None
    assert profile(warehouse, by_id) is None
    assert profile(warehouse, real) is not None
    assert sizes["test_accounts"] == 2


def test_user_id_strips_platform_prefix(warehouse, build):
    lead = build.customer("Prefixed", customer_id="shopify-7012345678901")
    no_id = build.customer("NoId", customer_id=None)

    refresh(warehouse)

    assert profile(warehouse, lead)["user_id"] == "7012345678901"
    assert profile(warehouse, no_id)["user_id"] is None


def test_user_id_source_customer_id(warehouse, build):
    lead = build.customer("Prefixed", customer_id="shopify-7012345678901")

    refresh(warehouse, user_id_source="customer_id")

    assert profile(warehouse, lead)["user_id"] == "shopify-7012345678901"


def test_same_day_rerun_identical(warehouse, build):
    lead = build.customer("Stable")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 10 * DAY, expire_at=AS_OF + 5 * DAY)
    build.coupon(lead, AS_OF - 3 * DAY)
    refresh(warehouse)
    first = profile(warehouse, lead)

    refresh(warehouse)

    assert profile(warehouse, lead) == first
