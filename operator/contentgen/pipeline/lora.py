"""LoraTraining: fetch → scenes and frames → dataset (gated by minFrames) → captions → upload →
train → store a versioned model.

Nothing is uploaded or paid for before the dataset passes its gates: whose face it shows
(`SubjectAmbiguous`, `SubjectNotFound`: then only a sheet of the people found is stored, for the
user to choose from) and how many images it has (`DatasetTooSmall`). With
`captioning: auto` every image is described by the provider's vision model before the
archive is written, checkpointed per image; training starts only when all of them are.

A trainer that stores checkpoints as it trains (provider cluster; offline simulates it) is handed
the likeness watch (likeness/watch.py): each checkpoint is scored as soon as it is stored, and the
training stops early on a likeness plateau, a budget or a person's stop, keeping its best-scoring
checkpoint so far as the version's model. `training.continueFrom` goes on from an earlier
version's stored state.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from contentgen.api import (
    Artifact,
    Captioning,
    CheckpointLikeness,
    Likeness,
    LoraTrainingSpec,
    LoraVersion,
    RunResult,
    UsageLine,
    now,
)
from contentgen.api.base_models import DEFAULT_BASE_MODEL, likeness_model
from contentgen.api.lora import ContinuedFrom, LossPoint, TrainingStop, loss_curve
from contentgen.api.lora.plan import TrainingPlan, plan_of
from contentgen.api.providers import provider_entry
from contentgen.errors import ContentgenError, InvalidInput
from contentgen.files import sha256_file
from contentgen.pricing import caption_usage, gpu_usage, training_usage
from contentgen.pricing.kinds.lora_training import KIND as TRAINING_PRICE
from contentgen.providers import captioner, continuing, image_generator, trainer
from contentgen.providers.base import (
    Captioner,
    CaptionRequest,
    Continued,
    LoraTrainer,
    LoraWeights,
    TrainedCheckpoint,
    TrainingOutput,
    TrainingRequest,
)
from contentgen.providers.watch import NothingToKeep
from contentgen.store import keys
from contentgen.store.results import version_result

from . import video_lora
from .context import RunContext, StoreCheckpoint, StoreFiles
from .dataset import LocalDataset, SubjectAmbiguous, apply_captions, build_dataset, template_caption
from .fetch import Fetched, still_picture
from .likeness.checkpoints import SIMULATED, Choice, Scored, choose, spread
from .likeness.evaluation import Candidate, Evaluation, curve_point, draw_checkpoint_grid
from .likeness.evaluation import report as likeness_report
from .likeness.faces import FACES_FILE
from .likeness.plan import Plan
from .likeness.stopping import budget_cap, saved
from .likeness.watch import LikenessWatch, provider_lora, run_scored, store_evaluation
from .links import provider_url
from .progress import Stages, SubProgress

log = logging.getLogger(__name__)

# the stages in order, and each one's share of the run's progress
STAGES = Stages(
    ("fetch", 8),
    ("dataset", 37),
    ("captions", 3),
    ("upload-dataset", 2),
    ("train", 38),
    ("store-model", 2),
    ("evaluate", 10),
)


def run_lora(ctx: RunContext) -> RunResult:
    spec = _spec(ctx)
    plan = plan_of(spec, ctx.provider)  # the training's, once: a base model the table lacks refused here
    provider = trainer(ctx.provider)  # fails at once when a live provider has no key
    describer = captioner(ctx.provider) if spec.dataset.captioning == "auto" else None
    continued = _continued(ctx, spec, plan)  # refused in one line before anything is fetched or paid
    source, references = _fetch(ctx, spec)
    dataset = _build_dataset(ctx, spec, plan, source, references)
    billed = _caption(ctx, spec, dataset, describer)
    uploaded = _upload_dataset(ctx, spec, dataset)
    trained, watch = _train(ctx, spec, plan, provider, dataset, billed, continued)
    stored = _store_model(ctx, spec, plan, trained, uploaded, dataset)
    evaluated = _evaluate_version(ctx, spec, plan, trained, dataset, stored.model, watch)
    stored = _store_chosen_model(ctx, plan, stored, evaluated.chosen, trained)
    stopped = _stopped(ctx, spec, trained, watch)
    if watch is not None:  # the live view's last word: the curve as the version has it, the stop
        ctx.live.report(watch.live(stopped), now_=True)
    return _lora_result(
        ctx, spec, plan, provider.name, dataset, trained, uploaded, stored, evaluated, stopped
    )


@dataclass(frozen=True)
class _Uploaded:
    """The dataset as stored under the version: its pictures and captions, archive, sheet, faces."""

    uris: dict[Path, str]  # each image's stored picture
    pictures: list[Artifact]  # the images and captions: objects of the version like the rest
    archive: Artifact
    sheet: Artifact | None
    faces: Artifact | None  # the subject's face embeddings, for the likeness evaluation


@dataclass(frozen=True)
class _StoredModel:
    """What the store-model stage wrote: the model unless checkpoints are scored first (None until
    one is chosen), and the version's other objects so far."""

    prefix: str
    model: Artifact | None
    artifacts: list[Artifact]  # all but the model and the last step's LoRA
    config_uri: str
    loss_uri: str
    loss_points: list[LossPoint]
    final: Artifact | None = None  # the last step's LoRA, where another checkpoint is the model


