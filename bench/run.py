"""Benchmark of the LoRA dataset stage against the predecessor's tool and against bare decoding.

`make bench` (or `.venv/bin/python -m bench.run`) measures, on this machine and in one run:

- the whole `contentgen run --offline` of a LoraTraining on a generated 3-minute 1080p H.264
  video of three people (an interview and a podcast, bench/people.LONG_CASTS), against
  PySceneDetect's CLI (`scenedetect -i VIDEO -o DIR detect-content save-images`, the
  predecessor's approach) and against a bare multithreaded PyAV decode of every frame: wall
  time (median of --repeat runs, taken in turn so that other load on the machine hits all
  three alike) and the ratios;
- the people benchmark (bench/people.py) on its development and held-out sets;
- scene-cut F1 (a cut counts when found within ±0.5 s) and the share of dataset images that
  come from scenes showing a face, on the 3-minute video and on a few shorter ones;
- the peak RSS of each command (from wait4), for the 3-minute video and the 25 s sample, to
  show that memory does not grow with the video;
- `contentgen run --offline` against one bare decode on a 3-minute video of one person at 720p
  and 1080p, stages timed (bench/speed.py; its own section of docs/performance.md).

It writes bench/out/results.json, prints a markdown table and puts it into bench/README.md and
docs/performance.md.
Generated videos are cached in bench/out/ (git-ignored).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import cv2  # noqa: E402

from scripts.synthetic_video import SyntheticVideo, random_plan, write_video  # noqa: E402

OUT = ROOT / "bench" / "out"
README = ROOT / "bench" / "README.md"
BIN = Path(sys.executable).parent
SAMPLE = ROOT / "examples" / "media" / "sample.mp4"
TOLERANCE = 0.5
TARGETS = {"vs_scenedetect": 0.8, "vs_decode": 1.0, "cut_f1": 0.95, "face_share": 0.8}
# The benchmark video: 3 minutes of 1080p30 H.264, three people (an interview and a podcast:
# bench/people.long_plan), shots of 2.5-5 s joined by cuts, dissolves and fades.
BENCH_VIDEO = {
    "seconds": 180.0,
    "width": 1920,
    "height": 1080,
    "fps": 30,
    "crf": 20,
    "noise": 3.0,
    "seed": 7,
    "people": 1,
}
# Shorter videos that only feed the accuracy numbers.
ACCURACY_VIDEOS = [
    {"seconds": 60.0, "width": 640, "height": 360, "fps": fps, "crf": 23, "noise": 3.0, "seed": seed}
    for seed, fps in ((11, 24), (12, 25), (13, 30), (14, 30))
]
MANIFEST = """\
apiVersion: contentgen.io/v1alpha1
kind: LoraTraining
metadata:
  name: bench
spec:
  owner: bench
  source:
    url: {video}
  triggerWord: benchperson
  provider: offline
  dataset:
    maxFrames: 40
    # The short accuracy videos' face shots are four framings of one photograph.
    minFrames: 4
    minSceneSeconds: 1.0
    faceFilter: true
"""
DECODE = """\
import sys, av
with av.open(sys.argv[1]) as container:
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    print(sum(1 for _ in container.decode(stream)))
"""


@dataclass
class Timed:
    seconds: float
    cpu_seconds: float  # user + system, all threads
    peak_rss_mb: float
    output: str


# Runs a command and writes its wall time and peak RSS to a file. It runs in a small process of
# its own: a child forked from this (large) one would count this one's pages in its peak RSS.
TIMER = """\
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
seconds = time.perf_counter() - started
with open(sys.argv[1], "w") as out:
    json.dump(
        {
            "seconds": seconds,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "rss_kb": usage.ru_maxrss,
            "code": os.waitstatus_to_exitcode(status),
        },
        out,
    )
