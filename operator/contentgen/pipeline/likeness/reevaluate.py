"""Evaluating a stored LoRA version again (`contentgen assets evaluate`, the HTTP API's POST
.../versions/N/evaluate), without training it again: for versions trained before the evaluation
existed, or with another prompt set or seeds (docs/likeness.md).

Each re-evaluation of version n is numbered (1, 2, ...) and stored under its own keys,
`loras/{owner}/{uid}/v{n}/likeness/e{k}/`: `likeness-grid.jpg`, `likeness.json` and, written last,
`evaluation.json` (what was asked, what it billed and cost, the report). Nothing earlier is
written over: the version's own likeness.json and grid stay, and so does every earlier
re-evaluation.

Paid once: every picture has its provider checkpoint (`temp/{uid}/checkpoints/likeness-v{n}-e{k}-…`),
so an attempt stopped half-way is resumed by the next one as the same number (the number is one
more than the highest *finished* one), paying only for the pictures it had not got. An attempt
that finished in the store but was not recorded (the catalog was away) is recorded by the next
one, which then runs no new evaluation if it asked for the same. The baseline is read from
`likeness/baselines/` when it is stored, as for every evaluation.

Numbers are claimed (`claim`): an attempt writes `likeness/e{k}/claim.json` where no object is (one
step of the store), so two evaluations of one version at once (two LoraEvaluations in a cluster,
or one beside a laptop's) never take one number; a claimant's own unfinished claim is resumed.

Only the plain-Python parts are imported at the top: the HTTP API's image (no numpy, no OpenCV)
finds and estimates a target here; generating and scoring import their modules when they run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contentgen.api import Artifact, UsageLine
from contentgen.api.base_models import base_model
from contentgen.api.evaluation import not_drawn_for
from contentgen.api.kinds.lora_evaluation import KIND as LORA_EVALUATION
from contentgen.api.lora import LIKENESS_PROMPT_SETS
from contentgen.api.providers import OFFLINE
from contentgen.api.versions import numbered
from contentgen.catalog.kinds import makes_loras
from contentgen.errors import InvalidInput, TransientError
from contentgen.pricing import PriceTable, expected_usage, priced
from contentgen.providers.base import ImageGenerator
from contentgen.store import ObjectStore, keys
from contentgen.store.base import KeyTaken

from .plan import Plan, estimate_baseline_cached
from .prompts import DEFAULT_SEEDS, DEFAULT_SET

if TYPE_CHECKING:
    from contentgen.api import Likeness as LikenessReport

    from .evaluation import Evaluation  # it imports the face models: only where a run needs them

RECORD_FILE = "evaluation.json"
EVALUATION_KIND = LORA_EVALUATION.kind  # the kind a re-evaluation is in a cluster, estimated as it is
CLAIM_FILE = "claim.json"
MAX_SEEDS = 4
CLAIM_ATTEMPTS = 20


class NotEvaluable(ValueError):
    """The version cannot be evaluated (not a LoRA, no such version, no weights); says why."""


@dataclass(frozen=True)
class Target:
    """The version to evaluate, and how."""

    uid: str
    owner: str
    namespace: str
    name: str
    version: int
    trigger_word: str
    model_uri: str
    dataset_uri: str
    provider: str
    plan: Plan
    evaluations: tuple[dict[str, Any], ...] = ()  # the recorded ones, oldest first

    @property
    def prefix(self) -> str:
        return keys.lora_version(self.owner, self.uid, self.version) + "likeness/"

    def folder(self, number: int) -> str:
        return keys.likeness_evaluation(self.owner, self.uid, self.version, number)

    def same_request(self, entry: dict[str, Any]) -> bool:
        return (entry.get("provider"), entry.get("promptSet"), list(entry.get("seeds") or [])) == (
            self.provider,
            self.plan.prompt_set,
            list(self.plan.seeds),
        )


def check_plan(prompt_set: str | None, seeds: list[int] | None) -> Plan:
    """The plan asked for; ValueError naming the option and what to do."""
    chosen = prompt_set or DEFAULT_SET
    if chosen not in LIKENESS_PROMPT_SETS:
        raise ValueError(
            f"prompt set: no set {chosen!r}; use one of {', '.join(sorted(LIKENESS_PROMPT_SETS))}"
        )
    picked = tuple(seeds) if seeds else DEFAULT_SEEDS
    if len(picked) > MAX_SEEDS or len(set(picked)) != len(picked):
        raise ValueError(f"seeds: 1 to {MAX_SEEDS} different seeds, got {list(picked)}")
    if any(not 0 <= seed <= 2**31 - 1 for seed in picked):
        raise ValueError(f"seeds: each from 0 to {2**31 - 1}, got {list(picked)}")
    return Plan(chosen, picked)


def target(
    doc: dict[str, Any], version: int | None, provider: str | None, plan: Plan, *, draws: bool = True
) -> Target:
    """The version `version` (default: the newest usable one) of a LoRA record (current shape);
    `provider` defaults to the one that trained it (offline stays offline). `draws`: the evaluation
    draws its pictures (not a scoring of pictures made elsewhere), which a video LoRA's cannot be."""
    if not makes_loras(doc.get("kind")):
        raise NotEvaluable(f"{doc['_id']} is a {doc.get('kind')}: only a LoRA's versions are evaluated")
    versions = doc.get("versions") or []
    if not versions:
        raise NotEvaluable(f"{doc['_id']} has no usable version to evaluate")
    number = version if version is not None else int(versions[-1]["version"])
    entry = numbered(versions, number)
    if entry is None:
        usable = ", ".join(f"v{v['version']}" for v in versions)
        raise NotEvaluable(f"version: {doc['_id']} has no usable version {number} (usable: {usable})")
    if not entry.get("modelUri"):
        raise NotEvaluable(f"version: v{number} of {doc['_id']} names no weights (modelUri)")
    if not entry.get("datasetUri"):
        raise NotEvaluable(
            f"version: v{number} of {doc['_id']} names no dataset archive to take the faces from"
        )
    base = str(entry.get("baseModel") or "")
    if draws and base_model(base).video:
        raise NotEvaluable(not_drawn_for(f"v{number} of {doc.get('namespace')}/{doc.get('name')}", base))
    trained_by = str(entry.get("provider") or doc.get("provider") or OFFLINE.name)
    return Target(
        uid=str(doc["_id"]),
        owner=str(doc["owner"]),
        namespace=str(doc.get("namespace", "")),
        name=str(doc.get("name", "")),
        version=number,
        trigger_word=str(entry.get("triggerWord") or doc.get("triggerWord") or ""),
        model_uri=str(entry["modelUri"]),
        dataset_uri=str(entry["datasetUri"]),
        provider=provider or trained_by,
        plan=plan,
        evaluations=tuple(entry.get("evaluations") or ()),
    )