@dataclass(frozen=True)
class _Evaluated:
    """The version's likeness, the objects its evaluation stored, and the checkpoint chosen as its
    model (None without checkpoints)."""

    likeness: Likeness | None
    artifacts: list[Artifact]
    chosen: TrainedCheckpoint | None


def _spec(ctx: RunContext) -> LoraTrainingSpec:
    spec = ctx.snapshot.parsed_spec(local=ctx.local)
    assert isinstance(spec, LoraTrainingSpec)
    if ctx.snapshot.version < 1:
        raise ValueError("a LoraTraining run needs the version it trains (1, 2, ...)")
    return spec


def _fetch(ctx: RunContext, spec: LoraTrainingSpec) -> tuple[Fetched, list[tuple[Path, str]]]:
    """The source video (refused where it is a still picture) and the subject's reference images."""
    with ctx.stage(STAGES, "fetch") as span:
        source = ctx.fetch_source(spec.source.url, span)
        with source.path.open("rb") as head:
            if still := still_picture(head.read(16)):
                raise InvalidInput(
                    f"source.url: {source.path.name} is a {still} picture, not a video: give a video "
                    "of the person (pictures of them go in dataset.subject.referenceImages)"
                )
        return source, _fetch_references(ctx, spec)


def _build_dataset(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    plan: TrainingPlan,
    source: Fetched,
    references: list[tuple[Path, str]],
) -> LocalDataset:
    with ctx.stage(STAGES, "dataset") as span:
        try:
            dataset = build_dataset(
                source.path,
                spec.dataset,
                spec.trigger_word,
                ctx.scratch("dataset"),
                span,
                max_seconds=ctx.settings.max_video_seconds,
                reference_images=references,
                least=video_lora.least_stills(plan),
            )
        except SubjectAmbiguous as unclear:  # and SubjectNotFound: show the user who is there
            raise unclear.located(_people_sheet(ctx, spec, unclear)) from None
        stored = keys.dataset_version(spec.owner, ctx.snapshot.uid, ctx.snapshot.version)
        kept = video_lora.stored_clips(ctx.store, stored)
        video_lora.add_clips(dataset, source.path, spec, plan, lambda _: None, kept)
        return dataset


def _people_sheet(ctx: RunContext, spec: LoraTrainingSpec, unclear: SubjectAmbiguous) -> str:
    """The sheet of the people found, stored under the version: its URI."""
    key = (
        keys.dataset_version(spec.owner, ctx.snapshot.uid, ctx.snapshot.version)
        + f"people-{sha256_file(unclear.contact_sheet)[:16]}.jpg"
    )
    if ctx.store.exists(key):  # the same failure again: the same sheet, stored already
        return ctx.store.uri(key)
    return ctx.store.put_file(key, unclear.contact_sheet, "image/jpeg").uri


def _caption(
    ctx: RunContext, spec: LoraTrainingSpec, dataset: LocalDataset, describer: Captioner | None
) -> list[UsageLine]:
    """With captioning: auto, each image described by the provider's vision model. What the
    provider billed so far: the captions' (none without a describer)."""
    billed: list[UsageLine] = []
    if describer is None:
        return billed
    with ctx.stage(STAGES, "captions") as span, ctx.paying(billed):
        stills = tuple(image.path for image in dataset.images)
        out = describer.caption_images(
            CaptionRequest(images=(*stills, *video_lora.caption_frames(dataset))),
            ctx.scratch("captions"),
            span,
            # one per resource: a later run of the same images (a new version after a failed
            # one) delivers the captions already paid for (each is fingerprinted by its image)
            StoreCheckpoint(ctx.store, keys.checkpoint(ctx.snapshot.uid, "captions"), earlier="captions"),
            billed=lambda item, request: billed.extend(caption_usage(describer.name, item, [request])),
        )
        ctx.usage = list(billed)
        clips, described = spec.dataset.clips, out.descriptions[len(stills) :]
        video_lora.apply_clip_captions(
            dataset, [template_caption(clips.caption_template, spec.trigger_word, d) for d in described]
        )
        apply_captions(
            dataset,
            [
                template_caption(spec.dataset.caption_template, spec.trigger_word, d)
                for d in out.descriptions[: len(stills)]
            ],
            Captioning(
                mode="auto",
                provider=describer.name,
                model=out.model,
                placeholder=out.placeholder,
                cost_usd=out.cost_usd,
            ),
        )
    return billed


