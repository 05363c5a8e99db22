"""Exports read from S3 through Airflow's ObjectStoragePath, against a moto S3 server on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from export_builder import csv_text, write_export
from loyalty_sync.ingest.loader import load_exports
from loyalty_sync.settings import SyncSettings
from loyalty_sync.tasks import open_export_root

BUCKET = "nector-exports"
LEAD = "0b8e6f52-3c1a-4d7e-9f20-6a1b2c3d4e01"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """One moto S3 server for the module: Airflow caches a filesystem per connection id, so the
    endpoint behind ``nector_s3`` must not change between tests."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("AIRFLOW_CONN_NECTOR_S3", json.dumps({
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }))
        import boto3

        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket=BUCKET)
        try:
            yield endpoint
        finally:
            server.stop()


def upload_folder(endpoint: str, folder, prefix: str) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"{prefix}/{path.relative_to(folder).as_posix()}")


def customer_row(**values: object) -> dict[str, object]:
    row: dict[str, object] = {"workspace_id": "shopify-test-brand", "lead_id": LEAD, "customer_id": "shopify-1",
                              "name": "Aarav", "created_at": "2026-01-05T04:12:00Z", "updated_at": "2026-01-05T04:12:00Z"}
    row.update(values)
    return row


def test_s3_export_loads_once(warehouse, tmp_path, s3_endpoint):
    write_export(tmp_path / "local" / "2026-11-29", {"customers.csv": csv_text("customers.csv", [customer_row()])})
    upload_folder(s3_endpoint, tmp_path / "local", "loads-once")
    settings = SyncSettings.from_mapping({"export_root": f"s3://{BUCKET}/loads-once", "export_conn_id": "nector_s3"})
    root = open_export_root(settings)

    first = load_exports(warehouse, root, "run-1")
    second = load_exports(warehouse, root, "run-2")

    assert [result.status for result in first.files] == ["loaded"]
    assert first.files[0].path == "2026-11-29/customers.csv"
    assert [result.status for result in second.files] == ["skipped"]
    assert warehouse.execute("SELECT name FROM nector.customers").fetchone()[0] == "Aarav"


def test_s3_checksum_mismatch_rejected(warehouse, tmp_path, s3_endpoint):
    write_export(tmp_path / "local" / "2026-11-29", {"customers.csv": csv_text("customers.csv", [customer_row()])},
                 manifest_overrides={"customers.csv": {"sha256": "f" * 64}})
    upload_folder(s3_endpoint, tmp_path / "local", "mismatch")
    settings = SyncSettings.from_mapping({"export_root": f"s3://{BUCKET}/mismatch", "export_conn_id": "nector_s3"})

    summary = load_exports(warehouse, open_export_root(settings), "run-1")

    assert summary.files[0].status == "rejected"
    assert "sha256" in summary.files[0].reason
