"""Build small export folders (CSV files plus manifest.json) for tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from loyalty_sync.contract import ENTITIES_BY_FILE

WORKSPACE = "shopify-test-brand"


def write_export(
    folder: Path,
    files: dict[str, str],
    *,
    exported_at: str = "2026-11-29T20:30:00Z",
    workspace_id: str = WORKSPACE,
    timezone: str = "Asia/Kolkata",
    manifest_overrides: dict[str, dict] | None = None,
) -> Path:
    """Write ``files`` (name -> CSV text) and a manifest whose counts and checksums match them."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest_files = {}
    for name, text in files.items():
        data = text.encode("utf-8")
        (folder / name).write_bytes(data)
        records = max(0, len([line for line in text.splitlines() if line.strip()]) - 1)
        manifest_files[name] = {"rows": records, "sha256": hashlib.sha256(data).hexdigest()}
        manifest_files[name].update((manifest_overrides or {}).get(name, {}))
    manifest = {
        "contract_version": "1",
        "workspace_id": workspace_id,
        "export_id": f"{workspace_id}-{folder.name}",
        "exported_at": exported_at,
        "timezone": timezone,
        "currency_code": "INR",
        "coin_name": "Coins",
        "coin_expiry_days": 365,
        "files": manifest_files,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return folder


def csv_text(file_name: str, rows: list[dict[str, object]]) -> str:
    """CSV text with the contract's header for ``file_name`` and ``rows`` (missing keys are empty)."""
    columns = [column.name for column in ENTITIES_BY_FILE[file_name].columns]
    lines = [",".join(columns)]
    for row in rows:
        lines.append(",".join(_cell(row.get(column)) for column in columns))
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    if any(character in text for character in ',"\n'):
        return '"' + text.replace('"', '""') + '"'
    return text
