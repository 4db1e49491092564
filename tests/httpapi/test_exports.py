"""What the HTTP API hands out besides files: a transcript as segments, SRT, WebVTT or timed text
(from AssemblyAI's documented response kept in the store: no provider is asked), and a version's
settings as a manifest that the real kubectl applies as it is (a server-side dry run against the
real kube-apiserver, which runs the CRDs' schema and CEL rules). Every status answered is in the
OpenAPI document (the `client` fixture checks)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml

from contentgen.api.manifests import Document
from contentgen.api.validation import validate_document
from contentgen.store import LocalStore
from tests import apiserver
from tests.httpapi.conftest import auth
from tests.kubectl import Kubectl
from tests.providers.fake_assemblyai import COMPLETED_TRANSCRIPT

TRANSCRIPT_KEY = "transcripts/alice/a-tr-1/v1/transcript.json"


@pytest.mark.asyncio
async def test_a_transcript_as_subtitles_and_segments(client: httpx.AsyncClient, store: LocalStore) -> None:
    store.put_bytes(TRANSCRIPT_KEY, json.dumps(COMPLETED_TRANSCRIPT).encode(), "application/json")
    srt = await client.get("/api/assets/a-tr-1/transcript?format=srt", headers=auth("alice"))
    assert srt.status_code == 200 and srt.headers["content-type"].startswith("application/x-subrip")
    assert srt.text == (
        "1\n00:00:00,000 --> 00:00:01,000\nSpeaker A: Hello there.\n\n"
        "2\n00:00:01,200 --> 00:00:02,200\nSpeaker B: Hi, how are you?\n"
    )
    vtt = await client.get(
        "/api/assets/a-tr-1/transcript", params={"format": "vtt", "download": "true"}, headers=auth("alice")
    )
    assert vtt.text.startswith("WEBVTT\n") and "<v Speaker B>Hi, how are you?" in vtt.text
    assert 'attachment; filename="' in vtt.headers["content-disposition"]
    assert vtt.headers["content-disposition"].endswith('-v1.vtt"')
    segments = (await client.get("/api/assets/a-tr-1/transcript", headers=auth("alice"))).json()
    assert segments["speakers"] == ["A", "B"] and segments["timed"] and not segments["placeholder"]
    assert [(s["start"], s["speaker"], s["text"]) for s in segments["segments"]] == [
        (0.0, "A", "Hello there."),
        (1.2, "B", "Hi, how are you?"),
    ]
    # Another owner's: not found, like a missing one. Not a transcription; no such version; a run
    # that made nothing; a transcript gone from the store.
    assert (await client.get("/api/assets/a-tr-1/transcript", headers=auth("bob"))).status_code == 404
    lora = await client.get("/api/assets/a-lora-1/transcript", headers=auth("alice"))
    assert lora.status_code == 409 and "is a LoraTraining, not a Transcription" in lora.text
    seven = await client.get("/api/assets/a-tr-1/transcript?version=7", headers=auth("alice"))
    assert seven.status_code == 404 and "usable versions: v1" in seven.text
    nothing = await client.get("/api/assets/a-tr-fail/transcript", headers=auth("alice"))
    assert nothing.status_code == 409 and "no transcript yet (latest run Failed)" in nothing.text
    bad = await client.get("/api/assets/a-tr-1/transcript?format=docx", headers=auth("alice"))
    assert bad.status_code == 400 and "format" in bad.text
    store.delete(TRANSCRIPT_KEY)
    gone = await client.get("/api/assets/a-tr-1/transcript?format=srt", headers=auth("alice"))
    assert gone.status_code == 404 and "missing from the store" in gone.text


@pytest.mark.asyncio
async def test_a_version_as_a_manifest_kubectl_applies(client: httpx.AsyncClient, tmp_path: Path) -> None:
    from tests.harness.kubeapi import apply_crds

    got = await client.get("/api/assets/a-img-1/manifest", headers=auth("alice"))
    assert got.status_code == 200 and got.headers["content-type"].startswith("application/yaml")
    manifest = yaml.safe_load(got.text)
    assert got.text.startswith("# version 1 of default/")
    assert (manifest["kind"], manifest["spec"]["owner"], manifest["spec"]["prompt"]) == (
        "ImageGeneration",
        "alice",
        "jesse in a suit",
    )
    assert not validate_document(Document("m", 1, manifest)).problems
    fresh = yaml.safe_load(
        (await client.get("/api/assets/a-img-1/manifest?fresh=true&seed=42", headers=auth("alice"))).text
    )
    assert fresh["metadata"]["name"] != manifest["metadata"]["name"] and fresh["spec"]["seed"] == 42
    # The real kubectl and kube-apiserver take it as it is (schema, defaults and CEL rules).
    apply_crds()
    kubectl = Kubectl(apiserver.admin_kubeconfig(), tmp_path / "home")
    for doc in (manifest, fresh):
        # As it is: in its own namespace (the record's, default), no -n.
        applied = kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(doc))
        assert "(server dry run)" in applied.stdout, applied.stderr
    # A LoRA has no seed; a version that never existed; another owner's record.
    seedless = await client.get("/api/assets/a-lora-1/manifest?seed=1", headers=auth("alice"))
    assert seedless.status_code == 409 and "has no seed" in seedless.text
    nine = await client.get("/api/assets/a-img-1/manifest?version=9", headers=auth("alice"))
    assert nine.status_code == 404
    assert (await client.get("/api/assets/a-img-1/manifest", headers=auth("bob"))).status_code == 404
