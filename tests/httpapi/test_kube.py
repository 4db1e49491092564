"""The HTTP API against the real kube-apiserver (tests/apiserver.py), as the chart installs it: its
ServiceAccount with exactly the chart's RBAC (create, get, delete on the four kinds; patch on
loratrainings; create on tokenreviews with auth kubernetes), its token from TokenRequest. Creates,
idempotent repeats, conflicts, admission's and the owner policy's refusals, cancel and delete, a LoRA
version's evaluation again (a LoraEvaluation) and a checkpoint's promotion (the LoraTraining's
annotation) go through the real API server; Kubernetes bearer tokens are
checked with the real TokenReview. Every call the API made is read back from the server's audit
log: none was denied where the chart grants it, and they are recorded for the chart's
least-privilege test (tests/chart/test_rbac.py)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import mongomock
import pytest
import yaml

from contentgen.api import now
from contentgen.catalog import Catalog, ResourceState, catalog_document
from contentgen.catalog.mongo import MongoCatalog
from contentgen.httpapi import ApiSettings, create_app
from contentgen.httpapi.kube import KubeUnavailable, in_a_pod, load
from contentgen.store import LocalStore
from localcluster import kubeconfig
from tests import apiserver
from tests.catalog.factory import lora_doc
from tests.chart.conftest import render
from tests.harness.kubeapi import RELEASE_NAMESPACE, apply_crds, service_token
from tests.httpapi.conftest import ALICE_IDS, TOKENS, auth, fill
from tests.httpapi.documented import Answers
from tests.rbac.record import audit_decisions, record_decisions
from tests.waiting import wait_for

POLICY_LABEL = "contentgen.test/owner-policy"


@dataclass
class Setup:
    kubeconfig: Path  # the API's ServiceAccount
    namespace: str  # where its creates go
    other: str  # a namespace it may not create in (namespaced install)


def _namespace(name: str, **annotations: str) -> None:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    if annotations:
        body["metadata"]["annotations"] = annotations
    apiserver.admin().apply(body)


def _api_objects(values: dict[str, Any], account_namespace: str) -> list[dict[str, Any]]:
    """The chart's API ServiceAccount, Roles and bindings, for an account in `account_namespace`."""
    docs = [
        d
        for d in render(values)
        if d["kind"] in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
        and d["metadata"]["name"].startswith("contentgen-api")
    ]
    for doc in docs:
        if doc["kind"] == "ServiceAccount":
            doc["metadata"]["namespace"] = account_namespace
        for subject in doc.get("subjects") or []:
            subject["namespace"] = account_namespace
        if doc["kind"].startswith("Cluster") and account_namespace != RELEASE_NAMESPACE:
            doc["metadata"]["name"] += f"-{account_namespace}"
            if doc["kind"] == "ClusterRoleBinding":
                doc["roleRef"]["name"] += f"-{account_namespace}"
    return docs


def _install(values: dict[str, Any], account_namespace: str, tmp: Path) -> Path:
    _namespace(account_namespace)
    for doc in _api_objects(values, account_namespace):
        apiserver.admin().apply(doc)
    token = service_token(account_namespace, "contentgen-api")
    url, ca = apiserver.server()
    return kubeconfig.write(
        tmp / f"{account_namespace}.kubeconfig", server=url, ca_pem=ca.encode(), user="api", token=token
    )


CLUSTER_WIDE = {
    "api": {"enabled": True, "auth": ["tokens", "kubernetes"], "tokensSecret": {"name": "t"}},
    "mongodb": {"existingSecret": "m"},
}


@pytest.fixture(scope="module")
def cluster_wide(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("kube-api")
    apply_crds()
    namespace = apiserver.fresh_namespace("api-create")
    config = _install(CLUSTER_WIDE, RELEASE_NAMESPACE, tmp)
    yield Setup(config, namespace, "")
    _check_audit(f"system:serviceaccount:{RELEASE_NAMESPACE}:contentgen-api", "cluster-wide")


def _check_audit(user: str, mode: str, denied_on_purpose: str = "") -> None:
    decisions = [
        d
        for d in audit_decisions(apiserver.audit_log())
        if d.user == user and not (denied_on_purpose and d.namespace == denied_on_purpose)
    ]
    assert {(d.verb, d.resource) for d in decisions} >= {
        ("create", "imagegenerations"),
        ("delete", "imagegenerations"),
    }
    record_decisions(decisions, mode)


def _app(setup: Setup, catalog: Catalog, store: LocalStore, tmp: Path, **settings: Any) -> Any:
    tokens = tmp / "tokens.yaml"
    tokens.write_text(
        yaml.safe_dump({"tokens": [{"owner": o, "token": t} for o, t in TOKENS.items() if o != "ops"]})
    )
    values = {
        "catalog": "unused://",
        "store": str(store.root),
        "api_tokens_file": tokens,
        "api_auth": ["tokens", "kubernetes"],
        "api_kubeconfig": setup.kubeconfig,
        "api_create": "kubernetes",
        "api_default_namespace": setup.namespace,
        **settings,
    }
    answers = Answers(create_app(ApiSettings(**values), catalog=catalog, store=lambda: store))
    _answered.append(answers)
    return answers


_answered: list[Answers] = []


@pytest.fixture(autouse=True)
def _documented() -> Iterator[None]:
    """Every status the API answered in a test is one its OpenAPI document lists for the route."""
    _answered.clear()
    yield
    for answers in _answered:
        assert answers.undocumented() == []


def _image(name: str | None, prompt: str = "a lighthouse", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "ImageGeneration",
        "spec": {"prompt": prompt, "provider": "offline", **spec},
    }
    if name:
        body["metadata"] = {"name": name}
    return body


def _resource(namespace: str, name: str, plural: str = "imagegenerations") -> dict[str, Any] | None:
    found: dict[str, Any] | None = apiserver.admin().get_or_none(
        f"/apis/contentgen.io/v1alpha1/namespaces/{namespace}/{plural}/{name}"
    )
    return found


@pytest.fixture
def catalog() -> Catalog:
    return MongoCatalog(mongomock.MongoClient(), "contentgen")


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "store")


