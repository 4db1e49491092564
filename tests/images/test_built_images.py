"""The three images built for real (`make images`: buildah here, the base made from Debian
packages where no registry serves it), once per session and cached: a second build rebuilds
nothing; each image runs as uid and gid 10001 with a passwd entry (the operator's crash loop under
a real kubelet: issue 44); the worker runs its command; the GPU worker's CUDA libraries load
without a GPU; what need not ship is not in them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import image_base, images
from tests.harness.real_node import GPU, GPU_IMAGE, needs_gpu_image

# A cold build downloads the pinned sets (the GPU one is gigabytes) and writes each archive.
pytestmark = pytest.mark.timeout(3600)
# The GPU worker (8.5 GB: CUDA's libraries and torch) takes about 20 minutes to build cold and
# minutes more after each edit of the project: `make images` builds it, and this suite only when
# asked (CONTENTGEN_TEST_GPU_IMAGE=1, tests/harness/real_node.py), so that `make test` stays within
# its time.
NAMES = [name for name in images.IMAGES if GPU_IMAGE or name != GPU]
WORKER_HELP = ["contentgen", "worker", "--help"]


def buildah() -> str:
    """Debian's buildah, installed when missing and this is root; else the tests skip, saying why."""
    try:
        return images.find_engine("buildah")
    except images.EngineMissing as exc:
        path = images.install_buildah() if shutil.which("buildah") is None else None
        if path is None:
            pytest.skip(f"buildah cannot run here: {exc}")
        return path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, object]]]:
    """`make images` as the tests need it: every image current, built now or before, from a copy
    of the sources taken now (the same keys as the repository's), so that an edit made while the
    tests run does not make the images they check stale."""
    engine = buildah()
    saved = os.environ.get("IMAGE_CONTEXT")
    os.environ["IMAGE_CONTEXT"] = str(images.snapshot_context(tmp_path_factory.mktemp("context")))
    try:
        try:
            index = images.build(NAMES, images.DEFAULT_REGISTRY, images.version(), engine, log=print)
        except images.EngineMissing as exc:  # no mmdebstrap and no way to install it
            pytest.skip(f"buildah cannot build here: {exc}")
        yield engine, index
    finally:
        if saved is None:
            os.environ.pop("IMAGE_CONTEXT", None)
        else:
            os.environ["IMAGE_CONTEXT"] = saved


def entry(index: dict[str, object], name: str) -> dict[str, object]:
    return index["images"][name]  # type: ignore[index,no-any-return]


def run(engine: str, name: str, *argv: str, user: str = "10001:10001") -> subprocess.CompletedProcess[str]:
    return images.run_in_image(engine, f"{images.DEFAULT_REGISTRY}/{name}:{images.version()}", argv, user)


def test_the_images_are_built_and_archived(built: tuple[str, dict[str, object]]) -> None:
    engine, index = built
    assert set(NAMES) <= set(index["images"])  # type: ignore[arg-type]
    for name in NAMES:
        found = entry(index, name)
        archive = images.archive(name)
        assert archive.is_file() and archive.stat().st_size == found["size"]
        image = str(found["image"])
        assert image == f"{images.DEFAULT_REGISTRY}/{name}:{images.version()}"
        assert found["digest"] == f"sha256:{images.image_id(engine, image)}"
        assert images.archive_layers(archive)[0] == str(found["digest"]).removeprefix("sha256:")
    on_disk = json.loads((images.cache_dir() / "index.json").read_text())
    assert on_disk["images"] == index["images"]


def test_a_warm_build_rebuilds_nothing(built: tuple[str, dict[str, object]]) -> None:
    engine, index = built
    said: list[str] = []
    again = images.build(NAMES, images.DEFAULT_REGISTRY, images.version(), engine, log=said.append)
    assert not [line for line in said if line.startswith("+ ")], said  # no bud, no push, no mmdebstrap
    assert [line.split(":")[0] for line in said] == [
        f"= {entry(index, n)['image']}".split(":")[0] for n in NAMES
    ]
    assert again["images"] == index["images"]


def test_the_base_is_the_dockerfiles_python_minor(built: tuple[str, dict[str, object]]) -> None:
    engine, _ = built
    reference = image_base.from_images([(images.context_dir() / images.IMAGES[n]).read_text() for n in NAMES])
    minor = image_base.parse_base(reference).minor
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    base = images.run_in_image(engine, image_base.qualified(reference), ["python3", "-c", code], user="0:0")
    assert base.returncode == 0 and base.stdout.strip() == minor, base.stderr
    for name in NAMES:  # the venv's interpreter, as the images run it
        done = run(engine, name, "/opt/contentgen/bin/python", "-c", code)
        assert done.returncode == 0 and done.stdout.strip() == minor, (name, done.stderr)


