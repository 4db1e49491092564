"""The chart's input policies (templates/input-policy.yaml, generated from api/inputs.py by
controller/input_policy.py), evaluated by the real kube-apiserver with their grants written by
the operator's own mirror (controller/shares.py), met through the real kubectl's server-side dry
run, against the Python rule the operator, the HTTP API and the worker hold (store/access.py):
for every address in the table (an s3:// key, the store's endpoint path-style and virtual-hosted,
its public endpoint, AWS's names, another name of the endpoint, a presigned link, escapes, keys
outside the prefix or of the store's own state, uploads, shares for use and for read), in every
kind's input fields, the API server admits exactly what Python admits and refuses in exactly
Python's words."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from contentgen.api import KINDS
from contentgen.api.inputs import SpecInput, inputs
from contentgen.api.sharing import parse_annotation
from contentgen.controller.kube import Kube
from contentgen.controller.shares import ShareMirror
from contentgen.store.access import StorePlace, crossings, first_refusal
from tests import apiserver
from tests.chart.conftest import render
from tests.kubectl import Kubectl

LABEL = "contentgen.test/input-policy"
TAG = "inputs"
BUCKET, PREFIX = "contentgen-store", "pre"
ENDPOINT, PUBLIC = "http://store.internal:9000", "https://files.example.com"
PLACE = StorePlace.of(f"s3://{BUCKET}/{PREFIX}", ENDPOINT, PUBLIC)
GRANTS = {
    "uid-lora": "owner:bob=use",
    "uid-pics": "owner:bob=read,owner:carol=use",
    "uid-none": "group:x=read",
}
A_LORA = f"{PREFIX}/loras/alice/uid-lora/v1/model.safetensors"
SCHEMA = "refused by the CRD's schema"
API = "contentgen.io/v1alpha1"
SIGNED = "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x&X-Amz-Signature=abc"

# (kind, field of the spec, address) -> what bob's resource naming it gets
ADDRESSES = [
    f"s3://{BUCKET}/{A_LORA}",  # alice's LoRA, shared with bob for use
    f"s3://{BUCKET}/{PREFIX}/loras/alice/uid-none/v1/model.safetensors",  # not shared with bob
    f"s3://{BUCKET}/{PREFIX}/loras/alice/uid-lora/v1/checkpoints/step-000500.safetensors",
    f"s3://{BUCKET}/{PREFIX}/loras/alice/uid-lora/v1/likeness-grid.jpg",  # a file of it: read
    f"s3://{BUCKET}/{PREFIX}/datasets/alice/uid-lora/v1/dataset.zip",
    f"s3://{BUCKET}/{PREFIX}/generated-images/alice/uid-pics/v2/image_1.png",  # shared for read
    f"s3://{BUCKET}/{PREFIX}/generated-videos/alice/uid-none/v1/video.mp4",
    f"s3://{BUCKET}/{PREFIX}/transcripts/alice/uid-none/v1/transcript.json",
    f"s3://{BUCKET}/{PREFIX}/uploads/alice/0123abcd/clip.mp4",
    f"s3://{BUCKET}/{PREFIX}/uploads/bob/0123abcd/clip.mp4",  # his own upload
    f"s3://{BUCKET}/{PREFIX}/generated-images/bob/uid-mine/v1/image_1.png",  # his own output
    f"s3://{BUCKET}/{PREFIX}/temp/uid-none/checkpoints/lora.json",  # the store's own state
    f"s3://{BUCKET}/{PREFIX}/likeness/baselines/fal/flux-dev/portrait/seed-1-00.png",
    f"s3://{BUCKET}/elsewhere/loras/alice/uid-none/v1/model.safetensors",  # outside the prefix
    f"s3://{BUCKET.upper()}/{A_LORA}",
    f"s3://{BUCKET}/{PREFIX}/loras/bob/../alice/uid-none/v1/model.safetensors",
    f"s3://{BUCKET}/{PREFIX}/loras/alice/uid-none/v1/model.safetensors?versionId=1",
    f"s3://other-bucket/{PREFIX}/loras/alice/uid-none/v1/model.safetensors",  # not the store
    f"{ENDPOINT}/{BUCKET}/{PREFIX}/loras/alice/uid-none/v1/model.safetensors{SIGNED}",
    f"{PUBLIC}/{BUCKET}/{PREFIX}/generated-videos/alice/uid-none/v1/video.mp4{SIGNED}",
    f"https://{BUCKET}.files.example.com/{PREFIX}/loras/alice/uid-none/v1/model.safetensors",
    f"https://{BUCKET}.s3.eu-west-1.amazonaws.com/{PREFIX}/loras/alice/uid-none/v1/model.safetensors",
    f"https://s3.amazonaws.com/{BUCKET}/{PREFIX}/generated-images/alice/uid-pics/v2/image_1.png",
    f"http://10.0.0.7:9000/{BUCKET}/{PREFIX}/loras/alice/uid-none/v1/model.safetensors",  # an alias
    f"{ENDPOINT}/{BUCKET}/{PREFIX}/loras%2Falice%2Fuid-none%2Fv1%2Fmodel.safetensors",
    f"https://{BUCKET}.files.example.com/{PREFIX}/loras/alice/uid-none/v1/m%6Fdel.safetensors",
    "https://example.com/videos/talk.mp4",
    f"https://example.com/{BUCKET}-mirror/loras/alice/uid-none/v1/model.safetensors",
]


def spec_for(kind: str, address: str) -> tuple[dict[str, Any], str]:
    """A spec of bob's naming `address` in one of `kind`'s input fields (the fourth reference
    photo: a list's item other than the first)."""
    base: dict[str, Any] = {"owner": "bob", "provider": "offline"}
    if kind == "LoraTraining":
        photos = ["https://example.com/a.jpg"] * 3 + [address]
        return {
            **base,
            "triggerWord": "tw",
            "source": {"url": "https://example.com/talk.mp4"},
            "dataset": {"subject": {"referenceImages": photos}},
        }, "spec.dataset.subject.referenceImages[3]"
    if kind == "ImageGeneration":
        loras = [{"url": "https://example.com/a.safetensors"}, {"url": address, "scale": 0.5}]
        return {**base, "prompt": "a lighthouse", "model": "flux-lora", "loras": loras}, "spec.loras[1].url"
    if kind == "VideoGeneration":
        spec = {**base, "prompt": "waves", "model": "wan-2.2-i2v", "image": {"url": address}}
        return spec, "spec.image.url"
    return {**base, "source": {"url": address}}, "spec.source.url"


def python_answer(kind: str, spec: dict[str, Any]) -> str:
    """What store/access.py says of `spec` (the operator's, the HTTP API's and the worker's rule)."""

    def grants(uid: str) -> Any:
        return parse_annotation(GRANTS.get(uid))[0]

    refused = first_refusal(crossings(inputs(KINDS[kind].spec, spec), "bob", PLACE, grants))
    return refused.refusal if refused is not None else ""


@pytest.fixture(scope="module")
def release() -> dict[str, str]:
    from tests.harness.kubeapi import apply_crds

    apply_crds()
    home = apiserver.fresh_namespace("release")
    values = {
        "sharePolicy": {"namespaceSelector": {LABEL: TAG}},
        "store": {"url": f"s3://{BUCKET}/{PREFIX}", "endpointUrl": ENDPOINT, "publicEndpointUrl": PUBLIC},
    }
    docs = render(values)
    shares = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-shares"))
    policies = [d for d in docs if d["metadata"]["name"].startswith("contentgen-shares-inputs-")]
    plurals = sorted(k.plural for k in KINDS.values() if inputs_of(k.kind))
    assert sorted(d["metadata"]["name"].rsplit("-", 1)[1] for d in policies) == sorted(plurals * 2)
    name = f"contentgen-shares-{TAG}"
    shares["metadata"].update(name=name, namespace=home)
    apiserver.admin().apply(shares)
    for doc in policies:
        doc["metadata"]["name"] = doc["metadata"]["name"].replace("contentgen-shares", name)
        if doc["kind"] == "ValidatingAdmissionPolicyBinding":
            doc["spec"]["policyName"] = doc["metadata"]["name"]
            doc["spec"]["paramRef"].update(name=name, namespace=home)
        apiserver.admin().apply(doc)
    mirror(home, name)
    return {"namespace": home, "configmap": name}


def inputs_of(kind: str) -> bool:
    from contentgen.api.inputs import declared

    return bool(declared(KINDS[kind].spec))


def mirror(namespace: str, name: str) -> None:
    """The operator's mirror writes the grants by uid, as its leader does."""

    async def go() -> None:
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(apiserver.admin_kubeconfig()), client_configuration=config
        )
        kube = Kube(config)
        try:
            by_uid = [(uid, parse_annotation(value)[0]) for uid, value in GRANTS.items()]
            await ShareMirror(kube, namespace, name, lambda: [], lambda: by_uid).sync()
        finally:
            await kube.close()

    asyncio.run(go())


