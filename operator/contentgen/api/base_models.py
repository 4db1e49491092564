"""What a LoraTraining's LoRA is made for (`training.baseModel`), who trains it, from what, and
which models load it: one table (`BASE_MODELS`), from which admission's rules (`BASE_MODEL_RULES`),
the trainer a run uses (`trainer_of`), the dataset's media (stills, clips: `media_of`), the price of
a run (pricing/) and what a video or picture may load (`lora_fits`) are all read.

FLUX.1 is the default: the LoRAs every LoraTraining made before this field. The video models are
Wan's: a Wan 2.1 LoRA is made for one transformer, a Wan 2.2 A14B LoRA for two (the high-noise
expert denoises the timesteps at and above the model's boundary, the low-noise expert those below
it: diffusers' WanPipeline, `boundary_ratio` × the scheduler's training timesteps), trained as
two LoRAs on their own timestep ranges (`Experts`).

fal's trainers, as their pages document them (read 2026-12-02):

- fal-ai/wan-trainer (https://fal.ai/models/fal-ai/wan-trainer/llms.txt): "Train custom LoRAs
  for Wan-2.1 I2V 480P"; a zip of "images and/or videos" with captions in text files "with the
  same name as the image/video file"; number_of_steps 100 to 20000 (default 400);
  learning_rate 0.000001 to 1 (default 0.0002); trigger_phrase; auto_scale_input; output
  lora_file and config_file (https://fal.ai/models/fal-ai/wan-trainer/playground); "$0.005 per
  steps".
- fal-ai/wan-22-image-trainer (https://fal.ai/models/fal-ai/wan-22-image-trainer/llms.txt):
  "Wan 2.2 text to image LoRA trainer": stills only; training_data_url and trigger_phrase
  required; "$0.0045 per step (minimum of 100 steps is charged)".
- fal-ai/wan-22-trainer/t2v-a14b and .../i2v-a14b: their model pages were not found to read; fal's
  guide (https://fal.ai/learn/devs/how-to-fine-tune-wan-with-the-api) says: a zip of "10 or more
  images or short clips with matching .txt captions", "billed per step at the rate on the
  trainer's model page, with a 100-step minimum", "returns a .safetensors LoRA file", and "the
  image-to-video trainer ... requires video training data; image-only datasets are supported only
  by the text-to-video trainer". What it leaves open (the input names, the steps' range, the
  price, the output's shape) is left open here: the steps stay within the API's own 100 to 10000,
  the price is the price table's dearest per step until fal's pricing API says (pricing/), and
  the provider reads one LoRA file or a high- and low-noise pair (providers/fal/wan_training.py).

Every documented minimum is 100 steps, the API's own minimum for training.steps, so a spec under
it is refused on the field by the field's own rule.

On the cluster (the diffusers directories and the experts' boundaries, from the published
repositories' model_index.json: boundary_ratio 0.875 for T2V A14B, 0.9 for I2V A14B) every Wan
model is trained by the cluster's Wan trainer (providers/cluster/families/wan_training.py), and a Wan 2.2
T2V pair loads into the cluster's wan-2.2-a14b-t2v, one file into each expert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field

from contentgen.errors import InvalidInput

from .image import FLUX_MODELS, drawn_by
from .providers import FAL, OFFLINE, OWN_GPUS
from .rules import (
    AtDefault,
    Both,
    Differs,
    Either,
    Equals,
    GeneratedRule,
    Has,
    In,
    Is,
    Not,
    Rule,
    SpecField,
    Unset,
    generate,
)

BaseModel = Literal[
    "flux.1",
    "z-image-turbo",
    "z-image-base",
    "qwen-image-2512",
    "flux.2-klein-4b",
    "flux.2-klein-9b",
    "ltx-2",
    "wan-2.1-t2v-1.3b",
    "wan-2.1-t2v-14b",
    "wan-2.1-i2v-14b",
    "wan-2.2-t2v-a14b",
    "wan-2.2-i2v-a14b",
]
DEFAULT_BASE_MODEL: BaseModel = "flux.1"
BaseModelField = Annotated[
    BaseModel,
    Field(
        description="What the LoRA is made for: flux.1 (pictures, the default); z-image-turbo, z-image-base, "
        "qwen-image-2512, flux.2-klein-4b or flux.2-klein-9b (pictures; each family's licence in "
        "docs/cluster-training.md#families); or a video model: Wan (wan-2.1-t2v-1.3b, wan-2.1-t2v-14b, "
        "wan-2.1-i2v-14b; wan-2.2-t2v-a14b and wan-2.2-i2v-a14b, two LoRAs, one per expert) or ltx-2, "
        "trained "
        "from clips and stills of the same footage (docs/lora-datasets.md#video-loras)."
    ),
]
# What a dataset gives the trainer: stills (one image a scene, as always), and clips of the subject.
Media = Literal["auto", "stills", "clips"]
TrainerMedia = Literal["stills", "stills+clips", "clips"]

_FAL_WAN_TRAINER = "https://fal.ai/models/fal-ai/wan-trainer/llms.txt"
_FAL_WAN22_IMAGE = "https://fal.ai/models/fal-ai/wan-22-image-trainer/llms.txt"
_FAL_WAN22_GUIDE = "https://fal.ai/learn/devs/how-to-fine-tune-wan-with-the-api"
_FAL_FLUX_FAST = "https://fal.ai/models/fal-ai/flux-lora-fast-training/api"
_FAL_FLUX_PORTRAIT = "https://fal.ai/models/fal-ai/flux-lora-portrait-trainer/api"
_DIFFUSERS_WAN = "https://huggingface.co/docs/diffusers/api/pipelines/wan"
_FAL_Z_IMAGE_TURBO = "https://fal.ai/models/fal-ai/z-image-turbo-trainer-v2"
_FAL_QWEN_2512 = "https://fal.ai/models/fal-ai/qwen-image-2512-trainer-v2/llms.txt"
_Z_IMAGE_TURBO = "https://huggingface.co/Tongyi-MAI/Z-Image-Turbo"
_Z_IMAGE = "https://huggingface.co/Tongyi-MAI/Z-Image"
_QWEN_2512 = "https://huggingface.co/Qwen/Qwen-Image-2512"
_KLEIN_4B = (
    "https://huggingface.co/blog/black-forest-labs/flux-2-klein-lora"  # "FLUX.2-klein-base-4B is Apache 2.0"
)
_KLEIN_9B = "https://huggingface.co/black-forest-labs/FLUX.2-klein-base-9B"
_BFL_PRICING = "https://docs.bfl.ai/quick_start/pricing.md"  # "FLUX.2 [dev] ... Open weights, non-commercial"
_LTX_2 = "https://huggingface.co/Lightricks/LTX-2"
_FLUX_1_DEV_LICENCE = "https://huggingface.co/black-forest-labs/FLUX.1-dev/blob/main/LICENSE.md"
_WAN_21 = "https://huggingface.co/Wan-AI/Wan2.1-T2V-14B"  # "licensed under the Apache 2.0 License"
_WAN_22 = "https://huggingface.co/Wan-AI/Wan2.2-T2V-A14B"
_LTX_2_LICENCE = "https://github.com/Lightricks/LTX-2/blob/main/LICENSE"


@dataclass(frozen=True)
class TrainerInputs:
    """What a fal trainer names its inputs and its LoRA output, as its page says. `trigger` None:
    the trigger word is not sent (the dataset's captions carry it); `caption`: sent as the caption of
    a picture without one, where the page names such an input; `learning_rate` None: not sent."""

    data: str = "images_data_url"
    trigger: str | None = "trigger_word"
    caption: str | None = None
    steps: str = "steps"
    learning_rate: str | None = None
    # the result's LoRA file: the first of these the result holds
    weights: tuple[str, ...] = ("diffusers_lora_file",)


FLUX_FAST_INPUTS = TrainerInputs()
FLUX_PORTRAIT_INPUTS = TrainerInputs(trigger="trigger_phrase", learning_rate="learning_rate")
# fal's v2 trainers (qwen-image-2512-trainer-v2's page, read 2026-12-02: image_data_url, steps
# 10 to 40000, default_caption, learning_rate); z-image-turbo-trainer-v2's input schema was not
# found to read: its sibling's names are sent, and its output is read as diffusers_lora_file or
# lora_file (the fakes answer either: tests/providers/test_fal_family_trainers.py)
V2_INPUTS = TrainerInputs(
    data="image_data_url",
    trigger=None,
    caption="default_caption",
    learning_rate="learning_rate",
    weights=("diffusers_lora_file", "lora_file"),
)


@dataclass(frozen=True)
class Licence:
    """A base model's licence as its model card or maker says it, and whether a company may use it
    commercially: run it for revenue and sell what its LoRAs make (a non-commercial licence, or one
    free only under a revenue threshold, is no)."""

    name: str
    commercial: bool
    source: str


APACHE_2 = "Apache-2.0"
FLUX_NON_COMMERCIAL = "FLUX Non-Commercial License"


@dataclass(frozen=True)
class Recommended:
    """The settings a person's LoRA is recommended at on this base (the trainers' published
    settings; the cluster's defaults are the spec's own until a GPU measures them)."""

    steps: int
    rank: int
    learning_rate: float
    source: str


@dataclass(frozen=True)
class Trainer:
    """One of fal's trainers: what its zip may hold, its steps, what it bills."""

    app: str
    media: TrainerMedia
    min_steps: int
    max_steps: int
    billed_min_steps: int  # fal bills at least this many steps
    # USD a step from the page read; None where no page said (the price table's dearest step)
    price_per_step: float | None
    source: str
    inputs: TrainerInputs = FLUX_FAST_INPUTS  # the Wan trainers' are providers/fal/wan_training.py's

    @property
    def clips(self) -> bool:
        return self.media != "stills"

    @property
    def stills(self) -> bool:
        return self.media != "clips"


