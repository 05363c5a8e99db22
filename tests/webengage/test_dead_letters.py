"""Dead letters: recorded with their reason, queryable, and re-driven with one option after a fix."""

from __future__ import annotations

from datetime import timedelta

from delivery_harness import DAY, event_keys, outbox_status, quiet_hook, seed_events, sync
from loyalty_sync import tasks
from loyalty_sync.derive.profile import refresh_profiles
from loyalty_sync.settings import SyncSettings
from loyalty_sync.webengage.outbox import queue_all
from loyalty_sync.webengage.standin import FaultConfig
from staging_builder import AS_OF, Builder


def dead_letters(conn) -> list[tuple]:
    return conn.execute(
        "SELECT kind, user_id, reason, last_error, redrive_count FROM sync.webengage_dead_letter ORDER BY item_key"
    ).fetchall()


def test_rejected_event_redriven_after_fix(warehouse, webengage_conn_env):
    standin = webengage_conn_env
    build = Builder(warehouse)
    seed_events(build, customers=3, events_each=1)
    refresh_profiles(warehouse, SyncSettings(), AS_OF)
    poison_user = warehouse.execute("SELECT min(user_id) FROM loyalty.customer_profile").fetchone()[0]
    standin.set_faults(FaultConfig(reject_items=({"userId": poison_user, "eventName": "Points Earned"},)))
    sync(warehouse, quiet_hook(), "run-1")
    dead_before = dead_letters(warehouse)
    standin.set_faults(FaultConfig())

    plain = sync(warehouse, quiet_hook(), "run-2")
    redriven = sync(warehouse, quiet_hook(), "run-3", redrive=True)

    assert [(row[0], row[1], row[2]) for row in dead_before] == [("event", poison_user, "rejected by WebEngage")]
    assert plain["delivered"]["events_sent"] == 0
    assert redriven["queued"].redriven == 1
    assert redriven["delivered"]["events_sent"] == 1
    all_users = sorted(row[0] for row in warehouse.execute("SELECT user_id FROM loyalty.customer_profile"))
    assert sorted(key[0] for key in event_keys(standin)) == all_users
    assert dead_letters(warehouse) == []
    assert warehouse.execute("SELECT redrive_count, redriven_run_id, attempts FROM sync.webengage_outbox "
                             "WHERE user_id = %s AND kind = 'event'", (poison_user,)).fetchone() == (1, "run-3", 2)


def test_bad_event_value_dead_then_redriven(warehouse, webengage_conn_env):
    standin = webengage_conn_env
    build = Builder(warehouse)
    lead = build.customer("Long")
    build.ledger(lead, "cr", "reward", 100, AS_OF - DAY)
    warehouse.execute("UPDATE nector.wallet_transactions SET title = repeat('x', 1200)")

    first = sync(warehouse, quiet_hook(), "run-1")
    warehouse.execute("UPDATE nector.wallet_transactions SET title = 'Order reward'")
    # Ten days later the event is older than max_event_age_days, but a re-driven item is still sent.
    later = AS_OF + timedelta(days=10)
    settings = SyncSettings()
    refresh_profiles(warehouse, settings, later)
    queued = queue_all(warehouse, settings, later, "run-2", redrive_dead_letters=True)
    tasks.deliver(warehouse, settings, "run-2", lambda conn_id: quiet_hook())

    assert first["queued"].events_dead == {"Points Earned.reason is 1200 characters long; WebEngage takes at most 999": 1}
    assert queued.redriven == 1
    assert [event["eventData"]["reason"] for event in standin.accepted_events()] == ["Order reward"]
    assert outbox_status(warehouse) == {"sent": 2}


def test_bad_user_value_recorded_dead(warehouse, webengage_conn_env):
    standin = webengage_conn_env
    build = Builder(warehouse)
    build.customer("Fine")
    bad = build.customer("y" * 1200, email="y@example.com")

    first = sync(warehouse, quiet_hook(), "run-1")
    again = sync(warehouse, quiet_hook(), "run-2")

    assert first["queued"].users_dead == 1
    assert again["queued"].users_dead == 1
    letters = dead_letters(warehouse)
    assert len(letters) == 1
    assert letters[0][0] == "user"
    assert letters[0][2] == "firstName is 1200 characters long; WebEngage takes at most 999"
    assert len(standin.accepted_users()) == 1
    bad_user = warehouse.execute("SELECT user_id FROM loyalty.customer_profile WHERE lead_id = %s", (bad,)).fetchone()[0]
    assert bad_user not in {user["userId"] for user in standin.accepted_users()}


def test_fixed_user_sent_and_dead_retired(warehouse, webengage_conn_env):
    standin = webengage_conn_env
    build = Builder(warehouse)
    bad = build.customer("z" * 1200, email="z@example.com")
    sync(warehouse, quiet_hook(), "run-1")
    warehouse.execute("UPDATE nector.customers SET name = 'Zara' WHERE lead_id = %s", (bad,))

    sync(warehouse, quiet_hook(), "run-2")
    kept = dead_letters(warehouse)
    sync(warehouse, quiet_hook(), "run-3", redrive=True)

    assert [user["firstName"] for user in standin.accepted_users()] == ["Zara"]
    assert len(kept) == 1
    assert dead_letters(warehouse) == []
    assert outbox_status(warehouse) == {"sent": 1, "superseded": 1}


def test_dead_item_without_source_resent_as_stored(warehouse, webengage_conn_env):
    standin = webengage_conn_env
    seed_events(Builder(warehouse), customers=1, events_each=1)
    sync(warehouse, quiet_hook(), "run-1")
    warehouse.execute("UPDATE sync.webengage_outbox SET status = 'dead', reason = 'rejected by WebEngage' "
                      "WHERE kind = 'event'")
    warehouse.execute("DELETE FROM nector.wallet_transactions")
    standin.reset()

    result = sync(warehouse, quiet_hook(), "run-2", redrive=True)

    assert result["queued"].redriven == 1
    assert len(standin.accepted_events()) == 1
    assert dead_letters(warehouse) == []
