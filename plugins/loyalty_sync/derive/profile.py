"""Rebuild the derived tables as of the end of a run's data interval."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from loyalty_sync.settings import SyncSettings
from loyalty_sync.warehouse.sql import fetch_sql_file, run_sql_file

log = logging.getLogger(__name__)

# Run in this order: each step reads the tables the previous ones built.
DERIVE_STEPS = (
    "derive/01_test_accounts.sql",
    "derive/02_credit_lots.sql",
    "derive/03_customer_profile.sql",
)


def derive_parameters(settings: SyncSettings, as_of: datetime) -> dict[str, Any]:
    return {
        "as_of": as_of,
        "coins_expiring_within_days": settings.coins_expiring_within_days,
        "referral_window_days": settings.referral_window_days,
        "review_window_days": settings.review_window_days,
        "tier_upgrade_window_days": settings.tier_upgrade_window_days,
        "user_id_source": settings.user_id_source,
        "test_customer_ids": list(settings.test_account_customer_ids),
        "test_emails": [email.strip().lower() for email in settings.test_account_emails],
        "test_email_domains": [domain.strip().lower().lstrip("@") for domain in settings.test_account_email_domains],
    }


def refresh_profiles(conn: psycopg.Connection, settings: SyncSettings, as_of: datetime) -> dict[str, int]:
    """Rebuild test accounts, credit lots and profiles in one transaction; return the segment sizes.

    ``conn`` must be in autocommit mode. Readers see the previous profile until the new one commits.
    """
    if as_of.tzinfo is None:
        raise ValueError(f"as_of must be timezone-aware, got {as_of!r}")
    parameters = derive_parameters(settings, as_of)
    with conn.transaction():
        # Day arithmetic (as_of minus N days) follows the merchant's calendar.
        conn.execute(sql.SQL("SET LOCAL TIME ZONE {}").format(sql.Literal(settings.timezone)))
        for step in DERIVE_STEPS:
            run_sql_file(conn, step, parameters)
        sizes = fetch_sql_file(conn, "derive/segment_sizes.sql")[0]
    log.info("Rebuilt profiles as of %s: %s", as_of.isoformat(), ", ".join(f"{k}={v}" for k, v in sizes.items()))
    return {key: int(value) for key, value in sizes.items()}
