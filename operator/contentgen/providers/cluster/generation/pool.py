"""A warm pool of generation workers (issue 47): a long-lived process that keeps one base model's
pipeline loaded and draws the pictures that ImageGeneration Jobs ask it for, so a request pays its
denoising, not a load of tens of GB.

The Job per request stays: its worker does everything it does today (the spec, the write-once
picture folder a retried pod resumes from, the outputs, the result, the status, the bill) and only
hands the drawing to the pool (`ClusterProvider(pool_url=...)`). Deleting the resource deletes the
Job, whose connection to the pool then closes: the pool drops what that request has not drawn.

- **LoRAs** come as files the client uploads once by their SHA-256 (kept on the pool's disk,
  checked); each request loads its LoRAs onto the kept pipeline and unloads them after
  (`generation.loras_loaded`), so the base is never reloaded and no LoRA reaches the next request.
- **Fairness**: requests wait in a queue taken round-robin by owner (`FairQueue`): one owner's
  thousand requests do not starve another's one. While a request waits, the pool tells its
  client its place in the queue.
- **GPU time**: each picture's drawing time (its LoRAs' loading included) is the request's; the
  pool's own time (loading, idle and warm) is the pool's, in its status, never a request's.
- **Faults** (each request ends once, its pictures stored and billed once): a pod stopped with
  SIGTERM (a rolling upgrade, an eviction) says `stopping` (readiness 503, new draws refused with
  `pool_stopping`, waiting requests told so), finishes the request it draws and exits once no
  request is open (`stop_when_idle`); a client told `pool_stopping` asks again, through the
  Service, for the pictures it has not got. A pod killed outright cuts its connections: the Job's
  worker fails with ProviderUnreachable and its retried pod draws only the pictures its write-once
  folder lacks; a picture the killed pod was drawing was never the request's (its time went
  with the pod), so it is billed once, when drawn again. A client whose connection closes (its
  Job deleted) has its request cancelled at once: waiting, it leaves the queue; drawing, it
  stops after the denoising step under way (`ClusterProvider.draw`).

The protocol, over HTTP/1.1 (`POST /v1/draw` answers with a stream of JSON lines):
    GET  /v1/status                -> {"model", "state": "loading" | "warm" | "stopping", "loads",
                                       "queued", ..., "loras": {"kept", "capacity", "loads"}}
    GET  /v1/ready                 -> 200 once the pipeline is loaded (warm), else 503 (loading,
                                      stopping): the pod's readiness, so that a Service sends
                                      work to warm pods only
    HEAD /v1/loras/SHA256          -> 200 when the pool has that LoRA file, else 404
    PUT  /v1/loras/SHA256          <- the file (its SHA-256 must be SHA256)
    POST /v1/draw                  <- {"owner", "prompt", "width", "height", "steps", "guidance",
                                       "memoryPlan", "loras": [[sha256, scale]], "pictures": [[n, seed]]}
                                   -> {"position": k} while queued, then one line per picture:
                                      {"number", "seed", "png": base64, "gpuSeconds", "memoryPlan"},
                                      then {"done": true}; or {"error": reason, "message": ...}
                                      (503 {"error": "pool_stopping"} when stopping: ask again)
    POST /v1/draw                  <- {"owner", "clip": {"prompt", ..., "inputs", "files", "image",
                                       "lowNoise"}, "loras"}: a VideoGeneration's clip (`ClipRequest`;
                                       lowNoise: the places in loras of Wan 2.2 pairs' low-noise
                                       files), to a pool of a video model
                                   -> {"position": k} while queued, then, as the clip is denoised,
                                      {"put": name, "data": base64} and {"delete": name} (its
                                      write-once folder's changes: the loop's states, then the
                                      frames and their record) and {"progress": percent}, then
                                      {"clip": {"gpuSeconds"}} and {"done": true}

A clip's folder travels with it: the Job's worker sends what its write-once store holds (the
request's seed, the denoising state an earlier attempt kept), the pool denoises in a copy of it
and sends back each file it puts or deletes, which the worker applies to its store as they come.
So a state the pool keeps is in the Job's store at once: a pool pod killed mid-clip loses the
steps since the last one, and the Job's retry resumes from it, in any pool pod or its own.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import logging
import queue
import shutil
import signal
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlparse

from contentgen.errors import ContentgenError, PermanentError, TransientError

log = logging.getLogger(__name__)

T = TypeVar("T")
POSITION_SECONDS = 2.0  # how often a waiting request hears its place in the queue
# How long a Job's worker waits for a pool that cannot be reached: one scaled to zero comes back
# when its autoscaler sees the waiting Jobs, after a node, the image and a load of tens of GB.
# The Job's own activeDeadlineSeconds bounds it too.
POOL_WAIT_SECONDS = 1800.0
# How often a waiting worker asks again at most: a connect a Service refuses costs nothing, and a
# longer pause is time lost after the pool is warm (on the real node, a pause doubling to 30 s made
# a pool brought up from zero in 10.9 s answer its first two requests after 20.9 s: make
# bench-pools ARGS="--node real", 2026-11-26).
POOL_POLL_MAX_SECONDS = 5.0
SHA256 = 64
STOPPING = "pool_stopping"  # the error of a pool that stops: not this request's fault, ask again
AFFINITY, LEAST_LOADED = "affinity", "least-loaded"  # a pool pod's --routing, said in its status
# Requests a pod that holds a request's LoRAs may have open beyond the least loaded pod's before the
# request goes to that one instead (and loads its LoRAs there): a swap costs less than a picture.
AFFINITY_SKEW = 2


class Stopping(TransientError):
    """The pool's pod is stopping (SIGTERM): it draws nothing more for this request; another pod
    of the pool (through its Service) will."""

    def __init__(self, message: str = "the generation pool's pod is stopping") -> None:
        super().__init__(message, reason="ProviderUnreachable")


# Who hears where a pooled request is (cli/worker.py: the resource's status.pool): (state, position);
# ("", 0) when the request is done with the pool.
Listener = Callable[[str, int], None]
_listeners: list[Listener] = []


def listen(listener: Listener) -> None:
    _listeners.append(listener)


def tell(state: str, position: int) -> None:
    for listener in _listeners:
        listener(state, position)


def place(position: int, state: str) -> tuple[str, int]:
    """The request's place from what the pool says while it waits (`PoolClient.draw`'s `waiting`):
    (starting | loading | queued | drawing, its place in the queue)."""
    if state in ("starting", "loading"):
        return state, position
    return ("queued", position) if position > 0 else ("drawing", 0)


def waiting(position: int, state: str) -> None:
    """A Job's worker while its request waits on the pool (`PoolClient.draw`'s and `clip`'s
    `waiting`): said in its log, and told to whoever hears (the resource's status.pool)."""
    log.info("generation pool: %s, place %d in its queue", state or "queued", position)
    tell(*place(position, state))


class FairQueue(Generic[T]):
    """Items of many owners, taken round-robin by owner (each owner's in the order put): the order
    of the items is a pure function of what was put and taken, so a waiting item's position is
    known. Thread-safe; `take` blocks until there is an item."""

    def __init__(self) -> None:
        self._owners: dict[str, deque[tuple[int, T]]] = {}
        self._turn: deque[str] = deque()  # owners with items, the next to be served first
        self._tickets = 0
        self._ready = threading.Condition()

    def put(self, owner: str, item: T) -> int:
        with self._ready:
            self._tickets += 1
            if owner not in self._owners:
                self._owners[owner] = deque()
                self._turn.append(owner)
            self._owners[owner].append((self._tickets, item))
            self._ready.notify()
            return self._tickets

    def take(self, timeout: float | None = None) -> tuple[int, T] | None:
        with self._ready:
            if not self._ready.wait_for(lambda: bool(self._turn), timeout):
                return None
            owner = self._turn.popleft()
            ticket, item = self._owners[owner].popleft()
            if self._owners[owner]:
                self._turn.append(owner)
            else:
                del self._owners[owner]
            return ticket, item

    def order(self) -> list[int]:
        """The tickets in the order they will be taken."""
        with self._ready:
            queues = [list(self._owners[owner]) for owner in self._turn]
        depth = max((len(q) for q in queues), default=0)
        return [q[r][0] for r in range(depth) for q in queues if r < len(q)]

    def position(self, ticket: int) -> int | None:
        """1 for the next to be taken; None when not waiting."""
        order = self.order()
        return order.index(ticket) + 1 if ticket in order else None

    def drain(self) -> list[T]:
        """Every waiting item, taken at once (in no particular order)."""
        with self._ready:
            items = [item for owner in self._turn for _, item in self._owners[owner]]
            self._owners.clear()
            self._turn.clear()
            return items

    def discard(self, ticket: int) -> bool:
        with self._ready:
            for owner, items in list(self._owners.items()):
                kept = deque(i for i in items if i[0] != ticket)
                if len(kept) == len(items):
                    continue
                if kept:
                    self._owners[owner] = kept
                else:
                    del self._owners[owner]
                    self._turn.remove(owner)
                return True
        return False

    def __len__(self) -> int:
        with self._ready:
            return sum(len(q) for q in self._owners.values())


@dataclass(frozen=True)
class DrawRequest:
    """What a client asks the pool to draw (the wire's body, typed)."""

    owner: str
    prompt: str
    width: int
    height: int
    steps: int
    guidance: float
    memory_plan: str
    loras: tuple[tuple[str, float], ...]  # (sha256, scale)
    pictures: tuple[tuple[int, int], ...]  # (number, seed)

    def wire(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "prompt": self.prompt,
            "width": self.width,
            "height": self.height,
            "steps": self.steps,
            "guidance": self.guidance,
            "memoryPlan": self.memory_plan,
            "loras": [list(lora) for lora in self.loras],
            "pictures": [list(p) for p in self.pictures],
        }

    @classmethod
    def parse(cls, data: Any) -> DrawRequest:
        try:
            return cls(
                owner=str(data["owner"]),
                prompt=str(data["prompt"]),
                width=int(data["width"]),
                height=int(data["height"]),
                steps=int(data["steps"]),
                guidance=float(data["guidance"]),
                memory_plan=str(data.get("memoryPlan") or ""),
                loras=tuple((str(s), float(scale)) for s, scale in data.get("loras") or []),
                pictures=tuple((int(n), int(seed)) for n, seed in data["pictures"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a draw request: {exc}") from None


@dataclass(frozen=True)
class ClipRequest:
    """A VideoGeneration's clip, as its Job's worker resolved it (the wire's body with "clip",
    typed): the folder's `inputs` (the pool's copy of the folder begins with them, so its seed and
    states are the Job's), what the folder holds (`files`: name, bytes) and the still to animate
    (PNG or JPEG bytes; b"" for text to video)."""

    owner: str
    prompt: str
    negative_prompt: str
    model: str  # api/video/table.py's
    resolution: str
    width: int
    height: int
    frames: int
    fps: int
    steps: int
    seed: int
    inputs: dict[str, Any]
    loras: tuple[tuple[str, float], ...]  # (sha256, scale)
    files: tuple[tuple[str, bytes], ...] = ()
    image: bytes = b""
    # the places in `loras` of Wan 2.2 pairs' low-noise files, each following its LoRA's high-noise
    # file (video_loras.py: into transformer_2)
    low_noise: tuple[int, ...] = ()

    def wire(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "loras": [list(lora) for lora in self.loras],
            "clip": {
                "prompt": self.prompt,
                "negativePrompt": self.negative_prompt,
                "model": self.model,
                "resolution": self.resolution,
                "width": self.width,
                "height": self.height,
                "frames": self.frames,
                "fps": self.fps,
                "steps": self.steps,
                "seed": self.seed,
                "inputs": self.inputs,
                "files": {name: base64.b64encode(data).decode() for name, data in self.files},
                "image": base64.b64encode(self.image).decode(),
                **({"lowNoise": list(self.low_noise)} if self.low_noise else {}),
            },
        }

    @classmethod
    def parse(cls, data: Any) -> ClipRequest:
        try:
            clip = data["clip"]
            if not isinstance(clip["inputs"], dict) or not isinstance(clip.get("files") or {}, dict):
                raise TypeError("inputs and files are JSON objects")
            return cls(
                owner=str(data["owner"]),
                prompt=str(clip["prompt"]),
                negative_prompt=str(clip.get("negativePrompt") or ""),
                model=str(clip["model"]),
                resolution=str(clip.get("resolution") or ""),
                width=int(clip["width"]),
                height=int(clip["height"]),
                frames=int(clip["frames"]),
                fps=int(clip["fps"]),
                steps=int(clip["steps"]),
                seed=int(clip["seed"]),
                inputs=dict(clip["inputs"]),
                loras=tuple((str(s), float(scale)) for s, scale in data.get("loras") or []),
                files=tuple(
                    (_file_name(str(name)), base64.b64decode(text, validate=True))
                    for name, text in (clip.get("files") or {}).items()
                ),
                image=base64.b64decode(str(clip.get("image") or ""), validate=True),
                low_noise=tuple(int(n) for n in clip.get("lowNoise") or []),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a clip request: {exc}") from None


def _file_name(name: str) -> str:
    """A name in a request's folder: a plain file name, never a path."""
    if not name or "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise ValueError(f"{name!r} is not a file name")
    return name


def parse_request(data: Any) -> DrawRequest | ClipRequest:
    """A draw's body: a clip's (it has "clip") or pictures'."""
    return ClipRequest.parse(data) if isinstance(data, dict) and "clip" in data else DrawRequest.parse(data)


@dataclass(frozen=True)
class Drawn:
    number: int
    seed: int
    path: Path  # the PNG
    gpu_seconds: float
    memory_plan: str


@dataclass(frozen=True)
class Relayed:
    """A line of a clip's answer, as the drawing makes it (a file put or deleted in the clip's
    folder, progress, the end's GPU time); `gpu_seconds` is the clip's at its end, else 0."""

    message: dict[str, Any]
    gpu_seconds: float = 0.0


# The drawing itself: (request, its LoRA files and scales, a folder for its files, whether the
# request was cancelled) -> each picture as it is drawn (`ClusterProvider.draw`), or a clip's
# lines (`ClusterVideoGenerator.clip_for_pool`).
Drawer = Callable[
    [Any, Sequence[tuple[Path, float]], Path, Callable[[], bool]], Iterator[Drawn] | Iterator[Relayed]
]


def relayed(work: Callable[[Callable[[dict[str, Any]], None]], float]) -> Iterator[Relayed]:
    """The lines `work(emit)` emits, as it emits them, then its end: {"clip": {"gpuSeconds"}} with
    the seconds it returns. `work` runs in a thread of its own (the lines come from within the
    denoising loop); what it raises is raised here, after its lines."""
    lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
    outcome: list[float | BaseException] = []

    def run() -> None:
        try:
            outcome.append(work(lines.put))
        except BaseException as exc:  # handed to the drawing thread, which answers the client with it
            outcome.append(exc)
        finally:
            lines.put(None)

    threading.Thread(target=run, name="pool-clip", daemon=True).start()
    while (line := lines.get()) is not None:
        yield Relayed(line)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    yield Relayed({"clip": {"gpuSeconds": outcome[0]}}, gpu_seconds=outcome[0])


@dataclass
class _Job:
    request: DrawRequest | ClipRequest
    out: queue.Queue[Drawn | Relayed | ContentgenError | None] = field(default_factory=queue.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)


@dataclass
class PoolState:
    model: str
    state: str = "loading"  # loading, warm, stopping
    loads: int = 0
    drawn: int = 0
    requests: int = 0
    busy_seconds: float = 0.0  # drawing requests' pictures: the requests' GPU time
    started: float = field(default_factory=time.monotonic)


class Pool:
    """The pool's work: a queue and one drawing thread (one pipeline, one GPU)."""

    def __init__(
        self,
        model: str,
        drawer: Drawer,
        work: Path,
        warm_up: Callable[[], int] | None = None,
        lora_account: Callable[[], dict[str, Any]] | None = None,
        routing: str = AFFINITY,
    ) -> None:
        self.state = PoolState(model)
        self.routing = routing  # how its clients choose among the pool's pods (`route`)
        self.lora_account = lora_account  # the drawer's kept LoRAs (generation.KeptLoras.account)
        self.drawer = drawer
        self.loras, self.pictures = work / "loras", work / "pictures"
        self.queue: FairQueue[_Job] = FairQueue()
        self.warm_up = warm_up  # loads the pipeline before the first request; how many loads
        self.loras.mkdir(parents=True, exist_ok=True)
        self.pictures.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._draw_forever, name="pool-draw", daemon=True)
        self._open = 0  # requests submitted and not yet answered to the end
        self._wanted: Counter[str] = Counter()  # the LoRAs of those requests, for the router
        self._lock = threading.Condition()
        self.failed = threading.Event()  # its warm-up raised (`failure`): it never gets warm
        self.failure = ""

    def start(self) -> Pool:
        self._thread.start()
        return self

    def status(self) -> dict[str, Any]:
        alive = time.monotonic() - self.state.started
        return {
            "model": self.state.model,
            "state": self.state.state,
            "loads": self.state.loads,
            "queued": len(self.queue),
            "requests": self.state.requests,
            "drawn": self.state.drawn,
            "busySeconds": round(self.state.busy_seconds, 3),
            "warmSeconds": round(max(0.0, alive - self.state.busy_seconds), 3),
            "open": self._open,
            "wanted": sorted(self._wanted),
            "routing": self.routing,
            **({"loras": self.lora_account()} if self.lora_account is not None else {}),
        }

    def lora_path(self, sha256: str) -> Path:
        if len(sha256) != SHA256 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"{sha256!r} is not a SHA-256")
        return self.loras / f"{sha256}.safetensors"

    def keep_lora(self, sha256: str, body: Iterator[bytes]) -> None:
        """A LoRA file, kept only when its bytes have that SHA-256 (written aside, then renamed)."""
        target = self.lora_path(sha256)
        partial = target.with_suffix(f".{threading.get_ident()}.partial")
        digest = hashlib.sha256()
        with partial.open("wb") as out:
            for chunk in body:
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != sha256:
            partial.unlink()
            raise ValueError(f"the LoRA's bytes have SHA-256 {digest.hexdigest()}, not {sha256}")
        partial.replace(target)

    def submit(self, request: DrawRequest | ClipRequest) -> tuple[int, _Job]:
        """The request queued (Stopping once the pool stops); `answered` when done with it."""
        missing = [s for s, _ in request.loras if not self.lora_path(s).is_file()]
        if missing:
            raise ValueError(f"the pool has no LoRA {missing[0]}: PUT /v1/loras/{missing[0]} first")
        job = _Job(request)
        with self._lock:
            if self.state.state == "stopping":
                raise Stopping()
            self._open += 1
            self._wanted.update(sha for sha, _ in request.loras)
            return self.queue.put(request.owner, job), job

    def answered(self, job: _Job) -> None:
        """A submitted request's answer ended (drawn, failed, refused, or its client gone)."""
        with self._lock:
            self._open -= 1
            self._wanted.subtract(sha for sha, _ in job.request.loras)
            self._wanted += Counter()  # those no request wants any more gone
            self._lock.notify_all()

    def stop(self) -> None:
        """Stopping (SIGTERM): not ready, new requests refused, waiting ones told to ask again;
        the one being drawn goes on to its end."""
        with self._lock:
            self.state.state = "stopping"
            waiting = self.queue.drain()
        for job in waiting:
            job.out.put(Stopping())
            job.out.put(None)

    def idle(self, timeout: float | None = None) -> bool:
        """Whether every submitted request was answered, waiting `timeout` seconds at most."""
        with self._lock:
            return self._lock.wait_for(lambda: self._open == 0, timeout)

    def cancel(self, ticket: int, job: _Job) -> None:
        job.cancelled.set()
        self.queue.discard(ticket)

    def _draw_forever(self) -> None:
        if self.warm_up is not None:
            try:
                self.state.loads = self.warm_up()
            except Exception as exc:  # its model cannot be loaded: the pod says so and exits
                log.exception("the pool could not load %s", self.state.model)
                self.failure = f"{type(exc).__name__}: {exc}"
                self.failed.set()
                return
        with self._lock:
            if self.state.state == "loading":
                self.state.state = "warm"
        while True:
            taken = self.queue.take()
            assert taken is not None
            job = taken[1]
            if job.cancelled.is_set():
                continue
            self.state.requests += 1
            loras = [(self.lora_path(s), scale) for s, scale in job.request.loras]
            folder = self.pictures / str(taken[0])
            folder.mkdir(exist_ok=True)
            try:
                for made in self.drawer(job.request, loras, folder, job.cancelled.is_set):
                    if made.gpu_seconds:  # a picture, or a clip's end
                        self.state.drawn += 1
                        self.state.busy_seconds += made.gpu_seconds
                    job.out.put(made)
            except ContentgenError as exc:
                job.out.put(exc)
            except Exception as exc:  # a bug: the client fails the run with it, the pool goes on
                log.exception("drawing failed")
                job.out.put(PermanentError(f"the pool failed to draw: {exc}", reason="ProviderError"))
            job.out.put(None)
            if job.cancelled.is_set():  # nobody takes its pictures: the pool keeps nothing of it
                shutil.rmtree(folder, ignore_errors=True)


def stop_when_idle(pool: Pool, server: ThreadingHTTPServer) -> None:
    """What SIGTERM does (cli/pool.py, in a thread of its own): the pool stops taking work, and
    the server stops once every request it took is answered (the kubelet's SIGKILL at the end of
    the pod's grace period cuts one that takes longer)."""
    pool.stop()
    pool.idle()
    server.shutdown()


def serve_until_stopped(pool: Pool, server: ThreadingHTTPServer) -> None:
    """The pool's server until SIGTERM, then until every request it took is answered; or until
    its warm-up fails (`pool.failed`), when nothing could be drawn."""

    def stopping(signum: int, frame: Any) -> None:  # the main thread serves: stop from another
        log.info("SIGTERM: the pool stops taking work and exits once idle")
        threading.Thread(target=stop_when_idle, args=(pool, server), name="pool-stop", daemon=True).start()

    def failing() -> None:  # a pool that cannot load its model is not left `loading` forever
        pool.failed.wait()
        server.shutdown()

    signal.signal(signal.SIGTERM, stopping)
    threading.Thread(target=failing, name="pool-failed", daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


def _closed(connection: socket.socket) -> bool:
    """Whether the client closed its connection (waits until it closes it, reset included, or
    sends more): a draw's client sends nothing after its request. Once the answer is complete it
    says True too, and cancelling a request that ended changes nothing."""
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:  # reset: a client that closed with the answer's end unread
        return True


def _line_of(item: Drawn | Relayed | ContentgenError | None) -> dict[str, Any]:
    """What a draw's answer says of what its job handed over: a picture (read, then removed: the
    client keeps it, the pool keeps nothing of a request), a clip's line, the end, or why it ended
    early."""
    if item is None:
        return {"done": True}
    if isinstance(item, Relayed):
        return item.message
    if isinstance(item, Stopping):
        return {"error": STOPPING, "message": item.message}
    if isinstance(item, ContentgenError):
        return {"error": item.reason, "message": item.message}
    png = item.path.read_bytes()
    item.path.unlink()
    return {
        "number": item.number,
        "seed": item.seed,
        "png": base64.b64encode(png).decode(),
        "gpuSeconds": item.gpu_seconds,
        "memoryPlan": item.memory_plan,
    }


class PoolServer(ThreadingHTTPServer):
    """The pool's HTTP server (started by the caller's serve_forever): its handler's pool."""

    daemon_threads = True

    def __init__(self, pool: Pool, address: tuple[str, int]) -> None:
        self.pool = pool
        super().__init__(address, PoolHandler)


class PoolHandler(BaseHTTPRequestHandler):
    """GET /v1/status and /v1/ready; HEAD and PUT /v1/loras/SHA256; POST /v1/draw (module doc)."""

    protocol_version = "HTTP/1.1"
    server: PoolServer

    @property
    def pool(self) -> Pool:
        return self.server.pool

    def log_message(self, fmt: str, *args: Any) -> None:
        log.debug("%s " + fmt, self.address_string(), *args)

    def _json(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _refuse(self, code: int, error: str, message: str) -> None:
        self._json(code, {"error": error, "message": message})

    def _lora(self) -> str | None:
        """The LoRA a /v1/loras/ path names (None, answered 400, where it names none)."""
        sha = self.path.removeprefix("/v1/loras/")
        try:
            self.pool.lora_path(sha)
        except ValueError as exc:
            self._refuse(400, "bad_request", str(exc))
            return None
        return sha

    def do_GET(self) -> None:
        if self.path not in ("/v1/status", "/v1/ready"):
            self._refuse(404, "not_found", self.path)
            return
        status = self.pool.status()
        self._json(200 if self.path == "/v1/status" or status["state"] == "warm" else 503, status)

    def do_HEAD(self) -> None:
        sha = self._lora() if self.path.startswith("/v1/loras/") else None
        found = sha is not None and self.pool.lora_path(sha).is_file()
        self.send_response(200 if found else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _body(self) -> Iterator[bytes]:
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

    def do_PUT(self) -> None:
        sha = self._lora() if self.path.startswith("/v1/loras/") else None
        if sha is None:
            return
        try:
            self.pool.keep_lora(sha, self._body())
        except ValueError as exc:
            self._refuse(400, "bad_request", str(exc))
            return
        self._json(201, {"sha256": sha})

    def do_POST(self) -> None:
        if self.path != "/v1/draw":
            self._refuse(404, "not_found", self.path)
            return
        try:
            raw = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            ticket, job = self.pool.submit(parse_request(raw))
        except ValueError as exc:
            self._refuse(400, "bad_request", str(exc))
            return
        except Stopping as exc:
            self._refuse(503, STOPPING, exc.message)
            return
        try:
            self._answer(ticket, job)
        except OSError:  # the client went away: nothing more for it
            self.pool.cancel(ticket, job)
        finally:
            self.pool.answered(job)
            with contextlib.suppress(OSError):  # its pictures were handed over: nothing left
                (self.pool.pictures / str(ticket)).rmdir()

    def _answer(self, ticket: int, job: _Job) -> None:
        """A draw's answer: ndjson lines, chunked, each as it comes (module doc)."""
        # a client that goes away (its Job deleted) is heard at once, not at the next write
        threading.Thread(
            target=self._watch, args=(ticket, job), name=f"pool-watch-{ticket}", daemon=True
        ).start()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while True:
            try:
                item = job.out.get(timeout=POSITION_SECONDS)
            except queue.Empty:
                self._line(
                    {"position": self.pool.queue.position(ticket) or 0, "state": self.pool.state.state}
                )
                continue
            self._line(_line_of(item))
            if not isinstance(item, Drawn | Relayed):
                break
        self._line(None)

    def _watch(self, ticket: int, job: _Job) -> None:
        if _closed(self.connection):
            self.pool.cancel(ticket, job)

    def _line(self, body: Any) -> None:
        data = b"" if body is None else json.dumps(body).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


def serve(pool: Pool, host: str, port: int) -> PoolServer:
    """The pool's HTTP server on host:port (started by the caller's serve_forever)."""
    return PoolServer(pool, (host, port))


def file_sha256(path: Path) -> str:
    with path.open("rb") as read:
        return hashlib.file_digest(read, "sha256").hexdigest()


class PoolClient:
    """A Job's side: LoRAs uploaded once, pictures asked for, each handed over as it comes."""

    def __init__(
        self,
        url: str,
        timeout: float = 600.0,
        wait: float = POOL_WAIT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "http" or not parsed.hostname:
            raise ValueError(f"pool URL {url!r}: use http://HOST:PORT (a Service in the cluster)")
        self.host, self.port, self.timeout = parsed.hostname, parsed.port or 80, timeout
        self.wait, self.sleep = wait, sleep

    def reached(self, waiting: Callable[[int, str], None] = lambda p, s: None) -> dict[str, Any]:
        """The pool's status once it answers, not stopping: while it cannot be reached (scaled to
        zero, its pods loading: its Service sends work to warm pods only) or the pod that answers
        stops, `waiting(0, "starting")` and again after a pause doubling to POOL_POLL_MAX_SECONDS,
        for `wait` seconds at most (ProviderUnreachable)."""

        def answering() -> dict[str, Any]:
            status = self.status()
            if status.get("state") == "stopping":
                raise Stopping()
            return status

        return until_reached(answering, f"{self.host}:{self.port}", self.wait, self.sleep, waiting)

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    @contextmanager
    def _call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Iterator[http.client.HTTPResponse]:
        connection = self._connection()
        try:
            try:
                connection.request(method, path, body=body, headers=headers or {})
                response = connection.getresponse()
            except OSError as exc:
                raise TransientError(
                    f"the generation pool at {self.host}:{self.port} cannot be reached ({exc})",
                    reason="ProviderUnreachable",
                ) from None
            yield response
        finally:
            connection.close()

    def status(self) -> dict[str, Any]:
        with self._call("GET", "/v1/status") as response:
            return dict(json.loads(response.read()))

    def upload_lora(self, path: Path) -> str:
        sha = file_sha256(path)
        with self._call("HEAD", f"/v1/loras/{sha}") as response:
            response.read()
            if response.status == 200:
                return sha
        size = path.stat().st_size
        with (
            path.open("rb") as body,
            self._call("PUT", f"/v1/loras/{sha}", body, {"Content-Length": str(size)}) as response,
        ):
            answer = response.read()
        if response.status != 201:
            raise PermanentError(f"the pool refused a LoRA: {answer[:300]!r}", reason="ProviderRejected")
        return sha

    def draw(
        self, request: DrawRequest, folder: Path, waiting: Callable[[int, str], None] = lambda p, s: None
    ) -> Iterator[Drawn]:
        """Each picture as the pool draws it, its PNG in `folder`; `waiting(position, state)` while
        the request is queued."""
        for message in self._asked(request.wire(), waiting):
            if "png" not in message:
                continue
            number = int(message["number"])
            path = folder / f"pool-{number}.png"
            path.write_bytes(base64.b64decode(message["png"]))
            yield Drawn(
                number=number,
                seed=int(message["seed"]),
                path=path,
                gpu_seconds=float(message["gpuSeconds"]),
                memory_plan=str(message.get("memoryPlan") or ""),
            )

    def clip(
        self, request: ClipRequest, waiting: Callable[[int, str], None] = lambda p, s: None
    ) -> Iterator[dict[str, Any]]:
        """Each line of a clip's answer as it comes (its folder's puts and deletes, progress, its
        end's GPU time: the module's description); `waiting(position, state)` while queued."""
        yield from self._asked(request.wire(), waiting)

    def _asked(self, body: dict[str, Any], waiting: Callable[[int, str], None]) -> Iterator[dict[str, Any]]:
        """The lines of a draw's answer but its queue positions (told to `waiting`) and its end;
        Stopping, or the refusal or error it ends with, raised."""
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
        with self._call("POST", "/v1/draw", data, headers) as response:
            if response.status != 200:
                answer = response.read()
                if response.status == 503 and STOPPING.encode() in answer:
                    raise Stopping()
                raise PermanentError(f"the pool refused: {answer[:300]!r}", reason="ProviderRejected")
            while True:
                try:
                    line = response.readline()
                except (OSError, http.client.HTTPException) as exc:  # a cut mid-chunk: IncompleteRead
                    raise TransientError(
                        f"the generation pool went away ({exc})", reason="ProviderUnreachable"
                    ) from None
                if not line:
                    raise TransientError(
                        "the generation pool went away mid-request", reason="ProviderUnreachable"
                    )
                message = json.loads(line)
                if "position" in message:
                    waiting(int(message["position"]), str(message.get("state") or ""))
                elif message.get("done"):
                    return
                elif message.get("error") == STOPPING:
                    raise Stopping()
                elif "error" in message:
                    error = str(message.get("error") or "ProviderError")
                    raise PermanentError(str(message.get("message") or error), reason=error)
                else:
                    yield message


def until_reached(
    reach: Callable[[], T],
    where: str,
    wait: float,
    sleep: Callable[[float], None],
    waiting: Callable[[int, str], None],
) -> T:
    """What `reach()` gives once it gives it: while it raises TransientError (a pool scaled to zero,
    its pods loading or stopping), `waiting(0, "starting")` and again after a pause doubling to
    POOL_POLL_MAX_SECONDS, for `wait` seconds at most (ProviderUnreachable)."""
    waited, pause = 0.0, 1.0
    while True:
        try:
            return reach()
        except TransientError:
            if waited >= wait:
                raise TransientError(
                    f"the generation pool at {where} did not answer in {wait:.0f} s (scaled to zero and not "
                    "scaled up, or its pods not ready: kubectl get deployment,pods -l "
                    "app.kubernetes.io/component=pool)",
                    reason="ProviderUnreachable",
                ) from None
        waiting(0, "starting")
        sleep(pause)
        waited, pause = waited + pause, min(pause * 2, POOL_POLL_MAX_SECONDS)


# --- which pod draws a request ---------------------------------------------------------------------


@dataclass(frozen=True)
class PodView:
    """What a Job's worker reads of one pool pod (its /v1/status): its URL, state, requests open,
    the LoRAs it holds on its GPU or its open requests want, and how it asks to be chosen."""

    url: str
    state: str
    open: int = 0
    loras: frozenset[str] = frozenset()
    routing: str = AFFINITY

    @classmethod
    def of(cls, url: str, status: dict[str, Any]) -> PodView:
        held = (status.get("loras") or {}).get("held") or []
        return cls(
            url=url,
            state=str(status.get("state") or ""),
            open=int(status.get("open") or 0),
            loras=frozenset(map(str, [*held, *(status.get("wanted") or [])])),
            routing=str(status.get("routing") or AFFINITY),
        )


def route(loras: Sequence[str], pods: Sequence[PodView], skew: int = AFFINITY_SKEW) -> PodView | None:
    """The pod a request of `loras` (SHA-256s) goes to (pure): of the warm pods, the one that holds
    (or is about to) the most of them, the least loaded of those, unless it has more than `skew`
    requests open beyond the least loaded pod; else, or where the pods ask for least-loaded routing
    or hold none of them, the least loaded: of those as loaded, the one holding the fewest LoRAs
    (a new LoRA goes where there is room), then the first URL. None where no pod is warm."""
    warm = sorted((p for p in pods if p.state == "warm"), key=lambda p: (p.open, len(p.loras), p.url))
    if not warm:
        return None
    least, wanted = warm[0], set(loras)
    if not wanted or any(p.routing == LEAST_LOADED for p in warm):
        return least
    best = min(warm, key=lambda p: (-len(wanted & p.loras), p.open, p.url))
    return best if wanted & best.loras and best.open <= least.open + skew else least


class PoolRouter:
    """A Job's worker's way to the pool pod that draws its request (`route`): every address the
    pool's URLs name, comma-separated (a headless Service's name resolves to each ready pod's
    address; a Service's or an address, to one), each asked its status."""

    def __init__(
        self,
        urls: str,
        wait: float = POOL_WAIT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 600.0,
    ) -> None:
        self.urls = [PoolClient(u.strip()) for u in urls.split(",") if u.strip()]
        if not self.urls:
            raise ValueError(f"pool URL {urls!r}: use http://HOST:PORT (a Service in the cluster)")
        self.wait, self.sleep, self.timeout = wait, sleep, timeout

    def pods(self) -> list[PodView]:
        """Each pod that answers, as it answers."""
        found = []
        for url in self.addresses():
            with contextlib.suppress(TransientError, ValueError):
                found.append(PodView.of(url, PoolClient(url, timeout=5.0).status()))
        return found

    def addresses(self) -> list[str]:
        """Every pod address the URLs name (none while a headless Service has no ready pod)."""
        found: list[str] = []
        for client in self.urls:
            try:
                infos = socket.getaddrinfo(client.host, client.port, type=socket.SOCK_STREAM)
            except OSError:
                continue
            for *_, address in infos:
                host = str(address[0])
                url = f"http://{f'[{host}]' if ':' in host else host}:{client.port}"
                if url not in found:
                    found.append(url)
        return found

    def reached(
        self, loras: Sequence[str], waiting: Callable[[int, str], None] = lambda p, s: None
    ) -> PoolClient:
        """The client of the pod `route` chooses for `loras`, once a pod is warm (`until_reached`)."""

        def chosen() -> PoolClient:
            pod = route(loras, self.pods())
            if pod is None:
                raise TransientError("no warm pool pod", reason="ProviderUnreachable")
            return PoolClient(pod.url, timeout=self.timeout, wait=self.wait, sleep=self.sleep)

        names = ", ".join(f"{c.host}:{c.port}" for c in self.urls)
        return until_reached(chosen, names, self.wait, self.sleep, waiting)