def _upload_dataset(ctx: RunContext, spec: LoraTrainingSpec, dataset: LocalDataset) -> _Uploaded:
    with ctx.stage(STAGES, "upload-dataset") as span:
        prefix = keys.dataset_version(spec.owner, ctx.snapshot.uid, ctx.snapshot.version)
        uris: dict[Path, str] = {}
        pictures: list[Artifact] = []
        total = max(1, 2 * len(dataset.images))
        for i, image in enumerate(dataset.images):
            stem = image.path.stem
            picture = ctx.store.put_once_file(f"{prefix}images/{stem}.jpg", image.path, "image/jpeg")
            uris[image.path] = picture.uri
            caption = ctx.store.put_once_file(
                f"{prefix}captions/{stem}.txt", image.caption_path, "text/plain; charset=utf-8"
            )
            pictures += [picture, caption]
            span(100.0 * (2 * i + 2) / total)
        pictures += video_lora.put_clips(ctx.store, prefix, dataset)
        archive = ctx.store.put_once_file(f"{prefix}dataset.zip", dataset.archive, "application/zip")
        sheet = _put_contact_sheet(ctx, prefix, dataset)
        # the subject's face embeddings, for the likeness evaluation (never computed again)
        faces = (
            ctx.store.put_once_file(f"{prefix}{FACES_FILE}", dataset.faces, "application/json")
            if dataset.faces is not None
            else None
        )
    return _Uploaded(uris=uris, pictures=pictures, archive=archive, sheet=sheet, faces=faces)


def _continued(ctx: RunContext, spec: LoraTrainingSpec, plan: TrainingPlan) -> Continued | None:
    """training.continueFrom: an earlier version of this resource, trained by the run's provider,
    whose stored states the trainer goes on from; refused in one line where it cannot be (the
    trainer refuses a state of another base model, rank, targets, optimizer or memory plan)."""
    asked = spec.training.continue_from
    if asked is None:
        return None
    owner, uid, version = spec.owner, ctx.snapshot.uid, ctx.snapshot.version
    field = f"training.continueFrom: version {asked.version}"
    if asked.version >= version:
        raise InvalidInput(
            f"{field} is not an earlier version of this LoraTraining (this run makes version {version})"
        )
    result = version_result(ctx.store, ctx.snapshot.kind_info.catalog_type, owner, uid, asked.version)
    if result is None or result.lora is None:
        raise InvalidInput(f"{field} has no stored result: it did not finish, or was deleted")
    if result.lora.provider != ctx.provider:
        raise InvalidInput(
            f"{field} was trained by provider {result.lora.provider}: a training goes on only on the "
            f"provider that trained it ({ctx.provider} here)"
        )
    _kept(ctx, plan, result.lora, field)
    files = StoreFiles(ctx.store, keys.lora_version(owner, uid, asked.version) + "checkpoints/")
    if not any(name.endswith((".pt", ".state.json")) for name in files.names()):  # the cluster's, offline's
        raise InvalidInput(f"{field} kept no training state to go on from")
    return Continued(asked.version, files, asked.step)


def _kept(ctx: RunContext, plan: TrainingPlan, version: LoraVersion, field: str) -> None:
    """Refused in one line where this spec changes what the continued version's state is, as its
    config.json and record say (providers/continuing.py): the base model (and a staged model
    training.model names), rank, targets, optimizer, and a memory plan the spec names."""
    config: dict[str, Any] = {}
    if version.config_uri and ctx.store.owns(version.config_uri):
        config = json.loads(ctx.store.get_bytes(ctx.store.key_of(version.config_uri)))
    said = {"rank": "rank", "lora_targets": "loraTargets", "optimizer": "optimizer"}
    was: dict[str, Any] = {name: config[key] for key, name in said.items() if key in config}
    now: dict[str, Any] = {"rank": plan.rank, "loraTargets": plan.lora_targets, "optimizer": plan.optimizer}
    if plan.staged and "base_model" in config:
        was["baseModel"], now["baseModel"] = config["base_model"], plan.staged
    else:
        was["baseModel"], now["baseModel"] = version.base_model or DEFAULT_BASE_MODEL, plan.base.name
    if plan.memory_plan != "auto" and "memory_plan" in config:
        was["memoryPlan"], now["memoryPlan"] = config["memory_plan"], plan.memory_plan
    continuing.check(field, continuing.compare(was, now))


