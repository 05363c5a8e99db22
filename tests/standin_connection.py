"""The stand-in account the tests use, and the Airflow connection JSON that points at it."""

from __future__ import annotations

import json

STANDIN_LICENSE_CODE = "~demo1234"
STANDIN_API_KEY = "test-api-key-not-a-secret"


def webengage_connection_json(base_url: str, **extra: object) -> str:
    return json.dumps({
        "conn_type": "http",
        "host": base_url,
        "login": STANDIN_LICENSE_CODE,
        "password": STANDIN_API_KEY,
        "extra": json.dumps({"data_center": "global", **extra}),
    })
