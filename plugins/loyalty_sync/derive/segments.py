"""Segment definitions: one SQL file per segment under ``include/sql/segments``, with a parsed header.

A segment file starts with a header of ``-- key: value`` comment lines, followed by one SELECT that
returns the members as ``workspace_id, lead_id`` plus any columns the header names::

    -- name: coins_expiring_soon
    -- description: Holds unspent coins that expire within `days` days after as_of.
    -- attribute: loyalty_has_coins_expiring_soon (boolean)
    -- parameter: days (integer, default 30): Days after as_of that count as soon.
    -- entry event: Coins Expiring Soon
    -- event data: coins (number, from coins_expiring_soon): Coins that expire in the window.
    SELECT workspace_id, lead_id, coins_expiring_soon FROM loyalty.customer_profile WHERE ...

A line ``--`` followed by two or more spaces continues the previous value. The keys:

- ``name``: equal to the file name without ``.sql``;
- ``description``;
- ``attribute``: the WebEngage user attribute and its type;
- ``parameter``: any number of them;
- ``entry event``: optional WebEngage event queued when a customer enters the segment;
- ``event data``: the entry event's ``eventData`` keys, read from the named query columns.

The query binds ``%(as_of)s`` and its parameters as ``%(name)s``, so a literal ``%`` is written
``%%``. A boolean attribute is true for members and false for everyone else; an attribute of another
type takes the ``attribute_value`` column of the query for members and is left out for others.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from loyalty_sync.paths import SQL_DIR
from loyalty_sync.settings import SyncSettings
from loyalty_sync.webengage.catalog import (
    ATTRIBUTE_TYPES,
    EVENTS,
    MAX_CUSTOM_ATTRIBUTES_PER_TYPE,
    MAX_NAME_LENGTH,
    PROFILE_ATTRIBUTES,
    RESERVED_PREFIX,
    EventAttribute,
    EventSpec,
    UserAttribute,
)

# Parameter type -> Python types a value may have. Number lists are bound as numeric[] (Decimal items),
# because psycopg cannot send a list that mixes int and float.
PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "text": (str,),
    "integer[]": (int,),
    "number[]": (int, float),
    "text[]": (str,),
}
RESERVED_PARAMETERS = frozenset({"as_of"})
ENTRY_EVENT_KEY_PREFIX = "entered:"
# Environment variable naming another segment folder, for a deployment that keeps its own segments.
SEGMENT_FOLDER_VARIABLE = "LOYALTY_SEGMENT_FOLDER"

# At most 40 characters, so the name fits in the segment's partition table name.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_HEADER_ENTRY = re.compile(r"^-- ([a-z][a-z ]*[a-z]): (.*)$")
_HEADER_CONTINUATION = re.compile(r"^--\s{2,}(\S.*)$")
_ATTRIBUTE = re.compile(r"^(\S+) \((\w+)\)$")
_PARAMETER = re.compile(r"^([a-z_][a-z0-9_]*) \(([a-z]+(?:\[\])?), default (.+?)\): (.+)$")
_EVENT_DATA = re.compile(r"^(\S+) \((\w+)(?:, from ([a-z_][a-z0-9_]*))?\): (.+)$")
_SINGLE_KEYS = ("name", "description", "attribute", "entry event")
_REPEATED_KEYS = ("parameter", "event data")


class SegmentError(ValueError):
    """A segment file is invalid, or its parameters or query failed; the message names the file."""


@dataclass(frozen=True)
class SegmentParameter:
    name: str
    type: str
    default: Any
    description: str


@dataclass(frozen=True)
class EventField:
    """One ``eventData`` key of an entry event, read from ``column`` of the segment query."""

    key: str
    type: str
    column: str
    description: str


@dataclass(frozen=True)
class SegmentDefinition:
    """One segment file, parsed and checked on its own (limits across files are checked by ``load_segments``)."""

    name: str
    path: Path
    description: str
    attribute_name: str
    attribute_type: str
    parameters: tuple[SegmentParameter, ...]
    entry_event: str | None
    event_data: tuple[EventField, ...]
    query: str
    sha256: str

    @property
    def user_attribute(self) -> UserAttribute:
        return UserAttribute(self.attribute_name, self.attribute_type, self.description, self.name, segment=self.name)

    @property
    def event_key(self) -> str:
        """Key of the entry event in the outbox's ``name`` column, ``entered:<segment>``."""
        return f"{ENTRY_EVENT_KEY_PREFIX}{self.name}"

    def event_spec(self) -> EventSpec | None:
        """Return the entry event as a catalog event, or None when the segment declares none."""
        if self.entry_event is None:
            return None
        return EventSpec(
            key=self.event_key,
            name=self.entry_event,
            fires_when=f"The customer enters segment `{self.name}`: {self.description}",
            attributes=tuple(EventAttribute(field.key, field.type, field.description) for field in self.event_data),
        )