def _train(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    plan: TrainingPlan,
    provider: LoraTrainer,
    dataset: LocalDataset,
    billed: list[UsageLine],
    continued: Continued | None = None,
) -> tuple[TrainingOutput, LikenessWatch | None]:
    """The training, and the watch it was handed where its trainer trains live (none: fal)."""
    owner, uid, version = spec.owner, ctx.snapshot.uid, ctx.snapshot.version
    watch = _watch(ctx, spec, dataset, billed) if provider_entry(ctx.provider).trains_live else None
    with ctx.stage(STAGES, "train") as span:
        # one per resource, fingerprinted by the dataset and the training's inputs: a later run
        # with the same ones resumes the training already paid for instead of paying again
        checkpoint = StoreCheckpoint(ctx.store, keys.checkpoint(uid, "lora"), earlier="lora")
        with ctx.paying(billed):
            try:
                trained = provider.train_lora(
                    TrainingRequest(
                        dataset_zip=dataset.archive,
                        trigger_word=spec.trigger_word,
                        plan=plan,
                        clips=len(dataset.clips),
                        frames=len(dataset.images),
                        # write-once under the version: a retried pod resumes from the newest
                        checkpoints=StoreFiles(
                            ctx.store, keys.lora_version(owner, uid, version) + "checkpoints/"
                        ),
                        watch=watch,
                        continue_from=continued,
                    ),
                    ctx.scratch("train"),
                    span,
                    checkpoint,
                )
            except NothingToKeep as stopped:  # billed for the steps it ran, and the pictures drawn
                held = stopped.gpu_seconds
                ran = (
                    gpu_usage(provider.name, TRAINING_PRICE.item, held, stopped.request_id)
                    if held is not None
                    else []
                )
                ctx.usage = billed + ran + (watch.billed if watch is not None else [])
                raise
        if trained.gpu_seconds is not None:  # the GPU time it held, not a provider's bill
            gpus = trained.gpus if trained.gpus > 1 else None  # several: its wall time said apart
            ctx.usage = billed + gpu_usage(
                provider.name, TRAINING_PRICE.item, trained.gpu_seconds, trained.request_id, gpus=gpus
            )
        else:  # the steps it ran (a stopped training's, not the spec's)
            steps = _steps_ran(spec, trained)
            ctx.usage = billed + training_usage(provider.name, plan.app, steps, trained.request_id)
    return trained, watch


def _watch(
    ctx: RunContext, spec: LoraTrainingSpec, dataset: LocalDataset, billed: list[UsageLine]
) -> LikenessWatch:
    """The likeness watch of a trainer that trains live: scoring where the evaluation runs, the
    budget it stops within (the run's captions counted in it): the spec's maxCostUsd, or what the
    monthly budgets left the run when it started, whichever is less."""
    scoring = _evaluates(ctx.snapshot.skip_evaluation, spec, dataset)
    spent = sum(
        ctx.settings.prices.price(line.provider, line.item, line.unit) * line.quantity for line in billed
    )
    cap, whose = budget_cap(spec.training.stop_when, ctx.snapshot.budget)
    return LikenessWatch(
        ctx, spec, dataset.faces if scoring else None, cap_usd=cap, cap_whose=whose, spent_before_usd=spent
    )


def _store_model(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    plan: TrainingPlan,
    trained: TrainingOutput,
    uploaded: _Uploaded,
    dataset: LocalDataset,
) -> _StoredModel:
    """The paid output first: the LoRA, its config and loss curve. Where the trainer stored
    checkpoints and they are scored, the version's model is the best-scoring one, known only once
    they are: its model.safetensors is written after them. The last step's LoRA is in the store
    already (checkpoints/), whatever happens meanwhile."""
    scoring = bool(trained.checkpoints) and _evaluates(ctx.snapshot.skip_evaluation, spec, dataset)
    with ctx.stage(STAGES, "store-model"), ctx.storing_paid_output("the LoRA weights"):
        prefix = keys.lora_version(spec.owner, ctx.snapshot.uid, ctx.snapshot.version)
        model, artifacts = None, []
        if not scoring:
            model = ctx.store.put_once_file(
                f"{prefix}model.safetensors", trained.weights, "application/octet-stream"
            )
            artifacts = _lora_files(ctx, plan, prefix, trained.weights, trained.low_noise_weights)
        config_uri = ""
        if trained.config is not None:
            config = ctx.store.put_once_file(f"{prefix}config.json", trained.config, "application/json")
            artifacts.append(config)
            config_uri = config.uri
        loss_uri, loss_points = "", []
        if trained.loss is not None:
            loss_points = loss_curve(
                [(int(s), float(v)) for s, v in json.loads(trained.loss.read_text())["steps"]]
            )
            curve = ctx.store.put_once_file(f"{prefix}training-loss.json", trained.loss, "application/json")
            artifacts.append(curve)
            loss_uri = curve.uri
        artifacts += [uploaded.archive, *uploaded.pictures]
        if uploaded.sheet is not None:
            artifacts.append(uploaded.sheet)
        if uploaded.faces is not None:
            artifacts.append(uploaded.faces)
    return _StoredModel(prefix, model, artifacts, config_uri, loss_uri, loss_points)


def _evaluate_version(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    plan: TrainingPlan,
    trained: TrainingOutput,
    dataset: LocalDataset,
    model: Artifact | None,
    watch: LikenessWatch | None = None,
) -> _Evaluated:
    """The version's likeness evaluation; the checkpoint chosen as its model is the last, unless its
    checkpoints are scored (the model not stored yet): by the watch as the training stored them,
    where its trainer trains live."""
    chosen = max(trained.checkpoints, key=lambda c: c.step, default=None)
    if ctx.snapshot.skip_evaluation:  # the budget covers the training only (controller/budget.py)
        skipped = Likeness(
            verdict="skipped",
            reasons=[ctx.snapshot.skip_evaluation],
            prompt_set=spec.evaluation.prompt_set,
            seeds=list(spec.evaluation.seeds),
        )
        return _Evaluated(skipped, [], chosen)
    if not spec.evaluation.enabled:
        return _Evaluated(None, [], chosen)
    if plan.base.video and model is not None:  # no checkpoints its trainer scored (fal's)
        return _Evaluated(video_lora.skipped_likeness(spec, plan), [], chosen)
    with ctx.stage(STAGES, "evaluate") as span:
        billed = list(ctx.usage or [])
        if model is None:
            scored = _evaluate_checkpoints(
                ctx,
                spec,
                trained,
                dataset,
                span,
                billed,
                simulated=trained.placeholder,
                watch=watch,
                video=plan.base.video,
            )
            return _Evaluated(*scored)
        likeness, artifacts = _evaluate(ctx, spec, model, dataset, span, billed)
        return _Evaluated(likeness, artifacts, chosen)