"""


def timed(command: Sequence[str]) -> Timed:
    """Run `command`: its wall time and peak resident memory (wait4: that process alone)."""
    with tempfile.TemporaryDirectory() as scratch:
        measured, log = Path(scratch) / "measured.json", Path(scratch) / "log"
        with log.open("wb") as out:
            subprocess.run(
                [sys.executable, "-c", TIMER, str(measured), *command],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
        output = log.read_text(errors="replace")
        result = json.loads(measured.read_text()) if measured.exists() else {"code": -1}
    if result["code"] != 0:
        raise SystemExit(f"{' '.join(command)} failed ({result['code']}):\n{output[-3000:]}")
    return Timed(result["seconds"], result["cpu_seconds"], result["rss_kb"] / 1024, output)


def cached_video(name: str, params: dict[str, float]) -> SyntheticVideo:
    """The generated video `name`, made again only when missing or made with other parameters
    or another plan (the synthetic framings may change)."""
    path, meta = OUT / f"{name}.mp4", OUT / f"{name}.json"
    if params.get("people"):
        from bench.people import long_plan

        plan = long_plan(float(params["seconds"]))
    else:
        plan = random_plan(float(params["seconds"]), seed=int(params["seed"]))
    specs = json.loads(json.dumps([asdict(spec) for spec in plan]))
    if path.exists() and meta.exists():
        saved = json.loads(meta.read_text())
        if saved["params"] == params and saved.get("specs") == specs:
            return SyntheticVideo(path=path, **saved["video"])
    print(f"generating {path.relative_to(ROOT)} ({params['seconds']:g} s)...", file=sys.stderr)
    video = write_video(
        path,
        plan,
        width=int(params["width"]),
        height=int(params["height"]),
        fps=int(params["fps"]),
        crf=int(params["crf"]),
        noise=float(params["noise"]),
        audio=True,
        seed=int(params["seed"]),
    )
    fields = asdict(video)
    fields.pop("path")
    fields.pop("specs")
    meta.write_text(json.dumps({"params": params, "specs": specs, "video": fields}, indent=1))
    return video


def match_cuts(
    found: Sequence[float], truth: Sequence[float], tolerance: float = TOLERANCE
) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives), each true cut matched at most once."""
    unmatched = sorted(truth)
    hits = 0
    for cut in sorted(found):
        near = [t for t in unmatched if abs(t - cut) <= tolerance]
        if near:
            unmatched.remove(min(near, key=lambda t: abs(t - cut)))
            hits += 1
    return hits, len(found) - hits, len(unmatched)


def f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def scene_at(video: SyntheticVideo, time_: float) -> int:
    return next(
        (i for i, (start, end) in enumerate(video.scenes) if start <= time_ < end), len(video.scenes) - 1
    )


@dataclass
class Accuracy:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    images: int = 0
    face_images: int = 0

    def add(self, video: SyntheticVideo, scene_starts: Sequence[float], image_times: Sequence[float]) -> None:
        tp, fp, fn = match_cuts(scene_starts[1:], video.cuts)
        self.tp, self.fp, self.fn = self.tp + tp, self.fp + fp, self.fn + fn
        self.images += len(image_times)
        self.face_images += sum(video.face_scenes[scene_at(video, t)] for t in image_times)

    @property
    def f1(self) -> float:
        return f1(self.tp, self.fp, self.fn)

    @property
    def face_share(self) -> float:
        return self.face_images / self.images if self.images else 0.0


def has_run_command() -> bool:
    probe = subprocess.run([str(BIN / "contentgen"), "run", "--help"], capture_output=True, cwd=ROOT)
    return probe.returncode == 0


