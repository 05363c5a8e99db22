"""Generate deterministic sample Nector exports for a fictional Indian D2C Shopify brand.

``generate_exports`` writes two dated export folders under ``<root>/<workspace_id>/``: the history up
to the end of the day before the anchor date, and the delta of the anchor date itself (days in IST).
Each folder has one CSV per contract entity and a ``manifest.json``. The same arguments produce
byte-identical files: every random choice comes from ``random.Random(seed)`` and every date derives
from the anchor date.

Leads are generated one referral group at a time (a lead and the friends they referred). A group's
rows are written before the next group starts, so memory use does not grow with ``customers``.

Each record is generated as a list of versions (version time, row). An export folder gets the latest
version whose time falls inside its window, which is how an incremental export keyed on
``updated_at`` behaves. Versions at or after the end of the anchor date are never written.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import itertools
import json
import operator
import random
import re
import shutil
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from loyalty_sync.contract import CONTRACT_VERSION, ENTITIES

DEFAULT_SEED = 20261130
DEFAULT_ANCHOR = date(2026, 11, 30)
DEFAULT_WORKSPACE = "shopify-demo-brand"
DEFAULT_CUSTOMERS = 300

TIMEZONE_NAME = "Asia/Kolkata"
IST_OFFSET = timedelta(hours=5, minutes=30)
CURRENCY_CODE = "INR"
COIN_NAME = "Coins"
COIN_EXPIRY_DAYS = 365
# 425 days before 2026-11-30 is 2025-10-01, about 14 months of history.
HISTORY_DAYS = 425
# Each export folder is written at 02:00 IST on the morning after the day it ends with.
EXPORT_DELAY = timedelta(hours=2)

WORKSPACE_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
TEST_ACCOUNT_DOMAIN = "qa.nector-test.in"
TEST_ACCOUNTS = 3

# Earning rules of the sample brand. Coins are whole numbers.
EARN_RATE = 0.05  # coins per rupee paid, before the tier's bonus factor
SIGNUP_BONUS = 100
REVIEW_REWARD = 50
REFERRAL_REWARD = 200
REFERRAL_WINDOW = timedelta(days=60)  # a referral completes only if the friend orders within this time
PENDING_WINDOW = timedelta(hours=36)  # order rewards this close to the end of the data may still be pending

_MILLISECOND = timedelta(milliseconds=1)


# --- reference data ---------------------------------------------------------------------------------

FEMALE_FIRST_NAMES = (
    "Aanya", "Aditi", "Aishwarya", "Ananya", "Anjali", "Avni", "Bhavna", "Deepika", "Divya", "Fatima",
    "Gayatri", "Harpreet", "Ishita", "Kavya", "Keerthana", "Khushi", "Lakshmi", "Madhuri", "Meera",
    "Nandini", "Neha", "Nisha", "Pallavi", "Pooja", "Priya", "Radhika", "Revathi", "Riya", "Sakshi",
    "Sanjana", "Shalini", "Shreya", "Simran", "Sneha", "Swati", "Tanvi", "Trisha", "Vaishnavi", "Yamini",
    "Zoya",
)
MALE_FIRST_NAMES = (
    "Aarav", "Abhishek", "Aditya", "Akash", "Amit", "Aniket", "Arjun", "Arvind", "Ayaan", "Deepak",
    "Dhruv", "Farhan", "Gaurav", "Gurpreet", "Harsh", "Imran", "Ishaan", "Kabir", "Karan", "Karthik",
    "Manish", "Manoj", "Mohit", "Naveen", "Nikhil", "Pranav", "Rahul", "Rajesh", "Rohan", "Sahil",
    "Sandeep", "Siddharth", "Srinivas", "Suresh", "Tarun", "Varun", "Venkatesh", "Vikram", "Vivek", "Yash",
)
LAST_NAMES = (
    "Agarwal", "Ansari", "Arora", "Banerjee", "Bhat", "Bhatt", "Bose", "Chatterjee", "Chauhan", "Chowdhury",
    "D'Souza", "Das", "Desai", "Deshpande", "Dubey", "Fernandes", "Ghosh", "Gill", "Gupta", "Hegde",
    "Iyer", "Jadhav", "Joshi", "Kapoor", "Khan", "Khanna", "Kulkarni", "Kumar", "Malhotra", "Mehta",
    "Menon", "Mishra", "Mukherjee", "Naidu", "Nair", "Pandey", "Patel", "Patil", "Pawar", "Pillai",
    "Pinto", "Qureshi", "Rao", "Rathore", "Reddy", "Sandhu", "Saxena", "Sen", "Sethi", "Shah",
    "Sharma", "Shetty", "Siddiqui", "Singh", "Srivastava", "Thomas", "Tiwari", "Verma", "Yadav",
)
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "yahoo.co.in", "outlook.com", "hotmail.com", "rediffmail.com",
                 "icloud.com")
EMAIL_DOMAIN_CUM_WEIGHTS = tuple(itertools.accumulate((70, 6, 6, 5, 4, 5, 4)))

# Share of orders by IST hour of day, 00 to 23: quiet at night, peaks at lunch and late evening.
HOUR_CUM_WEIGHTS = tuple(itertools.accumulate(
    (2, 1, 1, 0.5, 0.5, 0.5, 1, 2, 3, 4, 5, 6, 7, 7, 6, 5, 5, 6, 7, 8, 9, 9, 7, 4)))
HOURS = tuple(range(24))

# Number of orders of one lead over the whole history, with the weight of each count. Orders that would
# fall after the end of the anchor date are dropped, which shortens long series.
ORDER_COUNTS = (0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 14, 20)
ORDER_COUNT_CUM_WEIGHTS = tuple(itertools.accumulate((22, 30, 16, 10, 7, 5, 3, 2, 2, 1.5, 1, 0.5)))

RATINGS = (1, 2, 3, 4, 5)
RATING_CUM_WEIGHTS = tuple(itertools.accumulate((4, 5, 12, 29, 50)))

PRODUCT_NAMES = (
    "Kumkumadi Face Oil 30ml", "Onion Hair Oil 200ml", "Vitamin C Face Serum 30ml", "Ubtan Face Wash 100ml",
    "Neem Tea Tree Face Wash 100ml", "Aloe Vera Gel 150g", "Beetroot Lip Balm 10g", "Sandalwood Soap (Pack of 3)",
    "Rice Water Shampoo 300ml", "Bhringraj Hair Mask 200g", "Saffron Night Cream 50g", "Rose Water Toner 100ml",
    "Coffee Body Scrub 200g", "Sunscreen SPF 50 PA++++ 50g", "Charcoal Peel-off Mask 100g",
    "Ashwagandha Gummies (30)", "Hair Growth Combo", "Glow Kit: Serum + Cream",
)

REVIEW_TEXTS: dict[str, tuple[tuple[str, str], ...]] = {
    "high": (
        ("Loved it", "Using it for 3 weeks now, my skin feels softer."),
        ("Worth the price", "Mild fragrance and it absorbs quickly."),
        ("Will buy again", "Delivered in 2 days, packaging was neat."),
        ("Excellent quality", "Bought it for my mother, she loves it."),
        ("Must try", "Noticeable difference in a month.\nWill reorder."),
        ("बहुत बढ़िया", "बहुत अच्छा प्रोडक्ट है, रोज़ इस्तेमाल करती हूँ।"),
        ("Good, but pricey", "Good product, slightly pricey, but the results are worth it."),
    ),
    "middle": (
        ("Okay", "Does what it says, nothing special."),
        ("Average", "The smell is a bit strong for me."),
    ),
    "low": (
        ("Not for me", "Caused irritation on my cheeks, so I stopped using it."),
        ("Leaking bottle", "The pump broke within a week."),
        ("Disappointed", "No visible results after a month, sadly."),
    ),
}

CROCKFORD_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True)
class Tier:
    """A VIP tier of the sample brand, qualified by spend (INR) in the trailing 12 months."""

    name: str
    rank: int
    threshold: int
    bonus_factor: str  # decimal text, as exported
    expiry_months: int | None  # None: the tier never lapses

    @property
    def bonus(self) -> float:
        return float(self.bonus_factor)


TIERS = (
    Tier("Bronze", 1, 0, "1", None),
    Tier("Silver", 2, 3000, "1.25", 12),
    Tier("Gold", 3, 10000, "1.5", 12),
    Tier("Platinum", 4, 25000, "2", 12),
)


@dataclass(frozen=True)
class Offer:
    """A reward catalogue entry that issues coupons."""

    name: str
    fiat_class: str  # "amount" or "percent"
    fiat_value: int
    minimum_cart: int
    coins: int  # coins a redemption costs, 0 for offers that are not redeemed with coins
    valid_days: int
    code_prefix: str
    offer_id: str = ""

    def discount(self, order_value: int) -> int:
        if self.fiat_class == "percent":
            return order_value * self.fiat_value // 100
        return min(self.fiat_value, order_value)


REDEEM_OFFERS = (
    Offer("₹50 off", "amount", 50, 499, 100, 60, "NCT"),
    Offer("₹100 off", "amount", 100, 799, 200, 60, "NCT"),
    Offer("10% off", "percent", 10, 999, 300, 60, "NCT"),
    Offer("₹250 off", "amount", 250, 1499, 500, 60, "NCT"),
)
REFEREE_OFFER = Offer("₹150 off your first order", "amount", 150, 599, 0, 30, "FRIEND")
BIRTHDAY_OFFER = Offer("Birthday 15% off", "percent", 15, 499, 0, 15, "BDAY")


# --- public results -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class BadRow:
    """A row written on purpose to break the contract, so that loaders can be tested against it."""

    export_id: str
    file: str
    record: int  # 1-based data row, the header not counted
    column: str
    kind: str  # stable identifier, for example "negative_amount"
    problem: str


@dataclass(frozen=True)
class ExportSummary:
    """One written export folder and the number of data rows in each of its files."""

    export_id: str
    folder: Path
    rows: dict[str, int]


@dataclass(frozen=True)
class GenerationSummary:
    """The result of ``generate_exports``: both export folders and the deliberately bad rows."""

    workspace_id: str
    seed: int
    anchor: date
    customers: int
    test_accounts: int
    exports: tuple[ExportSummary, ...]
    bad_rows: tuple[BadRow, ...]

    def format(self) -> str:
        lines = [
            f"Workspace {self.workspace_id}: seed {self.seed}, anchor date {self.anchor.isoformat()}, "
            f"{self.customers} customers and {self.test_accounts} test accounts.",
        ]
        for export in self.exports:
            lines.append(f"{export.export_id} in {export.folder}:")
            width = max(len(name) for name in export.rows)
            for name, count in export.rows.items():
                lines.append(f"  {name:<{width}}  {count:>9,} rows")
        lines.append(f"Deliberately bad rows: {len(self.bad_rows)}")
        for bad in self.bad_rows:
            lines.append(f"  {bad.export_id} {bad.file} record {bad.record} ({bad.kind}): {bad.problem}")
        return "\n".join(lines)


# --- time -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportWindow:
    """One export folder: the record versions whose time falls in [start, end), times in UTC."""

    day: date
    start: datetime
    end: datetime
    export_id: str
    exported_at: datetime


@dataclass(frozen=True)
class Calendar:
    """The dates of one generation. All datetimes here and below are naive UTC."""

    anchor: date
    launch_day: date  # first day of history (IST), when the brand started the programme
    history: ExportWindow
    delta: ExportWindow

    @property
    def end(self) -> datetime:
        return self.delta.end


def build_calendar(anchor: date, workspace_id: str) -> Calendar:
    history_day = anchor - timedelta(days=1)
    history_end = ist_midnight(anchor)
    delta_end = ist_midnight(anchor + timedelta(days=1))
    history = ExportWindow(history_day, datetime.min, history_end, f"{workspace_id}-{history_day.isoformat()}",
                           history_end + EXPORT_DELAY)
    delta = ExportWindow(anchor, history_end, delta_end, f"{workspace_id}-{anchor.isoformat()}",
                         delta_end + EXPORT_DELAY)
    return Calendar(anchor, anchor - timedelta(days=HISTORY_DAYS), history, delta)


def ist_midnight(day: date) -> datetime:
    """Return the UTC time of 00:00 IST on ``day``."""
    return datetime(day.year, day.month, day.day) - IST_OFFSET


def ist_day(moment: datetime) -> date:
    return (moment + IST_OFFSET).date()


def format_timestamp(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return moment.isoformat(timespec="milliseconds") + "Z"


def format_bool(value: bool | None) -> str:
    if value is None:
        return ""
    return "true" if value else "false"


def add_months(moment: datetime, months: int) -> datetime:
    """Move ``moment`` by whole calendar months, clamping the day to the target month's length."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, _days_in_month(year, month))
    return moment.replace(year=year, month=month, day=day)


