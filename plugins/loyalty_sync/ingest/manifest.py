"""Export folders and their ``manifest.json``.

An export folder contains one CSV file per entity and a manifest naming the workspace, the export, its
time zone and currency, and each file's record count and sha256. See docs/nector-export-format.md.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
SUPPORTED_CONTRACT_VERSIONS = ("1",)


class ManifestError(ValueError):
    """A manifest is missing, unreadable or incomplete; every file of its export is rejected."""


@dataclass(frozen=True)
class ManifestFile:
    rows: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    path: Path
    contract_version: str
    workspace_id: str
    export_id: str
    exported_at: datetime
    timezone: str
    currency_code: str
    coin_name: str
    coin_expiry_days: int | None
    files: dict[str, ManifestFile]

    @property
    def folder(self) -> Path:
        return self.path.parent


def read_manifest(path: Path) -> Manifest:
    """Parse and check one manifest.

    Raises:
        ManifestError: naming the manifest and the key that is missing or invalid.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ManifestError(f"{path}: cannot read manifest: {error}") from error
    if not isinstance(document, dict):
        raise ManifestError(f"{path}: manifest must be a JSON object")

    def required(key: str, kind: type) -> object:
        if key not in document or document[key] in (None, ""):
            raise ManifestError(f"{path}: manifest key {key!r} is missing")
        value = document[key]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ManifestError(f"{path}: manifest key {key!r} has invalid value {value!r}, expected {kind.__name__}")
        return value

    version = str(document.get("contract_version", "1"))
    if version not in SUPPORTED_CONTRACT_VERSIONS:
        raise ManifestError(
            f"{path}: contract_version {version!r} is not supported; supported: {', '.join(SUPPORTED_CONTRACT_VERSIONS)}"
        )

    exported_at_text = str(required("exported_at", str))
    try:
        exported_at = datetime.fromisoformat(exported_at_text.replace("Z", "+00:00"))
    except ValueError as error:
        raise ManifestError(f"{path}: exported_at {exported_at_text!r} is not an ISO 8601 timestamp") from error
    if exported_at.tzinfo is None:
        raise ManifestError(f"{path}: exported_at {exported_at_text!r} has no UTC offset")

    timezone = str(required("timezone", str))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ManifestError(f"{path}: timezone {timezone!r} is not a known IANA time zone") from error

    coin_expiry_days = document.get("coin_expiry_days")
    if coin_expiry_days is not None and (not isinstance(coin_expiry_days, int) or coin_expiry_days <= 0):
        raise ManifestError(f"{path}: coin_expiry_days {coin_expiry_days!r} must be a positive whole number or null")

    files_document = required("files", dict)
    files: dict[str, ManifestFile] = {}
    for name, entry in files_document.items():  # type: ignore[union-attr]
        if not isinstance(entry, dict) or not isinstance(entry.get("rows"), int) or not isinstance(entry.get("sha256"), str):
            raise ManifestError(f"{path}: files[{name!r}] must be an object with integer 'rows' and string 'sha256'")
        files[name] = ManifestFile(rows=entry["rows"], sha256=entry["sha256"].lower())

    return Manifest(
        path=path,
        contract_version=version,
        workspace_id=str(required("workspace_id", str)),
        export_id=str(required("export_id", str)),
        exported_at=exported_at,
        timezone=timezone,
        currency_code=str(document.get("currency_code") or "INR"),
        coin_name=str(document.get("coin_name") or "Coins"),
        coin_expiry_days=coin_expiry_days,
        files=files,
    )


def find_manifests(export_root: Path) -> list[Path]:
    """Return every manifest under ``export_root``, at any depth, in path order."""
    if not export_root.is_dir():
        raise FileNotFoundError(f"export root not found: {export_root}; set export_root in the loyalty_sync_settings Variable")
    return sorted(export_root.rglob(MANIFEST_NAME))