@dataclass(frozen=True)
class Estimate:
    usd: float
    detail: str
    lines: list[UsageLine]
    baseline_cached: bool


def estimate(store: ObjectStore, goal: Target, prices: PriceTable) -> Estimate:
    """What the evaluation bills at most (the baseline only when it is not stored yet), estimated
    as the operator estimates the LoraEvaluation of the same spec: a provider's pictures, or on
    the cluster's own GPUs, their GPU time."""
    spec = {
        "provider": goal.provider,
        "evaluation": {"promptSet": goal.plan.prompt_set, "seeds": list(goal.plan.seeds)},
    }
    cached = estimate_baseline_cached(store, EVALUATION_KIND, spec)
    lines = expected_usage(EVALUATION_KIND, spec, prices, baseline_cached=cached)
    usd, detail = priced(lines, prices)
    return Estimate(usd, detail, lines, cached)


def _scan(store: ObjectStore, goal: Target) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    """The re-evaluations of the version that finished in the store (their record, by number), and
    the numbers claimed (by whom)."""
    found: dict[int, dict[str, Any]] = {}
    claimed: dict[int, str] = {}
    for info in store.list(goal.prefix):
        folder, _, name = info.key.removeprefix(goal.prefix).partition("/")
        if not (folder.startswith("e") and folder[1:].isdigit()):
            continue
        if name == CLAIM_FILE:
            claimed[int(folder[1:])] = str(json.loads(store.get_bytes(info.key)).get("claimant") or "")
        if name == RECORD_FILE:
            record = json.loads(store.get_bytes(info.key))
            written = {
                "uri": store.uri(info.key),
                "sizeBytes": info.size_bytes,
                "contentType": "application/json",
            }
            record["artifacts"] = [*(record.get("artifacts") or []), written]
            found[int(folder[1:])] = record
    return found, claimed


