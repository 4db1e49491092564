"""A warm pool of generation workers (issue 47, providers/cluster/pool.py), on the tiny FLUX: a Job's
worker hands its pictures to a pool that keeps the pipeline loaded; requests with two LoRAs and
with none give exactly the pictures a fresh process gives for the same seeds, the base loaded once
for all of them; the queue serves owners in turn; a client that goes away has the rest of its
request dropped."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contentgen.providers.base import ImageRequest, LoraWeights, MemoryCheckpoint
from contentgen.providers.cluster import pipelines
from contentgen.providers.cluster.pool import DrawRequest, FairQueue, Pool, PoolClient, serve
from contentgen.providers.cluster.provider import ClusterProvider
from tests.harness.cluster import random_lora

from .conftest import DEVICE

SIZES = {"square": (64, 64)}


def test_the_queue_serves_owners_in_turn() -> None:
    """One owner's thousand requests do not starve another's one: owners are served round-robin,
    each owner's in the order put; a waiting item's place is known and cancelled ones leave."""
    line: FairQueue[str] = FairQueue()
    alice = [line.put("alice", f"a{n}") for n in range(1000)]
    bob = line.put("bob", "b0")
    carol = line.put("carol", "c0")
    assert line.position(alice[0]) == 1 and line.position(bob) == 2 and line.position(carol) == 3
    assert line.position(alice[1]) == 4
    taken = [line.take(0) for _ in range(4)]
    assert [t[1] for t in taken if t] == ["a0", "b0", "c0", "a1"]
    assert line.discard(alice[5]) and not line.discard(alice[5])
    late = line.put("dave", "d0")
    assert line.position(late) == 2  # after alice's next, not after her 995 others
    assert [line.take(0)[1] for _ in range(3)] == ["a2", "d0", "a3"]  # type: ignore[index]
    assert len(line) == 1003 - 7 - 1  # put, taken, cancelled
    assert line.take(0.01) is not None and FairQueue[str]().take(0.01) is None


@pytest.fixture
def pool(models_root: Path, tmp_path: Path) -> Iterator[tuple[str, Pool]]:
    """A pool of the tiny FLUX on a free port of this machine, its pipeline loaded at start."""
    drawer = ClusterProvider(models_root, device=DEVICE, inference_steps=2, sizes=SIZES)
    base = models_root / "FLUX.1-dev"

    def warm_up() -> int:
        before = pipelines.loads
        [*_] = drawer.draw(
            base, DrawRequest("", "warm", 64, 64, 2, 3.5, "auto", (), ()), (), tmp_path, lambda: False
        )
        return pipelines.loads - before

    running = Pool(
        "FLUX.1-dev",
        lambda wanted, loras, folder, cancelled: drawer.draw(base, wanted, loras, folder, cancelled),
        tmp_path / "pool",
        warm_up,
    ).start()
    server = serve(running, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", running
    server.shutdown()


def pictures(
    provider: ClusterProvider, folder: Path, seed: int, count: int, *loras: tuple[Path, float]
) -> list[str]:
    folder.mkdir(parents=True)
    request = ImageRequest(
        prompt="a photo of sks",
        model="flux-lora" if loras else "flux-dev",
        image_size="square",
        num_images=count,
        seed=seed,
        loras=tuple(LoraWeights(url=path.resolve().as_uri(), scale=scale) for path, scale in loras),
        owner="alice",
    )
    made = provider.generate_images(request, folder, lambda _: None, MemoryCheckpoint())
    return [hashlib.sha256(out.path.read_bytes()).hexdigest() for out in made]


def test_pool_pictures_are_a_fresh_processs_and_the_base_loads_once(
    models_root: Path,
    tmp_path: Path,
    pool: tuple[str, Pool],
    counted: list[Path],
) -> None:
    url, _ = pool
    first, second = random_lora(models_root, tmp_path, 1), random_lora(models_root, tmp_path, 2)
    cases: dict[str, list[tuple[Path, float]]] = {
        "first": [(first, 0.5)],
        "second": [(second, 0.5)],
        "none": [],
    }
    client = ClusterProvider(models_root, inference_steps=2, sizes=SIZES, pool_url=url)
    pooled = {
        name: pictures(client, tmp_path / "pooled" / name, 7, 1, *loras) for name, loras in cases.items()
    }
    again = pictures(client, tmp_path / "pooled" / "again", 7, 2, *cases["first"])  # pictures 1 and 2
    status = PoolClient(url).status()
    assert status["state"] == "warm" and status["requests"] == 4 and status["drawn"] == 5
    assert len(counted) == 1  # the pool's one load, at its start: no request loaded the base
    assert status["busySeconds"] > 0 and status["warmSeconds"] >= 0

    fresh = {}
    local = ClusterProvider(models_root, device=DEVICE, inference_steps=2, sizes=SIZES)
    for name, loras in cases.items():
        pipelines.release()  # a new process's load
        fresh[name] = pictures(local, tmp_path / "fresh" / name, 7, 1, *loras)
    assert pooled == fresh
    assert again[0] == pooled["first"][0] and again[1] != again[0]  # after another LoRA and none
    assert len({tuple(v) for v in pooled.values()}) == 3  # each LoRA changed the picture: it was there


def test_a_cancelled_request_draws_nothing_more(tmp_path: Path) -> None:
    """A client that goes away (its Job deleted) has its request cancelled: the drawer hears it
    before each picture and draws nothing more of it; a waiting request leaves the queue."""
    from contentgen.providers.cluster.pool import Drawn

    gate, drawn = threading.Semaphore(0), []

    def drawer(wanted: DrawRequest, loras: Any, folder: Path, cancelled: Any) -> Iterator[Drawn]:
        for number, seed in wanted.pictures:
            gate.acquire()
            if cancelled():
                return
            drawn.append(number)
            path = folder / f"{number}.png"
            path.write_bytes(b"png")
            yield Drawn(number, seed, path, 1.0, "bf16")

    running = Pool("FLUX.1-dev", drawer, tmp_path).start()
    ticket, job = running.submit(
        DrawRequest("alice", "p", 64, 64, 2, 3.5, "auto", (), ((1, 1), (2, 2), (3, 3)))
    )
    waiting, queued = running.submit(DrawRequest("bob", "p", 64, 64, 2, 3.5, "auto", (), ((1, 9),)))
    gate.release()
    assert job.out.get(timeout=60).number == 1  # type: ignore[union-attr]
    running.cancel(ticket, job)
    running.cancel(waiting, queued)
    gate.release()
    assert job.out.get(timeout=60) is None  # the request ended without picture 2
    assert drawn == [1] and len(running.queue) == 0 and running.status()["drawn"] == 1


def test_ready_once_warm_and_a_client_waits_for_a_pool_that_is_not_up(tmp_path: Path) -> None:
    """The pod's readiness (`GET /v1/ready`) is 503 while the pipeline loads and 200 once warm,
    so that the pool's Service sends work to warm pods only; a Job's worker whose pool cannot be
    reached (scaled to zero, loading) says `starting` and tries again until it answers, and gives
    up as ProviderUnreachable after its wait."""
    import http.client
    import socket

    from contentgen.errors import TransientError

    loaded = threading.Event()

    def warm_up() -> int:
        assert loaded.wait(60)  # hang guard
        return 1

    running = Pool("FLUX.1-dev", lambda *_: iter(()), tmp_path, warm_up).start()
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    servers: list[Any] = []

    def come_up(_: float) -> None:  # the pool's pod starting while the worker waits
        if not servers:
            servers.append(serve(running, "127.0.0.1", port))
            threading.Thread(target=servers[0].serve_forever, daemon=True).start()

    said: list[tuple[int, str]] = []
    client = PoolClient(f"http://127.0.0.1:{port}", wait=60, sleep=come_up)
    assert client.reached(lambda p, s: said.append((p, s)))["state"] == "loading"
    assert said == [(0, "starting")]

    def ready() -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/v1/ready")
        code = connection.getresponse().status
        connection.close()
        return code

    assert ready() == 503
    loaded.set()
    for _ in range(6000):  # hang guard: the drawing thread marks it warm right after the load
        if running.status()["state"] == "warm":
            break
        threading.Event().wait(0.01)
    assert ready() == 200 and running.status()["loads"] == 1
    servers[0].shutdown()
    servers[0].server_close()  # gone: its port refuses

    slept: list[float] = []
    away = PoolClient(f"http://127.0.0.1:{port}", wait=5, sleep=slept.append)
    with pytest.raises(TransientError, match="did not answer in 5 s") as caught:
        away.reached()
    assert caught.value.reason == "ProviderUnreachable" and slept == [1.0, 2.0, 4.0]


def test_the_requests_place_in_the_pool_is_told_as_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the worker puts into the resource's status.pool: queued with its place while another
    owner's request is drawn, drawing once its pictures come, and nothing once done; its GPU
    seconds are the pool's drawing time of its own pictures, not the other request's."""
    from contentgen.providers.cluster import pool as pool_module
    from contentgen.providers.cluster.pool import Drawn, place

    assert place(0, "starting") == ("starting", 0) and place(3, "loading") == ("loading", 3)
    assert place(2, "warm") == ("queued", 2) and place(0, "warm") == ("drawing", 0)

    monkeypatch.setattr(pool_module, "POSITION_SECONDS", 0.05)
    monkeypatch.setattr(pool_module, "_listeners", [])
    told: list[tuple[str, int]] = []
    queued = threading.Event()

    def hear(state: str, position: int) -> None:
        told.append((state, position))
        if state == "queued":
            queued.set()

    pool_module.listen(hear)
    gate = threading.Event()

    def drawer(wanted: DrawRequest, loras: Any, folder: Path, cancelled: Any) -> Iterator[Drawn]:
        from PIL import Image

        if wanted.owner == "bob":
            assert gate.wait(60)  # hang guard: bob's request holds the pool until alice is queued
        for number, seed in wanted.pictures:
            path = folder / f"{number}.png"
            Image.new("RGB", (64, 64), (seed % 256, 0, 0)).save(path)
            yield Drawn(number, seed, path, 1.5, "bf16")

    running = Pool("FLUX.1-dev", drawer, tmp_path / "pool").start()
    server = serve(running, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    running.submit(DrawRequest("bob", "p", 64, 64, 2, 3.5, "auto", (), ((1, 1),)))

    def release() -> None:
        assert queued.wait(60)  # hang guard
        gate.set()

    releaser = threading.Thread(target=release, daemon=True)
    releaser.start()
    client = ClusterProvider(tmp_path / "no-models", inference_steps=2, sizes=SIZES, pool_url=url)
    request = ImageRequest(
        prompt="p", model="flux-dev", image_size="square", num_images=2, seed=5, owner="alice"
    )
    (tmp_path / "alice").mkdir()
    made = client.generate_images(request, tmp_path / "alice", lambda _: None, MemoryCheckpoint())
    server.shutdown()
    server.server_close()
    assert [out.gpu_seconds for out in made] == [1.5, 1.5]
    assert ("queued", 1) in told and told[-2:] == [("drawing", 0), ("", 0)]
    assert told.index(("queued", 1)) < told.index(("drawing", 0))
