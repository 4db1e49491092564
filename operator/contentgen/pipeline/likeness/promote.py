"""A person chooses a LoRA version's model: any scored checkpoint promoted over the automatic
choice (`contentgen assets promote`, POST .../versions/N/promote; docs/likeness.md#choosing-a-
checkpoint-yourself).

Nothing is written over: each promotion is a numbered object of its own beside the version,
`loras/{owner}/{uid}/v{n}/promotions/p{k}.json` (k claimed where no object is, so two at once
never share a number), naming the step, its LoRA, who chose and when, and the automatic choice,
which stays. The newest one is the version's model from then on: a loraRef to the version resolves
to it (local_run reads the store, as it does the version's model), and the record shows it
(catalog/promotions.py). Promoting the automatic step again goes back.

Plain Python: the HTTP API's image (no numpy, no OpenCV) promotes too.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from contentgen.api.lora import PROMOTED_ANNOTATION
from contentgen.catalog import Catalog
from contentgen.catalog.evaluations import record_verdict_choice
from contentgen.catalog.kinds import makes_loras
from contentgen.catalog.migrate import upgrade
from contentgen.catalog.promotions import record_promotion
from contentgen.catalog.verdicts import choosable
from contentgen.errors import InvalidInput, TransientError
from contentgen.store import ObjectStore, keys
from contentgen.store.base import KeyTaken
from contentgen.store.results import promotion_numbers

FOLDER = "promotions/"
CHOICES = "likeness/choices/"  # a person's choice of the evaluation that is the version's verdict
CLAIM_ATTEMPTS = 20


class NotPromotable(InvalidInput):
    """The version or step cannot be promoted; the message says why and what to do."""


def scored_steps(version: dict[str, Any]) -> dict[int, str]:
    """The version's scored checkpoints (step → its LoRA), from its run's likeness curve."""
    reports = [version.get("likeness")] + [h.get("likeness") for h in version.get("likenessHistory") or []]
    reports += [e.get("likeness") for e in version.get("evaluations") or []]
    for report in reports:
        if isinstance(report, dict) and report.get("checkpoints"):
            return {int(p["step"]): str(p.get("modelUri") or "") for p in report["checkpoints"]}
    return {}


def automatic_choice(version: dict[str, Any]) -> tuple[int | None, str]:
    """The step the run chose and its LoRA: the version's own model, whatever was promoted since."""
    reports = [version.get("likeness")] + [h.get("likeness") for h in version.get("likenessHistory") or []]
    step = next((r.get("chosenStep") for r in reports if isinstance(r, dict) and r.get("chosenStep")), None)
    return (int(step) if step is not None else None), str(version.get("modelUri") or "")


def target(
    doc: dict[str, Any], number: int, step: int, *, in_cluster: bool = False
) -> tuple[dict[str, Any], str]:
    """The version `number` of the LoRA record `doc` and the LoRA of its checkpoint `step`, or
    NotPromotable saying why. `in_cluster`: the caller promotes by annotating the LoraTraining (the
    HTTP API in a cluster), so a record the operator writes is promotable too."""
    doc = upgrade(doc)
    if not makes_loras(doc.get("kind")):
        raise NotPromotable(
            f"{doc.get('name')!r} is a {doc.get('kind')}: only a LoRA's checkpoints are promoted"
        )
    if doc.get("origin") == "operator" and not in_cluster:  # its loraRefs resolve from the resource
        raise NotPromotable(
            f"{doc['namespace']}/{doc['name']} runs in a cluster, where the LoraTraining says which "
            f"checkpoint is a version's model: kubectl annotate -n {doc['namespace']} "
            f"loratraining/{doc['name']} {PROMOTED_ANNOTATION}='{{\"{number}\": {step}}}' --overwrite"
        )
    version = next((v for v in doc.get("versions") or [] if int(v.get("version") or 0) == number), None)
    if version is None:
        have = ", ".join(f"v{v['version']}" for v in doc.get("versions") or []) or "none"
        raise NotPromotable(f"version: {doc['name']} has no usable version {number} (usable: {have})")
    steps = scored_steps(version)
    if not steps:
        raise NotPromotable(
            f"step: version {number} has no scored checkpoints (its trainer stores none, or they were not "
            "evaluated): its model is its training's only LoRA"
        )
    if step not in steps or not steps[step]:
        shown = ", ".join(str(s) for s in sorted(steps))
        raise NotPromotable(f"step: {step} is not a scored checkpoint of version {number}; scored: {shown}")
    return version, steps[step]


