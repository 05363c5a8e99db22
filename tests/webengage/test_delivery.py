"""Queueing and delivery against a real Postgres and the stand-in: exactly once, only what changed."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
import pytest
from psycopg.types.json import Jsonb

from standin_connection import STANDIN_LICENSE_CODE
from loyalty_sync import tasks
from loyalty_sync.derive.profile import refresh_profiles
from loyalty_sync.settings import SyncSettings
from loyalty_sync.webengage.deliver import deliver_pending
from loyalty_sync.webengage.hook import WebEngageConfigError, WebEngageHook
from loyalty_sync.webengage.outbox import queue_all
from staging_builder import AS_OF, WORKSPACE, Builder

DAY = timedelta(days=1)


@pytest.fixture
def build(warehouse) -> Builder:
    return Builder(warehouse)


@pytest.fixture
def hook(webengage_conn_env) -> WebEngageHook:
    return WebEngageHook("webengage", max_attempts=2, sleep=lambda seconds: None)


def sync(conn: psycopg.Connection, sender, run_id: str, **settings: object) -> dict:
    """Derive, queue and deliver, as the DAG's tasks do."""
    run_settings = SyncSettings.from_mapping(settings)
    refresh_profiles(conn, run_settings, AS_OF)
    queued = queue_all(conn, run_settings, AS_OF, run_id)
    delivered = tasks.deliver(conn, run_settings, run_id, lambda conn_id: sender)
    return {"queued": queued, "delivered": delivered}


def outbox_status(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT status, count(*) FROM sync.webengage_outbox GROUP BY status").fetchall())


def test_recent_event_sent_old_one_skipped(warehouse, build, hook, standin):
    lead = build.customer("Aarav", customer_id="shopify-7012345678901")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 2 * DAY)
    build.ledger(lead, "cr", "reward", 50, AS_OF - 30 * DAY)

    result = sync(warehouse, hook, "run-1")

    events = standin.accepted_events(STANDIN_LICENSE_CODE)
    assert len(events) == 1
    assert events[0]["userId"] == "7012345678901"
    assert events[0]["eventName"] == "Points Earned"
    assert events[0]["eventTime"] == "2026-11-29T00:00:00+0530"
    assert events[0]["eventData"]["points"] == 100
    assert events[0]["eventData"]["balance_after"] == 150
    assert events[0]["eventData"]["currency"] == "INR"
    assert result["queued"].events_skipped == {"older than max_event_age_days (7) before the interval end": 1}
    assert standin.violations() == []


def test_user_attributes_sent_with_flags(warehouse, build, hook, standin):
    lead = build.customer("Diya Rao Sharma", email="diya@example.com", customer_id="shopify-42",
                          mobile_e164="+919876543210", dob=date(1994, 8, 17), gender="female",
                          email_opt_in=True, whatsapp_opt_in=None)
    build.ledger(lead, "cr", "reward", 100, AS_OF - 2 * DAY)

    sync(warehouse, hook, "run-1")

    users = standin.accepted_users(STANDIN_LICENSE_CODE)
    assert len(users) == 1
    user = users[0]
    assert user["userId"] == "42"
    assert user["firstName"] == "Diya"
    assert user["lastName"] == "Rao Sharma"
    assert user["phone"] == "+919876543210"
    assert user["birthDate"] == "1994-08-17T00:00:00+0530"
    assert user["emailOptIn"] is True
    assert "whatsappOptIn" not in user
    assert user["attributes"]["loyalty_coin_balance"] == 100
    assert user["attributes"]["loyalty_earned_never_redeemed"] is True
    assert user["attributes"]["loyalty_has_unused_coupon"] is False
    assert standin.violations() == []


