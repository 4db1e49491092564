"""Local fakes of fal.ai and AssemblyAI at the HTTP level, for the providers' contract tests.

They follow the documented shapes:
- fal queue (https://fal.ai/docs/documentation/model-apis/inference/queue): POST queue.fal.run/{app}
  -> {request_id, response_url, status_url, cancel_url}; GET {owner}/{alias}/requests/{id}/status
  -> IN_QUEUE (queue_position) | IN_PROGRESS (logs) | COMPLETED (logs, metrics; error, error_type
  when failed); GET .../requests/{id} -> the result, or the failure (model errors: 422 with a
  detail list, https://fal.ai/docs/documentation/model-apis/errors; request errors: detail and
  error_type, https://fal.ai/docs/documentation/model-apis/request-errors).
- fal CDN upload, as fal-client 1.0.3 calls it: POST rest.fal.ai/storage/auth/token -> a CDN
  token, POST v3.fal.media/files/upload -> {access_url}.
- Vision captions (https://fal.ai/docs/model-api-reference/vision-api/openrouter-router): input
  image_urls, prompt, system_prompt, model (required), temperature, max_tokens; output
  {output, usage: {prompt_tokens, completion_tokens, total_tokens, cost}}; a missing model is a 422.
- LoRA training output (https://fal.ai/models/fal-ai/flux-lora-fast-training/api):
  {diffusers_lora_file: File, config_file: File}; image output: {images: [{url, width, height,
  content_type}], seed, has_nsfw_concepts, timings, prompt}; image_size presets per
  https://fal.ai/docs/documentation/model-apis/model-arguments.
- AssemblyAI (https://www.assemblyai.com/docs/api-reference): POST /v2/upload -> {upload_url};
  POST /v2/transcript -> the transcript resource; GET /v2/transcript/{id} with status queued |
  processing | completed | error; errors as {"error": "..."}.

Each fake is one respx side effect that sees every request the SDKs make; anything it does not
know fails the test. `fail(kind, ...)` queues faults (a response, or an exception class) that the
next requests of that kind get before the normal answer.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import zipfile
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import respx
from safetensors.numpy import save as save_safetensors

from contentgen.providers.retry import Retry

FAL_KEY = "fal-key-for-tests-6b1d"
ASSEMBLYAI_KEY = "aai-key-for-tests-93c0"
CDN_TOKEN = "cdn-token-for-tests"

SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}

Fault = httpx.Response | type[Exception]


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


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers)


def failure(status: int, body: Any | None = None, **headers: str) -> httpx.Response:
    """A fault: an HTTP error response (header names with _ for -)."""
    return _json(
        status,
        body if body is not None else {"detail": httpx.codes.get_reason_phrase(status)},
        {k.replace("_", "-"): v for k, v in headers.items()},
    )


@contextmanager
def mocked(fake: Callable[[httpx.Request], httpx.Response]) -> Iterator[respx.MockRouter]:
    """Every HTTP request made through httpx goes to `fake`; nothing reaches the network."""
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        router.route().mock(side_effect=fake)
        yield router


class _Faults:
    def __init__(self) -> None:
        self._queued: dict[str, deque[Fault]] = defaultdict(deque)

    def add(self, kind: str, outcomes: tuple[Fault, ...]) -> None:
        self._queued[kind].extend(outcomes)

    def next(self, kind: str, request: httpx.Request) -> httpx.Response | None:
        if not self._queued[kind]:
            return None
        fault = self._queued[kind].popleft()
        if isinstance(fault, httpx.Response):
            return fault
        if issubclass(fault, httpx.RequestError):
            raise fault(f"injected {fault.__name__}", request=request)
        raise fault()


# --- fal ------------------------------------------------------------------------------------------


@dataclass
class FalJob:
    request_id: str
    app: str
    arguments: dict[str, Any]
    script: list[dict[str, Any]]
    result: httpx.Response | None = None  # set when the job is done
    polls: int = 0


def _queue_status(status: str, **fields: Any) -> dict[str, Any]:
    return {"status": status, "logs": [], **fields}


def log(message: str) -> dict[str, Any]:
    return {"message": message, "level": "INFO", "source": "user", "timestamp": "2025-01-01T00:00:00Z"}


TRAINING_SCRIPT = [
    _queue_status("IN_QUEUE", queue_position=2),
    _queue_status("IN_QUEUE", queue_position=0),
    _queue_status(
        "IN_PROGRESS", logs=[log("Loading checkpoint shards: 100%|##########| 3/3"), log("Preprocessing")]
    ),
    _queue_status("IN_PROGRESS", logs=[log("Steps:  25%|##5       | 250/1000 [00:30<01:30]")]),
    _queue_status("IN_PROGRESS", logs=[log("Steps:  75%|#######5  | 750/1000 [01:30<00:30]")]),
    _queue_status(
        "COMPLETED", logs=[log("Steps: 100%|##########| 1000/1000")], metrics={"inference_time": 120.5}
    ),
]

VISION_APP = "openrouter/router/vision"
VISION_SCRIPT = [_queue_status("IN_QUEUE", queue_position=0), _queue_status("COMPLETED")]

IMAGE_SCRIPT = [
    _queue_status("IN_QUEUE", queue_position=0),
    _queue_status("IN_PROGRESS", logs=[log(" 50%|#####     | 14/28 [00:01<00:01]")]),
    _queue_status("COMPLETED", metrics={"inference_time": 1.2}),
]


class FakeFal:
    """fal's queue, CDN upload and CDN downloads."""

    def __init__(self, key: str = FAL_KEY) -> None:
        self.key = key
        self.jobs: dict[str, FalJob] = {}
        self.scripts: dict[str, list[dict[str, Any]]] = {}  # per app; a default otherwise
        self.failures: dict[str, tuple[dict[str, Any], httpx.Response]] = {}  # per app
        self.files: dict[str, bytes | Callable[[], httpx.Response]] = {}
        self.uploads: list[tuple[str, bytes]] = []
        self.submitted: list[tuple[str, dict[str, Any]]] = []
        self.requests: list[tuple[str, httpx.Request]] = []
        self.unauthorized = 0
        self.faults = _Faults()
        self.seed = 1234
        self.weights = safetensors_bytes()
        self.config = json.dumps({"trigger_word": "dmavatar", "steps": 1000}).encode()
        self.image_type = "image/png"
        # What the vision app answers for an image URL (the CDN upload's name is in the URL).
        self.caption: Callable[[str], str] = lambda url: (
            f"**The person** smiles at the camera, head and shoulders, soft light ({url.rsplit('/', 1)[-1]})"
        )

    def fail(self, kind: str, *outcomes: Fault) -> None:
        """kind: token, upload, submit, status, result or download."""
        self.faults.add(kind, outcomes)

    def fail_job(self, app: str, status: dict[str, Any], result: httpx.Response) -> None:
        """Requests on `app` end with this COMPLETED status and this result response."""
        self.failures[app] = (status, result)

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.requests if k == kind)

    def polled(self, request_id: str) -> int:
        return sum(1 for k, r in self.requests if k == "status" and f"/requests/{request_id}/" in r.url.path)

    # --- dispatch ---

    def __call__(self, request: httpx.Request) -> httpx.Response:
        kind, handler = self._route(request)
        self.requests.append((kind, request))
        expected = {"upload": f"Bearer {CDN_TOKEN}", "download": None, "put": None}.get(
            kind, f"Key {self.key}"
        )
        if request.headers.get("authorization") != expected:
            self.unauthorized += 1
            if expected is not None:
                return failure(401, {"detail": "Invalid API key"})
        return self.faults.next(kind, request) or handler(request)

    def _route(self, request: httpx.Request) -> tuple[str, Callable[[httpx.Request], httpx.Response]]:
        url, path, method = request.url, request.url.path, request.method
        if url.host == "rest.fal.ai" and path == "/storage/auth/token" and method == "POST":
            return "token", self._token
        if url.host == "v3.fal.media" and path == "/files/upload" and method == "POST":
            return "upload", self._upload
        if url.host in ("queue.fal.run", "queue.falrun.com"):
            if match := re.fullmatch(r"/([^/]+/[^/]+)/requests/([^/]+)/status", path):
                return "status", lambda r: self._status(match[1], match[2])
            if (match := re.fullmatch(r"/([^/]+/[^/]+)/requests/([^/]+)", path)) and method == "GET":
                return "result", lambda r: self._result(match[1], match[2])
            if method == "POST" and "/requests/" not in path:
                return "submit", self._submit
        if method == "GET" and str(url) in self.files:
            return "download", self._download
        raise AssertionError(f"the fal fake got an unexpected request: {method} {url}")

    def _token(self, request: httpx.Request) -> httpx.Response:
        return _json(
            200,
            {
                "token": CDN_TOKEN,
                "token_type": "Bearer",
                "base_url": "https://v3.fal.media",
                "expires_at": "2099-01-01T00:00:00+00:00",
            },
        )

    def _upload(self, request: httpx.Request) -> httpx.Response:
        name = request.headers.get("x-fal-file-name", "upload.bin")
        self.uploads.append((name, request.read()))
        return _json(200, {"access_url": f"https://v3.fal.media/files/fake/{len(self.uploads)}-{name}"})

    def _submit(self, request: httpx.Request) -> httpx.Response:
        app = request.url.path.strip("/")
        arguments = json.loads(request.read())
        self.submitted.append((app, arguments))
        request_id = f"req-{len(self.submitted)}"
        if app == VISION_APP and (not arguments.get("model") or not arguments.get("image_urls")):
            missing = "model" if not arguments.get("model") else "image_urls"
            return failure(422, {"detail": [{"loc": ["body", missing], "msg": "field required"}]})
        default = VISION_SCRIPT if app == VISION_APP else IMAGE_SCRIPT
        script = list(self.scripts.get(app) or (TRAINING_SCRIPT if "training" in app else default))
        self.jobs[request_id] = FalJob(request_id, app, arguments, script)
        base = f"https://queue.fal.run/{'/'.join(app.split('/')[:2])}/requests/{request_id}"
        return _json(
            200,
            {
                "request_id": request_id,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            },
        )

    def _job(self, base: str, request_id: str) -> FalJob | None:
        job = self.jobs.get(request_id)
        return job if job is not None and job.app.startswith(base) else None

    def _status(self, base: str, request_id: str) -> httpx.Response:
        job = self._job(base, request_id)
        if job is None:
            return failure(404, {"detail": f"Request {request_id} not found"})
        job.polls += 1
        status = job.script[0] if len(job.script) == 1 else job.script.pop(0)
        if status["status"] == "COMPLETED" and job.app in self.failures:
            status = self.failures[job.app][0]
        response_url = f"https://queue.fal.run/{base}/requests/{request_id}"
        return _json(200, {**status, "response_url": response_url, "status_url": f"{response_url}/status"})

    def _result(self, base: str, request_id: str) -> httpx.Response:
        job = self._job(base, request_id)
        if job is None:
            return failure(404, {"detail": f"Request {request_id} not found"})
        if job.script[0]["status"] != "COMPLETED":
            return failure(400, {"detail": "Request is still in progress"})
        if job.app in self.failures:
            return self.failures[job.app][1]
        return _json(200, self._output(job))

    def _output(self, job: FalJob) -> dict[str, Any]:
        if job.app == VISION_APP:
            url = job.arguments["image_urls"][0]
            return {
                "output": self.caption(url),
                "usage": {
                    "prompt_tokens": 1290,
                    "completion_tokens": 31,
                    "total_tokens": 1321,
                    "cost": 0.0004,
                },
            }
        if "training" in job.app or "trainer" in job.app:
            weights_url = f"https://v3.fal.media/files/out/{job.request_id}/pytorch_lora_weights.safetensors"
            config_url = f"https://v3.fal.media/files/out/{job.request_id}/config.json"
            self.files.setdefault(weights_url, self.weights)
            self.files.setdefault(config_url, self.config)
            return {
                "diffusers_lora_file": {
                    "url": weights_url,
                    "content_type": "application/octet-stream",
                    "file_name": "pytorch_lora_weights.safetensors",
                    "file_size": len(self.weights),
                },
                "config_file": {
                    "url": config_url,
                    "content_type": "application/octet-stream",
                    "file_name": "config.json",
                    "file_size": len(self.config),
                },
                "debug_preprocessed_output": None,
            }
        width, height = SIZES[job.arguments.get("image_size", "landscape_4_3")]
        images = []
        for i in range(job.arguments.get("num_images", 1)):
            ext = "png" if self.image_type == "image/png" else "jpg"
            url = f"https://v3.fal.media/files/out/{job.request_id}/{i}.{ext}"
            self.files.setdefault(url, png(width, height) if ext == "png" else jpeg(width, height))
            images.append({"url": url, "width": width, "height": height, "content_type": self.image_type})
        return {
            "images": images,
            "timings": {"inference": 1.2},
            "seed": job.arguments.get("seed", self.seed),
            "has_nsfw_concepts": [False] * len(images),
            "prompt": job.arguments["prompt"],
        }

    def _download(self, request: httpx.Request) -> httpx.Response:
        content = self.files[str(request.url)]
        if callable(content):
            return content()
        return httpx.Response(200, content=content, headers={"content-type": "application/octet-stream"})


