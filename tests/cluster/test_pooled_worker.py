"""A Job's worker whose pictures a warm pool draws (CONTENTGEN_CLUSTER_POOL_URL, issue 47) never
imports the drawing stack: torch and diffusers were seconds of CPU at its start (13 s on a node)
while the pool waited for its request. Run as the Job runs it, `contentgen worker` in a process of
its own, against a pool pod's real server (pool_pod.py, which draws stand-in pictures), and
what that process imported is read from its sys.modules: before its first request to the pool
(where OpenCV's second of CPU is not wanted either) and at its end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .pool_pod import DRAWING, pooled_spec

BEFORE_ASKING = (*DRAWING, "cv2")
OUTSIDE_A_POD = ("CONTENTGEN_KUBE_API", "KUBERNETES_SERVICE_HOST")  # no status to patch
WORKER = """
import http.client, json, sys
from contentgen.cli.main import main

watched, at_first_request = {watched!r}, []
request = http.client.HTTPConnection.request

def first_request(self, *args, **kwargs):
    if not at_first_request:
        at_first_request.append(sorted(m for m in watched if m in sys.modules))
    return request(self, *args, **kwargs)

http.client.HTTPConnection.request = first_request
code = main(["worker", "--spec", sys.argv[1], "--termination-log", sys.argv[2]])
print(json.dumps({{
    "code": code,
    "at_first_request": at_first_request[0] if at_first_request else None,
    "at_end": sorted(m for m in watched if m in sys.modules),
}}))
"""


def test_a_pooled_worker_never_imports_the_drawing_stack(
    pool_pod: tuple[Any, str, Path], tmp_path: Path
) -> None:
    _, pool_url, release = pool_pod
    release.touch()  # every picture drawn at once
    spec = pooled_spec(tmp_path / "spec.json")
    env = {
        **{k: v for k, v in os.environ.items() if k not in OUTSIDE_A_POD},
        "CONTENTGEN_STORE": (tmp_path / "store").as_uri(),
        "CONTENTGEN_WORK_DIR": str(tmp_path / "work"),
        "CONTENTGEN_CLUSTER_POOL_URL": pool_url,
        "CONTENTGEN_CLUSTER_MODELS_DIR": str(tmp_path / "no-models"),  # a pooled worker needs none
    }
    ran = subprocess.run(
        [sys.executable, "-c", WORKER.format(watched=BEFORE_ASKING), str(spec), str(tmp_path / "log")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # hang guard
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    seen = json.loads(ran.stdout.strip().splitlines()[-1])
    assert seen["code"] == 0, ran.stderr[-3000:]
    stored = list((tmp_path / "store").rglob("image_*.png"))
    assert len(stored) == 2, ran.stderr[-3000:]  # drawn by the pool: this process loaded no model
    assert seen["at_first_request"] == [], f"imported before asking the pool: {seen['at_first_request']}"
    assert not set(seen["at_end"]) & set(DRAWING), f"a pooled worker imported {seen['at_end']}"
