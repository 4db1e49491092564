"""Training on several GPUs, on one node or several: what the training framework (loop.py) needs of
torch.distributed, whatever family it trains.

The worker of a run of N processes is started by torchrun (`launch`: the pod's first process runs
`torchrun --standalone --nproc-per-node N -m contentgen worker`, or across nodes the PET_*
variables JobSet's and Kubeflow Trainer's pods carry), and every process runs `contentgen
worker`. Rank 0 runs the pipeline as a single worker does (its stages, its paid requests, its
store, its result); the others (`follow`) wait until rank 0 reaches its training and hands them the
work (`Team.publish`: the handler to call and what it needs, the dataset's bytes among it), then
train beside it, and end when rank 0 says the run is over.

In the training itself:

- a step's global batch of `batch` samples is drawn by every rank from the same generator, in the
  same order (the example, its noise, its noise level, per sample), and each rank computes its
  `share`: the same samples one process would, so the result is one process's on the whole batch
  whatever the world size, and a state stored at one world size goes on at another;
- each rank's gradients (of its samples, each weighted 1 / batch) are summed over the ranks once
  per step (`Team.sum_gradients`: NCCL on GPUs, gloo on the CPU), as data-parallel training's
  all-reduce does;
- rank 0 alone writes: `SharedFiles` hands the others what it reads of the checkpoint store (the
  names, a state's bytes) and what it stored (the URIs), so that every rank takes the same branch;
- rank 0 alone has the run's watch (providers/watch.py): `Leading` tells the others its answer
  after each step and checkpoint, `Following` is the others' watch, which draws their share of a
  checkpoint's pictures while rank 0's watch asks for them (`Team.shares`, `Team.collect`).
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import import_module
from pathlib import Path
from typing import Any, TypeVar

from contentgen.errors import InvalidInput
from contentgen.providers.watch import Drawer, Planned, SoFar, Stop, TrainingWatch
from contentgen.signals import on_sigterm

log = logging.getLogger(__name__)

T = TypeVar("T")

# The operator's and Kubeflow Trainer's names for torchrun's settings (torchrun reads each PET_X as
# its --x): processes per node, nodes, this node's rank, the rendezvous host and port.
NPROC, NNODES, NODE_RANK = "PET_NPROC_PER_NODE", "PET_NNODES", "PET_NODE_RANK"
MASTER_ADDR, MASTER_PORT = "PET_MASTER_ADDR", "PET_MASTER_PORT"
PORT = 29400  # Kubeflow Trainer's torch port (constants.ContainerTrainerPort); JobSet's too
# Where rank 0 leaves its exit status for `launch`: the pod's emptyDir work folder.
EXIT_FILE = ".rank0-exit"
WAIT = timedelta(seconds=5)  # a follower's look at the store for work or the end
# A collective waits this long for the slowest rank (a checkpoint's pictures, a state's bytes).
COLLECTIVE_TIMEOUT = timedelta(minutes=30)
HANDLERS = "contentgen.providers."  # the only modules a follower calls into


@dataclass(frozen=True)
class World:
    """Where this process is among the training's processes (torchrun's RANK, WORLD_SIZE,
    LOCAL_RANK, LOCAL_WORLD_SIZE)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.size > 1


def world(env: Mapping[str, str] | None = None) -> World:
    """This process's world, from torchrun's variables (one process without them)."""
    env = os.environ if env is None else env
    size = int(env.get("WORLD_SIZE") or 1)
    if size <= 1:
        return World()
    return World(
        rank=int(env.get("RANK") or 0),
        size=size,
        local_rank=int(env.get("LOCAL_RANK") or 0),
        local_size=int(env.get("LOCAL_WORLD_SIZE") or 1),
    )


def share(batch: int, of: World) -> range:
    """The samples of a global batch of `batch` that rank `of.rank` computes: consecutive, the
    ranks' shares differing by one at most (pure). Refused in one line where some rank would have
    none: every rank takes part in every step's gradient."""
    if batch < of.size:
        raise InvalidInput(
            f"training.batchSize {batch} is less than the {of.size} processes that train (resources.gpus "
            f"× resources.nodes): ask for a batchSize of {of.size} or more, or for fewer GPUs"
        )
    base, extra = divmod(batch, of.size)
    start = of.rank * base + min(of.rank, extra)
    return range(start, start + base + (1 if of.rank < extra else 0))


