"""Structure of docker-compose.yaml, checked without Docker.

Values are read the way Compose reads them with no .env file: each ``${VAR:-default}`` or
``${VAR-default}`` becomes its default and ``$$`` becomes ``$``. The secret checks read the file
before that substitution.
"""

from __future__ import annotations

import json
import re
import shlex
from fnmatch import fnmatch
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from loyalty_sync.settings import SyncSettings
from loyalty_sync.webengage.standin import _build_parser, _read_accounts

REPO_ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yaml"
ENV_EXAMPLE_FILE = REPO_ROOT / ".env.example"

AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-init",
)
METADATA_DB_SERVICE = "postgres"
WAREHOUSE_SERVICE = "warehouse"
STANDIN_SERVICE = "webengage-standin"
EXPECTED_SERVICES = {*AIRFLOW_SERVICES, METADATA_DB_SERVICE, WAREHOUSE_SERVICE, STANDIN_SERVICE}
# LocalExecutor runs tasks in the scheduler container, so that is where the connections must be.
TASK_SERVICE = "airflow-scheduler"
PROJECT_MOUNTS = {
    "./dags": "/opt/airflow/dags",
    "./plugins": "/opt/airflow/plugins",
    "./include": "/opt/airflow/include",
}

# Defaults that are plainly for a local setup. A new secret default must be added here on purpose.
LOCAL_ONLY_SECRETS = {
    "",
    "airflow",
    "loyalty",
    "standin-key",
    "local-only-jwt-secret-for-docker-compose-set-a-random-one-in-dot-env",
    "local-only-api-secret-key-for-docker-compose-set-a-random-one-in-dot-env",
}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|TOKEN", re.IGNORECASE)
SUBSTITUTION = re.compile(r"\$\$|\$\{(?P<name>\w+)(?:(?P<operator>:?-)(?P<default>[^}]*))?\}")
# A UUID, or 24 or more letters and digits that mix both. Both are common shapes of API keys.
KEY_LIKE = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
    r"|\b(?=[A-Za-z0-9]*\d)(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{24,}\b",
    re.IGNORECASE,
)


def substitute_defaults(value: Any) -> Any:
    """Replace every Compose substitution in ``value`` (recursively) with its default."""
    if isinstance(value, dict):
        return {key: substitute_defaults(item) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute_defaults(item) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return match.group("default") or ""

    return SUBSTITUTION.sub(replace, value)


def compose_substitutions() -> list[re.Match[str]]:
    """Return every substitution in the file's keys and values, leaving out comments and ``$$``."""
    matches = []
    pending = [yaml.safe_load(COMPOSE_FILE.read_text())]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            pending.extend(node.keys())
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, str):
            matches.extend(match for match in SUBSTITUTION.finditer(node) if match.group("name"))
    return matches


