"""Write the bad-export corpus in this folder: one file per case, named after the case.

Run it again after changing a case (``python tests/ingest/corpus/make_corpus.py``); the files are
committed so a reader can open each one. ``test_corpus.py`` pairs every file with its expected outcome.
"""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKSPACE = "shopify-test-brand"
CUSTOMER_HEADER = "workspace_id,lead_id,customer_id,name,email,created_at,updated_at"
LEDGER_HEADER = "workspace_id,wallettransaction_id,lead_id,operation,type,status,amount,created_at,updated_at"
GOOD_ROWS = 30  # enough good records that one bad record stays under the 5% quarantine threshold


def lead(number: int) -> str:
    return str(uuid.UUID(int=number + (1 << 70), version=4))


def customer(number: int, name: str | None = None, created: str = "2026-01-05T04:12:00Z",
             email: str | None = None) -> str:
    return (f"{WORKSPACE},{lead(number)},shopify-{7000 + number},{name or f'Customer {number}'},"
            f"{email or f'c{number}@example.com'},{created},{created}")


def good_customers(count: int = GOOD_ROWS) -> list[str]:
    return [customer(number) for number in range(count)]


def ledger(number: int, operation: str = "cr", amount: str = "100", tx_type: str = "reward",
           tx_id: str | None = None) -> str:
    return (f"{WORKSPACE},{tx_id or lead(10_000 + number)},{lead(number)},{operation},{tx_type},success,{amount},"
            "2026-03-14T10:05:44Z,2026-03-14T10:05:44Z")


def good_ledger(count: int = GOOD_ROWS) -> list[str]:
    return [ledger(number) for number in range(count)]


def text(*lines: str, newline: str = "\n") -> bytes:
    return (newline.join(lines) + newline).encode("utf-8")


CASES: dict[str, bytes] = {
    "bom.customers.csv": b"\xef\xbb\xbf" + text(CUSTOMER_HEADER, *good_customers()),
    "crlf.customers.csv": text(CUSTOMER_HEADER, *good_customers(), newline="\r\n"),
    "quoted_line_break.customers.csv": text(
        CUSTOMER_HEADER, *good_customers(),
        f'{WORKSPACE},{lead(40)},shopify-7040,"Asha\nMehta, Jr.",a@example.com,2026-01-05T04:12:00Z,2026-01-05T04:12:00Z',
        customer(41, created="2026-13-05T04:12:00Z"),
    ),
    "latin1.customers.csv": text(CUSTOMER_HEADER, *good_customers()) + customer(50, name="Ren\xe9").encode("latin-1") + b"\n",
    "missing_required_column.customers.csv": text("workspace_id,lead_id,name,created_at",
                                                  f"{WORKSPACE},{lead(1)},Asha,2026-01-05T04:12:00Z"),
    "duplicate_ids.customers.csv": text(
        CUSTOMER_HEADER,
        f"{WORKSPACE},{lead(1)},shopify-1,Newest,a@example.com,2026-01-05T04:12:00Z,2026-03-01T00:00:00Z",
        f"{WORKSPACE},{lead(1)},shopify-1,Older,a@example.com,2026-01-05T04:12:00Z,2026-02-01T00:00:00Z",
    ),
    "unparseable_date.customers.csv": text(CUSTOMER_HEADER, *good_customers(), customer(60, created="31/11/2026 10:00")),
    "feb_30.customers.csv": text(CUSTOMER_HEADER, *good_customers(), customer(61, created="2026-02-30T10:00:00Z")),
    "negative_amount.wallet_transactions.csv": text(LEDGER_HEADER, *good_ledger(), ledger(70, amount="-50")),
    "unknown_operation.wallet_transactions.csv": text(LEDGER_HEADER, *good_ledger(), ledger(71, operation="credit")),
    "invalid_uuid.wallet_transactions.csv": text(LEDGER_HEADER, *good_ledger(), ledger(72, tx_id="tx-72")),
    "empty.customers.csv": b"",
    "header_only.customers.csv": text(CUSTOMER_HEADER),
    "truncated.customers.csv.gz": gzip.compress(text(CUSTOMER_HEADER, *good_customers()))[:-40],
    "complete.customers.csv.gz": gzip.compress(text(CUSTOMER_HEADER, *good_customers())),
    "one_megabyte_field.customers.csv": text(CUSTOMER_HEADER, *good_customers(),
                                             customer(80, name="x" * (1 << 20))),
    "sql_in_values.customers.csv": text(CUSTOMER_HEADER, *good_customers(),
                                        customer(81, name="Robert'); DROP TABLE nector.customers;--")),
    "sql_in_header.customers.csv": text(CUSTOMER_HEADER + ',"note""); DROP TABLE nector.customers;--"',
                                        *(row + ",hello" for row in good_customers())),
    "header_case_and_spaces.customers.csv": text(" WORKSPACE_ID , Lead_Id,customer_id,NAME,email,Created_At,UPDATED_AT",
                                                 *good_customers()),
    "padded_values.customers.csv": text(CUSTOMER_HEADER, *good_customers(),
                                        f" {WORKSPACE} , {lead(90)} ,shopify-7090,  Padded  ,  P@Example.COM ,"
                                        " 2026-01-05T04:12:00Z ,2026-01-05T04:12:00Z"),
    "unterminated_quote.customers.csv": text(CUSTOMER_HEADER, *good_customers(),
                                             f'{WORKSPACE},{lead(91)},shopify-7091,"Open quote,x@example.com,'
                                             "2026-01-05T04:12:00Z,2026-01-05T04:12:00Z"),
    "extra_field_in_row.customers.csv": text(CUSTOMER_HEADER, *good_customers(), customer(92) + ",surplus"),
    "duplicate_header.customers.csv": text(CUSTOMER_HEADER + ",name", *(row + ",again" for row in good_customers())),
    "empty_header_field.customers.csv": text(CUSTOMER_HEADER + ",", *(row + "," for row in good_customers())),
    "mostly_bad.customers.csv": text(CUSTOMER_HEADER, *good_customers(10),
                                     *(customer(100 + n, created="yesterday") for n in range(5))),
    "no_offset_timestamps.customers.csv": text(CUSTOMER_HEADER, customer(1, created="2026-01-05 09:42:00")),
    "mixed_offsets.customers.csv": text(CUSTOMER_HEADER, customer(1, created="2026-01-05T04:12:00Z"),
                                        customer(2, created="2026-01-05T09:42:00+05:30"),
                                        customer(3, created="2026-01-05T09:42:00.123456+0530")),
    "nul_byte.customers.csv": text(CUSTOMER_HEADER, *good_customers()) + customer(95, name="A\x00B").encode() + b"\n",
}


def main() -> None:
    for path in HERE.glob("*.csv*"):
        path.unlink()
    for name, data in CASES.items():
        (HERE / name).write_bytes(data)
    print(f"wrote {len(CASES)} files to {HERE}")


if __name__ == "__main__":
    main()