class Team:
    """The training's processes: the store they meet at (torchrun's), and once a training begins,
    the process group its collectives run in. One process alone is `SOLO`: every call is its own
    answer."""

    def __init__(self, me: World, store: Any = None) -> None:
        self.world, self.store = me, store
        self.grouped = False

    @classmethod
    def join(cls, me: World, env: Mapping[str, str] | None = None) -> Team:
        """The team of this process under torchrun (its store at MASTER_ADDR:MASTER_PORT, the
        agent's where torchrun hosts it)."""
        from torch.distributed import PrefixStore, TCPStore  # type: ignore[attr-defined]

        env = os.environ if env is None else env
        host = env.get("MASTER_ADDR", "127.0.0.1")
        hosted = env.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
        store = TCPStore(
            host,
            int(env.get("MASTER_PORT", PORT)),
            me.size,
            is_master=me.main and not hosted,
            timeout=COLLECTIVE_TIMEOUT,
            wait_for_workers=False,
        )
        return cls(me, PrefixStore("contentgen/", store))

    # --- before the training: the work handed out, the end said ---------------------------------

    def publish(self, handler: str, payload: Any) -> None:
        """Rank 0: the others are to call `handler` ("module:function", a provider's) with
        `payload`, and train beside it."""
        if not handler.startswith(HANDLERS):
            raise ValueError(f"a follower calls only the providers' functions, not {handler}")
        self.store.set("work", pickle.dumps((handler, payload)))

    def end(self, status: int) -> None:
        """Rank 0: the run is over (its exit status); the others end too."""
        if self.store is not None:
            self.store.set("end", str(status))

    def awaited(self) -> tuple[str, Any] | int:
        """A follower: the work rank 0 hands out, or its exit status where the run ended first."""
        while True:
            for key in ("work", "end"):
                if self.store.check([key]):
                    value = self.store.get(key)
                    return pickle.loads(value) if key == "work" else int(value)  # noqa: S301 - rank 0's own
            try:
                self.store.wait(["work"], WAIT)
            except (RuntimeError, TimeoutError) as exc:  # a timeout: look again; rank 0 gone: raised
                if "timeout" not in str(exc).lower() and "timed out" not in str(exc).lower():
                    raise

    def ended(self) -> int:
        """A follower, after its training: rank 0's exit status, once it has one."""
        while not self.store.check(["end"]):
            time.sleep(WAIT.total_seconds() / 5)
        return int(self.store.get("end"))

    # --- the training's collectives ---------------------------------------------------------------

    def begin(self, cuda: bool, local_device: Any = None) -> None:
        """The process group, once: NCCL between GPUs, gloo between CPU processes."""
        if self.grouped or not self.world.several:
            return
        import torch
        import torch.distributed as dist
        from torch.distributed import PrefixStore  # type: ignore[attr-defined]

        if cuda:
            torch.cuda.set_device(local_device if local_device is not None else self.world.local_rank)
        dist.init_process_group(
            "nccl" if cuda else "gloo",
            store=PrefixStore("group/", self.store),
            rank=self.world.rank,
            world_size=self.world.size,
            timeout=COLLECTIVE_TIMEOUT,
        )
        self.grouped = True

    def close(self) -> None:
        if self.grouped:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.grouped = False

    def sum_gradients(self, params: Sequence[Any]) -> None:
        """Each parameter's gradient summed over the ranks, in one collective (a rank whose samples
        reached none of them adds zeros): every rank then holds the gradient of the whole batch,
        whichever rank computed each sample's part. Summed by hand rather than by DDP's wrapper:
        a Wan 2.2 pair's step may route one rank's samples to one expert only, and DDP would wait
        for a backward of the other that never comes."""
        if not self.world.several:
            return
        import torch
        import torch.distributed as dist

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        for param, summed in zip(params, torch.split(flat, [g.numel() for g in grads]), strict=True):
            param.grad = summed.view_as(param)

    def total(self, value: float) -> float:
        """The sum over the ranks of `value` (a step's loss, each rank's share of it)."""
        if not self.world.several:
            return value
        import torch
        import torch.distributed as dist

        summed = torch.tensor([value], dtype=torch.float64, device=self._device())
        dist.all_reduce(summed)
        return float(summed.item())

    def tell(self, value: T | None) -> T:
        """Rank 0's `value`, on every rank (what rank 0 decided or read)."""
        if not self.world.several:
            return value  # type: ignore[return-value]
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0, device=self._device())
        return box[0]  # type: ignore[return-value]

    def collect(self, value: T) -> list[T]:
        """Every rank's `value`, in rank order, on rank 0 ([] on the others)."""
        if not self.world.several:
            return [value]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world.size if self.world.main else []
        dist.gather_object(value, gathered if self.world.main else None, dst=0)
        return gathered

    def shares(self, items: Sequence[T]) -> list[T]:
        """This rank's part of `items`, dealt out in turn (rank r takes r, r + size, ...)."""
        return list(items[self.world.rank :: self.world.size])

    def _device(self) -> Any:
        import torch
        import torch.distributed as dist

        return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None


