"""How fast `contentgen validate` goes through a big GitOps repository (`make bench-validate`).

The tree is generated: APPS applications (Deployment, Service and ConfigMap manifests, a
kustomization), Helm charts with templates that are not YAML until rendered, a .git and a .venv
full of files, and contentgen resources in some applications — valid ones and planted mistakes.
In the same run, two baselines over the same files: reading every manifest file (the I/O floor)
and parsing every one with PyYAML's C loader (what a validator that reads everything does, the
old `validate` among them). The run fails when the command does not find exactly the planted
resources and mistakes. Results go to bench/README.md's validate section.

    python -m bench.validate [--apps N] [--runs N]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONTENTGEN = Path(sys.executable).parent / "contentgen"
BENCH_README = ROOT / "bench" / "README.md"
START, END = "<!-- validate:start -->", "<!-- validate:end -->"

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers:
        - name: app
          image: registry.example.com/{name}:1.{n}
          ports: [{{containerPort: 8080}}]
          env:
{env}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{port: 80, targetPort: 8080}}]
"""
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}}}\ndata:\n{data}"
LORA = """\
apiVersion: contentgen.io/v1alpha1
kind: LoraTraining
metadata: {{name: {name}}}
spec:
  owner: team-{n}
  source: {{url: https://videos.example.com/{name}.mp4}}
  triggerWord: tw{n}
  dataset: {{maxFrames: {frames}}}
"""
IMAGES = """\
apiVersion: contentgen.io/v1alpha1
kind: ImageGeneration
metadata: {{name: {name}}}
spec:
  owner: team-{n}
  prompt: a lighthouse number {n}
  model: flux-lora
  loras: [{{loraRef: {{name: {name}-lora}}, scale: 0.8}}]
"""
TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{{{ include "chart.fullname" . }}}}
spec:
  replicas: {{{{ .Values.replicas }}}}
  {{{{- with .Values.nodeSelector }}}}
  template: {{{{ toYaml . | nindent 4 }}}}
  {{{{- end }}}}
"""


def build(root: Path, apps: int) -> tuple[int, int, int]:
    """The tree; returns (manifest files outside dot-directories, contentgen resources, mistakes)."""
    files = resources = mistakes = 0
    for n in range(apps):
        app = root / "apps" / f"team-{n % 20}" / f"app-{n}"
        app.mkdir(parents=True)
        env = "".join(f"            - {{name: VAR_{i}, value: 'value {i} of {n}'}}\n" for i in range(12))
        (app / "deploy.yaml").write_text(DEPLOYMENT.format(name=f"app-{n}", n=n, env=env))
        data = "".join(f"  key{i}: 'a longer value for key {i}, app {n}'\n" for i in range(30))
        (app / "config.yaml").write_text(CONFIGMAP.format(name=f"app-{n}", data=data))
        (app / "kustomization.yaml").write_text("resources: [deploy.yaml, config.yaml]\n")
        files += 3
        if n % 10 == 0:  # one app in ten generates content
            frames = 500 if n % 50 == 0 else 12  # every fifth of them a mistake (maxFrames > 200)
            (app / "contentgen.yaml").write_text(
                LORA.format(name=f"app-{n}-lora", n=n, frames=frames)
                + "---\n"
                + IMAGES.format(name=f"app-{n}", n=n)
            )
            files += 1
            resources += 2
            mistakes += frames > 200
    for c in range(apps // 10):
        chart = root / "charts" / f"chart-{c}"
        (chart / "templates").mkdir(parents=True)
        (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: chart-{c}\nversion: 0.1.{c}\n")
        (chart / "values.yaml").write_text("replicas: 2\nnodeSelector: {}\ncontentgen: {enabled: false}\n")
        files += 2
        for t in range(8):
            (chart / "templates" / f"t{t}.yaml").write_text(TEMPLATE)
            files += 1
    for hidden, count in ((".git/objects", apps * 10), (".venv/lib/site-packages/pkg", apps * 5)):
        folder = root / hidden
        folder.mkdir(parents=True)
        for i in range(count):
            (folder / f"f{i}.yaml").write_text(f"contentgen: {i}\n")
    return files, resources, mistakes


def manifest_files(root: Path) -> list[Path]:
    found = []
    for directory, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(directory, n) for n in names if n.endswith((".yaml", ".yml", ".json"))]
    return found


def timed(function: object, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        began = time.perf_counter()
        result = function()  # type: ignore[operator]
        times.append(time.perf_counter() - began)
    return statistics.median(times), result


def read_all(files: list[Path]) -> int:
    return sum(len(p.read_bytes()) for p in files)


def parse_all(files: list[Path]) -> int:
    docs = 0
    for path in files:
        try:
            docs += sum(1 for _ in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader))
        except yaml.YAMLError:
            docs += 1  # a template: the naive validator reports it as broken
    return docs


def validate(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONTENTGEN), "validate", str(root)], capture_output=True, text=True, check=False
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="contentgen-validate-bench-"))
    try:
        files, resources, mistakes = build(root, args.apps)
        walked = manifest_files(root)
        assert len(walked) == files, (len(walked), files)
        run_s, done = timed(lambda: validate(root), args.runs)
        assert isinstance(done, subprocess.CompletedProcess)
        summary = done.stderr.strip().splitlines()[-1]
        expected = f"{mistakes} problem(s) in {mistakes} of {resources} document(s)"
        if done.returncode != 1 or not summary.startswith(expected):
            print(f"FAILED: expected {expected!r}, got {summary!r}", file=sys.stderr)
            return 1
        floor_s, _ = timed(lambda: read_all(walked), args.runs)
        parse_s, _ = timed(lambda: parse_all(walked), args.runs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rows = [
        f"{files} manifest files outside dot-directories ({args.apps} applications, {args.apps // 10} Helm "
        f"charts; {resources} contentgen resources, {mistakes} with a planted mistake), plus "
        f"{args.apps * 15} files in .git and .venv; median of {args.runs} runs on {os.cpu_count()} CPUs, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M}, Python {platform.python_version()}:",
        "",
        "| measure (median wall time) | result |",
        "| --- | --- |",
        f"| `contentgen validate TREE` (the whole command, Python start included) | {run_s:.2f} s, "
        f"**{files / run_s:,.0f} files/s**; found all {resources} resources and {mistakes} mistakes |",
        f"| baseline: read every manifest file (I/O floor) | {floor_s:.2f} s |",
        f"| baseline: parse every manifest file with PyYAML's C loader | {parse_s:.2f} s |",
        f"| **validate ÷ parse everything** | **{run_s / parse_s:.2f}×** |",
    ]
    table = "\n".join(rows)
    print(table)
    text = BENCH_README.read_text()
    if START in text:
        text = re.sub(f"{re.escape(START)}.*?{re.escape(END)}", f"{START}\n{table}\n{END}", text, flags=re.S)
        BENCH_README.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
