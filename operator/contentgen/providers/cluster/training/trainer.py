"""provider cluster's LoRA trainer, whatever the family (`training.baseModel`'s, family.py): the
staged model found (ModelNotFound before any GPU time), the memory plan checked before anything is
loaded (GpuMemoryTooSmall with the numbers), the training run by the loop (loop.py) on this
process's device, beside the others of its team where torchrun started several (distributed.py:
rank 0 hands them the work, `follow`), and the version's files from it (outcome.py).

The staged directory is the family's (a FLUX training the cluster's FLUX model, a Wan training its
base's published diffusers directory: api/base_models.py's `cluster_dir`); a `training.model`
naming another staged directory (not one of fal's trainers) trains on that one."""

from __future__ import annotations

import logging
import time
from contextlib import suppress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from contentgen.api.lora.plan import TrainingPlan
from contentgen.errors import InvalidInput
from contentgen.providers.base import Continued, TrainingOutput, TrainingRequest
from contentgen.providers.progress import Monotonic, SubProgress

from .. import devices
from ..files import FolderFiles
from ..generation import flux, pipelines
from . import distributed, loop, outcome
from .family import Family, Job
from .plan import loop_plan

log = logging.getLogger(__name__)


class Provider(Protocol):
    """What the trainer takes of provider cluster (provider.py's ClusterProvider): where the models
    are, the device, the GPUs held, the FLUX model it trains by default, and the pictures it draws
    (the watch's drawers make theirs through it)."""

    name: str
    root: Path
    models_store: str
    device_name: str
    gpus: int
    flux_model: str
    inference_steps: int | None


def staged(provider: Provider, name: str, wanted: tuple[str, ...]) -> Path:
    """The staged model `name` (copied from the models' store first, where there is one)."""
    from ..staging import staged as located

    return located(name, wanted, root=provider.root, url=provider.models_store)


def device(provider: Provider, team: distributed.Team) -> flux.Device:
    """The device this process trains on: in a team of several GPUs on a node, its own."""
    on = flux.device(provider.device_name)
    if team.world.several and on.cuda and on.where.index is None:
        import torch

        return flux.Device(torch.device("cuda", team.world.local_rank), on.dtype)
    return on


def train(
    provider: Provider, family: Family, request: TrainingRequest, work_dir: Path, progress: SubProgress
) -> TrainingOutput:
    """Train `request` with `family` on this process (and its team); see the module."""
    plan, team = request.plan, distributed.current()
    if team.world.several and not family.spreads:  # admission refuses it: never trained idle
        raise InvalidInput(f"training.baseModel {plan.base.name} trains on one GPU: ask for resources.gpus 1")
    name = family.staged(plan, provider.flux_model)
    model = staged(provider, name, family.required(plan.base))  # ModelNotFound before any GPU time
    devices.prepare_torch(provider.device_name)  # DeviceUnavailable, in one line, before any load
    pipelines.release()  # training loads its own copy: a kept generation pipeline goes first
    began = time.monotonic()
    on = device(provider, team)
    work_dir.mkdir(parents=True, exist_ok=True)
    if team.world.several:  # the other processes train beside this one
        team.publish(f"{_follower(provider)}:follow_training", Followed.of(request, name))
        team.begin(on.cuda, on.where)
    job = _job(provider, family, request, model, name, on, work_dir, team)
    request_id = outcome.request_id(family.fingerprint(job), job.files)
    meter = Monotonic(progress)
    with outcome.kept(began, request_id, provider.gpus):
        trained = loop.train(_shared(job), lambda step, steps: meter(100.0 * step / steps))
    return outcome.output(trained, job, request, began=began, request_id=request_id, provider=provider.name)


