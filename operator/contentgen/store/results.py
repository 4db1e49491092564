"""Run result documents in the store: each version's result.json, beside its outputs."""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

from contentgen.api import RunResult

from . import keys
from .base import ObjectStore


def result_document(result: RunResult) -> bytes:
    """The bytes a result is stored as (result.json). The catalog counts the stored object by them:
    the same result, read back or handed over, is the same bytes."""
    return result.model_dump_json(by_alias=True, exclude_none=True, indent=1).encode()


def read_result(store: ObjectStore, key: str) -> RunResult | None:
    """The result document under `key`; None when there is none, or it is not one."""
    if not store.exists(key):
        return None
    try:
        return RunResult.model_validate_json(store.get_bytes(key))
    except ValidationError:
        return None


def version_result(
    store: ObjectStore, catalog_type: str, owner: str, uid: str, version: int
) -> RunResult | None:
    """The stored result of a resource's version (0: the unversioned layout of 0.1)."""
    return read_result(store, keys.result_key(catalog_type, owner, uid, version))


_PROMOTION = re.compile(r"/promotions/p(\d+)\.json$")


def promotion_numbers(store: ObjectStore, owner: str, uid: str, version: int) -> list[tuple[int, str]]:
    """A LoRA version's promotions in the store (pipeline/likeness/promote.py): (number, key),
    oldest first."""
    prefix = keys.lora_version(owner, uid, version) + "promotions/"
    return sorted(
        (int(m.group(1)), info.key) for info in store.list(prefix) if (m := _PROMOTION.search(info.key))
    )


def promoted_model(store: ObjectStore, owner: str, uid: str, version: int) -> str:
    """The LoRA of the version's newest promotion, "" where none was made (its own model is its
    users')."""
    found = promotion_numbers(store, owner, uid, version)
    if not found:
        return ""
    return str(json.loads(store.get_bytes(found[-1][1])).get("modelUri") or "")
