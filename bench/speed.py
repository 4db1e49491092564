"""`contentgen run --offline` against one bare decode, on a 3-minute video of one person (issue 36,
part 8): the whole run of a LoraTraining (the dataset stage, the offline provider's placeholder
training, and the offline likeness evaluation of its placeholder pictures) must take at most
RUN_VS_DECODE times the wall time of one bare multithreaded PyAV decode of every frame of the
same video, at 720p; 1080p is measured too.

The video (cached in bench/out/, git-ignored): 180 s at 30 fps, H.264 (crf 20, light noise; and
at 720p also crf 26 with less noise, a cheaper decode: "720p light"), of
one person: bench/transitions.py's development plans of one photograph's person one after the
other (close-ups and medium shots filmed by hand, some in another look, distractors, hard cuts,
fades and dissolves of 0.5-3 s), rendered at 1280 × 720 and 1920 × 1080.

Each run records into a catalog of its own, new each round (a first run of the resource, as on a
new video), not into ./contentgen-data/catalog, where every earlier benchmark run's version of the
same resource makes each progress write of the record slower.

Each round times the bare decode and the run (bench/run.py's `timed`: wall time, CPU time,
peak RSS of that process alone), in turn and in alternating order, so that other work on the
shared machine hits both alike; the run's result gives its stages' seconds. The table has the
medians, the ratio of the median wall times (the target), the ratio of CPU times, and the load
average (1 minute) before the first round and after each. `make bench` runs it (bench/run.py);
alone: `.venv/bin/python -m bench.speed [--repeat N] [--no-docs] [--size "720p light"]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import BIN, DECODE, OUT, Timed, pipeline_command, timed  # noqa: E402
from bench.sections import replace_section  # noqa: E402
from scripts.synthetic_video import SceneSpec, SyntheticVideo, write_video  # noqa: E402

RUN_VS_DECODE = 1.2  # the target at 720p
SECONDS, FPS = 180.0, 30
# name: (width, height, crf, noise). "720p light" is the same video encoded as a quiet, clean
# source is (crf 26, little noise: ~0.4 Mbit/s): its decode is 3-4 times cheaper, so what the
# run does beside decoding weighs more (issue 36's 720p video decoded in 3.1 s).
SIZES = {
    "720p": (1280, 720, 20, 3.0),
    "720p light": (1280, 720, 26, 1.0),
    "1080p": (1920, 1080, 20, 3.0),
}
SECTION = "run-vs-decode"
# One person: bench/transitions.py's dev plans of Grace Hopper, one after another (seeds that
# give enough distinct framings).
PERSON, SEEDS = "grace_hopper", (1, 6, 11, 16, 21, 26, 31, 36)


def one_person_plan(seconds: float = SECONDS) -> list[SceneSpec]:
    """About `seconds` of one person's shots (see the module)."""
    from bench.transitions import DIM, Clip, plan

    specs: list[SceneSpec] = []
    for seed in SEEDS:
        clip = Clip(PERSON, PERSON, seed, medium=f"{PERSON}:wide", looks=DIM if seed % 2 == 0 else ())
        try:
            part = plan(clip, "dev")
        except RuntimeError:  # too few distinct framings with this seed
            continue
        first = not specs
        for spec in part:
            tag = f"{spec.shot}@{seed}" if spec.shot else ""
            specs.append(replace(spec, shot=tag, transition="cut" if first else spec.transition))
            first = False
            if sum(s.seconds for s in specs) >= seconds:
                return specs
    return specs


def cached(name: str) -> SyntheticVideo:
    """The one-person video at `name` (720p, 1080p), made again only when missing or changed."""
    width, height, crf, noise = SIZES[name]
    specs = one_person_plan()
    stem = f"speed-{name.replace(' ', '-')}"
    path, meta = OUT / f"{stem}.mp4", OUT / f"{stem}.json"
    wanted = json.loads(json.dumps([asdict(s) for s in specs]))
    params = {"width": width, "height": height, "fps": FPS, "crf": crf, "noise": noise}
    if path.exists() and meta.exists():
        saved = json.loads(meta.read_text())
        if saved.get("specs") == wanted and saved.get("params") == params:
            return SyntheticVideo(path=path, specs=specs, **saved["video"])
    print(f"generating {path.relative_to(ROOT)}...", file=sys.stderr)
    made = write_video(
        path, specs, width=width, height=height, fps=FPS, crf=crf, noise=noise, audio=True, seed=1
    )
    fields = asdict(made)
    fields.pop("path")
    fields.pop("specs")
    meta.write_text(json.dumps({"params": params, "video": fields, "specs": wanted}))
    return made


def stages_of(result: Path) -> dict[str, float]:
    data = json.loads(result.read_text())
    return {stage["name"]: stage["seconds"] for stage in data.get("stages", [])}