@dataclass(frozen=True)
class Experts:
    """Wan 2.2 A14B's two transformers: the high-noise one denoises timesteps at and above
    `boundary` × the training timesteps, the low-noise one those below (`expert_ranges`)."""

    boundary: float


@dataclass(frozen=True)
class FrameRule:
    """The clips a model learns from: `step`·k + 1 frames (its VAE's temporal stride) at `fps`,
    `max_frames` at most."""

    fps: int
    step: int
    max_frames: int

    def frames(self, asked: int) -> int:
        """The frame count on the rule nearest `asked`, within 1 + step and max_frames."""
        nearest = self.step * round((asked - 1) / self.step) + 1
        return max(self.step + 1, min(nearest, self.max_frames))


WAN_FRAMES = FrameRule(fps=16, step=4, max_frames=81)


@dataclass(frozen=True)
class BaseModelInfo:
    name: str
    title: str
    family: str  # the family the video models table names (api/video/table.py), or FLUX.1
    # the models that load its LoRAs: video models (api/video/table.py) or image models
    loads_on: tuple[str, ...]
    fal_trainers: tuple[Trainer, ...] = ()  # the first is the default
    frames: FrameRule | None = None  # None: it learns from stills only
    experts: Experts | None = None  # Wan 2.2 A14B: two LoRAs, one per expert
    cluster_dir: str = ""  # its diffusers directory under the cluster's models root
    # Whether provider cluster trains it (its family's plugin of the cluster's training framework:
    # providers/cluster/families/), and whether that family spreads a training over several GPUs
    # (data parallel under torchrun): one that does not is refused resources.gpus or nodes above 1
    offered_on_cluster: bool = False
    spreads: bool = True
    # its family's module under providers/cluster/families/ (a dotted path: a module elsewhere, the
    # tests' toy family's), which provider cluster trains it with
    cluster_family: str = ""
    source: str = ""
    licence: Licence | None = None  # every row of the table says one (tests/api: a row without fails)
    recommended: Recommended | None = None
    weights: str = ""  # the published diffusers repository the cluster stages as cluster_dir

    @property
    def commercial(self) -> bool | None:
        """Whether what its LoRAs make may be sold (None: the table does not say)."""
        return self.licence.commercial if self.licence else None

    @property
    def video(self) -> bool:
        return self.frames is not None

    @property
    def providers(self) -> tuple[str, ...]:
        """The providers that train it; offline simulates every one (a labelled placeholder)."""
        fal = (FAL.name,) if self.fal_trainers else ()
        cluster = (OWN_GPUS,) if self.offered_on_cluster else ()
        return (*fal, *cluster, OFFLINE.name)

    def trainer(self, app: str) -> Trainer | None:
        return next((t for t in self.fal_trainers if t.app == app), None)

    def learns_from(self, provider: str) -> str:
        """What a training of it on `provider` learns from, in words (media_of's choice, `auto`)."""
        trainer = self.fal_trainers[0] if provider == FAL.name and self.fal_trainers else None
        stills, clips = media_of(self.name, "auto", trainer)
        if not clips:
            return "stills of the person, one per scene of the video"
        shots = (
            f"clips of the person ({self.frames.step}k+1 frames at {self.frames.fps} fps, cut from the shots "
            "the stills come from)"
            if self.frames
            else "clips of the person"
        )
        return f"{shots} and stills" if stills else f"{shots} only"

    def needs(self, provider: str) -> str:
        """What a training of it on `provider` needs, in words."""
        if provider == FAL.name and self.fal_trainers:
            return f"fal's {self.fal_trainers[0].app} (the API's FAL_KEY)"
        if provider == OWN_GPUS:
            return f"the cluster's GPUs and {self.cluster_dir or 'FLUX.1'} staged on its models' volume"
        if provider == FAL.name:
            return "a provider that trains it (fal has no trainer for it in this table)"
        return "nothing: a labelled simulation, free (no training, placeholder LoRAs)"

    def makes(self) -> str:
        """What its LoRA is used for, in words."""
        pair = ", two LoRAs (one per expert)" if self.experts else ""
        if not self.video:
            return "pictures: an ImageGeneration's loras"
        if not self.loads_on:
            return f"clips, in ComfyUI (no video model here loads it yet){pair}"
        return f"clips: a VideoGeneration's loras, model {' or '.join(self.loads_on)}{pair}"


