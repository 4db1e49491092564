"""A node's images imported once, not at every start: a containerd root holding them (a seed) is
made by containerd itself, and each node's containerd starts from a hard-linked copy of it.

Importing the worker image (620 MB) took 12.6 s of a 21 s node start on an idle machine, twice
that under make test's load, on every start of every local cluster. A seed is keyed by the
archives (path, size, time) and the containerd binary, so a rebuilt image or another containerd
makes a new one; the two most recently used are kept.

Only files containerd never writes in place are shared: the content store's blobs and the
overlayfs snapshotter's committed layers (lower directories: a container's writes go to its own
upper directory). The bolt databases, which containerd does write, are copied. A copy that
cannot be made (another filesystem: hard links cannot cross it) leaves the node to import its
images as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .. import processes
from .configs import DISABLED_PLUGINS, toml_string
from .host import Programs

log = logging.getLogger("localcluster.node")

# Outside any source tree (a formatter or linter walking it would rewrite the images' files) and
# on the filesystem of the nodes' directories as a rule (hard links cannot cross filesystems).
SEEDS = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "localcluster" / "containerd-seeds"
KEEP = 2
NAMESPACE = "k8s.io"  # the CRI plugin's: what it lists as the node's images


def plant(root: Path, programs: Programs, archives: list[Path], seeds: Path = SEEDS) -> bool:
    """Fill `root` (a containerd root not made yet) with `archives` imported; False, with
    nothing at `root`, when it cannot (the caller imports them)."""
    try:
        seed = seeds / key(programs, archives)
        with _locked(seeds):
            if (seed / "done").exists():
                (seed / "done").touch()  # its time: when it was last used
            else:
                began = time.monotonic()
                grow(seed, programs, archives)
                log.info("seeded %s in %.1f s: %s", seed.name, time.monotonic() - began, archives)
            prune(seeds, KEEP)
        link(seed / "root", root)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        log.warning("importing the images at the node's start, not from a seed: %s", exc)
        shutil.rmtree(root, ignore_errors=True)
        return False
    return True


def key(programs: Programs, archives: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in (Path(p).resolve() for p in [Path(programs.containerd), *archives]):
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


@contextlib.contextmanager
def _locked(seeds: Path) -> Iterator[None]:
    """One seed made at a time on this machine (test workers start nodes side by side)."""
    seeds.mkdir(parents=True, exist_ok=True)
    with (seeds / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def grow(seed: Path, programs: Programs, archives: list[Path]) -> None:
    """A containerd of its own (no CRI: it only imports) imports `archives` into seed/root."""
    partial = seed.with_name(f".{seed.name}.{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(seed, ignore_errors=True)
    partial.mkdir(parents=True)
    state = Path(tempfile.mkdtemp(prefix="seed-"))  # a socket's path must be short
    socket = state / "c.sock"
    config = partial / "config.toml"
    disabled = ", ".join(toml_string(p) for p in (*DISABLED_PLUGINS, "io.containerd.grpc.v1.cri"))
    config.write_text(
        f"version = 2\nroot = {toml_string(str(partial / 'root'))}\n"
        f"state = {toml_string(str(state / 'state'))}\ndisabled_plugins = [{disabled}]\n"
        f"[grpc]\n  address = {toml_string(str(socket))}\n"
        f"[ttrpc]\n  address = {toml_string(str(socket) + '.ttrpc')}\n"
    )

    def ctr(*args: str, timeout: float = 300) -> None:
        subprocess.run(  # noqa: S603
            [programs.ctr, "--address", str(socket), "--namespace", NAMESPACE, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )

    with (partial / "containerd.log").open("wb") as out:
        containerd = subprocess.Popen(  # noqa: S603
            [*_dying_with_this_process(), programs.containerd, "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
                if socket.exists():
                    ctr("version", timeout=5)
                    break
            if containerd.poll() is not None or time.monotonic() > deadline:
                log_tail = _tail(partial / "containerd.log")
                raise RuntimeError(f"containerd for the seed did not start: {log_tail}")
            time.sleep(0.05)
        for archive in archives:
            ctr("images", "import", str(archive))
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"ctr {' '.join(exc.cmd[5:])}: {str(exc.stderr).strip()}") from None
    finally:
        processes.stop(containerd, 30)
        shutil.rmtree(state, ignore_errors=True)
    partial.rename(seed)
    (seed / "done").touch()


def link(seed_root: Path, root: Path) -> None:
    """seed_root's tree at `root`: directories made, files hard-linked, databases copied."""
    root.parent.mkdir(parents=True, exist_ok=True)
    command = ["cp", "-a", "--link", str(seed_root), str(root)]
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603
    for database in root.rglob("*.db"):
        copy = database.with_name(database.name + ".copy")
        shutil.copy2(database, copy)
        copy.replace(database)


def prune(seeds: Path, keep: int) -> None:
    """All but the `keep` most recently used seeds removed (and partial ones no process makes)."""
    made = sorted(
        (d for d in seeds.iterdir() if (d / "done").exists()),
        key=lambda d: (d / "done").stat().st_mtime,
        reverse=True,
    )
    for old in made[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    for partial in seeds.glob(".*.*"):
        pid = partial.name.rsplit(".", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(partial, ignore_errors=True)


def _dying_with_this_process() -> list[str]:
    """util-linux's setpriv, so that the seed's containerd ends with the process that started it,
    even when that is SIGKILLed (a parent-death signal, kept across exec)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL"] if setpriv else []


def _tail(path: Path, lines: int = 3) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""
