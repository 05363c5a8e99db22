"""Profile totals and the shared tables (credit lots, coupon and referral states) on hand-built customers."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import psycopg
import pytest

from loyalty_sync.derive.profile import refresh_profiles
from loyalty_sync.settings import SyncSettings
from staging_builder import AS_OF, IST, Builder

DAY = timedelta(days=1)


@pytest.fixture
def build(warehouse) -> Builder:
    return Builder(warehouse)


def profile(conn: psycopg.Connection, lead_id: uuid.UUID) -> dict | None:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        return cursor.execute("SELECT * FROM loyalty.customer_profile WHERE lead_id = %s", (lead_id,)).fetchone()


def lots(conn: psycopg.Connection, lead_id: uuid.UUID) -> list[dict]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cursor:
        return cursor.execute(
            "SELECT * FROM loyalty.credit_lot WHERE lead_id = %s ORDER BY earned_at", (lead_id,)
        ).fetchall()


def refresh(conn: psycopg.Connection, **settings: object) -> dict[str, int]:
    return refresh_profiles(conn, SyncSettings.from_mapping(settings), AS_OF)


def test_expiry_and_reversal_counted_apart(warehouse, build):
    lead = build.customer("Expired")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 400 * DAY, expire_at=AS_OF - 35 * DAY)
    build.ledger(lead, "dr", "expire", 60, AS_OF - 35 * DAY)
    build.ledger(lead, "dr", "revert", 40, AS_OF - 30 * DAY)

    refresh(warehouse)

    assert profile(warehouse, lead)["lifetime_coins_redeemed"] == 0
    assert profile(warehouse, lead)["lifetime_coins_expired"] == 60
    assert profile(warehouse, lead)["lifetime_coins_reverted"] == 40
    assert profile(warehouse, lead)["coin_balance"] == 0


def test_redemption_after_as_of_not_seen(warehouse, build):
    lead = build.customer("Later")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 10 * DAY)
    build.ledger(lead, "dr", "redeem", 50, AS_OF + timedelta(minutes=1))

    refresh(warehouse)

    assert profile(warehouse, lead)["coin_balance"] == 100
    assert profile(warehouse, lead)["last_redeemed_at"] is None


def test_credit_at_2359_counts_0001_does_not(warehouse, build):
    lead = build.customer("Midnight")
    build.ledger(lead, "cr", "reward", 10, datetime(2026, 11, 30, 23, 59, tzinfo=IST))
    build.ledger(lead, "cr", "reward", 1000, datetime(2026, 12, 1, 0, 1, tzinfo=IST))

    refresh(warehouse)

    assert profile(warehouse, lead)["coin_balance"] == 10
    assert profile(warehouse, lead)["last_activity_at"] == datetime(2026, 11, 30, 23, 59, tzinfo=IST)
    assert len(lots(warehouse, lead)) == 1


def test_pending_and_failed_transactions_ignored(warehouse, build):
    lead = build.customer("Pending")
    build.ledger(lead, "cr", "reward", 100, AS_OF - DAY)
    build.ledger(lead, "cr", "reward", 500, AS_OF - DAY, status="pending")
    build.ledger(lead, "dr", "redeem", 100, AS_OF - DAY, status="failed")

    refresh(warehouse)

    assert profile(warehouse, lead)["coin_balance"] == 100
    assert profile(warehouse, lead)["lifetime_coins_redeemed"] == 0


def test_debits_use_soonest_expiring_lot_first(warehouse, build):
    lead = build.customer("Spender")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 340 * DAY, expire_at=AS_OF + 25 * DAY)
    build.ledger(lead, "cr", "reward", 80, AS_OF - 100 * DAY, expire_at=AS_OF + 265 * DAY)
    build.ledger(lead, "dr", "redeem", 60, AS_OF - 50 * DAY)

    refresh(warehouse)

    assert [lot["remaining"] for lot in lots(warehouse, lead)] == [40, 80]
    assert profile(warehouse, lead)["coins_expiring_soon"] == 40
    assert profile(warehouse, lead)["next_coin_expiry_at"] == AS_OF + 25 * DAY
    assert profile(warehouse, lead)["coin_balance"] == 120


def test_debits_use_expired_credits_before_open_ones(warehouse, build):
    lead = build.customer("PastExpiry")
    build.ledger(lead, "cr", "reward", 50, AS_OF - 400 * DAY, expire_at=AS_OF - 35 * DAY)
    build.ledger(lead, "cr", "reward", 100, AS_OF - 300 * DAY, expire_at=AS_OF + 20 * DAY)
    build.ledger(lead, "cr", "adjust", 30, AS_OF - 20 * DAY)
    build.ledger(lead, "dr", "expire", 50, AS_OF - 35 * DAY)
    build.ledger(lead, "dr", "redeem", 70, AS_OF - 10 * DAY)

    refresh(warehouse)

    # The expired credit is used up by the expiry debit and not listed; the redemption takes 70 of
    # the 100 that expire next.
    assert [(lot["amount"], lot["remaining"]) for lot in lots(warehouse, lead)] == [(100, 30), (30, 30)]
    assert profile(warehouse, lead)["coins_expiring_soon"] == 30
    assert profile(warehouse, lead)["coin_balance"] == 60


def test_debits_beyond_expired_credits_reach_open_ones(warehouse, build):
    lead = build.customer("Overspent")
    build.ledger(lead, "cr", "reward", 50, AS_OF - 400 * DAY, expire_at=AS_OF - 35 * DAY)
    build.ledger(lead, "cr", "reward", 100, AS_OF - 300 * DAY, expire_at=AS_OF + 20 * DAY)
    build.ledger(lead, "cr", "reward", 40, AS_OF - 5 * DAY, expire_at=AS_OF + 360 * DAY)
    # Redeemed before the first credit expired, so no expiry debit followed: 120 coins spent use up
    # the 50 that expired and 70 of the 100.
    build.ledger(lead, "dr", "redeem", 120, AS_OF - 40 * DAY)

    refresh(warehouse)

    assert [lot["remaining"] for lot in lots(warehouse, lead)] == [30, 40]
    assert profile(warehouse, lead)["coins_expiring_soon"] == 30
    assert profile(warehouse, lead)["oldest_unspent_coins_earned_at"] == AS_OF - 300 * DAY


def test_expired_credit_without_debits_keeps_open_ones_whole(warehouse, build):
    lead = build.customer("Unexpired")
    build.ledger(lead, "cr", "reward", 50, AS_OF - 400 * DAY, expire_at=AS_OF - 35 * DAY)
    build.ledger(lead, "cr", "reward", 100, AS_OF - 300 * DAY, expire_at=AS_OF + 20 * DAY)

    refresh(warehouse)

    assert [lot["remaining"] for lot in lots(warehouse, lead)] == [100]


def test_credit_without_expiry_uses_setting(warehouse, build):
    lead = build.customer("NoExpiry")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 350 * DAY)

    refresh(warehouse, coin_expiry_days=365)

    lot = lots(warehouse, lead)[0]
    assert lot["expire_at"] == AS_OF + 15 * DAY
    assert lot["expiry_source"] == "coin_expiry_days"
    assert profile(warehouse, lead)["coins_expiring_soon"] == 100


def test_credit_without_expiry_never_expires(warehouse, build):
    lead = build.customer("Forever")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 350 * DAY)

    refresh(warehouse)

    assert lots(warehouse, lead)[0]["expire_at"] is None
    assert profile(warehouse, lead)["next_coin_expiry_at"] is None
    assert profile(warehouse, lead)["oldest_unspent_coins_earned_at"] == AS_OF - 350 * DAY


def test_expiring_window_follows_segment_parameter(warehouse, build):
    lead = build.customer("Window")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 300 * DAY, expire_at=AS_OF + 20 * DAY)

    refresh(warehouse, segment_parameters={"coins_expiring_soon": {"days": 15}})

    assert profile(warehouse, lead)["coins_expiring_soon"] == 0


@pytest.mark.parametrize(("used_at", "expire_at", "state"), [
    (None, None, "open"),
    (None, AS_OF + DAY, "open"),
    (None, AS_OF - DAY, "expired"),
    (None, AS_OF, "expired"),
    (AS_OF - DAY, None, "used"),
    (AS_OF + DAY, None, "open"),
])
def test_coupon_state_at_as_of(warehouse, build, used_at, expire_at, state):
    lead = build.customer("Coupon")
    build.coupon(lead, AS_OF - 20 * DAY, used_at=used_at, expire_at=expire_at)

    refresh(warehouse)

    assert warehouse.execute("SELECT state FROM loyalty.coupon_state").fetchone()[0] == state
    assert profile(warehouse, lead)["unused_coupon_count"] == (1 if state == "open" else 0)


def test_coupon_issued_after_as_of_not_counted(warehouse, build):
    lead = build.customer("Future")
    build.coupon(lead, AS_OF + timedelta(seconds=1))

    refresh(warehouse)

    assert warehouse.execute("SELECT count(*) FROM loyalty.coupon_state").fetchone()[0] == 0
    assert profile(warehouse, lead)["unused_coupon_count"] == 0


@pytest.mark.parametrize(("status", "completed_at", "state"), [
    ("completed", AS_OF - DAY, "completed"),
    ("completed", AS_OF + DAY, "open"),
    ("created", None, "open"),
    ("cancelled", None, "cancelled"),
])
def test_referral_state_at_as_of(warehouse, build, status, completed_at, state):
    referrer = build.customer("Referrer")
    friend = build.customer("Friend")
    build.referral(referrer, status, completed_at, friend=friend)

    refresh(warehouse)

    assert warehouse.execute("SELECT state FROM loyalty.referral_state").fetchone()[0] == state
    assert profile(warehouse, referrer)["completed_referral_count"] == (1 if state == "completed" else 0)


def test_tier_from_latest_change_before_as_of(warehouse, build):
    lead = build.customer("Climber", tier="Bronze")
    build.tier_change(lead, "Bronze", "Gold", AS_OF - 5 * DAY)
    build.tier_change(lead, "Gold", "Silver", AS_OF - 2 * DAY)
    build.tier_change(lead, "Silver", "Bronze", AS_OF + DAY)

    refresh(warehouse)

    assert profile(warehouse, lead)["tier"] == "Silver"
    assert profile(warehouse, lead)["tier_rank"] == 2
    assert profile(warehouse, lead)["last_tier_upgrade_at"] == AS_OF - 5 * DAY
    assert profile(warehouse, lead)["last_tier_downgrade_at"] == AS_OF - 2 * DAY


def test_test_accounts_left_out(warehouse, build):
    qa = build.customer("QA", email="qa1@qa.nector-test.in")
    by_id = build.customer("ById", customer_id="shopify-999")
    real = build.customer("Real")
    build.ledger(qa, "cr", "reward", 100, AS_OF - DAY)

    sizes = refresh(warehouse, test_account_email_domains=["qa.nector-test.in"], test_account_customer_ids=["999"])

    assert profile(warehouse, qa) is None
    assert profile(warehouse, by_id) is None
    assert profile(warehouse, real) is not None
    assert lots(warehouse, qa) == []
    assert sizes["test_accounts"] == 2


def test_customer_without_email_profiled(warehouse, build):
    lead = build.customer("NoMail")
    warehouse.execute("UPDATE nector.customers SET email = NULL WHERE lead_id = %s", (lead,))

    refresh(warehouse)

    assert profile(warehouse, lead)["email"] is None
    assert profile(warehouse, lead)["user_id"] is not None


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
    first = (profile(warehouse, lead), lots(warehouse, lead))

    refresh(warehouse)

    assert (profile(warehouse, lead), lots(warehouse, lead)) == first


def test_rebuild_leaves_one_partition(warehouse, build):
    build.customer("Once")
    refresh(warehouse)

    refresh(warehouse)

    partitions = warehouse.execute(
        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'loyalty.customer_profile'::regclass"
    ).fetchone()[0]
    assert partitions == 1