def _store_chosen_model(
    ctx: RunContext,
    plan: TrainingPlan,
    stored: _StoredModel,
    chosen: TrainedCheckpoint | None,
    trained: TrainingOutput,
) -> _StoredModel:
    """The version with its model: stored already, or the chosen checkpoint's LoRA, once everything
    that chose it is stored."""
    if stored.model is not None:
        return stored
    assert chosen is not None
    model, final, files = _store_chosen(ctx, plan, stored.prefix, chosen, trained)
    stored = replace(stored, artifacts=[*files, *stored.artifacts])
    return replace(stored, model=model, final=final)


def _lora_result(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    plan: TrainingPlan,
    provider: str,
    dataset: LocalDataset,
    trained: TrainingOutput,
    uploaded: _Uploaded,
    stored: _StoredModel,
    evaluated: _Evaluated,
    stopped: TrainingStop | None = None,
) -> RunResult:
    """The run's result: the version (LoraVersion), its objects (the model first) and the dataset's
    report."""
    model, final, chosen = stored.model, stored.final, evaluated.chosen
    assert model is not None
    lora = LoraVersion(
        version=ctx.snapshot.version,
        model_uri=model.uri,
        final_model_uri=(final.uri if final is not None else "") or model.uri,
        chosen_step=chosen.step if chosen is not None else None,
        config_uri=stored.config_uri,
        loss_uri=stored.loss_uri,
        training_loss=stored.loss_points,
        size_bytes=model.size_bytes,
        sha256=model.sha256,
        dataset_uri=uploaded.archive.uri,
        contact_sheet_uri=uploaded.sheet.uri if uploaded.sheet is not None else "",
        frames=len(dataset.images),
        provider=provider,
        trigger_word=spec.trigger_word,
        training_model=plan.app,
        base_model=plan.base.name,
        low_noise_model_uri=video_lora.low_noise_uri(ctx.store, stored.prefix, trained),
        steps=_steps_ran(spec, trained),
        planned_steps=spec.training.steps,
        memory_plan=str(trained.details.get("memoryPlan", "")),
        generation=ctx.snapshot.generation,
        created_at=now(),
        likeness=evaluated.likeness,
        stopped=stopped,
        continued_from=_continued_from(trained),
        state_uri=trained.state_uri,
        placeholder=trained.placeholder,  # the offline provider's: said on the version itself too
    )
    report = dataset.report(lambda path: uploaded.uris[path], uploaded.archive, uploaded.sheet)
    final_objects = [final] if final is not None else []
    return RunResult(
        kind=ctx.snapshot.kind,
        provider=provider,
        placeholder=trained.placeholder,
        artifacts=[model, *stored.artifacts, *evaluated.artifacts, *final_objects],
        version=ctx.snapshot.version,
        lora=lora,
        dataset=report,
    )


def _steps_ran(spec: LoraTrainingSpec, trained: TrainingOutput) -> int:
    """The steps it trained: where it stopped early, fewer than training.steps."""
    return trained.last_step - trained.first_step if trained.last_step else spec.training.steps


def _continued_from(trained: TrainingOutput) -> ContinuedFrom | None:
    """Where the training went on from, and what of its settings changed (applied) on the way."""
    went_on = trained.continued
    if went_on is None:
        return None
    return ContinuedFrom(
        version=went_on.version, step=went_on.step, state_uri=went_on.uri, changed=list(went_on.changed)
    )


def _stopped(
    ctx: RunContext, spec: LoraTrainingSpec, trained: TrainingOutput, watch: LikenessWatch | None
) -> TrainingStop | None:
    """Where and why the training stopped before its last step, and what that saved: the steps
    not run and the pictures of the checkpoints not scored, at the rates measured (the price
    table's imageSeconds for a picture where none was drawn)."""
    if trained.stopped is None or watch is None or watch.planned is None:
        return None
    planned, step = watch.planned.last_step, trained.last_step
    per_picture = [line.quantity * 3600 for line in watch.billed if line.unit == "gpu-hour"]
    seconds_per_picture = (
        sum(per_picture) / len(per_picture) if per_picture else ctx.settings.prices.cluster.image_seconds
    )
    pictures_left = sum(1 for s in watch.scored if s > step) * len(watch.plan.items())
    price = watch.usd_per_gpu_second(TRAINING_PRICE.item)
    kept = saved(step, planned, trained.seconds_per_step, pictures_left, seconds_per_picture, price)
    return TrainingStop(
        how=trained.stopped.how,
        step=step,
        planned_steps=planned,
        why=trained.stopped.why[:1024],
        by=trained.stopped.by[:256],
        steps_saved=kept.steps,
        gpu_seconds_saved=kept.gpu_seconds,
        saved_usd=kept.usd,
    )


