"""Enter a pod's sandbox, then become its container's process. The node runs this as
`python -m localcluster.node.enter SPEC.json` (one fresh, single-threaded process per container).

SPEC: {"netns": path or null, "mounts": [[host, container_path, "file"|"dir"], ...], "argv": [...],
       "env": {...}, "cwd": path}

In a mount namespace of its own (private propagation, so nothing leaks back to the host), each
mount is bound at its container path. A path that does not exist on the host is made inside an
overlay of its nearest existing ancestor, with that ancestor's own submounts moved back on top:
the host's file system is never written. Only root can do this; the node uses it only when it can.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_BIND, MS_REC, MS_PRIVATE, MS_MOVE = 0x1000, 0x4000, 0x40000, 0x2000

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source} {target}",
    )


def _submounts(ancestor: str) -> list[str]:
    """Mount points strictly below `ancestor`, outermost first (from /proc/self/mountinfo)."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point != ancestor and point.startswith(ancestor.rstrip("/") + "/"):
            points.append(point)
    outer: list[str] = []
    for point in sorted(set(points), key=len):
        if not any(point.startswith(o + "/") for o in outer):
            outer.append(point)
    return outer


def make_path(target: str, kind: str, scratch: Path) -> None:
    """Make `target` exist without writing to the host: an overlay on its nearest existing
    ancestor (its submounts kept), in which the missing part is created."""
    path = Path(target)
    if path.exists():
        return
    ancestor = path.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    ancestor = Path(os.path.realpath(ancestor))
    layer = scratch / f"overlay{len(list(scratch.glob('overlay*')))}"
    upper, work, held = layer / "upper", layer / "work", layer / "held"
    for d in (upper, work, held):
        d.mkdir(parents=True, exist_ok=True)
    subs = _submounts(str(ancestor))
    for i, point in enumerate(subs):  # hold the submounts aside while the overlay goes on
        (held / str(i)).mkdir()
        mount(point, str(held / str(i)), None, MS_BIND | MS_REC)
    mount("overlay", str(ancestor), "overlay", 0, f"lowerdir={ancestor},upperdir={upper},workdir={work}")
    for i, point in enumerate(subs):
        mount(str(held / str(i)), point, None, MS_MOVE)
    resolved = Path(os.path.realpath(path.parent)) / path.name
    if kind == "dir":
        resolved.mkdir(parents=True, exist_ok=True)
    else:
        resolved.parent.mkdir(parents=True, exist_ok=True)
        resolved.touch()


def enter(spec: dict[str, Any], scratch: Path) -> None:
    netns = spec.get("netns")
    if netns:
        fd = os.open(str(netns), os.O_RDONLY)
        _check(_libc.setns(fd, CLONE_NEWNET), "setns")
        os.close(fd)
    mounts = spec.get("mounts") or []
    if mounts:
        _check(_libc.unshare(CLONE_NEWNS), "unshare")
        mount(None, "/", None, MS_REC | MS_PRIVATE)
        for host, target, kind in mounts:
            make_path(target, kind, scratch)
            mount(host, target, None, MS_BIND)


def main() -> None:
    spec_file = Path(sys.argv[1])
    spec = json.loads(spec_file.read_text())
    try:
        enter(spec, spec_file.parent / "sandbox")
    except OSError as exc:
        print(f"localcluster: cannot enter the pod's sandbox: {exc}", file=sys.stderr, flush=True)
        sys.exit(128)
    argv = [str(a) for a in spec["argv"]]
    os.chdir(str(spec.get("cwd") or "/"))
    try:
        env = {str(k): str(v) for k, v in dict(spec.get("env") or {}).items()}
        os.execvpe(argv[0], argv, env)  # noqa: S606 - becoming the container's process is the point
    except OSError as exc:
        print(f'exec: "{argv[0]}": {exc.strerror}', file=sys.stderr, flush=True)
        sys.exit(127)


if __name__ == "__main__":
    main()