def test_creates_go_through_the_kubernetes_api(
    cluster_wide: Setup, catalog: Catalog, store: LocalStore, tmp_path: Path
) -> None:
    ns = cluster_wide.namespace
    app = _app(cluster_wide, catalog, store, tmp_path)
    transport = httpx.ASGITransport(app=app)

    async def run() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            made = await http.post("/api/resources", json=_image("fox"), headers=auth("alice"))
            assert made.status_code == 201, made.text
            body = made.json()
            assert (body["kind"], body["name"], body["namespace"], body["owner"], body["created"]) == (
                "ImageGeneration", "fox", ns, "alice", True,
            )  # fmt: skip
            stored = _resource(ns, "fox")
            assert stored is not None and stored["metadata"]["uid"] == body["jobId"]
            assert (
                stored["spec"]["owner"] == "alice" and stored["spec"]["numImages"] == 1
            )  # defaulted by the CRD
            assert stored["metadata"]["annotations"]["contentgen.io/created-by"] == "alice"
            # The same again: the one that exists, not a second one.
            again = await http.post("/api/resources", json=_image("fox"), headers=auth("alice"))
            assert (
                again.status_code == 200
                and again.json()["jobId"] == body["jobId"]
                and not again.json()["created"]
            )
            # The same name with other settings: a conflict naming what differs.
            other = await http.post("/api/resources", json=_image("fox", "a harbour"), headers=auth("alice"))
            assert other.status_code == 409 and "spec.prompt differ" in other.json()["error"]["message"]
            # bob may not take alice's name, nor learn her settings.
            taken = await http.post("/api/resources", json=_image("fox"), headers=auth("bob"))
            assert taken.status_code == 409 and "prompt" not in taken.json()["error"]["message"]
            # Invalid: validate's messages, naming the fields.
            bad = await http.post(
                "/api/resources", json=_image("bad", imageSize="huge", videoUrl="x"), headers=auth("alice")
            )
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid"
            fields = {f["field"]: f["message"] for f in bad.json()["error"]["fields"]}
            assert set(fields) == {"spec.imageSize", "spec.videoUrl"}
            assert fields["spec.imageSize"].startswith("must be one of square_hd, square")
            assert "use source.url (the predecessor's name for it)" in fields["spec.videoUrl"]
            many = await http.post(
                "/api/resources", json=_image("bad", provider="fal", numImages=6), headers=auth("alice")
            )
            (problem,) = many.json()["error"]["fields"]
            assert problem["field"] == "spec.numImages"
            assert "fal's apps make at most 4 images per request" in problem["message"]
            assert _resource(ns, "bad") is None
            # Another owner than one the caller acts for.
            bob = await http.post("/api/resources", json=_image("b", owner="bob"), headers=auth("alice"))
            assert bob.status_code == 403 and "alice acts for alice, not for 'bob'" in bob.text
            # A namespace that does not exist.
            away = await http.post(
                "/api/resources", json={**_image("x"), "metadata": {"name": "x", "namespace": "nowhere"}},
                headers=auth("alice"),
            )  # fmt: skip
            assert away.status_code == 404 and "no namespace 'nowhere'" in away.text
            # The seeds' routes.
            seed = await http.post(
                "/api/images/generate",
                json={
                    "model": "flux-dev",
                    "inputs": {"prompt": "a fox", "num_images": 2, "seed": 7},
                    "provider": "offline",
                },
                headers=auth("alice"),
            )
            assert seed.status_code == 201, seed.text
            spec = _resource(ns, seed.json()["name"])["spec"]  # type: ignore[index]
            assert (spec["prompt"], spec["numImages"], spec["seed"], spec["model"]) == (
                "a fox",
                2,
                7,
                "flux-dev",
            )
            lora = await http.post(
                "/api/lora/train",
                json={"videoUrl": "https://example.com/v.mp4", "loraName": "jesse_avatar", "trigger": "jx",
                      "steps": 200, "learning_rate": 0.0004, "metadata": {"tags": ["avatar"]}},
                headers=auth("alice"),
            )  # fmt: skip
            assert lora.status_code == 201 and lora.json()["name"] == "jesse-avatar", lora.text
            trained = _resource(ns, "jesse-avatar", "loratrainings")
            assert trained is not None and trained["spec"]["training"] == {
                "steps": 200,
                "learningRate": 0.0004,
                "model": "fal-ai/flux-lora-fast-training",
                # the defaults the API models add (the cluster trainer's; fal ignores them)
                "baseModel": "flux.1",
                "rank": 16,
                "resolution": 512,
                "checkpointEvery": 250,
                "optimizer": "adamw",
                "memoryPlan": "auto",
                "loraTargets": "attention+feedforward",
                "guidance": 1,
                "timestepSampling": "shift",
                "maxGradNorm": 1,
            }
            heard = await http.post(
                "/api/transcribe", json={"audioUrl": "https://example.com/a.mp3", "speaker_labels": True},
                headers=auth("alice"),
            )  # fmt: skip
            assert (
                heard.status_code == 201 and _resource(ns, heard.json()["name"], "transcriptions") is not None
            )
            # The seeds' routes are idempotent by name too; their resources are deleted like any.
            for route, made_before, plural in (
                ("/api/lora/train", lora, "loratrainings"),
                ("/api/transcribe", heard, "transcriptions"),
            ):
                name = made_before.json()["name"]
                repeat = dict(made_before.json()["manifest"]["spec"])
                if plural == "loratrainings":
                    payload = {
                        "videoUrl": repeat["source"]["url"], "loraName": name, "trigger": "jx", "steps": 200,
                        "learning_rate": 0.0004, "metadata": {"tags": ["avatar"]},
                    }  # fmt: skip
                else:
                    payload = {"audioUrl": repeat["source"]["url"], "speaker_labels": True, "name": name}
                same = await http.post(route, json=payload, headers=auth("alice"))
                assert same.status_code == 200 and same.json()["jobId"] == made_before.json()["jobId"], (
                    same.text
                )
                live = _resource(ns, name, plural)
                assert live is not None
                catalog.upsert(_record(live))
                deleted = await http.delete(f"/api/jobs/{live['metadata']['uid']}", headers=auth("alice"))
                assert (
                    deleted.status_code == 202
                    and "its outputs are kept (Retain)" in deleted.json()["message"]
                )
                assert _resource(ns, name, plural) is None
            # Cancel and delete act on the record's resource, by its uid.
            catalog.upsert(_record(stored))
            cancelled = await http.post(f"/api/jobs/{body['jobId']}/cancel", headers=auth("alice"))
            assert cancelled.status_code == 202 and "deleted ImageGeneration" in cancelled.json()["message"]
            assert _resource(ns, "fox") is None
            recreated = await http.post("/api/resources", json=_image("fox"), headers=auth("alice"))
            assert recreated.status_code == 201 and recreated.json()["jobId"] != body["jobId"]
            stale = await http.delete(f"/api/jobs/{body['jobId']}", headers=auth("alice"))
            assert stale.status_code == 404 and "gone already" in stale.text  # the new fox stays
            assert _resource(ns, "fox") is not None
            # Another owner's record is not found, exactly like a missing one.
            assert (await http.delete(f"/api/jobs/{body['jobId']}", headers=auth("bob"))).status_code == 404

    import asyncio

    asyncio.run(run())


def _record(obj: dict[str, Any]) -> dict[str, Any]:
    """The catalog record the operator would write for a resource it has just seen."""
    meta = obj["metadata"]
    state = ResourceState(
        kind=obj["kind"], name=meta["name"], namespace=meta["namespace"], uid=meta["uid"], generation=1,
        spec=obj["spec"], status={"phase": "Pending"}, created_at=now(),
    )  # fmt: skip
    return catalog_document(state, now=now(), origin="operator")


def test_the_owner_policy_refuses_and_the_api_says_why(
    cluster_wide: Setup, catalog: Catalog, store: LocalStore, tmp_path: Path
) -> None:
    """With the chart's ValidatingAdmissionPolicy in the cluster, a create in a namespace that does
    not allow the owner is refused by the API server, and the API passes its message on."""
    ns = apiserver.fresh_namespace("owners-bob")
    admin = apiserver.admin()
    admin.patch(
        f"/api/v1/namespaces/{ns}",
        {"metadata": {"labels": {POLICY_LABEL: "api"}, "annotations": {"contentgen.io/owners": "bob"}}},
    )
    _policy("api")
    _wait_policy(ns, "alice")
    app = _app(cluster_wide, catalog, store, tmp_path, api_default_namespace=ns)

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            refused = await http.post("/api/resources", json=_image("lh"), headers=auth("alice"))
            assert refused.status_code == 403, refused.text
            message = refused.json()["error"]["message"]
            assert "spec.owner: owner alice is not allowed in namespace" in message
            assert "its annotation contentgen.io/owners allows bob" in message
            allowed = await http.post("/api/resources", json=_image("lh"), headers=auth("bob"))
            assert allowed.status_code == 201, allowed.text

    import asyncio

    asyncio.run(run())


