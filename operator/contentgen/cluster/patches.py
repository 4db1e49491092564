"""Patches and field ownership: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and
server-side apply with `metadata.managedFields` (fieldsV1), as structured-merge-diff does it for
the common cases: granular objects, `map` and `set` lists merged by key, atomic lists and maps
replaced; conflicts with other managers refused (409) unless forced; fields a manager stops
applying are removed unless someone else owns them; updates take ownership of what they change.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import jsonpatch

from .errors import ApiError, bad_request
from .store import clone

Schema = dict[str, Any]
Path = tuple[str, ...]  # fieldsV1 path elements: "f:spec", 'k:{"type":"Ready"}', 'v:"x"'

# Fields the server owns or that identify the object: never in a manager's set.
STRIPPED: set[Path] = {
    ("f:apiVersion",),
    ("f:kind",),
    ("f:metadata", "f:name"),
    ("f:metadata", "f:namespace"),
    ("f:metadata", "f:uid"),
    ("f:metadata", "f:resourceVersion"),
    ("f:metadata", "f:generation"),
    ("f:metadata", "f:creationTimestamp"),
    ("f:metadata", "f:deletionTimestamp"),
    ("f:metadata", "f:deletionGracePeriodSeconds"),
    ("f:metadata", "f:managedFields"),
    ("f:metadata", "f:selfLink"),
}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return clone(patch)
    result = clone(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, patch: Any) -> Any:
    """RFC 6902; a malformed patch is a 400, one that does not apply (a failed `test`) a 422."""
    if not isinstance(patch, list):
        raise bad_request("invalid JSON patch")
    try:
        compiled = jsonpatch.JsonPatch(patch)
    except (jsonpatch.InvalidJsonPatch, TypeError) as exc:
        raise bad_request(f"error decoding patch: {exc}") from None
    try:
        return compiled.apply(clone(target))
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise ApiError(422, "", str(exc)) from None


# --- field sets --------------------------------------------------------------------------------


def _sub(schema: Schema | None, key: str) -> Schema | None:
    if schema is None:
        return None
    props = schema.get("properties") or {}
    if key in props:
        sub: Schema = props[key]
        return sub
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def _list_type(schema: Schema | None) -> str:
    return str((schema or {}).get("x-kubernetes-list-type", "atomic"))


def _map_keys(schema: Schema | None) -> list[str]:
    return list((schema or {}).get("x-kubernetes-list-map-keys") or [])


def _item_key(item: Any, keys: list[str]) -> str:
    return "k:" + json.dumps(
        {k: item.get(k) for k in keys if isinstance(item, dict) and k in item}, separators=(",", ":")
    )


def _atomic_map(schema: Schema | None) -> bool:
    return (schema or {}).get("x-kubernetes-map-type") == "atomic"


def field_set(value: Any, schema: Schema | None, prefix: Path = ()) -> set[Path]:
    """The paths `value` sets: leaves, and items of map/set lists (with their fields)."""
    paths: set[Path] = set()
    if isinstance(value, dict) and not _atomic_map(schema):
        if not value and prefix:
            return {prefix}
        for key, sub_value in value.items():
            paths |= field_set(sub_value, _sub(schema, key), (*prefix, f"f:{key}"))
        return paths
    if isinstance(value, list) and _list_type(schema) == "map":
        items = (schema or {}).get("items")
        if not value:
            return {prefix}
        for item in value:
            item_path = (*prefix, _item_key(item, _map_keys(schema)))
            paths.add(item_path)
            paths |= field_set(item, items, item_path)
        return paths
    if isinstance(value, list) and _list_type(schema) == "set":
        if not value:
            return {prefix}
        return {(*prefix, "v:" + json.dumps(item, separators=(",", ":"))) for item in value}
    return {prefix} if prefix else set()


def managed(paths: set[Path]) -> set[Path]:
    return {p for p in paths if p not in STRIPPED and p[:2] not in STRIPPED}


def to_fields_v1(paths: set[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:  # a member with children marks itself with "."
        node = root
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return root


def from_fields_v1(trie: dict[str, Any], prefix: Path = ()) -> set[Path]:
    paths: set[Path] = set()
    for element, sub in trie.items():
        if element == ".":
            paths.add(prefix)
            continue
        here = (*prefix, element)
        if sub:
            paths |= from_fields_v1(sub, here)
        else:
            paths.add(here)
    return paths


# --- values at paths ------------------------------------------------------------------------------

_MISSING = object()


def _step(node: Any, element: str) -> Any:
    kind, _, rest = element.partition(":")
    if kind == "f":
        return node.get(rest, _MISSING) if isinstance(node, dict) else _MISSING
    if kind == "k" and isinstance(node, list):
        wanted = json.loads(rest)
        return next(
            (i for i in node if isinstance(i, dict) and all(i.get(k) == v for k, v in wanted.items())),
            _MISSING,
        )
    if kind == "v" and isinstance(node, list):
        wanted = json.loads(rest)
        return wanted if wanted in node else _MISSING
    return _MISSING


def value_at(obj: Any, path: Path) -> Any:
    node = obj
    for element in path:
        node = _step(node, element)
        if node is _MISSING:
            return _MISSING
    return node


def remove_at(obj: Any, path: Path) -> None:
    if not path:
        return
    parent = value_at(obj, path[:-1])
    kind, _, rest = path[-1].partition(":")
    if kind == "f" and isinstance(parent, dict):
        parent.pop(rest, None)
    elif kind in ("k", "v") and isinstance(parent, list):
        target = _step(parent, path[-1])
        if target is not _MISSING:
            parent.remove(target)


def changed_paths(old: Any, new: Any, schema: Schema | None, prefix: Path = ()) -> set[Path]:
    """The paths whose values differ between `old` and `new` (added, changed or removed)."""
    if old == new:
        return set()
    if isinstance(old, dict) and isinstance(new, dict) and not _atomic_map(schema):
        paths: set[Path] = set()
        for key in set(old) | set(new):
            if old.get(key, _MISSING) != new.get(key, _MISSING):
                sub = _sub(schema, key)
                if key in old and key in new:
                    paths |= changed_paths(old[key], new[key], sub, (*prefix, f"f:{key}"))
                else:
                    present = new[key] if key in new else old[key]
                    paths |= field_set(present, sub, (*prefix, f"f:{key}")) or {(*prefix, f"f:{key}")}
        return paths
    if isinstance(old, list) and isinstance(new, list) and _list_type(schema) == "map":
        keys, items = _map_keys(schema), (schema or {}).get("items")
        by_key_old = {_item_key(i, keys): i for i in old}
        by_key_new = {_item_key(i, keys): i for i in new}
        paths = set()
        for key in set(by_key_old) | set(by_key_new):
            here = (*prefix, key)
            if key not in by_key_old or key not in by_key_new:
                paths.add(here)
                paths |= field_set(by_key_new.get(key, by_key_old.get(key)), items, here)
            else:
                paths |= changed_paths(by_key_old[key], by_key_new[key], items, here)
        return paths
    return {prefix} if prefix else set()


def merge_applied(live: Any, applied: Any, schema: Schema | None) -> Any:
    """The applied configuration merged into the live object."""
    if isinstance(live, dict) and isinstance(applied, dict) and not _atomic_map(schema):
        result = clone(live)
        for key, value in applied.items():
            result[key] = (
                merge_applied(live.get(key), value, _sub(schema, key)) if key in live else clone(value)
            )
        return result
    if isinstance(live, list) and isinstance(applied, list) and _list_type(schema) == "map":
        keys, items = _map_keys(schema), (schema or {}).get("items")
        merged = clone(live)
        for item in applied:
            key = _item_key(item, keys)
            position = next((i for i, x in enumerate(merged) if _item_key(x, keys) == key), None)
            if position is None:
                merged.append(clone(item))
            else:
                merged[position] = merge_applied(merged[position], item, items)
        return merged
    if isinstance(live, list) and isinstance(applied, list) and _list_type(schema) == "set":
        return clone(live) + [clone(i) for i in applied if i not in live]
    return clone(applied)


# --- managers ----------------------------------------------------------------------------------


def _entries(obj: dict[str, Any]) -> list[dict[str, Any]]:
    return list((obj.get("metadata") or {}).get("managedFields") or [])


def _owned(entry: dict[str, Any]) -> set[Path]:
    return from_fields_v1(entry.get("fieldsV1") or {})


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _set_entry(
    entries: list[dict[str, Any]],
    manager: str,
    operation: str,
    api_version: str,
    subresource: str,
    paths: set[Path],
) -> list[dict[str, Any]]:
    out = [
        e
        for e in entries
        if not (
            e.get("manager") == manager
            and e.get("operation") == operation
            and e.get("subresource", "") == subresource
        )
    ]
    if paths:
        entry: dict[str, Any] = {
            "manager": manager,
            "operation": operation,
            "apiVersion": api_version,
            "time": _now(),
            "fieldsType": "FieldsV1",
            "fieldsV1": to_fields_v1(paths),
        }
        if subresource:
            entry["subresource"] = subresource
        out.append(entry)
    return out


def _without(
    entries: list[dict[str, Any]], paths: set[Path], keep: tuple[str, str, str]
) -> list[dict[str, Any]]:
    """Every other manager loses `paths` (and what lies under them); empty entries go."""
    out = []
    for entry in entries:
        ident = (entry.get("manager", ""), entry.get("operation", ""), entry.get("subresource", ""))
        if ident == keep:
            out.append(entry)
            continue
        owned = {p for p in _owned(entry) if not any(p[: len(q)] == q for q in paths)}
        if owned:
            out.append({**entry, "fieldsV1": to_fields_v1(owned)})
    return out


def record_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    schema: Schema | None,
    api_version: str,
    subresource: str = "",
) -> None:
    """An update (create, PUT, merge/JSON patch) takes ownership of every field it changed."""
    if old is not None and (new.get("metadata") or {}).get("managedFields") != (
        old.get("metadata") or {}
    ).get("managedFields"):
        return  # the client wrote managedFields itself (kubectl's client-side-apply upgrade): kept as sent
    changed = managed(changed_paths(old or {}, new, schema))
    if not changed:
        if old is not None:
            new.setdefault("metadata", {})["managedFields"] = _entries(old)
        return
    entries = _without(_entries(old or {}), changed, (manager, "Update", subresource))
    mine = next(
        (
            e
            for e in entries
            if (e.get("manager"), e.get("operation"), e.get("subresource", ""))
            == (manager, "Update", subresource)
        ),
        None,
    )
    owned = (_owned(mine) if mine else set()) | {p for p in changed if value_at(new, p) is not _MISSING}
    new.setdefault("metadata", {})["managedFields"] = _set_entry(
        entries, manager, "Update", api_version, subresource, owned
    )


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    schema: Schema | None,
    api_version: str,
    *,
    force: bool,
    subresource: str = "",
) -> dict[str, Any]:
    """Server-side apply: the object after `manager` applies `applied` to `live`."""
    live = live or {}
    wanted = managed(field_set(applied, schema))
    entries = _entries(live)
    ident = (manager, "Apply", subresource)
    previous = next(
        (
            _owned(e)
            for e in entries
            if (e.get("manager"), e.get("operation"), e.get("subresource", "")) == ident
        ),
        set(),
    )
    conflicts: dict[str, list[Path]] = {}
    for entry in entries:
        if (entry.get("manager"), entry.get("operation"), entry.get("subresource", "")) == ident:
            continue
        theirs = _owned(entry)
        for path in wanted:
            if path in theirs and value_at(live, path) != value_at(applied, path):
                conflicts.setdefault(str(entry.get("manager")), []).append(path)
    if conflicts and not force:
        raise _conflict_error(conflicts, api_version)
    result: dict[str, Any] = merge_applied(live, applied, schema)
    others = (
        set().union(
            *(
                _owned(e)
                for e in entries
                if (e.get("manager"), e.get("operation"), e.get("subresource", "")) != ident
            )
        )
        if entries
        else set()
    )
    if force:
        taken = {p for paths in conflicts.values() for p in paths}
        others -= taken
    for path in sorted(previous - wanted, key=len, reverse=True):
        if path not in others and not any(o[: len(path)] == path for o in others):
            remove_at(result, path)
    entries = (
        _without(entries, {p for paths in conflicts.values() for p in paths}, ident) if force else entries
    )
    result.setdefault("metadata", {})["managedFields"] = _set_entry(
        entries, manager, "Apply", api_version, subresource, wanted
    )
    return result


def dotted(path: Path) -> str:
    out = ""
    for element in path:
        kind, _, rest = element.partition(":")
        out += f".{rest}" if kind == "f" else f"[{rest}]" if kind == "k" else f"[={rest}]"
    return out


def _conflict_error(conflicts: dict[str, list[Path]], api_version: str) -> ApiError:
    count = sum(len(v) for v in conflicts.values())
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f'conflict with "{m}" using {api_version}',
            "field": dotted(p),
        }
        for m, paths in conflicts.items()
        for p in sorted(paths)
    ]
    if count == 1:
        ((manager, (path,)),) = conflicts.items()
        message = (
            f'Apply failed with 1 conflict: conflict with "{manager}" using {api_version}: {dotted(path)}'
        )
    else:
        parts = [
            f'conflicts with "{m}" using {api_version}:\n'
            + "\n".join(f"- {dotted(p)}" for p in sorted(paths))
            for m, paths in conflicts.items()
        ]
        message = f"Apply failed with {count} conflicts: " + "\n".join(parts)
    return ApiError(409, "Conflict", message, {"causes": causes})
