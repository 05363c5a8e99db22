"""Rebuild the derived tables and the segments as of the end of a run's data interval."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from loyalty_sync.derive.membership import refresh_segments
from loyalty_sync.derive.rebuild import rebuild_from_file
from loyalty_sync.derive.segments import SegmentSet, load_segment_set
from loyalty_sync.settings import SyncSettings
from loyalty_sync.warehouse.sql import fetch_sql_file, load_sql, run_sql_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SharedTable:
    """A shared table the derive stage rebuilds from a query file, before the segments."""

    name: str
    query_file: str
    # Only the derive stage and analysts read an unlogged table. The profile feeds WebEngage, so a
    # database crash must not empty it.
    unlogged: bool
    # Planner and JIT settings for this query only, where the server's own choice measured slower.
    planner_settings: tuple[tuple[str, str], ...] = ()
    # Statistics for the later steps' plans. The credit lots go without: only aggregates read them,
    # whose plans did not change without statistics, and analyzing 6M lots took 0.5 s.
    analyze: bool = True


# In build order: each reads the ones before it.
SHARED_TABLES = (
    # Grouping the 10M ledger rows into 1M groups of ten aggregates on the benchmark data took 6.9 s
    # with a parallel sort and 7.1 s with a parallel hash, which held about 390 MB per process
    # (docs/benchmarks.md).
    SharedTable("ledger_total", "derive/02_ledger_totals.sql", unlogged=True,
                planner_settings=(("enable_hashagg", "off"),)),
    # The window's output comes sorted by lead, so a merge join with the sorted ledger totals streams
    # it. The planner's own hash join first built a 430 MB table of the 3.2M lots: 7.1 s on the
    # benchmark data, against 5.6-5.9 s for the merge join.
    SharedTable("credit_lot", "derive/03_credit_lots.sql", unlogged=True, analyze=False,
                planner_settings=(("enable_hashjoin", "off"),)),
    SharedTable("coupon_state", "derive/04_coupon_states.sql", unlogged=True),
    SharedTable("referral_state", "derive/05_referral_states.sql", unlogged=True),
    # Five per-lead inputs joined to 1M leads: sorted aggregates and merge joins took 5.8-5.9 s on the
    # benchmark data, hash aggregates and hash joins 8.1-8.7 s. With index scans on, the planner read
    # the customers in key order through their primary key, in random heap order (1.6 s more than a
    # sequential scan and a sort). Its cost passes the server's JIT thresholds. Compiling its 160-odd
    # expressions took 1.8 s of the statement's 9.6 s, so the step runs without JIT: 8.4 to 9.7 s in
    # nightly refreshes, against 10.5 to 10.9 s with it. The ledger totals keep JIT, which pays over
    # their 10M rows.
    SharedTable("customer_profile", "derive/06_customer_profile.sql", unlogged=False,
                planner_settings=(("enable_hashjoin", "off"), ("enable_hashagg", "off"),
                                  ("enable_indexscan", "off"), ("jit", "off"))),
)
# The profile's coins_expiring_soon column uses this segment's `days` parameter, so the number
# attribute and the segment agree. Without that segment file the default applies.
EXPIRING_SOON_SEGMENT = "coins_expiring_soon"
DEFAULT_EXPIRING_WITHIN_DAYS = 30
# Any fixed number works; two derive runs on one warehouse take turns on it.
_DERIVE_LOCK_KEY = 7_402_391_116


def derive_parameters(settings: SyncSettings, as_of: datetime, segment_set: SegmentSet) -> dict[str, Any]:
    expiring = segment_set.parameters.get(EXPIRING_SOON_SEGMENT, {})
    return {
        "as_of": as_of,
        "coin_expiry_days": settings.coin_expiry_days,
        "expiring_within_days": expiring.get("days", DEFAULT_EXPIRING_WITHIN_DAYS),
        "user_id_source": settings.user_id_source,
        "test_customer_ids": list(settings.test_account_customer_ids),
        "test_emails": [email.strip().lower() for email in settings.test_account_emails],
        "test_email_domains": [domain.strip().lower().lstrip("@") for domain in settings.test_account_email_domains],
    }


def refresh_profiles(
    conn: psycopg.Connection, settings: SyncSettings, as_of: datetime, segment_set: SegmentSet | None = None
) -> dict[str, int]:
    """Rebuild test accounts, the shared tables and every segment in one transaction; return the sizes.

    ``segment_set`` defaults to the segment files with the settings' parameters. ``conn`` must be in
    autocommit mode. Readers of the derived tables wait for the commit, then see the new rows.

    Raises:
        SegmentError: naming the segment file that is invalid or whose query failed; nothing changes.
    """
    if as_of.tzinfo is None:
        raise ValueError(f"as_of must be timezone-aware, got {as_of!r}")
    segment_set = segment_set or load_segment_set(settings)
    as_of_date = as_of.astimezone(settings.tz).date()
    parameters = derive_parameters(settings, as_of, segment_set)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DERIVE_LOCK_KEY,))
        # Day arithmetic (as_of minus N days, the month of as_of) follows the merchant's calendar.
        conn.execute(sql.SQL("SET LOCAL TIME ZONE {}").format(sql.Literal(settings.timezone)))
        conn.execute(sql.SQL("SET LOCAL work_mem = {}").format(sql.Literal(settings.derive_work_mem)))
        run_sql_file(conn, "derive/01_test_accounts.sql", parameters)
        for table in SHARED_TABLES:
            _rebuild_shared_table(conn, table, parameters)
        refresh_segments(conn, segment_set, as_of, as_of_date)
        rows = fetch_sql_file(conn, "derive/segment_sizes.sql", {"as_of_date": as_of_date})
    sizes = {row["segment"]: int(row["customers"]) for row in rows}
    log.info("Rebuilt profiles and segments as of %s: %s", as_of.isoformat(),
             ", ".join(f"{name}={count}" for name, count in sizes.items()))
    return sizes


def _rebuild_shared_table(conn: psycopg.Connection, table: SharedTable, parameters: dict[str, Any]) -> None:
    for name, value in table.planner_settings:
        conn.execute(sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(name), sql.Literal(value)))
    rebuild_from_file(conn, table.name, load_sql(table.query_file), parameters, unlogged=table.unlogged,
                      analyze=table.analyze)
    for name, _ in table.planner_settings:
        conn.execute(sql.SQL("RESET {}").format(sql.Identifier(name)))
