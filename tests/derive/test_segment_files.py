"""Segment files: header parsing, WebEngage limits, parameter overrides and query errors, each naming the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from loyalty_sync.derive.profile import refresh_profiles
from loyalty_sync.derive.segments import (
    SegmentError,
    default_segment_folder,
    load_segment_set,
    load_segments,
    parse_segment_file,
    resolve_parameters,
)
from loyalty_sync.settings import SettingsError, SyncSettings
from loyalty_sync.webengage.catalog import PROFILE_ATTRIBUTES
from staging_builder import AS_OF, Builder

VALID = """\
-- name: {name}
-- description: Holds a big balance.
-- attribute: {attribute} (boolean)
-- parameter: minimum (integer, default 500): Coins that count as big.
SELECT workspace_id, lead_id FROM loyalty.customer_profile WHERE coin_balance >= %(minimum)s
"""


def write(folder: Path, name: str, text: str | None = None, attribute: str | None = None) -> Path:
    path = folder / f"{name}.sql"
    path.write_text(text if text is not None else VALID.format(name=name, attribute=attribute or f"loyalty_{name}"))
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    """A copy of the bundled segment folder."""
    copy = tmp_path / "segments"
    shutil.copytree(default_segment_folder(), copy)
    return copy


def test_bundled_segments_load():
    segments = load_segments(default_segment_folder(), reserved_per_type=10)

    assert len(segments) >= 12
    assert all(segment.description and segment.attribute_name.startswith("loyalty_") for segment in segments)


def test_bundled_entry_events_declared():
    events = {segment.name: segment.entry_event for segment in load_segments(default_segment_folder())}

    assert events["coins_expiring_soon"] == "Coins Expiring Soon"
    assert events["birthday_this_month"] == "Birthday Reward Live"


def test_header_fields_parsed(tmp_path):
    path = write(tmp_path, "big_balance")

    segment = parse_segment_file(path)

    assert segment.attribute_name == "loyalty_big_balance"
    assert segment.attribute_type == "boolean"
    assert [(p.name, p.type, p.default) for p in segment.parameters] == [("minimum", "integer", 500)]
    assert segment.query.startswith("SELECT workspace_id")


def test_continuation_lines_join_description(tmp_path):
    path = write(tmp_path, "long", VALID.format(name="long", attribute="loyalty_long").replace(
        "-- description: Holds a big balance.\n", "-- description: Holds a big\n--   balance.\n"))

    assert parse_segment_file(path).description == "Holds a big balance."


@pytest.mark.parametrize(("change", "fragment"), [
    (("-- name: {name}\n", ""), "no '-- name: ...' line"),
    (("-- name: {name}", "-- name: other"), "differs from the file name"),
    (("-- description: Holds a big balance.\n", ""), "no '-- description: ...' line"),
    (("(boolean)", "(flag)"), "WebEngage types"),
    (("{attribute} (boolean)", "we_big (boolean)"), "WebEngage reserves"),
    (("{attribute} (boolean)", "loyalty_" + "x" * 45 + " (boolean)"), "at most 49"),
    (("{attribute} (boolean)", "loyalty-big (boolean)"), "letters, digits and underscores"),
    (("-- attribute:", "-- atribute:"), "unknown header key 'atribute'"),
    (("default 500", "default \"500\""), "not of type integer"),
    (("default 500", "default five"), "not a JSON value"),
    (("(integer,", "(decimal,"), "has type 'decimal'"),
    (("minimum (", "as_of ("), "reserved"),
    (("%(minimum)s\n", "%(minimum)s;\nDELETE FROM loyalty.customer_profile\n"), "more than one statement"),
    (("SELECT workspace_id, lead_id FROM loyalty.customer_profile WHERE coin_balance >= %(minimum)s\n", ""),
     "no query after the header"),
])
def test_invalid_header_names_file(tmp_path, change, fragment):
    old, new = change
    text = VALID.replace(old, new).format(name="big_balance", attribute="loyalty_big_balance")
    path = write(tmp_path, "big_balance", text)

    with pytest.raises(SegmentError) as raised:
        parse_segment_file(path)

    assert str(path) in str(raised.value)
    assert fragment in str(raised.value)


def test_event_data_needs_entry_event(tmp_path):
    text = VALID.format(name="big", attribute="loyalty_big").replace(
        "-- parameter:", "-- event data: coins (number, from coin_balance): Balance.\n-- parameter:")
    path = write(tmp_path, "big", text)

    with pytest.raises(SegmentError, match="entry event"):
        parse_segment_file(path)


def test_entry_event_may_not_reuse_catalog_event(tmp_path):
    text = VALID.format(name="big", attribute="loyalty_big").replace(
        "-- parameter:", "-- entry event: Points Earned\n-- parameter:")
    path = write(tmp_path, "big", text)

    with pytest.raises(SegmentError, match="already an activity event"):
        parse_segment_file(path)


def test_attribute_of_catalog_rejected(folder):
    path = write(folder, "balance_copy", attribute=next(a.name for a in PROFILE_ATTRIBUTES if not a.system))

    with pytest.raises(SegmentError) as raised:
        load_segments(folder)

    assert str(path) in str(raised.value)
    assert "already declared by the catalog" in str(raised.value)


def test_attribute_shared_by_two_files(folder):
    write(folder, "first_copy", attribute="loyalty_twice")
    second = write(folder, "second_copy", attribute="loyalty_twice")

    with pytest.raises(SegmentError) as raised:
        load_segments(folder)

    assert str(second) in str(raised.value)


def test_attribute_limit_names_file(folder):
    # The catalog has no boolean attributes, so every bundled segment uses one of the 25 boolean slots.
    # The checks go in file name order, so the last file is the one over the limit.
    bundled = len(load_segments(folder))
    free = 25 - 10 - bundled
    for number in range(free):
        write(folder, f"zz_extra_{number:02d}")
    over = write(folder, "zz_over")

    with pytest.raises(SegmentError) as raised:
        load_segments(folder, reserved_per_type=10)

    assert str(over) in str(raised.value)
    assert "reserved_custom_attributes_per_type" in str(raised.value)


def test_attribute_limit_follows_reserved_setting(folder):
    for number in range(25 - 10 - len(load_segments(folder)) + 1):
        write(folder, f"extra_{number:02d}")

    assert load_segments(folder, reserved_per_type=9)
    with pytest.raises(SegmentError):
        load_segments(folder, reserved_per_type=10)


def test_parameter_override_applied():
    segments = load_segments(default_segment_folder())

    resolved = resolve_parameters(segments, {"coins_expiring_soon": {"days": 15}})

    assert resolved["coins_expiring_soon"] == {"days": 15}
    assert resolved["idle_coins"] == {"days": 60}


@pytest.mark.parametrize(("overrides", "fragment"), [
    ({"no_such_segment": {"days": 1}}, "unknown segments ['no_such_segment']"),
    ({"coins_expiring_soon": {"weeks": 2}}, "unknown parameter 'weeks'"),
    ({"coins_expiring_soon": {"days": "15"}}, "not of type integer"),
    ({"milestone_crossed": {"thresholds": 1000}}, "not a list"),
    ({"vip": {"tiers": [1]}}, "not of type text[]"),
])
def test_bad_parameter_override(overrides, fragment):
    segments = load_segments(default_segment_folder())

    with pytest.raises(SegmentError) as raised:
        resolve_parameters(segments, overrides)

    assert fragment in str(raised.value)


def test_bad_override_rejected_in_settings():
    with pytest.raises(SettingsError, match="coins_expiring_soon.sql"):
        SyncSettings.from_mapping({"segment_parameters": {"coins_expiring_soon": {"days": "soon"}}})


def test_moved_setting_points_to_parameter():
    with pytest.raises(SettingsError) as raised:
        SyncSettings.from_mapping({"coins_expiring_within_days": 15})

    assert '{"coins_expiring_soon": {"days": 15}}' in str(raised.value)


def test_query_error_names_file(warehouse, tmp_path):
    path = write(tmp_path, "broken", VALID.format(name="broken", attribute="loyalty_broken").replace(
        "coin_balance >=", "no_such_column >="))
    settings = SyncSettings()

    with pytest.raises(SegmentError) as raised:
        refresh_profiles(warehouse, settings, AS_OF, load_segment_set(settings, tmp_path))

    assert str(path) in str(raised.value)
    assert "no_such_column" in str(raised.value)


def test_duplicate_lead_names_file(warehouse, tmp_path):
    Builder(warehouse).customer("Twice")
    path = write(tmp_path, "twice", VALID.format(name="twice", attribute="loyalty_twice").replace(
        "WHERE coin_balance >= %(minimum)s",
        "CROSS JOIN generate_series(1, 2) WHERE coin_balance >= %(minimum)s - 1000"))
    settings = SyncSettings()

    with pytest.raises(SegmentError) as raised:
        refresh_profiles(warehouse, settings, AS_OF, load_segment_set(settings, tmp_path))

    assert str(path) in str(raised.value)
    assert "more than once" in str(raised.value)


def test_undeclared_parameter_names_file(warehouse, tmp_path):
    path = write(tmp_path, "undeclared", VALID.format(name="undeclared", attribute="loyalty_undeclared").replace(
        "%(minimum)s", "%(maximum)s"))
    settings = SyncSettings()

    with pytest.raises(SegmentError) as raised:
        refresh_profiles(warehouse, settings, AS_OF, load_segment_set(settings, tmp_path))

    assert str(path) in str(raised.value)
    assert "maximum" in str(raised.value)


def test_failed_segment_changes_nothing(warehouse, tmp_path):
    lead = Builder(warehouse).customer("Kept")
    refresh_profiles(warehouse, SyncSettings(), AS_OF)
    write(tmp_path, "broken", VALID.format(name="broken", attribute="loyalty_broken").replace("coin_balance", "nope"))
    settings = SyncSettings()

    with pytest.raises(SegmentError):
        refresh_profiles(warehouse, settings, AS_OF, load_segment_set(settings, tmp_path))

    assert warehouse.execute("SELECT lead_id FROM loyalty.customer_profile").fetchall() == [(lead,)]
    assert warehouse.execute("SELECT count(*) FROM loyalty.segment").fetchone()[0] >= 12
