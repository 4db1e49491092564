"""LoraTraining: fetch → scenes and frames → dataset (gated by minFrames) → captions → upload →
train → store a versioned model.

Nothing is uploaded or paid for before the dataset passes its gates: whose face it shows
(`SubjectAmbiguous`, `SubjectNotFound`: then only a sheet of the people found is stored, for the
user to choose from) and how many images it has (`DatasetTooSmall`). With
`captioning: auto` every image is described by the provider's vision model before the
archive is written, checkpointed per image; training starts only when all of them are.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

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
from contentgen.api.lora import LossPoint, loss_curve
from contentgen.errors import ContentgenError, InvalidInput
from contentgen.files import sha256_file
from contentgen.pricing import caption_usage, gpu_usage, training_usage
from contentgen.providers import captioner, image_generator, trainer
from contentgen.providers.base import (
    Captioner,
    CaptionRequest,
    LoraTrainer,
    LoraWeights,
    TrainedCheckpoint,
    TrainingOutput,
    TrainingRequest,
)
from contentgen.store import keys

from . import video_lora
from .context import RunContext, StoreCheckpoint, StoreFiles
from .dataset import LocalDataset, SubjectAmbiguous, apply_captions, build_dataset, template_caption
from .fetch import Fetched, still_picture
from .likeness.checkpoints import SIMULATED, Choice, Scored, choose, spread
from .likeness.evaluation import Candidate, Evaluation, curve_point, draw_checkpoint_grid, run_evaluations
from .likeness.evaluation import report as likeness_report
from .likeness.faces import FACES_FILE, load_faces
from .likeness.plan import Plan
from .likeness.score import Likeness as ScoredLikeness
from .links import provider_url
from .progress import SubProgress

log = logging.getLogger(__name__)


def run_lora(ctx: RunContext) -> RunResult:
    spec = _spec(ctx)
    provider = trainer(ctx.provider)  # fails at once when a live provider has no key
    describer = captioner(ctx.provider) if spec.dataset.captioning == "auto" else None
    source, references = _fetch(ctx, spec)
    dataset = _build_dataset(ctx, spec, source, references)
    billed = _caption(ctx, spec, dataset, describer)
    uploaded = _upload_dataset(ctx, spec, dataset)
    trained = _train(ctx, spec, provider, dataset, billed)
    stored = _store_model(ctx, spec, trained, uploaded, dataset)
    evaluated = _evaluate_version(ctx, spec, trained, dataset, stored.model)
    stored = _store_chosen_model(ctx, stored, evaluated.chosen, trained)
    return _lora_result(ctx, spec, provider.name, dataset, trained, uploaded, stored, evaluated)


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
    with ctx.stage("fetch", 0, 8) as span:
        source = ctx.fetch_source(spec.source.url, span)
        with source.path.open("rb") as head:
            if still := still_picture(head.read(16)):
                raise InvalidInput(
                    f"source.url: {source.path.name} is a {still} picture, not a video: give a video "
                    "of the person (pictures of them go in dataset.subject.referenceImages)"
                )
        return source, _fetch_references(ctx, spec)


def _build_dataset(
    ctx: RunContext, spec: LoraTrainingSpec, source: Fetched, references: list[tuple[Path, str]]
) -> LocalDataset:
    plan = video_lora.plan_of(spec, ctx.provider)  # a video LoRA's clips (video_lora.py)
    with ctx.stage("dataset", 8, 45) as span:
        try:
            dataset = build_dataset(
                source.path,
                spec.dataset,
                spec.trigger_word,
                ctx.scratch("dataset"),
                span,
                max_seconds=ctx.settings.max_video_seconds,
                reference_images=references,
                least=video_lora.least_stills(spec, plan),
            )
        except SubjectAmbiguous as unclear:  # and SubjectNotFound: show the user who is there
            raise unclear.located(_people_sheet(ctx, spec, unclear)) from None
        video_lora.add_clips(dataset, source.path, spec, plan, lambda _: None)
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
    with ctx.stage("captions", 45, 48) as span, ctx.paying(billed):
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
    with ctx.stage("upload-dataset", 48, 50) as span:
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


def _train(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    provider: LoraTrainer,
    dataset: LocalDataset,
    billed: list[UsageLine],
) -> TrainingOutput:
    owner, uid, version = spec.owner, ctx.snapshot.uid, ctx.snapshot.version
    with ctx.stage("train", 50, 88) as span:
        # one per resource, fingerprinted by the dataset and the training's inputs: a later run
        # with the same ones resumes the training already paid for instead of paying again
        checkpoint = StoreCheckpoint(ctx.store, keys.checkpoint(uid, "lora"), earlier="lora")
        with ctx.paying(billed):
            trained = provider.train_lora(
                TrainingRequest(
                    dataset_zip=dataset.archive,
                    trigger_word=spec.trigger_word,
                    steps=spec.training.steps,
                    model=video_lora.plan_of(spec, ctx.provider).app,
                    base_model=spec.training.base_model,
                    clips=len(dataset.clips),
                    learning_rate=spec.training.learning_rate,
                    frames=len(dataset.images),
                    rank=spec.training.rank,
                    resolution=spec.training.resolution,
                    checkpoint_every=spec.training.checkpoint_every,
                    optimizer=spec.training.optimizer,
                    memory_plan=spec.training.memory_plan,
                    lora_targets=spec.training.lora_targets,
                    guidance=spec.training.guidance,
                    timestep_sampling=spec.training.timestep_sampling,
                    max_grad_norm=spec.training.max_grad_norm,
                    # write-once under the version: a retried pod resumes from the newest
                    checkpoints=StoreFiles(
                        ctx.store, keys.lora_version(owner, uid, version) + "checkpoints/"
                    ),
                ),
                ctx.scratch("train"),
                span,
                checkpoint,
            )
        if trained.gpu_seconds is not None:  # the GPU time it held, not a provider's bill
            ctx.usage = billed + gpu_usage(
                provider.name, "lora-training", trained.gpu_seconds, trained.request_id
            )
        else:
            app = video_lora.plan_of(spec, ctx.provider).app
            ctx.usage = billed + training_usage(provider.name, app, spec.training.steps, trained.request_id)
    return trained


def _store_model(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    trained: TrainingOutput,
    uploaded: _Uploaded,
    dataset: LocalDataset,
) -> _StoredModel:
    """The paid output first: the LoRA, its config and loss curve. Where the trainer stored
    checkpoints and they are scored, the version's model is the best-scoring one, known only once
    they are: its model.safetensors is written after them. The last step's LoRA is in the store
    already (checkpoints/), whatever happens meanwhile."""
    scoring = bool(trained.checkpoints) and _evaluates(ctx.snapshot.skip_evaluation, spec, dataset)
    with ctx.stage("store-model", 88, 90), ctx.storing_paid_output("the LoRA weights"):
        prefix = keys.lora_version(spec.owner, ctx.snapshot.uid, ctx.snapshot.version)
        model = None
        if not scoring:
            model = ctx.store.put_once_file(
                f"{prefix}model.safetensors", trained.weights, "application/octet-stream"
            )
        artifacts: list[Artifact] = video_lora.put_lora_files(
            ctx.store, prefix, spec, trained, ctx.scratch("lora-files")
        )
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
    trained: TrainingOutput,
    dataset: LocalDataset,
    model: Artifact | None,
) -> _Evaluated:
    """The version's likeness evaluation; the checkpoint chosen as its model is the last, unless its
    checkpoints are scored (the model not stored yet)."""
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
    if video_lora.is_video(spec):  # a Wan LoRA on FLUX's pictures: not loadable (video_lora.py)
        return _Evaluated(video_lora.skipped_likeness(spec), [], chosen)
    with ctx.stage("evaluate", 90, 100) as span:
        billed = list(ctx.usage or [])
        if model is None:
            scored = _evaluate_checkpoints(
                ctx, spec, trained.checkpoints, dataset, span, billed, simulated=trained.placeholder
            )
            return _Evaluated(*scored)
        likeness, artifacts = _evaluate(ctx, spec, model, dataset, span, billed)
        return _Evaluated(likeness, artifacts, chosen)


def _store_chosen_model(
    ctx: RunContext, stored: _StoredModel, chosen: TrainedCheckpoint | None, trained: TrainingOutput
) -> _StoredModel:
    """The version with its model: stored already, or the chosen checkpoint's LoRA, once everything
    that chose it is stored."""
    if stored.model is not None:
        return stored
    assert chosen is not None
    model, final = _store_chosen(ctx, stored.prefix, chosen, trained)
    return replace(stored, model=model, final=final)


def _lora_result(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    provider: str,
    dataset: LocalDataset,
    trained: TrainingOutput,
    uploaded: _Uploaded,
    stored: _StoredModel,
    evaluated: _Evaluated,
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
        training_model=video_lora.plan_of(spec, provider).app,
        base_model=spec.training.base_model,
        low_noise_model_uri=video_lora.low_noise_uri(ctx.store, stored.prefix, trained),
        steps=spec.training.steps,
        memory_plan=str(trained.details.get("memoryPlan", "")),
        generation=ctx.snapshot.generation,
        created_at=now(),
        likeness=evaluated.likeness,
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
    plan = Plan(spec.evaluation.prompt_set, tuple(spec.evaluation.seeds))
    if dataset.faces is None:
        return Likeness(
            verdict="unmeasured",
            reasons=["the dataset has no face embeddings (faceFilter is off): nothing to compare with"],
            prompt_set=plan.prompt_set,
            seeds=list(plan.seeds),
        ), []
    try:
        weights = LoraWeights(url=provider_url(model.uri, ctx.store, ctx.settings.presign_seconds))
        [evaluation] = _run_evaluations(ctx, spec, plan, [Candidate(weights)], dataset.faces, span, billed)
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
        grid, report = _store_evaluation(ctx, prefix, evaluation.grid, evaluation.likeness)
    return likeness_report(evaluation.likeness, plan, grid.uri, report.uri), [grid, report]


def _evaluates(skip: str, spec: LoraTrainingSpec, dataset: LocalDataset) -> bool:
    """Whether the version's evaluation scores pictures: on, not skipped by the budget, and with
    the subject's faces to score them against."""
    return spec.evaluation.enabled and not skip and dataset.faces is not None


