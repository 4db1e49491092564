"""A fake of AssemblyAI's v2 API at the HTTP level, following its documentation (by page):

- https://www.assemblyai.com/docs/api-reference (and the OpenAPI spec the SDK is generated from,
  AssemblyAI/assemblyai-api-spec): POST /v2/upload takes the raw bytes -> 200 {upload_url};
  POST /v2/transcript {audio_url, speaker_labels, language_code | language_detection, ...} -> 200
  the transcript, status "queued"; GET /v2/transcript/{id} -> the transcript, status queued |
  processing | completed | error (then `error` says why; a URL AssemblyAI cannot fetch gives
  "Download error, unable to download ..."). Errors are {"error": "..."}: 400 for a bad request,
  401 "Authentication error, API token missing/invalid". The fake answers an unknown transcript
  id with 400 "Transcript lookup error, transcript id not found"; the provider treats 400 and
  404 alike there.
- https://www.assemblyai.com/docs/api-reference/transcripts/list: GET /v2/transcript?limit (1-200,
  default 10)&status&created_on&before_id&after_id -> {page_details: {limit, result_count,
  current_url, prev_url, next_url}, transcripts: [{id, resource_url, status, created, completed,
  audio_url, error}]}, newest first, every status, the last 90 days; prev_url pages to older
  transcripts. Each listing lets queued transcripts move on, as time passes between looks.
- https://www.assemblyai.com/docs/account-management: an upload is readable only with a key of
  the same project.
- https://www.assemblyai.com/docs/pre-recorded-audio/select-the-speech-model: speech_models, in
  priority order; universal-3-5-pro / universal-3-pro take six (and more) languages, universal-2
  the rest; the completed transcript's speech_model_used names the model that ran. Pages disagree
  on whether speech_models is required (`requires_speech_models`) and on its default.
- https://assemblyai.com/docs/api-reference/transcripts/delete: DELETE /v2/transcript/{id} removes
  the transcript's data and marks it deleted; a file sent to /v2/upload is deleted with it.

Where the documentation is silent the fake varies: `lag` (a created transcript shows in the list
only after that many more looks: no read-after-write is promised) and `zone` (the list's
`created` has no time zone in the documentation's examples: naive UTC, naive in another zone, or
with a zone).
- Billing (https://assemblyai.com/docs/billing-and-pricing): pre-recorded audio is billed by its
  duration, "Credits are deducted only after a successful transcription completes. If a request
  errors, you aren't charged for it." Uploads are not billed. So `billed` counts transcripts that
  completed, `accepted` every transcript created.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx

from .fakes import Fault, Faults, failure, json_response

ASSEMBLYAI_KEY = "aai-key-for-tests-93c0"
HOST = "api.assemblyai.com"

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

PRO_LANGUAGES = {"en", "en_us", "en_uk", "en_au", "es", "fr", "de", "it", "pt"}
LANGUAGES = {"en", "en_us", "en_uk", "en_au", "es", "fr", "de", "it", "pt", "nl", "ja", "hi", "zh"}


@dataclass
class Transcript:
    body: dict[str, Any]
    script: list[str]
    created: datetime
    billed: bool = False
    deleted: bool = False
    looks: int = 0  # list reads since it was created


class FakeAssemblyAI:
    """AssemblyAI's v2 upload and transcript endpoints."""

    def __init__(self, key: str = ASSEMBLYAI_KEY) -> None:
        self.key = key
        self.transcripts: dict[str, Transcript] = {}
        self.uploads: dict[str, bytes] = {}  # upload_url -> bytes
        self.dead: set[str] = set()  # audio URLs AssemblyAI cannot download
        self.requests: list[tuple[str, httpx.Request]] = []
        self.submitted: list[dict[str, Any]] = []  # the bodies of the transcripts created
        self.unauthorized = 0
        self.faults = Faults()
        self.outcome: dict[str, Any] = dict(COMPLETED_TRANSCRIPT)  # what a completed transcript holds
        self.script = ["queued", "processing", "processing", "completed"]
        self.lag = 0
        self.zone: timedelta | None = timedelta(
            0
        )  # None: created with its zone; else naive, this far from UTC
        self.requires_speech_models = False

    def fail(self, kind: str, *outcomes: Fault) -> None:
        """kind: upload, submit, poll or list."""
        self.faults.add(kind, outcomes)

    def kill(self, url: str) -> None:
        """AssemblyAI can no longer download `url` (an expired link or upload)."""
        self.dead.add(url)

    @property
    def accepted(self) -> int:
        return len(self.transcripts)

    @property
    def billed(self) -> int:
        return sum(1 for t in self.transcripts.values() if t.billed)

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.requests if k == kind)

    def polls(self, transcript_id: str) -> int:
        return sum(
            1 for k, r in self.requests if k == "poll" and r.url.path == f"/v2/transcript/{transcript_id}"
        )

    def knows(self, request: httpx.Request) -> bool:
        return request.url.host == HOST

    def __call__(self, request: httpx.Request) -> httpx.Response:
        kind, handler = self._route(request)
        self.requests.append((kind, request))
        if request.headers.get("authorization") != self.key:
            self.unauthorized += 1
            return failure(401, {"error": "Authentication error, API token missing/invalid"})
        return self.faults.answer(kind, request, handler)

    def _route(self, request: httpx.Request) -> tuple[str, Callable[[httpx.Request], httpx.Response]]:
        path, method = request.url.path, request.method
        if request.url.host == HOST:
            if path == "/v2/upload" and method == "POST":
                return "upload", self._upload
            if path == "/v2/transcript" and method == "POST":
                return "submit", self._submit
            if path == "/v2/transcript" and method == "GET":
                return "list", self._list
            if (match := re.fullmatch(r"/v2/transcript/([^/]+)", path)) and method == "GET":
                return "poll", lambda r: self._poll(match[1])
            if (match := re.fullmatch(r"/v2/transcript/([^/]+)", path)) and method == "DELETE":
                return "delete", lambda r: self._delete(match[1])
        raise AssertionError(f"the AssemblyAI fake got an unexpected request: {method} {request.url}")

    def _upload(self, request: httpx.Request) -> httpx.Response:
        data = request.read()
        if not data:
            return failure(400, {"error": "No file was uploaded"})
        url = f"https://cdn.assemblyai.com/upload/{uuid.uuid4()}"
        self.uploads[url] = data
        return json_response(200, {"upload_url": url})

    def _submit(self, request: httpx.Request) -> httpx.Response:
        try:
            body = json.loads(request.read())
        except ValueError:
            return failure(400, {"error": "Invalid JSON"})
        audio_url = body.get("audio_url")
        if not isinstance(audio_url, str) or not audio_url.startswith(("http://", "https://")):
            return failure(400, {"error": "Invalid audio_url, must be a valid URL"})
        code = body.get("language_code")
        if code is not None and code not in LANGUAGES:
            return failure(400, {"error": f"Invalid language_code: {code}"})
        models = body.get("speech_models")
        if models is None and self.requires_speech_models:
            return failure(400, {"error": "speech_models is required"})
        models = models or ["universal-3-pro", "universal-2"]
        self.submitted.append(body)
        transcript_id = str(uuid.uuid4())
        resource = {
            "id": transcript_id,
            "status": "queued",
            "audio_url": audio_url,
            "speaker_labels": body.get("speaker_labels"),
            "language_code": code,
            "language_detection": body.get("language_detection"),
            "text": None,
            "words": None,
            "utterances": None,
            "audio_duration": None,
            "confidence": None,
            "error": None,
            "speech_models": models,
            "speech_model_used": None,
        }
        self.transcripts[transcript_id] = Transcript(resource, list(self.script), datetime.now(UTC))
        return json_response(200, resource)

    def _fetchable(self, url: str) -> bool:
        if url in self.dead:
            return False
        return url in self.uploads or not url.startswith("https://cdn.assemblyai.com/")

    def _advance(self, transcript: Transcript) -> str:
        state = transcript.script[0] if len(transcript.script) == 1 else transcript.script.pop(0)
        body = transcript.body
        if state in ("processing", "completed") and not self._fetchable(body["audio_url"]):
            state, transcript.script = "error", ["error"]
        if state == "completed" and not transcript.billed:
            transcript.billed = True
        body["status"] = state
        return state

    def _poll(self, transcript_id: str) -> httpx.Response:
        transcript = self.transcripts.get(transcript_id)
        if transcript is None or transcript.deleted:
            return failure(400, {"error": "Transcript lookup error, transcript id not found"})
        state = self._advance(transcript)
        body = dict(transcript.body)
        if state == "completed":
            body.update(self.outcome)
            if not body.get("speaker_labels"):
                body["utterances"] = None
                if body.get("words"):
                    body["words"] = [{k: v for k, v in w.items() if k != "speaker"} for w in body["words"]]
            body["language_code"] = body.get("language_code") or "en_us"
            pro = body["language_code"] in PRO_LANGUAGES
            body["speech_model_used"] = next(
                (m for m in body["speech_models"] if pro or not m.startswith("universal-3")), "universal-2"
            )
        if state == "error":
            body["error"] = self.outcome.get(
                "error",
                f"Download error, unable to download {body['audio_url']}. "
                "Please make sure the file exists and is accessible from the internet.",
            )
        return json_response(200, body)

    def _created(self, when: datetime) -> str:
        if self.zone is None:
            return when.isoformat()
        return (when + self.zone).replace(tzinfo=None).isoformat()

    def _delete(self, transcript_id: str) -> httpx.Response:
        transcript = self.transcripts.get(transcript_id)
        if transcript is None or transcript.deleted:
            return failure(400, {"error": "Transcript lookup error, transcript id not found"})
        transcript.deleted = True
        self.uploads.pop(transcript.body["audio_url"], None)  # an upload goes with its transcript
        body = {**transcript.body, "text": "Deleted by user.", "words": None, "utterances": None}
        return json_response(200, body)

    def _list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        for transcript in self.transcripts.values():  # time passes between a caller's looks
            if transcript.body["status"] not in ("completed", "error"):
                self._advance(transcript)
        limit = int(params.get("limit", 10))
        if not 1 <= limit <= 200:
            return failure(400, {"error": "limit must be between 1 and 200"})
        for transcript in self.transcripts.values():
            transcript.looks += 1
        newest_first = sorted(
            (t for t in self.transcripts.values() if not t.deleted and t.looks > self.lag),
            key=lambda t: t.created,
            reverse=True,
        )
        ids = [t.body["id"] for t in newest_first]
        if before := params.get("before_id"):
            newest_first = newest_first[ids.index(before) + 1 :] if before in ids else []
        if wanted := params.get("status"):
            newest_first = [t for t in newest_first if t.body["status"] == wanted]
        page = newest_first[:limit]
        older = newest_first[limit:]
        current = f"https://{HOST}/v2/transcript?{urlencode(dict(params))}"
        prev_url = None
        if page and older:
            older_page = {"limit": limit, "before_id": page[-1].body["id"]}
            prev_url = f"https://{HOST}/v2/transcript?{urlencode(older_page)}"
        items = [
            {
                "id": t.body["id"],
                "resource_url": f"https://{HOST}/v2/transcript/{t.body['id']}",
                "status": t.body["status"],
                "created": self._created(t.created),
                "completed": self._created(t.created) if t.body["status"] == "completed" else None,
                "audio_url": t.body["audio_url"],
                "error": None,
            }
            for t in page
        ]
        details = {
            "limit": limit,
            "result_count": len(items),
            "current_url": current,
            "prev_url": prev_url,
            "next_url": None,
        }
        return json_response(200, {"page_details": details, "transcripts": items})