def _job(
    provider: Provider,
    family: Family,
    request: TrainingRequest,
    model: Path,
    name: str,
    on: flux.Device,
    work_dir: Path,
    team: distributed.Team,
) -> Job:
    """What this process trains, its memory plan checked now (GpuMemoryTooSmall)."""
    plan = request.plan
    job = Job(
        family=family,
        model_dir=model,
        examples=family.examples(request.dataset_zip, work_dir / "examples", request.trigger_word),
        plan=loop_plan(plan, team.world.size),
        on=on,
        work_dir=work_dir,
        files=request.checkpoints or FolderFiles(work_dir / "checkpoints"),
        base=plan.base,
        metadata=metadata(provider.name, name, plan),
        watch=request.watch,
        drawers=provider,
        continued=request.continue_from,
        gpus=provider.gpus,
        team=team,
    )
    return replace(job, choose=loop.chooser(job, plan.memory_plan))


def metadata(provider: str, name: str, plan: TrainingPlan) -> dict[str, str]:
    """What every LoRA file of the training says of it: the provider, the staged model and the
    base model it is made for."""
    return {
        "contentgen.provider": provider,
        "contentgen.base_model": name,
        "contentgen.training_base_model": plan.base.name,
    }


def _shared(job: Job) -> Job:
    """Rank 0's job in a team: its store, watch and continued version told to the others."""
    team = job.team
    if not team.world.several:
        return job
    continued = job.continued
    return replace(
        job,
        files=distributed.SharedFiles(job.files, team),
        watch=distributed.Leading(job.watch, team) if job.watch is not None else None,
        continued=replace(continued, files=distributed.SharedFiles(continued.files, team))
        if continued
        else None,
    )


def _follower(provider: Provider) -> str:
    """The module whose `follow_training` a follower calls: the provider's own (it makes the
    follower's provider from the pod's environment)."""
    return type(provider).__module__


@dataclass(frozen=True)
class Followed:
    """What rank 0 hands the other processes of a training (distributed.Team.publish)."""

    plan: TrainingPlan
    staged: str
    dataset: bytes  # the dataset's archive
    trigger_word: str
    prompts: tuple[str, ...] | None  # the watch's prompts; None: no watch
    continued: tuple[int, int | None] | None  # training.continueFrom's version and step

    @classmethod
    def of(cls, request: TrainingRequest, staged: str) -> Followed:
        watch, continued = request.watch, request.continue_from
        return cls(
            plan=request.plan,
            staged=staged,
            dataset=request.dataset_zip.read_bytes(),
            trigger_word=request.trigger_word,
            prompts=tuple(watch.prompts()) if watch is not None else None,
            continued=(continued.version, continued.step) if continued is not None else None,
        )


def follow(
    provider: Provider, family: Family, work: Followed, team: distributed.Team, work_dir: Path
) -> None:
    """A process other than rank 0: the training rank 0 handed out, its share of each step,
    nothing written (rank 0 stores; distributed.SharedFiles tells this one what it read), its
    share of the watch's pictures drawn where the family draws them in shares."""
    model = staged(provider, work.staged, family.required(work.plan.base))  # on this node too
    pipelines.release()
    on = device(provider, team)
    team.begin(on.cuda, on.where)
    archive = work_dir / "dataset.zip"
    archive.write_bytes(work.dataset)
    shared = distributed.SharedFiles(None, team)
    job = Job(
        family=family,
        model_dir=model,
        examples=family.examples(archive, work_dir / "examples", work.trigger_word),
        plan=loop_plan(work.plan, team.world.size),
        on=on,
        work_dir=work_dir,
        files=shared,
        base=work.plan.base,
        metadata=metadata(provider.name, work.staged, work.plan),
        watch=_following(team, work.prompts),
        drawers=provider,
        continued=Continued(work.continued[0], shared, work.continued[1]) if work.continued else None,
        gpus=provider.gpus,
        team=team,
    )
    with suppress(loop.Unkept):  # stopped before a checkpoint: rank 0 says so
        loop.train(replace(job, choose=loop.chooser(job, work.plan.memory_plan)))


def _following(team: distributed.Team, prompts: tuple[str, ...] | None) -> Any:
    if prompts is None:
        return None

    def draw(drawer: Any, order: Any) -> Any:
        return drawer.share(order) if hasattr(drawer, "share") else None

    return distributed.Following(team, prompts, draw=draw)