def _evaluate_checkpoints(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    stored: Sequence[TrainedCheckpoint],
    dataset: LocalDataset,
    span: SubProgress,
    billed: list[UsageLine],
    *,
    simulated: bool = False,
) -> tuple[Likeness, list[Artifact], TrainedCheckpoint]:
    """The likeness of a training's checkpoints (docs/likeness.md#checkpoints): at most
    evaluation.checkpoints of them, each evaluated as a version is (the same prompts, seeds and
    baseline, each picture with a provider checkpoint of its own: likeness-v{n}-s{step}-...), and
    the checkpoint whose LoRA becomes the version's model. Where the evaluation cannot finish, the
    version is kept with its last step's LoRA and the report says why. `simulated`: the offline
    provider's placeholder checkpoints, which the choice and the grid say."""
    plan = Plan(spec.evaluation.prompt_set, tuple(spec.evaluation.seeds))
    by_step = {c.step: c for c in stored}
    steps = spread(list(by_step), spec.evaluation.checkpoints)
    scored, final = [by_step[step] for step in steps], by_step[max(by_step)]
    assert dataset.faces is not None
    try:
        candidates = [
            Candidate(
                LoraWeights(url=provider_url(c.uri, ctx.store, ctx.settings.presign_seconds)),
                name=f"s{c.step}",
                title=f" step {c.step}",
            )
            for c in scored
        ]
        evaluations = _run_evaluations(ctx, spec, plan, candidates, dataset.faces, span, billed)
    except Exception as failed:  # the trained LoRA is kept and usable whatever stopped its scoring
        log.warning("the checkpoints' likeness evaluation did not finish", exc_info=True)
        return _unscored(plan, final, failed), [], final
    ctx.usage = list(billed)
    prefix = keys.lora_version(spec.owner, ctx.snapshot.uid, ctx.snapshot.version)
    with ctx.storing_paid_output("the likeness evaluation's pictures"):
        points, artifacts = _store_each(ctx, prefix, scored, evaluations)
        choice = choose([Scored(p.step, p.verdict, p.median) for p in points])
        if simulated:
            choice = replace(choice, why=f"{choice.why} ({SIMULATED})")
        best = steps.index(choice.step)
        curve = [p.model_copy(update={"chosen": p.step == choice.step}) for p in points]
        grid, report = _store_evaluation(ctx, prefix, evaluations[best].grid, evaluations[best].likeness)
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
        grid, report = _store_evaluation(ctx, folder, evaluation.grid, evaluation.likeness)
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


