"""The chart's share policy (templates/share-policy.yaml), evaluated by the real kube-apiserver
(tests/apiserver.py) with its params written by the operator's own mirror (controller/shares.py)
from real LoraTrainings, and met through the real kubectl's server-side dry run: alice's LoRA
shared with bob for use is admitted in his ImageGeneration; carol is refused in one line naming
the field and the `kubectl annotate` that shares it, the same words for a LoRA that does not exist;
a `read` grant and a group's grant give no use; an update that leaves spec.loras alone is never
refused (finalizers, a grant taken back later: the operator's LoraNotShared holds there), one that
changes them is checked; with the ConfigMap gone nothing is refused (the operator decides); and
a helm upgrade keeps the operator's entries."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml

from contentgen.controller.kube import Kube, KubeError
from contentgen.controller.observe import lora_state
from contentgen.controller.shares import ShareMirror
from tests import apiserver
from tests.chart.conftest import render
from tests.conftest import ROOT
from tests.kubectl import Kubectl

LABEL = "contentgen.test/share-policy"
TAG = "shares"


@pytest.fixture(scope="module")
def release() -> dict[str, str]:
    """The policy, its binding and its ConfigMap (under names of their own), for namespaces labelled
    LABEL; the ConfigMap in a namespace standing for the release's."""
    from tests.harness.kubeapi import apply_crds

    apply_crds()
    home = apiserver.fresh_namespace("release")
    docs = render({"sharePolicy": {"namespaceSelector": {LABEL: TAG}}})
    ours = [d for d in docs if d["metadata"]["name"] == "contentgen-shares"]
    assert [d["kind"] for d in ours] == [
        "ConfigMap",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    assert "data" not in ours[0]  # the operator's: an upgrade keeps its entries
    name = f"contentgen-shares-{TAG}"
    for doc in ours:
        doc["metadata"]["name"] = name
        if doc["kind"] == "ConfigMap":
            doc["metadata"]["namespace"] = home
        if doc["kind"] == "ValidatingAdmissionPolicyBinding":
            doc["spec"]["policyName"] = name
            assert doc["spec"]["paramRef"]["parameterNotFoundAction"] == "Allow"
            doc["spec"]["paramRef"].update(name=name, namespace=home)
        apiserver.admin().apply(doc)
    return {"namespace": home, "configmap": name}


def namespace(prefix: str) -> str:
    name = apiserver.fresh_namespace(prefix)
    apiserver.admin().patch(f"/api/v1/namespaces/{name}", {"metadata": {"labels": {LABEL: TAG}}})
    return name


def lora_training(ns: str, name: str, shared: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if shared is not None:
        meta["annotations"] = {"contentgen.io/shared-with": shared}
    body = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "LoraTraining",
        "metadata": meta,
        "spec": {
            "owner": "alice",
            "provider": "offline",
            "source": {"url": "https://example.com/a.mp4"},
            "triggerWord": "tw",
        },
    }
    made: dict[str, Any] = apiserver.admin().create(
        f"/apis/contentgen.io/v1alpha1/namespaces/{ns}/loratrainings", body
    )
    return made


def mirror(release: dict[str, str], trainings: list[dict[str, Any]]) -> None:
    """The operator's mirror writes the ConfigMap from these LoraTrainings, as its leader does."""

    async def go() -> None:
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(apiserver.admin_kubeconfig()), client_configuration=config
        )
        kube = Kube(config)
        try:
            states = [lora_state(t) for t in trainings]
            await ShareMirror(kube, release["namespace"], release["configmap"], lambda: states).sync()
        finally:
            await kube.close()

    asyncio.run(go())