def pipeline_command(video: Path, work: Path, use_cli: bool) -> tuple[list[str], Path]:
    """The command that runs the LoraTraining (or, without `contentgen run`, build_dataset)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    result = work / "result.json"
    if use_cli:
        manifest = work / "lora.yaml"
        manifest.write_text(MANIFEST.format(video=video))
        command = [str(BIN / "contentgen"), "run", "--offline", str(manifest)]
        command += [
            "--store",
            f"file://{work / 'store'}",
            "--work-dir",
            str(work / "scratch"),
            "--result",
            str(result),
        ]
        return command, result
    command = [
        sys.executable,
        "-m",
        "bench.run",
        "--dataset-only",
        str(video),
        str(work),
        str(result),
    ]
    return command, result


def dataset_only(video: Path, work: Path, result: Path, *, in_turn: bool = False) -> None:
    """What the benchmark times when `contentgen run` is not there: build_dataset alone (with
    `in_turn`, the decoder on the scanning thread, not ahead of it: for --focus)."""
    from contentgen.api import DatasetSpec
    from contentgen.pipeline import dataset as stage
    from contentgen.pipeline.footage.scan import Scanner

    if in_turn:
        stage.Scanner = functools.partial(Scanner, ahead=0)  # type: ignore[misc]
    dataset = stage.build_dataset(
        video, DatasetSpec(max_frames=40, min_frames=4), "benchperson", work / "dataset", lambda _: None
    )
    report = dataset.report(lambda path: path.as_uri())
    result.write_text(json.dumps({"dataset": report.model_dump(mode="json", by_alias=True)}))


def scenedetect_command(video: Path, out: Path) -> list[str]:
    shutil.rmtree(out, ignore_errors=True)
    return [str(BIN / "scenedetect"), "-i", str(video), "-o", str(out), "detect-content", "save-images"]


def dataset_of(result: Path) -> tuple[list[float], list[float], float]:
    """Scene starts, image times and the dataset stage's seconds from a run's result JSON."""
    data = json.loads(result.read_text())
    dataset = data["dataset"]
    stage = next((s["seconds"] for s in data.get("stages", []) if s["name"] == "dataset"), 0.0)
    return [s["start"] for s in dataset["scenes"]], [i["time"] for i in dataset["images"]], stage


def accuracy_of_short_videos() -> Accuracy:
    from contentgen.api import DatasetSpec
    from contentgen.pipeline.dataset import DatasetTooSmall, build_dataset

    accuracy = Accuracy()
    for number, params in enumerate(ACCURACY_VIDEOS):
        video = cached_video(f"accuracy-{number}", params)
        with tempfile.TemporaryDirectory() as scratch:
            try:
                dataset = build_dataset(
                    video.path, DatasetSpec(max_frames=40, min_frames=4), "x", Path(scratch), lambda _: None
                )
                scenes, times = dataset.scenes, [image.time for image in dataset.images]
            except DatasetTooSmall as small:  # the cuts still count
                scenes, times = small.scenes, []
        accuracy.add(video, [start for start, _ in scenes], times)
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed command (median)")
    parser.add_argument("--no-readme", action="store_true", help="do not update bench/README.md")
    parser.add_argument(
        "--focus",
        action="store_true",
        help="only the 1080p video's timings: the bare decode, the run, and the dataset stage alone with "
        "the decoder ahead and in turn (no PySceneDetect, no other benchmark; the READMEs untouched)",
    )
    parser.add_argument(
        "--dataset-only", nargs=3, metavar=("VIDEO", "WORK", "RESULT"), help=argparse.SUPPRESS
    )
    parser.add_argument("--in-turn", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dataset_only:
        dataset_only(*map(Path, args.dataset_only), in_turn=args.in_turn)
        return
    if args.focus:
        focus(args.repeat)
        return
    if not hasattr(cv2.dnn, "readNetFromTFLite"):
        raise SystemExit(
            f"cv2 {cv2.__version__} cannot read the face detector's TFLite model: another OpenCV shadows "
            "opencv-python-headless in this virtualenv; reinstall from requirements/dev.txt"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    video = cached_video("bench-1080p-3min-people", BENCH_VIDEO)
    use_cli = has_run_command()
    label = (
        "contentgen run --offline (LoraTraining)" if use_cli else "build_dataset (no `contentgen run` yet)"
    )

    commands = {
        "decode": lambda rep: [sys.executable, "-c", DECODE, str(video.path)],
        "pipeline": lambda rep: pipeline_command(video.path, OUT / f"run-{rep}", use_cli)[0],
        "scenedetect": lambda rep: scenedetect_command(video.path, OUT / f"scenedetect-{rep}"),
    }
    runs: dict[str, list[Timed]] = {name: [] for name in commands}
    for rep in range(args.repeat):
        print(f"round {rep + 1}/{args.repeat}...", file=sys.stderr)
        order = list(commands)[rep % 3 :] + list(commands)[: rep % 3]  # no command always goes first
        for name in order:
            runs[name].append(timed(commands[name](rep)))
    decoded_frames = int(runs["decode"][0].output.split()[-1])

    median = {name: statistics.median(t.seconds for t in timings) for name, timings in runs.items()}
    median_cpu = {name: statistics.median(t.cpu_seconds for t in timings) for name, timings in runs.items()}
    peak = {name: max(t.peak_rss_mb for t in timings) for name, timings in runs.items()}
    starts, image_times, stage_seconds = dataset_of(OUT / f"run-{args.repeat - 1}" / "result.json")
    long_video = Accuracy()
    long_video.add(video, starts, image_times)
    short_videos = accuracy_of_short_videos()
    overall = Accuracy(
        long_video.tp + short_videos.tp,
        long_video.fp + short_videos.fp,
        long_video.fn + short_videos.fn,
        long_video.images + short_videos.images,
        long_video.face_images + short_videos.face_images,
    )
    sample_command, _ = pipeline_command(SAMPLE.resolve(), OUT / "run-sample", use_cli)
    sample_rss = timed(sample_command).peak_rss_mb

    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "av": av.__version__,
            "ffmpeg": ".".join(map(str, av.library_versions["libavcodec"])),
            "opencv": cv2.__version__,
            "load_average": os.getloadavg(),
        },
        "video": {
            **BENCH_VIDEO,
            "frames": decoded_frames,
            "megabits_per_second": video.path.stat().st_size * 8 / video.duration / 1e6,
        },
        "pipeline_command": label,
        "repeat": args.repeat,
        "seconds": {name: [round(t.seconds, 3) for t in timings] for name, timings in runs.items()},
        "cpu_seconds": {name: [round(t.cpu_seconds, 3) for t in timings] for name, timings in runs.items()},
        "median_seconds": median,
        "median_cpu_seconds": median_cpu,
        "dataset_stage_seconds": stage_seconds,
        # Ratios of the median wall times (the targets), and of CPU time (user + system): the
        # latter moves much less when other work shares the machine.
        "ratios": {
            "vs_scenedetect": median["pipeline"] / median["scenedetect"],
            "vs_decode": median["pipeline"] / median["decode"],
            "cpu_vs_scenedetect": median_cpu["pipeline"] / median_cpu["scenedetect"],
            "cpu_vs_decode": median_cpu["pipeline"] / median_cpu["decode"],
            "paired_vs_decode": statistics.median(
                p.seconds / d.seconds for p, d in zip(runs["pipeline"], runs["decode"], strict=True)
            ),
        },
        "accuracy": {
            "bench_video": {
                "cut_f1": long_video.f1,
                "face_share": long_video.face_share,
                **asdict(long_video),
            },
            "short_videos": {
                "cut_f1": short_videos.f1,
                "face_share": short_videos.face_share,
                **asdict(short_videos),
            },
            "cut_f1": overall.f1,
            "face_share": overall.face_share,
        },
        "peak_rss_mb": {**peak, "pipeline_on_25s_sample": sample_rss},
        "targets": TARGETS,
    }
    report["met"] = {
        "vs_scenedetect": report["ratios"]["vs_scenedetect"] <= TARGETS["vs_scenedetect"],
        "vs_decode": report["ratios"]["vs_decode"] <= TARGETS["vs_decode"],
        "cut_f1": overall.f1 >= TARGETS["cut_f1"],
        "face_share": overall.face_share >= TARGETS["face_share"],
    }
    from bench.faces import SETS, evaluate
    from bench.faces import TARGETS as FACE_TARGETS

    faces = {name: evaluate(name).summary() for name in SETS}
    report["faces"] = faces
    held = faces["held-out"]
    report["met"].update(
        face_precision=held["precision"] >= FACE_TARGETS["precision"],  # type: ignore[operator]
        face_recall=held["recall"] >= FACE_TARGETS["recall"],  # type: ignore[operator]
        face_duplicates=held["duplicates"] == FACE_TARGETS["duplicates"],
        face_cut_f1=held["cut_f1"] >= FACE_TARGETS["cut_f1"],  # type: ignore[operator]
    )
    from bench.people import SETS as PEOPLE_SETS
    from bench.people import TARGETS as PEOPLE_TARGETS
    from bench.people import evaluate as evaluate_people

    people = {name: evaluate_people(name).summary() for name in PEOPLE_SETS}
    report["people"] = people
    held_people = people["held-out"]
    report["met"].update(
        people_purity=held_people["purity"] >= PEOPLE_TARGETS["purity"],  # type: ignore[operator]
        people_precision=held_people["precision"] >= PEOPLE_TARGETS["precision"],  # type: ignore[operator]
        people_recall=held_people["recall"] >= PEOPLE_TARGETS["recall"],  # type: ignore[operator]
        people_repeats=held_people["repeats"] == PEOPLE_TARGETS["repeats"],
        people_soft_f1=held_people["soft_f1"] >= PEOPLE_TARGETS["soft_f1"],  # type: ignore[operator]
        people_checks=all(held_people["checks"].values()),  # type: ignore[attr-defined]
    )
    from bench.speed import main as measure_speed

    report["speed"] = measure_speed(args.repeat, docs=not args.no_readme)  # its own section of the docs
    from bench.detectors import measure as measure_detectors
    from bench.detectors import table as detector_table

    detectors = measure_detectors()
    report["detectors"] = {name: asdict(result) for name, result in detectors.items()}
    (OUT / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    # The runs' work folders hold manifests and results that `contentgen validate .` would read
    # as resources of this repository: only the generated videos and results.json stay.
    for work in [*OUT.glob("run-*"), *OUT.glob("scenedetect-*")]:
        shutil.rmtree(work, ignore_errors=True)
    table = markdown(report, label) + face_table(report) + people_table(report)
    print(table)
    print(detector_table(detectors))
    if not args.no_readme:
        update_readme(table)
        update_readme(detector_table(detectors), "detectors", readmes=(README,))


def focus(repeat: int) -> None:
    """The 1080p timings alone, taken in turns: the bare decode, `contentgen run`, and the dataset
    stage alone (`--dataset-only`) with the decoder ahead of the analysis and in turn with it.
    Prints a table and writes bench/out/focus.json."""
    OUT.mkdir(parents=True, exist_ok=True)
    video = cached_video("bench-1080p-3min-people", BENCH_VIDEO)
    dataset = [sys.executable, "-m", "bench.run", "--dataset-only", str(video.path)]
    commands = {
        "decode": lambda rep: [sys.executable, "-c", DECODE, str(video.path)],
        "run": lambda rep: pipeline_command(video.path, OUT / f"run-{rep}", True)[0],
        "dataset, decoder ahead": lambda rep: [
            *dataset,
            str(OUT / f"ahead-{rep}"),
            str(OUT / f"ahead-{rep}.json"),
        ],
        "dataset, decoder in turn": lambda rep: [
            *dataset,
            str(OUT / f"turn-{rep}"),
            str(OUT / f"turn-{rep}.json"),
            "--in-turn",
        ],
    }
    load = [os.getloadavg()]
    runs: dict[str, list[Timed]] = {name: [] for name in commands}
    for rep in range(repeat):
        print(f"round {rep + 1}/{repeat}...", file=sys.stderr)
        order = list(commands)[rep % len(commands) :] + list(commands)[: rep % len(commands)]
        for name in order:
            runs[name].append(timed(commands[name](rep)))
        load.append(os.getloadavg())
    for work in [*OUT.glob("run-*"), *OUT.glob("ahead-*"), *OUT.glob("turn-*")]:
        if work.is_dir():
            shutil.rmtree(work, ignore_errors=True)
        else:
            work.unlink()
    wall = {name: statistics.median(t.seconds for t in timings) for name, timings in runs.items()}
    cpu = {name: statistics.median(t.cpu_seconds for t in timings) for name, timings in runs.items()}
    rows = [
        "| command | median wall time | median CPU time | ÷ bare decode, wall (CPU) |",
        "|---|---|---|---|",
    ]
    for name in commands:
        rows.append(
            f"| {name} | {wall[name]:.1f} s | {cpu[name]:.1f} s | "
            f"{wall[name] / wall['decode']:.2f}× ({cpu[name] / cpu['decode']:.2f}×) |"
        )
    one_minute = [round(sample[0], 1) for sample in load]
    print(
        f"{repeat} rounds, {time.strftime('%Y-%m-%d %H:%M')}, load average (1 min) after each: {one_minute}"
    )
    print("\n".join(rows))
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average": load,
        "seconds": {name: [round(t.seconds, 3) for t in timings] for name, timings in runs.items()},
        "cpu_seconds": {name: [round(t.cpu_seconds, 3) for t in timings] for name, timings in runs.items()},
        "median_seconds": wall,
        "median_cpu_seconds": cpu,
    }
    (OUT / "focus.json").write_text(json.dumps(report, indent=2) + "\n")


def markdown(report: dict, label: str) -> str:
    cpu, stage = report["median_cpu_seconds"], report["dataset_stage_seconds"]
    seconds, ratios, rss, met = (
        report["median_seconds"],
        report["ratios"],
        report["peak_rss_mb"],
        report["met"],
    )
    accuracy, video = report["accuracy"], report["video"]
    images = accuracy["bench_video"]["images"] + accuracy["short_videos"]["images"]

    def target(key: str, text: str) -> str:
        return f"{text} ({'met' if met[key] else '**missed**'})"

    rows = [
        ("measure (median wall time, CPU time)", "result", "target"),
        ("---", "---", "---"),
        (
            f"{label}",
            f"{seconds['pipeline']:.1f} s, CPU {cpu['pipeline']:.1f} s (dataset stage {stage:.1f} s)",
            "",
        ),
        (
            "`scenedetect -i … detect-content save-images`",
            f"{seconds['scenedetect']:.1f} s, CPU {cpu['scenedetect']:.1f} s",
            "",
        ),
        (
            "bare PyAV decode of every frame (threads AUTO)",
            f"{seconds['decode']:.1f} s, CPU {cpu['decode']:.1f} s",
            "",
        ),
        (
            "**run ÷ PySceneDetect**, wall time (CPU time)",
            f"**{ratios['vs_scenedetect']:.2f}×** ({ratios['cpu_vs_scenedetect']:.2f}×)",
            target("vs_scenedetect", f"≤ {TARGETS['vs_scenedetect']}×"),
        ),
        (
            "**run ÷ bare decode**, wall time (CPU time)",
            f"**{ratios['vs_decode']:.2f}×** ({ratios['cpu_vs_decode']:.2f}×)",
            target("vs_decode", f"≤ {TARGETS['vs_decode']}×"),
        ),
        (
            f"scene-cut F1 (±{TOLERANCE} s), the 3-min video and 4 × 60 s",
            f"{accuracy['cut_f1']:.3f} (3-min video: {accuracy['bench_video']['cut_f1']:.3f})",
            target("cut_f1", f"≥ {TARGETS['cut_f1']}"),
        ),
        (
            "dataset images from face scenes (faceFilter on)",
            f"{100 * accuracy['face_share']:.0f} % of {images}",
            target("face_share", f"≥ {100 * TARGETS['face_share']:.0f} %"),
        ),
        (
            "peak RSS of the run: 3-min 1080p video / 25 s sample",
            f"{rss['pipeline']:.0f} MB / {rss['pipeline_on_25s_sample']:.0f} MB",
            "bounded",
        ),
        (
            "peak RSS: PySceneDetect / bare decode",
            f"{rss['scenedetect']:.0f} MB / {rss['decode']:.0f} MB",
            "",
        ),
    ]
    head = (
        f"{video['seconds']:.0f} s of {video['width']}×{video['height']} H.264 at {video['fps']} fps "
        f"({video['frames']} frames, {video['megabits_per_second']:.1f} Mbit/s); median of "
        f"{report['repeat']} runs on {report['machine']['cpus']} CPUs, {report['date']}:"
    )
    return head + "\n\n" + "\n".join(f"| {' | '.join(row)} |" for row in rows) + "\n"


def face_table(report: dict) -> str:
    """The face-dataset benchmark's rows (bench/faces.py): dev and held-out sets."""
    faces, met = report["faces"], report["met"]

    def mark(key: str) -> str:
        return "met" if met[key] else "**missed**"

    rows = ["", "Face-dataset benchmark (bench/faces.py; targets judged on the held-out set):", ""]
    rows += [
        "| set | precision | recall of framings | duplicates kept | cut F1 (±0.5 s) | transitions found |"
    ]
    rows += ["| --- | --- | --- | --- | --- | --- |"]
    for name, f in faces.items():
        rows.append(
            f"| {name} | {f['precision']:.2f} ({f['precise']}/{f['images']}) | {f['recall']:.2f} "
            f"({f['found']}/{f['framings']}) | {f['duplicates']} | {f['cut_f1']:.2f} | "
            f"{f['transitions_found']} |"
        )
    rows.append(
        f"| target | ≥ 0.95 ({mark('face_precision')}) | ≥ 0.9 ({mark('face_recall')}) | "
        f"0 ({mark('face_duplicates')}) | ≥ 0.95 ({mark('face_cut_f1')}) | |"
    )
    return "\n".join(rows) + "\n"


