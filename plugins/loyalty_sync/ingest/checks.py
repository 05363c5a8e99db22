"""SQL expressions that clean, type and check one entity's columns, built from the export contract.

The statements themselves live in ``include/sql/ingest``; this module fills in their per-column parts.

There are two sets of casts. The strict set guards every cast with a pattern, so one bad value never
aborts the statement: it only marks its record as failing a check. The fast set casts directly after
a cheap shape test (a date must look like YYYY-MM-DD) and is several times quicker on large files.
The loader runs the fast set first and, when a value makes it raise, runs the strict set instead, so
both end with the same rows loaded and the same rows rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from loyalty_sync.contract import Column, Entity

# ISO 8601 date and optional time of day with an optional `Z` or offset (a value without one is read in
# the session time zone, which the loader sets to the manifest's). The ranges keep every value that
# matches (and names a real calendar day) castable, so no cast in a check can raise. Braces are doubled
# for str.format.
_DATE = "[1-9][0-9]{{3}}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_TIME = "([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{{1,6}})?)?([Zz]|[+-](0[0-9]|1[0-5])(:?[0-5][0-9])?)?)?"

# Cast of cleaned text to each contract type; {value} is the cleaned column, NULL when not valid.
_TYPED: dict[str, str] = {
    "text": "{value}",
    "uuid": "CASE WHEN {value} ~ '^[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}$' "
            "THEN {value}::uuid END",
    # numeric(14,2) has room for 12 digits before the decimal point.
    "numeric": "CASE WHEN {value} ~ '^[+-]?(\\d{{1,12}}(\\.\\d*)?|\\.\\d+)$' THEN {value}::numeric(14,2) END",
    "integer": "CASE WHEN {value} ~ '^[+-]?\\d{{1,9}}$' THEN {value}::integer END",
    "boolean": "CASE WHEN lower({value}) IN ('true', 't', '1', 'yes', 'y', 'on') THEN true "
               "WHEN lower({value}) IN ('false', 'f', '0', 'no', 'n', 'off') THEN false END",
    "date": "CASE WHEN {value} ~ '^" + _DATE + "$' AND nector.is_calendar_day({value}) THEN {value}::date END",
    "timestamptz": "CASE WHEN {value} ~ '^" + _DATE + _TIME + "$' AND nector.is_calendar_day({value}) "
                   "THEN {value}::timestamptz END",
}

# The fast set: for UUIDs, dates and timestamps (the costly patterns), Postgres' own input functions,
# which raise on a bad value. A date or timestamp must still start with YYYY-MM-DD, so an ambiguous
# day-first or month-first date is never read silently. Numbers and booleans keep their cheap checks.
_ISO_SHAPE = "(length({value}) >= 10 AND substr({value}, 5, 1) = '-' AND substr({value}, 8, 1) = '-')"
_TYPED_FAST: dict[str, str] = {
    **_TYPED,
    # Postgres also reads a UUID without hyphens or in braces; the length test keeps to the usual form.
    "uuid": "CASE WHEN length({value}) = 36 THEN {value}::uuid END",
    "date": "CASE WHEN " + _ISO_SHAPE + " THEN {value}::date END",
    "timestamptz": "CASE WHEN " + _ISO_SHAPE + " THEN {value}::timestamptz END",
}

_INVALID_REASON: dict[str, str] = {
    "uuid": "invalid UUID",
    "numeric": "invalid number",
    "integer": "invalid whole number",
    "boolean": "invalid boolean, expected true or false",
    "date": "invalid date, expected YYYY-MM-DD",
    "timestamptz": "invalid timestamp, expected ISO 8601 such as 2026-11-30T09:15:02Z",
}


@dataclass(frozen=True)
class Check:
    """One rule a record must pass; ``number`` orders the checks and names the first one failed."""

    number: int
    column: str
    reason: str
    failed_when: sql.Composable


def cleaned_name(column: Column) -> sql.Identifier:
    return sql.Identifier(f"clean_{column.name}")


def cleaned_expression(column: Column) -> sql.Composable:
    """Trimmed text, empty as NULL, then the column's normaliser (enumerations are lower-cased)."""
    value: sql.Composable = sql.SQL("NULLIF(btrim({raw}, E' \\t\\r\\n'), '')").format(raw=sql.Identifier(column.name))
    normalize = column.normalize or ("lower" if column.enum else None)
    if normalize:
        value = sql.SQL("{function}({value})").format(function=sql.SQL(normalize), value=value)
    return sql.SQL("{value} AS {name}").format(value=value, name=cleaned_name(column))


def typed_expression(column: Column, fast: bool = False) -> sql.Composable:
    template = (_TYPED_FAST if fast else _TYPED)[column.type]
    return sql.SQL("{cast} AS {name}").format(
        cast=sql.SQL(template).format(value=cleaned_name(column)), name=sql.Identifier(column.name)
    )


def build_checks(entity: Entity, workspace_id: str) -> list[Check]:
    """Return the checks of every column, in contract order, for a file of workspace ``workspace_id``."""
    checks: list[Check] = []

    def add(column: Column, reason: str, failed_when: sql.Composable) -> None:
        checks.append(Check(len(checks) + 1, column.name, reason, failed_when))

    for column in entity.columns:
        cleaned = cleaned_name(column)
        typed = sql.Identifier(column.name)
        if column.required:
            add(column, "missing required value", sql.SQL("{} IS NULL").format(cleaned))
        if column.type != "text":
            add(column, _INVALID_REASON[column.type], sql.SQL("{} IS NOT NULL AND {} IS NULL").format(cleaned, typed))
        if column.enum:
            add(
                column,
                f"not one of: {', '.join(column.enum)}",
                sql.SQL("{} NOT IN ({})").format(typed, sql.SQL(", ").join(sql.Literal(v) for v in column.enum)),
            )
        if column.min_value is not None:
            add(column, f"below the minimum {column.min_value:g}", sql.SQL("{} < {}").format(typed, sql.Literal(column.min_value)))
        if column.max_value is not None:
            add(column, f"above the maximum {column.max_value:g}", sql.SQL("{} > {}").format(typed, sql.Literal(column.max_value)))
        if column.name == "workspace_id":
            add(
                column,
                f"does not match the manifest's workspace_id {workspace_id!r}",
                sql.SQL("{} <> {}").format(typed, sql.Literal(workspace_id)),
            )
    return checks


def failed_check_expression(checks: list[Check]) -> sql.Composable:
    """Build a CASE that returns the number of the first failed check, NULL when all pass."""
    if not checks:
        return sql.SQL("NULL::integer")
    branches = sql.SQL(" ").join(
        sql.SQL("WHEN {} THEN {}").format(check.failed_when, sql.Literal(check.number)) for check in checks
    )
    return sql.SQL("CASE {} END").format(branches)


def checks_values(checks: list[Check]) -> sql.Composable:
    """Render the checks as a VALUES list of (number, column name, reason)."""
    return sql.SQL(", ").join(
        sql.SQL("({}, {}, {})").format(sql.Literal(c.number), sql.Literal(c.column), sql.Literal(c.reason))
        for c in checks
    )