@pytest.mark.parametrize("name", NAMES)
def test_the_image_runs_as_10001_with_a_passwd_entry(built: tuple[str, dict[str, object]], name: str) -> None:
    engine, _ = built
    config = images.image_config(engine, f"{images.DEFAULT_REGISTRY}/{name}:{images.version()}")
    assert config["User"] == "10001:10001" and config["Entrypoint"] == ["contentgen"]
    env = dict(str(item).split("=", 1) for item in config["Env"])  # type: ignore[attr-defined]
    assert env["HOME"] == "/tmp"
    code = "import getpass, os; print(os.getuid(), os.getgid(), getpass.getuser(), os.path.expanduser('~'))"
    done = run(engine, name, "python", "-c", code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10001", "10001", "contentgen", "/tmp"]


def test_the_operator_starts_as_10001_and_as_an_arbitrary_uid(built: tuple[str, dict[str, object]]) -> None:
    """kopf's own id, which crashed the operator under a real kubelet, as the image's user and as a
    uid the image does not list (OpenShift's), through `contentgen`'s entrypoint."""
    engine, _ = built
    done = run(engine, "contentgen", "contentgen", "--help")
    assert done.returncode == 0 and "operator" in done.stdout, done.stderr
    done = run(engine, "contentgen", "contentgen", "operator", "--print-args")
    assert done.returncode == 0 and done.stdout.startswith("run --standalone"), done.stderr
    # what `contentgen operator` and `contentgen api` import, with what the image leaves out gone
    imports = "import contentgen.controller.handlers, contentgen.httpapi.app, kubernetes.client, pymongo"
    done = run(engine, "contentgen", "python", "-c", imports)
    assert done.returncode == 0, done.stderr
    peering = "from kopf._core.engines.peering import detect_own_id; print(detect_own_id(manual=False))"
    done = run(engine, "contentgen", "python", "-c", peering)
    assert done.returncode == 0 and done.stdout.startswith("contentgen@"), done.stderr
    cli = f"from contentgen.cli.main import name_the_user; name_the_user(); {peering}"
    done = run(engine, "contentgen", "python", "-c", cli, user="1000690000:0")
    assert done.returncode == 0 and done.stdout.startswith("uid-1000690000@"), done.stderr


def test_the_worker_runs_its_command(built: tuple[str, dict[str, object]]) -> None:
    engine, _ = built
    for name in (n for n in NAMES if n != "contentgen"):
        done = run(engine, name, *WORKER_HELP)
        assert done.returncode == 0 and "--termination-log" in done.stdout, (name, done.stderr)


CUDA_PROBE = """
import ctypes, json, sys
found = {"torch_before": "torch" in sys.modules}
ctypes.CDLL("libcublas.so.12")  # by name, as CTranslate2 opens it: the image's LD_LIBRARY_PATH
found["cublas"] = True
import torch, ctranslate2, faster_whisper
found["torch_cuda"] = torch.version.cuda
found["cuda_available"] = torch.cuda.is_available()
found["ct2_cuda_devices"] = ctranslate2.get_cuda_device_count()
print(json.dumps(found))
"""


@needs_gpu_image
def test_the_gpu_workers_cuda_libraries_load_without_a_gpu(built: tuple[str, dict[str, object]]) -> None:
    engine, _ = built
    done = run(engine, "contentgen-worker-gpu", "python", "-c", CUDA_PROBE)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["torch_before"] is False and found["cublas"] is True
    assert str(found["torch_cuda"]).startswith("12.")
    assert (found["cuda_available"], found["ct2_cuda_devices"]) == (False, 0)


def test_what_need_not_ship_is_not_in_the_images(built: tuple[str, dict[str, object]]) -> None:
    engine, _ = built
    leftovers = (
        "import os, sys; from pathlib import Path\n"
        "paths = ('/tmp/requirements.txt', '/src', '/project', '/root/.cache/pip', '/etc/pip.conf')\n"
        "found = [p for p in paths if os.path.lexists(p)]\n"
        "site = Path('/opt/contentgen/lib/python3.11/site-packages')\n"
        "found += [str(p) for p in site.glob('*/tests') if p.is_dir()]\n"
        "found += [str(p) for p in (site / 'pip', site / 'kubernetes' / 'aio') if p.exists()]\n"
        "print('\\n'.join(found))"
    )
    for name in NAMES:
        done = run(engine, name, "python", "-c", leftovers, user="0:0")
        assert done.returncode == 0 and done.stdout.strip() == "", (name, done.stdout, done.stderr)


def test_archive_prints_the_path(built: tuple[str, dict[str, object]]) -> None:
    done = subprocess.run(
        ["python3", str(images.ROOT / "scripts" / "images.py"), "archive", "contentgen-worker"],
        capture_output=True,
        text=True,
        check=False,
        env={
            **os.environ,
            "IMAGE_CACHE_DIR": str(images.cache_dir()),
            "IMAGE_CONTEXT": str(images.context_dir()),
        },
    )
    assert done.returncode == 0 and Path(done.stdout.strip()) == images.archive("contentgen-worker")
