"""Shell blocks the docs mark runnable, and a session that runs them as a reader would.

The marker is an HTML comment on the line right before a ```sh (or ```bash) block; GitHub and the
docs site show nothing of it:

    <!-- runnable -->                          run the block; it must exit 0
    <!-- runnable: background, ready: TEXT --> start it (a server, `kubectl get -w`), go on once it
                                               has printed TEXT; at the end of the page it gets
                                               SIGINT (Ctrl-C) and must stop cleanly

A page's runnable blocks run in order in one session, as one reader at one terminal: variables
exported and the directory changed carry over from block to block. The session has a scratch HOME
(so `~/contentgen-local` is the page's own), a working directory holding a copy of the
repository's `examples/`, its `charts/` and `scripts/` (the commands are written for the repository's root),
and a PATH with the project's virtualenv and the pinned kubectl and helm (`make tools`), the way
the docs ask a reader to set up.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from scripts import images
from tests.conftest import ROOT

MARKER = re.compile(r"^<!-- runnable(?::\s*(?P<options>.*?))?\s*-->\s*$")
OPTION = re.compile(r"^(?:background|ready:\s*(?P<ready>.+))$")
FENCE = re.compile(r"^```(?P<lang>[a-z]*)")
SHELLS = ("sh", "bash")
VENV_BIN = ROOT / ".venv" / "bin"
TOOLS_BIN = ROOT / ".tools" / "bin"
# A terminal starts a command with no signal blocked and Ctrl-C at its default; a test process
# need not (a library's thread may block signals, a runner may ignore SIGINT, and both are
# inherited across exec), so a background block starts through this reset.
AS_FROM_A_TERMINAL = (
    "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); "
    "signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])"
)


class MarkerError(Exception):
    pass


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    text: str
    background: bool = False
    ready: str = ""

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def parse_options(options: str, where: str) -> tuple[bool, str]:
    background, ready = False, ""
    for part in filter(None, (p.strip() for p in (options or "").split(","))):
        match = OPTION.match(part)
        if not match:
            raise MarkerError(f"{where}: unknown runnable option {part!r}")
        if match["ready"]:
            ready = match["ready"].strip()
        else:
            background = True
    if background != bool(ready):
        raise MarkerError(f"{where}: a background block needs `ready: TEXT`, and only it may have one")
    return background, ready


def runnable_blocks(path: Path) -> list[Block]:
    lines = path.read_text().splitlines()
    blocks = []
    fence = ""  # the fence of the code block we are in (markers inside code are examples)
    for number, line in enumerate(lines):
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence) and not stripped[len(fence) :].strip():
                fence = ""
            continue
        if stripped.startswith("```"):
            fence = stripped[: len(stripped) - len(stripped.lstrip("`"))]
            continue
        match = MARKER.match(line)
        if not match:
            if stripped.startswith("<!-- runnable"):
                raise MarkerError(f"{path}:{number + 1}: a runnable marker must be a line of its own")
            continue
        where = f"{path.relative_to(ROOT)}:{number + 1}"
        background, ready = parse_options(match["options"] or "", where)
        opening = FENCE.match(lines[number + 1]) if number + 1 < len(lines) else None
        if opening is None or opening["lang"] not in SHELLS:
            raise MarkerError(f"{where}: a runnable marker must stand right before a ```sh or ```bash block")
        body = []
        for inner in lines[number + 2 :]:
            if inner.startswith("```"):
                break
            body.append(inner)
        else:
            raise MarkerError(f"{where}: the block is never closed")
        blocks.append(Block(path, number + 2, "\n".join(body) + "\n", background, ready))
    return blocks


def handed_over(pages: dict[Path, list[Block]]) -> dict[Path, tuple[int, Path]]:
    """The pages whose last blocks are, word for word (and option for option), another page's
    first blocks: page -> (the index of the first of them, the other page). They run once, in the
    other page's session (README's `contentgen local-cluster` walkthrough is the local cluster
    page's opening: one cluster started for both, not two); the page runs only the blocks before
    them, and its test checks they leave the terminal as the other page's session starts: fresh.
    A page another one hands its blocks to hands none of its own (it runs them all)."""

    def same(a: Block, b: Block) -> bool:
        return (a.text, a.background, a.ready) == (b.text, b.background, b.ready)

    found: dict[Path, tuple[int, Path]] = {}
    for path, blocks in sorted(pages.items()):
        for start in range(1, len(blocks)):
            tail = blocks[start:]
            others = [
                other
                for other, theirs in sorted(pages.items())
                if other != path
                and other not in found
                and len(theirs) > len(tail)
                and all(same(a, b) for a, b in zip(tail, theirs, strict=False))
            ]
            if others:
                found[path] = (start, others[0])
                break
    return {path: handed for path, handed in found.items() if path not in {o for _, o in found.values()}}


def runnable_pages() -> dict[Path, list[Block]]:
    """Every document that has runnable blocks, with its blocks."""
    return {path: blocks for path in documents() if (blocks := runnable_blocks(path))}


def cluster_pages(pages: dict[Path, list[Block]]) -> set[Path]:
    """The pages whose own session (their blocks before any they hand over: handed_over) starts
    `contentgen local-cluster`."""
    handed = handed_over(pages)

    def own(path: Path) -> list[Block]:
        return pages[path][: handed.get(path, (len(pages[path]), path))[0]]

    return {path for path in pages if any("contentgen local-cluster" in b.text for b in own(path))}


def documents() -> list[Path]:
    """Every markdown file of the repository (git's list: nothing under .venv or build/)."""
    done = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.md"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(ROOT / p for p in done.stdout.split() if (ROOT / p).is_file())


@dataclass
class Background:
    block: Block
    process: subprocess.Popen[bytes]
    log: Path


class Session:
    """One reader's terminal(s) for one page."""

    def __init__(self, root: Path, *, own_network: bool = True) -> None:
        self.root = root
        self.home = root / "home"
        self.work = root / "work"
        self.home.mkdir(parents=True)
        self.work.mkdir()
        shutil.copytree(ROOT / "examples", self.work / "examples")
        (self.work / "charts").symlink_to(ROOT / "charts")
        (self.work / "scripts").symlink_to(ROOT / "scripts")  # scripts/likeness_pictures.py
        (self.work / ".images").symlink_to(images.cache_dir())  # what `make images` left: local-cluster's
        self.state = root / "state.sh"  # what the blocks exported, and where they were
        self.state.write_text(f"cd {self.work}\n")
        self.background: list[Background] = []
        # Its own network namespace where it may (root, iproute2): the ports a page names (the
        # API's 8080) are the page's own, whatever else runs on this machine. Not for a page that
        # starts a local cluster (`own_network=False`): `ip netns exec` mounts a /sys of its own,
        # without the cgroup file systems the node's kubelet and containerd need; the cluster's
        # ports are free ones, and its node has a network of its own anyway.
        self.netns = ""
        self.prefix: list[str] = []
        if own_network and os.geteuid() == 0 and shutil.which("ip"):
            self.netns = f"contentgen-docs-{uuid.uuid4().hex[:8]}"
            subprocess.run(["ip", "netns", "add", self.netns], check=True)
            self.prefix = ["ip", "netns", "exec", self.netns]
            subprocess.run([*self.prefix, "ip", "link", "set", "lo", "up"], check=True)

    def close(self) -> list[str]:
        problems = self.stop()
        if self.netns:
            subprocess.run(["ip", "netns", "delete", self.netns], check=False)
            self.netns, self.prefix = "", []
        return problems

    def env(self) -> dict[str, str]:
        # The code under test: a checkout that shares another's virtualenv points it at its own
        # tree with PYTHONPATH; a reader's terminal has none, nor has `make test`.
        code = {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}
        return {
            # root's PATH on Debian (iptables, ip: what the local cluster's node needs are in sbin)
            "PATH": f"{VENV_BIN}:{TOOLS_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "TMPDIR": str(self.root),
            "PYTHONUNBUFFERED": "1",
            **code,
        }

    def script(self, block: Block, *, foreground: bool) -> str:
        keep = f'export -p > {self.state}.new; echo "cd $(printf %q "$PWD")" >> {self.state}.new; '
        keep += f"mv {self.state}.new {self.state}\n"
        return f"source {self.state}\nset -euo pipefail\n{block.text}" + (keep if foreground else "")

    def run(self, block: Block, timeout: float = 900) -> str:
        done = subprocess.run(
            [*self.prefix, "bash", "-c", self.script(block, foreground=True)],
            cwd=self.work,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{block.where} exited {done.returncode}:\n{block.text}\n--- stdout\n{done.stdout[-3000:]}"
                f"\n--- stderr\n{done.stderr[-3000:]}{self.background_logs()}"
            )
        return done.stdout

    def start(self, block: Block, timeout: float = 600) -> None:
        log = self.root / f"background-{len(self.background)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    AS_FROM_A_TERMINAL,
                    *self.prefix,
                    "bash",
                    "-c",
                    self.script(block, foreground=False),
                ],
                cwd=self.work,
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: SIGINT reaches all of it, as Ctrl-C does
            )
        self.background.append(Background(block, process, log))
        deadline = time.monotonic() + timeout  # a hang guard, not a measurement
        while block.ready not in log.read_text(errors="replace"):
            if process.poll() is not None:
                raise AssertionError(
                    f"{block.where} exited {process.returncode} before printing {block.ready!r}:\n"
                    + log.read_text(errors="replace")[-3000:]
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{block.where} did not print {block.ready!r} in {timeout} s")
            time.sleep(0.2)

    def background_logs(self) -> str:
        return "".join(
            f"\n--- {b.block.where} (background)\n{b.log.read_text(errors='replace')[-3000:]}"
            for b in self.background
        )

    def stop(self) -> list[str]:
        """Ctrl-C to every background block, the last started first; what went wrong, if anything:
        one that had ended by itself before, or did not stop on Ctrl-C. (What a program exits with
        on Ctrl-C is its own affair: kubectl says 1, Python dies of the signal.)"""
        problems = []
        for b in reversed(self.background):
            if b.process.poll() is not None:
                problems.append(
                    f"{b.block.where} ended by itself ({b.process.returncode}) before Ctrl-C:\n"
                    + b.log.read_text(errors="replace")[-3000:]
                )
                continue
            os.killpg(b.process.pid, signal.SIGINT)
            try:
                b.process.wait(120)
            except subprocess.TimeoutExpired:
                states = signal_states(b.process.pid)
                os.killpg(b.process.pid, signal.SIGKILL)
                b.process.wait()
                problems.append(f"{b.block.where} did not stop on Ctrl-C ({states})")
        self.background.clear()
        return problems


def signal_states(group: int) -> str:
    """The blocked and ignored signal masks of the processes in a process group (/proc), for a
    report of a block that did not stop on Ctrl-C."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            if os.getpgid(int(status.parent.name)) != group:
                continue
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except (OSError, ValueError):
            continue
        name, state = fields.get("Name", "?").strip(), fields.get("State", "?").strip()
        blocked, ignored = fields.get("SigBlk", "?").strip(), fields.get("SigIgn", "?").strip()
        found.append(f"{name} {status.parent.name}: state {state}, SigBlk {blocked}, SigIgn {ignored}")
    return "; ".join(found) or "no process left in its group"