def finished(store: ObjectStore, goal: Target) -> dict[int, dict[str, Any]]:
    """The re-evaluations of the version that finished in the store, by number."""
    return _scan(store, goal)[0]


def unrecorded(store: ObjectStore, goal: Target) -> list[dict[str, Any]]:
    """Finished re-evaluations the record does not hold (their record was not written), oldest first."""
    recorded = {int(e.get("evaluation") or 0) for e in goal.evaluations}
    done = finished(store, goal)
    return [done[n] for n in sorted(done) if n not in recorded]


def claim_object(store: ObjectStore, folder: str) -> list[dict[str, Any]]:
    """The claim of the evaluation stored under `folder`, as one of its objects (usage counts it)."""
    info = store.head(folder + CLAIM_FILE)
    if info is None:
        return []
    sha = {"sha256": info.sha256} if info.sha256 else {}
    return [
        {"uri": store.uri(info.key), "sizeBytes": info.size_bytes, **sha, "contentType": "application/json"}
    ]


def claim(store: ObjectStore, goal: Target, claimant: str) -> int:
    """The number `claimant` evaluates the version under: its own claim that has not finished (an
    attempt stopped before it finished is resumed under its number, with its checkpoints), else one
    more than the highest finished, recorded or claimed one, claimed where no other writer has (of
    claimants racing for a number, one gets it and the others the next)."""
    for _ in range(CLAIM_ATTEMPTS):
        done, claimed = _scan(store, goal)
        mine = [n for n, who in claimed.items() if who == claimant and n not in done]
        if mine:
            return max(mine)
        recorded = {int(e.get("evaluation") or 0) for e in goal.evaluations}
        number = max(recorded | set(done) | set(claimed), default=0) + 1
        data = json.dumps({"claimant": claimant}).encode()
        try:
            store.put_bytes(goal.folder(number) + CLAIM_FILE, data, "application/json", if_absent=True)
        except KeyTaken:
            continue  # another claimant took it between the look and the write: the next one
        return number
    raise TransientError(
        f"could not claim an evaluation number for v{goal.version} of {goal.uid}: {CLAIM_ATTEMPTS} other "
        "claims came first; try again",
        reason="StoreUnavailable",
    )


def finished_claim(store: ObjectStore, goal: Target, claimant: str) -> dict[str, Any] | None:
    """The finished re-evaluation `claimant` claimed (its attempt stored it, then stopped before
    handing it over): taken as it is, never made again."""
    done, claimed = _scan(store, goal)
    mine = [n for n, who in claimed.items() if who == claimant and n in done]
    return done[max(mine)] if mine else None


def subject_faces(
    store: ObjectStore, goal: Target, work: Path
) -> tuple[tuple[list[str], Any], dict[str, Any] | None]:
    """The subject's dataset faces: faces.json beside the dataset archive, or, for a version
    trained before it was kept, computed from the archive and then stored there (once). Returns
    the faces and, when it stored faces.json, its artifact (wire)."""
    from .faces import FACES_FILE, faces_document, faces_from_archive, read_faces

    archive_key = store.key_of(goal.dataset_uri)
    faces_key = archive_key.rpartition("/")[0] + "/" + FACES_FILE
    if store.exists(faces_key):
        try:
            return read_faces(json.loads(store.get_bytes(faces_key))), None
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
    archive = store.get_file(archive_key, work / "dataset.zip")
    embeddings = faces_from_archive(archive)
    data = json.dumps(faces_document(embeddings)).encode()
    stored = store.put_once_bytes(faces_key, data, "application/json")
    return read_faces(json.loads(data)), stored.wire()


