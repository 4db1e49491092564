"""A pool pod's process for test_pool's fault tests: the real pool server and its signal handling
(pool.serve_until_stopped), with a drawer that draws picture 1 of a request at once and each
later one only once the file RELEASE exists, so that the test can stop it (SIGTERM) or kill it
(SIGKILL) while a request is mid-way. It prints its port when it listens.

python -m tests.cluster.pool_pod WORK_DIR RELEASE, or started() from a test"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from PIL import Image

from contentgen.api import SpecSnapshot
from contentgen.providers.cluster.generation.pool import Drawn, DrawRequest, Pool, serve, serve_until_stopped

GPU_SECONDS = 1.5  # each picture's, as the pool reports it
# What a worker whose pictures a pool draws never imports (test_pooled_worker, chart/test_images).
DRAWING = ("torch", "diffusers", "transformers", "accelerate", "peft", "safetensors")


def picture(folder: Path, number: int, seed: int) -> Path:
    """The picture the fake drawers of these tests draw for `seed`."""
    path = folder / f"drawn-{number}.png"
    Image.new("RGB", (64, 64), (seed % 256, number, 0)).save(path)
    return path


def gated(release: Path) -> Callable[..., Iterator[Drawn]]:
    def draw(
        wanted: DrawRequest, loras: Sequence[tuple[Path, float]], folder: Path, cancelled: Callable[[], bool]
    ) -> Iterator[Drawn]:
        for number, seed in wanted.pictures:
            if number > 1:
                for _ in range(60000):  # hang guard: the test releases it or kills this process
                    if release.exists() or cancelled():
                        break
                    time.sleep(0.01)
            if cancelled():
                return
            yield Drawn(number, seed, picture(folder, number, seed), GPU_SECONDS, "bf16")

    return draw


def main() -> None:
    work, release = Path(sys.argv[1]), Path(sys.argv[2])
    pool = Pool("FLUX.1-dev", gated(release), work).start()
    server = serve(pool, "127.0.0.1", 0)
    print(server.server_address[1], flush=True)
    serve_until_stopped(pool, server)


def pooled_spec(path: Path) -> Path:
    """`path`, written with the spec snapshot of a cluster ImageGeneration of two pictures (seeds 7
    and 8), as a Job's worker reads it (--spec): what the tests send to this pool pod."""
    snapshot = SpecSnapshot(
        kind="ImageGeneration",
        name="pooled",
        namespace="ns",
        uid="11111111-2222-3333-4444-555555555555",
        generation=1,
        version=1,
        spec={"owner": "alice", "provider": "cluster", "prompt": "a fox", "numImages": 2, "seed": 7},
    )
    path.write_text(snapshot.model_dump_json(by_alias=True))
    return path


@contextmanager
def started(folder: Path) -> Iterator[tuple[subprocess.Popen[str], str, Path]]:
    """This pool pod in a process of its own (the tests' Python): (the process, its URL, the file
    that lets it draw on)."""
    release = folder / "release"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.cluster.pool_pod", str(folder / "pod"), str(release)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield process, f"http://127.0.0.1:{port}", release
    finally:
        process.kill()
        process.wait(60)


if __name__ == "__main__":
    main()