@pytest.fixture
def kubectl(tmp_path: Path) -> Kubectl:
    return Kubectl(apiserver.admin_kubeconfig(), tmp_path / "home")


def refusals(k: Kubectl, ns: str, kind: str, specs: list[dict[str, Any]]) -> dict[str, str]:
    """One server-side dry run of every spec (named r0, r1, ...): the refusal of each refused one
    (SCHEMA where the CRD's schema refuses it first: an http:// LoRA, an upper-case bucket)."""
    manifest = yaml.safe_dump_all(
        [
            {"apiVersion": API, "kind": kind, "metadata": {"name": f"r{n}"}, "spec": spec}
            for n, spec in enumerate(specs)
        ]
    )
    done = k.run("apply", "-n", ns, "--dry-run=server", "-f", "-", stdin=manifest, check=False)
    found = {}
    for line in done.stderr.splitlines():
        match = re.search(r'"(r\d+)" is (forbidden|invalid): (.*)$', line)
        if match:
            found[match.group(1)] = match.group(3) if match.group(2) == "forbidden" else SCHEMA
    assert len(found) + done.stdout.count("(server dry run)") == len(specs), done.stderr
    return found


def test_admission_answers_every_address_as_the_operator_and_the_worker_do(
    release: dict[str, str], kubectl: Kubectl
) -> None:
    ns = apiserver.fresh_namespace("inputs")
    apiserver.admin().patch(f"/api/v1/namespaces/{ns}", {"metadata": {"labels": {LABEL: TAG}}})
    probe, _ = spec_for("Transcription", ADDRESSES[1])
    deadline = time.monotonic() + 30
    while not refusals(kubectl, ns, "Transcription", [probe]):  # the policies load in the background
        assert time.monotonic() < deadline, "the input policies were not in force in time"
        time.sleep(0.2)
    kinds = sorted(k.kind for k in KINDS.values() if inputs_of(k.kind))
    refused = admitted = 0
    for kind in kinds:
        specs = [spec_for(kind, address) for address in ADDRESSES]
        answers = refusals(kubectl, ns, kind, [spec for spec, _ in specs])
        for n, ((spec, field), address) in enumerate(zip(specs, ADDRESSES, strict=True)):
            expected, message = python_answer(kind, spec), answers.get(f"r{n}", "")
            said = f"{kind} {field} = {address}"
            if message == SCHEMA:
                continue
            if not expected:
                admitted += 1
                assert not message, f"{said}: refused by admission, admitted by Python: {message}"
                continue
            refused += 1
            assert expected.startswith(f"{field}: "), said
            assert message.endswith(f"denied request: {expected}"), f"{said}\n{message}\n{expected}"
    assert (refused, admitted) == (71, 34), "the table has both, for every kind"


def test_an_address_with_no_host_python_can_read_is_not_the_stores() -> None:
    """`http://[...` (urlparse: "Invalid IPv6 URL") names nothing to fetch, the store's or another
    owner's: the create goes on to the fetch's own refusal, never a 500 (found by schemathesis)."""
    from contentgen.store.access import located

    for url in ("http://[", "https://[::1/x", f"http://[{BUCKET}]/{A_LORA}"):
        assert located(url, PLACE) is None
        named = SpecInput("spec.source.url", url, "read")
        assert crossings([named], "bob", PLACE, lambda uid: parse_annotation(GRANTS.get(uid, ""))[0]) == []
