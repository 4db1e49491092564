"""torch in the worker image's pods on the real node, the cheapest honest way: the worker image
(built from this checkout, no torch) layered with one `.pth` file that adds `/models/.site-packages`
to its interpreter's path, after its own packages; the test puts there, on the node's models
volume (the chart's `gpu.models.hostPath`), hard links to this checkout's `.venv` packages that
the trainer imports and the image lacks (torch 2.10, diffusers, transformers, peft, ...: the pins
of the GPU worker image's set, requirements/gpu.txt). Nothing is copied (hard links cost no
space); the layer is a file of a few bytes, cached by the worker image's digest. What runs is the
worker image's Python and contentgen, with the GPU image's libraries: the GPU worker image itself
(8.5 GB, 20 minutes cold) runs with CONTENTGEN_TEST_GPU_IMAGE=1 only.

Test infrastructure only: the product has no such path."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

IN_IMAGE = "/opt/contentgen/lib/python3.11/site-packages/zz-contentgen-test-torch.pth"
ON_VOLUME = "/models/.site-packages"  # the models' hostPath, where the Job mounts it
REPOSITORY = "localcluster.local/contentgen-worker-torch"
# what the trainer imports beside the worker image's set, found by importing it in this .venv
IMPORTS = (
    "import torch, diffusers, transformers, peft, safetensors, accelerate, torch.distributed.run\n"
    "import contentgen.providers.cluster.training.loop, contentgen.providers.cluster.training.distributed\n"
)
LISTED = (
    "import json, sys\n"
    "print(json.dumps(sorted({getattr(m, '__file__', None) or '' for m in sys.modules.values()})))"
)


def image(out: Path) -> tuple[str, Path]:
    """(reference, archive) of the worker image with the `.pth` layered on it, built by buildah
    unless this worker image's is there already."""
    checkout = str(Path(__file__).resolve().parents[2])
    if checkout not in sys.path:
        sys.path.insert(0, checkout)
    from scripts import images as product

    engine = product.find_engine(os.environ.get("CONTAINER_ENGINE") or None, install=True)
    index = product.build(
        ["contentgen-worker"], product.DEFAULT_REGISTRY, product.version(), engine, log=lambda _: None
    )
    entry = index["images"]["contentgen-worker"]  # type: ignore[index]
    key = hashlib.sha256(f"{entry['digest']}\n{ON_VOLUME}\n{IN_IMAGE}\n".encode()).hexdigest()[:16]
    reference, archive = f"{REPOSITORY}:{key}", out / f"contentgen-worker-torch-{key}.tar"
    if archive.is_file():
        return reference, archive

    def run(*args: str) -> str:
        done = product._run([engine, *args])
        product._check(done, f"{Path(engine).name} {args[0]}")
        return done.stdout.strip()

    pth = out / "torch.pth"
    out.mkdir(parents=True, exist_ok=True)
    pth.write_text(ON_VOLUME + "\n")
    container = run("from", "--pull=never", "--quiet", str(entry["image"])).splitlines()[-1]
    try:
        run("copy", "--chmod", "0644", container, str(pth), IN_IMAGE)
        run("commit", "--quiet", container, reference)
    finally:
        run("rm", container)
    partial = archive.with_suffix(".partial")
    run(*product.save_command(engine, reference, partial)[1:])
    partial.rename(archive)
    return reference, archive


def packages(target: Path) -> int:
    """Hard links in `target` to the `.venv` packages (and their metadata) the trainer imports;
    how many top-level entries."""
    found = subprocess.run(
        [
            sys.executable,
            "-c",
            IMPORTS + LISTED,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    tops = {
        Path(f).relative_to(site).parts[0]
        for f in json.loads(found.stdout.splitlines()[-1])
        if f.startswith(str(site))
    }
    tops = {t.removesuffix(".py") for t in tops if not t.startswith("__editable__")} - {"contentgen"}
    chosen = [p for p in site.iterdir() if p.name.split("-")[0].split(".")[0] in tops or p.name == "nvidia"]
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o755)
    for path in chosen:
        subprocess.run(["cp", "-al", str(path), str(target / path.name)], check=True)
    return len(chosen)


def tiny_flux_models(folder: Path, flux: Path) -> Path:
    """`folder` as the models' volume of the pods: the tiny FLUX (`flux`) as FLUX.1-dev, readable by
    the workers' user (uid 10001), and torch's packages (`packages`)."""
    import shutil

    folder.chmod(0o755)
    shutil.copytree(flux, folder / "FLUX.1-dev")
    for path in (folder / "FLUX.1-dev").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    packages(folder / ".site-packages")
    return folder
