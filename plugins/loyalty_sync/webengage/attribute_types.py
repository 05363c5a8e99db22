"""WebEngage's naming and count rules, and the type each attribute was first queued with.

WebEngage fixes the type of a user attribute or event attribute with the first value it receives and
drops later values of another type without an error. So the queue stage records, per workspace, the
type every attribute is first queued with in ``sync.webengage_attribute_type``, and stops before
queueing anything when a declaration disagrees with that record. Values that do not fit their declared
type are rejected item by item when the payload is built (see ``payloads``).

The checks, all made before anything is queued:

- names shorter than 50 characters and not starting with ``we_`` (event names with the configured
  prefix, event attribute keys, custom user attribute names);
- at most 25 custom user attributes per type for the account, counting every attribute ever
  registered, and at most 25 attributes per type for each event;
- a declared type equal to the registered one.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

from loyalty_sync.settings import SyncSettings
from loyalty_sync.webengage import catalog
from loyalty_sync.webengage.catalog import MAX_CUSTOM_ATTRIBUTES_PER_TYPE, catalog_problems

log = logging.getLogger(__name__)


class CatalogRuleError(ValueError):
    """The declared events and attributes break a WebEngage rule; nothing was queued."""


class AttributeTypeConflict(CatalogRuleError):
    """An attribute is declared with a type other than the one it was first sent with."""


@dataclass(frozen=True)
class DeclaredAttribute:
    """One attribute as this run would send it. ``event_name`` is empty for user attributes."""

    item_kind: str
    event_name: str
    attribute: str
    attribute_type: str
    system: bool


def declared_attributes(settings: SyncSettings) -> list[DeclaredAttribute]:
    """Return every user attribute and the attributes of every enabled event, under their sent names."""
    # Read from the module on every call: the catalog can build its declarations on first use.
    declared = [
        DeclaredAttribute("user", "", attribute.name, attribute.type, attribute.system)
        for attribute in catalog.USER_ATTRIBUTES
    ]
    for spec in catalog.EVENTS + catalog.SEGMENT_EVENTS:
        if spec.key in settings.disabled_events:
            continue
        event_name = spec.event_name(settings.event_name_prefix)
        declared += [
            DeclaredAttribute("event", event_name, attribute.key, attribute.type, False) for attribute in spec.attributes
        ]
    return declared


def check_and_register(
    conn: psycopg.Connection,
    settings: SyncSettings,
    run_id: str,
    workspaces: Iterable[str],
    declared: list[DeclaredAttribute] | None = None,
) -> int:
    """Check the naming rules, register new attributes of each workspace and check types and counts.

    Runs in the caller's transaction, so a failed check leaves no new registration behind. Returns
    the number of attributes registered now.

    Raises:
        CatalogRuleError: listing every broken naming or count rule.
        AttributeTypeConflict: listing every attribute whose declared type differs from its registered one.
    """
    problems = catalog_problems(settings.event_name_prefix)
    if problems:
        raise CatalogRuleError("the WebEngage catalog breaks WebEngage's rules: " + "; ".join(problems))

    declared = declared if declared is not None else declared_attributes(settings)
    registered = 0
    for workspace_id in workspaces:
        registered += _register(conn, workspace_id, declared, run_id)
        _check_types(conn, workspace_id, declared)
        _check_counts(conn, workspace_id)
    if registered:
        log.info("Registered the types of %d new WebEngage attributes", registered)
    return registered


# NOTE: types are recorded per workspace, but WebEngage fixes them per account. Two workspaces that
# send to one account keep separate records, so a type conflict between them is not caught here.
def _register(conn: psycopg.Connection, workspace_id: str, declared: list[DeclaredAttribute], run_id: str) -> int:
    columns = list(zip(*[
        (attribute.item_kind, attribute.event_name, attribute.attribute, attribute.attribute_type, attribute.system)
        for attribute in declared
    ])) if declared else [[], [], [], [], []]
    return conn.execute(
        """
        INSERT INTO sync.webengage_attribute_type
            (workspace_id, item_kind, event_name, attribute, attribute_type, system, first_run_id)
        SELECT %s, declared.*, %s
        FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::boolean[]) AS declared
        ON CONFLICT (workspace_id, item_kind, event_name, attribute) DO NOTHING
        """,
        (workspace_id, run_id, *[list(column) for column in columns]),
    ).rowcount


def _check_types(conn: psycopg.Connection, workspace_id: str, declared: list[DeclaredAttribute]) -> None:
    registered = {
        (item_kind, event_name, attribute): (attribute_type, first_run_id)
        for item_kind, event_name, attribute, attribute_type, first_run_id in conn.execute(
            "SELECT item_kind, event_name, attribute, attribute_type, first_run_id "
            "FROM sync.webengage_attribute_type WHERE workspace_id = %s",
            (workspace_id,),
        ).fetchall()
    }
    conflicts = []
    for attribute in declared:
        registered_type, first_run_id = registered[(attribute.item_kind, attribute.event_name, attribute.attribute)]
        if registered_type != attribute.attribute_type:
            where = f"event {attribute.event_name!r}" if attribute.item_kind == "event" else "user"
            conflicts.append(
                f"{where} attribute {attribute.attribute!r} is declared {attribute.attribute_type} but was first "
                f"sent as {registered_type} (run {first_run_id})"
            )
    if conflicts:
        raise AttributeTypeConflict(
            f"workspace {workspace_id}: " + "; ".join(conflicts) + ". WebEngage keeps an attribute's first type and "
            "drops values of another type, so nothing was queued. Give the attribute a new name; if its type was "
            "changed in WebEngage's dashboard, update its row in sync.webengage_attribute_type."
        )


def _check_counts(conn: psycopg.Connection, workspace_id: str) -> None:
    rows = conn.execute(
        """
        SELECT item_kind, event_name, attribute_type
        FROM sync.webengage_attribute_type
        WHERE workspace_id = %s AND NOT system
        """,
        (workspace_id,),
    ).fetchall()
    counts = Counter((item_kind, event_name, attribute_type) for item_kind, event_name, attribute_type in rows)
    problems = [
        (f"{count} custom {attribute_type} user attributes" if item_kind == "user"
         else f"{count} {attribute_type} attributes of event {event_name!r}")
        for (item_kind, event_name, attribute_type), count in sorted(counts.items())
        if count > MAX_CUSTOM_ATTRIBUTES_PER_TYPE
    ]
    if problems:
        raise CatalogRuleError(
            f"workspace {workspace_id}: " + "; ".join(problems) + f" have been sent; WebEngage keeps at most "
            f"{MAX_CUSTOM_ATTRIBUTES_PER_TYPE} per type and drops the rest. Remove attributes from the catalog, "
            "and from sync.webengage_attribute_type once they are deleted in WebEngage."
        )
