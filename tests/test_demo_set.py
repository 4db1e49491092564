"""`make demo` installs requirements/demo.txt into a virtualenv of its own (.venv-demo): what the
offline run needs, without torch, triton or the CUDA libraries (the dev and GPU extras' 8 GB). The
set is checked here as `make lock` writes it, and the demo's own commands are run as in .venv-demo:
in a process that cannot import anything installed here but outside the set (the dev virtualenv has
it all), so that a module that needs more than the set fails here as it would there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT
from tests.harness.demo import HEAVY, demo_commands

DEMO = "requirements/demo.txt"


def pins(path: str) -> dict[str, str]:
    """{normalized name: version} of a requirements file `uv pip compile` wrote."""
    found = {}
    for line in (ROOT / path).read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            found[re.sub(r"[-_.]+", "-", name.lower())] = version.split(";")[0].strip()
    return found


def named_by(extras: list[str]) -> set[str]:
    """The packages pyproject.toml's `extras` name, the project's own extras they include expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    names: set[str] = set()
    for spec in specs:
        own = re.fullmatch(r"contentgen\[([a-z,-]+)\]", spec)
        if own:
            names |= named_by(own.group(1).split(","))
        else:
            names.add(re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower()))
    return names


def test_the_demo_set_is_the_offline_runs_and_holds_no_torch_nor_cuda() -> None:
    pinned, dev = pins(DEMO), pins("requirements/dev.txt")
    assert not [name for name in pinned if name.startswith(HEAVY)], sorted(pinned)
    # the worker (the pipeline, the offline provider), the laptop's catalog and the HTTP API
    assert named_by(["worker", "api", "local"]) <= set(pinned)
    assert {"uv", "prometheus-client"} <= set(pinned)  # requirements/demo.in
    assert all(dev[name] == version for name, version in pinned.items()), "re-run `make lock`"
    header = (ROOT / DEMO).read_text().splitlines()[1]
    assert "requirements/demo.in" in header and all(
        f"--extra {e}" in header for e in ("worker", "api", "local")
    )
    makefile = (ROOT / "Makefile").read_text()
    assert f"uv pip sync --quiet --python $(DEMO_BIN)/python {DEMO}" in makefile
    assert re.search(r"^demo: demo-install\b", makefile, re.M)
    # it ends by saying where to look: the web UI's command, the checkpoints' grid, the contact sheet
    looks = makefile.split('echo "Where to look:"', 1)[1].split("\n\n", 1)[0]
    assert "api --local --offline" in looks and "likeness-checkpoints.jpg" in looks
    assert "contact-sheet.jpg" in looks and "demo-avatar-clip" in looks


# Each command of the demo runs in a fresh interpreter of its own, as `contentgen` itself runs
# (`python -m contentgen`): an import of a module installed here whose distribution is not in the
# demo set fails as it would in .venv-demo (and is recorded), and what it imported is read when it
# ends (tests/run/test_command_imports.py's reason: a run imports what its stages use, no more). The
# web UI's API is built, not served, and asked for its pages.
STEP = r"""
import importlib.abc, importlib.metadata, json, re, runpy, sys

allowed = set(json.loads(sys.argv[1]))
argv = json.loads(sys.argv[2])
owners = importlib.metadata.packages_distributions()
normal = lambda name: re.sub(r"[-_.]+", "-", name.lower())
refused = []

class OutsideTheSet(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        dists = {normal(d) for d in owners.get(top, [])}
        if dists and not dists & allowed:
            refused.append(name)
            raise ModuleNotFoundError(f"No module named {name!r} (not in requirements/demo.txt)", name=name)
        return None

sys.meta_path.insert(0, OutsideTheSet())
answers = []
if argv[0] == "api":
    import uvicorn
    from contentgen.cli.main import main

    served = []
    uvicorn.run = lambda app, **_: served.append(app)  # `contentgen api` builds its app; it is asked below
    code = main(argv)
    from fastapi.testclient import TestClient

    client = TestClient(served[0], base_url="http://127.0.0.1:8080", client=("127.0.0.1", 50000))
    jobs = client.get("/api/jobs", params={"limit": 100}).json()["items"]
    ids = {job["name"]: job["id"] for job in jobs}
    answers = [client.get(path).status_code for path in (
        "/", "/ui/app.js", "/api/assets/loras", f"/api/jobs/{ids['demo-avatar']}",
        f"/api/assets/{ids['demo-avatar-portrait']}/lineage", f"/api/jobs/{ids['demo-avatar-clip']}",
    )]
else:
    sys.argv = ["contentgen", *argv]
    try:
        runpy.run_module("contentgen", run_name="__main__")
        code = 0
    except SystemExit as end:
        code = end.code or 0
loaded = sorted({m.partition(".")[0] for m in sys.modules})
print(json.dumps({"code": code, "refused": sorted(set(refused)), "answers": answers, "loaded": loaded}))
"""