def promote(
    catalog: Catalog,
    store: ObjectStore,
    doc: dict[str, Any],
    number: int,
    step: int,
    *,
    by: str,
    at: datetime,
    note: str = "",
) -> dict[str, Any]:
    """Make checkpoint `step` version `number`'s model (see the module); returns the promotion."""
    version, model_uri = target(doc, number, step)
    automatic_step, automatic_model = automatic_choice(version)
    prefix = keys.lora_version(str(doc["owner"]), str(doc["_id"]), number) + FOLDER
    for _ in range(CLAIM_ATTEMPTS):
        taken = [n for n, _ in promotion_numbers(store, str(doc["owner"]), str(doc["_id"]), number)]
        entry = {
            "promotion": max(taken, default=0) + 1,
            "version": number,
            "step": step,
            "modelUri": model_uri,
            "by": by,
            "at": at.isoformat().replace("+00:00", "Z"),
            "automaticStep": automatic_step,
            "automaticModelUri": automatic_model,
            "note": note[:500],
        }
        data = json.dumps(entry, indent=1).encode()
        try:
            written = store.put_bytes(
                f"{prefix}p{entry['promotion']}.json", data, "application/json", if_absent=True
            )
        except KeyTaken:
            continue
        stored = written.wire()  # counted with the version's objects (usage, storage cost)
        record_promotion(catalog, str(doc["_id"]), {**entry, "at": at, "object": stored}, now=at)
        return entry
    raise TransientError(
        f"could not number a promotion of v{number} of {doc['_id']}: {CLAIM_ATTEMPTS} others came first; "
        "try again",
        reason="StoreUnavailable",
    )


def choose_verdict(
    catalog: Catalog,
    store: ObjectStore,
    doc: dict[str, Any],
    number: int,
    evaluation: int,
    *,
    by: str,
    at: datetime,
    note: str = "",
) -> dict[str, Any]:
    """Make evaluation `evaluation` version `number`'s verdict (docs/likeness.md#one-verdict-per-
    version): a numbered write-once object beside the version, likeness/choices/c{k}.json, and the
    record's `verdictChoices`. Only an evaluation of pictures the LoRA generated that measured
    something can be; 0, the run's own, goes back. NotPromotable says why not."""
    doc = upgrade(doc)
    if not makes_loras(doc.get("kind")):
        raise NotPromotable(f"{doc.get('name')!r} is a {doc.get('kind')}: only a LoRA version has a verdict")
    version = next((v for v in doc.get("versions") or [] if int(v.get("version") or 0) == number), None)
    if version is None:
        have = ", ".join(f"v{v['version']}" for v in doc.get("versions") or []) or "none"
        raise NotPromotable(f"version: {doc['name']} has no usable version {number} (usable: {have})")
    why = choosable(version, evaluation)
    if why:
        raise NotPromotable(why)
    prefix = keys.lora_version(str(doc["owner"]), str(doc["_id"]), number) + CHOICES
    for _ in range(CLAIM_ATTEMPTS):
        taken = [int(o.key.rsplit("/c", 1)[1].removesuffix(".json")) for o in store.list(prefix)]
        entry = {
            "choice": max(taken, default=0) + 1,
            "version": number,
            "evaluation": evaluation,
            "by": by,
            "at": at.isoformat().replace("+00:00", "Z"),
            "note": note[:500],
        }
        data = json.dumps(entry, indent=1).encode()
        try:
            written = store.put_bytes(
                f"{prefix}c{entry['choice']}.json", data, "application/json", if_absent=True
            )
        except KeyTaken:
            continue
        record_verdict_choice(catalog, str(doc["_id"]), {**entry, "at": at, "object": written.wire()}, now=at)
        return entry
    raise TransientError(
        f"could not number a verdict choice of v{number} of {doc['_id']}: {CLAIM_ATTEMPTS} others came "
        "first; try again",
        reason="StoreUnavailable",
    )