def image(name: str, owner: str, *refs: dict[str, Any]) -> str:
    spec: dict[str, Any] = {"owner": owner, "prompt": "a lighthouse at dusk", "provider": "offline"}
    if refs:
        spec.update(model="flux-lora", loras=[{"loraRef": r, "scale": 0.8} for r in refs])
    return yaml.safe_dump(
        {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "ImageGeneration",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


@pytest.fixture
def kubectl(tmp_path: Path) -> Kubectl:
    return Kubectl(apiserver.admin_kubeconfig(), tmp_path / "home")


def dry_run(k: Kubectl, ns: str, manifest: str) -> tuple[bool, str]:
    done = k.run("apply", "-n", ns, "--dry-run=server", "-f", "-", stdin=manifest, check=False)
    return done.returncode == 0, done.stderr.strip()


def in_force(k: Kubectl, ns: str, refused: str) -> None:
    """The API server loads a new policy, binding and params in the background: wait until `refused`
    is refused."""
    deadline = time.monotonic() + 30
    while dry_run(k, ns, refused)[0]:
        assert time.monotonic() < deadline, "the policy was not in force in time"
        time.sleep(0.2)


def refusal(owner: str, name: str, where: str, field: str = "spec.loras[0].loraRef") -> str:
    return (
        f"{field}: loraRef '{name}' belongs to owner 'alice', who has not shared it with owner '{owner}' "
        f"for use; alice shares it with: kubectl annotate loratraining/{name} -n {where} "
        f"contentgen.io/shared-with=owner:{owner}=use (with --overwrite, after its other grants)"
    )


def test_a_lora_shared_with_bob_for_use_is_admitted_and_carol_is_refused(
    release: dict[str, str], kubectl: Kubectl
) -> None:
    studio = namespace("share-alice")
    mine = namespace("share-users")
    trainings = [
        lora_training(studio, "avatar", "owner:bob=use,owner:dora=read,group:erin=read,group:frank=use"),
        lora_training(studio, "plain", None),
    ]
    mirror(release, trainings)
    data = apiserver.admin().get(
        f"/api/v1/namespaces/{release['namespace']}/configmaps/{release['configmap']}"
    )
    assert data["data"] == {f"{studio}.avatar": "owner:bob=use,owner:dora=read,group:erin=read"}
    avatar = {"name": "avatar", "namespace": studio, "owner": "alice"}
    in_force(kubectl, mine, image("probe", "carol", avatar))

    assert dry_run(kubectl, mine, image("bobs", "bob", avatar)) == (True, "")
    # carol: refused, one line, the field and the command that shares it
    ok, message = dry_run(kubectl, mine, image("carols", "carol", avatar))
    assert not ok and "\n" not in message
    assert f"ValidatingAdmissionPolicy 'contentgen-shares-{TAG}'" in message
    assert message.endswith(refusal("carol", "avatar", studio))
    # a read grant is no use; nor is a group's grant (use is checked against spec.owner)
    for owner in ("dora", "erin", "frank"):
        ok, message = dry_run(kubectl, mine, image(f"{owner}s", owner, avatar))
        assert not ok and message.endswith(refusal(owner, "avatar", studio)), owner
    # A LoRA that does not exist, or has no grant, gets the same words as one not shared with her.
    for name in ("ghost", "plain"):
        ok, message = dry_run(kubectl, mine, image(f"carols-{name}", "carol", {**avatar, "name": name}))
        assert not ok and message.endswith(refusal("carol", name, studio)), name
        ok, message = dry_run(kubectl, mine, image(f"bobs-{name}", "bob", {**avatar, "name": name}))
        assert not ok and message.endswith(refusal("bob", name, studio)), name
    # The field names the entry: bob's own LoRA first, then alice's not shared with him.
    own = {"name": "his-own"}
    ok, message = dry_run(kubectl, mine, image("bobs-two", "bob", own, {**avatar, "name": "plain"}))
    assert not ok and message.endswith(refusal("bob", "plain", studio, "spec.loras[1].loraRef"))
    # A VideoGeneration is matched too: its LoRAs by url pass; a loraRef to another owner's LoRA
    # (a video LoRA's, issue 68) is refused in the same words.
    video = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "VideoGeneration",
        "metadata": {"name": "clip"},
        "spec": {
            "owner": "carol",
            "prompt": "waves at dusk",
            "model": "wan-2.2-t2v",
            "provider": "offline",
            "loras": [{"url": "https://example.com/wan.safetensors"}],
        },
    }
    assert dry_run(kubectl, mine, yaml.safe_dump(video)) == (True, "")
    video["spec"]["loras"] = [{"loraRef": avatar}]
    ok, message = dry_run(kubectl, mine, yaml.safe_dump(video))
    assert not ok and message.endswith(refusal("carol", "avatar", studio))
    # loraRef.namespace unset: the resource's own namespace
    local = lora_training(mine, "local", "bob=use")
    mirror(release, [*trainings, local])
    ref = {"name": "local", "owner": "alice"}
    wait_admitted(kubectl, mine, image("bobs-local", "bob", ref))
    ok, message = dry_run(kubectl, mine, image("carols-local", "carol", ref))
    assert not ok and message.endswith(refusal("carol", "local", mine))


def wait_admitted(k: Kubectl, ns: str, manifest: str) -> None:
    """The policy reads its params from an informer: a new grant holds a moment later."""
    deadline = time.monotonic() + 30
    while not (answer := dry_run(k, ns, manifest))[0]:
        assert time.monotonic() < deadline, answer[1]
        time.sleep(0.2)


def test_updates_are_checked_only_where_spec_loras_change(release: dict[str, str], kubectl: Kubectl) -> None:
    studio = namespace("share-alice")
    mine = namespace("share-users")
    shared = lora_training(studio, "avatar", "owner:bob=use")
    mirror(release, [shared])
    avatar = {"name": "avatar", "namespace": studio, "owner": "alice"}
    wait_admitted(kubectl, mine, image("bobs", "bob", avatar))
    assert "created" in kubectl.run("apply", "-n", mine, "-f", "-", stdin=image("bobs", "bob", avatar)).stdout
    # alice takes the grant back: bob's resource is left to the operator (LoraNotShared), and a
    # change that leaves spec.loras alone (a finalizer, another seed) is admitted
    mirror(release, [])
    in_force(kubectl, mine, image("probe", "bob", avatar))
    for patch in ('{"metadata":{"finalizers":["contentgen.io/cleanup"]}}', '{"spec":{"seed":7}}'):
        assert (
            "patched"
            in kubectl.run("patch", "imagegeneration", "bobs", "-n", mine, "--type=merge", "-p", patch).stdout
        )
    changed = kubectl.run(
        "patch",
        "imagegeneration",
        "bobs",
        "-n",
        mine,
        "--type=json",
        "-p",
        '[{"op": "replace", "path": "/spec/loras/0/scale", "value": 0.5}]',
        check=False,
    )
    assert changed.returncode == 1 and refusal("bob", "avatar", studio) in changed.stderr


def test_without_its_configmap_nothing_is_refused_and_the_operator_decides(
    release: dict[str, str], kubectl: Kubectl
) -> None:
    """parameterNotFoundAction Allow: the API server reads the params before matchConditions, so
    Deny would refuse every ImageGeneration while the ConfigMap is missing; with Allow the binding
    is passed over, and a cross-owner loraRef is left to the operator (LoraNotShared)."""
    mine = namespace("share-absent")
    path = f"/api/v1/namespaces/{release['namespace']}/configmaps/{release['configmap']}"
    kept = apiserver.admin().get(path)
    avatar = {"name": "avatar", "namespace": "elsewhere", "owner": "alice"}
    in_force(kubectl, mine, image("probe", "bob", avatar))
    apiserver.admin().delete(path)
    try:
        wait_admitted(kubectl, mine, image("bobs", "bob", avatar))
        assert dry_run(kubectl, mine, image("plain", "bob")) == (True, "")
        assert dry_run(kubectl, mine, image("own", "bob", {"name": "mine"})) == (True, "")
        own = {"name": "mine", "owner": "bob"}
        assert dry_run(kubectl, mine, image("own-named", "bob", own)) == (True, "")
        with_url = yaml.safe_load(image("url", "bob"))
        with_url["spec"].update(model="flux-lora", loras=[{"url": "https://example.com/l.safetensors"}])
        assert dry_run(kubectl, mine, yaml.safe_dump(with_url)) == (True, "")
    finally:
        configmap = {"name": release["configmap"], "namespace": release["namespace"]}
        apiserver.admin().apply(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": configmap, "data": kept.get("data") or {}}
        )
    in_force(kubectl, mine, image("probe", "bob", avatar))  # the ConfigMap back, the policy with it


@pytest.mark.parametrize("server_side", ["false", "true"])
def test_a_helm_upgrade_keeps_the_operators_entries(tmp_path: Path, server_side: str) -> None:
    """The chart's ConfigMap has no `data`: helm's three-way merge (helm 3's, `--server-side=false`)
    and helm 4's server-side apply change only what the chart's manifests have, so the entries the
    operator wrote survive an upgrade that changes the ConfigMap."""
    from tests.chart.conftest import CHART

    ns = apiserver.fresh_namespace("helm-shares")
    configmap = next(
        d for d in render() if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "contentgen-shares"
    )
    chart = tmp_path / "chart"
    (chart / "templates").mkdir(parents=True)
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["version"]
    (chart / "Chart.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v2", "name": "shares", "version": version})
    )
    del configmap["metadata"]["namespace"]
    configmap["metadata"]["labels"]["example.com/revision"] = "{{ .Values.revision }}"
    (chart / "templates" / "configmap.yaml").write_text(yaml.safe_dump(configmap))
    k = Kubectl(apiserver.admin_kubeconfig(), tmp_path / "home")
    helm = [str(ROOT / ".tools" / "bin" / "helm"), "--kubeconfig", str(apiserver.admin_kubeconfig())]

    def run(*args: str) -> None:
        done = subprocess.run(
            [*helm, *args], capture_output=True, text=True, env=k.env(), timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr

    run("install", "shares", str(chart), "-n", ns, f"--server-side={server_side}", "--set", "revision=a")
    studio = {"metadata": {"name": "avatar", "namespace": "studio-a", "uid": "u"}, "spec": {"owner": "alice"}}
    studio["metadata"]["annotations"] = {"contentgen.io/shared-with": "bob=use"}  # type: ignore[index]
    mirror({"namespace": ns, "configmap": "contentgen-shares"}, [studio])
    run("upgrade", "shares", str(chart), "-n", ns, f"--server-side={server_side}", "--set", "revision=b")
    after = apiserver.admin().get(f"/api/v1/namespaces/{ns}/configmaps/contentgen-shares")
    assert after["metadata"]["labels"]["example.com/revision"] == "b"  # the upgrade changed it
    assert after["data"] == {"studio-a.avatar": "owner:bob=use"}  # and kept the operator's entries


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_the_operator_may_get_and_patch_its_configmap_and_nothing_more(tmp_path: Path, mode: str) -> None:
    """The chart's RBAC for the mirror, by the real authorizer: the operator's own ServiceAccount,
    with the chart's Role for the share policy's ConfigMap and nothing else, runs the mirror (get,
    then the guarded patch) and may not read another ConfigMap, list, create or delete one. Its
    allowed calls are recorded in tests/rbac/observed-calls.json (the chart's RBAC test holds the
    chart to them), as tests/kube records the rest of the operator's."""
    from localcluster import kubeconfig
    from tests.harness.kubeapi import RELEASE_NAMESPACE, service_token
    from tests.rbac.record import OPERATOR_USER, audit_decisions, record_decisions

    values: dict[str, Any] = {"watchNamespaces": ["team-a"]} if mode == "namespaced" else {}
    apiserver.admin().apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RELEASE_NAMESPACE}}
    )
    ours = [
        d
        for d in render(values)
        if (d["kind"], d["metadata"]["name"])
        in {
            ("Role", "contentgen-operator-shares"),
            ("RoleBinding", "contentgen-operator-shares"),
            ("ConfigMap", "contentgen-shares"),
        }
    ]
    assert len(ours) == 3
    for doc in ours:
        apiserver.admin().apply(doc)
    other = f"/api/v1/namespaces/{RELEASE_NAMESPACE}/configmaps/contentgen-operator"
    apiserver.admin().apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "contentgen-operator", "namespace": RELEASE_NAMESPACE},
        }
    )
    url, ca = apiserver.server()
    path = kubeconfig.write(
        tmp_path / "operator.kubeconfig",
        server=url,
        ca_pem=ca.encode(),
        user="operator",
        token=service_token(RELEASE_NAMESPACE, "contentgen-operator"),
    )
    config = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=str(path), client_configuration=config)  # type: ignore[no-untyped-call]
    grants = f"owner:bob=use,owner:carol={'read' if mode == 'namespaced' else 'use'}"
    studio = {"metadata": {"name": "avatar", "namespace": "team-a", "uid": "u"}, "spec": {"owner": "alice"}}
    studio["metadata"]["annotations"] = {"contentgen.io/shared-with": grants}  # type: ignore[index]
    refused: list[int] = []

    async def go() -> None:
        kube = Kube(config)
        try:
            states = [lora_state(studio)]
            await ShareMirror(kube, RELEASE_NAMESPACE, "contentgen-shares", lambda: states).sync()
            collection = f"/api/v1/namespaces/{RELEASE_NAMESPACE}/configmaps"
            for method, where, body in (
                ("GET", other, None),
                ("GET", collection, None),
                ("POST", collection, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
                ("DELETE", f"{collection}/contentgen-shares", None),
                ("GET", "/api/v1/namespaces/team-a/configmaps/contentgen-shares", None),
            ):
                with pytest.raises(KubeError) as denied:
                    await kube.request(method, where, body)
                refused.append(denied.value.status)
        finally:
            await kube.close()

    asyncio.run(go())
    assert refused == [403] * 5
    written = apiserver.admin().get(f"/api/v1/namespaces/{RELEASE_NAMESPACE}/configmaps/contentgen-shares")
    assert written["data"] == {"team-a.avatar": grants}
    mirrored = [
        d
        for d in audit_decisions(apiserver.audit_log())
        if d.user == OPERATOR_USER
        and d.uri.split("?")[0].endswith("/configmaps/contentgen-shares")
        and d.namespace == RELEASE_NAMESPACE
        and d.verb != "delete"  # refused on purpose above
    ]
    assert {(d.verb, d.allowed) for d in mirrored} >= {("get", True), ("patch", True)}
    record_decisions(mirrored, mode)