SOLO = Team(World())
_current: Team = SOLO


def current() -> Team:
    """This process's team (SOLO unless `contentgen worker` started under torchrun)."""
    return _current


@contextmanager
def joined(team: Team) -> Iterator[Team]:
    """`team` as this process's for the block."""
    global _current
    was, _current = _current, team
    try:
        yield team
    finally:
        _current = was
        team.close()


# --- the checkpoint store: rank 0 reads and writes, the others are told ------------------------------


class SharedFiles:
    """A checkpoint store (providers/base.py CheckpointFiles) as every rank sees it: rank 0's
    own (`files`), whose listings, reads and URIs it tells the others, and which it alone writes:
    `put` on another rank stores nothing and answers rank 0's URI. Every rank makes the same calls
    in the same order (they read the same state), so each call is one collective."""

    def __init__(self, files: Any, team: Team) -> None:
        self.files, self.team = files, team

    @property
    def writes(self) -> bool:
        return self.team.world.main

    def names(self) -> list[str]:
        names: list[str] = self.team.tell(self.files.names() if self.writes else None)
        return names

    def get(self, name: str, path: Path) -> Path:
        if self.writes:
            self.files.get(name, path)
        data = self.team.tell(path.read_bytes() if self.writes else None)
        if not self.writes:
            path.write_bytes(data)
        return path

    def put(self, name: str, path: Path) -> str:
        return str(self.team.tell(self.files.put(name, path) if self.writes else None))

    def uri(self, name: str) -> str:
        return str(self.team.tell(self.files.uri(name) if self.writes else None))

    def delete(self, name: str) -> None:
        if self.writes:
            self.files.delete(name)


def writes_here(files: Any) -> bool:
    """Whether this process writes to `files` (rank 0 of a team, or a store of its own)."""
    return bool(getattr(files, "writes", True))


# --- the watch: rank 0's, told to the others; a checkpoint's pictures drawn in shares --------------


@dataclass
class Leading:
    """Rank 0's watch: the run's own, each answer told to the other ranks."""

    watch: TrainingWatch
    team: Team

    def prompts(self) -> Sequence[str]:
        return self.watch.prompts()

    def begin(self, planned: Planned) -> None:
        self.watch.begin(planned)

    def checkpoint(self, step: int, lora_uri: str, drawer: Drawer | None) -> Stop | None:
        stop = self.watch.checkpoint(step, lora_uri, drawer)
        self.team.tell(("done", stop))  # the others stop drawing their shares
        return stop

    def step_ended(self, so_far: SoFar) -> Stop | None:
        return self.team.tell(self.watch.step_ended(so_far))


