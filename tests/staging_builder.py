"""Insert staging rows directly, for tests of the stages after the loader."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg

IST = ZoneInfo("Asia/Kolkata")
AS_OF = datetime(2026, 12, 1, 0, 0, tzinfo=IST)
WORKSPACE = "shopify-test-brand"


class Builder:
    """Inserts staging rows directly; every row belongs to one fake export file."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self.file_id = conn.execute(
            "INSERT INTO sync.export_file (path, sha256, status, currency_code) VALUES ('test', 'x', 'loaded', 'INR') "
            "RETURNING export_file_id"
        ).fetchone()[0]
        for rank, tier in enumerate(("Bronze", "Silver", "Gold"), start=1):
            conn.execute(
                "INSERT INTO nector.tiers (workspace_id, tier_name, rank, updated_at, _export_file_id) "
                "VALUES (%s, %s, %s, now(), %s)", (WORKSPACE, tier, rank, self.file_id))

    def customer(self, name: str, email: str | None = None, customer_id: str | None = "auto",
                 **columns: object) -> uuid.UUID:
        """Insert a lead created 400 days before ``AS_OF``; ``columns`` sets any other customer column."""
        lead_id = uuid.uuid4()
        if customer_id == "auto":
            customer_id = f"shopify-{lead_id.int % 10**13}"
        values: dict[str, object] = {
            "workspace_id": WORKSPACE,
            "lead_id": lead_id,
            "customer_id": customer_id,
            "name": name,
            "email": email or f"{name.lower()}@example.com",
            "created_at": AS_OF - timedelta(days=400),
            "updated_at": AS_OF - timedelta(days=400),
            "_export_file_id": self.file_id,
            **columns,
        }
        names = ", ".join(values)
        placeholders = ", ".join(["%s"] * len(values))
        self.conn.execute(f"INSERT INTO nector.customers ({names}) VALUES ({placeholders})", list(values.values()))
        self.conn.execute(
            "UPDATE nector.customers SET platform_customer_id = nector.customer_id_without_platform(customer_id) "
            "WHERE lead_id = %s", (lead_id,))
        return lead_id

    def ledger(self, lead_id: uuid.UUID, operation: str, type_: str, amount: float, at: datetime,
               expire_at: datetime | None = None, status: str = "success") -> None:
        self.conn.execute(
            """
            INSERT INTO nector.wallet_transactions (workspace_id, wallettransaction_id, lead_id, operation, type, status,
                                                    amount, expire_at, created_at, updated_at, _export_file_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (WORKSPACE, uuid.uuid4(), lead_id, operation, type_, status, amount, expire_at, at, at, self.file_id),
        )

    def coupon(self, lead_id: uuid.UUID, created_at: datetime, used_at: datetime | None = None,
               expire_at: datetime | None = None, source: str = "redeem") -> None:
        self.conn.execute(
            """
            INSERT INTO nector.coupons (workspace_id, coupon_id, lead_id, code, source, used_at, expire_at, created_at,
                                        updated_at, _export_file_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (WORKSPACE, uuid.uuid4(), lead_id, "CODE-1", source, used_at, expire_at, created_at, created_at, self.file_id),
        )

    def referral(self, referrer: uuid.UUID, status: str, completed_at: datetime | None,
                 friend: uuid.UUID | None = None, created_at: datetime | None = None,
                 updated_at: datetime | None = None) -> None:
        """Insert a referral by ``referrer``, to ``friend`` when given, started 60 days before ``AS_OF`` by default."""
        self.conn.execute(
            """
            INSERT INTO nector.referrals (workspace_id, referral_id, referred_by_lead_id, referred_to_lead_id, status,
                                          created_at, completed_at, updated_at, _export_file_id)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            """,
            (WORKSPACE, uuid.uuid4(), referrer, friend, status, created_at or AS_OF - timedelta(days=60),
             completed_at, updated_at or AS_OF - timedelta(days=1), self.file_id),
        )

    def review(self, lead_id: uuid.UUID, at: datetime) -> None:
        self.conn.execute(
            "INSERT INTO nector.reviews (workspace_id, review_id, lead_id, rating, created_at, updated_at, _export_file_id) "
            "VALUES (%s, %s, %s, 5, %s, %s, %s)", (WORKSPACE, uuid.uuid4(), lead_id, at, at, self.file_id))

    def tier_change(self, lead_id: uuid.UUID, previous: str | None, new: str, at: datetime) -> None:
        self.conn.execute(
            "INSERT INTO nector.tier_changes (workspace_id, event_id, lead_id, previous_tier, new_tier, changed_at, "
            "_export_file_id) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (WORKSPACE, str(uuid.uuid4()), lead_id, previous, new, at, self.file_id))
