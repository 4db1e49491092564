"""A fake of fal.ai at the HTTP level, following fal's documentation (what it relies on, by page):

Queue (https://fal.ai/docs/api-reference/inference-api and .../inference-api/queue/*; the queue
guide https://fal.ai/docs/documentation/model-apis/inference/queue):
- POST https://queue.fal.run/{model_id} with the model input as JSON -> 200
  {request_id, response_url, status_url, cancel_url, queue_position, status: IN_QUEUE}. The queue
  keeps every request (no size limit); it does not look at the input, the model does.
- GET .../{owner}/{app}/requests/{id}/status[?logs=1] -> 202 while IN_QUEUE (queue_position) or
  IN_PROGRESS (logs), 200 when COMPLETED (logs, metrics; error and error_type when it failed).
  The status, result and cancel URLs use only owner and app, not the endpoint path.
- GET .../requests/{id} -> the model's output, or the model's own error (same status and body).
  fal keeps a result for 1 hour after completion, 6 minutes when it is 10 KB or larger
  (.../inference-api/queue/result); `expire(id)` plays that out (404 afterwards).
- PUT .../requests/{id}/cancel -> 202 CANCELLATION_REQUESTED while queued (the request is removed
  and never processed) or running (the app is signalled and may still finish it, and is then
  billed: https://fal.ai/docs/documentation/development/handle-cancellations), 400
  ALREADY_COMPLETED once it has ended.
- Unknown request ids answer 404. The backup host queue.falrun.com is the same queue.
- Errors (https://fal.ai/docs/model-apis/errors): model input errors are 422 with
  {"detail": [{loc, msg, type, ctx?}]}, e.g. type file_download_error for a URL the model cannot
  fetch; infrastructure errors (https://fal.ai/docs/model-apis/request-errors) carry
  error_type / X-Fal-Error-Type (runner_disconnected, ...).
- Billing (https://fal.ai/docs/documentation/model-apis/pricing): "You pay only for successful
  outputs, and you are never charged for server errors or time spent waiting in the queue."
  So `billed` counts requests that completed successfully; `accepted` counts every submit the
  queue took.

Models (https://fal.ai/docs/model-api-reference/image-generation-api/flux-dev, flux-lora,
flux-pro-v1.1; https://fal.ai/models/fal-ai/flux-lora-fast-training/api):
- FLUX apps: prompt (required), image_size (a preset or {width, height}; default
  landscape_4_3), num_images (default 1, range 1 to 4), seed, output_format (jpeg | png,
  default jpeg), loras [{path, scale}] on flux-lora. Output {images: [{url, width, height,
  content_type}], seed, has_nsfw_concepts, timings, prompt}. Preset sizes per
  https://fal.ai/docs/documentation/model-apis/model-arguments.
- Trainers: images_data_url (a zip the trainer downloads), trigger_word, steps; output
  {diffusers_lora_file: File, config_file: File}.
- Vision (https://fal.ai/docs/model-api-reference/vision-api/openrouter-router):
  openrouter/router/vision takes image_urls (required, a list of URLs the model fetches), prompt
  (required), model (required, "charged based on actual token usage"), system_prompt, reasoning,
  temperature (0 to 2) and max_tokens; output {output: str, usage: {prompt_tokens,
  completion_tokens, total_tokens, cost}}.

Storage upload, as fal-client 1.0.3 calls it: POST rest.fal.ai/storage/auth/token
?storage_type=fal-cdn-v3 -> {token, token_type, base_url, expires_at}; POST
{base_url}/files/upload with that token and X-Fal-File-Name -> {access_url}. Files are then
served from v3.fal.media without authentication. Uploads are not model outputs: not billed.

Platform API (https://fal.ai/docs/platform-apis/v1/models/requests/by-endpoint): GET
https://api.fal.ai/v1/models/requests/by-endpoint?endpoint_id=...&start=...&end=...
&request_id=...&status=success|error|user_error&expand=payloads&limit=...&cursor=... ->
{items: [{request_id, endpoint_id, sent_at, started_at, ended_at, status_code, duration,
json_input, json_output}], next_cursor, has_more}; start defaults to 24 hours ago, 90 days
when request_id is given; sorted by end time. Each listing lets queued requests move on, as time
passes between a caller's looks. A 403 there means the key lacks the API's scope.

Pricing (https://fal.ai/docs/platform-apis/v1/models/pricing): GET https://api.fal.ai/v1/models/
pricing?endpoint_id=a,b (1 to 50 ids, comma-separated or repeated; required) -> {prices:
[{endpoint_id, unit_price, unit, currency}], next_cursor, has_more}: "Values are expressed per
model's billing unit in a given currency", and "custom pricing or discounts may be applied based
on account status" (so `prices` is the account's book, not the public page's).

Payloads (https://fal.ai/docs/platform-apis/v1/models/requests/payloads): DELETE https://api.fal.ai/
v1/models/requests/{request_id}/payloads, with an ADMIN key, deletes the request's input and output
payloads and the CDN files of its output (not those of its input, "as they may be used by other
requests") -> 200 {cdn_delete_results: [{link, exception}]}; an optional Idempotency-Key.

Where the documentation is silent, the fake varies (`Variant`), so that callers are tested
against everything the documentation allows, not against one reading of it:
- `in_flight`: queued and running requests are listed too (no ended_at, status_code null);
  "sorted by end time" neither promises nor rules that out. Off: only ended requests.
- `account_stores_io`: whether fal keeps payloads without X-Fal-Store-IO (the account's setting,
  https://fal.ai/docs/documentation/model-apis/media-expiration); the header, when sent, rules.
- `fills_defaults`, `rewrites_urls`: json_input as the model saw it (defaults filled in, input
  URLs replaced by copies on fal's CDN), not as it was sent.
- `reroute`: fal's model fallbacks (https://docs.fal.ai/model-apis/model-endpoints/reliability)
  send the request to another endpoint; the list shows it with that endpoint_id, under the
  endpoint it was submitted to ("original") or only under the fallback ("fallback"). Whether
  X-Fal-Disable-Fallbacks is honoured is `honours_no_fallback`.
- `lag`: an ended request shows in the list only after this many more looks.
- `unit_spelling`: how the pricing API names a unit ("plural": megapixels, steps; "singular";
  "image": image models priced per image); `unpriced`: an endpoint fal has no price for is left
  out ("omit") or the whole request answers 404 ("404"); `price_page`: prices per page (the
  rest behind next_cursor).
- `unknown_payloads`: a payload delete for a request fal does not know answers 404 ("404") or
  200 with nothing deleted ("empty").
- `neighbour(...)`: another workload on the same account (the list is the account's).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import cv2
import httpx
import numpy as np

from . import fake_fal_family_trainers as family_trainers
from . import fake_fal_trainers as trainers
from . import fake_fal_video as video
from .fakes import Fault, Faults, failure, jpeg, json_response, png, safetensors_bytes

FAL_KEY = "fal-key-for-tests-6b1d"
CDN_TOKEN = "cdn-token-for-tests"
QUEUE_HOSTS = ("queue.fal.run", "queue.falrun.com")

SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
Z_IMAGE_LORA = "fal-ai/z-image/turbo/lora"  # up to 3 loras, 1 to 8 inference steps, up to 4 images
IMAGE_APPS = {
    "fal-ai/flux/dev",
    "fal-ai/flux/schnell",
    "fal-ai/flux-pro/v1.1",
    "fal-ai/flux-lora",
    Z_IMAGE_LORA,
}
FLUX_TRAINERS = {"fal-ai/flux-lora-fast-training", "fal-ai/flux-lora-portrait-trainer"}
WAN_TRAINERS = set(trainers.WAN_TRAINERS)  # fake_fal_trainers.py says what each takes and makes
FAMILY_TRAINERS = set(family_trainers.FAMILY_TRAINERS)  # fake_fal_family_trainers.py says what each takes
TRAINING_APPS = FLUX_TRAINERS | WAN_TRAINERS | FAMILY_TRAINERS
VISION_APP = "openrouter/router/vision"
VIDEO_APPS = set(video.VIDEO_APPS)  # fake_fal_video.py says what each takes and makes


def status(state: str, **fields: Any) -> dict[str, Any]:
    return {"status": state, "logs": [], **fields}


def log(message: str) -> dict[str, Any]:
    return {"message": message, "level": "INFO", "source": "user", "timestamp": "2025-01-01T00:00:00Z"}


TRAINING_SCRIPT = [
    status("IN_QUEUE", queue_position=2),
    status("IN_QUEUE", queue_position=0),
    status(
        "IN_PROGRESS", logs=[log("Loading checkpoint shards: 100%|##########| 3/3"), log("Preprocessing")]
    ),
    status("IN_PROGRESS", logs=[log("Steps:  25%|##5       | 250/1000 [00:30<01:30]")]),
    status("IN_PROGRESS", logs=[log("Steps:  75%|#######5  | 750/1000 [01:30<00:30]")]),
    status("COMPLETED", logs=[log("Steps: 100%|##########| 1000/1000")], metrics={"inference_time": 120.5}),
]

VISION_SCRIPT = [status("IN_QUEUE", queue_position=0), status("IN_PROGRESS"), status("COMPLETED")]
VISION_COST = 0.0004  # USD per caption, as the app reports it in usage.cost

IMAGE_SCRIPT = [
    status("IN_QUEUE", queue_position=0),
    status("IN_PROGRESS", logs=[log(" 50%|#####     | 14/28 [00:01<00:01]")]),
    status("COMPLETED", metrics={"inference_time": 1.2}),
]


VIDEO_SCRIPT = [
    status("IN_QUEUE", queue_position=3),
    status("IN_QUEUE", queue_position=0),
    status("IN_PROGRESS", logs=[log("Loading pipeline")]),
    status("IN_PROGRESS", logs=[log(" 40%|####      | 16/40 [00:40<01:00]")]),
    status("IN_PROGRESS", logs=[log(" 90%|######### | 36/40 [01:30<00:10]")]),
    status("COMPLETED", metrics={"inference_time": 101.0}),
]


def _error(loc: list[Any], msg: str, kind: str, **ctx: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"loc": ["body", *loc], "msg": msg, "type": kind}
    if ctx:
        item["ctx"] = ctx
    return item


@dataclass
class Variant:
    """What fal's documentation leaves open; see the module's docstring."""

    in_flight: bool = False
    account_stores_io: bool = True
    fills_defaults: bool = False
    rewrites_urls: bool = False
    reroute: str | None = None  # None | "original" | "fallback"
    honours_no_fallback: bool = True
    lag: int = 0
    unit_spelling: str = "plural"  # "plural" | "singular" | "image"
    unpriced: str = "omit"  # "omit" | "404"
    price_page: int = 50
    unknown_payloads: str = "404"  # "404" | "empty"
    video: video.VideoVariant = field(default_factory=video.VideoVariant)
    trainers: trainers.TrainerVariant = field(default_factory=trainers.TrainerVariant)
    family_trainers: family_trainers.FamilyTrainerVariant = field(
        default_factory=family_trainers.FamilyTrainerVariant
    )


DEFAULTS = {  # what the apps document as defaults, filled in by the "fills_defaults" variant
    "fal-ai/flux/dev": {"num_inference_steps": 28, "guidance_scale": 3.5, "enable_safety_checker": True},
    "fal-ai/flux-lora-fast-training": {"create_masks": True, "is_style": False},
    "fal-ai/flux-lora-portrait-trainer": {"multiresolution_training": True, "subject_crop": True},
    VISION_APP: {"reasoning": False},
}
FALLBACK = "fal-ai/fallback-endpoint"

# The account's prices (a discount off the public ones, as the pricing page allows): (USD, unit).
PRICES: dict[str, tuple[float, str]] = {
    "fal-ai/flux/dev": (0.02, "megapixel"),
    "fal-ai/flux/schnell": (0.0025, "megapixel"),
    "fal-ai/flux-pro/v1.1": (0.035, "megapixel"),
    "fal-ai/flux-lora": (0.03, "megapixel"),
    "fal-ai/flux-lora-fast-training": (0.0015, "step"),
    VISION_APP: (0.0000012, "token"),  # "charged based on actual token usage": not a unit a run counts
    trainers.WAN_TRAINER: (0.005, "step"),
    trainers.WAN22_IMAGE: (0.0045, "step"),
    **{app: (price, "step") for app, price in family_trainers.PAGE_PRICES.items()},
}


@dataclass
class Job:
    request_id: str
    app: str  # the endpoint id, e.g. fal-ai/flux/dev
    arguments: dict[str, Any]
    script: list[dict[str, Any]]
    sent_at: datetime
    errors: list[dict[str, Any]] = field(default_factory=list)  # the model's 422 detail, if any
    failure: tuple[dict[str, Any], httpx.Response] | None = None  # an injected failure
    output: dict[str, Any] | None = None
    ended_at: datetime | None = None
    billed: bool = False
    expired: bool = False  # the queue no longer keeps the result
    forgotten: bool = False  # the queue does not know the request any more
    listed: bool = True  # the request list shows it (once it has ended)
    cancelled: bool = False
    stores_io: bool = True  # fal kept its payloads
    ran_on: str = ""  # the endpoint that ran it, when fal rerouted it
    looks_after_end: int = 0  # list reads since it ended (for the lag variant)
    neighbour: bool = False  # another workload's request
    trained: trainers.Trained | None = None  # what a Wan trainer read of its zip
    captions: dict[str, str] = field(default_factory=dict)  # what a v2 trainer read of its zip

    @property
    def base(self) -> str:
        return "/".join(self.app.split("/")[:2])

    @property
    def done(self) -> bool:
        return self.ended_at is not None

    @property
    def succeeded(self) -> bool:
        return self.done and not self.errors and self.failure is None and not self.cancelled


class FakeFal:
    """fal's queue, storage upload, CDN and the platform API's request list."""

    def __init__(self, key: str = FAL_KEY) -> None:
        self.key = key
        self.jobs: dict[str, Job] = {}
        self.scripts: dict[str, list[dict[str, Any]]] = {}  # per app; a default otherwise
        self.failures: dict[str, tuple[dict[str, Any], httpx.Response]] = {}  # per app
        self.files: dict[str, bytes | Callable[[], httpx.Response]] = {}
        self.dead: set[str] = set()  # URLs that no longer serve anything
        self.uploads: list[tuple[str, bytes]] = []
        self.requests: list[tuple[str, httpx.Request]] = []
        self.unauthorized = 0
        self.faults = Faults()
        self.seed = 1234
        self.weights = safetensors_bytes()
        self.config = json.dumps({"trigger_word": "dmavatar", "steps": 1000}).encode()
        self.variant = Variant()
        self.store_payloads = True  # False: fal keeps no payloads, whatever the submit asks
        self.prices = dict(PRICES)
        self.admin_key = True  # False: the key lacks the ADMIN scope the payload delete needs
        self.erased: list[str] = []  # request ids whose payloads were deleted
        # What the FLUX apps' pictures show: (the request's arguments, the picture's number) → a
        # BGR picture, resized to the size asked for; None: a black picture.
        self.picture: Callable[[dict[str, Any], int], np.ndarray] | None = None
        # What the vision app answers for an image URL (the upload's name is in the URL).
        self.caption: Callable[[str], str] = lambda url: (
            f"**The person** smiles at the camera, head and shoulders, soft light ({url.rsplit('/', 1)[-1]})"
        )

    # --- what tests set up and read ---

    def fail(self, kind: str, *outcomes: Fault) -> None:
        """kind: token, upload, submit, status, result, cancel, download, list, pricing or erase."""
        self.faults.add(kind, outcomes)

    def fail_job(self, app: str, final: dict[str, Any], result: httpx.Response) -> None:
        """Requests on `app` end with this COMPLETED status and this result answer."""
        self.failures[app] = (final, result)

    def kill(self, url: str) -> None:
        """The file at `url` is gone (a CDN upload that expired)."""
        self.dead.add(url)

    def expire(self, request_id: str) -> None:
        self.jobs[request_id].expired = True

    def forget(self, request_id: str) -> None:
        self.jobs[request_id].forgotten = True

    def purge(self, request_id: str) -> None:
        """Gone from the queue and from the request list (older than 90 days, say)."""
        self.jobs[request_id].forgotten = True
        self.jobs[request_id].listed = False

    def neighbour(self, app: str, arguments: dict[str, Any], *, ago: timedelta = timedelta(0)) -> str:
        """Another workload on the same account submits (and, in time, pays for) a request."""
        request_id = f"other-{len(self.jobs) + 1}"
        job = Job(request_id, app, arguments, list(IMAGE_SCRIPT), datetime.now(UTC) - ago, neighbour=True)
        self.jobs[request_id] = job
        return request_id

    @property
    def ours(self) -> list[Job]:
        return [job for job in self.jobs.values() if not job.neighbour]

    @property
    def accepted(self) -> int:
        return len(self.ours)

    @property
    def billed(self) -> int:
        return sum(1 for job in self.ours if job.billed)

    @property
    def submitted(self) -> list[tuple[str, dict[str, Any]]]:
        return [(job.app, job.arguments) for job in self.ours]

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.requests if k == kind)

    def polled(self, request_id: str) -> int:
        return sum(1 for k, r in self.requests if k == "status" and f"/requests/{request_id}/" in r.url.path)

    # --- dispatch ---

    def knows(self, request: httpx.Request) -> bool:
        host = request.url.host
        return (
            host in (*QUEUE_HOSTS, "rest.fal.ai", "v3.fal.media", "api.fal.ai")
            or str(request.url) in self.files
        )

    def __call__(self, request: httpx.Request) -> httpx.Response:
        kind, handler = self._route(request)
        self.requests.append((kind, request))
        expected = {"upload": f"Bearer {CDN_TOKEN}", "download": None}.get(kind, f"Key {self.key}")
        if request.headers.get("authorization") != expected:
            self.unauthorized += 1
            if expected is not None:
                return failure(401, {"detail": "Invalid API key"})
        return self.faults.answer(kind, request, handler)

    def _route(self, request: httpx.Request) -> tuple[str, Callable[[httpx.Request], httpx.Response]]:
        url, path, method = request.url, request.url.path, request.method
        if url.host == "rest.fal.ai" and path == "/storage/auth/token" and method == "POST":
            return "token", self._token
        if url.host == "v3.fal.media" and path == "/files/upload" and method == "POST":
            return "upload", self._upload
        if url.host == "api.fal.ai" and path == "/v1/models/requests/by-endpoint" and method == "GET":
            return "list", self._list
        if url.host == "api.fal.ai" and path == "/v1/models/pricing" and method == "GET":
            return "pricing", self._pricing
        match = re.fullmatch(r"/v1/models/requests/([^/]+)/payloads", path)
        if url.host == "api.fal.ai" and match and method == "DELETE":
            return "erase", lambda r: self._erase(match[1])
        if url.host in QUEUE_HOSTS:
            if match := re.fullmatch(r"/([^/]+/[^/]+)/requests/([^/]+)/status", path):
                return "status", lambda r: self._status(match[1], match[2], r)
            if (match := re.fullmatch(r"/([^/]+/[^/]+)/requests/([^/]+)/cancel", path)) and method == "PUT":
                return "cancel", lambda r: self._cancel(match[1], match[2])
            if (match := re.fullmatch(r"/([^/]+/[^/]+)/requests/([^/]+)", path)) and method == "GET":
                return "result", lambda r: self._result(match[1], match[2])
            if method == "POST" and "/requests/" not in path:
                return "submit", self._submit
        if method == "GET" and (str(url) in self.files or url.host == "v3.fal.media"):
            return "download", self._download
        raise AssertionError(f"the fal fake got an unexpected request: {method} {url}")

    # --- storage ---

    def _token(self, request: httpx.Request) -> httpx.Response:
        assert request.url.params.get("storage_type") == "fal-cdn-v3"
        return json_response(
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
        data = request.read()
        self.uploads.append((name, data))
        url = f"https://v3.fal.media/files/fake/{len(self.uploads)}-{name}"
        self.files[url] = data
        return json_response(200, {"access_url": url})

    def _download(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        content = self.files.get(url)
        if content is None or url in self.dead:
            return failure(404, {"detail": "File not found"})
        if callable(content):
            return content()
        return httpx.Response(200, content=content, headers={"content-type": "application/octet-stream"})

    # --- the queue ---

    def _submit(self, request: httpx.Request) -> httpx.Response:
        app = request.url.path.strip("/")
        if app not in IMAGE_APPS | TRAINING_APPS | VIDEO_APPS | {VISION_APP}:
            return failure(404, {"detail": f"Application '{app}' not found"})
        try:
            arguments = json.loads(request.read())
        except ValueError:
            return failure(422, {"detail": [_error([], "Invalid JSON body", "json_invalid")]})
        request_id = f"req-{len(self.jobs) + 1}"
        default = (
            TRAINING_SCRIPT
            if app in TRAINING_APPS
            else VISION_SCRIPT
            if app == VISION_APP
            else VIDEO_SCRIPT
            if app in VIDEO_APPS
            else IMAGE_SCRIPT
        )
        script = list(self.scripts.get(app) or default)
        job = Job(request_id, app, arguments, script, datetime.now(UTC), failure=self.failures.get(app))
        asked = request.headers.get("x-fal-store-io")
        job.stores_io = self.store_payloads and (
            asked == "1" if asked in ("0", "1") else self.variant.account_stores_io
        )
        declined = request.headers.get("x-fal-disable-fallbacks") and self.variant.honours_no_fallback
        if self.variant.reroute and not declined:
            job.ran_on = FALLBACK
        self.jobs[request_id] = job
        base = f"https://{request.url.host}/{job.base}/requests/{request_id}"
        return json_response(
            200,
            {
                "status": "IN_QUEUE",
                "request_id": request_id,
                "response_url": base,
                "status_url": f"{base}/status",
                "cancel_url": f"{base}/cancel",
                "queue_position": 0,
            },
        )

    def _job(self, base: str, request_id: str) -> Job | None:
        job = self.jobs.get(request_id)
        if job is None or job.base != base or job.forgotten:
            return None
        return job

    def _advance(self, job: Job) -> dict[str, Any]:
        """The job's next state: every look at it lets it move on, until it has completed."""
        state = job.script[0] if len(job.script) == 1 else job.script.pop(0)
        if state["status"] == "COMPLETED" and not job.done:
            self._complete(job)
        return state

    def _complete(self, job: Job) -> None:
        job.ended_at = datetime.now(UTC)
        if job.failure is None and not job.cancelled:
            job.errors = self._validate(job)
            if not job.errors:
                job.output = self._output(job)
                job.billed = True

    def _status(self, base: str, request_id: str, request: httpx.Request) -> httpx.Response:
        job = self._job(base, request_id)
        if job is None:
            return failure(404, {"detail": f"Request {request_id} not found"})
        state = dict(self._advance(job))
        if state["status"] == "COMPLETED":
            if job.failure is not None:
                state = dict(job.failure[0])
            elif job.errors:
                state.update(error=job.errors[0]["msg"], error_type=None)
        if request.url.params.get("logs") not in ("1", "true", "True"):
            state.pop("logs", None)
            if state["status"] != "IN_QUEUE":
                state["logs"] = None
        url = f"https://{request.url.host}/{base}/requests/{request_id}"
        body = {**state, "request_id": request_id, "response_url": url, "status_url": f"{url}/status"}
        return json_response(200 if state["status"] == "COMPLETED" else 202, body)

    def _result(self, base: str, request_id: str) -> httpx.Response:
        job = self._job(base, request_id)
        if job is None or job.expired:
            return failure(404, {"detail": f"Request {request_id} not found"})
        if not job.done:
            return failure(400, {"detail": "Request is still in progress"})
        if job.failure is not None:
            return job.failure[1]
        if job.errors:
            return failure(422, {"detail": job.errors})
        return json_response(200, job.output)

    def _cancel(self, base: str, request_id: str) -> httpx.Response:
        job = self._job(base, request_id)
        if job is None:
            return failure(404, {"detail": f"Request {request_id} not found"})
        if job.done:
            return json_response(400, {"status": "ALREADY_COMPLETED"})
        if job.script[0]["status"] != "IN_QUEUE":  # running: the app was told; this one finishes anyway
            return json_response(202, {"status": "CANCELLATION_REQUESTED"})
        job.cancelled = True
        job.script = [status("COMPLETED", error="Request was cancelled", error_type="request_cancelled")]
        return json_response(202, {"status": "CANCELLATION_REQUESTED"})

    # --- what the models do with their input ---

    def _fetchable(self, url: Any) -> bool:
        if not isinstance(url, str) or not url.startswith(("https://", "http://")) or url in self.dead:
            return False
        return url in self.files or not url.startswith("https://v3.fal.media/")

    def _validate(self, job: Job) -> list[dict[str, Any]]:
        """The model's input validation, as its schema and fal's error types describe it."""
        args, errors = job.arguments, []
        if job.app == VISION_APP:
            return self._validate_vision(args)
        if job.app in VIDEO_APPS:
            return video.validate(job.app, args, self._fetchable, _error)
        if job.app in WAN_TRAINERS:
            variant = self.variant.trainers
            errors, job.trained = trainers.validate(job.app, args, self._content, variant, _error)
            return errors
        if job.app in FAMILY_TRAINERS:
            variant_v2 = self.variant.family_trainers
            errors, job.captions = family_trainers.validate(job.app, args, self._content, variant_v2, _error)
            return errors
        if job.app in TRAINING_APPS:
            trigger, other = ("trigger_phrase", "trigger_word")
            if job.app == "fal-ai/flux-lora-fast-training":
                trigger, other = other, trigger
            if other in args:  # an unknown field: the schema forbids extras
                errors.append(_error([other], "Extra inputs are not permitted", "extra_forbidden"))
            if job.app == "fal-ai/flux-lora-fast-training" and "learning_rate" in args:
                errors.append(_error(["learning_rate"], "Extra inputs are not permitted", "extra_forbidden"))
            if "images_data_url" not in args:
                errors.append(_error(["images_data_url"], "field required", "missing"))
            elif not self._fetchable(args["images_data_url"]):
                errors.append(
                    _error(
                        ["images_data_url"],
                        f"Failed to download the file from {args['images_data_url']}",
                        "file_download_error",
                    )
                )
            steps = args.get("steps", 1000)
            if not isinstance(steps, int) or not 1 <= steps <= 10000:
                errors.append(_error(["steps"], "Input should be between 1 and 10000", "range"))
            return errors
        if not isinstance(args.get("prompt"), str):
            errors.append(_error(["prompt"], "field required", "missing"))
        count = args.get("num_images", 1)
        if not isinstance(count, int) or count < 1:
            errors.append(
                _error(
                    ["num_images"], "Input should be greater than or equal to 1", "greater_than_equal", ge=1
                )
            )
        elif count > 4:
            errors.append(
                _error(["num_images"], "Input should be less than or equal to 4", "less_than_equal", le=4)
            )
        size = args.get("image_size", "landscape_4_3")
        if not (size in SIZES or (isinstance(size, dict) and {"width", "height"} <= size.keys())):
            errors.append(_error(["image_size"], f"Input should be one of {', '.join(SIZES)}", "enum"))
        if args.get("output_format", "jpeg") not in ("jpeg", "png"):
            errors.append(_error(["output_format"], "Input should be 'jpeg' or 'png'", "enum"))
        if job.app == Z_IMAGE_LORA:
            errors += _z_image_errors(args)
        for i, lora in enumerate(args.get("loras") or []):
            if job.app not in ("fal-ai/flux-lora", Z_IMAGE_LORA):
                break
            if not self._fetchable(lora.get("path")):
                errors.append(
                    _error(
                        ["loras", i, "path"],
                        f"Failed to download the file from {lora.get('path')}",
                        "file_download_error",
                    )
                )
        return errors

    def _content(self, url: Any) -> bytes | None:
        """What a model downloads from `url`, or None where it cannot."""
        if not self._fetchable(url):
            return None
        content = self.files.get(url)
        return content if isinstance(content, bytes) else b""

    def _validate_vision(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        errors = [
            _error([name], "field required", "missing")
            for name in ("image_urls", "prompt", "model")
            if not args.get(name)
        ]
        for i, url in enumerate(args.get("image_urls") or []):
            if not self._fetchable(url):
                errors.append(
                    _error(
                        ["image_urls", i], f"Failed to download the file from {url}", "file_download_error"
                    )
                )
        temperature = args.get("temperature", 1)
        if not isinstance(temperature, int | float) or not 0 <= temperature <= 2:
            errors.append(_error(["temperature"], "Input should be between 0 and 2", "range"))
        return errors

    def _picture(self, arguments: dict[str, Any], number: int, width: int, height: int, fmt: str) -> bytes:
        if self.picture is None:
            return png(width, height) if fmt == "png" else jpeg(width, height)
        shown = cv2.resize(self.picture(arguments, number), (width, height), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".png" if fmt == "png" else ".jpg", shown)
        assert ok
        return bytes(data.tobytes())

    def _output(self, job: Job) -> dict[str, Any]:
        if job.app in VIDEO_APPS:
            url = f"https://v3.fal.media/files/out/{job.request_id}/output.mp4"
            result, data = video.output(job.app, job.arguments, url, self.seed, self.variant.video)
            self.files.setdefault(url, data)
            return result
        if job.app == VISION_APP:
            return {
                "output": self.caption(job.arguments["image_urls"][0]),
                "usage": {
                    "prompt_tokens": 1290,
                    "completion_tokens": 31,
                    "total_tokens": 1321,
                    "cost": VISION_COST,
                },
            }
        if job.app in WAN_TRAINERS:
            result, files = trainers.output(job.app, job.request_id, self.config, self.variant.trainers)
            for url, data in files.items():
                self.files.setdefault(url, data)
            return result
        if job.app in FAMILY_TRAINERS:
            variant_v2 = self.variant.family_trainers
            result, files = family_trainers.output(job.request_id, self.weights, self.config, variant_v2)
            for url, data in files.items():
                self.files.setdefault(url, data)
            return result
        if job.app in TRAINING_APPS:
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
        size = job.arguments.get("image_size", "landscape_4_3")
        width, height = (size["width"], size["height"]) if isinstance(size, dict) else SIZES[size]
        fmt = job.arguments.get("output_format", "jpeg")  # fal's FLUX apps default to JPEG
        images = []
        for i in range(job.arguments.get("num_images", 1)):
            url = f"https://v3.fal.media/files/out/{job.request_id}/{i}.{'png' if fmt == 'png' else 'jpg'}"
            self.files.setdefault(url, self._picture(job.arguments, i, width, height, fmt))
            images.append({"url": url, "width": width, "height": height, "content_type": f"image/{fmt}"})
        return {
            "images": images,
            "timings": {"inference": 1.2},
            "seed": job.arguments.get("seed", self.seed),
            "has_nsfw_concepts": [False] * len(images),
            "prompt": job.arguments["prompt"],
        }

    # --- the platform API's prices and payloads ---

    def _pricing(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        wanted = [e for value in params.get_list("endpoint_id") for e in value.split(",") if e]
        if not wanted:
            return failure(422, {"detail": [_error(["endpoint_id"], "field required", "missing")]})
        if len(wanted) > 50:
            return failure(422, {"detail": [_error(["endpoint_id"], "at most 50", "too_long")]})
        if self.variant.unpriced == "404" and any(e not in self.prices for e in wanted):
            return failure(404, {"detail": "Pricing not found for some endpoints"})
        spelled = {
            "plural": {"megapixel": "megapixels", "step": "steps", "token": "tokens"},
            "singular": {},
            "image": {"megapixel": "image", "step": "steps", "token": "tokens"},
        }[self.variant.unit_spelling]
        prices = [
            {"endpoint_id": e, "unit_price": self.prices[e][0], "unit": spelled.get(u, u), "currency": "USD"}
            for e in wanted
            if e in self.prices
            for u in [self.prices[e][1]]
        ]
        start = int(params.get("cursor") or 0)
        page = prices[start : start + self.variant.price_page]
        more = start + self.variant.price_page < len(prices)
        cursor = str(start + self.variant.price_page) if more else None
        return json_response(200, {"prices": page, "next_cursor": cursor, "has_more": more})

    def _erase(self, request_id: str) -> httpx.Response:
        if not self.admin_key:
            return failure(403, {"detail": "Admin API key required"})
        job = self.jobs.get(request_id)
        if job is None or job.neighbour:
            if self.variant.unknown_payloads == "404":
                return failure(404, {"detail": f"Request {request_id} not found"})
            return json_response(200, {"cdn_delete_results": []})
        links = [url for url in self.files if f"/out/{request_id}/" in url]  # its outputs, not its inputs
        for url in links:
            self.dead.add(url)
        job.stores_io = False
        self.erased.append(request_id)
        return json_response(200, {"cdn_delete_results": [{"link": url, "exception": None} for url in links]})

    # --- the platform API's request list ---

    def _list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        endpoints = {e for value in params.get_list("endpoint_id") for e in value.split(",") if e}
        if not endpoints:
            return failure(422, {"detail": [_error(["endpoint_id"], "field required", "missing")]})
        for job in self.jobs.values():  # time passes between a caller's looks
            if not job.done:
                self._advance(job)
        now = datetime.now(UTC)
        wanted_id = params.get("request_id")
        default_start = now - (timedelta(days=90) if wanted_id else timedelta(hours=24))
        start = _when(params.get("start")) or default_start
        end = _when(params.get("end")) or now + timedelta(seconds=1)
        expand = "payloads" in params.get("expand", "")
        wanted_status = params.get("status")
        items = []
        variant = self.variant
        for job in self.jobs.values():
            if job.done:
                job.looks_after_end += 1
            shown = job.done and job.looks_after_end > variant.lag
            if not (shown or (variant.in_flight and not job.done)) or not job.listed:
                continue
            listed_under = (
                {job.ran_on} if variant.reroute == "fallback" and job.ran_on else {job.app, job.ran_on}
            )
            if not listed_under & endpoints or not start <= job.sent_at < end:
                continue
            if wanted_id and job.request_id != wanted_id:
                continue
            code = None if not job.done else 200 if job.succeeded else (422 if job.errors else 500)
            kind = "success" if code == 200 else ("user_error" if code == 422 else "error")
            if wanted_status and wanted_status != kind:
                continue
            item: dict[str, Any] = {
                "request_id": job.request_id,
                "endpoint_id": job.ran_on or job.app,
                "sent_at": _iso(job.sent_at),
                "started_at": _iso(job.sent_at),
                "ended_at": _iso(job.ended_at) if job.ended_at else None,
                "status_code": code,
                "duration": (job.ended_at - job.sent_at).total_seconds() if job.ended_at else None,
            }
            if expand:
                item["json_input"] = self._as_seen(job) if job.stores_io else None
                item["json_output"] = job.output if job.stores_io else None
            items.append(item)
        # by end time, newest first; those still running (no end time) first
        items.sort(key=lambda i: i["ended_at"] or "9999", reverse=True)
        limit = min(int(params.get("limit", 50)), 100)
        offset = int(params.get("cursor") or 0)
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        return json_response(
            200, {"items": page, "next_cursor": str(offset + limit) if more else None, "has_more": more}
        )

    def _as_seen(self, job: Job) -> dict[str, Any]:
        """json_input as the variant has fal show it: defaults filled in, input URLs on fal's CDN."""
        shown = json.loads(json.dumps(job.arguments))
        if self.variant.fills_defaults:
            shown = {**DEFAULTS.get(job.app, {}), **shown}
        if self.variant.rewrites_urls:
            shown = _rehosted(shown)
        return dict(shown)


def _rehosted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _rehosted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rehosted(v) for v in value]
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        return f"https://v3.fal.media/files/rehosted/{abs(hash(value)) % 10**8}.bin"
    return value


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _z_image_errors(args: dict[str, Any]) -> list[dict[str, Any]]:
    """fal-ai/z-image/turbo/lora's own limits: 1 to 8 inference steps, at most 3 LoRAs."""
    errors = []
    steps = args.get("num_inference_steps", 8)
    if not isinstance(steps, int) or not 1 <= steps <= 8:
        errors.append(_error(["num_inference_steps"], "Input should be between 1 and 8", "range"))
    if len(args.get("loras") or []) > 3:
        errors.append(_error(["loras"], "List should have at most 3 items", "too_long"))
    return errors
