"""Archived Nector webhook deliveries (JSON lines): mapping, deduplication, unknown topics, bad lines."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from export_builder import WORKSPACE, write_export
from loyalty_sync.ingest.loader import load_exports
from loyalty_sync.ingest.webhooks import load_topic_mappings

LEAD = "0b8e6f52-3c1a-4d7e-9f20-6a1b2c3d4e01"
TX = "7d41c0aa-52e9-4b1f-8c3e-1f0e9a6b2c10"


def delivery(delivery_id: str, topic: str, payload: dict, received_at: object = "2026-11-30T10:00:00Z") -> str:
    return json.dumps({"delivery_id": delivery_id, "topic": topic, "received_at": received_at, "payload": payload})


LEAD_CREATED = delivery("d-1", "lead_create", {
    "_id": LEAD, "user_customer_id": "shopify-7012345678901", "user_name": "Aarav Kapoor",
    "user_email": " Aarav@Example.com", "user_mobile": "9876543210", "user_tier": "Silver",
    "created_at": "2026-11-30T09:00:00Z", "updated_at": "2026-11-30T09:00:00Z",
})
COINS_REWARDED = delivery("d-2", "walletreward_create", {
    "_id": TX, "lead_id": LEAD, "operation": "cr", "type": "reward", "status": "success", "amount": 120,
    "title": "Order reward", "created_at": "2026-11-30T09:05:00Z", "updated_at": "2026-11-30T09:05:00Z",
})
TIER_CHANGED = delivery("d-3", "viptier_create", {"lead_id": LEAD, "user_tier": "Gold", "previous_tier": "Silver"},
                        received_at=1764496800)
ORDER_CREATED = delivery("d-4", "order_create", {"_id": "o-1", "total": 1299})


def write_webhooks(folder: Path, lines: list[str], exported_at: str = "2026-11-30T20:30:00Z") -> None:
    text = "\n".join(lines) + "\n"
    write_export(folder, {}, exported_at=exported_at)
    (folder / "webhook_events.jsonl").write_text(text, encoding="utf-8")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["webhook_events.jsonl"] = {
        "rows": len([line for line in lines if line.strip()]),
        "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_topics_map_onto_staging_tables(warehouse, tmp_path):
    write_webhooks(tmp_path / "a", [LEAD_CREATED, COINS_REWARDED, TIER_CHANGED])

    summary = load_exports(warehouse, tmp_path, "run-1")

    assert [result.status for result in summary.files] == ["loaded"]
    assert warehouse.execute("SELECT email, platform_customer_id FROM nector.customers").fetchone() == (
        "aarav@example.com", "7012345678901")
    assert warehouse.execute("SELECT amount FROM nector.wallet_transactions").fetchone()[0] == 120
    change = warehouse.execute("SELECT event_id, new_tier, previous_tier, changed_at FROM nector.tier_changes").fetchone()
    assert change[0] == "d-3"
    assert change[1] == "Gold"
    assert change[2] == "Silver"
    assert change[3].timestamp() == 1764496800


def test_repeated_delivery_loads_once(warehouse, tmp_path):
    write_webhooks(tmp_path / "a", [COINS_REWARDED, COINS_REWARDED, LEAD_CREATED], exported_at="2026-11-29T20:30:00Z")
    write_webhooks(tmp_path / "b", [COINS_REWARDED])

    summary = load_exports(warehouse, tmp_path, "run-1")

    assert [result.status for result in summary.files] == ["loaded", "loaded"]
    assert warehouse.execute("SELECT count(*) FROM sync.webhook_delivery").fetchone()[0] == 2
    assert summary.files[1].rows_changed == 0


def test_unknown_topic_kept_raw(warehouse, tmp_path):
    write_webhooks(tmp_path / "a", [LEAD_CREATED, ORDER_CREATED])

    summary = load_exports(warehouse, tmp_path, "run-1")

    assert summary.files[0].status == "loaded"
    stored = warehouse.execute("SELECT status, payload ->> 'total' FROM sync.webhook_delivery WHERE topic = 'order_create'")
    assert stored.fetchone() == ("unknown_topic", "1299")


def test_malformed_lines_set_aside(warehouse, tmp_path):
    lines = [LEAD_CREATED, "{not json", json.dumps({"topic": "lead_create", "payload": {}}), COINS_REWARDED]
    write_webhooks(tmp_path / "a", lines)

    load_exports(warehouse, tmp_path, "run-1", max_rejected_share=1.0)

    rejected = warehouse.execute("SELECT line_number, reason FROM sync.rejected_row ORDER BY line_number").fetchall()
    assert rejected == [(2, "invalid JSON"), (3, "missing delivery_id")]
    assert warehouse.execute("SELECT count(*) FROM nector.wallet_transactions").fetchone()[0] == 1


def test_payload_failing_checks_rejected(warehouse, tmp_path):
    bad = delivery("d-9", "walletreward_create", {
        "_id": "7d41c0aa-52e9-4b1f-8c3e-1f0e9a6b2c19", "lead_id": LEAD, "operation": "cr", "type": "reward",
        "amount": -5, "created_at": "2026-11-30T09:05:00Z",
    })
    write_webhooks(tmp_path / "a", [COINS_REWARDED, bad])

    load_exports(warehouse, tmp_path, "run-1", max_rejected_share=1.0)

    rejected = warehouse.execute("SELECT line_number, column_name, value, reason FROM sync.rejected_row").fetchall()
    assert rejected == [(2, "amount", "-5", "below the minimum 0")]


def test_mostly_bad_archive_quarantined(warehouse, tmp_path):
    write_webhooks(tmp_path / "a", [LEAD_CREATED, "{bad", "{worse"])

    summary = load_exports(warehouse, tmp_path, "run-1")

    assert summary.files[0].status == "quarantined"
    assert warehouse.execute("SELECT count(*) FROM nector.customers").fetchone()[0] == 0
    assert warehouse.execute("SELECT count(*) FROM sync.webhook_delivery").fetchone()[0] == 0


def test_mapping_file_is_valid():
    mappings = load_topic_mappings()

    assert set(mappings) >= {"lead_create", "lead_update", "walletreward_create", "wallettrasaction_update",
                             "coupon_create", "coupon_update", "review_create", "review_update", "viptier_create"}
    assert all(mapping.entity.name for mapping in mappings.values())


def test_workspace_taken_from_manifest(warehouse, tmp_path):
    write_webhooks(tmp_path / "a", [LEAD_CREATED])

    load_exports(warehouse, tmp_path, "run-1")

    assert warehouse.execute("SELECT workspace_id FROM nector.customers").fetchone()[0] == WORKSPACE
