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


# Run in a fresh interpreter: an import of a module installed here whose distribution is not in
# the demo set fails as it would in .venv-demo (and is recorded); the demo's commands run in turn.
DRIVER = r"""
import importlib.abc, importlib.metadata, json, re, sys

allowed = set(json.loads(sys.argv[1]))
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

import uvicorn
from contentgen.cli.main import main

served = []
uvicorn.run = lambda app, **_: served.append(app)  # `contentgen api` builds its app; it is asked below
codes = [[argv, main(argv)] for argv in json.loads(sys.argv[2])]

from fastapi.testclient import TestClient

client = TestClient(served[0], base_url="http://127.0.0.1:8080", client=("127.0.0.1", 50000))
jobs = client.get("/api/jobs", params={"limit": 100}).json()["items"]
ids = {job["name"]: job["id"] for job in jobs}
answers = [client.get(path).status_code for path in (
    "/", "/ui/app.js", "/api/assets/loras", f"/api/jobs/{ids['demo-avatar']}",
    f"/api/assets/{ids['demo-avatar-portrait']}/lineage", f"/api/jobs/{ids['demo-avatar-clip']}",
)]
loaded = sorted({m.partition(".")[0] for m in sys.modules})
print(json.dumps({"codes": codes, "refused": sorted(set(refused)), "answers": answers, "loaded": loaded}))
"""


@pytest.mark.slow
def test_the_offline_demo_runs_on_the_demo_set_alone(tmp_path: Path) -> None:
    commands = demo_commands()
    assert [c[:2] for c in commands][:3] == [
        ["validate", "examples/"],
        ["run", "--offline"],
        ["assets", "get"],
    ]
    (tmp_path / "examples").symlink_to(EXAMPLES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTENTGEN_", "FAL_", "ASSEMBLYAI_"))}
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps([*sorted(pins(DEMO)), "contentgen"]), json.dumps(commands)],
        cwd=tmp_path,
        env={**env, "CONTENTGEN_WORK_DIR": str(tmp_path / "work")},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    said = json.loads(done.stdout.splitlines()[-1])
    assert [code for _, code in said["codes"]] == [0] * len(commands), said["codes"]
    assert "No module named" not in done.stderr and "not sent" not in done.stderr, done.stderr[-3000:]
    assert said["answers"] == [200] * 6
    # nothing of the GPU extra is imported, or even asked for, on the way
    heavy = [m for m in said["refused"] + said["loaded"] if m.replace("_", "-").startswith(HEAVY)]
    assert heavy == [], heavy
