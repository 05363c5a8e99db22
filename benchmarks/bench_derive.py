"""Benchmark the derive stage against one aggregate scan of the ledger, side by side in one run.

``make bench-derive`` runs it. It creates a scratch database on the Postgres server named by
``LOYALTY_BENCH_DATABASE_URL`` (default: the local server on 127.0.0.1:5432), generates customers and
ledger rows there with ``generate_series`` (``bench_derive_data.sql``), and times:

- the baseline: ``SELECT lead_id, sum(signed amount) ... GROUP BY lead_id`` over the whole ledger;
- the first full refresh (shared tables and every segment, with an empty history, so every member
  enters);
- full refreshes of the following days, each after another baseline scan, which is the nightly case.

It prints the times, their ratios to the median baseline and the time of each derive step, then
drops the scratch database. ``--explain FILE`` also writes ``EXPLAIN ANALYZE`` of the heavy queries.
Both sides use the ``derive_work_mem`` setting as ``work_mem``.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from loyalty_sync.derive.membership import member_query  # noqa: E402
from loyalty_sync.derive.profile import SHARED_TABLES, derive_parameters, refresh_profiles  # noqa: E402
from loyalty_sync.derive.segments import bind_value, load_segment_set  # noqa: E402
from loyalty_sync.settings import SyncSettings  # noqa: E402
from loyalty_sync.warehouse.migrations import apply_migrations  # noqa: E402
from loyalty_sync.warehouse.scratch import scratch_database  # noqa: E402
from loyalty_sync.warehouse.sql import load_sql  # noqa: E402

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
AS_OF = datetime(2026, 12, 1, tzinfo=ZoneInfo("Asia/Kolkata"))
DATA_SQL = Path(__file__).with_name("bench_derive_data.sql")
BASELINE = """
SELECT count(*), sum(balance)
FROM (SELECT lead_id, sum(CASE WHEN operation = 'cr' THEN amount ELSE -amount END) AS balance
      FROM nector.wallet_transactions
      GROUP BY lead_id) AS per_lead
"""

log = logging.getLogger("bench_derive")


class StepTimes(logging.Handler):
    """Collects the derive's log lines with their times, to time the steps between them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.created, record.getMessage()))

    def steps(self, started: float) -> list[tuple[str, float]]:
        """Return (log line, seconds since the previous line) for the lines logged after ``started``."""
        result, previous = [], started
        for created, message in self.records:
            if created >= started:
                result.append((message, created - previous))
                previous = created
        return result


def check_local(server: str) -> None:
    host = conninfo_to_dict(server).get("host") or ""
    if host.startswith("/") or host in ("", "localhost"):
        return
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"LOYALTY_BENCH_DATABASE_URL points at {host}; the benchmark only uses a loopback Postgres")


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def generate(conn: psycopg.Connection, customers: int, ledger_rows: int) -> None:
    with psycopg.ClientCursor(conn) as cursor:
        cursor.execute(DATA_SQL.read_text(encoding="utf-8"),
                       {"customers": customers, "ledger_rows": ledger_rows, "as_of": AS_OF})
    conn.execute("VACUUM ANALYZE")