# --- AssemblyAI -----------------------------------------------------------------------------------

COMPLETED_TRANSCRIPT = {
    "text": "Hello there. Hi, how are you?",
    "words": [
        {"text": "Hello", "start": 0, "end": 400, "confidence": 0.98, "speaker": "A"},
        {"text": "there.", "start": 400, "end": 800, "confidence": 0.97, "speaker": "A"},
        {"text": "Hi,", "start": 1200, "end": 1500, "confidence": 0.99, "speaker": "B"},
        {"text": "how", "start": 1500, "end": 1700, "confidence": 0.99, "speaker": "B"},
        {"text": "are", "start": 1700, "end": 1900, "confidence": 0.99, "speaker": "B"},
        {"text": "you?", "start": 1900, "end": 2200, "confidence": 0.99, "speaker": "B"},
    ],
    "utterances": [
        {
            "speaker": "A",
            "text": "Hello there.",
            "start": 0,
            "end": 800,
            "confidence": 0.975,
            "words": [
                {"text": "Hello", "start": 0, "end": 400, "confidence": 0.98, "speaker": "A"},
                {"text": "there.", "start": 400, "end": 800, "confidence": 0.97, "speaker": "A"},
            ],
        },
        {
            "speaker": "B",
            "text": "Hi, how are you?",
            "start": 1200,
            "end": 2200,
            "confidence": 0.99,
            "words": [
                {"text": "Hi,", "start": 1200, "end": 1500, "confidence": 0.99, "speaker": "B"},
                {"text": "how", "start": 1500, "end": 1700, "confidence": 0.99, "speaker": "B"},
                {"text": "are", "start": 1700, "end": 1900, "confidence": 0.99, "speaker": "B"},
                {"text": "you?", "start": 1900, "end": 2200, "confidence": 0.99, "speaker": "B"},
            ],
        },
    ],
    "audio_duration": 3,
    "confidence": 0.985,
}