def _run_evaluations(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    plan: Plan,
    candidates: Sequence[Candidate],
    faces: Path,
    span: SubProgress,
    billed: list[UsageLine],
) -> list[Evaluation]:
    """The evaluation's pictures through the run's provider, paid like any generation: each with a
    provider checkpoint of its own, in `billed` (and then the run's usage) as it returns."""
    uid, version = ctx.snapshot.uid, ctx.snapshot.version
    with ctx.paying(billed):
        return run_evaluations(
            image_generator(ctx.provider),
            ctx.store,
            plan,
            spec.trigger_word,
            candidates,
            load_faces(faces),
            ctx.scratch("likeness"),
            span,
            lambda name: StoreCheckpoint(ctx.store, keys.checkpoint(uid, f"likeness-v{version}-{name}")),
            billed,
            kept_in=lambda name: StoreFiles(
                ctx.store, keys.pictures_made(uid, version) + f"likeness-{name}/"
            ),
        )


def _store_evaluation(
    ctx: RunContext, folder: str, grid: Path, scored: ScoredLikeness
) -> tuple[Artifact, Artifact]:
    """An evaluation's grid and per-picture report under `folder`, each written once."""
    return (
        ctx.store.put_once_file(f"{folder}likeness-grid.jpg", grid, "image/jpeg"),
        ctx.store.put_once_bytes(
            f"{folder}likeness.json", json.dumps(scored.as_dict(), indent=1).encode(), "application/json"
        ),
    )


def _store_chosen(
    ctx: RunContext, prefix: str, chosen: TrainedCheckpoint, trained: TrainingOutput
) -> tuple[Artifact, Artifact | None]:
    """model.safetensors, the chosen checkpoint's LoRA, written once; and the last step's LoRA
    where it is another one (it stays where the trainer stored it: finalModelUri)."""
    last = max(trained.checkpoints, key=lambda c: c.step)
    path, final = trained.weights, None  # the trainer's weights are the last step's
    if chosen.step != last.step:
        path = ctx.store.get_file(ctx.store.key_of(chosen.uri), ctx.scratch("chosen") / "model.safetensors")
        final = Artifact(
            uri=last.uri,
            size_bytes=trained.weights.stat().st_size,
            sha256=sha256_file(trained.weights),
            content_type="application/octet-stream",
        )
    with ctx.storing_paid_output("the LoRA weights"):
        model = ctx.store.put_once_file(f"{prefix}model.safetensors", path, "application/octet-stream")
    return model, final


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
