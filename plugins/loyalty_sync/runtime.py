"""Airflow glue for the DAG's tasks: settings, the data interval, and the two connections.

Only this module and the DAG file touch Airflow's runtime, so the stages in ``tasks`` stay plain Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from loyalty_sync.settings import VARIABLE_KEY, SyncSettings
from loyalty_sync.tasks import interval_as_of

WAREHOUSE_CONN_ID = "loyalty_warehouse"


@dataclass(frozen=True)
class DeliveryParams:
    """The run's delivery params, described in the DAG's ``params``."""

    full_resync: bool = False
    redrive_dead_letters: bool = False
    dry_run: bool = False
    concurrency: int | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> DeliveryParams:
        """Read the params, rejecting values of the wrong type with the param's name."""
        values: dict[str, Any] = {}
        for name in ("full_resync", "redrive_dead_letters", "dry_run"):
            value = params.get(name, False)
            if not isinstance(value, bool):
                raise ValueError(f"param {name}={value!r} is invalid: expected true or false")
            values[name] = value
        concurrency = params.get("concurrency")
        if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                        or concurrency < 1):
            raise ValueError(f"param concurrency={concurrency!r} is invalid: expected a whole number of at least 1")
        return cls(**values, concurrency=concurrency)


@dataclass(frozen=True)
class RunContext:
    settings: SyncSettings
    as_of: datetime
    run_id: str
    delivery: DeliveryParams = DeliveryParams()

    @classmethod
    def current(cls) -> RunContext:
        """Build the context of the running task from the Variable, the run's params and its interval."""
        from airflow.sdk import Variable, get_current_context

        context = get_current_context()
        check_conf_keys(context["dag_run"].conf, context["dag"].params.keys())
        overrides: dict[str, Any] = dict(context["params"].get("settings") or {})
        settings = SyncSettings.load(Variable.get(VARIABLE_KEY, default=None), overrides)
        as_of = interval_as_of(context.get("data_interval_end"), settings.tz)
        return cls(settings=settings, as_of=as_of, run_id=context["run_id"],
                   delivery=DeliveryParams.from_params(context["params"]))


def check_conf_keys(conf: Mapping[str, Any] | None, params: Iterable[str]) -> None:
    """Reject a run conf with keys that are not params of the DAG.

    Airflow adds such a key to the run's params and continues, so a misspelt ``dry_run`` would run a
    real delivery.

    Raises:
        ValueError: naming the unknown keys and the DAG's params.
    """
    known = sorted(params)
    unknown = sorted(set(conf or {}) - set(known))
    if unknown:
        raise ValueError(
            f"Invalid run conf: unknown params {', '.join(unknown)} (the DAG's params are {', '.join(known)}). "
            "Correct the names and trigger the run again"
        )


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
                conn_id, max_attempts=settings.max_attempts, max_rate_limit_waits=settings.max_rate_limit_waits,
                timeout_seconds=settings.request_timeout_seconds,
            )
        return hooks[conn_id]

    return hook_for