def people_table(report: dict) -> str:
    """The people benchmark's rows (bench/people.py): its dev, seen and held-out sets."""
    people, met = report["people"], report["met"]

    def mark(key: str) -> str:
        return "met" if met[key] else "**missed**"

    rows = ["", "People benchmark (bench/people.py; targets judged on the held-out set):", ""]
    rows += [
        "| set | subject purity | precision | recall of framings | repeats | cut F1 | soft-transition F1 "
        "| checks | purity as estimated |"
    ]
    rows += ["| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, p in people.items():
        soft = p["soft"]
        checks = ", ".join(f"{name} {'yes' if ok else '**no**'}" for name, ok in p["checks"].items())
        rows.append(
            f"| {name} | {p['purity']:.2f} ({p['pure']}/{p['images']}) | {p['precision']:.2f} "
            f"({p['precise']}/{p['images']}) | {p['recall']:.2f} ({p['found']}/{p['framings']}) | "
            f"{p['repeats']} | {p['cut_f1']:.2f} | "
            f"{p['soft_f1']:.2f} (tp {soft[0]}, fp {soft[1]}, fn {soft[2]}) "
            f"| {checks} | ≥ {p['estimated_purity']:.2f} |"
        )
    rows.append(
        f"| target | ≥ 0.95 ({mark('people_purity')}) | ≥ 0.95 ({mark('people_precision')}) | "
        f"≥ 0.9 ({mark('people_recall')}) | 0 ({mark('people_repeats')}) | | "
        f"≥ 0.9 ({mark('people_soft_f1')}) | all ({mark('people_checks')}) | |"
    )
    return "\n".join(rows) + "\n"


def update_readme(
    table: str, marker: str = "bench", readmes: Sequence[Path] = (README, ROOT / "docs" / "performance.md")
) -> None:
    """Put the table into bench/README.md and docs/performance.md (between the markers)."""
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    for readme in readmes:
        text = readme.read_text() if readme.exists() else ""
        if start not in text or end not in text:
            continue
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        readme.write_text(f"{before}{start}\n{table}{end}{after}")


if __name__ == "__main__":
    main()
