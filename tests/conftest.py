from __future__ import annotations

import copy
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent

# The suite runs three workers on two cores, each busy: a library's own worker threads only fight
# the other workers for the cores (and spin while they wait). One thread each, in every process the
# suite starts, set before any of them is imported: OpenCV's face networks took 17 % less CPU so
# (tests/README.md). A test that wants more sets its own.
for _threads in ("OPENCV_FOR_THREADS_NUM", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_threads, "1")
EXAMPLES = ROOT / "examples"

# The files that take longest (a minute or more each: control planes, browsers, the docs'
# commands), longest first, as `pytest --durations=0` measured them. `make test` hands files to its
# workers in collection order (--dist loadfile --no-loadscope-reorder): these go first, so that
# no worker is left with a long file at the end while the other idles.
LONGEST_FIRST = (
    "tests/kube/test_operator.py",
    "tests/e2e/test_helm_real_node.py",
    "tests/e2e/test_local_cluster.py",
    "tests/docs/test_runnable.py",
    "tests/httpapi/test_contract.py",
    "local-cluster/tests/test_real_node.py",
    "local-cluster/tests/test_controllers.py",
    "tests/httpapi/test_ui_pages.py",
    "tests/httpapi/test_ui_studio.py",
    "tests/kube/",
    "tests/httpapi/test_browser.py",
)

# The modules whose tests share one cluster (tests/kube/harness.py: unoperated without options),
# namespaces apart, instead of each starting its own: `make test` hands them to one worker together
# (pytest_xdist_make_scheduler), which starts that cluster once.
SHARED_CLUSTER = tuple(
    f"tests/kube/test_{name}.py"
    for name in (
        "operator",
        "budgets",
        "live_training",
        "lora_evaluation",
        "operator_starts",
        "pod_problems",
        "pool_requests",
        "records",
        "video",
        "watches",
    )
)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """--dist loadfile, with SHARED_CLUSTER's modules one unit of work."""
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class Scheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return SHARED_CLUSTER[0] if path in SHARED_CLUSTER else path

    return Scheduling(config, log)


