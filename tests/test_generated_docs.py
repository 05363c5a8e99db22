"""Docs rendered from code must match the committed files, so they cannot drift (fix: `make docs`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loyalty_sync import contract, settings
from loyalty_sync.webengage import catalog

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize(("file_name", "render"), [
    ("webengage-catalog.md", catalog.render_markdown),
    ("nector-export-format.md", contract.render_markdown),
    ("settings.md", settings.render_markdown),
])
def test_generated_doc_is_current(file_name, render):
    assert (DOCS / file_name).read_text(encoding="utf-8") == render(), f"docs/{file_name} is stale: run make docs"


def test_catalog_fits_webengage_rules():
    assert catalog.catalog_problems() == []


def test_catalog_rules_catch_reserved_prefix():
    assert catalog.catalog_problems(event_name_prefix="we_") != []