def _policy(label: str) -> None:
    docs = [
        d
        for d in render({"ownerPolicy": {"namespaceSelector": {POLICY_LABEL: label}}})
        if "Admission" in d["kind"]
    ]
    for doc in docs:
        doc["metadata"]["name"] += f"-{label}"
        if doc["kind"] == "ValidatingAdmissionPolicyBinding":
            doc["spec"]["policyName"] += f"-{label}"
        apiserver.admin().apply(doc)


def _wait_policy(namespace: str, refused_owner: str, timeout: float = 30) -> None:
    """The API server loads a new policy in the background: wait until a dry run is refused."""
    body = {"apiVersion": "contentgen.io/v1alpha1", "kind": "ImageGeneration",
            "metadata": {"name": "probe"}, "spec": {"owner": refused_owner, "prompt": "p"}}  # fmt: skip
    path = f"/apis/contentgen.io/v1alpha1/namespaces/{namespace}/imagegenerations?dryRun=All"
    deadline = time.monotonic() + timeout
    while True:
        try:
            apiserver.admin().create(path, body)
        except apiserver.ApiError as exc:
            if exc.code == 403:
                return
            raise
        assert time.monotonic() < deadline, "the owner policy was not in force in time"
        time.sleep(0.2)


# --- Kubernetes tokens ------------------------------------------------------------------------------


def test_a_kubernetes_token_is_reviewed_and_sees_only_its_owners(
    cluster_wide: Setup, catalog: Catalog, store: LocalStore, tmp_path: Path
) -> None:
    """Tokens of ServiceAccounts (TokenRequest), checked by the real TokenReview: the account the
    owners file maps to alice sees alice's records only; one mapped to nobody is told so; a token
    the cluster does not know is a 401. Answers are kept a minute, so a page of thumbnails is one
    review."""
    fill(catalog, store)
    team = apiserver.fresh_namespace("team")
    ci, stranger = service_token(team, "alice-ci"), service_token(team, "stranger")
    owners = tmp_path / "owners.yaml"
    owners.write_text(
        yaml.safe_dump({"owners": [{"owner": "alice", "users": [f"system:serviceaccount:{team}:alice-ci"]}]})
    )
    app = _app(cluster_wide, catalog, store, tmp_path, api_owners_file=owners)
    before = len(_reviews())

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            bearer = {"Authorization": f"Bearer {ci}"}
            listed = await http.get("/api/jobs", headers=bearer)
            assert [i["id"] for i in listed.json()["items"]] == ALICE_IDS
            assert (await http.get("/api/jobs/b-lora-1", headers=bearer)).status_code == 404
            assert (await http.get("/api/jobs?owner=bob", headers=bearer)).status_code == 403
            session = (await http.get("/ui/session", headers=bearer)).json()
            assert (
                session["user"] == f"system:serviceaccount:{team}:alice-ci" and session["via"] == "kubernetes"
            )
            assert session["owners"] == ["alice"]
            for _ in range(5):  # reviewed once, then kept
                assert (await http.get("/api/assets/stats", headers=bearer)).status_code == 200
            nobody = await http.get("/api/jobs", headers={"Authorization": f"Bearer {stranger}"})
            assert nobody.status_code == 403 and f"system:serviceaccount:{team}:stranger" in nobody.text
            fake = await http.get("/api/jobs", headers={"Authorization": "Bearer " + ci[:-6] + "AAAAAA"})
            assert fake.status_code == 401 and fake.json()["error"]["message"] == "unknown token"
            # A static token still works beside them.
            assert (await http.get("/api/jobs", headers=auth("bob"))).status_code == 200
            # The web UI's login takes a Kubernetes token too.
            login = await http.post("/ui/session", json={"token": ci})
            assert login.status_code == 200 and login.json()["via"] == "kubernetes"

    import asyncio

    asyncio.run(run())
    reviews = _reviews()[before:]
    assert len(reviews) == 3  # alice-ci (cached after), stranger, the forged token


def _reviews() -> list[Any]:
    return [
        d
        for d in audit_decisions(apiserver.audit_log())
        if d.resource == "tokenreviews"
        and d.user == f"system:serviceaccount:{RELEASE_NAMESPACE}:contentgen-api"
    ]


# --- a LoRA version evaluated again ---------------------------------------------------------------


def evaluable(uid: str, namespace: str, *, dataset: bool = True) -> dict[str, Any]:
    """alice's LoRA jesse-avatar in `namespace`, versions 1 and 2 trained offline, each with its
    dataset archive (where its evaluation takes the subject's faces from), unless not `dataset`."""
    doc = lora_doc(uid, name="jesse-avatar", versions=2)
    doc["namespace"] = namespace
    for version in doc["versions"]:
        if dataset:
            version["datasetUri"] = f"s3://bkt/datasets/alice/{uid}/v{version['version']}/dataset.zip"
    return doc


def _evaluations(namespace: str) -> dict[str, dict[str, Any]]:
    found = apiserver.admin().get(f"/apis/contentgen.io/v1alpha1/namespaces/{namespace}/loraevaluations")
    return {item["metadata"]["name"]: item for item in found["items"]}


def test_a_lora_version_is_evaluated_again_as_a_loraevaluation(
    cluster_wide: Setup, catalog: Catalog, store: LocalStore, tmp_path: Path
) -> None:
    """In a cluster, ?confirm=true creates a LoraEvaluation (as the API's ServiceAccount, admitted
    by the real API server) pinning the version, in the LoRA's namespace, and answers 202 naming it;
    the same name and settings again answer with the one that exists; nothing runs in the API."""
    ns = apiserver.fresh_namespace("evaluate")
    catalog.upsert(evaluable("a-lora-ev", ns))
    catalog.upsert(evaluable("a-lora-old", ns, dataset=False) | {"name": "old-avatar"})
    app = _app(cluster_wide, catalog, store, tmp_path)
    path = "/api/assets/a-lora-ev/versions/2/evaluate"

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            dry = await http.post(path, json={"seeds": [5]}, headers=auth("alice"))
            assert dry.status_code == 200 and dry.json()["dryRun"], dry.text
            assert (dry.json()["provider"], dry.json()["estimateUsd"]) == ("offline", 0)  # the version's
            assert _evaluations(ns) == {}
            made = await http.post(f"{path}?confirm=true", json={"seeds": [5], "name": "jesse-again"},
                                   headers=auth("alice"))  # fmt: skip
            assert made.status_code == 202, made.text
            body = made.json()
            assert not body["dryRun"] and body["version"] == 2 and body["evaluation"] == 0
            resource = body["resource"]
            assert (resource["kind"], resource["name"], resource["namespace"], resource["created"]) == (
                "LoraEvaluation", "jesse-again", ns, True,
            )  # fmt: skip
            live = _evaluations(ns)["jesse-again"]
            assert live["metadata"]["uid"] == resource["jobId"]
            assert live["spec"]["loraRef"] == {"name": "jesse-avatar", "version": 2}
            assert live["spec"]["evaluation"] == {"promptSet": "likeness-v1", "seeds": [5]}
            assert live["spec"]["owner"] == "alice" and "provider" not in live["spec"]  # the version's
            assert live["metadata"]["annotations"]["contentgen.io/created-by"] == "alice"
            # the same again: the one that exists (nothing paid twice); other settings: a conflict
            again = await http.post(f"{path}?confirm=true", json={"seeds": [5], "name": "jesse-again"},
                                    headers=auth("alice"))  # fmt: skip
            assert again.status_code == 200 and again.json()["resource"]["created"] is False
            assert again.json()["resource"]["jobId"] == resource["jobId"]
            other = await http.post(f"{path}?confirm=true", json={"seeds": [6], "name": "jesse-again"},
                                    headers=auth("alice"))  # fmt: skip
            assert other.status_code == 409 and "spec.evaluation differ" in other.json()["error"]["message"]
            # a provider asked for is the spec's; unnamed, a fresh name
            fal = await http.post(f"{path}?confirm=true", json={"provider": "fal"}, headers=auth("alice"))
            assert fal.status_code == 202, fal.text
            named = fal.json()["resource"]["name"]
            assert (
                named.startswith("jesse-avatar-v2-") and _evaluations(ns)[named]["spec"]["provider"] == "fal"
            )
            # what cannot be evaluated, or is not the caller's, is refused before anything is made
            old = await http.post("/api/assets/a-lora-old/versions/1/evaluate?confirm=true",
                                  headers=auth("alice"))  # fmt: skip
            assert old.status_code == 404 and "v1 of a-lora-old names no dataset archive" in old.text
            theirs = await http.post(f"{path}?confirm=true", headers=auth("bob"))
            assert theirs.status_code == 404
            assert set(_evaluations(ns)) == {"jesse-again", named}
            # its record (the operator writes it) deletes the resource, as any
            catalog.upsert(_record(live))
            gone = await http.delete(f"/api/jobs/{resource['jobId']}", headers=auth("alice"))
            assert gone.status_code == 202 and "deleted LoraEvaluation" in gone.json()["message"]
            assert set(_evaluations(ns)) == {named}

    import asyncio

    asyncio.run(run())


