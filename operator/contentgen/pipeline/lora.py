"""LoraTraining: fetch → scenes and frames → dataset → upload → train → store a versioned model."""

from __future__ import annotations

from pathlib import Path

from contentgen.api import Artifact, LoraTrainingSpec, LoraVersion, RunResult, now
from contentgen.pricing import training_usage
from contentgen.providers import trainer
from contentgen.providers.base import TrainingRequest
from contentgen.store import keys

from .context import RunContext, StoreCheckpoint
from .dataset import build_dataset


def run_lora(ctx: RunContext) -> RunResult:
    snap = ctx.snapshot
    spec = snap.parsed_spec(local=ctx.local)
    assert isinstance(spec, LoraTrainingSpec)
    if snap.version < 1:
        raise ValueError("a LoraTraining run needs the version it trains (1, 2, ...)")
    provider = trainer(ctx.provider)  # fails at once when a live provider has no key
    owner, uid, version = spec.owner, snap.uid, snap.version

    with ctx.stage("fetch", 0, 8) as span:
        source = ctx.fetch_source(spec.source.url, span)

    with ctx.stage("dataset", 8, 45) as span:
        dataset = build_dataset(
            source.path,
            spec.dataset,
            spec.trigger_word,
            ctx.scratch("dataset"),
            span,
            max_seconds=ctx.settings.max_video_seconds,
        )

    with ctx.stage("upload-dataset", 45, 50) as span:
        prefix = keys.dataset_version(owner, uid, version)
        uris: dict[Path, str] = {}
        total = max(1, 2 * len(dataset.images))
        for i, image in enumerate(dataset.images):
            stem = image.path.stem
            uris[image.path] = ctx.store.put_file(f"{prefix}images/{stem}.jpg", image.path, "image/jpeg").uri
            ctx.store.put_file(
                f"{prefix}captions/{stem}.txt", image.caption_path, "text/plain; charset=utf-8"
            )
            span(100.0 * (2 * i + 2) / total)
        archive = ctx.store.put_file(f"{prefix}dataset.zip", dataset.archive, "application/zip")

    with ctx.stage("train", 50, 95) as span:
        checkpoint = StoreCheckpoint(ctx.store, keys.checkpoint(uid, f"lora-v{version}"))
        ctx.usage = None  # a paid call is under way
        trained = provider.train_lora(
            TrainingRequest(
                dataset_zip=dataset.archive,
                trigger_word=spec.trigger_word,
                steps=spec.training.steps,
                model=spec.training.model,
                learning_rate=spec.training.learning_rate,
                frames=len(dataset.images),
            ),
            ctx.scratch("train"),
            span,
            checkpoint,
        )
        ctx.usage = training_usage(
            provider.name, spec.training.model, spec.training.steps, trained.request_id
        )

    with ctx.stage("store-model", 95, 100), ctx.storing_paid_output("the LoRA weights"):
        prefix = keys.lora_version(owner, uid, version)
        model = ctx.store.put_file(f"{prefix}model.safetensors", trained.weights, "application/octet-stream")
        artifacts: list[Artifact] = [model]
        config_uri = ""
        if trained.config is not None:
            config = ctx.store.put_file(f"{prefix}config.json", trained.config, "application/json")
            artifacts.append(config)
            config_uri = config.uri
        artifacts.append(archive)

    lora = LoraVersion(
        version=version,
        model_uri=model.uri,
        config_uri=config_uri,
        size_bytes=model.size_bytes,
        sha256=model.sha256,
        dataset_uri=archive.uri,
        frames=len(dataset.images),
        provider=provider.name,
        trigger_word=spec.trigger_word,
        training_model=spec.training.model,
        steps=spec.training.steps,
        generation=snap.generation,
        created_at=now(),
    )
    report = dataset.report(lambda path: uris[path], archive)
    return RunResult(
        kind=snap.kind,
        provider=provider.name,
        placeholder=trained.placeholder,
        artifacts=artifacts,
        version=version,
        lora=lora,
        dataset=report,
    )
