"""A warm pool of generation workers (issue 47, providers/cluster/generation/pool.py), on the tiny
FLUX: a Job's worker hands its pictures to a pool that keeps the pipeline loaded; requests with two
LoRAs and with none give exactly the pictures a fresh process gives for the same seeds, the base
loaded once for all of them; the queue serves owners in turn; a client that goes away has the rest
of its request dropped. Faults on a pool pod's real process (pool_pod.py): stopped by SIGTERM it
draws its request to the end and refuses new ones, killed it leaves a request its retry finishes
with only the pictures not stored, each billed once."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contentgen.providers.base import ImageRequest, LoraWeights, MemoryCheckpoint
from contentgen.providers.cluster.generation import pipelines
from contentgen.providers.cluster.generation.pool import (
    DrawRequest,
    FairQueue,
    Pool,
    PoolClient,
    PoolRouter,
    serve,
)
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
    drawer.keep_loras(2)  # as `contentgen pool` does
    base = models_root / "FLUX.1-dev"

    def warm_up() -> int:
        before = pipelines.loads
        [*_] = drawer.draw(
            base, DrawRequest("", "warm", 64, 64, 2, 3.5, "auto", (), ()), (), tmp_path, lambda: False
        )
        return pipelines.loads - before

    assert drawer.kept is not None
    running = Pool(
        "FLUX.1-dev",
        lambda wanted, loras, folder, cancelled: drawer.draw(base, wanted, loras, folder, cancelled),
        tmp_path / "pool",
        warm_up,
        drawer.kept.account,
    ).start()
    # warm before a test loads anything itself: two diffusers loads at once in two threads make
    # meta tensors (accelerate's empty-weights patch is process-wide)
    until(lambda: running.status()["state"] == "warm", "the pool's pipeline is loaded")
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
    held = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in (first, second))
    # first again: kept, not loaded; the two it holds, which a router sends their requests to
    assert status["loras"] == {"kept": 2, "capacity": 2, "loads": 2, "held": held}
    assert (status["open"], status["wanted"], status["routing"]) == (0, [], "affinity")
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


def test_kept_loras_draw_a_fresh_processs_pictures_and_load_each_file_once_while_kept(
    models_root: Path, tmp_path: Path
) -> None:
    """The pool's LoRAs kept between requests (two at most here): a LoRA asked for again loads
    nothing, one more than the pool keeps drops the least recently used, two at once and none at
    all come after others; every picture equals the one drawn with each request's LoRAs loaded
    and unloaded (`loras_loaded`, a Job's worker), and a file replaced under the same path is
    loaded anew."""
    a, b, c = (random_lora(models_root, tmp_path / "loras", seed) for seed in (1, 2, 3))
    plan: list[list[tuple[Path, float]]] = [
        [(a, 0.5)],
        [(b, 0.7)],
        [],
        [(a, 1.0)],  # kept: no load, another scale
        [(c, 0.5)],  # drops b, the least recently used
        [(a, 0.5), (c, 0.3)],  # both kept
        [(b, 0.7)],  # drops a
        [],
    ]
    kept = ClusterProvider(models_root, device=DEVICE, inference_steps=2, sizes=SIZES)
    kept.keep_loras(2)
    plain = ClusterProvider(models_root, device=DEVICE, inference_steps=2, sizes=SIZES)
    drawn = [pictures(kept, tmp_path / "kept" / str(n), 7, 1, *loras) for n, loras in enumerate(plan)]
    assert kept.kept is not None and kept.kept.loads == 4  # a, b, c, then b again
    fresh = [pictures(plain, tmp_path / "plain" / str(n), 7, 1, *loras) for n, loras in enumerate(plan)]
    assert drawn == fresh
    assert drawn[2] == drawn[7] and drawn[1] == drawn[6]  # none, and b at 0.7, twice each
    assert len({d[0] for d in drawn}) == 6  # every other request a picture of its own: its LoRAs showed

    b.write_bytes(random_lora(models_root, tmp_path / "other", 4).read_bytes())  # replaced in place
    again = pictures(kept, tmp_path / "replaced", 7, 1, (b, 0.7))
    assert kept.kept.loads == 5 and again != drawn[1]
    assert again == pictures(plain, tmp_path / "replaced-plain", 7, 1, (b, 0.7))


def test_denoising_job_is_drawn_by_its_own_process_though_a_pool_is_named(
    models_root: Path, tmp_path: Path, pool: tuple[str, Pool]
) -> None:
    """A request whose spec says `denoising: job` (ImageRequest.drawn_here) is drawn by the worker
    itself, never sent to the pool the environment names: the picture a fresh process draws."""
    url, _ = pool
    named = ClusterProvider(models_root, device=DEVICE, inference_steps=2, sizes=SIZES, pool_url=url)
    folder = tmp_path / "own"
    folder.mkdir()
    request = ImageRequest(
        prompt="a photo of sks", model="flux-dev", image_size="square", seed=7, owner="alice", drawn_here=True
    )
    own = named.generate_images(request, folder, lambda _: None, MemoryCheckpoint())
    assert PoolClient(url).status()["requests"] == 0  # the pool drew nothing
    local = ClusterProvider(models_root, device=DEVICE, inference_steps=2, sizes=SIZES)
    fresh = pictures(local, tmp_path / "fresh", 7, 1)
    assert [hashlib.sha256(out.path.read_bytes()).hexdigest() for out in own] == fresh


def test_a_cancelled_request_draws_nothing_more(tmp_path: Path) -> None:
    """A client that goes away (its Job deleted) has its request cancelled: the drawer hears it
    before each picture and draws nothing more of it; a waiting request leaves the queue."""
    from contentgen.providers.cluster.generation.pool import Drawn

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


def test_a_cancel_stops_the_picture_under_way(models_root: Path, tmp_path: Path) -> None:
    """A request cancelled while a picture is drawn stops after the denoising step under way
    (diffusers' interrupt), not after its remaining steps: a cancel frees the GPU within a step,
    and the half-drawn picture is dropped."""
    drawer = ClusterProvider(models_root, device=DEVICE, inference_steps=6, sizes=SIZES)
    asked: list[bool] = []

    def cancelled() -> bool:  # asked before the picture, then after each step; cancelled at the 3rd
        asked.append(len(asked) >= 2)
        return asked[-1]

    wanted = DrawRequest("alice", "p", 64, 64, 6, 3.5, "auto", (), ((1, 1), (2, 2)))
    drawn = [*drawer.draw(models_root / "FLUX.1-dev", wanted, (), tmp_path, cancelled)]
    assert drawn == [] and not any(tmp_path.glob("drawn-*.png"))
    # before picture 1, after steps 1 and 2 (cancelled: steps 3 to 6 skipped), after the picture
    assert asked == [False, False, True, True]


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
    slept.clear()
    with pytest.raises(TransientError, match="did not answer in 20 s"):
        PoolClient(f"http://127.0.0.1:{port}", wait=20, sleep=slept.append).reached()
    assert slept == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]  # asked again every 5 s at most


def test_the_requests_place_in_the_pool_is_told_as_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the worker puts into the resource's status.pool: queued with its place while another
    owner's request is drawn, drawing once its pictures come, and nothing once done; its GPU
    seconds are the pool's drawing time of its own pictures, not the other request's."""
    from contentgen.providers.cluster.generation import pool as pool_module
    from contentgen.providers.cluster.generation.pool import Drawn, place

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


# --- faults (issue 47 item 3): each request ends once, its pictures stored and billed once ------


def free_port() -> int:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        return int(free.getsockname()[1])


def until(condition: Any, what: str) -> None:
    """Waits for `condition()` (a hang guard, not a measurement)."""
    for _ in range(6000):
        if condition():
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"never: {what}")


def test_a_pod_stopped_by_sigterm_finishes_its_request_refuses_new_ones_and_exits(
    pool_pod: tuple[Any, str, Path], tmp_path: Path
) -> None:
    """A rolling upgrade or an eviction (SIGTERM): the pod is no longer ready, refuses a new
    request and tells a waiting one to ask again (pool_stopping: another pod takes it), draws the
    request it had begun to its end, and exits when no request is open."""
    import http.client
    import signal

    from contentgen.providers.cluster.generation.pool import Stopping

    process, url, release = pool_pod
    client = PoolClient(url)
    drawing = client.draw(DrawRequest("alice", "p", 64, 64, 2, 3.5, "auto", (), ((1, 1), (2, 2))), tmp_path)
    assert next(drawing).number == 1  # picture 2 waits for `release`
    waited: list[Stopping] = []

    def bob() -> None:
        try:
            [*_] = client.draw(DrawRequest("bob", "p", 64, 64, 2, 3.5, "auto", (), ((1, 9),)), tmp_path)
        except Stopping as exc:
            waited.append(exc)

    queued = threading.Thread(target=bob, daemon=True)
    queued.start()
    until(lambda: client.status()["queued"] == 1, "bob's request waits")
    process.send_signal(signal.SIGTERM)
    until(lambda: client.status()["state"] == "stopping", "the pool says it stops")

    connection = http.client.HTTPConnection(client.host, client.port, timeout=60)
    connection.request("GET", "/v1/ready")
    assert connection.getresponse().status == 503  # the Service sends it nothing more
    connection.close()
    with pytest.raises(Stopping):
        [*_] = client.draw(DrawRequest("carol", "p", 64, 64, 2, 3.5, "auto", (), ((1, 3),)), tmp_path)
    queued.join(60)
    assert len(waited) == 1 and waited[0].reason == "ProviderUnreachable"  # transient: ask again
    assert process.poll() is None  # alice's request is still open: the pod waits for it

    release.touch()
    assert [d.number for d in drawing] == [2]  # the rest of alice's request, then its end
    assert process.wait(60) == 0  # idle: it exits on its own, before the grace period's SIGKILL


def test_a_killed_pod_cuts_the_request_and_its_retry_draws_only_the_pictures_not_stored(
    pool_pod: tuple[Any, str, Path], tmp_path: Path
) -> None:
    """A pool pod killed mid-request (SIGKILL, out of memory, a node lost): the Job's worker sees
    the connection cut and fails as ProviderUnreachable (transient: the Job retries it), not with
    the HTTP library's error; the retried pod takes the pictures the write-once folder holds and
    asks the pool for the rest only. Each picture is billed once: by the GPU-seconds in its
    record, under its record's request id, which a retry keeps; the picture the killed pod was
    drawing reached no record, so its time is the lost pod's and the picture is billed when it
    is drawn again."""
    import json
    import os
    import signal
    from datetime import UTC, datetime

    from contentgen.api.cost import Cost
    from contentgen.errors import TransientError
    from contentgen.pricing import PriceTable, gpu_usage, settled
    from contentgen.providers.cluster.files import FolderFiles
    from contentgen.providers.cluster.generation.pool import Drawn

    from .pool_pod import GPU_SECONDS, picture

    process, url, _ = pool_pod
    store = FolderFiles(tmp_path / "store" / "pictures")
    request = ImageRequest(
        prompt="p", model="flux-dev", image_size="square", num_images=3, seed=5, owner="alice", outputs=store
    )

    def kill_after_the_first(percent: float) -> None:
        if percent > 20 and process.poll() is None:  # picture 1 stored; picture 2 being drawn
            os.kill(process.pid, signal.SIGKILL)
            process.wait(60)

    first = ClusterProvider(tmp_path / "no-models", inference_steps=2, sizes=SIZES, pool_url=url)
    (tmp_path / "attempt-1").mkdir()
    with pytest.raises(TransientError) as cut:
        first.generate_images(request, tmp_path / "attempt-1", kill_after_the_first, MemoryCheckpoint())
    assert cut.value.reason == "ProviderUnreachable" and process.returncode == -signal.SIGKILL
    stored = json.loads((tmp_path / "store" / "pictures" / "image-1.json").read_text())
    assert sorted(store.names()) == ["image-1.json", "image-1.png", "request.json"]

    drawn: list[int] = []

    def drawer(wanted: DrawRequest, loras: Any, folder: Path, cancelled: Any) -> Iterator[Drawn]:
        for number, seed in wanted.pictures:
            drawn.append(number)
            yield Drawn(number, seed, picture(folder, number, seed), GPU_SECONDS, "bf16")

    again = Pool("FLUX.1-dev", drawer, tmp_path / "pod-2").start()
    server = serve(again, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    retry = ClusterProvider(
        tmp_path / "no-models",
        inference_steps=2,
        sizes=SIZES,
        pool_url=f"http://127.0.0.1:{server.server_address[1]}",
    )
    (tmp_path / "attempt-2").mkdir()
    made = retry.generate_images(request, tmp_path / "attempt-2", lambda _: None, MemoryCheckpoint())
    server.shutdown()
    server.server_close()
    assert drawn == [2, 3]  # not picture 1 again
    assert len(made) == 3 and made[0].seed == stored["seed"]
    assert made[0].request_id == stored["request_id"] and made[0].gpu_seconds == stored["gpu_seconds"]

    # the run's bill (pipeline/images.py): a line per picture under its request id, counted once
    lines = [
        line
        for m in made
        for line in gpu_usage("cluster", "image-generation", m.gpu_seconds or 0.0, m.request_id)
    ]
    assert sum(line.quantity for line in lines) * 3600 == pytest.approx(3 * GPU_SECONDS)
    prices = PriceTable()
    once = settled(Cost(), lines, prices, datetime(2026, 11, 25, tzinfo=UTC))
    twice = settled(once, lines, prices, datetime(2026, 11, 25, tzinfo=UTC))
    assert once.by_month == twice.by_month == {"2026-11": pytest.approx(3 * GPU_SECONDS / 3600 * 2.0)}


def test_a_pod_killed_while_it_sends_a_picture_is_unreachable_too(tmp_path: Path) -> None:
    """A kill can cut a picture's line half-way (its pod dies mid-write): the worker fails as
    ProviderUnreachable then too, for the Job to retry, not with the HTTP library's
    IncompleteRead (which failed the run as InternalError)."""
    import base64
    import json
    import socket

    from contentgen.errors import TransientError

    from .pool_pod import picture

    png = base64.b64encode(picture(tmp_path, 1, 1).read_bytes()).decode()
    line = json.dumps({"number": 1, "seed": 1, "png": png, "gpuSeconds": 1.0, "memoryPlan": "bf16"}).encode()
    listener = socket.create_server(("127.0.0.1", 0))

    def pod() -> None:
        connection, _ = listener.accept()
        with connection, connection.makefile("rb") as request:
            headers = iter(request.readline, b"\r\n")
            length = next(int(h.split(b":")[1]) for h in headers if h.lower().startswith(b"content-length"))
            [*_] = headers  # the rest of them
            request.read(length)
            answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            connection.sendall(answer + b"%x\r\n" % (len(line) + 1) + line[: len(line) // 2])
            connection.shutdown(socket.SHUT_RDWR)  # killed mid-line

    threading.Thread(target=pod, daemon=True).start()
    client = PoolClient(f"http://127.0.0.1:{listener.getsockname()[1]}")
    with pytest.raises(TransientError) as cut:
        [*_] = client.draw(DrawRequest("alice", "p", 64, 64, 2, 3.5, "auto", (), ((1, 1),)), tmp_path)
    listener.close()
    assert cut.value.reason == "ProviderUnreachable"


def test_a_client_that_goes_away_is_cancelled_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client whose connection closes (its Job deleted, its pod gone) has its request cancelled
    when it closes, not at the pool's next write to it: waiting, it leaves the queue; drawing,
    the drawer stops before the next picture."""
    import http.client
    import json

    from contentgen.providers.cluster.generation import pool as pool_module
    from contentgen.providers.cluster.generation.pool import Drawn

    from .pool_pod import picture

    monkeypatch.setattr(pool_module, "POSITION_SECONDS", 3600.0)  # no write tells it the client left
    heard: list[str] = []

    def drawer(wanted: DrawRequest, loras: Any, folder: Path, cancelled: Any) -> Iterator[Drawn]:
        for number, seed in wanted.pictures:
            if number > 1:
                until(cancelled, "the request is cancelled")
                heard.append(f"{wanted.owner} cancelled before {number}")
                return
            yield Drawn(number, seed, picture(folder, number, seed), 1.0, "bf16")

    running = Pool("FLUX.1-dev", drawer, tmp_path / "pool").start()
    server = serve(running, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def ask(owner: str) -> http.client.HTTPConnection:
        body = json.dumps(DrawRequest(owner, "p", 64, 64, 2, 3.5, "auto", (), ((1, 1), (2, 2))).wire())
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=60)
        connection.request("POST", "/v1/draw", body, {"Content-Type": "application/json"})
        return connection

    alice = ask("alice")
    answer = alice.getresponse()
    assert "png" in json.loads(answer.readline())  # picture 1; picture 2 waits for a cancel
    bob = ask("bob")
    until(lambda: len(running.queue) == 1, "bob's request waits")
    bob.close()
    until(lambda: len(running.queue) == 0, "bob's request leaves the queue")
    alice.close()
    answer.close()
    until(lambda: bool(heard), "alice's drawing stops")
    server.shutdown()
    server.server_close()
    assert heard == ["alice cancelled before 2"] and running.status()["drawn"] == 1
    assert running.status()["requests"] == 1  # bob's was never drawn
    until(lambda: not any((tmp_path / "pool" / "pictures").iterdir()), "the pool keeps nothing of them")


def test_a_request_waiting_on_a_stopping_pod_is_drawn_by_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request queued in a pod that stops (pool_stopping) is not failed: the Job's worker waits
    for a pod of the pool that is not stopping (its Service's next one) and asks it for the
    pictures, once each; status.pool says starting meanwhile."""
    from functools import partial

    from contentgen.providers.cluster import provider as provider_module
    from contentgen.providers.cluster.generation import pool as pool_module
    from contentgen.providers.cluster.generation.pool import Drawn, stop_when_idle

    from .pool_pod import picture

    monkeypatch.setattr(pool_module, "POSITION_SECONDS", 0.05)
    monkeypatch.setattr(pool_module, "_listeners", [])
    drawing, gate = threading.Event(), threading.Event()
    drawn: dict[str, list[int]] = {"old": [], "new": []}

    def drawer(name: str) -> Any:
        def draw(wanted: DrawRequest, loras: Any, folder: Path, cancelled: Any) -> Iterator[Drawn]:
            if wanted.owner == "bob":
                drawing.set()
                assert gate.wait(60)  # hang guard: bob's request holds the old pod
            for number, seed in wanted.pictures:
                drawn[name].append(number)
                yield Drawn(number, seed, picture(folder, number, seed), 1.0, "bf16")

        return draw

    port = free_port()
    old = Pool("FLUX.1-dev", drawer("old"), tmp_path / "old").start()
    servers = [serve(old, "127.0.0.1", port)]
    threading.Thread(target=servers[0].serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    bob = threading.Thread(
        target=lambda: [
            *PoolClient(url).draw(DrawRequest("bob", "p", 64, 64, 2, 3.5, "auto", (), ((1, 9),)), tmp_path)
        ],
        daemon=True,
    )
    bob.start()
    assert drawing.wait(60)
    stopping: list[threading.Thread] = []
    told: list[tuple[str, int]] = []

    def hear(state: str, position: int) -> None:
        told.append((state, position))
        if state == "queued" and not stopping:  # alice waits behind bob: the old pod gets SIGTERM
            stopping.append(threading.Thread(target=stop_when_idle, args=(old, servers[0]), daemon=True))
            stopping[0].start()

    pool_module.listen(hear)

    def next_pod(_: float) -> None:  # while the worker waits, bob's request ends and a new pod comes up
        if len(servers) == 1:
            gate.set()
            stopping[0].join(60)
            servers[0].server_close()
            servers.append(
                serve(Pool("FLUX.1-dev", drawer("new"), tmp_path / "new").start(), "127.0.0.1", port)
            )
            threading.Thread(target=servers[1].serve_forever, daemon=True).start()

    monkeypatch.setattr(provider_module, "PoolRouter", partial(PoolRouter, sleep=next_pod))
    client = ClusterProvider(tmp_path / "no-models", inference_steps=2, sizes=SIZES, pool_url=url)
    request = ImageRequest(
        prompt="p", model="flux-dev", image_size="square", num_images=2, seed=5, owner="alice"
    )
    (tmp_path / "alice").mkdir()
    made = client.generate_images(request, tmp_path / "alice", lambda _: None, MemoryCheckpoint())
    servers[1].shutdown()
    servers[1].server_close()
    bob.join(60)
    assert len(made) == 2 and all(m.gpu_seconds == 1.0 for m in made)
    assert drawn == {"old": [1], "new": [1, 2]}  # bob's on the old pod; alice's on the new one, once
    assert told.index(("queued", 1)) < told.index(("starting", 0)) < told.index(("drawing", 0))
    assert told[-1] == ("", 0)