def command_words(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(word) for word in command]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(entry.split("=", 1) for entry in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


@pytest.fixture(scope="module")
def raw_services() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


@pytest.fixture(scope="module")
def services(raw_services) -> dict[str, dict[str, Any]]:
    return substitute_defaults(raw_services)


@pytest.fixture(scope="module")
def task_env(services) -> dict[str, str]:
    return environment(services[TASK_SERVICE])


@pytest.fixture(scope="module")
def warehouse_conn(task_env) -> dict[str, Any]:
    return json.loads(task_env["AIRFLOW_CONN_LOYALTY_WAREHOUSE"])


@pytest.fixture(scope="module")
def webengage_conn(task_env) -> dict[str, Any]:
    return json.loads(task_env["AIRFLOW_CONN_WEBENGAGE"])


@pytest.fixture(scope="module")
def standin_arguments(services):
    words = command_words(services[STANDIN_SERVICE])
    return _build_parser().parse_args(words[3:])


# -- services and images ------------------------------------------------------------------------


def test_expected_services_exist(services):
    assert EXPECTED_SERVICES - set(services) == set()


@pytest.mark.parametrize("name", [*AIRFLOW_SERVICES, STANDIN_SERVICE])
def test_service_uses_airflow_3_image(services, name):
    assert fnmatch(services[name].get("image", ""), "apache/airflow:3.*")


@pytest.mark.parametrize("name", [METADATA_DB_SERVICE, WAREHOUSE_SERVICE])
def test_database_uses_postgres_16(services, name):
    assert services[name].get("image") == "postgres:16"


def test_databases_use_separate_volumes(services):
    metadata_volumes = set(services[METADATA_DB_SERVICE].get("volumes", []))
    warehouse_volumes = set(services[WAREHOUSE_SERVICE].get("volumes", []))

    assert metadata_volumes & warehouse_volumes == set()


def test_apiserver_runs_api_server(services):
    assert command_words(services["airflow-apiserver"]) == ["api-server"]


def test_dag_processor_runs_dag_processor(services):
    assert command_words(services["airflow-dag-processor"]) == ["dag-processor"]


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_project_folders_mounted(services, name):
    targets = {}
    for volume in services[name].get("volumes", []):
        source, target = volume.split(":")[:2]
        targets[source] = target

    assert {source: targets.get(source) for source in PROJECT_MOUNTS} == PROJECT_MOUNTS


# -- Airflow settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AIRFLOW__CORE__EXECUTOR", "LocalExecutor"),
        ("AIRFLOW__CORE__LOAD_EXAMPLES", "false"),
        ("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "true"),
        ("AIRFLOW__CORE__EXECUTION_API_SERVER_URL", "http://airflow-apiserver:8080/execution/"),
        # The scheduler's healthcheck calls the health check server this turns on.
        ("AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK", "true"),
    ],
)
def test_airflow_setting(task_env, name, expected):
    assert task_env.get(name) == expected