def run(
    generator: ImageGenerator,
    store: ObjectStore,
    goal: Target,
    number: int,
    work: Path,
    progress: Callable[[float], None],
    billed: list[UsageLine],
    *,
    presign_seconds: int,
    prices: PriceTable,
    by: str,
    at: datetime,
    checkpoints: str = "",
    resource: dict[str, str] | None = None,
    stamp: Callable[[list[UsageLine]], list[UsageLine]] | None = None,
) -> dict[str, Any]:
    """Evaluate `goal` as re-evaluation `number` and store it (write-once, under its own keys);
    returns its record (what `evaluation.json` holds; catalog/evaluations.py records it).
    `billed` grows by each picture's usage as it returns. `checkpoints`: the uid whose
    `temp/{uid}/checkpoints/` keeps each picture's provider checkpoint (default the LoRA's; a
    LoraEvaluation's own, where its deletion cancels what is in flight). `resource`: the
    LoraEvaluation that asked (kind, namespace, name, uid), whose own record counts the cost.
    `stamp`: prices the billed lines (the provider's pricing API, as a run's usage is priced), so
    the record's cost is the one its run reports; else the table prices them."""
    work.mkdir(parents=True, exist_ok=True)
    subject, faces_artifact = subject_faces(store, goal, work)
    evaluation = _evaluated(
        generator,
        store,
        goal,
        number,
        work,
        progress,
        billed,
        subject,
        presign_seconds,
        checkpoints or goal.uid,
    )
    folder = goal.folder(number)
    likeness, stored = _stored_likeness(store, folder, evaluation, goal.plan)
    if stamp is not None:
        billed[:] = stamp(list(billed))
    faces = [faces_artifact] if faces_artifact else []
    artifacts = [*(a.wire() for a in stored), *faces, *claim_object(store, folder)]
    record = _record(
        goal, number, by, at, billed, prices, likeness.wire(), artifacts, faces_artifact is not None
    )
    if resource is not None:
        record["resource"] = dict(resource)
    written = store.put_once_bytes(
        folder + RECORD_FILE, json.dumps(record, indent=1).encode(), "application/json"
    )
    record["artifacts"].append(written.wire())
    return record


def _evaluated(
    generator: ImageGenerator,
    store: ObjectStore,
    goal: Target,
    number: int,
    work: Path,
    progress: Callable[[float], None],
    billed: list[UsageLine],
    subject: tuple[list[str], Any],
    presign_seconds: int,
    uid: str,
) -> Evaluation:
    """The evaluation's pictures drawn with the LoRA and judged against the subject's faces, each
    picture's provider checkpoint and file kept under `uid`'s keys for this evaluation."""
    from contentgen.providers.base import LoraWeights

    from ..context import StoreCheckpoint, StoreFiles
    from ..links import provider_url
    from .evaluation import run_evaluation

    weights = LoraWeights(url=provider_url(goal.model_uri, store, presign_seconds))
    named = f"likeness-v{goal.version}-e{number}-{goal.plan.prompt_set}"
    kept = keys.pictures_made(uid, goal.version) + f"likeness-e{number}-{goal.plan.prompt_set}"
    return run_evaluation(
        generator,
        store,
        goal.plan,
        goal.trigger_word,
        weights,
        subject,
        work / "pictures",
        progress,
        lambda name: StoreCheckpoint(store, keys.checkpoint(uid, f"{named}-{name}")),
        billed,
        kept_in=lambda name: StoreFiles(store, f"{kept}-{name}/"),
    )


def _stored_likeness(
    store: ObjectStore, folder: str, evaluation: Evaluation, plan: Plan
) -> tuple[LikenessReport, list[Artifact]]:
    """The evaluation's grid and scores stored under `folder`; its report, and their artifacts."""
    from .evaluation import report

    grid = store.put_once_file(folder + "likeness-grid.jpg", evaluation.grid, "image/jpeg")
    scores = store.put_once_bytes(
        folder + "likeness.json",
        json.dumps(evaluation.likeness.as_dict(), indent=1).encode(),
        "application/json",
    )
    return report(evaluation.likeness, plan, grid.uri, scores.uri), [grid, scores]


def _record(
    goal: Target,
    number: int,
    by: str,
    at: datetime,
    billed: list[UsageLine],
    prices: PriceTable,
    likeness: dict[str, Any],
    artifacts: list[dict[str, Any]],
    faces_recomputed: bool,
) -> dict[str, Any]:
    """The re-evaluation's record (what `evaluation.json` holds), its billed lines priced."""
    usd, detail = priced(billed, prices)
    return {
        "evaluation": number,
        "version": goal.version,
        "at": at.isoformat().replace("+00:00", "Z"),
        "by": by,
        "provider": goal.provider,
        "promptSet": goal.plan.prompt_set,
        "seeds": list(goal.plan.seeds),
        "facesRecomputed": faces_recomputed,
        "usage": [line.wire() for line in billed],
        "costUsd": usd,
        "costDetail": detail[:1024],
        "likeness": likeness,
        "artifacts": artifacts,
    }
