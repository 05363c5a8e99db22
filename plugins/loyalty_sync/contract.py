"""The Nector export contract, version 1: one declaration per entity.

The loader, the generated docs, the sample generator and the tests all read these declarations, so a
column is added or retyped here and nowhere else (plus a numbered migration for the staging table).

A column's ``type`` is one of the keys of ``SQL_TYPES``. Values are trimmed and an empty value is NULL
before any check runs. Enumerations compare lower-cased.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

CONTRACT_VERSION = "1"

# Contract type -> Postgres type of the staging column.
SQL_TYPES: dict[str, str] = {
    "text": "text",
    "uuid": "uuid",
    "numeric": "numeric(14,2)",
    "integer": "integer",
    "boolean": "boolean",
    "date": "date",
    "timestamptz": "timestamptz",
}


@dataclass(frozen=True)
class Column:
    """One column of an export file and of its staging table."""

    name: str
    type: str
    description: str
    required: bool = False
    enum: tuple[str, ...] | None = None
    min_value: float | None = None
    max_value: float | None = None
    # SQL function applied to the trimmed text before it is checked, for example ``lower``.
    normalize: str | None = None

    def __post_init__(self) -> None:
        if self.type not in SQL_TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}, expected one of {sorted(SQL_TYPES)}")

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.type]


@dataclass(frozen=True)
class DerivedColumn:
    """A staging column computed from loaded columns; ``expression`` refers to them by name."""

    name: str
    type: str
    description: str
    expression: str


@dataclass(frozen=True)
class Entity:
    """One export file (``<name>.csv``) and the staging table it upserts into."""

    name: str
    description: str
    columns: tuple[Column, ...]
    natural_key: tuple[str, ...]
    # Newer value wins on upsert; an equal or older one changes nothing.
    version_column: str
    derived: tuple[DerivedColumn, ...] = field(default=())

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"

    @property
    def table(self) -> str:
        return f"nector.{self.name}"

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns if column.required)

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.name} has no column {name!r}")


def _workspace() -> Column:
    return Column("workspace_id", "text", "Nector workspace, for example `shopify-demo-brand`.", required=True)


def _timestamps(created_required: bool = True) -> tuple[Column, ...]:
    return (
        Column("created_at", "timestamptz", "When Nector created the record.", required=created_required),
        Column("updated_at", "timestamptz", "When Nector last changed the record; the upsert version.", required=True),
    )


CUSTOMERS = Entity(
    name="customers",
    description="One row per Nector lead (customer), the current snapshot.",
    natural_key=("workspace_id", "lead_id"),
    version_column="updated_at",
    columns=(
        _workspace(),
        Column("lead_id", "uuid", "Nector lead id (`_id`).", required=True),
        Column("customer_id", "text", "Store customer id with the platform prefix, for example `shopify-7012345678901`."),
        Column("name", "text", "Full name."),
        Column("email", "text", "Email address; stored trimmed and lower-cased.", normalize="nector.normalize_email"),
        Column("mobile", "text", "Mobile number as Nector holds it, usually 10 digits for India."),
        Column("country", "text", "Three-letter lower-case country code (`ind`); the mobile's country.", normalize="lower"),
        Column("dob", "date", "Date of birth."),
        Column("gender", "text", "Gender.", enum=("male", "female", "other")),
        Column("referral_code", "text", "The lead's own referral code."),
        Column("referred_by_referral_code", "text", "Referral code of the lead who referred this one."),
        Column("tier", "text", "Current VIP tier name."),
        Column("classification", "text", "Lead or affiliate.", enum=("lead", "affiliate")),
        Column("coins_available", "numeric", "Coin balance according to Nector at export time.", min_value=0),
        Column("email_opt_in", "boolean", "Consent to marketing email; empty when unknown."),
        Column("sms_opt_in", "boolean", "Consent to marketing SMS; empty when unknown."),
        Column("whatsapp_opt_in", "boolean", "Explicit consent to WhatsApp messages; empty when unknown."),
        *_timestamps(),
    ),
    derived=(
        DerivedColumn("platform", "text", "Prefix of `customer_id` (`shopify`, `custom_website`).",
                      "nector.customer_id_platform(customer_id)"),
        DerivedColumn("platform_customer_id", "text", "`customer_id` without the platform prefix.",
                      "nector.customer_id_without_platform(customer_id)"),
        DerivedColumn("mobile_e164", "text", "Mobile in E.164 form, from `mobile` and `country`; NULL when not valid.",
                      "nector.to_e164(mobile, country)"),
    ),
)

WALLET_TRANSACTIONS = Entity(
    name="wallet_transactions",
    description="The coin ledger: one row per credit (`cr`) or debit (`dr`). Rows are never deleted.",
    natural_key=("workspace_id", "wallettransaction_id"),
    version_column="updated_at",
    columns=(
        _workspace(),
        Column("wallettransaction_id", "uuid", "Nector wallet transaction id (`_id`).", required=True),
        Column("lead_id", "uuid", "Lead whose wallet changed.", required=True),
        Column("customer_id", "text", "Store customer id, denormalised."),
        Column("wallet_type", "text", "Which wallet.", enum=("coins", "credits")),
        Column("operation", "text", "`cr` adds coins, `dr` removes them.", required=True, enum=("cr", "dr")),
        Column("type", "text", "Why the balance changed.", required=True,
               enum=("reward", "redeem", "expire", "revert", "adjust")),
        Column("status", "text", "Only `success` rows count towards balances.", enum=("pending", "success", "failed")),
        Column("amount", "numeric", "Coins moved, never negative; the sign is in `operation`.", required=True,
               min_value=0),
        Column("title", "text", "Short label shown to the customer."),
        Column("description", "text", "Longer text shown to the customer."),
        Column("hash", "text", "Nector's idempotency hash for the transaction."),
        Column("reference_order_id", "text", "Store order the transaction belongs to."),
        Column("coupon_id", "uuid", "Coupon issued for a `redeem` debit."),
        Column("expire_at", "timestamptz", "When the coins of a credit expire; empty for never."),
        *_timestamps(),
    ),
)

OFFERS = Entity(
    name="offers",
    description="The reward catalogue: what a coupon gives and what it costs in coins. A small dimension, "
                "usually sent in full with every export.",
    natural_key=("workspace_id", "offer_id"),
    version_column="updated_at",
    columns=(
        _workspace(),
        Column("offer_id", "uuid", "Nector offer id (`_id`).", required=True),
        Column("name", "text", "Offer name shown to customers, for example `₹100 off`.", required=True),
        Column("description", "text", "Longer text shown to customers."),
        Column("rule_type", "text", "Who issues the codes.", enum=("internal", "external")),
        Column("coin_amount", "numeric", "Coins a redemption costs; 0 for offers not bought with coins.", min_value=0),
        Column("fiat_class", "text", "`amount` off or `percent` off.", enum=("amount", "percent")),
        Column("fiat_range_min", "numeric", "Smallest discount the offer gives.", min_value=0),
        Column("fiat_range_max", "numeric", "Largest discount the offer gives.", min_value=0),
        Column("is_multiplier", "boolean", "The discount scales with the coins spent."),
        Column("tier", "text", "Only leads in this tier may redeem it; empty for every tier."),
        Column("category", "text", "Catalogue category, for example `discount`."),
        Column("brand", "text", "Partner brand of an external offer."),
        Column("expire", "timestamptz", "When the offer stops being available; empty for never."),
        Column("is_active", "boolean", "Offered at export time."),
        *_timestamps(),
    ),
)

COUPONS = Entity(
    name="coupons",
    description="One row per reward issued to a lead (a coupon code), with its use and expiry.",
    natural_key=("workspace_id", "coupon_id"),
    version_column="updated_at",
    columns=(
        _workspace(),
        Column("coupon_id", "uuid", "Nector coupon id (`_id`).", required=True),
        Column("lead_id", "uuid", "Lead the coupon was issued to.", required=True),
        Column("offer_id", "uuid", "Offer the coupon came from; see offers.csv."),
        Column("offer_name", "text", "Offer name, for example `₹100 off`."),
        Column("code", "text", "Discount code the customer enters at checkout.", required=True),
        Column("coupon_type", "text", "Kind of code.", enum=("code", "link", "generic_code")),
        Column("fiat_class", "text", "`amount` off or `percent` off.", enum=("amount", "percent")),
        Column("fiat_value", "numeric", "Discount amount or percentage.", min_value=0),
        Column("minimumcart_amount", "numeric", "Minimum cart value for the code.", min_value=0),
        Column("currency_code", "text", "Store currency, ISO 4217.", normalize="upper"),
        Column("coins_spent", "numeric", "Coins the lead spent on the coupon.", min_value=0),
        Column("source", "text", "What issued the coupon.",
               enum=("redeem", "referral_referee", "referral_referrer", "trigger")),
        Column("status", "text", "Coupon state at export time.", enum=("issued", "used", "expired")),
        Column("used_order_id", "text", "Store order the coupon was used on."),
        Column("used_at", "timestamptz", "When the coupon was used; empty while unused."),
        Column("expire_at", "timestamptz", "When the coupon expires; empty for never."),
        *_timestamps(),
    ),
)

REFERRALS = Entity(
    name="referrals",
    description="One row per referral from a referrer to a referred friend.",
    natural_key=("workspace_id", "referral_id"),
    version_column="updated_at",
    columns=(
        _workspace(),
        Column("referral_id", "uuid", "Nector referral id.", required=True),
        Column("referred_by_lead_id", "uuid", "The referrer.", required=True),
        Column("referred_to_lead_id", "uuid", "The referred friend."),
        Column("referral_code", "text", "Referral code the friend used."),
        Column("referral_mode", "text", "How the friend was referred.", enum=("link", "code")),
        Column("status", "text", "`completed` once the friend's qualifying order went through.", required=True,
               enum=("created", "completed", "cancelled")),
        Column("referrer_reward_type", "text", "Reward the referrer gets.",
               enum=("coins", "amount_discount", "percentage_discount", "free_shipping")),
        Column("referrer_reward_value", "numeric", "Size of the referrer's reward.", min_value=0),
        Column("completing_order_id", "text", "The friend's order that completed the referral."),
        Column("created_at", "timestamptz", "When the friend claimed the referral.", required=True),
        Column("completed_at", "timestamptz", "When the referral completed."),
        Column("updated_at", "timestamptz", "When Nector last changed the record; the upsert version.", required=True),
    ),
)

REVIEWS = Entity(
    name="reviews",
    description="One row per product review written by a lead.",
    natural_key=("workspace_id", "review_id"),
    version_column="updated_at",
    columns=(
        _workspace(),
        Column("review_id", "uuid", "Nector review id (`_id`).", required=True),
        Column("lead_id", "uuid", "Lead who wrote the review.", required=True),
        Column("customer_id", "text", "Store customer id, denormalised."),
        Column("rating", "integer", "Stars, 1 to 5.", required=True, min_value=1, max_value=5),
        Column("title", "text", "Review title."),
        Column("description", "text", "Review text."),
        Column("reference_product_source", "text", "Platform of the product.",
               enum=("shopify", "woocommerce", "custom_website")),
        Column("reference_product_id", "text", "Product id on the platform."),
        Column("reference_product_name", "text", "Product name."),
        Column("order_id", "text", "Order the review is verified against."),
        Column("is_verified", "boolean", "Verified purchase."),
        Column("is_approved", "boolean", "Approved by moderation."),
        *_timestamps(),
    ),
)

TIERS = Entity(
    name="tiers",
    description="The VIP tier definitions; `rank` 1 is the entry tier.",
    natural_key=("workspace_id", "tier_name"),
    version_column="updated_at",
    columns=(
        _workspace(),
        Column("tier_name", "text", "Tier name as Nector shows it, for example `Gold`.", required=True),
        Column("rank", "integer", "Order of the tiers, 1 = entry tier.", required=True, min_value=1),
        Column("criteria_type", "text", "What qualifies a lead.", enum=("available_points", "earned_coins", "ltv")),
        Column("threshold_value", "numeric", "Qualifying value for `criteria_type`.", min_value=0),
        Column("bonus_factor", "numeric", "Multiplier on every earning rule in this tier.", min_value=0),
        Column("tier_expiry_months", "integer", "Months until the tier lapses; empty for never.", min_value=0),
        *_timestamps(created_required=False),
    ),
)

TIER_CHANGES = Entity(
    name="tier_changes",
    description="One row per VIP tier change of a lead (Nector's `viptier_create` event).",
    natural_key=("workspace_id", "event_id"),
    version_column="changed_at",
    columns=(
        _workspace(),
        Column("event_id", "text", "Nector delivery id of the tier change.", required=True),
        Column("lead_id", "uuid", "Lead whose tier changed.", required=True),
        Column("customer_id", "text", "Store customer id, denormalised."),
        Column("previous_tier", "text", "Tier before the change; empty on first entry."),
        Column("new_tier", "text", "Tier after the change.", required=True),
        Column("changed_at", "timestamptz", "When the tier changed.", required=True),
        Column("tier_expires_at", "timestamptz", "When the new tier lapses; empty for never."),
    ),
)

# Load order: dimensions first, so a later check can rely on them.
ENTITIES: tuple[Entity, ...] = (
    TIERS, OFFERS, CUSTOMERS, WALLET_TRANSACTIONS, COUPONS, REFERRALS, REVIEWS, TIER_CHANGES,
)
ENTITIES_BY_FILE: dict[str, Entity] = {entity.file_name: entity for entity in ENTITIES}


def render_markdown() -> str:
    """Return the export format reference, ``docs/nector-export-format.md``, from the declarations above."""
    lines = [
        f"# Nector export format, version {CONTRACT_VERSION}",
        "",
        "Generated from `plugins/loyalty_sync/contract.py` by `make docs`; do not edit by hand.",
        "",
        "## Layout",
        "",
        "An export is one folder, usually named after its date, anywhere under the `export_root` setting:",
        "",
        "```",
        "<export_root>/<workspace_id>/<YYYY-MM-DD>/",
        "    manifest.json",
        "    offers.csv  customers.csv  wallet_transactions.csv  coupons.csv  referrals.csv",
        "    reviews.csv  tiers.csv  tier_changes.csv",
        "```",
        "",
        "Each run loads every file not loaded before (same path and same sha256 means loaded), oldest",
        "`exported_at` first, and within an export in the order of the sections below. A file may be left",
        "out of an export; a file on disk that the manifest does not list is rejected.",
        "",
        "A file may hold a full snapshot or only the records created or changed since the last export:",
        "records upsert by natural key, and a record missing from a later export stays in the warehouse",
        "(nothing is deleted).",
        "",
        "## manifest.json",
        "",
        "| key | required | meaning |",
        "|---|---|---|",
        f"| `contract_version` | no | `\"{CONTRACT_VERSION}\"` (the default). |",
        "| `workspace_id` | yes | Nector workspace; every row's `workspace_id` must equal it. |",
        "| `export_id` | yes | Identifier of this export. |",
        "| `exported_at` | yes | ISO 8601 timestamp with offset; orders the exports. |",
        "| `timezone` | yes | IANA time zone applied to timestamps written without an offset. |",
        "| `currency_code` | no | Store currency, ISO 4217; `INR` when absent. |",
        "| `coin_name` | no | What the store calls its coins; `Coins` when absent. |",
        "| `coin_expiry_days` | no | Days after which earned coins expire; null for never. |",
        "| `files` | yes | For each CSV file: `rows` (data records, header not counted) and `sha256` of its bytes. |",
        "",
        "A file whose sha256 or record count differs from the manifest, whose header lacks a required",
        "column, or that is not valid CSV (or not UTF-8) is rejected whole and recorded in `sync.export_file`",
        "with the reason. A file in which more than `max_rejected_share` (5%) of the records fail their checks",
        "is quarantined whole: none of its rows load, its rejected rows are kept for diagnosis. Either way the",
        "other files still load and then the run fails, so segments and WebEngage never see a partial",
        "picture. Fix or replace the file (new content under the same name loads as a new version), or accept",
        "the loss with `UPDATE sync.export_file SET status = 'dismissed' WHERE path = '…'`.",
        "",
        "Any file may be gzipped (`customers.csv.gz`); the manifest's sha256 is then that of the compressed bytes.",
        "The export root may be a local folder or object storage (`s3://bucket/prefix`, see the `export_root`",
        "and `export_conn_id` settings).",
        "",
        "## webhook_events.jsonl",
        "",
        "An export may also carry archived Nector webhook deliveries, one JSON object per line:",
        "`{\"delivery_id\": \"…\", \"topic\": \"walletreward_create\", \"received_at\": \"2026-11-30T10:00:00Z\", \"payload\": {…}}`",
        "(`received_at` may also be Unix seconds). The manifest's `rows` counts its non-empty lines. Every",
        "delivery is kept raw in `sync.webhook_delivery`, and one already seen (same `delivery_id`) is skipped.",
        "Deliveries of the topics in `include/nector/webhook_topics.json` load into the staging table of their",
        "entity through the same checks as CSV records. That file declares which payload keys fill which",
        "columns, an assumption per topic because Nector does not publish every payload key. Deliveries of",
        "other topics are counted and kept raw. A malformed line is set aside with its line number.",
        "",
        "## CSV files",
        "",
        "UTF-8 (a byte order mark is allowed), comma-separated, RFC 4180 quoting, a header row. Header names",
        "match in any order and case. Lines may end in CRLF or LF, and quoted values may contain commas and",
        "line breaks.",
        "Values are trimmed and an empty value is missing. Timestamps are ISO 8601 (`2026-11-30T09:15:02.450Z`,",
        "an offset, or none for the manifest's time zone); dates `YYYY-MM-DD`; booleans `true`/`false`",
        "(also `t`/`f`, `1`/`0`, `yes`/`no`, `on`/`off`); enumerations compare lower-cased. Columns the",
        "contract does not know are kept per row in the staging table's `_extra` jsonb column and listed in",
        "`sync.export_file.unknown_columns`.",
        "",
        "A record that fails a check goes to `sync.rejected_row` with its record number, the physical line it",
        "starts on, the column, the value and the reason; the other records of the file still load. Records",
        "upsert by natural key: a strictly newer version column replaces the stored row, an equal or older",
        "one changes nothing. Ledger rows are never deleted; a reversal arrives as a new row.",
        "",
    ]
    for entity in ENTITIES:
        lines += [
            f"### {entity.file_name}",
            "",
            f"{entity.description} Natural key: `{', '.join(entity.natural_key)}`. "
            f"Version column: `{entity.version_column}`. Staging table: `{entity.table}`.",
            "",
            "| column | type | required | allowed values | meaning |",
            "|---|---|---|---|---|",
        ]
        for column in entity.columns:
            allowed = ", ".join(f"`{value}`" for value in column.enum) if column.enum else _range_text(column)
            lines.append(
                f"| `{column.name}` | {column.type} | {'yes' if column.required else ''} | {allowed} | {column.description} |"
            )
        lines.append("")
        if entity.derived:
            lines += ["Computed by the loader into the staging table (not columns of the file):", ""]
            lines += [f"- `{derived.name}` ({derived.type}): {derived.description}" for derived in entity.derived]
            lines.append("")
    return "\n".join(lines)


def _range_text(column: Column) -> str:
    if column.min_value is not None and column.max_value is not None:
        return f"{column.min_value:g} to {column.max_value:g}"
    if column.min_value is not None:
        return f">= {column.min_value:g}"
    return ""


if __name__ == "__main__":
    sys.stdout.write(render_markdown())