def test_metadata_db_credentials_match(services, task_env):
    database_url = urlsplit(task_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    postgres_env = environment(services[METADATA_DB_SERVICE])

    assert database_url.hostname == METADATA_DB_SERVICE
    assert database_url.username == postgres_env["POSTGRES_USER"]
    assert database_url.password == postgres_env["POSTGRES_PASSWORD"]
    assert database_url.path == "/" + postgres_env["POSTGRES_DB"]


def test_settings_variable_is_valid(task_env):
    settings = SyncSettings.load(task_env["AIRFLOW_VAR_LOYALTY_SYNC_SETTINGS"])

    assert settings.export_root.startswith(PROJECT_MOUNTS["./include"] + "/")


# -- connections --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["AIRFLOW_CONN_LOYALTY_WAREHOUSE", "AIRFLOW_CONN_WEBENGAGE"])
def test_connection_env_is_set(task_env, name):
    assert task_env.get(name)


def test_warehouse_connection_is_postgres(warehouse_conn):
    assert warehouse_conn["conn_type"] == "postgres"


def test_warehouse_connection_targets_warehouse(warehouse_conn):
    assert warehouse_conn["host"] == WAREHOUSE_SERVICE
    assert warehouse_conn["port"] == 5432


def test_warehouse_credentials_match(services, warehouse_conn):
    warehouse_env = environment(services[WAREHOUSE_SERVICE])

    assert warehouse_conn["login"] == warehouse_env["POSTGRES_USER"]
    assert warehouse_conn["password"] == warehouse_env["POSTGRES_PASSWORD"]
    assert warehouse_conn["schema"] == warehouse_env["POSTGRES_DB"]


def test_webengage_connection_is_http(webengage_conn):
    assert webengage_conn["conn_type"] == "http"


def test_webengage_connection_targets_standin(webengage_conn, standin_arguments):
    assert webengage_conn["host"] == f"http://{STANDIN_SERVICE}:{standin_arguments.port}"


def test_webengage_data_center_is_known(webengage_conn):
    from loyalty_sync.webengage.hook import DATA_CENTER_HOSTS

    assert webengage_conn["extra"]["data_center"] in DATA_CENTER_HOSTS


def test_webengage_login_is_standin_account(services, webengage_conn):
    accounts = _read_accounts([], environment(services[STANDIN_SERVICE]))

    assert accounts.get(webengage_conn["login"]) == webengage_conn["password"]


# -- WebEngage stand-in -------------------------------------------------------------------------


def test_standin_runs_standin_module(services):
    assert command_words(services[STANDIN_SERVICE])[:3] == ["python", "-m", "loyalty_sync.webengage.standin"]


def test_standin_listens_on_all_interfaces(standin_arguments):
    assert standin_arguments.host == "0.0.0.0"
    assert standin_arguments.allow_non_loopback is True


def test_standin_finds_package(services):
    mounts = [volume.split(":")[:2] for volume in services[STANDIN_SERVICE].get("volumes", [])]

    assert ["./plugins", "/opt/airflow/plugins"] in mounts
    assert environment(services[STANDIN_SERVICE]).get("PYTHONPATH") == "/opt/airflow/plugins"


# -- dependencies -------------------------------------------------------------------------------


def test_dependencies_name_existing_services(services):
    unknown = {
        (name, dependency)
        for name, service in services.items()
        for dependency in service.get("depends_on", {})
        if dependency not in services
    }

    assert unknown == set()


def test_healthy_dependencies_have_healthchecks(services):
    waited_for = {
        dependency
        for service in services.values()
        for dependency, options in dict(service.get("depends_on", {})).items()
        if (options or {}).get("condition") == "service_healthy"
    }
    without_healthcheck = {name for name in waited_for if "healthcheck" not in services.get(name, {})}

    assert without_healthcheck == set()


@pytest.mark.parametrize("dependency", [WAREHOUSE_SERVICE, STANDIN_SERVICE, "airflow-apiserver"])
def test_scheduler_waits_for(services, dependency):
    depends_on = services[TASK_SERVICE].get("depends_on", {})

    assert depends_on.get(dependency, {}).get("condition") == "service_healthy"


# -- secrets ------------------------------------------------------------------------------------


def test_substitutions_have_defaults():
    # Without a default, Compose substitutes an empty string when the variable is unset.
    without_default = [
        match.group(0)
        for match in compose_substitutions()
        if match.group("operator") is None
    ]

    assert without_default == []


def test_env_example_lists_variables():
    compose_variables = {match.group("name") for match in compose_substitutions()}
    example_variables = {
        line.split("=", 1)[0]
        for line in ENV_EXAMPLE_FILE.read_text().splitlines()
        if line and not line.startswith("#")
    }

    assert compose_variables == example_variables


def test_secret_defaults_are_local_only():
    offending = []
    for match in compose_substitutions():
        name = match.group("name")
        if SECRET_NAME.search(name) and (match.group("default") or "") not in LOCAL_ONLY_SECRETS:
            offending.append(match.group(0))

    assert offending == []


def test_secret_env_values_are_local_only(raw_services):
    offending = []
    for service_name, service in raw_services.items():
        for name, value in environment(service).items():
            if not SECRET_NAME.search(name):
                continue
            match = SUBSTITUTION.fullmatch(value)
            default = match.group("default") if match else value
            if (default or "") not in LOCAL_ONLY_SECRETS:
                offending.append((service_name, name))

    assert offending == []


@pytest.mark.parametrize("name", ["AIRFLOW_CONN_LOYALTY_WAREHOUSE", "AIRFLOW_CONN_WEBENGAGE"])
def test_connection_password_is_substituted(raw_services, name):
    # JSON parses before substitution, because every ${...} sits inside a JSON string.
    password = json.loads(environment(raw_services[TASK_SERVICE])[name])["password"]
    match = SUBSTITUTION.fullmatch(password)

    assert match is not None
    assert match.group("default") in LOCAL_ONLY_SECRETS


def test_standin_key_is_local_only(raw_services):
    accounts = _read_accounts([], environment(raw_services[STANDIN_SERVICE]))

    assert set(accounts.values()) <= LOCAL_ONLY_SECRETS


@pytest.mark.parametrize("path", [COMPOSE_FILE, ENV_EXAMPLE_FILE], ids=lambda path: path.name)
def test_no_key_like_literals(path):
    assert KEY_LIKE.findall(path.read_text()) == []