def test_second_run_sends_nothing(warehouse, build, hook, standin):
    lead = build.customer("Aarav")
    build.ledger(lead, "cr", "reward", 100, AS_OF - 2 * DAY)
    sync(warehouse, hook, "run-1")
    calls_after_first = sum(standin.call_counts().values())

    second = sync(warehouse, hook, "run-2")

    assert second["delivered"] == {"users_sent": 0, "events_sent": 0, "batches": 0, "dead": 0}
    assert sum(standin.call_counts().values()) == calls_after_first
    assert second["queued"].users_unchanged == 1


def test_one_changed_customer_sends_one_user(warehouse, build, hook, standin):
    first = build.customer("First")
    build.customer("Second")
    build.customer("Third")
    sync(warehouse, hook, "run-1")
    standin.reset()

    build.coupon(first, AS_OF - DAY)
    sync(warehouse, hook, "run-2")

    users = standin.accepted_users()
    assert len(users) == 1
    assert users[0]["attributes"]["loyalty_has_unused_coupon"] is True


def test_lead_without_customer_id_skipped(warehouse, build, hook, standin):
    lead = build.customer("Anonymous", customer_id=None)
    build.ledger(lead, "cr", "reward", 100, AS_OF - DAY)

    result = sync(warehouse, hook, "run-1")

    assert result["queued"].events_skipped == {"lead has no customer id": 1}
    assert standin.accepted_events() == []
    assert standin.accepted_users() == []


def test_test_account_never_queued(warehouse, build, hook, standin):
    lead = build.customer("QA", email="qa@qa.nector-test.in")
    build.ledger(lead, "cr", "reward", 100, AS_OF - DAY)

    sync(warehouse, hook, "run-1", test_account_email_domains=["qa.nector-test.in"])

    assert warehouse.execute("SELECT count(*) FROM sync.webengage_outbox").fetchone()[0] == 0
    assert standin.accepted_events() == []


def test_prefix_and_disabled_events(warehouse, build, hook, standin):
    lead = build.customer("Prefixed")
    build.ledger(lead, "cr", "reward", 100, AS_OF - DAY)
    build.review(lead, AS_OF - DAY)

    sync(warehouse, hook, "run-1", event_name_prefix="Loyalty ", disabled_events=["review_submitted"])

    assert [event["eventName"] for event in standin.accepted_events()] == ["Loyalty Points Earned"]


def test_every_event_kind_fits_catalog(warehouse, build, hook, standin):
    lead = build.customer("Busy")
    build.ledger(lead, "cr", "reward", 100, AS_OF - DAY, expire_at=AS_OF + 300 * DAY)
    build.ledger(lead, "dr", "redeem", 40, AS_OF - DAY)
    build.coupon(lead, AS_OF - DAY, expire_at=AS_OF + 30 * DAY)
    build.referral(lead, "completed", AS_OF - DAY)
    build.review(lead, AS_OF - DAY)
    build.tier_change(lead, "Bronze", "Silver", AS_OF - DAY)

    sync(warehouse, hook, "run-1")

    names = sorted(event["eventName"] for event in standin.accepted_events())
    assert names == ["Points Earned", "Points Redeemed", "Referral Completed", "Review Submitted",
                     "Reward Unlocked", "Tier Changed"]
    tier_event = next(e for e in standin.accepted_events() if e["eventName"] == "Tier Changed")
    assert tier_event["eventData"] == {"old_tier": "Bronze", "new_tier": "Silver", "direction": "up"}
    assert standin.violations() == []


def test_poison_item_dead_lettered(warehouse, build, hook, standin):
    for number in range(25):
        lead = build.customer(f"Customer{number}")
        build.ledger(lead, "cr", "reward", 10, AS_OF - DAY)
    run_settings = SyncSettings()
    refresh_profiles(warehouse, run_settings, AS_OF)
    queue_all(warehouse, run_settings, AS_OF, "run-1")
    # An event without a userId: WebEngage rejects the whole batch it is in.
    warehouse.execute(
        "UPDATE sync.webengage_outbox SET payload = payload - 'userId' "
        "WHERE item_key = (SELECT item_key FROM sync.webengage_outbox WHERE kind = 'event' ORDER BY sequence "
        "OFFSET 7 LIMIT 1)"
    )

    summary = deliver_pending(warehouse, hook, "run-1", workspace_id=WORKSPACE)

    assert summary.events_sent == 24
    assert summary.dead == 1
    dead = warehouse.execute("SELECT last_error FROM sync.webengage_outbox WHERE status = 'dead'").fetchall()
    assert len(dead) == 1
    assert "userId and anonymousId cannot be empty" in dead[0][0]
    assert len(standin.accepted_events()) == 24


