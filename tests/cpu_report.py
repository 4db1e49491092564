"""Where a test run's CPU went, by test file: the JSON lines `CONTENTGEN_TEST_CPU=DIR` leaves
(tests/conftest.py), summed and sorted, the most first.

    CONTENTGEN_TEST_CPU=/tmp/cpu make test && .venv/bin/python -m tests.cpu_report /tmp/cpu
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path


def by_file(folder: Path) -> list[tuple[str, float, float, float]]:
    """(file, CPU in the test's process, in its waited children, wall), the most CPU first."""
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            test = json.loads(line)
            row = sums[test["test"].split("::", 1)[0]]
            row[0] += test["cpu"]
            row[1] += test["children"]
            row[2] += test["wall"]
    rows = [(name, cpu, children, wall) for name, (cpu, children, wall) in sums.items()]
    return sorted(rows, key=lambda r: -(r[1] + r[2]))


def main() -> None:
    rows = by_file(Path(sys.argv[1]))
    print(f"{'in process':>10} {'children':>9} {'wall':>8}  file (CPU seconds)")
    for name, cpu, children, wall in rows:
        print(f"{cpu:10.1f} {children:9.1f} {wall:8.1f}  {name}")
    cpu, children, wall = sum(r[1] for r in rows), sum(r[2] for r in rows), sum(r[3] for r in rows)
    print(f"{cpu:10.1f} {children:9.1f} {wall:8.1f}  in all")


if __name__ == "__main__":
    main()
