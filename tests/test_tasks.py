"""The instant a run computes flags at, from the data interval or, for manual runs, from now."""

from __future__ import annotations

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from loyalty_sync.tasks import interval_as_of

IST = ZoneInfo("Asia/Kolkata")


def test_nightly_interval_end_maps_to_midnight():
    end = datetime(2026, 11, 30, 20, 30, tzinfo=timezone.utc)  # 02:00 IST on 1 December

    assert interval_as_of(end, IST) == datetime(2026, 12, 1, 0, 0, tzinfo=IST)


def test_interval_end_before_local_midnight():
    end = datetime(2026, 11, 30, 18, 0, tzinfo=timezone.utc)  # 23:30 IST on 30 November

    assert interval_as_of(end, IST) == datetime(2026, 11, 30, 0, 0, tzinfo=IST)


def test_manual_run_without_interval_uses_today():
    now = datetime(2026, 12, 4, 15, 0, tzinfo=IST)

    assert interval_as_of(None, IST, now=now) == datetime(2026, 12, 4, 0, 0, tzinfo=IST)


def test_naive_interval_end_rejected():
    with pytest.raises(ValueError):
        interval_as_of(datetime(2026, 12, 1, 2, 0), IST)