@dataclass
class Following:
    """The watch of a rank other than 0: it draws its share of each picture rank 0's watch asks
    for (`draw`: the drawing its trainer gives it), and takes rank 0's answers."""

    team: Team
    asked: Sequence[str]  # the prompts rank 0's watch will ask pictures of
    draw: Callable[[Any, Any], Any] | None = None  # (this rank's drawer, an order) -> its share's pictures
    answers: list[Stop | None] = field(default_factory=list)

    def prompts(self) -> Sequence[str]:
        return self.asked

    def begin(self, planned: Planned) -> None:
        return None

    def checkpoint(self, step: int, lora_uri: str, drawer: Drawer | None) -> Stop | None:
        while True:
            said: tuple[str, Any] = self.team.tell(None)
            if said[0] == "done":
                return said[1]  # type: ignore[no-any-return]
            drawn = self.draw(drawer, said[1]) if self.draw is not None and drawer is not None else None
            self.team.collect(drawn)

    def step_ended(self, so_far: SoFar) -> Stop | None:
        return self.team.tell(None)


def drawn_in_shares(team: Team, order: Any, draw: Callable[[Any], T]) -> list[T]:
    """Rank 0, while its watch asks for pictures: `order` (its pictures) told to the other ranks,
    each drawing its share with `draw`; every rank's answer, in rank order."""
    team.tell(("draw", order))
    return team.collect(draw(order))


# --- the processes: launched, and followed ------------------------------------------------------------


def asked(env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """(processes per node, nodes) the pod's environment asks for ((1, 1): one process)."""
    env = os.environ if env is None else env
    return max(1, int(env.get(NPROC) or 1)), max(1, int(env.get(NNODES) or 1))


def launched(env: Mapping[str, str] | None = None) -> bool:
    """Whether this process is one torchrun started."""
    env = os.environ if env is None else env
    return "LOCAL_RANK" in env and "TORCHELASTIC_RUN_ID" in env


def command(argv: Sequence[str], env: Mapping[str, str] | None = None) -> list[str]:
    """torchrun's command line for `contentgen worker ARGV` on this pod: every process of the
    pod's node; on one node `--standalone` (its rendezvous on this pod), on several the PET_*
    variables name the rest (nodes, this node's rank, the rendezvous host and port) (pure)."""
    nproc, nnodes = asked(env)
    args = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}"]
    if nnodes == 1:
        args.append("--standalone")
    return [*args, "--max-restarts=0", "-m", "contentgen", "worker", *argv]


def launch(argv: Sequence[str], work_dir: Path) -> int:
    """The pod's first process: torchrun with `contentgen worker` in each of its processes, a
    SIGTERM handed on to it (which stops them); the exit status rank 0 left (the Job's
    podFailurePolicy reads 2 as a permanent failure), else torchrun's."""
    exit_file = work_dir / EXIT_FILE
    exit_file.unlink(missing_ok=True)
    line = command(argv)
    print(f"contentgen worker: {' '.join(line[2:])}", file=sys.stderr)
    child = subprocess.Popen(line)  # noqa: S603 - our own interpreter and module
    with on_sigterm(lambda signum, frame: child.send_signal(signal.SIGTERM)):
        status = child.wait()
    if exit_file.is_file():
        return int(exit_file.read_text().strip() or status)
    return status if status >= 0 else 128 - status


def leave_status(team: Team, status: int, work_dir: Path) -> None:
    """Rank 0, at its end: its exit status for `launch`, and the others told the run is over."""
    if team.world.local_rank == 0:
        with suppress(OSError):
            (work_dir / EXIT_FILE).write_text(str(status))
    try:
        team.end(status)
    except Exception as exc:  # the store gone with its host: the others end with it
        log.warning("could not tell the other processes the run ended: %s", exc)


def follow(team: Team) -> int:
    """A rank other than 0: wait for rank 0's work, do it, wait for rank 0's end; 0 when it ends
    well (rank 0 says how the run ended), 1 when rank 0's work failed here."""
    work = team.awaited()
    if isinstance(work, int):
        return 0
    handler, payload = work
    module, _, function = handler.partition(":")
    log.info("rank %d of %d: %s", team.world.rank, team.world.size, handler)
    import_module(module).__dict__[function](payload, team)
    team.ended()
    return 0