def _days_in_month(year: int, month: int) -> int:
    next_month = date(year + month // 12, month % 12 + 1, 1)
    return (next_month - timedelta(days=1)).day


# --- randomness and ids -------------------------------------------------------------------------------

def new_uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def encode_base32(value: int, length: int) -> str:
    characters = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        characters.append(CROCKFORD_ALPHABET[digit])
    return "".join(reversed(characters))


def unique_code(sequence: int, salt: int, length: int) -> str:
    """Return a random-looking code that differs for every ``sequence`` below 32**length.

    Multiplying by an odd number modulo a power of two is a bijection, so no two sequences collide.
    """
    modulus = 32 ** length
    return encode_base32((sequence * 0x9E3779B1 + salt) % modulus, length)


class Context:
    """The random number generator, counters and reference data shared by all leads of one generation."""

    def __init__(self, seed: int, calendar: Calendar, workspace_id: str, activity: float = 1.0) -> None:
        self.rng = random.Random(seed)
        self.calendar = calendar
        self.workspace_id = workspace_id
        self.activity = activity
        self.lead_sequence = 0
        self.order_sequence = 0
        self.coupon_sequence = 0
        self.code_salt = self.rng.getrandbits(40)
        self.redeem_offers = tuple(self._with_id(offer) for offer in REDEEM_OFFERS)
        self.referee_offer = self._with_id(REFEREE_OFFER)
        self.birthday_offer = self._with_id(BIRTHDAY_OFFER)
        self.products = tuple(
            (str(8_100_000_000_000 + index * 7_919_000 + self.rng.randrange(7_919_000)), name)
            for index, name in enumerate(PRODUCT_NAMES)
        )

    def _with_id(self, offer: Offer) -> Offer:
        return replace(offer, offer_id=self.uuid4())

    def uuid4(self) -> str:
        return new_uuid4(self.rng)

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def moment_on(self, day: date) -> datetime:
        """Return a random time on the IST ``day``, weighted by the hour of day of online orders."""
        hour = self.rng.choices(HOURS, cum_weights=HOUR_CUM_WEIGHTS)[0]
        milliseconds = hour * 3_600_000 + self.rng.randrange(3_600_000)
        return ist_midnight(day) + timedelta(milliseconds=milliseconds)

    def moment_between(self, start: datetime, end: datetime) -> datetime:
        span = max(1, (end - start) // _MILLISECOND)
        return start + timedelta(milliseconds=self.rng.randrange(span))

    def after(self, moment: datetime, low_seconds: float, high_seconds: float) -> datetime:
        milliseconds = self.rng.randrange(int(low_seconds * 1000), int(high_seconds * 1000))
        return moment + timedelta(milliseconds=milliseconds)

    def next_lead_index(self) -> int:
        self.lead_sequence += 1
        return self.lead_sequence

    def next_order_id(self) -> str:
        """Return a 13-digit Shopify-style order id, unique within the generation."""
        self.order_sequence += 1
        return str(5_100_000_000_000 + self.order_sequence * 997 + self.rng.randrange(997))

    def next_coupon_code(self, prefix: str) -> str:
        self.coupon_sequence += 1
        return f"{prefix}-{unique_code(self.coupon_sequence, self.code_salt, 8)}"

    def hash_text(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"


# --- leads ------------------------------------------------------------------------------------------

@dataclass
class Lead:
    """The fixed profile of one Nector lead."""

    index: int
    lead_id: str
    customer_id: str  # empty for a lead with no store account
    name: str
    email: str
    mobile: str
    country: str
    dob: date | None
    gender: str
    referral_code: str
    referred_by_code: str
    classification: str
    email_opt_in: bool | None
    sms_opt_in: bool | None
    whatsapp_opt_in: bool | None
    signup: datetime
    test_account: bool = False


def draw_lead(ctx: Context, signup: datetime, *, referred_by_code: str = "", has_customer_id: bool = True,
              country: str = "ind") -> Lead:
    rng = ctx.rng
    index = ctx.next_lead_index()
    gender = _draw_gender(rng)
    if gender == "female":
        first_names = FEMALE_FIRST_NAMES
    elif gender == "male":
        first_names = MALE_FIRST_NAMES
    else:
        first_names = FEMALE_FIRST_NAMES if rng.random() < 0.5 else MALE_FIRST_NAMES
    first = rng.choice(first_names)
    last = rng.choice(LAST_NAMES)
    customer_id = f"shopify-{7_300_000_000_000 + index * 9_973 + rng.randrange(9_973)}" if has_customer_id else ""
    return Lead(
        index=index,
        lead_id=ctx.uuid4(),
        customer_id=customer_id,
        name=f"{first} {last}",
        email=_draw_email(rng, first, last),
        mobile=_draw_mobile(rng, country),
        country=country,
        dob=_draw_dob(rng, ctx.calendar.anchor),
        gender=gender,
        referral_code=_ascii_letters(first).upper()[:6] + unique_code(index, ctx.code_salt, 6),
        referred_by_code=referred_by_code,
        classification="affiliate" if rng.random() < 0.02 else "lead",
        email_opt_in=_draw_consent(rng, missing=0.12, true=0.7),
        sms_opt_in=_draw_consent(rng, missing=0.15, true=0.55),
        whatsapp_opt_in=_draw_consent(rng, missing=0.25, true=0.27),
        signup=signup,
    )


def draw_test_account(ctx: Context, number: int) -> Lead:
    calendar = ctx.calendar
    signup = ctx.moment_on(calendar.launch_day + timedelta(days=number))
    index = ctx.next_lead_index()
    return Lead(
        index=index,
        lead_id=ctx.uuid4(),
        customer_id=f"shopify-{7_300_000_000_000 + index * 9_973 + ctx.rng.randrange(9_973)}",
        name=f"QA Test {number}",
        email=f"qa.test{number}@{TEST_ACCOUNT_DOMAIN}",
        mobile=f"99999000{number:02d}",
        country="ind",
        dob=None,
        gender="",
        referral_code=f"QATEST{unique_code(index, ctx.code_salt, 6)}",
        referred_by_code="",
        classification="lead",
        email_opt_in=False,
        sms_opt_in=False,
        whatsapp_opt_in=False,
        signup=signup,
        test_account=True,
    )


def _draw_gender(rng: random.Random) -> str:
    value = rng.random()
    if value < 0.55:
        return "female"
    if value < 0.93:
        return "male"
    if value < 0.94:
        return "other"
    return ""


def _ascii_letters(text: str) -> str:
    return "".join(character for character in text if character.isascii() and character.isalpha())


def _draw_email(rng: random.Random, first_name: str, last_name: str) -> str:
    """Draw an address built from the name, sometimes in mixed case or with stray spaces."""
    if rng.random() < 0.03:
        return ""
    first = _ascii_letters(first_name).lower()
    last = _ascii_letters(last_name).lower()
    pattern = rng.randrange(6)
    if pattern == 0:
        local = f"{first}.{last}"
    elif pattern == 1:
        local = f"{first}{last}{rng.randrange(10, 100)}"
    elif pattern == 2:
        local = f"{first}_{last}{rng.randrange(1, 1000)}"
    elif pattern == 3:
        local = f"{first}{rng.randrange(1970, 2008)}"
    elif pattern == 4:
        local = f"{first[0]}{last}{rng.randrange(1, 100)}"
    else:
        local = f"{first}.{last}{rng.randrange(1, 10_000)}"
    domain = rng.choices(EMAIL_DOMAINS, cum_weights=EMAIL_DOMAIN_CUM_WEIGHTS)[0]

    style = rng.random()
    if style < 0.08:
        local = ".".join(part.capitalize() for part in local.split("."))
        domain = domain.capitalize()
    email = f"{local}@{domain}"
    if style > 0.96:
        email = f" {email}" if style > 0.98 else f"{email}  "
    return email


def _draw_mobile(rng: random.Random, country: str) -> str:
    if country == "are":
        return f"5{rng.randrange(10**8):08d}"
    if country == "gbr":
        return f"7{rng.randrange(10**9):09d}"
    if country == "usa":
        return f"{rng.randrange(2, 10)}{rng.randrange(10**9):09d}"
    if rng.random() < 0.03:
        return ""
    first_digit = rng.choices("9876", cum_weights=(40, 65, 90, 100))[0]
    return f"{first_digit}{rng.randrange(10**9):09d}"


def _draw_dob(rng: random.Random, anchor: date) -> date | None:
    if rng.random() < 0.2:
        return None
    year = anchor.year - rng.randrange(18, 56)
    return date(year, 1, 1) + timedelta(days=rng.randrange(365))


def _draw_consent(rng: random.Random, *, missing: float, true: float) -> bool | None:
    if rng.random() < missing:
        return None
    return rng.random() < true


# --- plans --------------------------------------------------------------------------------------------

# Scenarios given to some group heads, so that even a small sample has several leads in each segment that
# downstream code derives. Apart from their scenario, these leads are generated like the rest.
SCENARIOS = (
    "recent_referral",       # a referral completed in the last 7 days
    "recent_upgrade",        # a tier upgrade in the last 7 days
    "recent_review",         # a review in the last 30 days
    "open_coupon",           # a redeemed coupon that is neither used nor expired
    "expiring_credit",       # unspent coins that expire within 30 days after the anchor date
    "anchor_day_order",      # an order on the anchor date
    "signup_on_anchor_day",  # a lead created on the anchor date
)
NO_CUSTOMER_ID_HEADS = frozenset({4, 9})
FOREIGN_HEADS = {20: "are", 150: "gbr"}


def scenario_for(head_number: int) -> str | None:
    """Return the scenario of the group head ``head_number`` (1-based), or None."""
    dense = head_number < 240 and head_number % 6 == 1
    sparse = head_number >= 240 and head_number % 60 == 1
    if not (dense or sparse):
        return None
    return SCENARIOS[(head_number // 6) % len(SCENARIOS)]


@dataclass
class Order:
    moment: datetime
    value: int  # INR, before any coupon
    order_id: str
    review_at: datetime | None = None  # when set, the lead reviews the order at this time
    coupon: Coupon | None = None  # coupon redeemed for this order
    reward: int = 0  # success coins credited for this order


@dataclass
class Plan:
    """A lead's intended orders, redemptions and rewards, which the simulation turns into rows in time order."""

    orders: list[Order]
    redeem_propensity: float  # chance of redeeming coins before each order
    review_probability: float
    refund_probability: float
    extra_redemption: datetime | None = None  # a redemption not followed by a planned order
    force_extra_redemption: bool = False
    referral_rewards: list[tuple[datetime, str]] = field(default_factory=list)  # (when, friend's name)
    adjustments: list[tuple[datetime, int]] = field(default_factory=list)  # (when, signed coins)


def draw_head_signup(ctx: Context, scenario: str | None) -> datetime:
    calendar = ctx.calendar
    anchor = calendar.anchor
    rng = ctx.rng
    if scenario == "signup_on_anchor_day":
        return ctx.moment_on(anchor)
    if scenario == "expiring_credit":
        # Coins earned 336 to 360 days before the anchor date expire 5 to 29 days after it.
        return ctx.moment_on(anchor - timedelta(days=rng.randrange(336, 361)))
    if scenario == "open_coupon":
        return ctx.moment_on(anchor - timedelta(days=rng.randrange(60, 300)))

    latest_offset = HISTORY_DAYS - 60 if scenario else HISTORY_DAYS
    if rng.random() < 0.12:
        offset = rng.randrange(3)  # existing store customers imported when the programme started
    else:
        # The power below 1 skews signups towards later days, as a growing programme has.
        offset = int((latest_offset + 1) * rng.random() ** 0.8)
    return ctx.moment_on(calendar.launch_day + timedelta(days=offset))


def draw_plan(ctx: Context, lead: Lead) -> Plan:
    rng = ctx.rng
    orders = _draw_orders(ctx, lead) if lead.customer_id else []
    plan = Plan(
        orders=orders,
        redeem_propensity=0.0 if rng.random() < 0.42 else rng.uniform(0.25, 0.9),
        review_probability=rng.choice((0.05, 0.2, 0.5)),
        refund_probability=0.04,
    )
    end = ctx.calendar.end
    if orders and rng.random() < plan.redeem_propensity * 0.25:
        start = orders[-1].moment + timedelta(days=1)
        if start < end:
            plan.extra_redemption = ctx.moment_between(start, end)
    if orders and rng.random() < 0.02:
        plan.adjustments.append((ctx.after(orders[0].moment, 2 * 86_400, 7 * 86_400), rng.choice((50, 100, 250))))
    if orders and rng.random() < 0.007:
        plan.adjustments.append((ctx.after(orders[-1].moment, 3_600, 5 * 86_400), -rng.choice((20, 50, 100))))
    return plan


def _draw_orders(ctx: Context, lead: Lead) -> list[Order]:
    rng = ctx.rng
    end = ctx.calendar.end
    count = rng.choices(ORDER_COUNTS, cum_weights=ORDER_COUNT_CUM_WEIGHTS)[0]
    count = int(count * ctx.activity + rng.random())  # rounds randomly, so the mean scales exactly
    # One lead in twenty buys gift combos and bulk packs, about three times the usual basket.
    basket_factor = 3.0 if rng.random() < 0.05 else 1.0
    orders: list[Order] = []
    previous = lead.signup
    for number in range(count):
        if number == 0 and rng.random() < 0.55:
            moment = ctx.after(previous, 180, 4 * 3600)  # first order right after signing up
        else:
            mean_gap_days = (18 if number == 0 else 55) / ctx.activity
            gap_days = 1 + int(rng.expovariate(1 / mean_gap_days))
            moment = ctx.moment_on(ist_day(previous) + timedelta(days=gap_days))
            if moment <= previous:
                moment = ctx.after(previous, 600, 3 * 3600)
        if moment >= end:
            break
        orders.append(Order(moment, _draw_order_value(rng, basket_factor), ctx.next_order_id()))
        previous = moment
    return orders


def _draw_order_value(rng: random.Random, basket_factor: float = 1.0) -> int:
    """Draw an order value in INR, median about ₹1,150 times ``basket_factor``, priced like ₹1,149."""
    value = round(rng.lognormvariate(7.05, 0.55) * basket_factor / 50) * 50 - 1
    return max(value, 249)


def apply_scenario(ctx: Context, lead: Lead, plan: Plan, scenario: str | None) -> None:
    if scenario == "recent_upgrade":
        _add_upgrade_order(ctx, lead, plan)
    elif scenario == "recent_review":
        _add_reviewed_order(ctx, lead, plan)
    elif scenario == "anchor_day_order":
        _add_anchor_day_order(ctx, lead, plan)
    elif scenario == "open_coupon":
        redemption = ctx.moment_on(ctx.calendar.anchor - timedelta(days=ctx.rng.randrange(2, 20)))
        plan.orders = [order for order in plan.orders if order.moment < redemption]
        plan.extra_redemption = redemption
        plan.force_extra_redemption = True
        plan.redeem_propensity = 0.0
        plan.refund_probability = 0.0
        plan.adjustments.clear()
    elif scenario == "expiring_credit":
        plan.redeem_propensity = 0.0
        plan.extra_redemption = None
        plan.refund_probability = 0.0
        plan.adjustments.clear()


def _insert_order(plan: Plan, order: Order) -> None:
    plan.orders.append(order)
    plan.orders.sort(key=lambda planned: planned.moment)


def _add_upgrade_order(ctx: Context, lead: Lead, plan: Plan) -> None:
    """Add an order in the last 6 days that lifts the lead into the next tier.

    Adds nothing if the lead is already Platinum or the order would have to exceed ₹30,000.
    """
    moment = ctx.moment_on(ctx.calendar.anchor - timedelta(days=ctx.rng.randrange(0, 6)))
    if moment <= lead.signup or not lead.customer_id:
        return
    earlier = [order for order in plan.orders if order.moment < moment]

    # Replaying the earlier orders ignores tier lapses, which only lower the tier, so the highest
    # rank replayed is at least the lead's rank at ``moment``.
    rank = 1
    for index, order in enumerate(earlier):
        window_start = add_months(order.moment, -12)
        spend = sum(other.value for other in earlier[: index + 1] if other.moment > window_start)
        rank = max(rank, qualified_tier(spend).rank)
    if rank >= len(TIERS):
        return

    target = TIERS[rank]
    window_start = add_months(moment, -12)
    spend = sum(order.value for order in earlier if order.moment > window_start)
    needed = target.threshold - spend + ctx.rng.randrange(100, 2500)
    value = max((needed + 99) // 100 * 100 - 1, 299)
    if value <= 30_000:
        _insert_order(plan, Order(moment, value, ctx.next_order_id()))


def _add_reviewed_order(ctx: Context, lead: Lead, plan: Plan) -> None:
    """Add an order that the lead reviews in the last 14 days, often on the anchor date."""
    rng = ctx.rng
    review_at = ctx.moment_on(ctx.calendar.anchor - timedelta(days=rng.choice((0, 0, 2, 6, 13))))
    moment = ctx.moment_on(ist_day(review_at) - timedelta(days=rng.randrange(3, 13)))
    if moment > lead.signup and lead.customer_id:
        _insert_order(plan, Order(moment, _draw_order_value(rng), ctx.next_order_id(), review_at=review_at))


def _add_anchor_day_order(ctx: Context, lead: Lead, plan: Plan) -> None:
    moment = ctx.moment_on(ctx.calendar.anchor)
    if moment <= lead.signup:
        moment = ctx.after(lead.signup, 600, 7200)
    if moment < ctx.calendar.end and lead.customer_id:
        _insert_order(plan, Order(moment, _draw_order_value(ctx.rng), ctx.next_order_id()))


def qualified_tier(spend: int) -> Tier:
    """Return the highest tier whose threshold ``spend`` (INR, trailing 12 months) reaches."""
    qualified = TIERS[0]
    for tier in TIERS:
        if spend >= tier.threshold:
            qualified = tier
    return qualified


def draw_test_account_plan(ctx: Context, lead: Lead) -> Plan:
    """Plan a QA account: a coin top-up and a few ₹499 test orders in the first week."""
    orders = [
        Order(ctx.after(lead.signup, day * 86_400, day * 86_400 + 3600), 499, ctx.next_order_id())
        for day in (1, 2, 4)
    ]
    plan = Plan(orders=orders, redeem_propensity=1.0, review_probability=0.5, refund_probability=0.0)
    plan.adjustments.append((ctx.after(lead.signup, 600, 3600), 1000))
    return plan


# --- simulation ---------------------------------------------------------------------------------------

Row = dict[str, str]
Versions = list[tuple[datetime, Row]]  # (version time, row) in time order


@dataclass
class Coupon:
    offer: Offer
    versions: Versions
    expire_at: datetime
    used: bool = False

    @property
    def coupon_id(self) -> str:
        return self.versions[0][1]["coupon_id"]


@dataclass
class LeadResult:
    """All records of one lead, keyed by entity name, ready to be split into the export folders."""

    lead: Lead
    records: dict[str, list[Versions]]
    history_ledger_records: list[int | None] = field(default_factory=list)  # record numbers in the first export


class LeadSimulation:
    """Replay a lead's plan in time order and build its ledger, coupons, reviews and tier changes.

    The wallet follows the sample's model of Nector's rules. Only ``success`` rows change the
    balance. Every credit expires ``COIN_EXPIRY_DAYS`` after it was earned. Every debit consumes the
    credits that expire first. When a credit expires with coins left, an ``expire`` debit removes
    exactly those coins at its ``expire_at``.
    """

    def __init__(self, ctx: Context, lead: Lead, plan: Plan) -> None:
        self.ctx = ctx
        self.lead = lead
        self.plan = plan
        self.records: dict[str, list[Versions]] = {entity.name: [] for entity in ENTITIES}
        self.lots: deque[list[Any]] = deque()  # [expire_at, coins left] of success credits, oldest first
        self.balance = 0
        self.balance_changes: list[tuple[datetime, int]] = []  # (updated_at, signed coins) of success rows
        self.tier: Tier = TIERS[0]
        self.tier_expires_at: datetime | None = None
        self.tier_history: list[tuple[datetime, str]] = []
        self.spend: list[tuple[datetime, int]] = []
        self.coupons: list[Coupon] = []
        self.queue: list[tuple[datetime, int, Callable[[datetime, Any], None], Any]] = []
        self.queue_sequence = 0

    def run(self) -> LeadResult:
        self._schedule_plan()
        end = self.ctx.calendar.end
        while self.queue:
            moment, _, handler, payload = heapq.heappop(self.queue)
            if moment >= end:
                break
            self._expire_credits(moment, inclusive=True)
            handler(moment, payload)
        self._expire_credits(end, inclusive=False)
        self._close_coupons()
        self.records["customers"].append(self._customer_versions())
        return LeadResult(self.lead, self.records)

    def _schedule(self, moment: datetime, handler: Callable[[datetime, Any], None], payload: Any = None) -> None:
        self.queue_sequence += 1
        heapq.heappush(self.queue, (moment, self.queue_sequence, handler, payload))

    def _schedule_plan(self) -> None:
        lead, plan, ctx = self.lead, self.plan, self.ctx
        self._schedule(lead.signup, self._on_signup)
        previous = lead.signup
        for order in plan.orders:
            if plan.redeem_propensity > 0:
                earliest = previous + timedelta(minutes=1)
                latest = order.moment - timedelta(minutes=1)
                if latest > earliest:
                    intent = max(earliest, order.moment - timedelta(seconds=ctx.rng.randrange(300, 48 * 3600)))
                    self._schedule(intent, self._on_redeem_for_order, order)
            self._schedule(order.moment, self._on_order, order)
            previous = order.moment
        for moment, friend_name in plan.referral_rewards:
            self._schedule(moment, self._on_referral_reward, friend_name)
        for moment, coins in plan.adjustments:
            self._schedule(moment, self._on_adjustment, coins)
        if plan.extra_redemption is not None:
            self._schedule(plan.extra_redemption, self._on_extra_redemption)
        self._schedule_birthdays()

    def _schedule_birthdays(self) -> None:
        dob = self.lead.dob
        if dob is None:
            return
        for year in range(self.lead.signup.year, self.ctx.calendar.anchor.year + 1):
            day = dob.replace(year=year, day=min(dob.day, _days_in_month(year, dob.month)))
            moment = ist_midnight(day) + timedelta(hours=9, seconds=self.ctx.rng.randrange(3600))
            if self.lead.signup < moment < self.ctx.calendar.end and self.ctx.chance(0.5):
                self._schedule(moment, self._on_birthday)

    # Wallet ----------------------------------------------------------------------------------------

    def _ledger_row(self, moment: datetime, operation: str, kind: str, amount: int, title: str, *,
                    description: str = "", status: str = "success", order_id: str = "", coupon_id: str = "",
                    updated: datetime | None = None) -> None:
        updated = updated or moment
        expire_at = moment + timedelta(days=COIN_EXPIRY_DAYS) if operation == "cr" else None
        row = {
            "workspace_id": self.ctx.workspace_id,
            "wallettransaction_id": self.ctx.uuid4(),
            "lead_id": self.lead.lead_id,
            "customer_id": self.lead.customer_id,
            "wallet_type": "coins",
            "operation": operation,
            "type": kind,
            "status": status,
            "amount": str(amount),
            "title": title,
            "description": description,
            "hash": self.ctx.hash_text(),
            "reference_order_id": order_id,
            "coupon_id": coupon_id,
            "expire_at": format_timestamp(expire_at),
            "created_at": format_timestamp(moment),
            "updated_at": format_timestamp(updated),
        }
        self.records["wallet_transactions"].append([(updated, row)])
        if status != "success":
            return
        if operation == "cr":
            self.lots.append([expire_at, amount])
            self.balance += amount
            self.balance_changes.append((updated, amount))
        else:
            self._consume(amount)
            self.balance -= amount
            self.balance_changes.append((updated, -amount))

    def _credit(self, moment: datetime, kind: str, amount: int, title: str, **details: Any) -> None:
        self._ledger_row(moment, "cr", kind, amount, title, **details)

    def _debit(self, moment: datetime, kind: str, amount: int, title: str, **details: Any) -> None:
        if amount > self.balance:
            raise RuntimeError(f"internal error: lead {self.lead.lead_id} debits {amount} coins "
                               f"but has {self.balance}")
        self._ledger_row(moment, "dr", kind, amount, title, **details)

    def _consume(self, amount: int) -> None:
        remaining = amount
        while remaining > 0:
            lot = self.lots[0]
            consumed = min(lot[1], remaining)
            lot[1] -= consumed
            remaining -= consumed
            if lot[1] == 0:
                self.lots.popleft()

    def _expire_credits(self, moment: datetime, *, inclusive: bool) -> None:
        # A lot with coins left is always at the head once it is due, because lots expire in the order
        # they were earned, so the expire debit consumes exactly that lot.
        while self.lots and (self.lots[0][0] <= moment if inclusive else self.lots[0][0] < moment):
            expire_at, coins = self.lots[0]
            earned_on = ist_day(expire_at - timedelta(days=COIN_EXPIRY_DAYS))
            self._debit(expire_at, "expire", coins, "Coins expired",
                        description=f"{coins} coins earned on {earned_on.isoformat()} expired")

    # Coupons ---------------------------------------------------------------------------------------

    def _issue_coupon(self, moment: datetime, offer: Offer, source: str) -> Coupon:
        expire_at = moment + timedelta(days=offer.valid_days)
        row = {
            "workspace_id": self.ctx.workspace_id,
            "coupon_id": self.ctx.uuid4(),
            "lead_id": self.lead.lead_id,
            "offer_id": offer.offer_id,
            "offer_name": offer.name,
            "code": self.ctx.next_coupon_code(offer.code_prefix),
            "coupon_type": "code",
            "fiat_class": offer.fiat_class,
            "fiat_value": str(offer.fiat_value),
            "minimumcart_amount": str(offer.minimum_cart),
            "currency_code": CURRENCY_CODE,
            "coins_spent": str(offer.coins),
            "source": source,
            "status": "issued",
            "used_order_id": "",
            "used_at": "",
            "expire_at": format_timestamp(expire_at),
            "created_at": format_timestamp(moment),
            "updated_at": format_timestamp(moment),
        }
        coupon = Coupon(offer, [(moment, row)], expire_at)
        self.coupons.append(coupon)
        self.records["coupons"].append(coupon.versions)
        return coupon

    def _redeem(self, moment: datetime, offer: Offer) -> Coupon:
        coupon = self._issue_coupon(moment, offer, "redeem")
        self._debit(moment, "redeem", offer.coins, f"Redeemed for {offer.name}", coupon_id=coupon.coupon_id)
        return coupon

    def _choose_offer(self) -> Offer | None:
        affordable = [offer for offer in self.ctx.redeem_offers if offer.coins <= self.balance]
        if not affordable:
            return None
        if self.ctx.chance(0.6):
            return affordable[-1]
        return self.ctx.rng.choice(affordable)

    def _coupon_for(self, order: Order, moment: datetime) -> Coupon | None:
        def usable(coupon: Coupon) -> bool:
            return not coupon.used and coupon.expire_at > moment and coupon.offer.minimum_cart <= order.value

        if order.coupon is not None and usable(order.coupon):
            return order.coupon
        open_coupons = [coupon for coupon in self.coupons if usable(coupon)]
        if open_coupons and self.ctx.chance(0.5):
            return open_coupons[0]
        return None

    def _use_coupon(self, coupon: Coupon, moment: datetime, order: Order) -> None:
        coupon.used = True
        row = dict(coupon.versions[-1][1])
        row.update(status="used", used_order_id=order.order_id, used_at=format_timestamp(moment),
                   updated_at=format_timestamp(moment))
        coupon.versions.append((moment, row))

    def _close_coupons(self) -> None:
        for coupon in self.coupons:
            if coupon.used:
                continue
            row = dict(coupon.versions[-1][1])
            row.update(status="expired", updated_at=format_timestamp(coupon.expire_at))
            coupon.versions.append((coupon.expire_at, row))

    # Tiers -----------------------------------------------------------------------------------------

    def _change_tier(self, moment: datetime, tier: Tier) -> None:
        expires_at = add_months(moment, tier.expiry_months) if tier.expiry_months else None
        row = {
            "workspace_id": self.ctx.workspace_id,
            "event_id": self.ctx.uuid4(),
            "lead_id": self.lead.lead_id,
            "customer_id": self.lead.customer_id,
            "previous_tier": self.tier.name if self.tier_history else "",
            "new_tier": tier.name,
            "changed_at": format_timestamp(moment),
            "tier_expires_at": format_timestamp(expires_at),
        }
        self.records["tier_changes"].append([(moment, row)])
        self.tier = tier
        self.tier_expires_at = expires_at
        self.tier_history.append((moment, tier.name))
        if expires_at is not None:
            self._schedule(expires_at, self._on_tier_expiry, expires_at)

    def _trailing_spend(self, moment: datetime) -> int:
        window_start = add_months(moment, -12)
        return sum(value for when, value in self.spend if when > window_start)

    # Event handlers ----------------------------------------------------------------------------------

    def _on_signup(self, moment: datetime, _: Any) -> None:
        self._change_tier(moment, TIERS[0])
        self._credit(self.ctx.after(moment, 1, 5), "reward", SIGNUP_BONUS, "Welcome bonus",
                     description="Coins for joining the rewards programme")
        if self.lead.referred_by_code:
            self._issue_coupon(self.ctx.after(moment, 2, 8), self.ctx.referee_offer, "referral_referee")

    def _on_redeem_for_order(self, moment: datetime, order: Order) -> None:
        if not self.ctx.chance(self.plan.redeem_propensity):
            return
        offer = self._choose_offer()
        if offer is not None:
            order.coupon = self._redeem(moment, offer)

    def _on_extra_redemption(self, moment: datetime, _: Any) -> None:
        if not (self.plan.force_extra_redemption or self.ctx.chance(self.plan.redeem_propensity)):
            return
        offer = self._choose_offer()
        if offer is not None:
            self._redeem(moment, offer)

    def _on_order(self, moment: datetime, order: Order) -> None:
        ctx = self.ctx
        coupon = self._coupon_for(order, moment)
        paid = order.value
        if coupon is not None:
            self._use_coupon(coupon, moment, order)
            paid -= coupon.offer.discount(order.value)
        self.spend.append((moment, order.value))

        coins = int(paid * EARN_RATE * self.tier.bonus)
        if coins > 0:
            status = self._draw_reward_status(moment)
            # updated_at trails created_at by up to 45 s, as an asynchronous reward job would leave it.
            self._credit(moment, "reward", coins, "Order reward", status=status, order_id=order.order_id,
                         updated=ctx.after(moment, 0.3, 45))
            order.reward = coins if status == "success" else 0

        qualified = qualified_tier(self._trailing_spend(moment))
        if qualified.rank > self.tier.rank:
            self._change_tier(ctx.after(moment, 50, 120), qualified)

        if order.review_at is not None:
            self._schedule(order.review_at, self._on_review, order)
        elif ctx.chance(self.plan.review_probability):
            self._schedule(ctx.after(moment, 4 * 86_400, 25 * 86_400), self._on_review, order)
        if ctx.chance(self.plan.refund_probability):
            self._schedule(ctx.after(moment, 3 * 86_400, 20 * 86_400), self._on_refund, order)

    def _draw_reward_status(self, moment: datetime) -> str:
        if moment >= self.ctx.calendar.end - PENDING_WINDOW and self.ctx.chance(0.4):
            return "pending"
        if self.ctx.chance(0.006):
            return "failed"
        return "success"

    def _on_refund(self, moment: datetime, order: Order) -> None:
        coins = min(order.reward, self.balance)
        if coins > 0:
            self._debit(moment, "revert", coins, "Order refunded", description=f"Order {order.order_id} refunded",
                        order_id=order.order_id)

    def _on_review(self, moment: datetime, order: Order) -> None:
        ctx = self.ctx
        rating = ctx.rng.choices(RATINGS, cum_weights=RATING_CUM_WEIGHTS)[0]
        product_id, product_name = ctx.rng.choice(ctx.products)
        title, text = self._draw_review_text(rating)
        row = {
            "workspace_id": ctx.workspace_id,
            "review_id": ctx.uuid4(),
            "lead_id": self.lead.lead_id,
            "customer_id": self.lead.customer_id,
            "rating": str(rating),
            "title": title,
            "description": text,
            "reference_product_source": "shopify",
            "reference_product_id": product_id,
            "reference_product_name": product_name,
            "order_id": order.order_id,
            "is_verified": format_bool(ctx.chance(0.95)),
            "is_approved": "false",
            "created_at": format_timestamp(moment),
            "updated_at": format_timestamp(moment),
        }
        # Moderation approves or rejects the review later. Only approved reviews earn coins.
        approved = ctx.chance(0.96 if rating >= 3 else 0.55)
        moderated = ctx.after(moment, 3600, 40 * 3600)
        final = dict(row, is_approved=format_bool(approved), updated_at=format_timestamp(moderated))
        self.records["reviews"].append([(moment, row), (moderated, final)])
        if approved:
            self._schedule(ctx.after(moderated, 1, 3), self._on_review_reward, product_name)

    def _draw_review_text(self, rating: int) -> tuple[str, str]:
        rng = self.ctx.rng
        if rng.random() < 0.15:
            return "", ""  # a star rating without text
        if rating >= 4:
            bucket = "high"
        elif rating == 3:
            bucket = "middle"
        else:
            bucket = "low"
        return rng.choice(REVIEW_TEXTS[bucket])

    def _on_review_reward(self, moment: datetime, product_name: str) -> None:
        self._credit(moment, "reward", REVIEW_REWARD, "Review reward", description=f"Review of {product_name}")

    def _on_referral_reward(self, moment: datetime, friend_name: str) -> None:
        self._credit(moment, "reward", REFERRAL_REWARD, "Referral reward",
                     description=f"{friend_name} placed their first order")

    def _on_adjustment(self, moment: datetime, coins: int) -> None:
        if coins > 0:
            title = "QA top-up" if self.lead.test_account else "Goodwill coins"
            self._credit(moment, "adjust", coins, title, description="Added by the support team")
            return
        debited = min(-coins, self.balance)
        if debited > 0:
            self._debit(moment, "adjust", debited, "Coins corrected", description="Duplicate reward removed")

    def _on_birthday(self, moment: datetime, _: Any) -> None:
        self._issue_coupon(moment, self.ctx.birthday_offer, "trigger")

    def _on_tier_expiry(self, moment: datetime, expires_at: datetime) -> None:
        if self.tier_expires_at != expires_at:
            return  # a later tier change replaced the tier that was due to lapse
        # The tier is re-assessed on the trailing 12 months. Keeping it is a renewal, written as a change
        # to the same tier with a new expiry.
        # NOTE: how Nector itself reports a renewal is not known; downgrades and upgrades are unaffected.
        qualified = qualified_tier(self._trailing_spend(moment))
        self._change_tier(moment, qualified if qualified.rank < self.tier.rank else self.tier)

    # Customer snapshots ------------------------------------------------------------------------------

    def _customer_versions(self) -> Versions:
        """Return the customers row as of the end of each export window in which the lead changed."""
        calendar = self.ctx.calendar
        versions: Versions = []
        for window in (calendar.history, calendar.delta):
            if self.lead.signup >= window.end:
                continue
            changes = [self.lead.signup]
            changes += [moment for moment, _ in self.balance_changes if moment < window.end]
            changes += [moment for moment, _ in self.tier_history if moment < window.end]
            last_change = max(changes)
            if last_change < window.start:
                continue
            balance = sum(coins for moment, coins in self.balance_changes if moment < window.end)
            tier = [name for moment, name in self.tier_history if moment < window.end][-1]
            versions.append((last_change, self._customer_row(balance, tier, last_change)))
        return versions

    def _customer_row(self, balance: int, tier: str, updated: datetime) -> Row:
        lead = self.lead
        return {
            "workspace_id": self.ctx.workspace_id,
            "lead_id": lead.lead_id,
            "customer_id": lead.customer_id,
            "name": lead.name,
            "email": lead.email,
            "mobile": lead.mobile,
            "country": lead.country,
            "dob": lead.dob.isoformat() if lead.dob else "",
            "gender": lead.gender,
            "referral_code": lead.referral_code,
            "referred_by_referral_code": lead.referred_by_code,
            "tier": tier,
            "classification": lead.classification,
            "coins_available": str(balance),
            "email_opt_in": format_bool(lead.email_opt_in),
            "sms_opt_in": format_bool(lead.sms_opt_in),
            "whatsapp_opt_in": format_bool(lead.whatsapp_opt_in),
            "created_at": format_timestamp(lead.signup),
            "updated_at": format_timestamp(updated),
        }


# --- referral groups ----------------------------------------------------------------------------------

def generate_group(ctx: Context, head_number: int, capacity: int) -> list[LeadResult]:
    """Generate a lead (the group head) and up to ``capacity - 1`` friends who used their referral code."""
    scenario = scenario_for(head_number)
    signup = draw_head_signup(ctx, scenario)
    head = draw_lead(ctx, signup, has_customer_id=head_number not in NO_CUSTOMER_ID_HEADS,
                     country=FOREIGN_HEADS.get(head_number, "ind"))
    plan = draw_plan(ctx, head)
    apply_scenario(ctx, head, plan, scenario)

    friends: list[tuple[Lead, Plan]] = []
    referrals: list[Versions] = []
    for position in range(_draw_friend_count(ctx, head, scenario, capacity - 1)):
        forced = scenario == "recent_referral" and position == 0
        friend_signup = _draw_friend_signup(ctx, head, forced)
        if friend_signup is None:
            break
        friend = draw_lead(ctx, friend_signup, referred_by_code=head.referral_code)
        friend_plan = draw_plan(ctx, friend)
        if forced:
            _force_first_order_last_week(ctx, friend, friend_plan)
        versions, completed_at = _referral_versions(ctx, head, friend, friend_plan)
        referrals.append(versions)
        if completed_at is not None:
            plan.referral_rewards.append((ctx.after(completed_at, 1, 3), friend.name))
        friends.append((friend, friend_plan))

    results = [LeadSimulation(ctx, head, plan).run()]
    results[0].records["referrals"].extend(referrals)
    for friend, friend_plan in friends:
        results.append(LeadSimulation(ctx, friend, friend_plan).run())
    return results


def _draw_friend_count(ctx: Context, head: Lead, scenario: str | None, capacity: int) -> int:
    if capacity <= 0 or not head.customer_id:
        return 0
    rng = ctx.rng
    if scenario == "recent_referral":
        count = 1 + (rng.random() < 0.3)
    elif rng.random() < 0.2:
        count = rng.choices((1, 2, 3), cum_weights=(70, 92, 100))[0]
    else:
        count = 0
    return min(count, capacity)


def _draw_friend_signup(ctx: Context, head: Lead, forced: bool) -> datetime | None:
    calendar = ctx.calendar
    if forced:
        signup = ctx.moment_on(calendar.anchor - timedelta(days=ctx.rng.randrange(8, 21)))
        if signup > head.signup + timedelta(days=1):
            return signup
    earliest = head.signup + timedelta(days=1)
    if earliest >= calendar.end - timedelta(hours=1):
        return None
    return ctx.moment_between(earliest, calendar.end)


def _force_first_order_last_week(ctx: Context, friend: Lead, plan: Plan) -> None:
    """Move the friend's first order to 1 to 5 days before the anchor date."""
    moment = ctx.moment_on(ctx.calendar.anchor - timedelta(days=ctx.rng.randrange(1, 6)))
    if moment <= friend.signup:
        return
    plan.orders = [order for order in plan.orders if order.moment > moment]
    _insert_order(plan, Order(moment, _draw_order_value(ctx.rng), ctx.next_order_id()))


def _referral_versions(ctx: Context, head: Lead, friend: Lead, friend_plan: Plan) -> tuple[Versions, datetime | None]:
    """Return the referral's versions and, if it completes, when."""
    claimed = friend.signup - timedelta(milliseconds=ctx.rng.randrange(5_000, 120_000))
    row = {
        "workspace_id": ctx.workspace_id,
        "referral_id": ctx.uuid4(),
        "referred_by_lead_id": head.lead_id,
        "referred_to_lead_id": friend.lead_id,
        "referral_code": head.referral_code,
        "referral_mode": "link" if ctx.chance(0.6) else "code",
        "status": "created",
        "referrer_reward_type": "coins",
        "referrer_reward_value": str(REFERRAL_REWARD),
        "completing_order_id": "",
        "created_at": format_timestamp(claimed),
        "completed_at": "",
        "updated_at": format_timestamp(claimed),
    }
    versions: Versions = [(claimed, row)]
    first_order = friend_plan.orders[0] if friend_plan.orders else None
    if first_order is not None and first_order.moment < claimed + REFERRAL_WINDOW:
        completed = ctx.after(first_order.moment, 60, 600)
        versions.append((completed, dict(row, status="completed", completing_order_id=first_order.order_id,
                                          completed_at=format_timestamp(completed),
                                          updated_at=format_timestamp(completed))))
        return versions, completed
    cancelled = claimed + REFERRAL_WINDOW
    versions.append((cancelled, dict(row, status="cancelled", updated_at=format_timestamp(cancelled))))
    return versions, None


def generate_leads(ctx: Context, customers: int) -> Iterator[list[LeadResult]]:
    """Yield the test accounts, then referral groups until ``customers`` leads exist."""
    for number in range(1, TEST_ACCOUNTS + 1):
        lead = draw_test_account(ctx, number)
        yield [LeadSimulation(ctx, lead, draw_test_account_plan(ctx, lead)).run()]

    generated = 0
    for head_number in itertools.count(1):
        if generated >= customers:
            return
        group = generate_group(ctx, head_number, customers - generated)
        generated += len(group)
        yield group


# --- writing ------------------------------------------------------------------------------------------

def split_versions(versions: Versions, calendar: Calendar) -> tuple[Row | None, Row | None]:
    """Return the row for the history export and the row for the delta export (None: not in it)."""
    history_row = None
    delta_row = None
    for moment, row in versions:
        if moment < calendar.history.end:
            history_row = row
        elif moment < calendar.delta.end:
            delta_row = row
    return history_row, delta_row


@dataclass(frozen=True)
class FileStats:
    rows: int
    sha256: str


class ExportWriter:
    """The open CSV files of one export folder, one per contract entity, header first."""

    def __init__(self, folder: Path, stack: ExitStack) -> None:
        folder.mkdir(parents=True)
        self.folder = folder
        self.rows: dict[str, int] = {}
        self._writers: dict[str, Any] = {}
        self._getters: dict[str, Callable[[Row], tuple[str, ...]]] = {}
        for entity in ENTITIES:
            names = [column.name for column in entity.columns]
            handle = stack.enter_context((folder / entity.file_name).open("w", encoding="utf-8", newline=""))
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(names)
            self._writers[entity.name] = writer
            # itemgetter is much faster than csv.DictWriter. A row that lacks a column raises KeyError.
            self._getters[entity.name] = operator.itemgetter(*names)
            self.rows[entity.name] = 0

    def write(self, entity_name: str, row: Row) -> int:
        """Write one row with a value for every column and return its record number.

        Record numbers are 1-based and do not count the header.
        """
        self._writers[entity_name].writerow(self._getters[entity_name](row))
        self.rows[entity_name] += 1
        return self.rows[entity_name]


def complete_row(entity_name: str, values: Row) -> Row:
    """Return a row with every column of the entity, empty where ``values`` has none."""
    return {column.name: values.get(column.name, "") for column in ENTITIES_BY_NAME[entity_name].columns}


# For a lead chosen for re-sending, the delta repeats the first unchanged record of each of these entities.
RESENT_ENTITIES = frozenset({"customers", "wallet_transactions", "coupons"})


def write_lead(result: LeadResult, history: ExportWriter, delta: ExportWriter, calendar: Calendar,
               resend: bool) -> None:
    for name, records in result.records.items():
        resend_left = resend and name in RESENT_ENTITIES
        for versions in records:
            history_row, delta_row = split_versions(versions, calendar)
            record_number = history.write(name, history_row) if history_row is not None else None
            if name == "wallet_transactions":
                result.history_ledger_records.append(record_number)
            if delta_row is not None:
                delta.write(name, delta_row)
            elif resend_left and history_row is not None:
                delta.write(name, history_row)
                resend_left = False


def tier_rows(ctx: Context) -> list[Row]:
    """Return the tier definitions, set up two days before the programme started."""
    created = ist_midnight(ctx.calendar.launch_day) - timedelta(days=2) + timedelta(hours=11, minutes=4)
    updated = created + timedelta(days=1, minutes=37)
    return [
        {
            "workspace_id": ctx.workspace_id,
            "tier_name": tier.name,
            "rank": str(tier.rank),
            "criteria_type": "ltv",
            "threshold_value": str(tier.threshold),
            "bonus_factor": tier.bonus_factor,
            "tier_expiry_months": str(tier.expiry_months) if tier.expiry_months else "",
            "created_at": format_timestamp(created),
            "updated_at": format_timestamp(updated),
        }
        for tier in TIERS
    ]


def offer_rows(ctx: Context) -> list[Row]:
    """Return the reward catalogue, set up with the tiers."""
    created = ist_midnight(ctx.calendar.launch_day) - timedelta(days=2) + timedelta(hours=11, minutes=31)
    offers = (*ctx.redeem_offers, ctx.referee_offer, ctx.birthday_offer)
    return [
        {
            "workspace_id": ctx.workspace_id,
            "offer_id": offer.offer_id,
            "name": offer.name,
            "description": f"{offer.name} on orders above ₹{offer.minimum_cart}",
            "rule_type": "internal",
            "coin_amount": str(offer.coins),
            "fiat_class": offer.fiat_class,
            "fiat_range_min": str(offer.fiat_value),
            "fiat_range_max": str(offer.fiat_value),
            "is_multiplier": "false",
            "tier": "",
            "category": "discount",
            "brand": "",
            "expire": "",
            "is_active": "true",
            "created_at": format_timestamp(created),
            "updated_at": format_timestamp(created),
        }
        for offer in offers
    ]


def file_stats(path: Path, rows: int) -> FileStats:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return FileStats(rows, digest.hexdigest())


def write_manifest(folder: Path, window: ExportWindow, workspace_id: str, rows: dict[str, int]) -> None:
    files: dict[str, dict[str, Any]] = {}
    for entity in ENTITIES:
        stats = file_stats(folder / entity.file_name, rows[entity.name])
        files[entity.file_name] = {"rows": stats.rows, "sha256": stats.sha256}
    manifest = {
        "contract_version": CONTRACT_VERSION,
        "workspace_id": workspace_id,
        "export_id": window.export_id,
        "exported_at": format_timestamp(window.exported_at),
        "timezone": TIMEZONE_NAME,
        "currency_code": CURRENCY_CODE,
        "coin_name": COIN_NAME,
        "coin_expiry_days": COIN_EXPIRY_DAYS,
        "files": files,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n",
                                          encoding="utf-8")


# --- deliberately bad rows ----------------------------------------------------------------------------

# Kinds in the order they are spread over the first export, each written after a later share of leads.
BAD_ROW_KINDS = (
    "missing_required", "negative_amount", "unparseable_timestamp", "out_of_range",
    "unknown_enum", "invalid_uuid", "invalid_date", "stale_duplicate",
)


@dataclass(frozen=True)
class BadRowDraft:
    entity_name: str
    row: Row
    column: str
    problem: str


class BadRowInjector:
    """Write one contract-breaking row of each kind into the history export.

    Bad rows are extra rows, so the valid rows stay consistent with each other. They draw from their
    own random generator, so the valid rows are identical with and without bad rows.
    """

    def __init__(self, seed: int, ctx: Context, customers: int) -> None:
        self.rng = random.Random(f"{seed}:bad-rows")
        self.ctx = ctx
        self.export_id = ctx.calendar.history.export_id
        self.thresholds = {kind: max(1, (position + 1) * customers // (len(BAD_ROW_KINDS) + 1))
                           for position, kind in enumerate(BAD_ROW_KINDS)}
        self.pending = list(BAD_ROW_KINDS)
        self.candidates: deque[LeadResult] = deque(maxlen=32)
        self.bad_rows: list[BadRow] = []

    def offer(self, results: list[LeadResult], leads_seen: int, writer: ExportWriter) -> None:
        for result in results:
            lead = result.lead
            if lead.customer_id and not lead.test_account and lead.signup < self.ctx.calendar.history.end:
                self.candidates.append(result)
        for kind in [kind for kind in self.pending if self.thresholds[kind] <= leads_seen]:
            self._inject(kind, writer)

    def finish(self, writer: ExportWriter) -> None:
        for kind in list(self.pending):
            self._inject(kind, writer)

    def _inject(self, kind: str, writer: ExportWriter) -> None:
        build = getattr(self, f"_build_{kind}")
        for result in reversed(self.candidates):
            draft = build(result)
            if draft is None:
                continue
            record = writer.write(draft.entity_name, complete_row(draft.entity_name, draft.row))
            file_name = ENTITY_FILES[draft.entity_name]
            self.bad_rows.append(BadRow(self.export_id, file_name, record, draft.column, kind, draft.problem))
            self.pending.remove(kind)
            return

    def _moment(self, lead: Lead) -> datetime:
        end = self.ctx.calendar.history.end
        span = max(1, (end - lead.signup) // _MILLISECOND)
        return lead.signup + timedelta(milliseconds=self.rng.randrange(span))

    def _ledger_row(self, lead: Lead, moment: datetime, **values: str) -> Row:
        row = {
            "workspace_id": self.ctx.workspace_id,
            "wallettransaction_id": new_uuid4(self.rng),
            "lead_id": lead.lead_id,
            "customer_id": lead.customer_id,
            "wallet_type": "coins",
            "status": "success",
            "hash": f"{self.rng.getrandbits(128):032x}",
            "expire_at": format_timestamp(moment + timedelta(days=COIN_EXPIRY_DAYS)),
            "created_at": format_timestamp(moment),
            "updated_at": format_timestamp(moment),
        }
        row.update(values)
        return row

    def _build_missing_required(self, result: LeadResult) -> BadRowDraft | None:
        history_row, _ = split_versions(result.records["customers"][0], self.ctx.calendar)
        if history_row is None:
            return None
        return BadRowDraft("customers", dict(history_row, lead_id=""), "lead_id",
                           "lead_id is empty but required (a copy of another lead's row)")

    def _build_negative_amount(self, result: LeadResult) -> BadRowDraft:
        row = self._ledger_row(result.lead, self._moment(result.lead), operation="cr", type="adjust",
                               amount="-50", title="Goodwill coins")
        return BadRowDraft("wallet_transactions", row, "amount", "amount -50 is negative")

    def _build_unknown_enum(self, result: LeadResult) -> BadRowDraft:
        row = self._ledger_row(result.lead, self._moment(result.lead), operation="credit", type="reward",
                               amount="25", title="Order reward")
        return BadRowDraft("wallet_transactions", row, "operation", "operation 'credit' is not one of cr, dr")

    def _build_stale_duplicate(self, result: LeadResult) -> BadRowDraft | None:
        for versions, record in zip(result.records["wallet_transactions"], result.history_ledger_records):
            row = versions[-1][1]
            if record is None or row["created_at"] == row["updated_at"] or row["status"] != "success":
                continue
            stale = dict(row, status="pending", updated_at=row["created_at"])
            return BadRowDraft("wallet_transactions", stale, "updated_at",
                               f"duplicate of record {record} (wallettransaction_id {row['wallettransaction_id']}) "
                               f"with an older updated_at and status pending")
        return None

    def _build_unparseable_timestamp(self, result: LeadResult) -> BadRowDraft:
        lead = result.lead
        moment = self._moment(lead)
        offer = self.ctx.birthday_offer
        bad_value = f"31/11/{self.ctx.calendar.history.day.year} 10:00"
        row = {
            "workspace_id": self.ctx.workspace_id,
            "coupon_id": new_uuid4(self.rng),
            "lead_id": lead.lead_id,
            "offer_id": offer.offer_id,
            "offer_name": offer.name,
            "code": f"{offer.code_prefix}-{encode_base32(self.rng.getrandbits(45), 9)}",
            "coupon_type": "code",
            "fiat_class": offer.fiat_class,
            "fiat_value": str(offer.fiat_value),
            "minimumcart_amount": str(offer.minimum_cart),
            "currency_code": CURRENCY_CODE,
            "coins_spent": "0",
            "source": "trigger",
            "status": "issued",
            "expire_at": bad_value,
            "created_at": format_timestamp(moment),
            "updated_at": format_timestamp(moment),
        }
        return BadRowDraft("coupons", row, "expire_at", f"expire_at {bad_value!r} is not an ISO 8601 timestamp")

    def _build_out_of_range(self, result: LeadResult) -> BadRowDraft:
        lead = result.lead
        moment = self._moment(lead)
        product_id, product_name = self.rng.choice(self.ctx.products)
        row = {
            "workspace_id": self.ctx.workspace_id,
            "review_id": new_uuid4(self.rng),
            "lead_id": lead.lead_id,
            "customer_id": lead.customer_id,
            "rating": "7",
            "title": "Superb",
            "description": "7 stars from me!",
            "reference_product_source": "shopify",
            "reference_product_id": product_id,
            "reference_product_name": product_name,
            "is_verified": "false",
            "is_approved": "false",
            "created_at": format_timestamp(moment),
            "updated_at": format_timestamp(moment),
        }
        return BadRowDraft("reviews", row, "rating", "rating 7 is above the maximum 5")

    def _build_invalid_uuid(self, result: LeadResult) -> BadRowDraft:
        lead = result.lead
        moment = self._moment(lead)
        truncated = lead.lead_id[:-1]
        row = {
            "workspace_id": self.ctx.workspace_id,
            "referral_id": new_uuid4(self.rng),
            "referred_by_lead_id": truncated,
            "referral_code": lead.referral_code,
            "referral_mode": "link",
            "status": "created",
            "referrer_reward_type": "coins",
            "referrer_reward_value": str(REFERRAL_REWARD),
            "created_at": format_timestamp(moment),
            "updated_at": format_timestamp(moment),
        }
        return BadRowDraft("referrals", row, "referred_by_lead_id",
                           f"referred_by_lead_id {truncated!r} is not a valid UUID (last character missing)")

    def _build_invalid_date(self, result: LeadResult) -> BadRowDraft:
        lead = result.lead
        moment = self._moment(lead)
        first = self.rng.choice(FEMALE_FIRST_NAMES)
        last = self.rng.choice(LAST_NAMES)
        bad_dob = f"{self.ctx.calendar.anchor.year - 30}-02-30"
        row = {
            "workspace_id": self.ctx.workspace_id,
            "lead_id": new_uuid4(self.rng),
            "customer_id": f"shopify-{7_900_000_000_000 + self.rng.randrange(10**11)}",
            "name": f"{first} {last}",
            "email": f"{first.lower()}.{_ascii_letters(last).lower()}@gmail.com",
            "mobile": f"9{self.rng.randrange(10**9):09d}",
            "country": "ind",
            "dob": bad_dob,
            "gender": "female",
            "tier": TIERS[0].name,
            "classification": "lead",
            "coins_available": "0",
            "created_at": format_timestamp(moment),
            "updated_at": format_timestamp(moment),
        }
        return BadRowDraft("customers", row, "dob", f"dob {bad_dob!r} is not a valid date")


ENTITY_FILES: dict[str, str] = {entity.name: entity.file_name for entity in ENTITIES}
ENTITIES_BY_NAME = {entity.name: entity for entity in ENTITIES}


# --- entry point --------------------------------------------------------------------------------------

def generate_exports(
    root: Path,
    *,
    customers: int = DEFAULT_CUSTOMERS,
    seed: int = DEFAULT_SEED,
    anchor: date = DEFAULT_ANCHOR,
    workspace_id: str = DEFAULT_WORKSPACE,
    bad_rows: bool = True,
    activity: float = 1.0,
) -> GenerationSummary:
    """Write the history and delta exports of one workspace under ``root / workspace_id``.

    Replaces the two dated export folders it writes under ``root / workspace_id`` and leaves every
    other folder alone. The files are first written to ``root / .<workspace_id>.partial``, so a failed
    run leaves the old folders intact.
    ``customers`` counts leads, the test accounts not included. ``activity`` multiplies each lead's
    number of orders, and the ledger grows roughly in proportion.
    """
    if customers < 1:
        raise ValueError(f"customers must be at least 1, got {customers}")
    if not 0 < activity < float("inf"):
        raise ValueError(f"activity must be a finite number greater than 0, got {activity}")
    if not WORKSPACE_PATTERN.fullmatch(workspace_id):
        raise ValueError(f"invalid workspace_id {workspace_id!r}: use lower-case letters, digits and '-'")

    root = Path(root)
    target = root / workspace_id
    partial = root / f".{workspace_id}.partial"
    if partial.exists():
        shutil.rmtree(partial)
    try:
        summary = _write_exports(partial, target, customers=customers, seed=seed, anchor=anchor,
                                 workspace_id=workspace_id, bad_rows=bad_rows, activity=activity)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    # Replace only the export folders generated here; other exports of the workspace stay.
    target.mkdir(parents=True, exist_ok=True)
    for generated in sorted(partial.iterdir()):
        destination = target / generated.name
        if destination.exists():
            shutil.rmtree(destination)
        generated.rename(destination)
    partial.rmdir()
    return summary


def _write_exports(folder: Path, target: Path, *, customers: int, seed: int, anchor: date, workspace_id: str,
                   bad_rows: bool, activity: float) -> GenerationSummary:
    calendar = build_calendar(anchor, workspace_id)
    ctx = Context(seed, calendar, workspace_id, activity)
    windows = (calendar.history, calendar.delta)
    injector = BadRowInjector(seed, ctx, customers) if bad_rows else None

    with ExitStack() as stack:
        history, delta = (ExportWriter(folder / window.day.isoformat(), stack) for window in windows)
        for row in tier_rows(ctx):
            history.write("tiers", row)
            delta.write("tiers", row)  # the delta re-sends the unchanged tier definitions
        for row in offer_rows(ctx):
            history.write("offers", row)
            delta.write("offers", row)

        leads_seen = 0
        for group in generate_leads(ctx, customers):
            for result in group:
                # Real exports re-send some unchanged rows, so every 50th lead has some repeated in the delta.
                write_lead(result, history, delta, calendar, resend=result.lead.index % 50 == 7)
            leads_seen += sum(not result.lead.test_account for result in group)
            if injector is not None:
                injector.offer(group, leads_seen, history)
        if injector is not None:
            injector.finish(history)

    exports = []
    for window, writer in zip(windows, (history, delta)):
        write_manifest(writer.folder, window, workspace_id, writer.rows)
        rows = {ENTITY_FILES[name]: count for name, count in writer.rows.items()}
        exports.append(ExportSummary(window.export_id, target / window.day.isoformat(), rows))

    return GenerationSummary(
        workspace_id=workspace_id,
        seed=seed,
        anchor=anchor,
        customers=customers,
        test_accounts=TEST_ACCOUNTS,
        exports=tuple(exports),
        bad_rows=tuple(injector.bad_rows) if injector is not None else (),
    )