@dataclass(frozen=True)
class SegmentSet:
    """The segments of a run, in file name order, with their parameters after the settings' overrides."""

    folder: Path
    segments: tuple[SegmentDefinition, ...]
    parameters: Mapping[str, Mapping[str, Any]]

    def user_attributes(self) -> tuple[UserAttribute, ...]:
        return tuple(segment.user_attribute for segment in self.segments)

    def get(self, name: str) -> SegmentDefinition | None:
        return next((segment for segment in self.segments if segment.name == name), None)


def parse_segment_file(path: Path) -> SegmentDefinition:
    """Parse and check one segment file.

    Raises:
        SegmentError: naming the file and, where it applies, the header line at fault.
    """
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    entries: list[tuple[int, str, str]] = []  # (line number, key, value)
    body_start = len(lines)
    for index, line in enumerate(lines):
        line = line.rstrip()
        if not line.startswith("--"):
            body_start = index
            break
        if continuation := _HEADER_CONTINUATION.match(line):
            if not entries:
                raise SegmentError(f"{path}: line {index + 1}: a continuation line must follow a '-- key: value' line")
            number, key, value = entries[-1]
            entries[-1] = (number, key, f"{value} {continuation.group(1)}")
            continue
        if line.strip() == "--":
            continue
        entry = _HEADER_ENTRY.match(line)
        if not entry:
            raise SegmentError(
                f"{path}: line {index + 1}: expected '-- key: value' or a continuation indented by two spaces, "
                f"got {line!r}"
            )
        key = entry.group(1)
        if key not in _SINGLE_KEYS + _REPEATED_KEYS:
            raise SegmentError(
                f"{path}: line {index + 1}: unknown header key {key!r}; valid keys: {', '.join(_SINGLE_KEYS + _REPEATED_KEYS)}"
            )
        entries.append((index + 1, key, entry.group(2).strip()))

    single: dict[str, str] = {}
    for number, key, value in entries:
        if key in _SINGLE_KEYS:
            if key in single:
                raise SegmentError(f"{path}: line {number}: header key {key!r} appears twice")
            single[key] = value
    for required in ("name", "description", "attribute"):
        if not single.get(required):
            raise SegmentError(f"{path}: the header has no '-- {required}: ...' line")

    name = single["name"]
    if not _NAME.match(name):
        raise SegmentError(f"{path}: name {name!r} is invalid: use lower-case letters, digits and underscores")
    if name != path.stem:
        raise SegmentError(f"{path}: name {name!r} differs from the file name; rename the file to {name}.sql")

    attribute_name, attribute_type = _parse_attribute(path, single["attribute"])
    parameters = _parse_parameters(path, [(number, value) for number, key, value in entries if key == "parameter"])
    event_data = tuple(
        _parse_event_field(path, number, value) for number, key, value in entries if key == "event data"
    )
    entry_event = single.get("entry event")
    _check_entry_event(path, entry_event, event_data)

    query = "\n".join(lines[body_start:]).strip().rstrip(";").strip()
    if not query:
        raise SegmentError(f"{path}: no query after the header; write one SELECT returning workspace_id and lead_id")
    if ";" in query:
        raise SegmentError(f"{path}: the query contains more than one statement, but a segment is one SELECT")

    return SegmentDefinition(
        name=name,
        path=path,
        description=single["description"],
        attribute_name=attribute_name,
        attribute_type=attribute_type,
        parameters=parameters,
        entry_event=entry_event,
        event_data=event_data,
        query=query,
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
    )


def _parse_attribute(path: Path, value: str) -> tuple[str, str]:
    match = _ATTRIBUTE.match(value)
    if not match:
        raise SegmentError(f"{path}: attribute {value!r} is invalid: write '-- attribute: name (type)'")
    attribute_name, attribute_type = match.groups()
    _check_webengage_name(path, "attribute", attribute_name)
    if attribute_type not in ATTRIBUTE_TYPES:
        raise SegmentError(
            f"{path}: attribute {attribute_name} has type {attribute_type!r}; WebEngage types: {', '.join(ATTRIBUTE_TYPES)}"
        )
    return attribute_name, attribute_type


