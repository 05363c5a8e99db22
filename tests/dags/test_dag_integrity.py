"""The DAG file as Airflow loads it: no import errors, the expected shape and schedule."""

from __future__ import annotations

from pathlib import Path

import pendulum
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO_ROOT / "dags"))


@pytest.fixture(scope="module")
def dag(dagbag):
    return dagbag.dags["nector_webengage_sync"]


def test_dag_folder_has_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_plugins_load_without_errors():
    from airflow import plugins_manager

    assert plugins_manager.get_import_errors() == {}


def test_plugin_loader_skips_package_files():
    # Airflow imports every .py file it finds under plugins/ as a top-level module named after the
    # file; plugins/.airflowignore keeps it out of the package.
    from airflow._shared.module_loading import find_path_from_directory

    plugins = REPO_ROOT / "plugins"
    files = [Path(path) for path in find_path_from_directory(str(plugins), ".airflowignore", "glob")]

    assert [path for path in files if path.suffix == ".py"] == []


def test_dag_schedule_covers_previous_day(dag):
    from airflow.serialization.encoders import coerce_to_core_timetable

    interval = coerce_to_core_timetable(dag.timetable).infer_manual_data_interval(
        run_after=pendulum.datetime(2026, 12, 1, 2, 0, tz="Asia/Kolkata")
    )

    assert interval.start == pendulum.datetime(2026, 11, 30, 2, 0, tz="Asia/Kolkata")
    assert interval.end == pendulum.datetime(2026, 12, 1, 2, 0, tz="Asia/Kolkata")


def test_one_run_at_a_time(dag):
    assert dag.max_active_runs == 1
    assert dag.catchup is False


def test_task_groups_in_order(dag):
    order = [task.task_id for task in dag.topological_sort()]

    assert order == [
        "ingest.migrate_warehouse",
        "ingest.load_exports",
        "derive.check_segments",
        "derive.build_profiles",
        "deliver.queue_items",
        "deliver.send_to_webengage",
        "report.summarize_run",
    ]


def test_network_task_retries(dag):
    assert dag.get_task("deliver.send_to_webengage").retries == 3
