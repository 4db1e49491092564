"""What the provider fakes share: faults, a clock that never sleeps, small media, the respx hook.

The fakes themselves follow the providers' documented APIs and are described, with the pages
they follow, in `fake_fal.py` and `fake_assemblyai.py`. Each is one respx side effect that sees
every request the real SDKs make (nothing reaches the network; anything a fake does not know
fails the test).

Faults are queued per kind of request (`fake.fail(kind, ...)`) and given to the next requests of
that kind, in order:

- an `httpx.Response`: the provider answers this instead, without acting on the request;
- an exception class (`httpx.ConnectError`, `httpx.ConnectTimeout`, ...): raised where httpx
  raises it; the request never reached the provider;
- `after(outcome)`: the provider receives and handles the request (a submit is accepted, and paid
  for if it succeeds), then the answer is lost (`after(httpx.ReadTimeout)`,
  `after(httpx.RemoteProtocolError)`) or replaced (`after(html(502))`, `after(truncated(...))`).
"""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import respx
from safetensors.numpy import save as save_safetensors

from contentgen.errors import PermanentError
from contentgen.providers.base import MemoryCheckpoint
from contentgen.providers.retry import Retry


@dataclass(frozen=True)
class After:
    """The request is handled (with its side effects), then `outcome` replaces the answer."""

    outcome: httpx.Response | type[Exception]


def after(outcome: httpx.Response | type[Exception]) -> After:
    return After(outcome)


Fault = httpx.Response | type[Exception] | After


class Crash(BaseException):
    """The pod dying mid-call: not an Exception, so no provider code catches it."""


