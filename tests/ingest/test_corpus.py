"""Every file of the bad-export corpus (tests/ingest/corpus) loads with its expected outcome.

Each case is one file named ``<case>.<entity file name>``. It is loaded as that entity in an export
whose manifest matches the file's bytes, with the default quarantine threshold of 5%.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from export_builder import WORKSPACE
from loyalty_sync.ingest.loader import load_exports

CORPUS = Path(__file__).resolve().parent / "corpus"
GOOD = 30


@dataclass(frozen=True)
class Expected:
    records: int  # data records the manifest declares
    status: str  # loaded, rejected or quarantined
    loaded: int = 0  # staging rows after the load
    rejected: tuple[tuple[int, str, str], ...] = ()  # (line, column, reason fragment) of each rejected row
    reason: str = ""  # fragment of a whole-file reason
    checks: dict[str, object] = field(default_factory=dict)  # SQL -> expected single value


CASES: dict[str, Expected] = {
    "bom.customers.csv": Expected(GOOD, "loaded", GOOD),
    "crlf.customers.csv": Expected(GOOD, "loaded", GOOD,
                                   checks={"SELECT max(length(updated_at::text)) > 0 FROM nector.customers": True}),
    "quoted_line_break.customers.csv": Expected(
        GOOD + 2, "loaded", GOOD + 1, ((GOOD + 4, "created_at", "invalid timestamp"),),
        checks={"SELECT name FROM nector.customers WHERE customer_id = 'shopify-7040'": "Asha\nMehta, Jr."}),
    "latin1.customers.csv": Expected(GOOD + 1, "rejected", reason="invalid byte sequence for encoding"),
    "missing_required_column.customers.csv": Expected(1, "rejected", reason="required columns missing"),
    "duplicate_ids.customers.csv": Expected(2, "loaded", 1, checks={"SELECT name FROM nector.customers": "Newest"}),
    "unparseable_date.customers.csv": Expected(GOOD + 1, "loaded", GOOD, ((GOOD + 2, "created_at", "invalid timestamp"),)),
    "feb_30.customers.csv": Expected(GOOD + 1, "loaded", GOOD, ((GOOD + 2, "created_at", "invalid timestamp"),)),
    "negative_amount.wallet_transactions.csv": Expected(GOOD + 1, "loaded", GOOD, ((GOOD + 2, "amount", "below the minimum"),)),
    "unknown_operation.wallet_transactions.csv": Expected(GOOD + 1, "loaded", GOOD,
                                                         ((GOOD + 2, "operation", "not one of: cr, dr"),)),
    "invalid_uuid.wallet_transactions.csv": Expected(GOOD + 1, "loaded", GOOD,
                                                     ((GOOD + 2, "wallettransaction_id", "invalid UUID"),)),
    "empty.customers.csv": Expected(0, "rejected", reason="is empty"),
    "header_only.customers.csv": Expected(0, "loaded", 0),
    "truncated.customers.csv.gz": Expected(GOOD, "rejected", reason="not a complete gzip file"),
    "complete.customers.csv.gz": Expected(GOOD, "loaded", GOOD),
    "one_megabyte_field.customers.csv": Expected(
        GOOD + 1, "loaded", GOOD + 1, checks={"SELECT max(length(name)) FROM nector.customers": 1 << 20}),
    "sql_in_values.customers.csv": Expected(
        GOOD + 1, "loaded", GOOD + 1,
        checks={"SELECT count(*) FROM nector.customers WHERE name LIKE 'Robert%DROP TABLE%'": 1}),
    "sql_in_header.customers.csv": Expected(
        GOOD, "loaded", GOOD,
        checks={"SELECT DISTINCT _extra ->> 'note\"); DROP TABLE nector.customers;--' FROM nector.customers": "hello"}),
    "header_case_and_spaces.customers.csv": Expected(GOOD, "loaded", GOOD),
    "padded_values.customers.csv": Expected(
        GOOD + 1, "loaded", GOOD + 1,
        checks={"SELECT name || '|' || email FROM nector.customers WHERE customer_id = 'shopify-7090'": "Padded|p@example.com"}),
    "unterminated_quote.customers.csv": Expected(GOOD + 1, "rejected", reason="is not valid CSV"),
    "extra_field_in_row.customers.csv": Expected(GOOD + 1, "rejected", reason="extra data after last expected column"),
    "duplicate_header.customers.csv": Expected(GOOD, "rejected", reason="names column 'name' twice"),
    "empty_header_field.customers.csv": Expected(GOOD, "rejected", reason="header field 8 is empty"),
    "mostly_bad.customers.csv": Expected(15, "quarantined", 0, reason="5 of 15 records"),
    "no_offset_timestamps.customers.csv": Expected(
        1, "loaded", 1,
        checks={"SELECT to_char(created_at AT TIME ZONE 'UTC', 'HH24:MI') FROM nector.customers": "04:12"}),
    "mixed_offsets.customers.csv": Expected(
        3, "loaded", 3,
        checks={"SELECT count(DISTINCT date_trunc('second', created_at)) FROM nector.customers": 1}),
    "nul_byte.customers.csv": Expected(GOOD + 1, "rejected", reason="0x00"),
}


def test_corpus_has_every_case():
    on_disk = sorted(path.name for path in CORPUS.glob("*.csv*"))

    assert on_disk == sorted(CASES)
    assert len(on_disk) >= 25


@pytest.mark.parametrize("case", sorted(CASES))
def test_corpus_file_outcome(warehouse, tmp_path, case):
    expected = CASES[case]
    entity_file = case.split(".", 1)[1]
    folder = tmp_path / "2026-11-29"
    folder.mkdir()
    shutil.copy(CORPUS / case, folder / entity_file)
    data = (folder / entity_file).read_bytes()
    (folder / "manifest.json").write_text(json.dumps({
        "workspace_id": WORKSPACE, "export_id": case, "exported_at": "2026-11-29T20:30:00Z",
        "timezone": "Asia/Kolkata", "files": {entity_file: {"rows": expected.records,
                                                             "sha256": hashlib.sha256(data).hexdigest()}},
    }))
    table = "nector." + entity_file.split(".")[0]

    result = load_exports(warehouse, tmp_path, "run-1").files[0]

    assert result.status == expected.status, result.reason
    assert expected.reason in (result.reason or "")
    assert warehouse.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == expected.loaded
    rejected = warehouse.execute(
        "SELECT line_number, column_name, reason FROM sync.rejected_row ORDER BY line_number").fetchall()
    if expected.status == "loaded":
        assert len(rejected) == len(expected.rejected)
        for (line, column, reason), (expected_line, expected_column, fragment) in zip(rejected, expected.rejected):
            assert line == expected_line
            assert column == expected_column
            assert fragment in reason
    for query, value in expected.checks.items():
        assert warehouse.execute(query).fetchone()[0] == value, query
