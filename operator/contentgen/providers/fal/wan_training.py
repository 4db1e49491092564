"""fal's Wan trainers at the wire: a Wan LoRA trained on fal from the dataset's stills and clips,
through the same queue as every paid request (queue.py: the intent checkpointed before the
submit, the request id and then the result the moment fal answers, so a killed worker's retry
polls the same request and pays once).

What each trainer is sent (the table's facts and their sources are api/base_models.py's):

    fal-ai/wan-trainer               training_data_url, number_of_steps, trigger_phrase,
                                     learning_rate when set, auto_scale_input false
                                     (https://fal.ai/models/fal-ai/wan-trainer/llms.txt)
    fal-ai/wan-22-image-trainer      training_data_url, trigger_phrase (both required by its page,
                                     https://fal.ai/models/fal-ai/wan-22-image-trainer/llms.txt),
                                     number_of_steps, learning_rate when set
    fal-ai/wan-22-trainer/t2v-a14b,  training_data_url, trigger_phrase, number_of_steps,
    .../i2v-a14b                     learning_rate when set

auto_scale_input: fal's Wan trainer "automatically scale[s] the video to 81 frames at 16fps"
(its page's description of the field); the clips contentgen cuts are on Wan's frame rule at 16
fps already (pipeline/footage/clips.py), and scaling a 2-second clip to 81 frames would slow it
down, so it is turned off.

The step count's input name on the Wan 2.2 trainers: their model pages were not found to read
(fal's guide, https://fal.ai/learn/devs/how-to-fine-tune-wan-with-the-api, names the endpoint and
its billing, not every input); the names sent are the ones fal's Wan trainer and the image
trainer's page document for the same inputs (training_data_url, trigger_phrase), with
number_of_steps and learning_rate as fal-ai/wan-trainer names them. A live run
(tests/providers/test_live.py, REAL_API_TESTS_TRAINING=1) is what confirms them.

What a trainer returns: fal-ai/wan-trainer documents {lora_file, config_file}; fal's guide says the
Wan 2.2 trainers return "a .safetensors LoRA file", and their output schema was not read. A Wan 2.2
A14B model has two experts, and trainers elsewhere (WaveSpeed, ai-toolkit) return a high-noise and a
low-noise LoRA. So the result is read as either (`lora_files`): one LoRA file (lora_file,
diffusers_lora_file, or the one safetensors File of the result), or a pair whose names say high and
low noise; anything else fails naming the result's keys, and the paid result stays in the
checkpoint for a later run to read again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from contentgen.api.base_models import FAL_TRAINERS
from contentgen.providers.progress import SubProgress

from ..base import Checkpoint, TrainingOutput, TrainingRequest
from ..retry import bad_response, redact
from .outputs import File
from .progress import Meter
from .queue import FalQueue, Waiting
from .uploads import Upload

log = logging.getLogger(__name__)

WAN_TRAINERS = frozenset(app for app, (base, _) in FAL_TRAINERS.items() if base.video)
# How long a lost submit is looked for in fal's request list: a training ends within hours.
RESOLVE_WAIT = 3 * 3600.0
_SINGLE = ("lora_file", "diffusers_lora_file")


@dataclass(frozen=True)
class LoraFiles:
    """What a trainer returned: one LoRA, or the high- and low-noise experts' pair."""

    main: tuple[str, File]  # (its result key, its File); the high-noise one of a pair
    low_noise: tuple[str, File] | None = None

    def details(self) -> dict[str, str]:
        """Where each file came from, for the version's record (links redacted)."""
        said = {"weights_url": redact(str(self.main[1]["url"])), "weights_field": self.main[0]}
        if self.low_noise is not None:
            said |= {
                "low_noise_url": redact(str(self.low_noise[1]["url"])),
                "low_noise_field": self.low_noise[0],
            }
        return said


def arguments(app: str, request: TrainingRequest, data_url: str) -> dict[str, Any]:
    """What `app` is sent for `request` (pure; see the module)."""
    args: dict[str, Any] = {
        "training_data_url": data_url,
        "trigger_phrase": request.trigger_word,
        "number_of_steps": request.plan.steps,
    }
    if request.plan.learning_rate is not None:
        args["learning_rate"] = request.plan.learning_rate
    if app == "fal-ai/wan-trainer":
        args["auto_scale_input"] = False
    return args