_FLUX_TRAINERS = (
    Trainer("fal-ai/flux-lora-fast-training", "stills", 100, 10000, 0, 0.002, _FAL_FLUX_FAST),
    Trainer(
        "fal-ai/flux-lora-portrait-trainer",
        "stills",
        100,
        10000,
        0,
        0.002,
        _FAL_FLUX_PORTRAIT,
        FLUX_PORTRAIT_INPUTS,
    ),
)
# a LoraTraining's training.model where it names none: fal's FLUX.1 trainer (spec.DEFAULT_TRAINING_MODEL)
DEFAULT_FAL_TRAINER = _FLUX_TRAINERS[0].app
# "$0.85 per 1000-step training run. It scales per step"
Z_IMAGE_TURBO_TRAINER = Trainer(
    "fal-ai/z-image-turbo-trainer-v2", "stills", 100, 10000, 0, 0.00085, _FAL_Z_IMAGE_TURBO, V2_INPUTS
)
# "$0.00095 per step (minimum of 500 steps is charged)"; steps 10 to 40000 (the API's own 100 at least)
QWEN_2512_TRAINER = Trainer(
    "fal-ai/qwen-image-2512-trainer-v2", "stills", 100, 40000, 500, 0.00095, _FAL_QWEN_2512, V2_INPUTS
)
LTX_FRAMES = FrameRule(fps=24, step=8, max_frames=121)  # LTX-2's VAE: 8 frames a latent
WAN_TRAINER = Trainer("fal-ai/wan-trainer", "stills+clips", 100, 20000, 0, 0.005, _FAL_WAN_TRAINER)
WAN22_T2V_TRAINER = Trainer(
    "fal-ai/wan-22-trainer/t2v-a14b", "stills+clips", 100, 10000, 100, None, _FAL_WAN22_GUIDE
)
WAN22_I2V_TRAINER = Trainer(
    "fal-ai/wan-22-trainer/i2v-a14b", "clips", 100, 10000, 100, None, _FAL_WAN22_GUIDE
)
WAN22_IMAGE_TRAINER = Trainer(
    "fal-ai/wan-22-image-trainer", "stills", 100, 10000, 100, 0.0045, _FAL_WAN22_IMAGE
)