def _check_webengage_name(path: Path, kind: str, name: str) -> None:
    if name.lower().startswith(RESERVED_PREFIX):
        raise SegmentError(f"{path}: {kind} {name!r} starts with {RESERVED_PREFIX!r}, which WebEngage reserves")
    if len(name) > MAX_NAME_LENGTH:
        raise SegmentError(
            f"{path}: {kind} {name!r} is {len(name)} characters long; WebEngage takes at most {MAX_NAME_LENGTH}"
        )
    if not _ATTRIBUTE_NAME.match(name):
        raise SegmentError(f"{path}: {kind} {name!r} is invalid: use letters, digits and underscores, starting with a letter")


def _parse_parameters(path: Path, values: list[tuple[int, str]]) -> tuple[SegmentParameter, ...]:
    parameters: list[SegmentParameter] = []
    for number, value in values:
        match = _PARAMETER.match(value)
        if not match:
            raise SegmentError(
                f"{path}: line {number}: parameter {value!r} is invalid: write "
                "'-- parameter: name (type, default value): description'"
            )
        name, parameter_type, default_text, description = match.groups()
        if parameter_type not in PARAMETER_TYPES:
            raise SegmentError(
                f"{path}: line {number}: parameter {name} has type {parameter_type!r}; valid: {', '.join(PARAMETER_TYPES)}"
            )
        if name in RESERVED_PARAMETERS:
            raise SegmentError(f"{path}: line {number}: parameter name {name!r} is reserved")
        if any(parameter.name == name for parameter in parameters):
            raise SegmentError(f"{path}: line {number}: parameter {name} is declared twice")
        try:
            default = json.loads(default_text)
        except json.JSONDecodeError as error:
            raise SegmentError(
                f"{path}: line {number}: default {default_text!r} of parameter {name} is not a JSON value: {error}"
            ) from error
        problem = parameter_value_problem(parameter_type, default)
        if problem:
            raise SegmentError(f"{path}: line {number}: default of parameter {name} {problem}")
        parameters.append(SegmentParameter(name, parameter_type, default, description))
    return tuple(parameters)


def parameter_value_problem(parameter_type: str, value: Any) -> str | None:
    """Return why ``value`` does not fit ``parameter_type``, or None when it fits."""
    allowed = PARAMETER_TYPES[parameter_type]
    items = value if parameter_type.endswith("[]") else [value]
    if parameter_type.endswith("[]") and not isinstance(value, list):
        return f"{value!r} is not a list; expected {parameter_type}"
    for item in items:
        if isinstance(item, bool) or not isinstance(item, allowed):
            return f"{value!r} is not of type {parameter_type}"
    return None


def _parse_event_field(path: Path, number: int, value: str) -> EventField:
    match = _EVENT_DATA.match(value)
    if not match:
        raise SegmentError(
            f"{path}: line {number}: event data {value!r} is invalid: write "
            "'-- event data: key (type, from column): description'"
        )
    key, field_type, column, description = match.groups()
    _check_webengage_name(path, "event data key", key)
    if field_type not in ATTRIBUTE_TYPES:
        raise SegmentError(f"{path}: line {number}: event data {key} has type {field_type!r}; WebEngage types: "
                           f"{', '.join(ATTRIBUTE_TYPES)}")
    return EventField(key, field_type, column or key, description)


def _check_entry_event(path: Path, entry_event: str | None, event_data: tuple[EventField, ...]) -> None:
    if entry_event is None:
        if event_data:
            raise SegmentError(f"{path}: 'event data' lines need an '-- entry event: Name' line")
        return
    if entry_event.lower().startswith(RESERVED_PREFIX):
        raise SegmentError(f"{path}: entry event {entry_event!r} starts with {RESERVED_PREFIX!r}, which WebEngage reserves")
    if len(entry_event) > MAX_NAME_LENGTH:
        raise SegmentError(f"{path}: entry event {entry_event!r} is longer than {MAX_NAME_LENGTH} characters")
    if entry_event in {event.name for event in EVENTS}:
        raise SegmentError(f"{path}: entry event {entry_event!r} is already an activity event of the catalog")
    keys = Counter(field.key for field in event_data)
    repeated = sorted(key for key, count in keys.items() if count > 1)
    if repeated:
        raise SegmentError(f"{path}: event data keys {repeated} are declared twice")