def _evaluate(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    model: Artifact,
    dataset: LocalDataset,
    span: SubProgress,
    billed: list[UsageLine],
) -> tuple[Likeness, list[Artifact]]:
    """The new version's likeness evaluation (docs/likeness.md): its pictures paid like any
    generation (checkpointed per picture, in the run's usage as each returns). A version it
    cannot evaluate is still kept: the report says why."""
    plan = Plan(
        spec.evaluation.prompt_set, tuple(spec.evaluation.seeds), likeness_model(spec.training.base_model)
    )
    if dataset.faces is None:
        return Likeness(
            verdict="unmeasured",
            reasons=["the dataset has no face embeddings (faceFilter is off): nothing to compare with"],
            prompt_set=plan.prompt_set,
            seeds=list(plan.seeds),
        ), []
    try:
        weights = LoraWeights(url=provider_url(model.uri, ctx.store, ctx.settings.presign_seconds))
        with ctx.paying(billed):
            generator = image_generator(ctx.provider)
            [evaluation] = run_scored(
                ctx, spec, plan, [Candidate(weights)], dataset.faces, generator, billed, span
            )
    except InvalidInput as refused:  # e.g. a live provider cannot fetch the LoRA from a local store
        ctx.usage = list(billed)  # what it billed before (the refused call was not billed)
        return Likeness(
            verdict="skipped",
            reasons=[f"the evaluation could not run: {refused}"],
            prompt_set=plan.prompt_set,
            seeds=list(plan.seeds),
        ), []
    ctx.usage = list(billed)
    prefix = keys.lora_version(spec.owner, ctx.snapshot.uid, ctx.snapshot.version)
    with ctx.storing_paid_output("the likeness evaluation's pictures"):
        grid, report = store_evaluation(ctx, prefix, evaluation.grid, evaluation.likeness)
    return likeness_report(evaluation.likeness, plan, grid.uri, report.uri), [grid, report]


def _evaluates(skip: str, spec: LoraTrainingSpec, dataset: LocalDataset) -> bool:
    """Whether the version's evaluation scores pictures: on, not skipped by the budget, and with
    the subject's faces to score them against."""
    return spec.evaluation.enabled and not skip and dataset.faces is not None


def _evaluate_checkpoints(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    trained: TrainingOutput,
    dataset: LocalDataset,
    span: SubProgress,
    billed: list[UsageLine],
    *,
    simulated: bool = False,
    watch: LikenessWatch | None = None,
    video: bool = False,
) -> tuple[Likeness, list[Artifact], TrainedCheckpoint]:
    """The likeness of a training's checkpoints (docs/likeness.md#checkpoints): at most
    evaluation.checkpoints of them, each evaluated as a version is (the same prompts, seeds and
    baseline, each picture with a provider checkpoint of its own: likeness-v{n}-s{step}-...), and
    the checkpoint whose LoRA becomes the version's model. Where a watch scored them as the training
    stored them, those it scored (up to where the training stopped) and their pictures are taken
    from it, or from the store where an earlier attempt scored them. Where the evaluation cannot
    finish, the version is kept with its newest checkpoint's LoRA and the report says why.
    `simulated`: the offline provider's placeholder checkpoints, which the choice and the grid say.
    `video`: a video LoRA, whose clips only its training draws: its curve is what the watch scored."""
    plan = Plan(
        spec.evaluation.prompt_set, tuple(spec.evaluation.seeds), likeness_model(spec.training.base_model)
    )
    by_step = {c.step: c for c in trained.checkpoints}
    final = by_step[max(by_step)]
    steps, early = _to_score(ctx, spec, trained, watch, billed, plan)
    taken = _taken(watch, steps, billed)
    if video:
        steps = [s for s in steps if s in taken]
    if early is None and not steps:
        early = _none_scored(plan, final, trained)
    if early is not None:
        ctx.usage = list(billed)
        return early, [], final
    scored = [by_step[step] for step in steps]
    try:
        evaluations = _evaluations(ctx, spec, plan, scored, taken, dataset, billed, span)
    except Exception as failed:  # the trained LoRA is kept and usable whatever stopped its scoring
        log.warning("the checkpoints' likeness evaluation did not finish", exc_info=True)
        return _unscored(plan, final, failed), [], final
    ctx.usage = list(billed)
    return _chosen(ctx, spec, plan, trained, scored, evaluations, simulated)


def _to_score(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    trained: TrainingOutput,
    watch: LikenessWatch | None,
    billed: list[UsageLine],
    plan: Plan,
) -> tuple[list[int], Likeness | None]:
    """The checkpoints to score: those the watch scored as they were stored (its pictures billed),
    else evaluation.checkpoints spread over them; or the report where none can be."""
    by_step = {c.step: c for c in trained.checkpoints}
    final = by_step[max(by_step)]
    if watch is None or watch.planned is None:
        return spread(list(by_step), spec.evaluation.checkpoints), None
    billed += watch.billed
    if watch.failure is not None:
        return [], _unscored(plan, final, watch.failure)
    return [s for s in watch.scored if s in by_step], None


