"""Naming a record: what `contentgen assets REF` and the HTTP API's `{ref}` accept.

    3f2a9c1e-…                 the record's id (the resource's uid), or a unique prefix of it (4+)
    team-a/portrait            namespace/name: the record of the resource that exists now (not
                               marked deleted); records of deleted resources of that name when none
                               does and only one did
    team-a/portrait@3f2a9c1e   namespace/name@id-prefix: one of several records of that name
    portrait                   a bare name: in namespace default first, then in every namespace

When several records match, the error lists them with what tells them apart (their id prefix,
kind, when each was created and whether its resource was deleted), as names to use instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .base import AmbiguousReference, Catalog
from .migrate import upgrade
from .queries import OwnerScope, owner_condition

MIN_PREFIX = 4  # characters of a bare id prefix
SHOWN = 10  # choices listed in an error
DEFAULT_NAMESPACE = "default"
_ID_CHARS = re.compile(r"^[0-9A-Za-z-]+$")


def _label(doc: dict[str, Any], width: int) -> str:
    return f"{doc.get('namespace')}/{doc.get('name')}@{doc['_id'][:width]}"


def _prefix_width(docs: list[dict[str, Any]]) -> int:
    """The shortest id prefix (8 or more) that tells `docs` apart."""
    width = 8
    while width < 64 and len({d["_id"][:width] for d in docs}) < len(docs):
        width += 4
    return width


def _describe(doc: dict[str, Any], width: int) -> str:
    created = doc.get("createdAt")
    when = created.strftime("%Y-%m-%d %H:%M") if created else "?"
    deleted = doc.get("deleted")
    if deleted:
        at = deleted.get("at")
        state = f"deleted {at.strftime('%Y-%m-%d %H:%M')}" if at else "deleted"
    else:
        state = "not deleted"
    return f"{_label(doc, width)} ({doc.get('type')}, created {when}, {state})"


def ambiguity(ref: str, docs: list[dict[str, Any]]) -> AmbiguousReference:
    shown = sorted(docs, key=lambda d: (bool(d.get("deleted")), str(d.get("createdAt") or "")))[:SHOWN]
    width = _prefix_width(shown)
    count = str(len(docs)) if len(docs) <= SHOWN else f"more than {SHOWN}"
    choices = "; ".join(_describe(d, width) for d in shown)
    hint = f"name one as NAMESPACE/NAME@ID-PREFIX, e.g. {_label(shown[0], width)}"
    if len({d.get("type") for d in docs}) > 1:
        hint += ", or give the type (--type, ?type=)"
    return AmbiguousReference(f"{ref!r} matches {count} records: {choices}; {hint}")


def _one(ref: str, docs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record among `docs` a name means: the only one, or the only one not deleted."""
    if len(docs) <= 1:
        return docs[0] if docs else None
    live = [d for d in docs if not d.get("deleted")]
    if len(live) == 1:
        return live[0]
    raise ambiguity(ref, live or docs)


def resolve(
    catalog: Catalog, ref: str, owner: OwnerScope = None, type: str | None = None
) -> dict[str, Any] | None:
    """The record `ref` names (see the module docstring), in the current shape; None when nothing
    matches (or only another owner's); AmbiguousReference when several do."""
    ref = ref.strip()
    if not ref:
        raise ValueError("an empty id: give a record's id, a unique prefix of it, or namespace/name")
    find = _finder(catalog, owner, type)
    if "@" in ref:
        return _by_name_and_prefix(ref, find)
    exact = catalog.get(ref, owner)
    if exact is not None and (type is None or exact.get("type") == type):
        return upgrade(exact)
    if "/" in ref:
        return _one(ref, find(_named(ref)))
    return _by_prefix_or_name(ref, find)


Find = Callable[[dict[str, Any]], list[dict[str, Any]]]


def _finder(catalog: Catalog, owner: OwnerScope, type: str | None) -> Find:
    """The records a query matches within the owner's scope (and of `type`), upgraded."""
    scope: dict[str, Any] = {} if owner is None else {"owner": owner_condition(owner)}
    if type is not None:
        scope["type"] = type

    def find(query: dict[str, Any]) -> list[dict[str, Any]]:
        return [upgrade(d) for d in catalog.find_raw({**scope, **query}, limit=SHOWN * 5 + 1)]

    return find


def _named(name: str) -> dict[str, Any]:
    if "/" in name:
        namespace, _, bare = name.partition("/")
        return {"namespace": namespace, "name": bare}
    return {"name": name}


def _by_name_and_prefix(ref: str, find: Find) -> dict[str, Any] | None:
    """NAMESPACE/NAME@ID-PREFIX: one of a name's records by the first characters of its id."""
    name, _, prefix = ref.rpartition("@")
    if not name or not prefix or not _ID_CHARS.match(prefix):
        raise ValueError(f"{ref!r}: write NAMESPACE/NAME@ID-PREFIX (the id's first characters)")
    found = [d for d in find(_named(name)) if d["_id"].startswith(prefix)]
    if len(found) > 1:
        raise ambiguity(ref, found)
    return found[0] if found else None


def _by_prefix_or_name(ref: str, find: Find) -> dict[str, Any] | None:
    """A bare ref: an id's prefix or a name (the default namespace's first), never both."""
    looks_like_id = len(ref) >= MIN_PREFIX and _ID_CHARS.match(ref) is not None
    by_id = find({"_id": {"$regex": "^" + re.escape(ref)}}) if looks_like_id else []
    in_default = [d for d in find({"namespace": DEFAULT_NAMESPACE, "name": ref}) if not d.get("deleted")]
    by_name = in_default if len(in_default) == 1 else find({"name": ref})
    if by_id and by_name:
        raise ambiguity(ref, by_id + by_name)
    if len(by_id) > 1:
        raise ambiguity(ref, by_id)
    return by_id[0] if by_id else _one(ref, by_name)
