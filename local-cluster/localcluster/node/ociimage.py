"""Images made here, from scratch: a docker-archive tar (what `ctr images import` and `docker load`
read) of one layer holding the given files. The pause image is Kubernetes' own pause.c from the
kubernetes Go module the control plane is built from, compiled static; the archive is kept in
servers/bin and made again only when pause.c changes."""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .configs import PAUSE_IMAGE
from .host import NodeUnavailable

BIN = Path(__file__).resolve().parents[2] / "servers" / "bin"
PAUSE_ARCHIVE = BIN / "pause.tar"
PAUSE_STAMP = BIN / ".pause.pins"


@dataclass(frozen=True)
class File:
    content: bytes
    mode: int = 0o755


@dataclass(frozen=True)
class ImageSpec:
    reference: str  # registry/name:tag
    files: dict[str, File]  # absolute path in the image -> its content
    entrypoint: list[str]
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=lambda: ["PATH=/"])
    user: str = ""


def architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _layer(files: dict[str, File]) -> bytes:
    """An uncompressed, reproducible layer tar: parents first, root-owned, mtime 0."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(p) for f in files for p in PurePosixPath(f).parents if str(p) != "/"})
        for directory in dirs:
            info = tarfile.TarInfo(directory.lstrip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path in sorted(files):
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode = len(files[path].content), files[path].mode
            tar.addfile(info, io.BytesIO(files[path].content))
    return out.getvalue()


def archive(spec: ImageSpec) -> bytes:
    layer = _layer(spec.files)
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": architecture(),
        "os": "linux",
        "config": {
            "Entrypoint": spec.entrypoint,
            "Cmd": spec.cmd or None,
            "Env": spec.env,
            "User": spec.user,
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_digest}"]},
        "history": [{"created_by": "localcluster"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [
        {"Config": config_name, "RepoTags": [spec.reference], "Layers": [f"{layer_digest}/layer.tar"]}
    ]
    members = {
        config_name: config_bytes,
        f"{layer_digest}/layer.tar": layer,
        "manifest.json": json.dumps(manifest).encode(),
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def write(spec: ImageSpec, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(archive(spec))
    tmp.replace(path)
    return path


PROBE_SOURCE = Path(__file__).resolve().parents[2] / "probe" / "main.go"
PROBE_IMAGE = "localcluster.local/probe:1"


def go_image(source: Path, reference: str, out: Path, cmd: list[str] | None = None) -> Path:
    """An image made from scratch holding one static Go program (its only entry point)."""
    from .. import build  # not at import: `python -m localcluster.build` runs it

    binary = out.with_suffix(".bin")
    subprocess.run(  # noqa: S603
        [build.find_go(), "build", "-trimpath", "-ldflags", "-s -w", "-o", str(binary), str(source)],
        env={**os.environ, "CGO_ENABLED": "0", "GOFLAGS": ""},
        cwd=source.parent,
        check=True,
    )
    name = "/" + source.parent.name
    spec = ImageSpec(reference, {name: File(binary.read_bytes())}, entrypoint=[name], cmd=cmd or [])
    binary.unlink()
    return write(spec, out)


def probe_archive(out: Path) -> Path:
    """localcluster.local/probe:1, the tests' and the benchmark's image: probe/main.go (echo, sleep,
    serve PORT [N]: until N requests are answered, get URL [TRIES], lookup NAME) as /probe, `sleep`
    by default."""
    return go_image(PROBE_SOURCE, PROBE_IMAGE, out, cmd=["sleep"])


def kubernetes_source() -> Path:
    """The kubernetes module's directory in the Go module cache (downloaded when missing)."""
    from .. import build  # not at import: `python -m localcluster.build` runs it

    done = subprocess.run(  # noqa: S603
        [build.find_go(), "mod", "download", "-json", "k8s.io/kubernetes"],
        cwd=build.KUBE,
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(json.loads(done.stdout)["Dir"])


def pause_archive() -> Path:
    """servers/bin/pause.tar: the pause image, built when missing or when the kubernetes module it
    comes from changed (kube/go.mod pins it; reading that needs no Go, so a cluster's start does
    not either once the image is built)."""
    from .. import build  # not at import: `python -m localcluster.build` runs it

    pin = hashlib.sha256((build.KUBE / "go.mod").read_bytes() + PAUSE_IMAGE.encode()).hexdigest()
    if PAUSE_ARCHIVE.exists() and PAUSE_STAMP.exists() and PAUSE_STAMP.read_text() == pin:
        return PAUSE_ARCHIVE
    source = kubernetes_source() / "build" / "pause" / "linux" / "pause.c"
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise NodeUnavailable("the pause image is compiled here from pause.c: apt-get install gcc libc6-dev")
    BIN.mkdir(parents=True, exist_ok=True)
    binary = BIN / ".pause.bin"
    version = PAUSE_IMAGE.rsplit(":", 1)[1]
    done = subprocess.run(  # noqa: S603
        [cc, "-Os", "-static", "-s", f"-DVERSION=v{version}", "-o", str(binary), str(source)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise NodeUnavailable(f"compiling pause.c failed ({last}): apt-get install gcc libc6-dev")
    spec = ImageSpec(PAUSE_IMAGE, {"/pause": File(binary.read_bytes())}, entrypoint=["/pause"])
    write(spec, PAUSE_ARCHIVE)
    binary.unlink()
    PAUSE_STAMP.write_text(pin)
    return PAUSE_ARCHIVE
