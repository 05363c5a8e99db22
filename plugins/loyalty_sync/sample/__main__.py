"""Command line for the sample generator: ``python -m loyalty_sync.sample --out DIR``."""

from __future__ import annotations

import argparse
import math
from datetime import date
from pathlib import Path

from loyalty_sync.sample.generator import (
    DEFAULT_ANCHOR,
    DEFAULT_CUSTOMERS,
    DEFAULT_SEED,
    DEFAULT_WORKSPACE,
    generate_exports,
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a finite number greater than 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m loyalty_sync.sample",
        description="Write deterministic sample Nector exports (a history folder and a one-day delta folder) "
                    "under OUT/WORKSPACE, replacing those two folders and leaving other exports alone.",
    )
    parser.add_argument("--out", type=Path, required=True, help="root folder of the exports, for example "
                        "include/sample_exports")
    parser.add_argument("--customers", type=_positive_int, default=DEFAULT_CUSTOMERS,
                        help=f"number of leads, test accounts not included (default {DEFAULT_CUSTOMERS})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    parser.add_argument("--anchor-date", type=date.fromisoformat, default=DEFAULT_ANCHOR,
                        help=f"last day of activity in IST, YYYY-MM-DD (default {DEFAULT_ANCHOR.isoformat()})")
    parser.add_argument("--workspace", default=DEFAULT_WORKSPACE,
                        help=f"Nector workspace id and folder name (default {DEFAULT_WORKSPACE})")
    parser.add_argument("--activity", type=_positive_float, default=1.0,
                        help="multiplier on each lead's number of orders, and the ledger grows roughly in proportion "
                             "(default 1.0 gives about 4 ledger rows per lead, 2.0 about 6)")
    parser.add_argument("--no-bad-rows", action="store_true",
                        help="leave out the deliberately invalid rows of the history export")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        summary = generate_exports(
            args.out,
            customers=args.customers,
            seed=args.seed,
            anchor=args.anchor_date,
            workspace_id=args.workspace,
            bad_rows=not args.no_bad_rows,
            activity=args.activity,
        )
    except ValueError as error:
        parser.error(str(error))  # prints the message and exits with status 2
    print(summary.format())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