@dataclass
class Transcript:
    body: dict[str, Any]
    script: list[str] = field(default_factory=lambda: ["queued", "processing", "processing", "completed"])


class FakeAssemblyAI:
    """AssemblyAI's v2 upload and transcript endpoints."""

    def __init__(self, key: str = ASSEMBLYAI_KEY) -> None:
        self.key = key
        self.transcripts: dict[str, Transcript] = {}
        self.uploads: list[bytes] = []
        self.submitted: list[dict[str, Any]] = []
        self.requests: list[tuple[str, httpx.Request]] = []
        self.polls: Counter[str] = Counter()
        self.unauthorized = 0
        self.faults = _Faults()
        self.outcome: dict[str, Any] = dict(COMPLETED_TRANSCRIPT)  # what a completed transcript holds
        self.script = ["queued", "processing", "processing", "completed"]

    def fail(self, kind: str, *outcomes: Fault) -> None:
        """kind: upload, submit or poll."""
        self.faults.add(kind, outcomes)

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.requests if k == kind)

    def asked(self, transcript_id: str) -> int:
        """GETs of that transcript, known or not."""
        return sum(
            1 for k, r in self.requests if k == "poll" and r.url.path == f"/v2/transcript/{transcript_id}"
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        kind, handler = self._route(request)
        self.requests.append((kind, request))
        if request.headers.get("authorization") != self.key:
            self.unauthorized += 1
            return failure(401, {"error": "Authentication error, API token missing/invalid"})
        return self.faults.next(kind, request) or handler(request)

    def _route(self, request: httpx.Request) -> tuple[str, Callable[[httpx.Request], httpx.Response]]:
        path, method = request.url.path, request.method
        if request.url.host == "api.assemblyai.com":
            if path == "/v2/upload" and method == "POST":
                return "upload", self._upload
            if path == "/v2/transcript" and method == "POST":
                return "submit", self._submit
            if (match := re.fullmatch(r"/v2/transcript/([^/]+)", path)) and method == "GET":
                return "poll", lambda r: self._poll(match[1])
        raise AssertionError(f"the AssemblyAI fake got an unexpected request: {method} {request.url}")

    def _upload(self, request: httpx.Request) -> httpx.Response:
        self.uploads.append(request.read())
        return _json(200, {"upload_url": f"https://cdn.assemblyai.com/upload/fake-{len(self.uploads)}"})

    def _initiate(self, request: httpx.Request) -> httpx.Response:
        """The storage upload fal-client falls back to: a signed URL to PUT to, and the file's URL."""
        name = json.loads(request.read())["file_name"]
        n = len(self.uploads) + 1
        return _json(
            200,
            {
                "upload_url": f"https://storage.fake-gcs.test/put/{n}-{name}?X-Goog-Signature=gcs-sig",
                "file_url": f"https://v3.fal.media/files/fake/{n}-{name}",
            },
        )

    def _put(self, request: httpx.Request) -> httpx.Response:
        self.uploads.append((request.url.path.rsplit("/", 1)[1].split("-", 1)[1], request.read()))
        return httpx.Response(200)

    def _submit(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.read())
        self.submitted.append(body)
        transcript_id = f"tr-{len(self.submitted)}"
        resource = {
            "id": transcript_id,
            "status": "queued",
            "audio_url": body["audio_url"],
            "speaker_labels": body.get("speaker_labels"),
            "language_code": body.get("language_code"),
            "language_detection": body.get("language_detection"),
            "text": None,
            "words": None,
            "utterances": None,
            "audio_duration": None,
            "confidence": None,
            "error": None,
        }
        self.transcripts[transcript_id] = Transcript(resource, list(self.script))
        return _json(200, resource)

    def _poll(self, transcript_id: str) -> httpx.Response:
        transcript = self.transcripts.get(transcript_id)
        if transcript is None:
            return failure(404, {"error": "Transcript not found"})
        self.polls[transcript_id] += 1
        status = transcript.script[0] if len(transcript.script) == 1 else transcript.script.pop(0)
        body = {**transcript.body, "status": status}
        if status == "completed":
            body.update(self.outcome)
            if not body.get("speaker_labels"):
                body["utterances"] = None
                body["words"] = [{k: v for k, v in w.items() if k != "speaker"} for w in body["words"]]
            body["language_code"] = body.get("language_code") or "en_us"
        if status == "error":
            body["error"] = self.outcome.get("error", "Transcoding failed")
        return _json(200, body)


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
