"""A pool pod's process for test_pool's fault tests: the real pool server and its signal handling
(pool.serve_until_stopped), with a drawer that draws picture 1 of a request at once and each
later one only once the file RELEASE exists, so that the test can stop it (SIGTERM) or kill it
(SIGKILL) while a request is mid-way. It prints its port when it listens.

python -m tests.cluster.pool_pod WORK_DIR RELEASE"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from PIL import Image

from contentgen.providers.cluster.pool import Drawn, DrawRequest, Pool, serve, serve_until_stopped

GPU_SECONDS = 1.5  # each picture's, as the pool reports it


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


if __name__ == "__main__":
    main()
