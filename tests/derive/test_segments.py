"""Membership of every bundled segment on hand-built customers, including the window boundaries."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

import psycopg
import pytest

from loyalty_sync.derive.profile import refresh_profiles
from loyalty_sync.settings import SyncSettings
from staging_builder import AS_OF, IST, Builder

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


@pytest.fixture
def build(warehouse) -> Builder:
    return Builder(warehouse)


def refresh(conn: psycopg.Connection, as_of: datetime = AS_OF, **settings: object) -> dict[str, int]:
    return refresh_profiles(conn, SyncSettings.from_mapping(settings), as_of)


def members(conn: psycopg.Connection, segment: str) -> set[uuid.UUID]:
    rows = conn.execute("SELECT lead_id FROM loyalty.segment_member WHERE segment = %s", (segment,)).fetchall()
    return {row[0] for row in rows}


def details(conn: psycopg.Connection, segment: str, lead_id: uuid.UUID) -> dict:
    return conn.execute(
        "SELECT entry_details FROM loyalty.segment_member WHERE segment = %s AND lead_id = %s", (segment, lead_id)
    ).fetchone()[0]


# -- earned but never redeemed --------------------------------------------------------------------


def test_earned_never_redeemed(warehouse, build):
    earner = build.customer("Earner")
    build.ledger(earner, "cr", "reward", 100, AS_OF - 10 * DAY)
    redeemer = build.customer("Redeemer")
    build.ledger(redeemer, "cr", "reward", 100, AS_OF - 10 * DAY)
    build.ledger(redeemer, "dr", "redeem", 50, AS_OF - 5 * DAY)

    refresh(warehouse)

    assert members(warehouse, "earned_never_redeemed") == {earner}


def test_expiry_and_reversal_not_redemptions(warehouse, build):
    lead = build.customer("Expired")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 400 * DAY, expire_at=AS_OF - 35 * DAY)
    build.ledger(lead, "dr", "expire", 60, AS_OF - 35 * DAY)
    build.ledger(lead, "dr", "revert", 40, AS_OF - 30 * DAY)

    refresh(warehouse)

    assert lead in members(warehouse, "earned_never_redeemed")


def test_fully_reversed_earn_not_earned(warehouse, build):
    lead = build.customer("Refunded")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 10 * DAY)
    build.ledger(lead, "dr", "revert", 100, AS_OF - 8 * DAY)

    refresh(warehouse)

    assert lead not in members(warehouse, "earned_never_redeemed")


def test_coupon_bought_with_coins_is_redemption(warehouse, build):
    lead = build.customer("Bought")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 10 * DAY)
    build.coupon(lead, AS_OF - 5 * DAY, source="redeem")

    refresh(warehouse)

    assert lead not in members(warehouse, "earned_never_redeemed")


def test_redemption_after_as_of_not_seen(warehouse, build):
    lead = build.customer("Later")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 10 * DAY)
    build.ledger(lead, "dr", "redeem", 50, AS_OF + timedelta(minutes=1))

    refresh(warehouse)

    assert lead in members(warehouse, "earned_never_redeemed")


def test_credit_at_2359_ist_counts(warehouse, build):
    late = build.customer("Late")
    build.ledger(late, "cr", "reward", 10, datetime(2026, 11, 30, 23, 59, tzinfo=IST))
    early = build.customer("Early")
    build.ledger(early, "cr", "reward", 10, datetime(2026, 12, 1, 0, 1, tzinfo=IST))

    refresh(warehouse)

    assert members(warehouse, "earned_never_redeemed") == {late}


def test_customer_without_email_is_member(warehouse, build):
    lead = build.customer("NoMail")
    warehouse.execute("UPDATE nector.customers SET email = NULL WHERE lead_id = %s", (lead,))
    build.ledger(lead, "cr", "reward", 100, AS_OF - DAY)

    refresh(warehouse)

    assert lead in members(warehouse, "earned_never_redeemed")


# -- coins sitting unused -------------------------------------------------------------------------


@pytest.mark.parametrize(("earned_ago", "expected"), [
    (60 * DAY, True),
    (60 * DAY - SECOND, False),
    (200 * DAY, True),
])
def test_idle_coins_by_age(warehouse, build, earned_ago, expected):
    lead = build.customer("Idle")
    build.ledger(lead, "cr", "reward", 100, AS_OF - earned_ago)

    refresh(warehouse)

    assert (lead in members(warehouse, "idle_coins")) is expected


@pytest.mark.parametrize(("redeemed_ago", "expected"), [
    (60 * DAY, False),
    (60 * DAY + SECOND, True),
    (DAY, False),
])
def test_idle_coins_by_last_redemption(warehouse, build, redeemed_ago, expected):
    lead = build.customer("Spender")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 300 * DAY)
    build.ledger(lead, "dr", "redeem", 10, AS_OF - redeemed_ago)

    refresh(warehouse)

    assert (lead in members(warehouse, "idle_coins")) is expected


def test_idle_coins_need_unspent_coins(warehouse, build):
    lead = build.customer("Empty")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 300 * DAY)
    build.ledger(lead, "dr", "expire", 100, AS_OF - 100 * DAY)

    refresh(warehouse)

    assert lead not in members(warehouse, "idle_coins")


# -- unused unexpired coupon ----------------------------------------------------------------------


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

    assert (lead in members(warehouse, "unused_coupon")) is expected


def test_coupon_issued_after_as_of_no_member(warehouse, build):
    lead = build.customer("Future")
    build.coupon(lead, AS_OF + SECOND)

    refresh(warehouse)

    assert lead not in members(warehouse, "unused_coupon")


# -- coins expiring soon --------------------------------------------------------------------------


@pytest.mark.parametrize(("expires_in", "expected"), [
    (10 * DAY, True),
    (30 * DAY, True),
    (30 * DAY + SECOND, False),
    (-DAY, False),
    (timedelta(0), False),
])
def test_coins_expiring_within_window(warehouse, build, expires_in, expected):
    lead = build.customer("Expiring")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 300 * DAY, expire_at=AS_OF + expires_in)

    refresh(warehouse)

    assert (lead in members(warehouse, "coins_expiring_soon")) is expected


def test_spent_coins_do_not_expire(warehouse, build):
    lead = build.customer("Spender")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 340 * DAY, expire_at=AS_OF + 25 * DAY)
    build.ledger(lead, "cr", "reward", 80, AS_OF - 100 * DAY, expire_at=AS_OF + 265 * DAY)
    build.ledger(lead, "dr", "redeem", 60, AS_OF - 50 * DAY)

    refresh(warehouse)

    assert details(warehouse, "coins_expiring_soon", lead) == {
        "coins": 40, "expires_at": (AS_OF + 25 * DAY).isoformat(), "coin_balance": 120,
    }


def test_fully_spent_lot_not_expiring(warehouse, build):
    lead = build.customer("AllSpent")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 340 * DAY, expire_at=AS_OF + 25 * DAY)
    build.ledger(lead, "dr", "redeem", 100, AS_OF - 50 * DAY)

    refresh(warehouse)

    assert lead not in members(warehouse, "coins_expiring_soon")


def test_expiring_window_parameter_override(warehouse, build):
    lead = build.customer("Override")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 300 * DAY, expire_at=AS_OF + 20 * DAY)

    refresh(warehouse, segment_parameters={"coins_expiring_soon": {"days": 15}})

    assert lead not in members(warehouse, "coins_expiring_soon")


def test_expiry_period_setting_feeds_segment(warehouse, build):
    lead = build.customer("Period")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 350 * DAY)

    refresh(warehouse, coin_expiry_days=365)

    assert lead in members(warehouse, "coins_expiring_soon")


# -- referrals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("completed_at", "status", "expected"), [
    (AS_OF - 7 * DAY, "completed", True),
    (AS_OF - 7 * DAY - SECOND, "completed", False),
    (AS_OF - SECOND, "completed", True),
    (AS_OF + DAY, "completed", False),
    (None, "created", False),
])
def test_referral_completed_recently(warehouse, build, completed_at, status, expected):
    lead = build.customer("Referrer")
    build.referral(lead, status, completed_at)

    refresh(warehouse)

    assert (lead in members(warehouse, "referral_completed_recently")) is expected


@pytest.mark.parametrize(("status", "completed_at", "created_ago", "expected"), [
    ("created", None, 10 * DAY, True),
    ("created", None, 30 * DAY, True),
    ("created", None, 30 * DAY + SECOND, False),
    ("completed", AS_OF - DAY, 10 * DAY, False),
    ("completed", AS_OF + DAY, 10 * DAY, True),
    ("cancelled", None, 10 * DAY, False),
])
def test_referred_friend_not_ordered(warehouse, build, status, completed_at, created_ago, expected):
    referrer = build.customer("Referrer")
    friend = build.customer("Friend")
    build.referral(referrer, status, completed_at, friend=friend, created_at=AS_OF - created_ago)

    refresh(warehouse)

    assert (friend in members(warehouse, "referral_pending")) is expected
    assert referrer not in members(warehouse, "referral_pending")


def test_friend_with_two_open_referrals_once(warehouse, build):
    friend = build.customer("Popular")
    for name in ("First", "Second"):
        build.referral(build.customer(name), "created", None, friend=friend, created_at=AS_OF - 2 * DAY)

    refresh(warehouse)

    assert members(warehouse, "referral_pending") == {friend}


# -- reviews and tiers ----------------------------------------------------------------------------


@pytest.mark.parametrize(("reviewed_at", "expected"), [
    (AS_OF - 30 * DAY, True),
    (AS_OF - 30 * DAY - SECOND, False),
    (AS_OF - SECOND, True),
    (AS_OF, False),
])
def test_reviewed_recently(warehouse, build, reviewed_at, expected):
    lead = build.customer("Reviewer")
    build.review(lead, reviewed_at)

    refresh(warehouse)

    assert (lead in members(warehouse, "reviewed_recently")) is expected


def test_tier_upgrade_in_downgrade_out(warehouse, build):
    upgraded = build.customer("Upgraded")
    build.tier_change(upgraded, "Silver", "Gold", AS_OF - 3 * DAY)
    downgraded = build.customer("Downgraded")
    build.tier_change(downgraded, "Gold", "Silver", AS_OF - 3 * DAY)

    refresh(warehouse)

    assert members(warehouse, "tier_upgraded_recently") == {upgraded}


def test_upgrade_then_downgrade_not_upgraded(warehouse, build):
    lead = build.customer("YoYo")
    build.tier_change(lead, "Silver", "Gold", AS_OF - 5 * DAY)
    build.tier_change(lead, "Gold", "Silver", AS_OF - 2 * DAY)

    refresh(warehouse)

    assert lead not in members(warehouse, "tier_upgraded_recently")


@pytest.mark.parametrize(("upgraded_ago", "expected"), [(7 * DAY, True), (7 * DAY + SECOND, False)])
def test_tier_upgrade_window(warehouse, build, upgraded_ago, expected):
    lead = build.customer("Veteran")
    build.tier_change(lead, "Bronze", "Silver", AS_OF - upgraded_ago)

    refresh(warehouse)

    assert (lead in members(warehouse, "tier_upgraded_recently")) is expected


def test_vip_is_top_tier(warehouse, build):
    gold = build.customer("Gold", tier="Gold")
    silver = build.customer("Silver", tier="Silver")
    fallen = build.customer("Fallen", tier="Gold")
    build.tier_change(fallen, "Gold", "Silver", AS_OF - DAY)

    refresh(warehouse)

    assert members(warehouse, "vip") == {gold}
    assert silver not in members(warehouse, "vip")


def test_vip_tiers_parameter(warehouse, build):
    gold = build.customer("Gold", tier="Gold")
    silver = build.customer("Silver", tier="Silver")
    build.customer("Bronze", tier="Bronze")

    refresh(warehouse, segment_parameters={"vip": {"tiers": ["Silver", "Gold"]}})

    assert members(warehouse, "vip") == {gold, silver}


# -- milestones -----------------------------------------------------------------------------------


def test_milestone_crossed_in_window(warehouse, build):
    lead = build.customer("Climber")
    build.ledger(lead, "cr", "reward", 900, AS_OF - 100 * DAY)
    build.ledger(lead, "cr", "reward", 4200, AS_OF - 2 * DAY)

    refresh(warehouse)

    assert details(warehouse, "milestone_crossed", lead) == {"milestone": 5000, "lifetime_coins": 5100}


def test_milestone_crossed_before_window(warehouse, build):
    lead = build.customer("Earlier")
    build.ledger(lead, "cr", "reward", 1200, AS_OF - 8 * DAY)
    build.ledger(lead, "cr", "reward", 100, AS_OF - 2 * DAY)

    refresh(warehouse)

    assert lead not in members(warehouse, "milestone_crossed")


@pytest.mark.parametrize(("earned_ago", "expected"), [(7 * DAY, True), (7 * DAY + SECOND, False)])
def test_milestone_window_boundary(warehouse, build, earned_ago, expected):
    lead = build.customer("Edge")
    build.ledger(lead, "cr", "reward", 1000, AS_OF - earned_ago)

    refresh(warehouse)

    assert (lead in members(warehouse, "milestone_crossed")) is expected


def test_milestone_thresholds_parameter(warehouse, build):
    lead = build.customer("Small")
    build.ledger(lead, "cr", "reward", 150, AS_OF - DAY)

    refresh(warehouse, segment_parameters={"milestone_crossed": {"thresholds": [100, 500.5]}})

    assert details(warehouse, "milestone_crossed", lead)["milestone"] == 100


# -- birthdays ------------------------------------------------------------------------------------


def test_birthday_this_month(warehouse, build):
    december = build.customer("December", dob=date(1990, 12, 31))
    november = build.customer("November", dob=date(1990, 11, 30))
    build.customer("Unknown", dob=None)

    refresh(warehouse)

    assert members(warehouse, "birthday_this_month") == {december}
    assert november not in members(warehouse, "birthday_this_month")
    assert details(warehouse, "birthday_this_month", december)["birthday"] == "2026-12-31"


@pytest.mark.parametrize(("as_of", "expected_birthday"), [
    (datetime(2027, 2, 1, tzinfo=IST), "2027-02-28"),
    (datetime(2028, 2, 1, tzinfo=IST), "2028-02-29"),
    (datetime(2027, 3, 1, tzinfo=IST), None),
])
def test_leap_day_birthday(warehouse, build, as_of, expected_birthday):
    lead = build.customer("Leap", dob=date(1996, 2, 29))

    refresh(warehouse, as_of=as_of)

    member = lead in members(warehouse, "birthday_this_month")
    assert member is (expected_birthday is not None)
    if member:
        assert details(warehouse, "birthday_this_month", lead)["birthday"] == expected_birthday


def test_birthday_month_in_merchant_time_zone(warehouse, build):
    lead = build.customer("NewYear", dob=date(1990, 12, 5))

    # 1 December 00:00 IST is still 30 November in UTC.
    refresh(warehouse, as_of=datetime(2026, 12, 1, tzinfo=IST))

    assert lead in members(warehouse, "birthday_this_month")


# -- lapsed members -------------------------------------------------------------------------------


@pytest.mark.parametrize(("active_ago", "expected"), [
    (90 * DAY, False),
    (90 * DAY + SECOND, True),
    (10 * DAY, False),
])
def test_lapsed_member_window(warehouse, build, active_ago, expected):
    lead = build.customer("Quiet")
    build.ledger(lead, "cr", "reward", 100, AS_OF - active_ago)

    refresh(warehouse)

    assert (lead in members(warehouse, "lapsed_member")) is expected


def test_lapsed_needs_positive_balance(warehouse, build):
    lead = build.customer("Broke")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 200 * DAY)
    build.ledger(lead, "dr", "redeem", 100, AS_OF - 150 * DAY)

    refresh(warehouse)

    assert lead not in members(warehouse, "lapsed_member")


def test_review_counts_as_activity(warehouse, build):
    lead = build.customer("Reviewer")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 200 * DAY)
    build.review(lead, AS_OF - 5 * DAY)

    refresh(warehouse)

    assert lead not in members(warehouse, "lapsed_member")


# -- across segments ------------------------------------------------------------------------------


def test_test_account_never_a_member(warehouse, build):
    qa = build.customer("QA", email="qa@qa.nector-test.in", dob=date(1990, 12, 1), tier="Gold")
    build.ledger(qa, "cr", "reward", 5000, AS_OF - 2 * DAY, expire_at=AS_OF + 3 * DAY)
    build.coupon(qa, AS_OF - DAY)
    build.review(qa, AS_OF - DAY)
    friend = build.customer("Friend")
    build.referral(friend, "created", None, friend=qa, created_at=AS_OF - DAY)

    sizes = refresh(warehouse, test_account_email_domains=["qa.nector-test.in"])

    assert warehouse.execute("SELECT count(*) FROM loyalty.segment_member WHERE lead_id = %s", (qa,)).fetchone()[0] == 0
    assert sizes["test_accounts"] == 1


def test_lead_created_after_as_of_never_member(warehouse, build):
    lead = build.customer("Newcomer", created_at=AS_OF + SECOND, dob=date(1990, 12, 1))

    refresh(warehouse)

    assert lead not in members(warehouse, "birthday_this_month")


def test_same_day_rerun_identical_flags(warehouse, build):
    lead = build.customer("Stable", dob=date(1990, 12, 3), tier="Gold")
    build.ledger(lead, "cr", "reward", 1100, AS_OF - 3 * DAY, expire_at=AS_OF + 5 * DAY)
    build.coupon(lead, AS_OF - 3 * DAY)
    refresh(warehouse)
    query = "SELECT segment, lead_id, attribute_value, entry_details FROM loyalty.segment_member ORDER BY 1, 2"
    first = warehouse.execute(query).fetchall()

    refresh(warehouse)

    assert warehouse.execute(query).fetchall() == first
    assert len(first) >= 5


def test_sizes_list_every_segment(warehouse, build):
    build.customer("Someone")
    build.customer("Anonymous", customer_id=None)
    build.customer("Another")

    sizes = refresh(warehouse)

    assert list(sizes)[0] == "profiles"
    assert list(sizes)[-2:] == ["without_customer_id", "test_accounts"]
    assert "vip" in sizes
    assert sizes["profiles"] == 3
    assert sizes["without_customer_id"] == 1
