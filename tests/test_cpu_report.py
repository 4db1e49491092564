"""CONTENTGEN_TEST_CPU (tests/conftest.py) records each test's CPU, its own and its waited
children's, and tests/cpu_report.py sums them by file: a test that burns CPU in its process and
one that waits for a child that burns it are told apart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT
from tests.cpu_report import by_file

SAMPLE = """
import subprocess, sys, time

def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

def test_in_process():
    burn(0.4)

def test_a_child():
    subprocess.run([sys.executable, "-c", "import time\\nend = time.process_time() + 0.4\\n"
                    "while time.process_time() < end: pass"], check=True)
"""


def test_each_tests_cpu_is_recorded_and_summed_by_file(tmp_path: Path) -> None:
    sample = tmp_path / "test_sample.py"
    sample.write_text(SAMPLE)
    # Not an xdist worker, nor a suite that starts the real node probe: a pytest of its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CONTENTGEN_TEST_"))}
    env["CONTENTGEN_TEST_CPU"] = str(tmp_path / "cpu")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest", str(sample)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    lines = [json.loads(line) for line in (tmp_path / "cpu" / "main.jsonl").read_text().splitlines()]
    tests = {line["test"].rsplit("::", 1)[1]: line for line in lines}
    assert tests["test_in_process"]["cpu"] >= 0.4 and tests["test_in_process"]["children"] == 0
    assert tests["test_a_child"]["children"] >= 0.4 and tests["test_a_child"]["cpu"] < 0.4
    ((name, cpu, children, wall),) = by_file(tmp_path / "cpu")
    assert name.endswith("test_sample.py")
    assert cpu == sum(line["cpu"] for line in lines) and children == sum(line["children"] for line in lines)
    assert wall >= 0.8