class FakeSleep:
    """Records the waits instead of waiting; `crash_at=n` crashes on the n-th wait."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.waits: list[float] = []
        self.crash_at = crash_at

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.crash_at is not None and len(self.waits) >= self.crash_at:
            raise Crash


def unslept_retries(monkeypatch: Any) -> FakeSleep:
    """Every retry policy made from now on (in the test) records its waits in one FakeSleep
    instead of sleeping: the providers' polls and backoff cost no time."""
    sleep = FakeSleep()
    original = Retry.__init__

    def no_sleep(self: Retry, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.sleep = sleep

    monkeypatch.setattr(Retry, "__init__", no_sleep)
    return sleep


def retry(sleep: FakeSleep, attempts: int = 3) -> Retry:
    """A policy with a fixed jitter draw (0.5), so waits are predictable: 0.5, 1.0, 2.0, ..."""
    return Retry(attempts=attempts, base_delay=1.0, sleep=sleep, random=lambda: 0.5)


class Progress(list[float]):
    def __call__(self, percent: float) -> None:
        self.append(percent)

    @property
    def monotonic(self) -> bool:
        return all(a <= b for a, b in itertools.pairwise(self))


def dataset_zip(path: Path, images: int = 4) -> Path:
    """A dataset archive as the pipeline makes it: images/0001.jpg, captions/0001.txt and 0001.txt."""
    with zipfile.ZipFile(path, "w") as archive:
        for i in range(1, images + 1):
            ok, jpeg = cv2.imencode(".jpg", np.full((64, 64, 3), 40 * i, np.uint8))
            assert ok
            archive.writestr(f"images/{i:04d}.jpg", jpeg.tobytes())
            archive.writestr(f"images/{i:04d}.txt", "a photo of dmavatar")
            archive.writestr(f"captions/{i:04d}.txt", "a photo of dmavatar")
    return path


def png(width: int, height: int) -> bytes:
    ok, data = cv2.imencode(".png", np.zeros((height, width, 3), np.uint8))
    assert ok
    return data.tobytes()


def jpeg(width: int, height: int) -> bytes:
    ok, data = cv2.imencode(".jpg", np.zeros((height, width, 3), np.uint8))
    assert ok
    return data.tobytes()


def safetensors_bytes() -> bytes:
    return save_safetensors({"transformer.lora_A.weight": np.ones((4, 16), np.float32)})


def audio_file(path: Path, seconds: float = 1.0) -> Path:
    """A small WAV of silence."""
    import wave

    frames = int(8000 * seconds)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\0\0" * frames)
    path.write_bytes(buffer.getvalue())
    return path


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def failure(status: int, body: Any | None = None, **headers: str) -> httpx.Response:
    """An HTTP error answer with a JSON body (header names with _ for -)."""
    return json_response(
        status,
        body if body is not None else {"detail": httpx.codes.get_reason_phrase(status)},
        {k.replace("_", "-"): v for k, v in headers.items()},
    )


def html(status: int = 200) -> httpx.Response:
    """What a proxy or a captive portal answers: an HTML page where JSON was expected."""
    page = "<!DOCTYPE html><html><head><title>Bad gateway</title></head><body>nginx</body></html>"
    return httpx.Response(status, text=page, headers={"content-type": "text/html; charset=utf-8"})


def truncated(body: Any, status: int = 200) -> httpx.Response:
    """A JSON answer cut off half-way."""
    data = json.dumps(body).encode()
    return httpx.Response(
        status, content=data[: len(data) // 2], headers={"content-type": "application/json"}
    )


LOCAL = r"^(localhost|[0-9.]+|\[?[0-9a-fA-F]*:[0-9a-fA-F:]*\]?)$"  # a name for this machine, or an IP address


@contextmanager
def mocked(*fakes: Callable[[httpx.Request], httpx.Response]) -> Iterator[respx.MockRouter]:
    """Every HTTP request made through httpx goes to the fake that knows its host."""

    def route(request: httpx.Request) -> httpx.Response:
        for fake in fakes:
            knows = getattr(fake, "knows", None)
            if knows is None or knows(request):
                return fake(request)
        raise AssertionError(f"no fake answers {request.method} {request.url}")

    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        # respx patches httpx for the whole process: the local cluster's node, which runs in a
        # thread of the same test worker, still reaches its API server (by address: providers
        # are only ever reached by name).
        router.route(host__regex=LOCAL).pass_through()
        router.route().mock(side_effect=route)
        yield router


class Faults:
    def __init__(self) -> None:
        self._queued: dict[str, deque[Fault]] = defaultdict(deque)

    def add(self, kind: str, outcomes: tuple[Fault, ...]) -> None:
        self._queued[kind].extend(outcomes)

    def pending(self, kind: str) -> int:
        return len(self._queued[kind])

    def answer(
        self, kind: str, request: httpx.Request, handle: Callable[[httpx.Request], httpx.Response]
    ) -> httpx.Response:
        """The next fault of `kind` applied around `handle`, or `handle`'s answer."""
        if not self._queued[kind]:
            return handle(request)
        fault = self._queued[kind].popleft()
        if isinstance(fault, After):
            handle(request)
            fault = fault.outcome
        if isinstance(fault, httpx.Response):
            return fault
        if issubclass(fault, httpx.RequestError):
            raise fault(f"injected {fault.__name__}", request=request)
        raise fault()


DELIVERED, UNKNOWN = "delivered", "unknown"


def run_to_the_end(call: Callable[[MemoryCheckpoint], Any]) -> tuple[str, Any]:
    """`call` with one checkpoint until it answers (DELIVERED) or ends in ProviderOutcomeUnknown
    (UNKNOWN): the attempt that crashed, and the one after it; any other permanent failure fails."""
    checkpoint = MemoryCheckpoint()
    for _ in range(2):
        try:
            return DELIVERED, call(checkpoint)
        except Crash:
            continue
        except PermanentError as exc:
            if exc.reason != "ProviderOutcomeUnknown":
                raise AssertionError(f"a permanent failure other than unknown: {exc}") from exc
            return UNKNOWN, exc
    raise AssertionError("still crashing")