# `make test` sets it: whether the real node runs on this machine, found beside the suite and said at
# its end (localcluster/probe.py), without failing the suite where it does not (issue 44).
PROBE_REAL_NODE = "CONTENTGEN_TEST_PROBE_REAL_NODE"
_probe: tuple[subprocess.Popen[str], Path] | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _probe
    if os.environ.get(PROBE_REAL_NODE) != "1" or hasattr(session.config, "workerinput"):
        return  # asked for, and only in the process that reports (not in each xdist worker)
    root = Path(tempfile.mkdtemp(prefix="contentgen-probe-"))
    command = [sys.executable, "-m", "localcluster.probe", str(root)]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    _probe = (process, root)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _probe is None:
        return
    process, root = _probe
    try:
        out, _ = process.communicate(timeout=120)  # it began with the suite: long done by now
        said = (out.strip().splitlines() or ["(nothing)"])[-1]
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its node's reaper removes what it left
        process.communicate()
        said = "the real node does not run here: the probe did not end within 120 s of the suite"
    shutil.rmtree(root, ignore_errors=True)
    terminalreporter.write_line(f"real node probe: {said}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    """With CONTENTGEN_TEST_CPU=DIR, each test's CPU seconds (setup, call and teardown) in the
    test's own process and in the children it waited for, one JSON line a test in DIR (a file per
    xdist worker): `python -m tests.cpu_report DIR` sums them by file. Containers' processes are
    the container runtime's children, not the test's: the process accounting of the machine
    (`accton`) counts those."""
    where = os.environ.get("CONTENTGEN_TEST_CPU")
    if not where:
        yield
        return
    began = (time.monotonic(), time.process_time(), _children_cpu())
    yield
    wall, cpu, children = time.monotonic(), time.process_time(), _children_cpu()
    line = {
        "test": item.nodeid,
        "wall": round(wall - began[0], 3),
        "cpu": round(cpu - began[1], 3),
        "children": round(children - began[2], 3),
    }
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(where).mkdir(parents=True, exist_ok=True)
    with (Path(where) / f"{worker}.jsonl").open("a") as out:
        out.write(json.dumps(line) + "\n")


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _rank(item: pytest.Item) -> int:
    path = item.nodeid.split("::", 1)[0]
    return next((i for i, p in enumerate(LONGEST_FIRST) if path.startswith(p)), len(LONGEST_FIRST))


# The tests that start the local cluster's real node (containerd, runc, the kubelet: pods of the
# project's images) or build those images: `make test-quick` leaves them out (-m "not real_node").
# They are about half of the suite's CPU (issue 44's closing notes); tests/test_quick_tier.py checks
# that every test module that starts a node or builds the images is here. The docs' pages whose
# commands start `contentgen local-cluster` are marked in tests/docs/test_runnable.py.
REAL_NODE = (
    "tests/kube/",
    "tests/e2e/",
    "tests/images/",
    "local-cluster/tests/test_real_node.py",
    "local-cluster/tests/test_controllers.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_rank)  # stable: every file's tests keep their order
    for item in items:
        if item.nodeid.startswith(REAL_NODE):
            item.add_marker(pytest.mark.real_node)


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def example():
    """A fresh copy of an example manifest by kind."""
    files = {
        "LoraTraining": "loratraining.yaml",
        "ImageGeneration": "imagegeneration.yaml",
        "ImageGeneration/lora": "imagegeneration-lora.yaml",
        "Transcription": "transcription.yaml",
        "LoraEvaluation": "loraevaluation.yaml",
        "VideoGeneration": "videogeneration.yaml",
        "VideoGeneration/image": "videogeneration-portrait.yaml",
    }

    def get(kind: str) -> dict[str, Any]:
        return copy.deepcopy(load_yaml(EXAMPLES / files[kind]))

    return get


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """The real S3 server (versitygw, `make s3-server`), shared by the session (tests use their own
    buckets); its objects are files under its root."""
    from tests.s3server import s3_server

    with s3_server(tmp_path_factory.mktemp("s3") / "root") as server:
        yield server


@pytest.fixture(scope="session")
def sts_server(tmp_path_factory):
    """The S3 server that enforces identities and policies: SeaweedFS with IAM and STS (`make
    sts-server`), shared by the session. One bucket (`sts_server.bucket`; tests use their own
    prefixes in it), an admin with the long-lived key, a role its STS lets the admin assume
    (tests/seaweed.py `session`), and its access log (`sts_server.requests()`)."""
    from tests.seaweed import sts_server

    with sts_server(tmp_path_factory.mktemp("sts") / "root") as server:
        yield server


@pytest.fixture(scope="session")
def s3_endpoint(s3_server):
    return s3_server.endpoint


@pytest.fixture
def s3(s3_endpoint, monkeypatch, request):
    """A fresh bucket on the S3 server, with the environment pointed at it; yields the bucket."""
    import re
    import uuid

    from tests.s3server import make_bucket, use_endpoint

    use_endpoint(monkeypatch, s3_endpoint)
    # unique in the session: tests of one name in two files share the server
    name = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:48].strip("-")
    bucket = f"{name}-{uuid.uuid4().hex[:8]}"
    make_bucket(s3_endpoint, bucket)
    return bucket


@pytest.fixture(scope="module")
def chromium():
    """Debian's chromium under Playwright, one for a module's tests (each opens its own contexts)."""
    from tests.harness.browser import launch

    with launch() as browser:
        yield browser


@pytest.fixture(autouse=True)
def _fresh_fal_prices():
    """fal's prices are cached per process for an hour: each test starts without them, so one
    test's fake prices never price another's run."""
    from contentgen.providers.fal.pricing import forget_cached

    forget_cached()
    yield
    forget_cached()
