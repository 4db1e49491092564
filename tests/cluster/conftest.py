"""The cluster provider's tests: a tiny FLUX made from configs (tiny_flux.py), on the device in
CONTENTGEN_TEST_DEVICE (cpu unless a GPU check asks for cuda), with no way out to a hub: the
hub libraries are told they are offline, and any connection to a host other than this one
fails the test loudly."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contentgen.providers.cluster.generation import flux, pipelines
from tests.run.checkpoint_pictures import subject_video

from .pool_pod import started as pool_pod_started
from .tiny_flux import session_cache, tiny_flux

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

DEVICE = os.environ.get("CONTENTGEN_TEST_DEVICE", "cpu")
_LOCAL = ("127.0.0.1", "::1", "localhost")


class HubCalled(AssertionError):
    pass


@pytest.fixture(autouse=True, scope="session")
def _no_hub():
    connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        remote = isinstance(address, tuple) and address[0] not in _LOCAL
        if self.family in (socket.AF_INET, socket.AF_INET6) and remote:
            assert isinstance(address, tuple)
            raise HubCalled(f"a test tried to reach {address[0]}: models come only from a directory")
        connect(self, address)  # type: ignore[arg-type]

    socket.socket.connect = guarded  # type: ignore[method-assign]
    yield
    socket.socket.connect = connect  # type: ignore[method-assign]


@pytest.fixture(scope="session")
def threads():
    import torch

    torch.set_num_threads(1)  # 2 shared cores: one each for this worker and the next


@pytest.fixture(scope="session")
def models_root(tmp_path_factory, threads) -> Path:
    """A models' root with the tiny FLUX staged as FLUX.1-dev (built once per session)."""
    root = tmp_path_factory.mktemp("models")
    built = tiny_flux(session_cache(tmp_path_factory))
    (root / "FLUX.1-dev").symlink_to(built, target_is_directory=True)
    return root


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, models_root: Path) -> Path:
    """A run's working folder: the tiny FLUX staged, a video of the subject, no store, catalog,
    fal key or price table from the environment."""
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "FAL_KEY", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CONTENTGEN_CLUSTER_MODELS_DIR", str(models_root))
    monkeypatch.setenv("CONTENTGEN_CLUSTER_DEVICE", DEVICE)
    monkeypatch.setenv("CONTENTGEN_CLUSTER_INFERENCE_STEPS", "2")
    subject_video(tmp_path / "subject.mp4", monkeypatch)
    return tmp_path


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The pipelines loaded from here on (none kept before)."""
    pipelines.release()
    loaded: list[Path] = []
    load = flux.load_pipeline

    def counting(model_dir: Path, on: flux.Device) -> Any:
        loaded.append(model_dir)
        return load(model_dir, on)

    monkeypatch.setattr(flux, "load_pipeline", counting)
    yield loaded
    pipelines.release()


@pytest.fixture
def pool_pod(tmp_path: Path) -> Iterator[tuple[Any, str, Path]]:
    """A pool pod's process (pool_pod.py): (the process, its URL, the file that lets it draw on)."""
    with pool_pod_started(tmp_path) as started:
        yield started


@pytest.fixture(scope="session")
def wan_root(tmp_path_factory: pytest.TempPathFactory, threads: None) -> Path:
    """A models' root with the tiny Wan 2.1 T2V, Wan 2.1 I2V and Wan 2.2 T2V A14B (tiny_wan.py),
    staged once for the session's Wan tests."""
    from .tiny_wan import stage

    return stage(tmp_path_factory.mktemp("wan-models"))
