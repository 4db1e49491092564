"""The creates' OpenAPI document says the resources' admission rules (request_rules.py): every CEL
rule of a spec is said in JSON Schema or marked as what JSON Schema cannot say; on examples at each
rule's edge the document and the server agree (a body the document allows is taken, one it forbids
is refused as invalid); what the document cannot state is refused with its own code; 2.0 is the
integer 2; and a provider the laptop's runs do not have is refused at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from contentgen import providers
from contentgen.api.video import VIDEO_RULES
from contentgen.catalog import Catalog
from contentgen.httpapi import ApiSettings, create_app, request_rules
from contentgen.pipeline.settings import PipelineSettings
from contentgen.store import LocalStore
from tests.harness.creators import HeldCreator
from tests.httpapi.conftest import MakeApp
from tests.httpapi.documented import Answers

LOCAL = {"Host": "localhost:8080"}
HTTPS = "https://example.com/v.mp4"


def test_every_rule_of_a_spec_is_said_or_marked() -> None:
    schemas = list(request_rules.spec_schemas())
    assert request_rules.untranslated(schemas) == []
    # VideoGeneration: a duration times a frame rate, and a frame count on a model's grid (k·step + 1)
    video = {r.cel.message for r in VIDEO_RULES if r.json_schema is None}
    assert video and all(m.startswith("model ") for m in video)
    assert request_rules.beyond_schema() == {
        "minFrames must not be larger than maxFrames",
        "training.steps / training.checkpointEvery must be at most 50 (one stored checkpoint each): make "
        "checkpointEvery at least steps / 50, or 0 for only the last step",
        *video,
    }


def lora(**spec: Any) -> dict[str, Any]:
    return {"kind": "LoraTraining", "spec": {"source": {"url": HTTPS}, "triggerWord": "jx", **spec}}


def image(**spec: Any) -> dict[str, Any]:
    return {"kind": "ImageGeneration", "spec": {"prompt": "a fox", **spec}}


def transcription(url: str = HTTPS, **spec: Any) -> dict[str, Any]:
    return {"kind": "Transcription", "spec": {"source": {"url": url}, **spec}}


def entry(**fields: Any) -> dict[str, Any]:
    return {"loraRef": {"name": "jesse"}, **fields} if "url" not in fields else fields


S3_LORA = "s3://bucket/loras/alice/x/v1/model.safetensors"
# (route, body, taken by a laptop's API, taken by a cluster's): each rule's edge, both sides.
EDGES: list[tuple[str, dict[str, Any], bool, bool]] = [
    ("/api/resources", image(numImages=4), True, True),
    ("/api/resources", image(numImages=5), False, False),  # fal: at most 4
    ("/api/resources", image(numImages=5, provider="fal"), False, False),
    ("/api/resources", image(numImages=8, provider="offline"), True, True),
    ("/api/resources", image(loras=[{"url": S3_LORA}]), False, False),  # loras need flux-lora
    ("/api/resources", image(model="flux-lora", loras=[{"url": S3_LORA}]), True, True),
    ("/api/resources", image(model="flux-pro", loras=[]), True, True),
    # the newer families' models load their LoRAs; the cluster draws them in bf16 (no 8- or 4-bit
    # plan: those are FLUX.1's), fal its apps' only
    ("/api/resources", image(model="z-image-turbo", loras=[{"url": S3_LORA}]), True, True),
    (
        "/api/resources",
        image(model="flux.2-klein-4b", provider="offline", loras=[{"url": S3_LORA}]),
        True,
        True,
    ),
    ("/api/resources", image(model="flux.2-klein-4b", provider="cluster"), True, True),
    ("/api/resources", image(model="flux.2-klein-4b", provider="cluster", memoryPlan="offload"), True, True),
    ("/api/resources", image(model="flux.2-klein-4b", provider="cluster", memoryPlan="nf4"), False, False),
    ("/api/resources", image(model="flux-dev", provider="cluster", memoryPlan="nf4"), True, True),
    ("/api/resources", image(model="qwen-image-2512"), False, False),  # fal has no app read for it
    ("/api/resources", image(denoising="pool"), False, False),  # a pool is the cluster's GPUs'
    ("/api/resources", image(denoising="job", provider="offline"), False, False),
    (
        "/api/resources",
        image(model="flux-lora", loras=[{"url": S3_LORA, "loraRef": {"name": "x"}}]),
        False,
        False,
    ),
    ("/api/resources", image(model="flux-lora", loras=[{"url": None, "loraRef": {"name": "x"}}]), True, True),
    ("/api/resources", image(model="flux-lora", loras=[{"url": None}]), False, False),
    (
        "/api/resources",
        image(model="flux-lora", loras=[{"url": "http://example.com/l.safetensors"}]),
        False,
        False,
    ),
    ("/api/resources", image(imageSize="huge"), False, False),
    ("/api/resources", transcription("s3://bucket/a b.mp3"), False, False),
    ("/api/resources", transcription("s3://bucket/a\x1cb.mp3"), False, False),  # Python's \s
    ("/api/resources", transcription("s3://bucket/a\u00a0b.mp3"), False, False),
    ("/api/resources", transcription("s3://bucket/a\u0085b.mp3"), False, False),
    ("/api/resources", transcription("s3://bucket/a\u200bb.mp3"), True, True),  # not a space
    ("/api/resources", transcription("https://user:pw@example.com/a.mp3"), False, False),
    ("/api/resources", transcription("ftp://example.com/a.mp3"), False, False),
    ("/api/resources", transcription("/home/me/talk.mp3"), True, False),  # a laptop's local file
    ("/api/resources", transcription("file:///home/me/talk.mp3"), True, False),
    ("/api/resources", lora(dataset={"captionTemplate": "a photo"}), False, False),
    ("/api/resources", lora(dataset={"captionTemplate": "{trigger}, smiling"}), True, True),
    (
        "/api/resources",
        lora(dataset={"subject": {"referenceImages": [HTTPS]}, "faceFilter": False}),
        False,
        False,
    ),
    ("/api/resources", lora(dataset={"subject": {"referenceImages": [HTTPS]}}), True, True),
    ("/api/resources", lora(dataset={"subject": None, "faceFilter": False}), True, True),
    ("/api/resources", lora(dataset={"subject": {"referenceImages": ["ftp://x/y.jpg"]}}), False, False),
    ("/api/resources", lora(evaluation={"checkpoints": 20}), True, True),  # scored: 1 to 20
    ("/api/resources", lora(evaluation={"checkpoints": 21}), False, False),
    ("/api/resources", lora(evaluation={"checkpoints": 0}), False, False),
    ("/api/resources", lora(training={"steps": 1000, "checkpointEvery": 20}), True, True),  # 50 stored
    ("/api/lora/train", {"videoUrl": HTTPS, "trigger": "jx"}, True, True),
    ("/api/lora/train", {"videoUrl": HTTPS, "trigger": "j x"}, False, False),
    ("/api/lora/train", {"videoUrl": "ftp://x/v.mp4", "trigger": "jx"}, False, False),
    ("/api/lora/train", {"videoUrl": "./v.mp4", "trigger": "jx"}, True, False),
    ("/api/lora/train", {"videoUrl": HTTPS, "trigger": "jx", "loraName": "__"}, False, False),
    ("/api/lora/train", {"videoUrl": HTTPS, "trigger": "jx", "loraName": "\u212a"}, False, False),  # Kelvin
    ("/api/lora/train", {"videoUrl": HTTPS, "trigger": "jx", "provider": "assemblyai"}, False, False),
    ("/api/images/generate", {"inputs": {"prompt": "a", "num_images": 5}}, False, False),
    ("/api/images/generate", {"inputs": {"prompt": "a", "num_images": 5}, "provider": "offline"}, True, True),
    ("/api/images/generate", {"inputs": {"prompt": "a", "image_size": "huge"}}, False, False),
    (
        "/api/images/generate",
        {"inputs": {"prompt": "a"}, "model": "z-image", "provider": "cluster"},
        True,
        True,
    ),
    (
        "/api/images/generate",
        {"inputs": {"prompt": "a"}, "model": "flux-pro", "provider": "cluster"},
        False,
        False,
    ),
    ("/api/images/generate", {"inputs": {"prompt": "a"}, "model": "z-image", "provider": None}, False, False),
    ("/api/images/generate", {"inputs": {"prompt": "a"}, "model": None, "provider": "cluster"}, True, True),
    (
        "/api/images/generate",
        {
            "inputs": {"prompt": "a", "loras": [{"path": S3_LORA}]},
            "model": "qwen-image-2512",
            "provider": "offline",
        },
        True,
        True,
    ),
    ("/api/images/generate", {"inputs": {"prompt": "a", "loras": [{"path": S3_LORA}]}}, True, True),
    (
        "/api/images/generate",
        {"inputs": {"prompt": "a", "loras": [{"path": S3_LORA}]}, "model": None},
        True,
        True,
    ),
    (
        "/api/images/generate",
        {"inputs": {"prompt": "a", "loras": [{"path": S3_LORA}]}, "model": "flux-dev"},
        False,
        False,
    ),
    ("/api/images/generate", {"inputs": {"prompt": "a", "loras": [{"path": "http://x/l"}]}}, False, False),
    ("/api/transcribe", {"audioUrl": HTTPS, "url": "ftp://example.com/a.mp3"}, False, False),
    ("/api/transcribe", {"audioUrl": HTTPS, "videoUrl": "talk.mp4"}, True, False),
    ("/api/transcribe", {"audioUrl": HTTPS, "language_code": "english"}, False, False),
    ("/api/transcribe", {"url": HTTPS, "language_code": "en_us", "provider": "fal"}, False, False),
]


def _document_says(document: dict[str, Any], route: str, body: dict[str, Any]) -> bool:
    request = document["paths"][route]["post"]["requestBody"]["content"]["application/json"]["schema"]
    root = {**request, "components": document["components"]}
    return jsonschema.Draft202012Validator(root).is_valid(body)


@pytest.mark.asyncio
@pytest.mark.parametrize("local", [True, False], ids=["laptop", "cluster"])
async def test_the_document_and_the_server_agree_at_each_rules_edge(local: bool, rules_app: MakeApp) -> None:
    """With creates on a laptop the server answers; with creates off (as a cluster's document
    reads: no local files) the document alone is compared."""
    app = rules_app(local=local)
    document = app.openapi()
    transport = httpx.ASGITransport(app=Answers(app), client=("127.0.0.1", 50000))
    wrong = []
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080", headers=LOCAL) as c:
        for n, (route, body, on_laptop, in_cluster) in enumerate(EDGES):
            taken = on_laptop if local else in_cluster
            if _document_says(document, route, body) != taken:
                wrong.append(f"{n} {route} {body}: the document says {not taken}")
            if not local:
                continue
            answer = await c.post(route, json=body)
            code = answer.json()["error"]["code"] if answer.status_code == 400 else ""
            if taken and answer.status_code not in (200, 201) and code != "unresolved":  # loraRef x
                wrong.append(f"{n} {route} {body}: {answer.status_code} {answer.text}")
            if not taken and (
                answer.status_code != 400 or answer.json()["error"]["code"] not in ("bad_request", "invalid")
            ):
                wrong.append(f"{n} {route} {body}: {answer.status_code} {answer.text}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.asyncio
async def test_what_the_document_cannot_state_has_its_own_code(
    rules_app: MakeApp,
) -> None:
    app = rules_app(local=True)
    body = lora(dataset={"minFrames": 30, "maxFrames": 20})
    assert _document_says(app.openapi(), "/api/resources", body)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080", headers=LOCAL) as c:
        refused = await c.post("/api/resources", json=body)
        assert refused.status_code == 400, refused.text
        error = refused.json()["error"]
        assert error["code"] == "invalid_combination"
        assert error["fields"] == [
            {"field": "spec.dataset.minFrames", "message": "minFrames must not be larger than maxFrames"}
        ]
        # more than 50 stored checkpoints: steps / checkpointEvery, which JSON Schema cannot say
        many = lora(training={"steps": 1000, "checkpointEvery": 19})
        assert _document_says(app.openapi(), "/api/resources", many)
        refused = await c.post("/api/resources", json=many)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_combination"
        [field] = refused.json()["error"]["fields"]
        assert field["field"] == "spec.training.checkpointEvery" and "at most 50" in field["message"]
        # With another problem the document does state, it is invalid.
        both = await c.post(
            "/api/resources", json=lora(dataset={"minFrames": 30, "maxFrames": 20}, triggerWord="j x")
        )
        assert both.json()["error"]["code"] == "invalid"
        missing = await c.post(
            "/api/resources", json=image(model="flux-lora", loras=[{"loraRef": {"name": "nobody"}}])
        )
        assert missing.status_code == 400 and missing.json()["error"]["code"] == "unresolved", missing.text
        # 2.0 is the integer 2, as JSON Schema reads it; "2" is not.
        whole = await c.post("/api/resources", json=image(numImages=2.0, seed=7.0))
        assert whole.status_code == 201, whole.text
        assert whole.json()["manifest"]["spec"]["numImages"] == 2
        text = await c.post("/api/resources", json=image(numImages="2"))
        assert text.status_code == 400 and text.json()["error"]["code"] == "invalid"
        half = await c.post("/api/images/generate", json={"inputs": {"prompt": "a", "num_images": 2.5}})
        assert half.status_code == 400 and half.json()["error"]["code"] == "bad_request"


@pytest.mark.asyncio
async def test_a_provider_the_laptops_runs_do_not_have_is_refused_at_once(
    catalog: Catalog,
    store: LocalStore,
    tmp_path: Path,
    held: list[Any],
    rules_app: MakeApp,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """provider cluster (the cluster's GPUs) on a laptop whose providers do not run it: a 400 naming
    spec.provider, nothing recorded; one they run is queued. With --offline every provider runs
    offline, cluster too."""
    monkeypatch.setattr(providers, "IMAGE_GENERATORS", ("fal", "offline"))
    settings = ApiSettings(
        catalog="unused://", store=str(store.root), api_auth=["local"], api_local_owner="alice"
    )
    creator = HeldCreator(catalog, lambda: store, settings=PipelineSettings(work_dir=tmp_path))
    held.append(creator)
    app = Answers(create_app(settings, catalog=catalog, store=lambda: store, creator=creator))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080", headers=LOCAL) as c:
        gpu = await c.post("/api/resources", json={**image(provider="cluster"), "metadata": {"name": "gpu"}})
        assert gpu.status_code == 400, gpu.text
        error = gpu.json()["error"]
        assert error["code"] == "provider_unavailable" and error["fields"][0]["field"] == "spec.provider"
        assert "provider cluster does not run on this machine" in error["message"]
        assert (await c.get("/api/jobs/default/gpu")).status_code == 404
        seeds = await c.post("/api/images/generate", json={"inputs": {"prompt": "a"}, "provider": "cluster"})
        assert seeds.json()["error"]["code"] == "provider_unavailable"
        fal = await c.post("/api/resources", json=image(provider="fal"))
        assert fal.status_code == 201, fal.text
    assert app.undocumented() == []

    offline = rules_app(local=True, work="offline")
    transport = httpx.ASGITransport(app=offline, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080", headers=LOCAL) as c:
        assert (await c.post("/api/resources", json=image(provider="cluster"))).status_code == 201


def test_the_seeds_routes_take_their_kinds_providers() -> None:
    from contentgen.api import KINDS
    from contentgen.httpapi.manifests import ImagesGenerateRequest, LoraTrainRequest, TranscribeRequest

    def choices(schema: dict[str, Any]) -> set[str]:  # the enum, however deep in anyOf (Optional)
        return set(schema.get("enum", ())).union(*(choices(s) for s in schema.get("anyOf", ())))

    for request, kind in (
        (LoraTrainRequest, "LoraTraining"),
        (ImagesGenerateRequest, "ImageGeneration"),
        (TranscribeRequest, "Transcription"),
    ):
        seeds = choices(request.model_json_schema()["properties"]["provider"])
        assert seeds and seeds == choices(KINDS[kind].spec.model_json_schema()["properties"]["provider"]), (
            kind
        )