def _taken(watch: LikenessWatch | None, steps: list[int], billed: list[UsageLine]) -> dict[int, Evaluation]:
    """What the watch scored as the training went, in this process or read back from the store
    (an earlier attempt's, billed as its records say)."""
    if watch is None:
        return {}
    taken = {s: c.evaluation for s, c in watch.scorings.items() if c.evaluation is not None}
    taken |= watch.recalled(steps)
    billed += watch.kept_bills([s for s in steps if s in taken])
    return taken


def _evaluations(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    plan: Plan,
    scored: list[TrainedCheckpoint],
    taken: dict[int, Evaluation],
    dataset: LocalDataset,
    billed: list[UsageLine],
    span: SubProgress,
) -> list[Evaluation]:
    """Each checkpoint's evaluation: taken, or made now through the run's provider."""
    assert dataset.faces is not None
    left = [c for c in scored if c.step not in taken]
    candidates = [
        Candidate(provider_lora(ctx, c.uri), name=f"s{c.step}", title=f" step {c.step}") for c in left
    ]
    made: list[Evaluation] = []
    if candidates:
        with ctx.paying(billed):
            generator = image_generator(ctx.provider)
            made = run_scored(ctx, spec, plan, candidates, dataset.faces, generator, billed, span)
    found = {**taken, **{c.step: e for c, e in zip(left, made, strict=True)}}
    return [found[c.step] for c in scored]


def _chosen(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    plan: Plan,
    trained: TrainingOutput,
    scored: list[TrainedCheckpoint],
    evaluations: list[Evaluation],
    simulated: bool,
) -> tuple[Likeness, list[Artifact], TrainedCheckpoint]:
    """The curve, the checkpoint chosen (the best-scoring, docs/likeness.md#checkpoints), each
    stored once: every checkpoint's grid and report, the chosen one's as the version's, the
    checkpoints side by side, the curve."""
    prefix = keys.lora_version(spec.owner, ctx.snapshot.uid, ctx.snapshot.version)
    with ctx.storing_paid_output("the likeness evaluation's pictures"):
        points, artifacts = _store_each(ctx, prefix, scored, evaluations)
        stopped_at = trained.last_step if trained.stopped is not None else None
        choice = choose([Scored(p.step, p.verdict, p.median) for p in points], stopped_at)
        if simulated:
            choice = replace(choice, why=f"{choice.why} ({SIMULATED})")
        best = [c.step for c in scored].index(choice.step)
        curve = [p.model_copy(update={"chosen": p.step == choice.step}) for p in points]
        grid, report = store_evaluation(ctx, prefix, evaluations[best].grid, evaluations[best].likeness)
        side_by_side = _store_side_by_side(ctx, spec, prefix, plan, curve, evaluations, simulated)
        likeness = likeness_report(evaluations[best].likeness, plan, grid.uri, report.uri).model_copy(
            update={
                "checkpoints": curve,
                "chosen_step": choice.step,
                "final_step": choice.final,
                "choice": choice.why,
                "checkpoints_grid_uri": side_by_side.uri,
            }
        )
        written = _store_curve(ctx, prefix, choice, curve)
    return likeness, [*artifacts, side_by_side, grid, report, written], scored[best]


def _none_scored(plan: Plan, final: TrainedCheckpoint, trained: TrainingOutput) -> Likeness:
    """The report of a training that stopped before any checkpoint the evaluation scores: its
    newest checkpoint's LoRA is the version's model, unscored."""
    why = (
        f"the training stopped after step {trained.last_step}, before any checkpoint the evaluation "
        f"scores: its newest checkpoint's LoRA (step {final.step}) is the version's model, unscored"
    )
    return Likeness(
        verdict="skipped",
        reasons=[why],
        prompt_set=plan.prompt_set,
        seeds=list(plan.seeds),
        chosen_step=final.step,
        final_step=trained.last_step or final.step,
        choice=why,
    )


def _unscored(plan: Plan, final: TrainedCheckpoint, failed: Exception) -> Likeness:
    """The report of checkpoints whose evaluation did not finish: the last step's LoRA is the
    version's model, unscored, and why."""
    what = "could not run" if isinstance(failed, InvalidInput) else "failed"
    detail = str(failed) if isinstance(failed, ContentgenError) else f"{type(failed).__name__}: {failed}"
    why = f"the last step's LoRA (step {final.step}) is the version's model, unscored"
    return Likeness(
        verdict="skipped",
        reasons=[f"the checkpoints' evaluation {what}: {detail}; {why}"],
        prompt_set=plan.prompt_set,
        seeds=list(plan.seeds),
        chosen_step=final.step,
        final_step=final.step,
        choice=f"the checkpoints' evaluation {what}: {why}",
    )