BASE_MODELS: dict[str, BaseModelInfo] = {
    m.name: m
    for m in (
        BaseModelInfo(
            "flux.1",
            "FLUX.1",
            "FLUX.1",
            loads_on=FLUX_MODELS,  # FLUX.1's image models (fal's take LoRAs on flux-lora)
            fal_trainers=_FLUX_TRAINERS,
            offered_on_cluster=True,
            cluster_family="flux_training",
            source=_FAL_FLUX_FAST,
            # FLUX.1 [dev]'s: "use for revenue-generating activity is NOT a Non-Commercial Purpose"
            licence=Licence("FLUX.1 [dev] Non-Commercial License", False, _FLUX_1_DEV_LICENCE),
        ),
        BaseModelInfo(
            "z-image-turbo",
            "Z-Image-Turbo",
            "Z-Image",
            loads_on=("z-image-turbo", "z-image"),
            fal_trainers=(Z_IMAGE_TURBO_TRAINER,),
            cluster_dir="Z-Image-Turbo",
            offered_on_cluster=True,
            cluster_family="z_image_training",
            source=_Z_IMAGE_TURBO,
            licence=Licence(APACHE_2, True, _Z_IMAGE_TURBO),
            # ai-toolkit's published Z-Image-Turbo settings (github.com/Tongyi-MAI/Z-Image/issues/36):
            # "2000 steps is a suitable value", learning rate 1e-4 to 2e-4
            recommended=Recommended(2000, 16, 1e-4, "https://github.com/Tongyi-MAI/Z-Image/issues/36"),
            weights="Tongyi-MAI/Z-Image-Turbo",
        ),
        BaseModelInfo(
            "z-image-base",
            "Z-Image",
            "Z-Image",
            loads_on=("z-image", "z-image-turbo"),
            cluster_dir="Z-Image",
            offered_on_cluster=True,
            cluster_family="z_image_training",
            source=_Z_IMAGE,
            licence=Licence(APACHE_2, True, _Z_IMAGE),
            recommended=Recommended(
                1000, 16, 1e-4, "https://muapi.ai/tr/playground/z-image-base-lora-trainer"
            ),
            weights="Tongyi-MAI/Z-Image",
        ),
        BaseModelInfo(
            "qwen-image-2512",
            "Qwen-Image-2512",
            "Qwen-Image",
            loads_on=("qwen-image-2512",),
            fal_trainers=(QWEN_2512_TRAINER,),
            cluster_dir="Qwen-Image-2512",
            offered_on_cluster=True,
            cluster_family="qwen_image_training",
            source=_FAL_QWEN_2512,
            licence=Licence(APACHE_2, True, _QWEN_2512),
            recommended=Recommended(2000, 16, 2e-4, _FAL_QWEN_2512),  # fal's default 2000 steps
            weights="Qwen/Qwen-Image-2512",
        ),
        BaseModelInfo(
            "flux.2-klein-4b",
            "FLUX.2 [klein] 4B",
            "FLUX.2 [klein]",
            loads_on=("flux.2-klein-4b",),
            cluster_dir="FLUX.2-klein-base-4B",
            offered_on_cluster=True,
            cluster_family="flux2_klein_training",
            source=_KLEIN_4B,
            licence=Licence(APACHE_2, True, _KLEIN_4B),
            recommended=Recommended(1000, 16, 1e-4, _KLEIN_4B),
            weights="black-forest-labs/FLUX.2-klein-base-4B",
        ),
        BaseModelInfo(
            "flux.2-klein-9b",
            "FLUX.2 [klein] 9B",
            "FLUX.2 [klein]",
            loads_on=("flux.2-klein-9b",),
            cluster_dir="FLUX.2-klein-base-9B",
            offered_on_cluster=True,
            cluster_family="flux2_klein_training",
            source=_KLEIN_9B,
            licence=Licence(FLUX_NON_COMMERCIAL, False, _KLEIN_9B),
            recommended=Recommended(1000, 16, 1e-4, _KLEIN_4B),
            weights="black-forest-labs/FLUX.2-klein-base-9B",
        ),
        BaseModelInfo(
            "ltx-2",
            "LTX-2",
            "LTX-2",
            loads_on=("ltx-2",),  # not ltx-video: LTX-Video 0.9's layers are not LTX-2's
            frames=LTX_FRAMES,
            cluster_dir="LTX-2",
            offered_on_cluster=True,
            cluster_family="ltx2_training",
            source=_LTX_2,
            # free commercial use only under its revenue threshold: not marked as sellable
            licence=Licence("LTX-2 Community License Agreement", False, _LTX_2_LICENCE),
            # Civitai's LTX2 recipe: 3000 steps, rank 32, learning rate 2e-4
            recommended=Recommended(
                3000, 32, 2e-4, "https://developer.civitai.com/orchestration/recipes/training-ltx2"
            ),
            weights="Lightricks/LTX-2",
        ),
        BaseModelInfo(
            "wan-2.1-t2v-1.3b",
            "Wan 2.1 T2V 1.3B",
            "Wan 2.1",
            loads_on=("wan-1.3b-t2v",),
            frames=WAN_FRAMES,
            cluster_dir="Wan2.1-T2V-1.3B-Diffusers",
            offered_on_cluster=True,
            cluster_family="wan_training",
            source=_DIFFUSERS_WAN,
            licence=Licence(APACHE_2, True, _WAN_21),
        ),
        BaseModelInfo(
            "wan-2.1-t2v-14b",
            "Wan 2.1 T2V 14B",
            "Wan 2.1",
            # a 14B text-to-video LoRA names layers the image-to-video 14B has too
            loads_on=("wan-14b-i2v",),
            frames=WAN_FRAMES,
            cluster_dir="Wan2.1-T2V-14B-Diffusers",
            offered_on_cluster=True,
            cluster_family="wan_training",
            source=_DIFFUSERS_WAN,
            licence=Licence(APACHE_2, True, _WAN_21),
        ),
        BaseModelInfo(
            "wan-2.1-i2v-14b",
            "Wan 2.1 I2V 14B",
            "Wan 2.1",
            loads_on=("wan-14b-i2v",),
            fal_trainers=(WAN_TRAINER,),
            frames=WAN_FRAMES,
            cluster_dir="Wan2.1-I2V-14B-480P-Diffusers",
            offered_on_cluster=True,
            cluster_family="wan_training",
            source=_FAL_WAN_TRAINER,
            licence=Licence(APACHE_2, True, _WAN_21),
        ),
        BaseModelInfo(
            "wan-2.2-t2v-a14b",
            "Wan 2.2 A14B T2V",
            "Wan 2.2",
            loads_on=("wan-2.2-t2v", "wan-2.2-a14b-t2v"),
            fal_trainers=(WAN22_T2V_TRAINER, WAN22_IMAGE_TRAINER),
            frames=WAN_FRAMES,
            experts=Experts(boundary=0.875),
            cluster_dir="Wan2.2-T2V-A14B-Diffusers",
            offered_on_cluster=True,
            cluster_family="wan_training",
            source=_FAL_WAN22_GUIDE,
            licence=Licence(APACHE_2, True, _WAN_22),
        ),
        BaseModelInfo(
            "wan-2.2-i2v-a14b",
            "Wan 2.2 A14B I2V",
            "Wan 2.2",
            # fal's Wan 2.2 image-to-video app takes no LoRAs, and the cluster runs no Wan 2.2 I2V yet
            loads_on=(),
            fal_trainers=(WAN22_I2V_TRAINER,),
            frames=WAN_FRAMES,
            experts=Experts(boundary=0.9),
            cluster_dir="Wan2.2-I2V-A14B-Diffusers",
            offered_on_cluster=True,
            cluster_family="wan_training",
            source=_FAL_WAN22_GUIDE,
            licence=Licence(APACHE_2, True, _WAN_22),
        ),
    )
}
VIDEO_BASE_MODELS = tuple(name for name, m in BASE_MODELS.items() if m.video)
FAL_TRAINERS: dict[str, tuple[BaseModelInfo, Trainer]] = {
    t.app: (m, t) for m in BASE_MODELS.values() for t in m.fal_trainers
}


