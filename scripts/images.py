"""Build (and push) the images with docker or podman: `make images`, `make push-images`.

    python scripts/images.py build [--dry-run]   # the three images, tagged REGISTRY/NAME:TAG
    python scripts/images.py push [--dry-run]

REGISTRY defaults to ghcr.io/contentgen (the chart's default repositories), TAG to the package
version (the chart's appVersion); set IMAGE_REGISTRY, IMAGE_TAG and CONTAINER_ENGINE (docker or
podman; default: the first of them that answers) to change them. --dry-run prints the commands.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("docker", "podman")
# name -> Dockerfile, as the chart's image.repository and worker.image.repository name them
IMAGES = {
    "contentgen": "Dockerfile",
    "contentgen-worker": "worker-image/Dockerfile",
    # the worker for provider cluster's Jobs (torch, faster-whisper and the CUDA 12 libraries)
    "contentgen-worker-gpu": "worker-image/gpu.Dockerfile",
}
DEFAULT_REGISTRY = "ghcr.io/contentgen"


class EngineMissing(Exception):
    pass


def version() -> str:
    return str(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"])


def tags(registry: str, tag: str) -> dict[str, str]:
    return {name: f"{registry.rstrip('/')}/{name}:{tag}" for name in IMAGES}


def build_commands(engine: str, registry: str, tag: str) -> list[list[str]]:
    return [
        [engine, "build", "--file", IMAGES[name], "--tag", image, "."]
        for name, image in tags(registry, tag).items()
    ]


def push_commands(engine: str, registry: str, tag: str) -> list[list[str]]:
    return [[engine, "push", image] for image in tags(registry, tag).values()]


def find_engine(wanted: str | None = None) -> str:
    """The engine to use: `wanted`, else docker, else podman; it must answer `ENGINE version`
    (a docker CLI without a daemon does not)."""
    tried = []
    for name in [wanted] if wanted else list(ENGINES):
        path = shutil.which(name)
        if path is None:
            tried.append(f"{name}: not installed")
            continue
        done = subprocess.run(  # noqa: S603 - a container engine found on PATH
            [path, "version"], capture_output=True, text=True, check=False, timeout=30
        )
        if done.returncode == 0:
            return path
        reason = (done.stderr.strip() or done.stdout.strip()).splitlines()
        tried.append(f"{name}: installed but not working ({reason[-1] if reason else 'no answer'})")
    raise EngineMissing(
        "no working container engine (" + "; ".join(tried) + "): install docker or podman, start its "
        "daemon or socket, or pick one with CONTAINER_ENGINE=podman"
    )


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("build", "push") or set(argv[1:]) - {"--dry-run"}:
        print(__doc__, file=sys.stderr)
        return 2
    registry = os.environ.get("IMAGE_REGISTRY") or DEFAULT_REGISTRY
    tag = os.environ.get("IMAGE_TAG") or version()
    dry = "--dry-run" in argv
    wanted = os.environ.get("CONTAINER_ENGINE") or None
    try:
        engine = (wanted or "docker") if dry else find_engine(wanted)
    except EngineMissing as exc:
        print(f"make images: {exc}", file=sys.stderr)
        return 1
    make = build_commands if argv[0] == "build" else push_commands
    for command in make(engine, registry, tag):
        print("+ " + " ".join(command), flush=True)
        if not dry and subprocess.run(command, cwd=ROOT, check=False).returncode != 0:  # noqa: S603
            print(f"make images: `{' '.join(command)}` failed (its output is above)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