LORAS = "/apis/contentgen.io/v1alpha1/namespaces/{ns}/loratrainings"
CURVE = (250, 500, 750, 1000)


def _promotable(namespace: str, name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """alice's LoraTraining `name` made in `namespace` (as a person applies it), and its record as
    the operator writes it: version 2 scored checkpoints 250-1000, the automatic choice 750."""
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = annotations
    live: dict[str, Any] = apiserver.admin().create(
        LORAS.format(ns=namespace),
        {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "LoraTraining",
            "metadata": meta,
            "spec": {
                "owner": "alice",
                "provider": "offline",
                "source": {"url": "https://example.com/v.mp4"},
                "triggerWord": "jesse",
            },
        },
    )
    uid = live["metadata"]["uid"]
    doc = lora_doc(uid, name=name, versions=2)
    doc["namespace"] = namespace
    points = [
        {"step": s, "modelUri": f"s3://bkt/loras/alice/{uid}/v2/checkpoints/step-{s:06d}.safetensors",
         "verdict": "good", "median": 0.5, "chosen": s == 750}
        for s in CURVE
    ]  # fmt: skip
    doc["versions"][1]["likeness"] = {
        "verdict": "good",
        "median": 0.5,
        "checkpoints": points,
        "chosenStep": 750,
    }
    return doc


def _annotation(namespace: str, name: str) -> dict[str, Any]:
    from contentgen.api.lora import PROMOTED_ANNOTATION

    found = _resource(namespace, name, "loratrainings")
    assert found is not None
    value = (found["metadata"].get("annotations") or {}).get(PROMOTED_ANNOTATION)
    return json.loads(value) if value else {}


def test_a_checkpoint_is_promoted_by_annotating_the_loratraining(
    cluster_wide: Setup, catalog: Catalog, store: LocalStore, tmp_path: Path
) -> None:
    """In a cluster (issue 36) the route merges the version's entry, naming the caller, the time and
    the note, into the LoraTraining's annotation contentgen.io/promoted-checkpoints through the real
    API server as the API's ServiceAccount (patch on loratrainings: the chart's RBAC, recorded), and
    answers 202; the entries there stay, the spec is untouched, and the operator reads the entry as
    it keeps it in status.versions[].promotion. The refusals are the laptop's, in its words, and
    write nothing; a malformed annotation is a 409 naming the fix; a deleted resource a 404."""
    from contentgen.api.lora import PROMOTED_ANNOTATION, promotions_of

    ns = apiserver.fresh_namespace("promote")
    doc = _promotable(ns, "jesse-avatar", {PROMOTED_ANNOTATION: '{"1": 250}'})
    uid = doc["_id"]
    catalog.upsert(doc)
    app = _app(cluster_wide, catalog, store, tmp_path)
    path = f"/api/assets/{uid}/versions/2/promote"
    before = _resource(ns, "jesse-avatar", "loratrainings")
    assert before is not None

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            asked = await http.post(path, json={"step": 500, "note": "sharper eyes"}, headers=auth("alice"))
            assert asked.status_code == 202, asked.text
            body = asked.json()
            assert (body["id"], body["version"], body["step"], body["by"], body["automaticStep"]) == (
                uid, 2, 500, "alice", 750,
            )  # fmt: skip
            assert body["modelUri"].endswith("/v2/checkpoints/step-000500.safetensors")
            assert body["annotation"] == PROMOTED_ANNOTATION and "\n" not in body["message"]
            assert body["message"].startswith(f"annotated LoraTraining {ns}/jesse-avatar: ")
            entry = {"step": 500, "by": "alice", "at": body["at"], "note": "sharper eyes"}
            assert _annotation(ns, "jesse-avatar") == {"1": 250, "2": entry}  # merged, the other kept
            after = _resource(ns, "jesse-avatar", "loratrainings")
            assert after is not None and after["spec"] == before["spec"]
            assert after["metadata"]["generation"] == before["metadata"]["generation"]
            # what the operator keeps in the status (observe.lora_state and mirror_promotions read it so)
            value = after["metadata"]["annotations"][PROMOTED_ANNOTATION]
            promoted, problem = promotions_of(value, doc["versions"])
            # version 1 was never scored: the entry someone wrote before, kept, and said by the operator
            assert (
                problem
                == f"annotation {PROMOTED_ANNOTATION}: version 1 has no scored checkpoint 250 (scored: none)"
            )
            assert promoted[2].wire() == {
                "step": 500, "modelUri": body["modelUri"], "automaticStep": 750,
                "by": "alice", "at": body["at"], "note": "sharper eyes",
            }  # fmt: skip
            # the refusals a laptop answers, in its words; nothing written
            unscored = await http.post(path, json={"step": 400}, headers=auth("alice"))
            assert unscored.status_code == 400 and unscored.json()["error"]["fields"][0]["field"] == "step"
            assert unscored.json()["error"]["message"] == (
                "step: 400 is not a scored checkpoint of version 2; scored: 250, 500, 750, 1000"
            )
            none = await http.post(f"/api/assets/{uid}/versions/1/promote", json={"step": 250},
                                   headers=auth("alice"))  # fmt: skip
            assert none.status_code == 400 and "version 1 has no scored checkpoints" in none.text
            missing = await http.post(f"/api/assets/{uid}/versions/9/promote", json={"step": 500},
                                      headers=auth("alice"))  # fmt: skip
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "version_not_found"
            theirs = await http.post(path, json={"step": 500}, headers=auth("bob"))
            assert theirs.status_code == 404
            assert _annotation(ns, "jesse-avatar") == {"1": 250, "2": entry}
            # another step for the version replaces its entry; back to the automatic step likewise
            again = await http.post(path, json={"step": 750}, headers=auth("alice"))
            assert again.status_code == 202, again.text
            assert _annotation(ns, "jesse-avatar")["2"]["step"] == 750
            # an annotation that is not JSON is not written over
            apiserver.admin().patch(
                f"{LORAS.format(ns=ns)}/jesse-avatar",
                {"metadata": {"annotations": {PROMOTED_ANNOTATION: "2=500"}}},
            )
            broken = await http.post(path, json={"step": 500}, headers=auth("alice"))
            assert broken.status_code == 409 and broken.json()["error"]["code"] == "conflict", broken.text
            assert f"{PROMOTED_ANNOTATION}-" in broken.json()["error"]["message"]
            # the resource deleted: gone
            apiserver.admin().delete(f"{LORAS.format(ns=ns)}/jesse-avatar")
            wait_for(lambda: _resource(ns, "jesse-avatar", "loratrainings") is None, 30, "deleted")
            gone = await http.post(path, json={"step": 500}, headers=auth("alice"))
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "gone", gone.text

    import asyncio

    asyncio.run(run())


def _verdicts(namespace: str, name: str) -> dict[str, Any]:
    from contentgen.api.lora import VERDICTS_ANNOTATION

    found = _resource(namespace, name, "loratrainings")
    assert found is not None
    value = (found["metadata"].get("annotations") or {}).get(VERDICTS_ANNOTATION)
    return json.loads(value) if value else {}


def test_a_verdict_is_chosen_by_annotating_the_loratraining(
    cluster_wide: Setup, catalog: Catalog, store: LocalStore, tmp_path: Path
) -> None:
    """In a cluster (issue 67) the verdict route merges the version's entry, naming the caller, the
    time and the note, into the LoraTraining's annotation contentgen.io/verdicts through the real API
    server as the API's ServiceAccount (patch on loratrainings: the chart's RBAC, recorded), and
    answers 202; the other entries stay and the spec is untouched. The operator's decision on the
    annotated resource puts the choice and what it cannot follow in the status, which the real API
    server keeps as written (the CRD's schema has them). The refusals are the laptop's, in its words,
    and write nothing; a malformed annotation is a 409 naming the fix; a deleted resource a 404."""
    from dataclasses import replace

    from contentgen.api.lora import VERDICTS_ANNOTATION
    from contentgen.catalog.evaluations import with_evaluation
    from contentgen.controller.decide import World, decide
    from tests.harness.controller import NOW, apply, job, lora_result, resource
    from tests.harness.evaluations import LATER, evaluation, scoring

    ns = apiserver.fresh_namespace("verdict")
    doc = _promotable(ns, "jesse-avatar", {VERDICTS_ANNOTATION: '{"3": 0}'})
    for entry in (evaluation(1, version=1), scoring(2)):
        changed = with_evaluation(doc, entry, now=LATER)
        assert changed is not None
        doc = changed
    uid = doc["_id"]
    catalog.upsert(doc)
    app = _app(cluster_wide, catalog, store, tmp_path)
    path = f"/api/assets/{uid}/versions/1/verdict"
    before = _resource(ns, "jesse-avatar", "loratrainings")
    assert before is not None

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            asked = await http.post(path, json={"evaluation": 1, "note": "seeds 1"}, headers=auth("alice"))
            assert asked.status_code == 202, asked.text
            body = asked.json()
            assert (body["id"], body["version"], body["evaluation"], body["by"]) == (uid, 1, 1, "alice")
            assert body["annotation"] == VERDICTS_ANNOTATION and "\n" not in body["message"]
            assert body["message"].startswith(f"annotated LoraTraining {ns}/jesse-avatar: ")
            entry = {"evaluation": 1, "by": "alice", "at": body["at"], "note": "seeds 1"}
            assert _verdicts(ns, "jesse-avatar") == {"1": entry, "3": 0}  # merged, the other kept
            after = _resource(ns, "jesse-avatar", "loratrainings")
            assert after is not None and after["spec"] == before["spec"]
            assert after["metadata"]["generation"] == before["metadata"]["generation"]
            # the refusals a laptop answers, in its words; nothing written
            for number, said in ((2, "e2 scored pictures made elsewhere"), (7, "e7 is not an evaluation")):
                refused = await http.post(path, json={"evaluation": number}, headers=auth("alice"))
                assert refused.status_code == 400, refused.text
                assert refused.json()["error"]["fields"][0]["field"] == "evaluation"
                assert refused.json()["error"]["message"].startswith(f"evaluation: {said}")
            missing = await http.post(f"/api/assets/{uid}/versions/9/verdict", json={"evaluation": 0},
                                      headers=auth("alice"))  # fmt: skip
            assert missing.status_code == 404 and missing.json()["error"]["code"] == "version_not_found"
            theirs = await http.post(path, json={"evaluation": 1}, headers=auth("bob"))
            assert theirs.status_code == 404
            assert _verdicts(ns, "jesse-avatar") == {"1": entry, "3": 0}

            # the operator's decision on the resource as annotated, its status written back as the
            # operator writes it: the real API server keeps the choice and the problem
            res = apply(resource(), decide(resource(), World(now=NOW)))
            res = apply(
                res, decide(res, World(now=NOW, jobs=(job(complete=True),), outcome=lora_result(1, 1)))
            )
            res = replace(res, annotations=dict(after["metadata"]["annotations"]))
            decided = decide(res, World(now=NOW, verdict_refusals={(1, 1): ""}))
            assert [e.reason for e in decided.events] == ["VerdictChosen", "VerdictRefused"]
            status_path = f"{LORAS.format(ns=ns)}/jesse-avatar/status"
            apiserver.admin().patch(status_path, {"status": decided.status})
            kept = (_resource(ns, "jesse-avatar", "loratrainings") or {}).get("status") or {}
            assert kept["versions"][0]["verdictChoice"] == entry
            assert kept["verdictProblem"] == (
                f"annotation {VERDICTS_ANNOTATION}: version 3 is not listed in the status"
            )

            # an annotation that is not JSON is not written over
            apiserver.admin().patch(
                f"{LORAS.format(ns=ns)}/jesse-avatar",
                {"metadata": {"annotations": {VERDICTS_ANNOTATION: "1=e1"}}},
            )
            broken = await http.post(path, json={"evaluation": 1}, headers=auth("alice"))
            assert broken.status_code == 409 and broken.json()["error"]["code"] == "conflict", broken.text
            assert f"{VERDICTS_ANNOTATION}-" in broken.json()["error"]["message"]
            # the resource deleted: gone
            apiserver.admin().delete(f"{LORAS.format(ns=ns)}/jesse-avatar")
            wait_for(lambda: _resource(ns, "jesse-avatar", "loratrainings") is None, 30, "deleted")
            gone = await http.post(path, json={"evaluation": 1}, headers=auth("alice"))
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "gone", gone.text

    import asyncio

    asyncio.run(run())


def test_a_training_is_stopped_and_continued_through_the_loratraining(
    cluster_wide: Setup, catalog: Catalog, store: LocalStore, tmp_path: Path
) -> None:
    """In a cluster (issue 67) stop-and-keep annotates the LoraTraining contentgen.io/stop=keep-best
    and continue patches its spec.training (continueFrom and steps: a new generation, which admission
    judges), both through the real API server as the API's ServiceAccount (patch on loratrainings:
    the chart's RBAC, recorded), each answering first, without ?confirm=true, what it would keep or
    cost. A stop where no training runs is a 409; a continue the spec asks for already changes
    nothing (200); a version that kept no training state is refused before anything is written;
    admission's refusal comes back naming its field; a deleted resource is a 404."""
    from datetime import timedelta

    from contentgen.api.lora import KEEP_BEST, STOP_ANNOTATION
    from tests.catalog.factory import T0
    from tests.harness.live import running, training

    ns = apiserver.fresh_namespace("live")
    doc = _promotable(ns, "jesse-avatar")
    uid = doc["_id"]
    doc["versions"][1]["stateUri"] = f"s3://bkt/loras/alice/{uid}/v2/checkpoints/step-001000.pt"
    catalog.upsert(doc)
    app = _app(cluster_wide, catalog, store, tmp_path)
    loras = LORAS.format(ns=ns)

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            # nothing runs: nothing to stop
            idle = await http.post(f"/api/jobs/{uid}/stop?confirm=true", headers=auth("alice"))
            assert idle.status_code == 409 and idle.json()["error"]["code"] == "not_running", idle.text
            # version 3 trains, checkpoint 500 the best so far
            scored = [(250, "poor", 0.21), (500, "good", 0.55)]
            live = training(uid, 510, scored, at=T0 + timedelta(hours=1))
            catalog.upsert({**running(uid, "jesse-avatar", live, previous=doc), "namespace": ns})
            asked = await http.post(f"/api/jobs/{uid}/stop", headers=auth("alice"))
            assert asked.status_code == 200, asked.text
            plan = asked.json()
            assert plan["dryRun"] and plan["keeps"] == {"step": 500, "verdict": "good", "median": 0.55}
            assert "keeps checkpoint 500 (good, median 0.55)" in plan["message"]
            got = _resource(ns, "jesse-avatar", "loratrainings") or {}
            assert STOP_ANNOTATION not in (
                got["metadata"].get("annotations") or {}
            )  # a dry run writes nothing
            stopped = await http.post(f"/api/jobs/{uid}/stop?confirm=true", headers=auth("alice"))
            assert stopped.status_code == 202, stopped.text
            assert stopped.json()["annotation"] == STOP_ANNOTATION and not stopped.json()["dryRun"]
            got = _resource(ns, "jesse-avatar", "loratrainings") or {}
            assert got["metadata"]["annotations"][STOP_ANNOTATION] == KEEP_BEST
            again = await http.post(f"/api/jobs/{uid}/stop?confirm=true", headers=auth("alice"))
            assert again.status_code == 202 and "already" in again.json()["message"]
            theirs = await http.post(f"/api/jobs/{uid}/stop?confirm=true", headers=auth("bob"))
            assert theirs.status_code == 404

            # continue from version 2 for 500 more steps
            before = _resource(ns, "jesse-avatar", "loratrainings") or {}
            path = f"/api/assets/{uid}/versions/2/continue"
            plan = (await http.post(path, json={"steps": 500}, headers=auth("alice"))).json()
            assert plan["dryRun"] and plan["training"]["continueFrom"] == {"version": 2}
            assert plan["training"]["steps"] == 500 and plan["estimate"].startswith("estimate: ")
            assert (_resource(ns, "jesse-avatar", "loratrainings") or {})["spec"] == before["spec"]
            done = await http.post(f"{path}?confirm=true", json={"steps": 500}, headers=auth("alice"))
            assert done.status_code == 202, done.text
            after = _resource(ns, "jesse-avatar", "loratrainings") or {}
            assert after["spec"]["training"]["continueFrom"] == {"version": 2}
            assert after["spec"]["training"]["steps"] == 500
            assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
            same = await http.post(f"{path}?confirm=true", json={"steps": 500}, headers=auth("alice"))
            assert same.status_code == 200 and same.json()["changed"] is False, same.text
            # a checkpoint of it to go on from: continueFrom's step; then without it, the step removed
            from_step = await http.post(f"{path}?confirm=true", json={"steps": 300, "step": 500},
                                        headers=auth("alice"))  # fmt: skip
            assert from_step.status_code == 202, from_step.text
            got = _resource(ns, "jesse-avatar", "loratrainings") or {}
            assert got["spec"]["training"]["continueFrom"] == {"version": 2, "step": 500}
            plain = await http.post(f"{path}?confirm=true", json={"steps": 300}, headers=auth("alice"))
            assert plain.status_code == 202, plain.text
            got = _resource(ns, "jesse-avatar", "loratrainings") or {}
            assert got["spec"]["training"]["continueFrom"] == {"version": 2}
            # version 1 kept no state: refused, nothing written
            first = f"/api/assets/{uid}/versions/1/continue?confirm=true"
            stateless = await http.post(first, json={"steps": 5}, headers=auth("alice"))
            assert stateless.status_code == 400 and "kept no training state" in stateless.text
            # admission judges the spec: a provider whose trainer cannot go on from a version
            fal = {"spec": {"provider": "fal", "training": {"continueFrom": None}}}
            apiserver.admin().patch(f"{loras}/jesse-avatar", fal)
            refused = await http.post(f"{path}?confirm=true", json={"steps": 700}, headers=auth("alice"))
            assert refused.status_code == 400, refused.text
            assert any("continueFrom" in f["field"] + f["message"] for f in refused.json()["error"]["fields"])
            # the resource deleted: gone
            apiserver.admin().delete(f"{loras}/jesse-avatar")
            wait_for(lambda: _resource(ns, "jesse-avatar", "loratrainings") is None, 30, "deleted")
            gone = await http.post(f"/api/jobs/{uid}/stop?confirm=true", headers=auth("alice"))
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "gone", gone.text

    import asyncio

    asyncio.run(run())


NOTIFICATIONS = "/apis/contentgen.io/v1alpha1/namespaces/{ns}/notifications"


def _notified(catalog: Catalog, namespace: str, name: str, owner: str = "alice") -> str:
    """A Notification `name` made in `namespace` (as a tenant applies it) and a delivery to it of an
    event about `owner`'s transcript, attempted once (503), as the operator's notifier logs it: the
    delivery's id."""
    from contentgen.catalog import webhooks
    from contentgen.catalog.deliveries import Deliveries, Sender

    live = apiserver.admin().create(
        NOTIFICATIONS.format(ns=namespace),
        {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "Notification",
            "metadata": {"name": name},
            "spec": {
                "url": "https://hooks.example.com/contentgen",
                "secretRef": {"name": "contentgen-webhook"},
            },
        },
    )
    doc = {"_id": f"{name}-talk", "schema": 2, "kind": "Transcription", "name": "talk",
           "namespace": namespace, "owner": owner, "versions": [{"version": 1, "generation": 1}]}  # fmt: skip
    [event] = webhooks.events_of(None, doc, now())
    store = Deliveries(catalog)
    store.enqueue([event])
    store.fan_out(event, [live])
    [due] = store.due(of=[live["metadata"]["uid"]])
    claim = store.claim(due, Sender("operator"))
    assert claim is not None and store.record(claim, code=503, answer="busy") is not None
    return str(due["_id"])


def _replay_annotation(namespace: str, name: str) -> str:
    found = apiserver.admin().get_or_none(f"{NOTIFICATIONS.format(ns=namespace)}/{name}")
    assert found is not None
    return str((found["metadata"].get("annotations") or {}).get("contentgen.io/replay", ""))


def test_a_delivery_is_sent_again_by_annotating_the_notification(
    cluster_wide: Setup, catalog: Catalog, store: LocalStore, tmp_path: Path
) -> None:
    """POST /api/notifications/deliveries/ID/replay sets the Notification's annotation
    contentgen.io/replay to the event's id through the real API server as the API's ServiceAccount
    (get and patch on notifications: the chart's RBAC, recorded), a new value each time (EVENT_ID#2),
    and answers 202; the spec is untouched; another owner's delivery is not there (404), nor is a
    deleted Notification's (404 gone)."""
    ns = apiserver.fresh_namespace("replay")
    delivery = _notified(catalog, ns, "studio-backend")
    event_id = delivery.split(":", 1)[1]
    app = _app(cluster_wide, catalog, store, tmp_path)
    path = f"/api/notifications/deliveries/{delivery}/replay"
    before = apiserver.admin().get(f"{NOTIFICATIONS.format(ns=ns)}/studio-backend")

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            asked = await http.post(path, headers=auth("alice"))
            assert asked.status_code == 202, asked.text
            assert asked.json()["value"] == event_id and "\n" not in asked.json()["message"]
            assert _replay_annotation(ns, "studio-backend") == event_id
            again = await http.post(path, headers=auth("alice"))
            assert again.status_code == 202 and again.json()["value"] == f"{event_id}#2"
            assert _replay_annotation(ns, "studio-backend") == f"{event_id}#2"
            after = apiserver.admin().get(f"{NOTIFICATIONS.format(ns=ns)}/studio-backend")
            assert after["spec"] == before["spec"]
            assert after["metadata"]["generation"] == before["metadata"]["generation"]
            theirs = await http.post(path, headers=auth("bob"))
            assert theirs.status_code == 404 and theirs.json()["error"]["code"] == "not_found"
            apiserver.admin().delete(f"{NOTIFICATIONS.format(ns=ns)}/studio-backend")
            wait_for(
                lambda: (
                    apiserver.admin().get_or_none(f"{NOTIFICATIONS.format(ns=ns)}/studio-backend") is None
                ),
                30,
                "deleted",
            )
            gone = await http.post(path, headers=auth("alice"))
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "gone", gone.text

    import asyncio

    asyncio.run(run())


# --- a namespaced install -------------------------------------------------------------------------


def test_a_namespaced_install_creates_in_its_namespaces_only(
    catalog: Catalog, store: LocalStore, tmp_path: Path
) -> None:
    apply_crds()
    watched, other = apiserver.fresh_namespace("watched"), apiserver.fresh_namespace("unwatched")
    account = "contentgen-nsd"
    values = {**CLUSTER_WIDE, "watchNamespaces": [watched]}
    setup = Setup(_install(values, account, tmp_path), watched, other)
    owners = tmp_path / "owners.yaml"
    owners.write_text(
        yaml.safe_dump({"owners": [{"owner": "alice", "groups": [f"system:serviceaccounts:{watched}"]}]})
    )
    app = _app(setup, catalog, store, tmp_path, api_owners_file=owners)
    robot = service_token(watched, "robot")  # an account of the watched namespace: alice's, by its group

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            made = await http.post("/api/resources", json=_image("here"), headers=auth("alice"))
            assert made.status_code == 201, made.text
            again = await http.post(
                "/api/resources", json=_image("here"), headers={"Authorization": f"Bearer {robot}"}
            )
            assert again.status_code == 200 and again.json()["jobId"] == made.json()["jobId"]
            elsewhere = {**_image("there"), "metadata": {"name": "there", "namespace": other}}
            refused = await http.post("/api/resources", json=elsewhere, headers=auth("alice"))
            assert refused.status_code == 403 and "cannot create resource" in refused.text
            catalog.upsert(_record(_resource(watched, "here")))  # type: ignore[arg-type]
            gone = await http.delete(f"/api/jobs/{made.json()['jobId']}", headers=auth("alice"))
            assert gone.status_code == 202 and _resource(watched, "here") is None
            for route, body, plural in (
                (
                    "/api/lora/train",
                    {"videoUrl": "https://e.com/v.mp4", "loraName": "l1", "trigger": "t"},
                    "loratrainings",
                ),
                ("/api/transcribe", {"audioUrl": "https://e.com/a.mp3", "name": "t1"}, "transcriptions"),
            ):
                first = await http.post(route, json=body, headers=auth("alice"))
                second = await http.post(route, json=body, headers=auth("alice"))
                assert (first.status_code, second.status_code) == (201, 200)
                catalog.upsert(_record(_resource(watched, first.json()["name"], plural)))  # type: ignore[arg-type]
                assert (
                    await http.delete(f"/api/jobs/{first.json()['jobId']}", headers=auth("alice"))
                ).status_code == 202
            # a LoRA version evaluated again: a LoraEvaluation in its namespace
            catalog.upsert(evaluable("a-lora-w", watched))
            path = "/api/assets/a-lora-w/versions/1/evaluate?confirm=true"
            first = await http.post(path, json={"name": "e1"}, headers=auth("alice"))
            second = await http.post(path, json={"name": "e1"}, headers=auth("alice"))
            assert (first.status_code, second.status_code) == (202, 200), first.text
            catalog.upsert(_record(_resource(watched, "e1", "loraevaluations")))  # type: ignore[arg-type]
            uid = first.json()["resource"]["jobId"]
            assert (await http.delete(f"/api/jobs/{uid}", headers=auth("alice"))).status_code == 202
            # a checkpoint promoted: the LoraTraining annotated (patch) by the namespaced Role
            promotable = _promotable(watched, "w-avatar")
            catalog.upsert(promotable)
            promoted = await http.post(
                f"/api/assets/{promotable['_id']}/versions/2/promote",
                json={"step": 250},
                headers=auth("alice"),
            )
            assert promoted.status_code == 202, promoted.text
            assert _annotation(watched, "w-avatar")["2"]["step"] == 250
            # a webhook event sent again: the Notification annotated (get, patch) by the namespaced Role
            delivery = _notified(catalog, watched, "w-hooks")
            replayed = await http.post(
                f"/api/notifications/deliveries/{delivery}/replay", headers=auth("alice")
            )
            assert replayed.status_code == 202, replayed.text
            assert _replay_annotation(watched, "w-hooks") == delivery.split(":", 1)[1]

    import asyncio

    asyncio.run(run())
    _check_audit(f"system:serviceaccount:{account}:contentgen-api", "namespaced", denied_on_purpose=other)


# --- comparing a LoRA's versions -----------------------------------------------------------------


def test_a_loras_versions_compare_as_image_generations_in_the_cluster(
    cluster_wide: Setup, catalog: Catalog, store: LocalStore, tmp_path: Path
) -> None:
    """One ImageGeneration per version, each pinning its version by loraRef, with the same prompt
    and seed, made in the LoRA's namespace and tagged with the comparison."""
    fill(catalog, store)  # alice's a-lora-1: jesse-avatar in default, versions 1 and 2
    app = _app(cluster_wide, catalog, store, tmp_path)

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http:
            made = await http.post(
                "/api/jobs/a-lora-1/compare",
                json={"prompt": "photo of jx, studio light", "seed": 42, "provider": "offline"},
                headers=auth("alice"),
            )
            assert made.status_code == 201, made.text
            tag, created = made.json()["tag"], made.json()["created"]
            specs = [_resource("default", c["name"])["spec"] for c in created]  # type: ignore[index]
            try:
                assert [s["loras"][0]["loraRef"] for s in specs] == [
                    {"name": "jesse-avatar", "version": 1},
                    {"name": "jesse-avatar", "version": 2},
                ]
                assert {(s["prompt"], s["seed"], s["owner"]) for s in specs} == {
                    ("photo of jx, studio light", 42, "alice")
                }
                assert all(tag in s["tags"] for s in specs)
            finally:
                for c in created:
                    apiserver.admin().delete(
                        f"/apis/contentgen.io/v1alpha1/namespaces/default/imagegenerations/{c['name']}"
                    )
            missing = await http.post(
                "/api/jobs/a-lora-1/compare", json={"prompt": "p", "versions": [3]}, headers=auth("alice")
            )
            assert missing.status_code == 400 and "usable versions: v1, v2" in missing.text
            image = await http.post("/api/jobs/a-img-1/compare", json={"prompt": "p"}, headers=auth("alice"))
            assert image.status_code == 400 and "only a LoRA's versions compare" in image.text
            theirs = await http.post(
                "/api/jobs/b-lora-1/compare", json={"prompt": "p"}, headers=auth("alice")
            )
            assert theirs.status_code == 404

    import asyncio

    asyncio.run(run())


def test_admissions_own_refusal_names_the_fields(cluster_wide: Setup) -> None:
    """Should a create pass the API's own checks and fail the API server's (the CRDs' schema and
    CEL rules), the server's 422 comes back as the same field problems: here the API's checks are
    skipped on purpose, so the real kube-apiserver is the one that refuses."""
    from contentgen.httpapi.creators import KubeCreator
    from contentgen.httpapi.manifests import Invalid, Wanted

    kube = load(cluster_wide.kubeconfig)
    assert kube is not None
    creator = KubeCreator(kube)
    spec = {"owner": "alice", "prompt": "p", "numImages": 0, "imageSize": "huge"}
    with pytest.raises(Invalid) as refused:
        creator.create(Wanted("ImageGeneration", "direct", cluster_wide.namespace, spec))
    fields = {p.field: p.message for p in refused.value.problems}
    assert set(fields) == {"spec.numImages", "spec.imageSize"}, fields
    assert "should be greater than or equal to 1" in fields["spec.numImages"]
    assert '"square_hd"' in fields["spec.imageSize"]
    assert _resource(cluster_wide.namespace, "direct") is None


# --- configuration, as the kubernetes package reads it ---------------------------------------------


def test_in_a_pod_the_service_account_is_read_by_the_library(
    cluster_wide: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pod's configuration: the service's host and port in the environment, the ServiceAccount's
    token and CA in its folder. The API creates as that account and reviews tokens with it, against
    the real API server (TLS checked against that CA); without the environment it is no pod."""
    from contentgen.httpapi.creators import KubeCreator
    from contentgen.httpapi.identity import TokenReviewer
    from contentgen.httpapi.manifests import Wanted

    url, ca = apiserver.server()
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text(service_token(RELEASE_NAMESPACE, "contentgen-api"))
    (account / "ca.crt").write_text(ca)
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert not in_a_pod(account) and load(account=account) is None
    server = urlsplit(url)
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", str(server.hostname))
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port))
    assert in_a_pod(account) and not in_a_pod(tmp_path)  # no token there
    kube = load(account=account)
    assert kube is not None and kube.server == url.rstrip("/")
    spec = {"owner": "alice", "prompt": "a pod's own", "provider": "offline"}
    made = KubeCreator(kube).create(Wanted("ImageGeneration", "in-pod", cluster_wide.namespace, spec))
    stored = _resource(cluster_wide.namespace, "in-pod")
    assert made.created and stored is not None and stored["metadata"]["uid"] == made.uid
    team = apiserver.fresh_namespace("pod")
    reviewed = TokenReviewer(kube).review(service_token(team, "reader"))
    assert reviewed is not None and reviewed.user == f"system:serviceaccount:{team}:reader"
    assert TokenReviewer(kube).review("not-a-token") is None


# Run in a process of its own with a temporary folder of its own: what the library writes there
# while it runs (the kubeconfig's inline CA, certificate and key as files) and what is left after.
KEYED_CLIENT = """
import json, os, stat, sys
from pathlib import Path
from contentgen.httpapi.kube import load

kube = load(Path(sys.argv[1]))
status = kube.review_token(sys.argv[2])
written = [stat.S_IMODE(p.stat().st_mode) for p in Path(os.environ["TMPDIR"]).iterdir()]
print(json.dumps({"user": status["user"]["username"], "modes": written}))
"""


def test_a_kubeconfig_with_an_embedded_client_key_leaves_no_copy(cluster_wide: Setup, tmp_path: Path) -> None:
    """The admin's kubeconfig (its client certificate and key inline, as *-data) reaches the real
    API server; the copies the library writes for TLS to load are its process's alone (mode 0600)
    and gone once it exits."""
    config = apiserver.admin_kubeconfig()
    assert "client-key-data:" in config.read_text()
    private = tmp_path / "tmp"
    private.mkdir()
    team = apiserver.fresh_namespace("keyed")
    token = service_token(team, "reader")
    env = {**os.environ, "TMPDIR": str(private)}
    ran = subprocess.run(
        [sys.executable, "-c", KEYED_CLIENT, str(config), token],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)
    assert seen["user"] == f"system:serviceaccount:{team}:reader"
    assert seen["modes"] and set(seen["modes"]) == {0o600}, seen
    assert list(private.iterdir()) == []


# An exec credential plugin (client-go's protocol): the token from a file, valid for a minute (so
# within the 5 minutes a client renews ahead of expiry); each run counted in a file beside it.
PLUGIN = """
import datetime, json, sys
from pathlib import Path
runs = Path(sys.argv[2])
runs.write_text(str(int(runs.read_text() or 0) + 1) if runs.exists() else "1")
expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=1)
status = {"token": Path(sys.argv[1]).read_text(), "expirationTimestamp": f"{expiry:%Y-%m-%dT%H:%M:%SZ}"}
kind = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential"}
print(json.dumps({**kind, "status": status}))
"""


def test_an_exec_plugin_kubeconfig_gives_the_api_its_token(cluster_wide: Setup, tmp_path: Path) -> None:
    """A kubeconfig whose user is an exec plugin (as cloud providers' are): the library runs it for
    the API's token, and again once the credential it gave is about to expire."""
    token, runs = tmp_path / "token", tmp_path / "runs"
    token.write_text(service_token(RELEASE_NAMESPACE, "contentgen-api"))
    url, ca = apiserver.server()
    plugin = {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable,
              "args": ["-c", PLUGIN, str(token), str(runs)], "interactiveMode": "Never"}  # fmt: skip
    cluster = {"server": url, "certificate-authority-data": base64.b64encode(ca.encode()).decode()}
    config = tmp_path / "exec.kubeconfig"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": cluster}],
                "users": [{"name": "u", "user": {"exec": plugin}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    kube = load(config)
    assert kube is not None and runs.read_text() == "1"
    team = apiserver.fresh_namespace("exec")
    status = kube.review_token(service_token(team, "reader"))
    assert status["authenticated"] and status["user"]["username"] == f"system:serviceaccount:{team}:reader"
    assert int(runs.read_text()) > 1  # asked again: its credential expires within the renewal window


def test_a_server_its_ca_does_not_vouch_for_is_unavailable(cluster_wide: Setup, tmp_path: Path) -> None:
    """TLS is checked against the kubeconfig's CA: the real API server under another CA's name is
    not talked to (KubeUnavailable, one line; the routes answer 503)."""
    import trustme

    url, _ = apiserver.server()
    other = kubeconfig.write(
        tmp_path / "other-ca.kubeconfig",
        server=url,
        ca_pem=trustme.CA().cert_pem.bytes(),
        user="api",
        token=service_token(RELEASE_NAMESPACE, "contentgen-api"),
    )
    kube = load(other)
    assert kube is not None
    with pytest.raises(KubeUnavailable) as unavailable:
        kube.get("imagegenerations", cluster_wide.namespace, "x")
    said = str(unavailable.value)
    assert said.startswith(f"the Kubernetes API at {url} cannot be reached: ") and "\n" not in said
    assert "CERTIFICATE_VERIFY_FAILED" in said