def base_model(name: str) -> BaseModelInfo:
    """The base model `name` (FLUX.1 for a record from before the field: ""); one the table does
    not know is refused in one line, never taken for FLUX.1."""
    found = BASE_MODELS.get(name or DEFAULT_BASE_MODEL)
    if found is None:
        raise InvalidInput(
            f"training.baseModel {name!r} is not a base model this version knows: use one of "
            f"{', '.join(BASE_MODELS)}"
        )
    return found


def one_gpu(spec: Mapping[str, Any]) -> bool:
    """Whether a LoraTraining's spec (as the API server stores it) trains a base model whose family
    does not spread over several GPUs: its Job holds one, whatever the chart's count (admission
    refuses more asked for: `gpus_rule`)."""
    training = spec.get("training")
    name = training.get("baseModel") if isinstance(training, Mapping) else None
    found = BASE_MODELS.get(str(name or DEFAULT_BASE_MODEL))
    return found is not None and not found.spreads


def trainer_of(base: str, provider: str, model: str, default_model: str) -> Trainer | None:
    """The fal trainer a run of `base` on `provider` uses: training.model where it names one of
    the base model's, its first where training.model is left at its default; None off fal, or for
    a training.model that names no trainer of fal's table (sent as given, FLUX's way)."""
    if provider != FAL.name:
        return None
    info = base_model(base)
    if model == default_model and info.fal_trainers:
        return info.fal_trainers[0]
    return info.trainer(model)


