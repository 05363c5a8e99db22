"""Load benchmark: our loader against ``psql \\copy`` and ``pandas.DataFrame.to_sql``, side by side.

    python benchmarks/bench_load.py [--customers 200000] [--activity 1.6]

Generates (and caches under ``.bench/``) sample exports of about 200k customers and 1M wallet
transactions, plus a three times larger ledger for the memory comparison, then in one run and one
scratch database times:

1. our loader on the wallet transactions file, into an empty staging table;
2. ``psql \\copy`` of the same file into an empty table with the same columns, types and primary key;
3. ``pandas.DataFrame.to_sql`` (the default insert method, 10k-row chunks, typed columns) of the first
   ``--to-sql-rows`` rows (default 100k) into the same kind of table. The time is scaled linearly to
   the whole file, because a full run takes many minutes. The CSV parsing before it is not timed;
4. our loader on the same file again (skipped by its sha256), and on the same bytes under a new path
   (every record checked and upserted, nothing changed);
5. the loader process's peak memory over its baseline, for the 1M-row file and the 3M-row file.

The Postgres server is ``LOYALTY_BENCH_DATABASE_URL`` (default 127.0.0.1:5432, user postgres); the
script creates a scratch database and drops it at the end. Only loopback traffic.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from loyalty_sync.contract import WALLET_TRANSACTIONS  # noqa: E402
from loyalty_sync.warehouse.scratch import scratch_database  # noqa: E402

CACHE = REPO / ".bench"
WORKSPACE = "shopify-demo-brand"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def generate(folder: Path, customers: int, activity: float) -> Path:
    """Return the history export folder of a generated sample, generating it once."""
    history = folder / WORKSPACE / "2026-11-29"
    if not (history / "manifest.json").exists():
        subprocess.run([sys.executable, "-m", "loyalty_sync.sample", "--out", str(folder), "--customers", str(customers),
                        "--activity", str(activity), "--no-bad-rows"], check=True, env=_env(), timeout=3600,
                       stdout=subprocess.DEVNULL)
    return history


def single_file_export(history: Path, target: Path, file_name: str) -> Path:
    """Create an export folder with one file of ``history`` and a manifest that lists only that file."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    os.link(history / file_name, target / file_name)
    manifest = json.loads((history / "manifest.json").read_text())
    manifest["files"] = {file_name: manifest["files"][file_name]}
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def run_loader(dsn: str, export_root: Path) -> dict:
    """Run the loader in a fresh process and return its timing and memory figures."""
    completed = subprocess.run([sys.executable, __file__, "--child", dsn, str(export_root)], check=True,
                               capture_output=True, text=True, env=_env(), timeout=3600)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def child(dsn: str, export_root: str) -> None:
    """Measured side of ``run_loader``: baseline memory after imports and connecting, then the load.

    The peak comes from sampling the resident set every 20 ms. ``getrusage``'s maximum is not used:
    on Linux a process started by fork and exec inherits its parent's high-water mark.
    """
    import threading

    import psutil

    from loyalty_sync.ingest.loader import load_exports

    process = psutil.Process()
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, process.memory_info().rss)

    with psycopg.connect(dsn, autocommit=True) as conn:
        baseline = process.memory_info().rss
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        summary = load_exports(conn, Path(export_root), f"bench-{uuid.uuid4().hex[:8]}")
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
    peak = max(peak, process.memory_info().rss)
    print(json.dumps({
        "seconds": elapsed,
        "statuses": [result.status for result in summary.files],
        "rows": sum(result.rows_in_file for result in summary.files),
        "rows_changed": sum(result.rows_changed for result in summary.files),
        "baseline_mb": baseline / 2**20,
        "growth_mb": (peak - baseline) / 2**20,
    }))


def plain_table(conn: psycopg.Connection, name: str) -> None:
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.sql_type)) for c in WALLET_TRANSACTIONS.columns
    )
    key = sql.SQL(", ").join(sql.Identifier(name) for name in WALLET_TRANSACTIONS.natural_key)
    conn.execute(sql.SQL("CREATE TABLE {} ({}, PRIMARY KEY ({}))").format(sql.Identifier(name), columns, key))