def measure(name: str, repeat: int) -> dict[str, object]:
    """Time the bare decode and the run of the `name` video, `repeat` rounds (see the module)."""
    video = cached(name)
    runs: dict[str, list[Timed]] = {"decode": [], "run": []}
    stages: list[dict[str, float]] = []
    load = [os.getloadavg()[0]]
    command: list[str] = []
    for rep in range(repeat):
        print(f"{name}: round {rep + 1}/{repeat}...", file=sys.stderr)
        for kind in ("decode", "run") if rep % 2 == 0 else ("run", "decode"):
            if kind == "decode":
                runs[kind].append(timed([sys.executable, "-c", DECODE, str(video.path)]))
                continue
            work = OUT / f"speed-run-{name.replace(' ', '-')}"
            command, result = pipeline_command(video.path, work, True)
            # A catalog of its own in the work folder, new each round: the run's live progress
            # rewrites its record about once a second, at a cost that grows with the versions the
            # record holds (docs/performance.md, "Catalog writes"), and the default catalog
            # (./contentgen-data/catalog) keeps every earlier benchmark run's version of "bench".
            command += ["--catalog", str(work / "catalog")]
            runs[kind].append(timed(command))
            stages.append(stages_of(result))
        load.append(os.getloadavg()[0])
    # The work folder's manifest and result would be read as resources of this repository by
    # `contentgen validate .` (as bench/run.py's): only the videos and speed.json stay.
    shutil.rmtree(OUT / f"speed-run-{name.replace(' ', '-')}", ignore_errors=True)
    wall = {kind: statistics.median(t.seconds for t in timings) for kind, timings in runs.items()}
    cpu = {kind: statistics.median(t.cpu_seconds for t in timings) for kind, timings in runs.items()}
    names = list(stages[0])
    return {
        "video": {"name": name, "width": video.width, "height": video.height, "frames": video.frames},
        "megabits_per_second": video.path.stat().st_size * 8 / video.duration / 1e6,
        "seconds": {kind: [round(t.seconds, 3) for t in timings] for kind, timings in runs.items()},
        "cpu_seconds": {kind: [round(t.cpu_seconds, 3) for t in timings] for kind, timings in runs.items()},
        "median_seconds": wall,
        "median_cpu_seconds": cpu,
        "run_vs_decode": wall["run"] / wall["decode"],
        "cpu_run_vs_decode": cpu["run"] / cpu["decode"],
        "paired_run_vs_decode": statistics.median(
            r.seconds / d.seconds for r, d in zip(runs["run"], runs["decode"], strict=True)
        ),
        "stages": {stage: statistics.median(s.get(stage, 0.0) for s in stages) for stage in names},
        "load_average": load,
        "command": " ".join(command).replace(str(BIN) + "/", ".venv/bin/").replace(str(OUT), "bench/out"),
    }


def table(report: dict[str, dict[str, object]], date: str, repeat: int) -> str:
    """The section of docs/performance.md."""
    rows = [
        f"One person, 180 s at {FPS} fps, H.264 (bench/speed.py); median of {repeat} rounds "
        f"on {os.cpu_count()} CPUs, {date}:",
        "",
        "| video | bare decode, wall (CPU) | `contentgen run --offline`, wall (CPU) | **run ÷ decode**, wall "
        "(CPU; round by round) | stages (median s) | load average (1 min) before, after each round |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in report.items():
        wall: dict[str, float] = r["median_seconds"]  # type: ignore[assignment]
        cpu: dict[str, float] = r["median_cpu_seconds"]  # type: ignore[assignment]
        stages: dict[str, float] = r["stages"]  # type: ignore[assignment]
        load: list[float] = r["load_average"]  # type: ignore[assignment]
        ratio = float(r["run_vs_decode"])  # type: ignore[arg-type]
        target = f" (target ≤ {RUN_VS_DECODE}×: {'met' if ratio <= RUN_VS_DECODE else '**missed**'})"
        shown = ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in stages.items() if seconds >= 0.005)
        rows.append(
            f"| {name} (crf {SIZES[name][2]}, {r['megabits_per_second']:.1f} Mbit/s) "
            f"| {wall['decode']:.1f} s ({cpu['decode']:.1f} s) "
            f"| {wall['run']:.1f} s ({cpu['run']:.1f} s) "
            f"| **{ratio:.2f}×** ({r['cpu_run_vs_decode']:.2f}×; {r['paired_run_vs_decode']:.2f}×)"
            f"{target if name.startswith('720p') else ''} | {shown} | {', '.join(f'{x:.1f}' for x in load)} |"
        )
    command = next(iter(report.values()))["command"]
    rows += ["", f"The run: `{command}` (bench/run.py's manifest: maxFrames 40, faceFilter on)."]
    return "\n".join(rows) + "\n"


def main(repeat: int = 3, docs: bool = True, sizes: list[str] | None = None) -> dict[str, dict[str, object]]:
    """Measure every video (or only `sizes`: then docs/performance.md is left as it is, its table
    has every row)."""
    OUT.mkdir(parents=True, exist_ok=True)
    report = {name: measure(name, repeat) for name in (sizes or SIZES)}
    date = time.strftime("%Y-%m-%d %H:%M")
    text = table(report, date, repeat)
    saved = OUT / ("speed.json" if not sizes else "speed-some.json")
    saved.write_text(json.dumps({"date": date, "repeat": repeat, **report}, indent=1) + "\n")
    print(text)
    if docs and not sizes:
        replace_section(SECTION, text)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/performance.md")
    parser.add_argument(
        "--size",
        action="append",
        choices=list(SIZES),
        help="measure only this video (repeatable; the docs are not written then)",
    )
    args = parser.parse_args()
    main(args.repeat, not args.no_docs, args.size)