def _store_each(
    ctx: RunContext, prefix: str, scored: Sequence[TrainedCheckpoint], evaluations: Sequence[Evaluation]
) -> tuple[list[CheckpointLikeness], list[Artifact]]:
    """Each checkpoint's grid and report under likeness/step-NNNNNN/, and its point of the curve."""
    artifacts: list[Artifact] = []
    points = []
    for checkpoint, evaluation in zip(scored, evaluations, strict=True):
        folder = f"{prefix}likeness/step-{checkpoint.step:06d}/"
        grid, report = store_evaluation(ctx, folder, evaluation.grid, evaluation.likeness)
        artifacts += [grid, report]
        points.append(curve_point(evaluation.likeness, checkpoint.step, checkpoint.uri, grid.uri, report.uri))
    return points, artifacts


def _store_side_by_side(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    prefix: str,
    plan: Plan,
    curve: Sequence[CheckpointLikeness],
    evaluations: Sequence[Evaluation],
    simulated: bool,
) -> Artifact:
    """The checkpoints' grids side by side, the run's choice starred. Written once, before anyone
    can promote another step: its title says whose choice the star is."""
    rows = [
        (f"step {p.step}{' *' if p.chosen else ''}\n{p.verdict}\n{_shown(p.median)}", e)
        for p, e in zip(curve, evaluations, strict=True)
    ]
    drawn_grid = draw_checkpoint_grid(
        ctx.scratch("likeness") / "likeness-checkpoints.jpg",
        rows,
        title=f"{spec.trigger_word}: {len(rows)} {'simulated ' if simulated else ''}checkpoints "
        f"(* the run's automatic choice); {plan.prompt_set}",
    )
    return ctx.store.put_once_file(f"{prefix}likeness-checkpoints.jpg", drawn_grid, "image/jpeg")


def _store_curve(
    ctx: RunContext, prefix: str, choice: Choice, curve: Sequence[CheckpointLikeness]
) -> Artifact:
    """likeness-curve.json: the choice and every checkpoint's point."""
    drawn = {"chosenStep": choice.step, "finalStep": choice.final, "choice": choice.why}
    drawn["checkpoints"] = [p.wire() for p in curve]
    return ctx.store.put_once_bytes(
        f"{prefix}likeness-curve.json", json.dumps(drawn, indent=1).encode(), "application/json"
    )


def _shown(median: float | None) -> str:
    """A checkpoint's median in its grid row: nothing measured is said, never drawn as a number."""
    return "no median" if median is None else f"median {median:.2f}"


def _store_chosen(
    ctx: RunContext, plan: TrainingPlan, prefix: str, chosen: TrainedCheckpoint, trained: TrainingOutput
) -> tuple[Artifact, Artifact | None, list[Artifact]]:
    """model.safetensors, the chosen checkpoint's LoRA, written once (and a Wan 2.2 pair's other
    file, and each in ComfyUI's layout); and the last step's LoRA where it is another one (it stays
    where the trainer stored it: finalModelUri)."""
    last = max(trained.checkpoints, key=lambda c: c.step)
    path, low, final = trained.weights, trained.low_noise_weights, None  # the trainer's: the last step's
    if chosen.step != last.step:
        scratch = ctx.scratch("chosen")
        path = ctx.store.get_file(ctx.store.key_of(chosen.uri), scratch / "model.safetensors")
        if chosen.low_noise_uri:
            low = ctx.store.get_file(
                ctx.store.key_of(chosen.low_noise_uri), scratch / "model-low-noise.safetensors"
            )
        final = Artifact(
            uri=last.uri,
            size_bytes=trained.weights.stat().st_size,
            sha256=sha256_file(trained.weights),
            content_type="application/octet-stream",
        )
    with ctx.storing_paid_output("the LoRA weights"):
        model = ctx.store.put_once_file(f"{prefix}model.safetensors", path, "application/octet-stream")
        files = _lora_files(ctx, plan, prefix, path, low)
    return model, final, files


def _lora_files(
    ctx: RunContext, plan: TrainingPlan, prefix: str, weights: Path, low: Path | None
) -> list[Artifact]:
    """A video LoRA's files beside its model.safetensors (video_lora.put_lora_files); none for a
    FLUX.1 LoRA's."""
    if not plan.base.video:
        return []
    return video_lora.put_lora_files(ctx.store, prefix, weights, low, ctx.scratch("lora-files"))


def _fetch_references(ctx: RunContext, spec: LoraTrainingSpec) -> list[tuple[Path, str]]:
    """dataset.subject.referenceImages, fetched like the source; errors name the field."""
    subject = spec.dataset.subject
    if not spec.dataset.face_filter or subject is None:
        return []
    fetched = []
    for number, url in enumerate(subject.reference_images):
        field = f"dataset.subject.referenceImages[{number}]"
        photo = ctx.fetch_source(url, lambda _: None, folder=f"reference-{number}", spec_field=field)
        fetched.append((photo.path, f"{field} ({Path(url).name or url})"))
    return fetched


def _put_contact_sheet(ctx: RunContext, prefix: str, dataset: LocalDataset) -> Artifact | None:
    if dataset.contact_sheet is None:
        return None
    return ctx.store.put_once_file(f"{prefix}contact-sheet.jpg", dataset.contact_sheet, "image/jpeg")
