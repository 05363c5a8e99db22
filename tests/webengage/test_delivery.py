"""Queueing and delivery against a real Postgres and the stand-in: exactly once, only what changed."""

from __future__ import annotations

import threading
from datetime import date

import pytest

from delivery_harness import (
    DAY,
    CrashingSender,
    duplicates,
    event_keys,
    outbox_status,
    queue_only,
    seed_events,
    sync,
    table_rows,
)
from loyalty_sync import report
from loyalty_sync.webengage.deliver import DeliveryInProgress, deliver_pending
from loyalty_sync.webengage.hook import WebEngageConfigError, WebEngageError, WebEngageHook
from loyalty_sync.webengage.standin import FaultConfig
from standin_connection import STANDIN_LICENSE_CODE
from staging_builder import AS_OF, WORKSPACE, Builder


@pytest.fixture
def build(warehouse) -> Builder:
    return Builder(warehouse)


@pytest.fixture
def hook(webengage_conn_env) -> WebEngageHook:
    return WebEngageHook("webengage", max_attempts=2, sleep=lambda seconds: None)


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

    assert second["delivered"]["users_sent"] == 0
    assert second["delivered"]["events_sent"] == 0
    assert second["delivered"]["batches"] == 0
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
    queue_only(warehouse, "run-1")
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


@pytest.mark.parametrize("concurrency", [1, 4])
def test_rejected_item_24_of_25_delivered(warehouse, build, hook, standin, concurrency):
    leads = [build.customer(f"Customer{number}") for number in range(25)]
    for lead in leads:
        build.ledger(lead, "cr", "reward", 10, AS_OF - DAY)
    queue_only(warehouse, "run-1")
    poison_user = warehouse.execute(
        "SELECT user_id FROM sync.webengage_outbox WHERE kind = 'event' ORDER BY sequence OFFSET 11 LIMIT 1"
    ).fetchone()[0]
    standin.set_faults(FaultConfig(reject_items=({"userId": poison_user, "eventName": "Points Earned"},)))

    summary = deliver_pending(warehouse, hook, "run-1", workspace_id=WORKSPACE, concurrency=concurrency)

    assert summary.events_sent == 24
    assert summary.dead == 1
    assert len(standin.accepted_events()) == 24
    assert poison_user not in {event["userId"] for event in standin.accepted_events()}
    dead = warehouse.execute("SELECT user_id, reason, last_error FROM sync.webengage_dead_letter").fetchall()
    assert [row[0] for row in dead] == [poison_user]
    assert dead[0][1] == "rejected by WebEngage"
    assert "item 0 of events was rejected" in dead[0][2]


@pytest.mark.parametrize("concurrency", [1, 4])
def test_wrong_key_fails_fast_outbox_untouched(warehouse, build, standin, monkeypatch, concurrency):
    from standin_connection import webengage_connection_json

    seed_events(build, customers=30, events_each=3)
    queue_only(warehouse, "run-1")
    before = table_rows(warehouse, "sync.webengage_outbox")
    connection = webengage_connection_json(standin.base_url).replace("test-api-key-not-a-secret", "revoked-key")
    monkeypatch.setenv("AIRFLOW_CONN_WEBENGAGE", connection)
    hook = WebEngageHook("webengage", max_attempts=2, sleep=lambda seconds: None)

    with pytest.raises(WebEngageConfigError) as raised:
        deliver_pending(warehouse, hook, "run-1", workspace_id=WORKSPACE, concurrency=concurrency)

    assert "401" in str(raised.value)
    assert STANDIN_LICENSE_CODE in str(raised.value)
    assert table_rows(warehouse, "sync.webengage_outbox") == before
    # Each sender stops after its first call; none is retried.
    assert 1 <= standin.call_counts()["bulk-users 401"] <= concurrency
    assert set(standin.call_counts()) == {"bulk-users 401"}


@pytest.mark.parametrize("concurrency", [1, 4])
@pytest.mark.parametrize("crash_at", [1, 3, 5])
def test_crash_before_send_then_rerun_exactly_once(warehouse, build, hook, standin, crash_at, concurrency):
    seed_events(build, customers=10, events_each=10)
    sender = CrashingSender(hook, crash_at=crash_at, after_send=False)

    with pytest.raises(KeyboardInterrupt):
        sync(warehouse, sender, "run-1", concurrency=concurrency)
    sync(warehouse, hook, "run-2", concurrency=concurrency)

    keys = event_keys(standin)
    assert len(keys) == 100
    assert duplicates(keys) == 0
    assert outbox_status(warehouse) == {"sent": 110}


