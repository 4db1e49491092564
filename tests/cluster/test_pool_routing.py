"""Which pool pod draws a request (issue 79, `pool.route` and `PoolRouter`): the pod that holds its
LoRAs, or is about to (its open requests want them), unless it is busier than the least loaded pod
by more than AFFINITY_SKEW; else the least loaded, a new LoRA going to the pod that holds fewest;
never a pod that is not warm. Then through real pools on this machine's ports (their HTTP servers
and queues, a drawer that draws nothing but says what it holds), a Job worker's router sends each
LoRA's requests to one pod while the pods share the LoRAs out; pods told to route by load alone
(`--routing least-loaded`) spread one LoRA over all of them."""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from contentgen.providers.cluster.generation.pool import (
    AFFINITY_SKEW,
    LEAST_LOADED,
    Drawn,
    DrawRequest,
    PodView,
    Pool,
    PoolRouter,
    file_sha256,
    route,
    serve,
)


def pod(name: str, open: int = 0, *loras: str, state: str = "warm", routing: str = "affinity") -> PodView:
    return PodView(f"http://{name}:8090", state, open, frozenset(loras), routing)


def test_a_request_goes_to_the_pod_that_holds_its_loras_unless_it_is_much_busier() -> None:
    a, b, c = pod("a", 1, "x"), pod("b", 0, "y"), pod("c", 0)
    assert route(["x"], [a, b, c]) == a  # holds it; one more request open than the least loaded
    assert route(["y"], [a, b, c]) == b
    assert route(["x", "y"], [a, pod("b", 0, "x", "y"), c]).url == "http://b:8090"  # holds both
    busy = pod("a", 1 + AFFINITY_SKEW + 1, "x")
    assert route(["x"], [busy, b, c]) == c  # too busy: the least loaded, the one holding fewest
    assert route(["x"], [pod("a", AFFINITY_SKEW, "x"), b, c]).url == "http://a:8090"  # within the skew
    assert route(["z"], [a, b, c]) == c  # nobody holds it: idle, and holding nothing
    assert route([], [a, b, c]) == c
    assert route(["x"], [pod("a", 0, "x", state="loading"), b]) == b  # only warm pods
    assert route(["x"], [pod("a", 0, "x", state="stopping")]) is None
    # pods that ask to be chosen by their load alone
    even = [pod("a", 1, "x", routing=LEAST_LOADED), pod("b", 0, "y", routing=LEAST_LOADED)]
    assert route(["x"], even).url == "http://b:8090"


class Holder:
    """A drawer that draws nothing: each request's LoRAs held after it, the `capacity` most
    recently used, and what its pool's status says of them (as KeptLoras does)."""

    def __init__(self, capacity: int) -> None:
        self.held: OrderedDict[str, None] = OrderedDict()
        self.capacity, self.loads, self.owners = capacity, 0, Counter[str]()

    def __call__(
        self, wanted: DrawRequest, loras: Sequence[tuple[Path, float]], folder: Path, cancelled: Any
    ) -> Iterator[Drawn]:
        for sha, _ in wanted.loras:
            if sha not in self.held:
                self.loads += 1
            self.held[sha] = None
            self.held.move_to_end(sha)
            while len(self.held) > self.capacity:
                self.held.popitem(last=False)
        self.owners[wanted.owner] += 1
        for number, seed in wanted.pictures:
            path = folder / f"{number}.png"
            path.write_bytes(b"not a picture")
            yield Drawn(number, seed, path, 0.0, "bf16")

    def account(self) -> dict[str, Any]:
        return {
            "kept": len(self.held),
            "capacity": self.capacity,
            "loads": self.loads,
            "held": list(self.held),
        }


@pytest.fixture
def pools(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[list[tuple[str, Holder]]]:
    routing = getattr(request, "param", "affinity")
    made, servers = [], []
    for n in range(3):
        holder = Holder(capacity=2)
        running = Pool("FLUX.1-dev", holder, tmp_path / f"pool-{n}", None, holder.account, routing=routing)
        running.state.state = "warm"  # no pipeline to load
        server = serve(running.start(), "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        made.append((f"http://127.0.0.1:{server.server_address[1]}", holder))
    yield made
    for server in servers:
        server.shutdown()


def lora_files(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    files = [folder / f"lora-{n}.safetensors" for n in range(count)]
    for n, path in enumerate(files):
        path.write_bytes(f"lora {n}".encode())
    return files


def asked(router: PoolRouter, lora: Path, owner: str, folder: Path) -> None:
    client = router.reached([file_sha256(lora)])
    sha = client.upload_lora(lora)
    folder.mkdir(parents=True, exist_ok=True)
    request = DrawRequest(owner, "p", 64, 64, 1, 0.0, "auto", ((sha, 1.0),), ((1, 7),))
    assert [d.number for d in client.draw(request, folder)] == [1]


def test_each_loras_requests_go_to_one_pod_and_the_pods_share_the_loras(
    pools: list[tuple[str, Holder]], tmp_path: Path
) -> None:
    router = PoolRouter(",".join(url for url, _ in pools))
    assert sorted(router.addresses()) == sorted(url for url, _ in pools)
    loras = lora_files(tmp_path / "loras", 6)
    for round in range(4):
        for n, lora in enumerate(loras):
            asked(router, lora, f"lora{n}", tmp_path / "pictures" / f"{round}-{n}")
    served = [holder.owners for _, holder in pools]
    # each LoRA's four requests on one pod, two LoRAs on each pod (its capacity): each file loaded once
    assert sorted(len(owners) for owners in served) == [2, 2, 2]
    assert all(set(owners.values()) == {4} for owners in served)
    assert sum(holder.loads for _, holder in pools) == 6


@pytest.mark.parametrize("pools", [LEAST_LOADED], indirect=True)
def test_pods_that_route_by_load_alone_share_one_loras_requests(
    pools: list[tuple[str, Holder]], tmp_path: Path
) -> None:
    router = PoolRouter(",".join(url for url, _ in pools))
    [lora] = lora_files(tmp_path / "loras", 1)
    for round in range(3):
        asked(router, lora, "alice", tmp_path / "pictures" / str(round))
    # every pod idle each time: the one holding fewest LoRAs, so each pod drew once and loaded it
    assert [holder.owners["alice"] for _, holder in pools] == [1, 1, 1]
    assert sum(holder.loads for _, holder in pools) == 3