def time_psql_copy(dsn: str, path: Path) -> float:
    with psycopg.connect(dsn, autocommit=True) as conn:
        plain_table(conn, "copy_target")
    started = time.perf_counter()
    subprocess.run(["psql", dsn, "-qc", f"\\copy copy_target FROM '{path}' WITH (FORMAT csv, HEADER true)"],
                   check=True, timeout=3600)
    return time.perf_counter() - started


def time_to_sql(dsn: str, path: Path, rows: int) -> float:
    import pandas as pd
    from sqlalchemy import create_engine

    with psycopg.connect(dsn, autocommit=True) as conn:
        plain_table(conn, "to_sql_target")
    from sqlalchemy import types

    frame = pd.read_csv(path, nrows=rows, dtype=str, keep_default_na=False).replace({"": None})
    column_types = {}
    for column in WALLET_TRANSACTIONS.columns:
        if column.type == "timestamptz":
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True, format="ISO8601")
            column_types[column.name] = types.DateTime(timezone=True)
        elif column.type == "numeric":
            frame[column.name] = pd.to_numeric(frame[column.name])
            column_types[column.name] = types.Numeric(14, 2)
        elif column.type == "uuid":
            column_types[column.name] = types.Uuid(as_uuid=False)
    engine = create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(dsn))
    started = time.perf_counter()
    frame.to_sql("to_sql_target", engine, if_exists="append", index=False, chunksize=10_000, dtype=column_types)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--activity", type=float, default=1.6, help="ledger rows per customer multiplier")
    parser.add_argument("--to-sql-rows", type=int, default=100_000)
    parser.add_argument("--child", nargs=2, metavar=("DSN", "EXPORT_ROOT"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child:
        child(*arguments.child)
        return

    server = os.environ.get("LOYALTY_BENCH_DATABASE_URL", DEFAULT_SERVER)
    history = generate(CACHE / f"exports-{arguments.customers}", arguments.customers, arguments.activity)
    history_3x = generate(CACHE / f"exports-{arguments.customers * 3}", arguments.customers * 3, arguments.activity)
    ledger = history / "wallet_transactions.csv"
    ledger_3x = history_3x / "wallet_transactions.csv"
    runs = CACHE / "runs"
    shutil.rmtree(runs, ignore_errors=True)

    with scratch_database(server, "loyalty_bench_load") as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            from loyalty_sync.warehouse.migrations import apply_migrations

            apply_migrations(conn)
        results = {"rows": sum(1 for _ in ledger.open("rb")) - 1, "rows_3x": sum(1 for _ in ledger_3x.open("rb")) - 1}
        single_file_export(history, runs / "first" / "export", ledger.name)
        single_file_export(history, runs / "copy" / "same-bytes-elsewhere", ledger.name)
        results["ours_first"] = run_loader(dsn, runs / "first")
        results["ours_same_file_again"] = run_loader(dsn, runs / "first")
        results["ours_same_bytes_new_path"] = run_loader(dsn, runs / "copy")
        results["psql_copy_seconds"] = time_psql_copy(dsn, ledger)
        to_sql_seconds = time_to_sql(dsn, ledger, arguments.to_sql_rows)
        results["to_sql_seconds_sample"] = to_sql_seconds
        results["to_sql_seconds_scaled"] = to_sql_seconds * results["rows"] / arguments.to_sql_rows
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE nector.wallet_transactions")
        single_file_export(history_3x, runs / "triple" / "export", ledger_3x.name)
        results["ours_3x"] = run_loader(dsn, runs / "triple")

    first = results["ours_first"]["seconds"]
    print(json.dumps(results, indent=2))
    print(f"ours / psql \\copy            {first / results['psql_copy_seconds']:.2f}x (target <= 1.5)")
    print(f"to_sql / ours                {results['to_sql_seconds_scaled'] / first:.1f}x (target >= 10)")
    print(f"same file again / first      {results['ours_same_file_again']['seconds'] / first:.3f}")
    print(f"same bytes, new path / first {results['ours_same_bytes_new_path']['seconds'] / first:.2f}")
    growth, growth_3x = results["ours_first"]["growth_mb"], results["ours_3x"]["growth_mb"]
    print(f"memory growth 1M / 3M rows   {growth:.0f} MB / {growth_3x:.0f} MB "
          f"(ratio {growth_3x / max(growth, 1):.2f}, targets < 150 MB and <= 1.2)")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO / "plugins")}


if __name__ == "__main__":
    main()
