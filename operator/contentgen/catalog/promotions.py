"""A LoRA version's model chosen by a person: a scored checkpoint promoted over the automatic
choice (docs/likeness.md#choosing-a-checkpoint yourself).

Each version keeps its promotions in the document, oldest first (`promotions`: {promotion (its
number), step, modelUri, by, at, automaticStep, automaticModelUri}); a status write never changes
them (versions.py keeps what the status does not name). A reader gets the newest as the version's
`promotion`, and the version's `modelUri` is its checkpoint's LoRA: what a loraRef to the version
uses from then on. The automatic choice stays named in every promotion, and in the version's
likeness report (`chosenStep`), so going back is promoting that step again.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from contentgen.api.versions import version_entry

from .base import Catalog
from .document import summarize
from .kinds.lora_training import model_of, promoted
from .migrate import SCHEMA, upgrade

# Promotions a version keeps in the record; each is in the store too (promotions/p{k}.json).
MAX_PROMOTIONS = 20


def with_promotion(doc: dict[str, Any], entry: dict[str, Any], *, now: datetime) -> dict[str, Any] | None:
    """`doc` with `entry` added to its version's promotions (None: the version is gone, or the
    promotion is recorded already); its stored object (`object`), where it has one, with the
    version's objects."""
    new = copy.deepcopy(upgrade(doc))
    version = version_entry(new, entry["version"])
    if version is None:
        return None
    promotions = list(version.get("promotions") or [])
    if any(p.get("promotion") == entry["promotion"] for p in promotions):
        return None
    stored = entry.get("object")
    recorded = {k: v for k, v in entry.items() if k != "object"}
    version["promotions"] = [*promotions, recorded][-MAX_PROMOTIONS:]
    if stored and stored["uri"] not in {a.get("uri") for a in version.get("artifacts") or []}:
        version["artifacts"] = [*(version.get("artifacts") or []), stored]
    new.update(schema=SCHEMA, rev=int(new.get("rev") or 0) + 1, updatedAt=now)
    return summarize(new)


def record_promotion(catalog: Catalog, uid: str, entry: dict[str, Any], *, now: datetime) -> bool:
    """Write `entry` into the record `uid` (a conditional write, retried on a race); whether it
    was written."""
    written = [False]

    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is None:
            return None
        new = with_promotion(current, entry, now=now)
        written[0] = new is not None
        return new

    catalog.modify(uid, change)
    return written[0]


__all__ = ["MAX_PROMOTIONS", "model_of", "promoted", "record_promotion", "with_promotion"]