def explain(conn: psycopg.Connection, settings: SyncSettings, as_of: datetime, out: Path) -> None:
    """Write EXPLAIN ANALYZE of the baseline and the heavy derive queries, in a rolled-back transaction."""
    segment_set = load_segment_set(settings)
    parameters = derive_parameters(settings, as_of, segment_set)
    queries = [("baseline scan", sql.SQL(BASELINE), {}, ())]
    for table in SHARED_TABLES:
        if table.name in ("ledger_total", "credit_lot", "customer_profile"):
            queries.append((table.query_file, sql.SQL(load_sql(table.query_file)), parameters, table.planner_settings))
    for name in ("coins_expiring_soon", "idle_coins", "milestone_crossed"):
        segment = segment_set.get(name)
        types = {parameter.name: parameter.type for parameter in segment.parameters}
        bound = {key: bind_value(types[key], value) for key, value in segment_set.parameters[name].items()}
        queries.append((f"segment {name}", member_query(segment), {**bound, "as_of": as_of}, ()))
    with out.open("w", encoding="utf-8") as handle, psycopg.ClientCursor(conn) as cursor:
        for title, query, params, planner_settings in queries:
            cursor.execute("BEGIN")
            cursor.execute(sql.SQL("SET LOCAL TIME ZONE {}").format(sql.Literal(settings.timezone)))
            cursor.execute(sql.SQL("SET LOCAL work_mem = {}").format(sql.Literal(settings.derive_work_mem)))
            # The same planner settings as the derive stage gives this query.
            for name, value in planner_settings:
                cursor.execute(sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(name), sql.Literal(value)))
            cursor.execute(sql.SQL("EXPLAIN (ANALYZE, COSTS OFF) ") + query, params)
            handle.write(f"-- {title}\n" + "\n".join(row[0] for row in cursor.fetchall()) + "\n\n")
            cursor.execute("ROLLBACK")
    log.info("Wrote the plans to %s", out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers to generate (default 1M)")
    parser.add_argument("--ledger-rows", type=int, default=10_000_000, help="ledger rows to generate (default 10M)")
    parser.add_argument("--days", type=int, default=3,
                        help="nightly refreshes after the first one, each next to a baseline scan (default 3)")
    parser.add_argument("--explain", type=Path, help="file to write EXPLAIN ANALYZE of the heavy queries to")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("loyalty_sync").setLevel(logging.WARNING)
    steps = StepTimes()
    for name in ("loyalty_sync.derive.rebuild", "loyalty_sync.derive.membership", "loyalty_sync.derive.profile"):
        logging.getLogger(name).addHandler(steps)
        logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger(name).propagate = False

    server = os.environ.get("LOYALTY_BENCH_DATABASE_URL") or DEFAULT_SERVER
    check_local(server)
    settings = SyncSettings()
    with scratch_database(server, "loyalty_bench_derive") as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET client_min_messages TO warning")
        apply_migrations(conn)
        log.info("Generating %d customers and %d ledger rows", arguments.customers, arguments.ledger_rows)
        log.info("Generated in %.1f s", timed(lambda: generate(conn, arguments.customers, arguments.ledger_rows)))
        conn.execute(sql.SQL("SET work_mem = {}").format(sql.Literal(settings.derive_work_mem)))

        def scan() -> float:
            seconds = timed(lambda: conn.execute(BASELINE).fetchone())
            log.info("Baseline scan: %.1f s", seconds)
            return seconds

        scans = [scan()]
        first = timed(lambda: refresh_profiles(conn, settings, AS_OF))
        log.info("First refresh (empty history): %.1f s", first)
        nightly = []
        last_started = 0.0
        for day in range(1, arguments.days + 1):
            scans.append(scan())
            last_started = time.time()
            nightly.append(timed(lambda: refresh_profiles(conn, settings, AS_OF + timedelta(days=day))))
            log.info("Refresh of day %d: %.1f s", day, nightly[-1])
        if arguments.explain:
            explain(conn, settings, AS_OF + timedelta(days=arguments.days), arguments.explain)

    baseline = statistics.median(scans)
    print()
    print(f"customers {arguments.customers:,}, ledger rows {arguments.ledger_rows:,}, work_mem {settings.derive_work_mem}")
    print(f"baseline scan       median {baseline:6.1f} s  (runs: {', '.join(f'{s:.1f}' for s in scans)})")
    print(f"first refresh              {first:6.1f} s  {first / baseline:4.1f}x")
    print(f"nightly refresh     median {statistics.median(nightly):6.1f} s  {statistics.median(nightly) / baseline:4.1f}x"
          f"  (runs: {', '.join(f'{s:.1f}' for s in nightly)})")
    print("\nsteps of the last nightly refresh (seconds until each log line):")
    for message, seconds in steps.steps(last_started):
        print(f"  {seconds:6.1f}  {message[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