@pytest.mark.parametrize("concurrency", [1, 4])
def test_crash_after_accept_resends_one_batch(warehouse, build, hook, standin, concurrency):
    seed_events(build, customers=10, events_each=10)
    # Call 1 carries the 10 users; call 3 is the second batch of events.
    sender = CrashingSender(hook, crash_at=3, after_send=True)

    with pytest.raises(KeyboardInterrupt):
        sync(warehouse, sender, "run-1", concurrency=concurrency)
    second = sync(warehouse, hook, "run-2", concurrency=concurrency)

    keys = event_keys(standin)
    assert len(set(keys)) == 100
    assert duplicates(keys) == 25
    assert outbox_status(warehouse) == {"sent": 110}
    assert second["delivered"]["interrupted_batches"] == 1
    assert second["delivered"]["resent_batches"] == 1


def test_resent_batch_in_run_report(warehouse, build, hook, standin):
    seed_events(build, customers=10, events_each=10)
    with pytest.raises(KeyboardInterrupt):
        sync(warehouse, CrashingSender(hook, crash_at=2, after_send=True), "run-1")
    sync(warehouse, hook, "run-2")

    summary = report.build_report(warehouse, "run-2", AS_OF)

    assert summary["delivery"]["resent_batches"] == 1
    assert summary["delivery"]["events_sent"] == 100
    assert "resent after a crash           1 batches" in report.format_report(summary)
    first_run = report.build_report(warehouse, "run-1", AS_OF)
    assert first_run["delivery"]["resent_batches"] == 0


@pytest.mark.parametrize(("crash_at", "accepted_first"), [(2, 25), (4, 40 + 25), (9, 40 + 150)])
def test_failure_at_batch_k_of_n_exactly_once(warehouse, build, hook, standin, crash_at, accepted_first):
    # 40 customers with 5 events: 2 user calls (25 and 15 users), then 8 event calls.
    seed_events(build, customers=40, events_each=5)
    sender = CrashingSender(hook, crash_at=crash_at, after_send=False)

    with pytest.raises(KeyboardInterrupt):
        sync(warehouse, sender, "run-1")
    accepted_before_rerun = len(standin.accepted_events()) + len(standin.accepted_users())
    sync(warehouse, hook, "run-2")

    assert accepted_before_rerun == accepted_first
    assert len(event_keys(standin)) == 200
    assert duplicates(event_keys(standin)) == 0
    assert sorted(user["userId"] for user in standin.accepted_users()) == sorted(
        {event["userId"] for event in standin.accepted_events()})


def test_interrupted_batch_marked_on_rerun(warehouse, build, hook, standin):
    seed_events(build, customers=3, events_each=1)
    with pytest.raises(KeyboardInterrupt):
        sync(warehouse, CrashingSender(hook, crash_at=2, after_send=True), "run-1")
    in_flight = warehouse.execute("SELECT status, kind FROM sync.webengage_batch ORDER BY started_at").fetchall()

    sync(warehouse, hook, "run-2")

    assert in_flight == [("accepted", "user"), ("in_flight", "event")]
    statuses = warehouse.execute("SELECT run_id, status FROM sync.webengage_batch ORDER BY started_at").fetchall()
    assert statuses == [("run-1", "accepted"), ("run-1", "interrupted"), ("run-2", "accepted")]


def test_second_delivery_waits_for_lock(warehouse, build, hook, standin, database_url):
    import psycopg

    seed_events(build, customers=1, events_each=1)
    queue_only(warehouse, "run-1")
    with psycopg.connect(database_url, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))",
                      (f"loyalty_sync.webengage_delivery:{WORKSPACE}",))

        with pytest.raises(DeliveryInProgress):
            deliver_pending(warehouse, hook, "run-1", workspace_id=WORKSPACE)

    assert standin.call_counts() == {}


