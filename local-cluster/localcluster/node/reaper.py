"""`python -m localcluster.node.reaper STATE_FILE`: a real node's reaper, started by its owner in a
session of its own, reading a pipe whose write end only the owner holds. The read ends (EOF) when
the owner exits by any means, a SIGKILL included; then the node is torn down (teardown.py). After
a clean stop the owner has torn it down already and removed STATE_FILE: nothing is left to do."""

from __future__ import annotations

import sys
from pathlib import Path

from .teardown import State, teardown


def reap(state_file: Path) -> None:
    while sys.stdin.buffer.read(65536):
        pass
    state = State.read(state_file)
    if state is not None:
        left = teardown(state.layout)
        if left:
            print(f"localcluster reaper: could not remove {', '.join(left)}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m localcluster.node.reaper STATE_FILE")
    reap(Path(sys.argv[1]))