def test_wrong_key_fails_fast_outbox_untouched(warehouse, build, standin, monkeypatch):
    from standin_connection import webengage_connection_json

    lead = build.customer("Aarav")
    build.ledger(lead, "cr", "reward", 100, AS_OF - DAY)
    run_settings = SyncSettings()
    refresh_profiles(warehouse, run_settings, AS_OF)
    queue_all(warehouse, run_settings, AS_OF, "run-1")
    before = outbox_status(warehouse)
    connection = webengage_connection_json(standin.base_url).replace("test-api-key-not-a-secret", "revoked-key")
    monkeypatch.setenv("AIRFLOW_CONN_WEBENGAGE", connection)
    hook = WebEngageHook("webengage", max_attempts=2, sleep=lambda seconds: None)

    with pytest.raises(WebEngageConfigError):
        deliver_pending(warehouse, hook, "run-1", workspace_id=WORKSPACE)

    assert outbox_status(warehouse) == before
    assert standin.call_counts() == {"bulk-users 401": 1}


class CrashingSender:
    """Forwards to a real hook; on batch ``crash_at`` dies before or after WebEngage accepts it."""

    def __init__(self, hook: WebEngageHook, crash_at: int, after_send: bool) -> None:
        self.hook = hook
        self.crash_at = crash_at
        self.after_send = after_send
        self.calls = 0

    def send_bulk(self, kind, items):
        self.calls += 1
        if self.calls == self.crash_at and not self.after_send:
            raise KeyboardInterrupt("worker killed before sending")
        result = self.hook.send_bulk(kind, items)
        if self.calls == self.crash_at:
            raise KeyboardInterrupt("worker killed after WebEngage accepted the batch")
        return result


def seed_events(build: Builder, customers: int, events_each: int) -> None:
    for number in range(customers):
        lead = build.customer(f"Customer{number}")
        for event in range(events_each):
            build.ledger(lead, "cr", "reward", 10 + event, AS_OF - DAY + event * timedelta(minutes=1))


@pytest.mark.parametrize("crash_at", [1, 3, 5])
def test_crash_before_send_then_rerun_exactly_once(warehouse, build, hook, standin, crash_at):
    seed_events(build, customers=10, events_each=10)
    sender = CrashingSender(hook, crash_at=crash_at, after_send=False)

    with pytest.raises(KeyboardInterrupt):
        sync(warehouse, sender, "run-1")
    sync(warehouse, hook, "run-2")

    keys = [(event["userId"], event["eventTime"], event["eventData"]["points"]) for event in standin.accepted_events()]
    assert len(keys) == 100
    assert len(set(keys)) == 100
    assert outbox_status(warehouse) == {"sent": 110}


def test_crash_after_accept_resends_one_batch(warehouse, build, hook, standin):
    seed_events(build, customers=10, events_each=10)
    # Batch 1 carries the 10 users; batch 3 is the second batch of events.
    sender = CrashingSender(hook, crash_at=3, after_send=True)

    with pytest.raises(KeyboardInterrupt):
        sync(warehouse, sender, "run-1")
    sync(warehouse, hook, "run-2")

    keys = [(event["userId"], event["eventTime"], event["eventData"]["points"]) for event in standin.accepted_events()]
    assert len(set(keys)) == 100
    assert len(keys) - len(set(keys)) == 25
    assert outbox_status(warehouse) == {"sent": 110}