def media_of(base: str, asked: str, trainer: Trainer | None) -> tuple[bool, bool]:
    """(stills, clips): what the dataset gives the trainer. A video base model learns from clips
    and stills unless the person asks for stills (`asked`) or the trainer takes only one of them;
    FLUX.1 from stills. Admission refuses the combinations that cannot be (BASE_MODEL_RULES)."""
    info = base_model(base)
    clips = info.video and asked != "stills" and (trainer is None or trainer.clips)
    stills = asked != "clips" and (trainer is None or trainer.stills)
    return stills or not clips, clips


def likeness_model(base: str) -> str:
    """The image model a picture LoRA of `base` is drawn with for its likeness: FLUX.1's flux-lora,
    another family's first model (a video base's clips are drawn by its own trainer)."""
    info = BASE_MODELS.get(base or DEFAULT_BASE_MODEL)
    if info is None or info.name == DEFAULT_BASE_MODEL or info.video or not info.loads_on:
        return "flux-lora"
    return info.loads_on[0]


def drawn_on_cluster() -> tuple[BaseModelInfo, ...]:
    """The newer picture families' bases whose first model provider cluster draws, from their
    staged directory (FLUX.1's models are drawn from the directories the cluster's settings name)."""
    return tuple(
        m
        for m in BASE_MODELS.values()
        if m.offered_on_cluster and not m.video and m.loads_on and m.name != DEFAULT_BASE_MODEL
    )


def drawn_from(model: str) -> BaseModelInfo | None:
    """The base whose staged directory (`cluster_dir`) provider cluster draws image model `model`
    from: the picture base that names it first among the models loading its LoRAs; None for FLUX.1's."""
    return next((m for m in drawn_on_cluster() if m.loads_on[0] == model), None)


def picture_directory(model: str, flux_model: str, schnell_model: str) -> str:
    """The staged directory provider cluster draws image model `model` from: its base's, or the
    FLUX.1 directory the cluster's settings name (`flux_model`, `schnell_model` for flux-schnell)."""
    base = drawn_from(model)
    if base is not None:
        return base.cluster_dir
    return schnell_model if model == "flux-schnell" else flux_model


