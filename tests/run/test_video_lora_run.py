"""`contentgen run --offline` of a video LoRA (the examples `make demo` runs): the sample video's
stills and clips archived flat, the offline provider's labelled Wan 2.2 pair stored with its ComfyUI
files, its simulated checkpoints scored on clips' frames and the best one kept, a VideoGeneration
that takes it by loraRef with its lineage, a FLUX.1 LoRA refused in a video and the video LoRA
refused in a picture, each in one line naming the fix."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import yaml

from contentgen.api import RunResult
from contentgen.cli.main import main
from contentgen.pipeline.lora_formats import read_header
from tests.conftest import EXAMPLES

SAMPLE = EXAMPLES / "media" / "sample.mp4"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out + out.err


def local(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def test_a_video_lora_trained_offline_then_a_clip_made_with_it(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(
        capsys,
        "run",
        "--offline",
        "--source",
        str(SAMPLE),
        "--result",
        "lora.json",
        str(EXAMPLES / "loratraining-video.yaml"),
    )
    assert code == 0, out
    result = RunResult.model_validate_json((workspace / "lora.json").read_text())
    lora, dataset = result.lora, result.dataset
    assert lora is not None and dataset is not None and result.placeholder
    assert (lora.base_model, lora.training_model) == ("wan-2.2-t2v-a14b", "fal-ai/wan-22-trainer/t2v-a14b")
    # the pair: the high-noise expert is the model, the low-noise one beside it, each labelled
    for uri, expert in ((lora.model_uri, "high-noise"), (lora.low_noise_model_uri, "low-noise")):
        header, _ = read_header(local(uri).read_bytes())
        said = header["__metadata__"]
        assert said["contentgen.placeholder"] == "true" and said["contentgen.expert"] == expert
        assert "simulated" in said["contentgen.note"]
    prefix = lora.model_uri.rsplit("/", 1)[0]
    names = {a.uri.removeprefix(prefix + "/") for a in result.artifacts if a.uri.startswith(prefix)}
    assert {"comfyui/model.safetensors", "comfyui/model-low-noise.safetensors"} <= names
    comfy, _ = read_header(local(f"{prefix}/comfyui/model.safetensors").read_bytes())
    layers = [k for k in comfy if k != "__metadata__" and not k.startswith("contentgen.subject.")]
    assert layers and all(k.startswith("diffusion_model.blocks.") for k in layers)
    # its checkpoints scored on clips' frames as they were stored (the simulation's face, as far as
    # each step learned it), the best-scoring one its model, both files of the pair that step's
    likeness = lora.likeness
    assert likeness is not None and likeness.verdict in ("good", "poor") and likeness.median is not None
    curve = {p.step: p for p in likeness.checkpoints}
    assert sorted(curve) == [250, 500, 750, 1000] and lora.chosen_step == likeness.chosen_step
    assert likeness.clip_frames == 4 and {p.clip_frames for p in curve.values()} == {4}  # the UI says so
    assert curve[likeness.chosen_step].median == max(
        p.median or 0 for p in curve.values() if p.verdict == "good"
    )
    assert f"step-{lora.chosen_step:06d}" in local(curve[lora.chosen_step].model_uri).name
    chosen = read_header(local(lora.low_noise_model_uri).read_bytes())[0]["__metadata__"]
    assert chosen["contentgen.step"] == str(lora.chosen_step)  # the low-noise file is the chosen step's too
    scored = json.loads(local(curve[lora.chosen_step].report_uri).read_text())["scored"]
    assert scored and all(len(s["frames"]) == 4 for s in scored)  # each clip scored on 4 frames
    assert any(f is not None for s in scored for f in s["frames"])
    # the dataset: stills and clips, flat, each beside its caption
    clips = dataset.summary.clips if dataset.summary else None
    assert clips is not None and clips.kept > 0 and (clips.frames, clips.fps) == (33, 16)
    with zipfile.ZipFile(local(dataset.archive.uri)) as archive:
        members = archive.namelist()
    assert sum(m.endswith(".mp4") for m in members) == clips.kept
    assert all("/" not in m for m in members)
    assert any(a.uri.endswith("/clips/clip-0001.mp4") for a in result.artifacts)

    # a clip of the person from a prompt, with the LoRA by loraRef
    code, out = run(
        capsys, "run", "--offline", "--result", "clip.json", str(EXAMPLES / "videogeneration-lora.yaml")
    )
    assert code == 0, out
    clip = RunResult.model_validate_json((workspace / "clip.json").read_text())
    [used] = clip.loras or []
    assert (used.name, used.version, used.base_model) == ("demo-avatar-video", 1, "wan-2.2-t2v-a14b")
    assert used.low_noise_uri == lora.low_noise_model_uri
    # the clip shows the person (simulated, as far as the chosen step learned them): a number
    video = clip.video
    assert video is not None and video.likeness is not None and video.likeness.median is not None
    assert any("simulat" in reason for reason in video.likeness.reasons)
    code, out = run(capsys, "assets", "lineage", "demo-avatar-walk")
    assert code == 0 and "demo-avatar-video" in out

    # a picture cannot take it; a FLUX.1 LoRA cannot go into the video
    picture = yaml.safe_load((EXAMPLES / "imagegeneration-lora.yaml").read_text())
    picture["spec"]["loras"] = [{"loraRef": {"name": "demo-avatar-video"}}]
    (workspace / "picture.yaml").write_text(yaml.safe_dump(picture))
    code, out = run(capsys, "run", "--offline", str(workspace / "picture.yaml"))
    assert (
        code != 0 and "LoraIncompatible" in out and "use it in a VideoGeneration of model wan-2.2-t2v" in out
    )


def test_a_flux_lora_in_a_video_is_refused_naming_the_fix(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
    manifest["spec"]["dataset"]["captioning"] = "template"
    manifest["spec"]["evaluation"] = {"enabled": False}
    (workspace / "flux.yaml").write_text(yaml.safe_dump(manifest))
    code, out = run(capsys, "run", "--offline", "--source", str(SAMPLE), str(workspace / "flux.yaml"))
    assert code == 0, out
    walk = yaml.safe_load((EXAMPLES / "videogeneration-lora.yaml").read_text())
    walk["spec"]["loras"] = [{"loraRef": {"name": "demo-avatar"}}]
    (workspace / "walk.yaml").write_text(yaml.safe_dump(walk))
    code, out = run(capsys, "run", "--offline", str(workspace / "walk.yaml"))
    assert code != 0
    [said] = [line for line in out.splitlines() if "LoraIncompatible" in line]
    assert "is a FLUX.1 LoRA" in said and "training.baseModel wan-2.2-t2v-a14b" in said
    assert not list((workspace / "contentgen-data" / "store").glob("generated-videos/**/video.mp4"))
