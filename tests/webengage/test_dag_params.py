"""The deliver stage's DAG params, through ``dag.test()`` on the bundled sample and as parsed values."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from delivery_harness import DELIVERY_TABLES, table_rows
from loyalty_sync.paths import SAMPLE_EXPORTS_DIR
from loyalty_sync.runtime import DeliveryParams, check_conf_keys

RUN_DATE = datetime(2026, 12, 1, 2, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def sample_run(airflow_db, warehouse, warehouse_conn_env, webengage_conn_env, monkeypatch, tmp_path):
    settings = {"export_root": str(SAMPLE_EXPORTS_DIR), "test_account_email_domains": ["qa.nector-test.in"],
                "dry_run_dir": str(tmp_path)}
    monkeypatch.setenv("AIRFLOW_VAR_LOYALTY_SYNC_SETTINGS", json.dumps(settings))
    return webengage_conn_env


@pytest.fixture
def dag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags")).dags["nector_webengage_sync"]


def assert_nothing_delivered(standin, warehouse) -> None:
    """Check that no call reached the stand-in and that every delivery table is still empty."""
    assert standin.call_counts() == {}
    for table in DELIVERY_TABLES:
        assert table_rows(warehouse, table) == [], f"{table} changed"


def test_dry_run_param_sends_nothing(sample_run, dag, warehouse, tmp_path):
    standin = sample_run

    run = dag.test(logical_date=RUN_DATE, run_conf={"dry_run": True})

    assert run.state == "success"
    assert_nothing_delivered(standin, warehouse)
    [written] = list(tmp_path.glob("webengage-dry-run-*.jsonl"))
    lines = [json.loads(line) for line in written.read_text(encoding="utf-8").splitlines()]
    assert {line["resource"] for line in lines} == {"bulk-users", "bulk-events"}
    assert all(1 <= len(line["item_keys"]) <= 25 for line in lines)


def test_resync_and_concurrency_params(sample_run, dag, warehouse):
    standin = sample_run
    dag.test(logical_date=RUN_DATE)
    users_first = len(standin.accepted_users())
    events_first = len(standin.accepted_events())

    run = dag.test(logical_date=RUN_DATE, run_conf={"full_resync": True, "concurrency": 2})

    assert run.state == "success"
    assert len(standin.accepted_users()) == 2 * users_first
    assert len(standin.accepted_events()) == events_first
    senders = warehouse.execute(
        "SELECT count(DISTINCT sender) FROM sync.webengage_batch WHERE run_id = %s", (run.run_id,)
    ).fetchone()[0]
    assert senders == 2
    assert standin.violations() == []


def test_misspelt_param_fails_run(sample_run, dag, warehouse):
    standin = sample_run

    run = dag.test(logical_date=RUN_DATE, run_conf={"dry_rn": True})

    assert run.state == "failed"
    assert_nothing_delivered(standin, warehouse)


def test_unknown_conf_key_named():
    with pytest.raises(ValueError, match=r"unknown params dry_rn \(the DAG's params are dry_run, settings\)\."):
        check_conf_keys({"dry_rn": True, "settings": {}}, ["settings", "dry_run"])


def test_known_conf_keys_accepted():
    check_conf_keys({"dry_run": True}, ["settings", "dry_run"])
    check_conf_keys(None, ["settings"])


def test_params_default_to_plain_run():
    assert DeliveryParams.from_params({"settings": {}}) == DeliveryParams()


@pytest.mark.parametrize(("params", "message"), [
    ({"dry_run": "yes"}, "param dry_run='yes' is invalid"),
    ({"full_resync": 1}, "param full_resync=1 is invalid"),
    ({"concurrency": 0}, "param concurrency=0 is invalid"),
    ({"concurrency": True}, "param concurrency=True is invalid"),
])
def test_invalid_params_rejected(params, message):
    with pytest.raises(ValueError, match=message):
        DeliveryParams.from_params(params)