def likeness_drawn(base: str, provider: str) -> str | None:
    """The model `provider` draws a picture LoRA of `base`'s likeness with, None where it draws none
    of that family (fal's app for it not read): its evaluation is then skipped, saying why, and
    bills nothing."""
    model = likeness_model(base)
    if model in FLUX_MODELS:
        return model
    if provider == OWN_GPUS:
        return model if drawn_from(model) is not None else None
    return model if provider in drawn_by(model) else None


def lora_fits(base: str, model: str) -> bool:
    """Whether a LoRA made for `base` loads into `model` (a video or an image model)."""
    return model in base_model(base).loads_on


def loading(model: str) -> tuple[str, ...]:
    """The base models whose LoRAs `model` loads."""
    return tuple(name for name, m in BASE_MODELS.items() if model in m.loads_on)


def misfit(base: str, model: str, what: str) -> str:
    """Why `what` (a LoRA made for `base`) does not load into `model`, and what to do instead."""
    info, bases = base_model(base), loading(model)
    made = f"{what} is a {info.title} LoRA (its training.baseModel {info.name})"
    if not bases:
        return f"{made}, and model {model} loads LoRAs no LoraTraining makes: give one made for it by url"
    titles = " or ".join(dict.fromkeys(BASE_MODELS[b].title for b in bases))
    if not info.video and not BASE_MODELS[bases[0]].video:  # a picture LoRA of another family
        other = f"use model {info.loads_on[0]}, or " if info.loads_on else ""
        instead = f"{other}train one with training.baseModel {bases[0]} from the same video"
    elif not info.video:
        instead = (
            f"train one for it from the same video (a LoraTraining with training.baseModel {bases[0]}), or "
            "animate a picture made with it (imageRef)"
        )
    elif not BASE_MODELS[bases[0]].video:
        video = f" in a VideoGeneration of model {info.loads_on[0]}" if info.loads_on else " in ComfyUI"
        instead = f"use it{video}, or train one with training.baseModel {bases[0]}"
    else:
        other = f"use model {info.loads_on[0]}, or " if info.loads_on else ""
        instead = f"{other}train one with training.baseModel {bases[0]}"
    return f"{made}, and model {model} loads {titles} LoRAs: {instead} ({DOCS})"


def expert_ranges(boundary: float, train_timesteps: int = 1000) -> dict[str, tuple[float, float]]:
    """Each expert's timesteps, [low, high): the high-noise expert's from the boundary up, the
    low-noise expert's below it, as diffusers' WanPipeline hands them out (`t >= boundary_ratio ×
    num_train_timesteps` goes to `transformer`)."""
    if not 0 < boundary < 1:
        raise ValueError(f"a boundary ratio is between 0 and 1, not {boundary}")
    edge = boundary * train_timesteps
    return {"high": (edge, float(train_timesteps)), "low": (0.0, edge)}


def boundary_of(model_index: dict[str, object], base: str) -> float:
    """The experts' boundary: the staged model's model_index.json `boundary_ratio` where it says
    one, else the table's."""
    experts = base_model(base).experts
    if experts is None:
        raise ValueError(f"{base} has one transformer, no experts")
    said = model_index.get("boundary_ratio")
    return float(said) if isinstance(said, int | float) and not isinstance(said, bool) else experts.boundary


# --- admission: the combinations no provider offers -------------------------------------------

BASE = SpecField("training.baseModel", "string", DEFAULT_BASE_MODEL)
MODEL = SpecField("training.model", "string", DEFAULT_FAL_TRAINER)
PROVIDER = SpecField("provider", "string", FAL.name)
MEDIA = SpecField("dataset.media", "string", "auto")
TRAINING = SpecField("training", "object")
DOCS = "docs/lora-datasets.md#video-loras"
FAMILIES_DOCS = "docs/cluster-training.md#families"


def _or(values: tuple[str, ...]) -> str:
    return " or ".join(values)


def _is_base(name: str) -> Is:
    return Is(BASE, name)


def _provider_rule(m: BaseModelInfo) -> Rule:
    trained = [p for p in m.providers if p != OFFLINE.name]
    if trained:
        said = f"is trained on provider {_or(tuple(trained))} (or {OFFLINE.name}, a labelled simulation)"
    else:
        said = f"has no trainer here but {OFFLINE.name}'s labelled simulation"
    # the bases of its own kind (pictures or video) fal trains, and where that kind is documented
    fal = [n for n, o in BASE_MODELS.items() if o.video == m.video and FAL.name in o.providers]
    hint = f"use provider {_or(m.providers)}"
    if FAL.name not in m.providers and fal:
        hint += f", or a baseModel fal trains ({', '.join(fal)})"
    return Rule(
        BASE,
        f"training.baseModel {m.name} {said}: {hint} ({DOCS if m.video else FAMILIES_DOCS})",
        (AtDefault(BASE), Not(_is_base(m.name)), Equals(PROVIDER, m.providers)),
    )


