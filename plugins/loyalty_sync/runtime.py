"""Airflow glue for the DAG's tasks: settings, the data interval, and the two connections.

Only this module and the DAG file touch Airflow's runtime, so the stages in ``tasks`` stay plain Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from loyalty_sync.settings import VARIABLE_KEY, SyncSettings
from loyalty_sync.tasks import interval_as_of

WAREHOUSE_CONN_ID = "loyalty_warehouse"


@dataclass(frozen=True)
class RunContext:
    settings: SyncSettings
    as_of: datetime
    run_id: str

    @classmethod
    def current(cls) -> RunContext:
        """Build the context of the running task from the Variable, the run's params and its interval."""
        from airflow.sdk import Variable, get_current_context

        context = get_current_context()
        overrides: dict[str, Any] = dict(context["params"].get("settings") or {})
        settings = SyncSettings.load(Variable.get(VARIABLE_KEY, default=None), overrides)
        as_of = interval_as_of(context.get("data_interval_end"), settings.tz)
        return cls(settings=settings, as_of=as_of, run_id=context["run_id"])


@contextmanager
def warehouse() -> Iterator[psycopg.Connection]:
    """Open the warehouse connection ``loyalty_warehouse`` in autocommit mode and close it afterwards."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=WAREHOUSE_CONN_ID).get_conn()
    try:
        conn.autocommit = True
        yield conn
    finally:
        conn.close()


def webengage_hook_factory(settings: SyncSettings):
    """Return a function giving one ``WebEngageHook`` per connection id, configured from ``settings``."""
    from loyalty_sync.webengage.hook import WebEngageHook

    hooks: dict[str, WebEngageHook] = {}

    def hook_for(conn_id: str) -> WebEngageHook:
        if conn_id not in hooks:
            hooks[conn_id] = WebEngageHook(
                conn_id, max_attempts=settings.max_attempts, timeout_seconds=settings.request_timeout_seconds
            )
        return hooks[conn_id]

    return hook_for