def _is_file(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("url"), str) and bool(value["url"])


def _name(file: File) -> str:
    return str(file.get("file_name") or file["url"].split("?", 1)[0].rsplit("/", 1)[-1]).lower()


def lora_files(result: dict[str, Any], app: str) -> LoraFiles:
    """The LoRA file(s) of a trainer's result (see the module), or ProviderError naming its keys."""
    files = {key: value for key, value in result.items() if _is_file(value) and key != "config_file"}
    high = [k for k in files if "high" in k.lower() or "high" in _name(files[k])]
    low = [k for k in files if "low" in k.lower() or "low" in _name(files[k])]
    if len(high) == 1 and len(low) == 1 and high != low:
        return LoraFiles((high[0], files[high[0]]), (low[0], files[low[0]]))
    named = [k for k in _SINGLE if k in files]
    if named:
        return LoraFiles((named[0], files[named[0]]))
    weights = [k for k, f in files.items() if _name(f).endswith(".safetensors")]
    if len(weights) == 1:
        return LoraFiles((weights[0], files[weights[0]]))
    keys = ", ".join(sorted(result)) or "none"
    raise bad_response(
        "fal", f"the training on {app}", f"a result whose LoRA file is not clear (keys: {keys})"
    )


class Fal(Protocol):
    """What a training asks of the fal provider: its uploads, queue and downloads."""

    @property
    def name(self) -> str: ...

    @property
    def queue(self) -> FalQueue: ...

    def upload(self, path: Path, what: str) -> str: ...

    def download_lora(
        self,
        file: File,
        dest: Path,
        what: str,
        meter: Callable[[float], None],
        paid: tuple[str, str, str],
    ) -> Path: ...

    def training_config(
        self, result: dict[str, Any], work_dir: Path, meter: Meter, paid: tuple[str, str, str]
    ) -> Path | None: ...


def train(
    fal: Fal,
    request: TrainingRequest,
    app: str,
    saved: dict[str, Any],
    work_dir: Path,
    progress: SubProgress,
    checkpoint: Checkpoint,
) -> TrainingOutput:
    """Upload the dataset, train on `app` once, and download its LoRA file(s) and config. `saved`:
    the request's checkpoint, for these inputs (the provider's fingerprint)."""
    meter = Meter(progress)
    dataset = Upload(
        fal.upload,
        request.dataset_zip,
        "the dataset",
        "training_data_url",
        saved,
        checkpoint.save,
        url_key="dataset_url",
        count_key="dataset_uploads",
    )

    def sent() -> dict[str, Any]:
        url = dataset.url()
        meter.at(5)
        return arguments(app, request, url)

    waiting = Waiting(meter.queue(5, 10), meter.running(10, 90, keyword="step"), RESOLVE_WAIT)
    request_id, result = fal.queue.run(app, sent, saved, checkpoint, waiting, heal=dataset.heal)
    paid = (app, request_id, getattr(checkpoint, "location", "") or "the run's checkpoint")
    found = lora_files(result, app)
    weights, low = _download(fal, found, work_dir, meter, paid)
    config = fal.training_config(result, work_dir, meter, paid)
    meter.at(100)
    details = {"app": app, "dataset_url": redact(str(saved.get("dataset_url", "")))} | found.details()
    return TrainingOutput(
        weights=weights, config=config, request_id=request_id, details=details, low_noise_weights=low
    )


def _download(
    fal: Fal, found: LoraFiles, work_dir: Path, meter: Meter, paid: tuple[str, str, str]
) -> tuple[Path, Path | None]:
    """The trained LoRA file(s), downloaded and checked: (the LoRA or the high-noise one, the
    low-noise expert's or None)."""
    weights = fal.download_lora(
        found.main[1], work_dir / "model.safetensors", "the LoRA weights", meter.span(90, 95), paid
    )
    if found.low_noise is None:
        return weights, None
    low = work_dir / "model-low-noise.safetensors"
    return weights, fal.download_lora(
        found.low_noise[1], low, "the low-noise expert's LoRA", meter.span(95, 98), paid
    )