def _trainer_rule(m: BaseModelInfo) -> Rule:
    apps = tuple(t.app for t in m.fal_trainers)
    return Rule(
        MODEL,
        f"training.model: with training.baseModel {m.name} on provider fal, use one of fal's trainers "
        f"for it ({', '.join(apps)}), or leave training.model out for {apps[0]} ({DOCS})",
        (
            AtDefault(BASE),
            Not(_is_base(m.name)),
            Differs(PROVIDER, FAL.name),
            AtDefault(MODEL),
            In(MODEL, apps),
        ),
    )


def _flux_trainer_rule() -> Rule:
    others = tuple(app for app, (m, _) in FAL_TRAINERS.items() if m.name != DEFAULT_BASE_MODEL)
    return Rule(
        MODEL,
        "training.model names another base model's trainer, which makes no FLUX.1 LoRA: set "
        f"training.baseModel to the model it trains, or leave training.model out ({DOCS})",
        (
            AtDefault(MODEL),
            _other_base(),
            Differs(PROVIDER, FAL.name),
            Not(In(MODEL, others)),
        ),
    )


def _other_base() -> Both:
    """training.baseModel is set to a base other than FLUX.1 (guarded: a spec without training is
    FLUX.1's)."""
    others = tuple(_is_base(name) for name in BASE_MODELS if name != DEFAULT_BASE_MODEL)
    return Both((Has(TRAINING), Either(others)))


def _video_base() -> Both:
    """training.baseModel is a video model (guarded: a spec without training is FLUX.1's)."""
    return Both((Has(TRAINING), Either(tuple(_is_base(name) for name in VIDEO_BASE_MODELS))))


def _media_rules() -> list[Rule]:
    clips_only = [
        m.name for m in BASE_MODELS.values() if m.fal_trainers and not any(t.stills for t in m.fal_trainers)
    ]
    stills_only = [t.app for m in BASE_MODELS.values() if m.video for t in m.fal_trainers if not t.clips]
    rules = [
        Rule(
            MEDIA,
            "dataset.media clips needs a video training.baseModel: a FLUX.1 LoRA learns from stills; "
            f"leave dataset.media auto, or set training.baseModel ({DOCS})",
            (AtDefault(MEDIA), Not(Is(MEDIA, "clips")), _video_base()),
        )
    ]
    for app in stills_only:
        rules.append(
            Rule(
                MEDIA,
                f"dataset.media clips: fal's {app} learns from stills only; leave dataset.media auto or "
                f"stills, or use another of fal's Wan trainers ({DOCS})",
                (AtDefault(MEDIA), Not(Is(MEDIA, "clips")), AtDefault(MODEL), Not(Is(MODEL, app))),
            )
        )
    for name in clips_only:
        rules.append(
            Rule(
                MEDIA,
                f"dataset.media stills: training.baseModel {name} learns from clips only (fal's trainer "
                f"needs video); leave dataset.media auto or clips ({DOCS})",
                (AtDefault(MEDIA), Not(Is(MEDIA, "stills")), AtDefault(BASE), Not(_is_base(name))),
            )
        )
    return rules


GPUS = SpecField("resources.gpus", "integer")
NODES = SpecField("resources.nodes", "integer", 1)


def gpus_rule(m: BaseModelInfo) -> Rule:
    """A base model whose family trains on one GPU: several GPUs or nodes refused, never held idle
    and billed. Not for the default base model (a spec that leaves training.baseModel out passes)."""
    if m.name == DEFAULT_BASE_MODEL:
        raise ValueError(f"{m.name} is the default base model: its family must spread over several GPUs")
    return Rule(
        GPUS,
        f"resources.gpus: training.baseModel {m.name} trains on one GPU on provider {OWN_GPUS} (its trainer "
        "does not spread over several): leave resources.gpus and resources.nodes out or at 1 "
        "(docs/cluster-training.md#several-gpus)",
        (
            AtDefault(BASE),
            Not(_is_base(m.name)),
            Differs(PROVIDER, OWN_GPUS),
            Both((Either((Unset(GPUS), In(GPUS, (1,)))), AtDefault(NODES))),
        ),
    )


def _rules() -> list[Rule]:
    others = [m for name, m in BASE_MODELS.items() if name != DEFAULT_BASE_MODEL]
    rules = [_provider_rule(m) for m in others]
    rules += [gpus_rule(m) for m in BASE_MODELS.values() if m.offered_on_cluster and not m.spreads]
    rules += [_trainer_rule(m) for m in others if m.fal_trainers]
    return [*rules, _flux_trainer_rule(), *_media_rules()]


BASE_MODEL_RULES: tuple[GeneratedRule, ...] = tuple(generate(rule) for rule in _rules())
