"""What the operator pays on every LoraTraining event to know what a loraRef resolves to
(`python -m bench.references`): the kopf index of references calls observe.lora_state on each
event of each LoraTraining, with its whole status. Measured for statuses grown as the operator
grows them (tests/harness/grown_status.py: each run as large as the API lets
it be, the newest DETAILED_STATUS_VERSIONS versions with their likeness curve and report), of 1,
10 and 100 versions (MAX_STATUS_VERSIONS: the most a status lists): CPU time per call, median of
7 rounds, of the part of the status a reference reads (observe.ReferencedLora) against the whole
status as its kind's model (read_status: what lora_state read before), in the same run. Both give
the same state (tests/controller/test_status_reading.py holds them so).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = (1, 10, 100)


def per_call(fn: Callable[[], object], rounds: int = 7) -> float:
    """Median CPU seconds of one call of `fn`, over `rounds` rounds of enough calls for 0.2 s."""
    calls = 1
    while True:
        began = time.process_time()
        for _ in range(calls):
            fn()
        if time.process_time() - began >= 0.2:
            break
        calls *= 2
    times = []
    for _ in range(rounds):
        began = time.process_time()
        for _ in range(calls):
            fn()
        times.append((time.process_time() - began) / calls)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    from contentgen.api import KINDS
    from contentgen.controller.observe import lora_state
    from contentgen.controller.status import read_status
    from tests.harness.grown_status import grown_status

    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the start")
    print("| versions in the status | status JSON | whole status read | lora_state (its part) | ratio |")
    print("|---|---|---|---|---|")
    for size in SIZES:
        status, _ = grown_status("LoraTraining", size)
        body: dict[str, Any] = {"metadata": {"name": "style", "uid": "u"}, "spec": {}, "status": status}
        whole = per_call(lambda status=status: read_status(KINDS["LoraTraining"], status))
        part = per_call(lambda body=body: lora_state(body))
        kb = len(json.dumps(status)) / 1024
        print(f"| {size} | {kb:.0f} KiB | {whole * 1e3:.3f} ms | {part * 1e3:.3f} ms | {part / whole:.2f}× |")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min) at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
