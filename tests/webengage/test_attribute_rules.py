"""WebEngage's naming, count and fixed-type rules, checked before anything is queued."""

from __future__ import annotations

import pytest

from delivery_harness import quiet_hook, queue_only, seed_events, sync
from loyalty_sync.settings import SettingsError, SyncSettings
from loyalty_sync.webengage.attribute_types import AttributeTypeConflict, CatalogRuleError, declared_attributes
from loyalty_sync.webengage.catalog import EVENTS, USER_ATTRIBUTES
from staging_builder import WORKSPACE, Builder


def registered(conn) -> dict[tuple[str, str, str], str]:
    rows = conn.execute(
        "SELECT item_kind, event_name, attribute, attribute_type FROM sync.webengage_attribute_type"
    ).fetchall()
    return {(kind, event_name, attribute): attribute_type for kind, event_name, attribute, attribute_type in rows}


def outbox_count(conn) -> int:
    return conn.execute("SELECT count(*) FROM sync.webengage_outbox").fetchone()[0]


def test_first_queue_registers_every_attribute(warehouse):
    seed_events(Builder(warehouse), customers=1, events_each=1)

    queue_only(warehouse, "run-1")

    types = registered(warehouse)
    assert len(types) == len(declared_attributes(SyncSettings()))
    assert len(types) >= len(USER_ATTRIBUTES) + sum(len(event.attributes) for event in EVENTS)
    assert types[("user", "", "loyalty_coin_balance")] == "number"
    assert types[("event", "Points Earned", "expires_at")] == "date"
    runs = {row[0] for row in warehouse.execute("SELECT DISTINCT first_run_id FROM sync.webengage_attribute_type")}
    assert runs == {"run-1"}


def test_registered_type_kept_forever(warehouse):
    seed_events(Builder(warehouse), customers=1, events_each=1)
    queue_only(warehouse, "run-1")

    queue_only(warehouse, "run-2")

    runs = {row[0] for row in warehouse.execute("SELECT DISTINCT first_run_id FROM sync.webengage_attribute_type")}
    assert runs == {"run-1"}


def test_type_conflict_stops_queueing(warehouse):
    build = Builder(warehouse)
    seed_events(build, customers=1, events_each=1)
    queue_only(warehouse, "run-1")
    # As if the attribute had first been sent as a string by an earlier version of the catalog.
    warehouse.execute("UPDATE sync.webengage_attribute_type SET attribute_type = 'string' "
                      "WHERE attribute = 'loyalty_coin_balance'")
    seed_events(build, customers=1, events_each=1)
    before = outbox_count(warehouse)

    with pytest.raises(AttributeTypeConflict) as raised:
        queue_only(warehouse, "run-2")

    message = str(raised.value)
    assert "'loyalty_coin_balance' is declared number but was first sent as string (run run-1)" in message
    assert WORKSPACE in message
    assert outbox_count(warehouse) == before


def test_conflict_rolls_back_new_registrations(warehouse):
    seed_events(Builder(warehouse), customers=1, events_each=1)
    queue_only(warehouse, "run-1")
    warehouse.execute("UPDATE sync.webengage_attribute_type SET attribute_type = 'number' "
                      "WHERE attribute = 'loyalty_tier'")

    with pytest.raises(AttributeTypeConflict):
        queue_only(warehouse, "run-2", event_name_prefix="Sync ")

    assert not any(event_name.startswith("Sync ") for _, event_name, _ in registered(warehouse))


def test_too_many_custom_attributes_stops_queueing(warehouse):
    seed_events(Builder(warehouse), customers=1, events_each=1)
    # Number attributes sent by earlier catalog versions still count against WebEngage's 25 per type.
    catalog_numbers = sum(1 for attribute in USER_ATTRIBUTES if attribute.type == "number" and not attribute.system)
    for number in range(20):
        warehouse.execute(
            "INSERT INTO sync.webengage_attribute_type (workspace_id, item_kind, event_name, attribute, "
            "attribute_type, system, first_run_id) VALUES (%s, 'user', '', %s, 'number', false, 'old')",
            (WORKSPACE, f"old_number_{number}"))

    with pytest.raises(CatalogRuleError, match=f"{catalog_numbers + 20} custom number user attributes have been sent"):
        queue_only(warehouse, "run-1")

    assert outbox_count(warehouse) == 0


@pytest.mark.parametrize(("prefix", "problem"), [
    ("we_", "starts with the reserved prefix 'we_'"),
    ("A prefix long enough to break the limit ", "WebEngage takes at most 49"),
])
def test_event_name_rules_stop_queueing(warehouse, prefix, problem):
    seed_events(Builder(warehouse), customers=1, events_each=1)

    with pytest.raises(CatalogRuleError, match=problem):
        queue_only(warehouse, "run-1", event_name_prefix=prefix)

    assert outbox_count(warehouse) == 0


def test_prefix_registers_new_event_names(warehouse):
    seed_events(Builder(warehouse), customers=1, events_each=1)

    queue_only(warehouse, "run-1", event_name_prefix="Sync ", disabled_events=["review_submitted"])

    event_names = {event_name for kind, event_name, _ in registered(warehouse) if kind == "event"}
    assert "Sync Points Earned" in event_names
    assert "Points Earned" not in event_names
    assert "Sync Review Submitted" not in event_names


def test_declared_attributes_skip_disabled_events():
    declared = declared_attributes(SyncSettings(disabled_events=("tier_changed",)))

    assert not any(attribute.event_name == "Tier Changed" for attribute in declared)
    assert any(attribute.event_name == "Points Earned" for attribute in declared)


def test_clear_on_null_sends_null(warehouse, webengage_conn_env):
    standin = webengage_conn_env
    Builder(warehouse).customer("Tierless")

    sync(warehouse, quiet_hook(), "run-1", clear_on_null=["loyalty_tier"])

    user = standin.accepted_users()[0]
    assert user["attributes"]["loyalty_tier"] is None
    assert standin.violations() == []


def test_null_never_overwrites_by_default(warehouse, webengage_conn_env):
    standin = webengage_conn_env
    lead = Builder(warehouse).customer("Referrer", referral_code="REF-1")
    sync(warehouse, quiet_hook(), "run-1")
    warehouse.execute("UPDATE nector.customers SET referral_code = NULL WHERE lead_id = %s", (lead,))

    sync(warehouse, quiet_hook(), "run-2")

    first, second = standin.accepted_users()
    assert first["attributes"]["loyalty_referral_code"] == "REF-1"
    assert "loyalty_referral_code" not in second["attributes"]


@pytest.mark.parametrize("name", ["phone", "no_such_attribute"])
def test_clear_on_null_takes_custom_attributes(name):
    with pytest.raises(SettingsError, match="clear_on_null"):
        SyncSettings.from_mapping({"clear_on_null": [name]})