@dataclass(frozen=True)
class Step:
    argv: list[str]
    code: int
    refused: list[str]
    answers: list[int]
    loaded: set[str]  # the top-level modules it had imported when it ended
    said: str  # its stderr


def demo_runs() -> list[list[str]]:
    """The demo's commands in its order, with a run of the one example it leaves out (a
    Notification, which needs the others' records) before the API's."""
    *commands, api = demo_commands()
    return [*commands, ["run", "--offline", "examples/notification.yaml"], api]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> list[Step]:
    """The demo's commands, each run once in a process of its own on the demo set alone."""
    here = tmp_path_factory.mktemp("demo")
    (here / "examples").symlink_to(EXAMPLES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTENTGEN_", "FAL_", "ASSEMBLYAI_"))}
    allowed = json.dumps([*sorted(pins(DEMO)), "contentgen"])
    steps = []
    for argv in demo_runs():
        done = subprocess.run(
            [sys.executable, "-c", STEP, allowed, json.dumps(argv)],
            cwd=here,
            env={**env, "CONTENTGEN_WORK_DIR": str(here / "work")},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (argv, done.stderr[-3000:])
        said = json.loads(done.stdout.splitlines()[-1])
        steps.append(
            Step(argv, said["code"], said["refused"], said["answers"], set(said["loaded"]), done.stderr)
        )
    return steps


@pytest.mark.slow
def test_the_offline_demo_runs_on_the_demo_set_alone(demo: list[Step]) -> None:
    commands = demo_commands()
    assert [c[:2] for c in commands][:3] == [
        ["validate", "examples/"],
        ["run", "--offline"],
        ["assets", "get"],
    ]
    assert [(s.argv, s.code) for s in demo] == [(argv, 0) for argv in demo_runs()]
    for step in demo:
        assert "No module named" not in step.said and "not sent" not in step.said, (
            step.argv,
            step.said[-3000:],
        )
    assert demo[-1].answers == [200] * 6
    # nothing of the GPU extra is imported, or even asked for, on the way
    heavy = [
        (s.argv, m) for s in demo for m in [*s.refused, *s.loaded] if m.replace("_", "-").startswith(HEAVY)
    ]
    assert heavy == [], heavy


# An offline `contentgen run` of each example imports what its stages use, when they run (issue
# 71): never the model stack (torch, diffusers, transformers and the rest of the GPU extra: HEAVY,
# which `make demo`'s own virtualenv leaves out, above), and of the libraries that weigh, only those
# of its kind's stages. Read from the demo's own runs, one process each, in its order (a later
# example uses an earlier one's LoRA).
WEIGHTY: tuple[str, ...] = (
    "numpy",
    "cv2",
    "av",
    "PIL",
    "scipy",
    "skimage",
    "sklearn",
    "matplotlib",
    "onnxruntime",
)
WEIGHTY += ("httpx", "fastapi", "starlette", "uvicorn", "kopf", "kubernetes", "aiohttp", "boto3")
WEIGHTY += ("pymongo", "safetensors", "huggingface_hub", "rich", "pandas", "mongomock")
USES = {
    # frames decoded (av), looked at and written (cv2: faces, crops, the contact sheet), pictures
    # drawn and scored for likeness
    "loratraining.yaml": {"numpy", "cv2", "av"},
    # and each checkpoint's clips read back as one mosaic picture, its frames' times in its PNG
    # text chunks (PIL: providers/clip_frames.py)
    "loratraining-video.yaml": {"numpy", "cv2", "av", "PIL"},
    "loratraining-early-stop.yaml": {"numpy", "cv2", "av"},
    # placeholder pictures drawn and encoded; a LoRA's scored for likeness
    "imagegeneration.yaml": {"numpy", "cv2"},
    "imagegeneration-lora.yaml": {"numpy", "cv2"},
    "loraevaluation.yaml": {"numpy", "cv2"},
    # a clip written (av) from pictures (cv2)
    "videogeneration.yaml": {"numpy", "cv2", "av"},
    "videogeneration-portrait.yaml": {"numpy", "cv2", "av"},
    "videogeneration-lora.yaml": {"numpy", "cv2", "av"},
    # the audio's duration measured (av)
    "transcription.yaml": {"av"},
    "notification.yaml": set(),
}


@pytest.mark.slow
def test_an_offline_run_of_each_example_imports_only_what_its_stages_use(demo: list[Step]) -> None:
    runs = {Path(s.argv[-1]).name: s.loaded for s in demo if s.argv[0] == "run"}
    examples = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert examples == set(USES), f"USES says what each example's run may import: add {examples - set(USES)}"
    assert sorted(runs) == sorted(examples) and len(runs) == sum(
        s.argv[0] == "run" for s in demo
    )  # each once
    stacks = {
        name: sorted(m for m in modules if m.replace("_", "-").startswith(HEAVY))
        for name, modules in runs.items()
    }
    assert stacks == {name: [] for name in USES}
    assert {name: modules & set(WEIGHTY) for name, modules in runs.items()} == USES