class StoppingSender:
    """Forwards to a real hook and raises WebEngageError on call ``stop_at``, which stops the delivery."""

    def __init__(self, hook: WebEngageHook, stop_at: int) -> None:
        self.hook = hook
        self.stop_at = stop_at
        self.calls = 0
        self.lock = threading.Lock()

    def send_bulk(self, kind, items):
        with self.lock:
            self.calls += 1
            call = self.calls
        if call == self.stop_at:
            raise WebEngageError("stopped by the test")
        return self.hook.send_bulk(kind, items)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_stopped_delivery_leaves_nothing_in_flight(warehouse, build, hook, standin, concurrency):
    # 60 customers with 5 events: 3 user calls, then 12 event calls.
    seed_events(build, customers=60, events_each=5)
    queue_only(warehouse, "run-1")

    with pytest.raises(WebEngageError, match="stopped by the test"):
        deliver_pending(warehouse, StoppingSender(hook, stop_at=6), "run-1", workspace_id=WORKSPACE,
                        concurrency=concurrency)
    in_flight = warehouse.execute("SELECT count(*) FROM sync.webengage_batch WHERE status = 'in_flight'").fetchone()[0]
    second = deliver_pending(warehouse, hook, "run-2", workspace_id=WORKSPACE, concurrency=concurrency)

    assert in_flight == 0
    assert second.interrupted_batches == 0
    assert len(event_keys(standin)) == 300
    assert duplicates(event_keys(standin)) == 0


@pytest.mark.parametrize("concurrency", [2, 4])
def test_concurrent_senders_deliver_everything(warehouse, build, hook, standin, concurrency):
    seed_events(build, customers=60, events_each=5)

    result = sync(warehouse, hook, "run-1", concurrency=concurrency)

    assert result["delivered"]["events_sent"] == 300
    assert result["delivered"]["users_sent"] == 60
    assert duplicates(event_keys(standin)) == 0
    assert len(event_keys(standin)) == 300
    senders = {row[0] for row in warehouse.execute("SELECT DISTINCT sender FROM sync.webengage_batch")}
    assert len(senders) > 1
    assert standin.violations() == []


def test_users_sent_before_events(warehouse, build, hook, standin):
    seed_events(build, customers=60, events_each=2)

    sync(warehouse, hook, "run-1", concurrency=4)

    rows = warehouse.execute(
        "SELECT kind, min(started_at), max(finished_at) FROM sync.webengage_batch GROUP BY kind"
    ).fetchall()
    times = {kind: (first, last) for kind, first, last in rows}
    assert times["user"][1] <= times["event"][0]


def test_attributes_back_to_earlier_state_resent(warehouse, build, hook, standin):
    lead = build.customer("Flip")
    sync(warehouse, hook, "run-1")
    build.coupon(lead, AS_OF - DAY)
    sync(warehouse, hook, "run-2")
    warehouse.execute("DELETE FROM nector.coupons")

    sync(warehouse, hook, "run-3")

    flags = [user["attributes"]["loyalty_has_unused_coupon"] for user in standin.accepted_users()]
    assert flags == [False, True, False]
    state = warehouse.execute("SELECT count(*) FROM sync.webengage_user_state").fetchone()[0]
    assert state == 1


def test_full_resync_sends_every_user_once(warehouse, build, hook, standin):
    for number in range(3):
        build.customer(f"Customer{number}")
    sync(warehouse, hook, "run-1")
    standin.reset()

    first = sync(warehouse, hook, "run-2", full_resync=True)
    retried = sync(warehouse, hook, "run-2", full_resync=True)
    normal = sync(warehouse, hook, "run-3")

    assert first["delivered"]["users_sent"] == 3
    assert retried["delivered"]["users_sent"] == 0
    assert normal["delivered"]["users_sent"] == 0
    assert len(standin.accepted_users()) == 3


def test_full_resync_sends_no_event_twice(warehouse, build, hook, standin):
    seed_events(build, customers=2, events_each=2)
    sync(warehouse, hook, "run-1")

    sync(warehouse, hook, "run-2", full_resync=True)

    assert len(event_keys(standin)) == 4
    assert len(standin.accepted_users()) == 4


def test_transient_failure_marks_items_failed(warehouse, build, hook, standin):
    seed_events(build, customers=2, events_each=1)
    queue_only(warehouse, "run-1")
    standin.set_faults(FaultConfig(error_rate=1.0))

    with pytest.raises(Exception, match="failed 2 times"):
        deliver_pending(warehouse, hook, "run-1", workspace_id=WORKSPACE)

    failed = warehouse.execute(
        "SELECT kind, attempts, last_error FROM sync.webengage_outbox WHERE status = 'failed'").fetchall()
    assert [row[0] for row in failed] == ["user", "user"]
    assert all(row[1] == 1 for row in failed)
    assert "HTTP 503" in failed[0][2]
    assert outbox_status(warehouse) == {"failed": 2, "pending": 2}

    standin.set_faults(FaultConfig())
    deliver_pending(warehouse, hook, "run-2", workspace_id=WORKSPACE)

    assert outbox_status(warehouse) == {"sent": 4}
