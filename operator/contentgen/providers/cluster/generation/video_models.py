"""provider cluster's video models as a platform team stages them (video.py's "Staged layout"):
each model's directory under the models' root, what it must hold and how it is run. Plain data,
read by the operator too (a warm pool serves one staged directory: controller/denoising.py), so
nothing here imports the drawing stack."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WAN_REQUIRED = ("model_index.json", "scheduler", "text_encoder", "tokenizer", "transformer", "vae")
WAN_I2V_REQUIRED = (*WAN_REQUIRED, "image_encoder", "image_processor")
LTX_REQUIRED = WAN_REQUIRED
LTX2_REQUIRED = (*WAN_REQUIRED, "audio_vae", "connectors", "vocoder")


@dataclass(frozen=True)
class Staged:
    """A video model as it is staged: the directory's name under the models' root (its published
    repository's), what it must hold, and how it is run (the model card's steps and guidance)."""

    directory: str
    repository: str  # where the platform team downloads it from (never this worker)
    required: tuple[str, ...]
    family: str  # wan | ltx | ltx2
    steps: int
    guidance: float
    multiple: int  # the frame's width and height are multiples of this
    directory_720p: str = ""  # another checkpoint for 720p requests ("" the same)
    guidance_2: float = 0.0  # Wan 2.2 A14B: the low-noise expert's guidance (0: `guidance`)
    # the pipeline's other arguments this checkpoint is drawn with (its generation's, not the latest's)
    arguments: tuple[tuple[str, Any], ...] = ()


STAGED: dict[str, Staged] = {
    "wan-1.3b-t2v": Staged(
        "Wan2.1-T2V-1.3B-Diffusers", "Wan-AI/Wan2.1-T2V-1.3B-Diffusers", WAN_REQUIRED, "wan", 50, 5.0, 16
    ),
    "wan-14b-i2v": Staged(
        "Wan2.1-I2V-14B-480P-Diffusers",
        "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        WAN_I2V_REQUIRED,
        "wan",
        50,
        5.0,
        16,
        directory_720p="Wan2.1-I2V-14B-720P-Diffusers",
    ),
    # the Wan team's t2v_A14B: 40 steps, guidance 4.0 on the high-noise expert, 3.0 on the low-noise one
    "wan-2.2-a14b-t2v": Staged(
        "Wan2.2-T2V-A14B-Diffusers",
        "Wan-AI/Wan2.2-T2V-A14B-Diffusers",
        (*WAN_REQUIRED, "transformer_2"),
        "wan",
        40,
        4.0,
        16,
        guidance_2=3.0,
    ),
    "ltx-video": Staged("LTX-Video", "Lightricks/LTX-Video", LTX_REQUIRED, "ltx", 50, 3.0, 32),
    # diffusers 0.42's LTX2Pipeline defaults and its example for Lightricks/LTX-2 (30 steps at
    # guidance 3.0), with what its docstring gives LTX-2.0 where the defaults are LTX-2.3's: STG at
    # block 29 (not 28), and the legacy cross-modality timestep (use_cross_timestep False)
    "ltx-2": Staged(
        "LTX-2",
        "Lightricks/LTX-2",
        LTX2_REQUIRED,
        "ltx2",
        30,
        3.0,
        32,
        arguments=(("spatio_temporal_guidance_blocks", (29,)), ("use_cross_timestep", False)),
    ),
}


def staged_directory(model: str, resolution: str) -> str:
    entry = STAGED[model]
    return entry.directory_720p if resolution == "720p" and entry.directory_720p else entry.directory


def staged_as(directory: str) -> tuple[str, str] | None:
    """The video model (api/video/table.py's name) and resolution a staged directory draws, or
    None where it is no video model's (a FLUX model's)."""
    for model, entry in STAGED.items():
        if directory == entry.directory_720p:
            return model, "720p"
        if directory == entry.directory:
            return model, "480p"
    return None
