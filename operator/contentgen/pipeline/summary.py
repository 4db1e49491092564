"""A few lines telling a person what a run produced and where it went."""

from __future__ import annotations

from contentgen.api import RunResult
from contentgen.api.words import counted
from contentgen.tables import likeness_summary, training_lines


def summarize(result: RunResult) -> str:
    note = " (offline provider: placeholder outputs, not real generations)" if result.placeholder else ""
    version = f" as version {result.version}" if result.version else ""
    what = f"{result.kind} {result.namespace}/{result.name}"
    lines = [f"{what} succeeded{version} with {result.provider}{note}"]
    if result.lora is not None:
        lines.append(f"  LoRA version {result.lora.version}: {result.lora.model_uri}")
        likeness = result.lora.likeness
        if likeness is not None and likeness.choice:  # where the training's checkpoints were scored
            lines.append(f"  its model: {likeness.choice}")
        lines += [f"  {line}" for line in training_lines(result.lora.wire())]
    if result.dataset is not None:
        scenes = len(result.dataset.scenes)
        faces = sum(1 for image in result.dataset.images if image.face)
        where = result.dataset.archive.uri if result.dataset.archive else ""
        count = len(result.dataset.images)
        lines.append(f"  dataset: {count} images ({faces} with a face) from {scenes} scenes: {where}")
    for image in result.images or []:
        lines.append(f"  image {image.width}x{image.height}: {image.uri}")
    if result.video is not None:
        v = result.video
        lines.append(f"  video {v.width}x{v.height}, {v.duration_seconds:.1f} s: {v.uri}")
        lines.append(f"  its poster: {v.poster_uri}")
        if v.likeness is not None:  # the first reason carries the median, where there is one
            why = f": {v.likeness.reasons[0]}" if v.likeness.reasons else ""
            lines.append(f"  likeness over time: {v.likeness.verdict}{why}")
    if result.transcript is not None:
        t = result.transcript
        stats = f"{t.word_count} words, {t.duration_seconds:.1f} s, {counted(t.speakers, 'speaker')}"
        lines.append(f"  transcript: {stats}: {t.text_uri}")
    if result.evaluation is not None:
        e = result.evaluation
        lines.append(
            f"  evaluated version {e.lora.version} of {e.lora.name} again as its evaluation e{e.evaluation}: "
            f"{likeness_summary(e.likeness.wire())}"
        )
    lines.append(f"  result: {result.result_uri}")
    timing = ", ".join(f"{s.name} {s.seconds:.1f}s" for s in result.stages)
    lines.append(f"  stages: {timing}")
    return "\n".join(lines)
