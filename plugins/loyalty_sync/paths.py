"""Locations of the project's files, found from this package so they work from any working directory."""

from __future__ import annotations

from pathlib import Path

# plugins/loyalty_sync/paths.py -> the repository (or, in the Airflow image, /opt/airflow).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = PROJECT_ROOT / "include" / "sql"
SAMPLE_EXPORTS_DIR = PROJECT_ROOT / "include" / "sample_exports"


def resolve(path: str | Path) -> Path:
    """Return ``path`` as is when absolute, else relative to the project root."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else PROJECT_ROOT / candidate