def load_segments(folder: Path, reserved_per_type: int = 0) -> tuple[SegmentDefinition, ...]:
    """Parse every ``*.sql`` file of ``folder`` in file name order and check them together.

    Together means: no two segments share an attribute or entry event, no segment attribute reuses a
    catalog attribute, and per WebEngage data type the catalog's custom attributes, the segments' and
    ``reserved_per_type`` for the merchant's own stay within WebEngage's 25.

    Raises:
        SegmentError: naming the file at fault.
    """
    if not folder.is_dir():
        raise SegmentError(f"segment folder {folder} does not exist; point {SEGMENT_FOLDER_VARIABLE} at a folder of segment files")
    segments = tuple(parse_segment_file(path) for path in sorted(folder.glob("*.sql")))

    catalog_names = {attribute.name.lower(): "the catalog" for attribute in PROFILE_ATTRIBUTES}
    attribute_owners = dict(catalog_names)
    entry_events: dict[str, Path] = {}
    for segment in segments:
        owner = attribute_owners.get(segment.attribute_name.lower())
        if owner is not None:
            raise SegmentError(f"{segment.path}: attribute {segment.attribute_name} is already declared by {owner}")
        attribute_owners[segment.attribute_name.lower()] = str(segment.path)
        if segment.entry_event is not None:
            if segment.entry_event in entry_events:
                raise SegmentError(
                    f"{segment.path}: entry event {segment.entry_event!r} is already declared by {entry_events[segment.entry_event]}"
                )
            entry_events[segment.entry_event] = segment.path

    _check_attribute_limits(segments, reserved_per_type)
    return segments


def _check_attribute_limits(segments: Sequence[SegmentDefinition], reserved_per_type: int) -> None:
    in_use = Counter(attribute.type for attribute in PROFILE_ATTRIBUTES if not attribute.system)
    available = MAX_CUSTOM_ATTRIBUTES_PER_TYPE - reserved_per_type
    for segment in segments:
        in_use[segment.attribute_type] += 1
        if in_use[segment.attribute_type] > available:
            raise SegmentError(
                f"{segment.path}: attribute {segment.attribute_name} would be custom {segment.attribute_type} attribute "
                f"number {in_use[segment.attribute_type]}, but WebEngage allows {MAX_CUSTOM_ATTRIBUTES_PER_TYPE} per type "
                f"and reserved_custom_attributes_per_type keeps {reserved_per_type} for the merchant's own; "
                "remove a segment or lower that setting"
            )


def resolve_parameters(
    segments: Sequence[SegmentDefinition], overrides: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Return each segment's parameter values: the header defaults with the ``segment_parameters`` overrides.

    Raises:
        SegmentError: for an override of an unknown segment or parameter, or of the wrong type.
    """
    by_name = {segment.name: segment for segment in segments}
    unknown = sorted(set(overrides) - set(by_name))
    if unknown:
        raise SegmentError(f"segment_parameters names unknown segments {unknown}; segments: {sorted(by_name)}")
    resolved: dict[str, dict[str, Any]] = {}
    for segment in segments:
        values = {parameter.name: parameter.default for parameter in segment.parameters}
        types = {parameter.name: parameter.type for parameter in segment.parameters}
        for name, value in overrides.get(segment.name, {}).items():
            if name not in types:
                raise SegmentError(
                    f"{segment.path}: segment_parameters sets unknown parameter {name!r}; parameters: {sorted(types) or 'none'}"
                )
            problem = parameter_value_problem(types[name], value)
            if problem:
                raise SegmentError(f"{segment.path}: segment_parameters.{segment.name}.{name}: {problem}")
            values[name] = value
        resolved[segment.name] = values
    return resolved


def bind_value(parameter_type: str, value: Any) -> Any:
    """Return a parameter value as bound to SQL: number lists become lists of Decimal."""
    if parameter_type == "number[]":
        return [Decimal(str(item)) for item in value]
    return value


def default_segment_folder() -> Path:
    """Return the segment folder: ``$LOYALTY_SEGMENT_FOLDER`` when set, else ``include/sql/segments``."""
    configured = os.environ.get(SEGMENT_FOLDER_VARIABLE)
    return Path(configured) if configured else SQL_DIR / "segments"


def load_segment_set(settings: SyncSettings, folder: Path | None = None) -> SegmentSet:
    """Load, check and parameterise the segments of a run from ``folder`` (default: the segment folder).

    Raises:
        SegmentError: naming the file at fault.
    """
    folder = folder or default_segment_folder()
    segments = load_segments(folder, settings.reserved_custom_attributes_per_type)
    parameters = resolve_parameters(segments, settings.segment_parameters)
    return SegmentSet(folder=folder, segments=segments, parameters=parameters)
