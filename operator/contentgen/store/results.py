"""Run result documents in the store: each version's result.json, beside its outputs."""

from __future__ import annotations

from pydantic import ValidationError

from contentgen.api import RunResult

from . import keys
from .base import ObjectStore


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
