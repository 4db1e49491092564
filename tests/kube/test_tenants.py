"""One owner's work is theirs alone (issue 75), on the real control plane and node with the chart's
defaults, the store SeaweedFS with its real IAM and STS (cluster(store="seaweedfs")): alice, bob
and carol each own a namespace. bob's resources naming alice's outputs by their s3:// key, the
store's http(s) address and a presigned link are refused by the real kubectl with Python's words;
once alice shares her LoRA with bob for use, his picture runs with it, and nothing more of hers
is his. Every worker holds only its own run's credentials (no namespace holds the bucket's key):
tried from a pod of bob's namespace, they read and write his run's keys and the LoRA's weights
and are refused by the store for anything else; after the run, once their session ends, they
work no more. The store's access log shows no read of alice's keys but by her runs and that
one share."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.api import KINDS
from contentgen.api.inputs import inputs
from contentgen.api.sharing import parse_annotation
from contentgen.controller.run_credentials import FILE, secret_name
from contentgen.store.access import crossings, first_refusal
from tests.harness.kube import image, lora, record_calls, uid_of
from tests.kube.harness import BUCKET, STS_WINDOW, Cluster, cluster, operator, wait_for
from tests.kubectl import Kubectl

pytestmark = pytest.mark.timeout(900)
TEAMS = {"alice": "team-a", "bob": "team-b", "carol": "team-c"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with (
        pytest.MonkeyPatch.context() as mp,
        cluster(tmp_path_factory.mktemp("tenants"), mp, store="seaweedfs") as c,
    ):
        for owner, namespace in TEAMS.items():
            c.ensure_namespace(namespace)
            c.admin.patch(
                f"/api/v1/namespaces/{namespace}",
                {"metadata": {"annotations": {"contentgen.io/owners": owner}}},
                "application/merge-patch+json",
            )
        with operator(c):
            yield c
        record_calls(c)


def kubectl(c: Cluster, root: Path) -> Kubectl:
    config = c.local.write_kubeconfig(root / "admin.kubeconfig")
    return Kubectl(config, root / "home")


def applied(k: Kubectl, namespace: str, body: dict[str, Any]) -> tuple[bool, str]:
    done = k.run("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(body), check=False)
    return done.returncode == 0, done.stderr.strip()


def python_words(kind: str, spec: dict[str, Any], c: Cluster, grants: dict[str, str]) -> str:
    """What store/access.py says of `spec` (the operator's, the HTTP API's, the worker's rule)."""
    found = crossings(
        inputs(KINDS[kind].spec, spec),
        str(spec["owner"]),
        c.store.place(),
        lambda uid: parse_annotation(grants.get(uid))[0],
    )
    refused = first_refusal(found)
    return refused.refusal if refused is not None else ""


def probe(
    c: Cluster, namespace: str, name: str, credentials: dict[str, Any], attempts: dict[str, str]
) -> dict[str, str]:
    """Each of `attempts` (a label -> a Python call on `store`) made with `credentials` from a pod
    of the worker's image in `namespace`: "ok", or the store's refusal."""
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "stringData": {FILE: json.dumps(credentials)},
    }
    c.admin.create(f"/api/v1/namespaces/{namespace}/secrets", secret)
    script = "\n".join(
        [
            "import json",
            "from contentgen.store.s3 import S3Store",
            f"store = S3Store({BUCKET!r})",
            "def attempt(call):",
            "    try:",
            "        call()",
            "        return 'ok'",
            "    except Exception as exc:",
            "        return f'{type(exc).__name__}: {exc}'[:200]",
            "print(json.dumps({",
            *(f"    {label!r}: attempt(lambda: {call})," for label, call in attempts.items()),
            "}))",
        ]
    )
    assert c.s3_proxy is not None
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": c.env["CONTENTGEN_WORKER_IMAGE"],
                    "command": ["python", "-c", script],
                    "env": [
                        {"name": "CONTENTGEN_STORE_ACCESS_FILE", "value": f"/creds/{FILE}"},
                        {"name": "AWS_ENDPOINT_URL", "value": c.s3_proxy.endpoint},
                        {"name": "AWS_REGION", "value": "us-east-1"},
                        {"name": "HOME", "value": "/tmp"},
                    ],
                    "volumeMounts": [{"name": "creds", "mountPath": "/creds", "readOnly": True}],
                    "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                }
            ],
            "volumes": [{"name": "creds", "secret": {"secretName": name}}],
        },
    }
    c.admin.create(f"/api/v1/namespaces/{namespace}/pods", pod)
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    wait_for(
        lambda: (c.admin.get(path).get("status") or {}).get("phase") in ("Succeeded", "Failed"),
        240,
        f"pod {name}",
    )
    said: dict[str, str] = json.loads(c.admin.text(f"{path}/log").strip().splitlines()[-1])
    return said


def test_owners_reach_only_their_own_and_what_is_shared(env: Cluster, tmp_path: Path) -> None:
    c, k = env, kubectl(env, tmp_path)
    # alice's LoRA and picture; carol's picture: a run in each of the three namespaces, bob's below
    c.apply(lora("avatar", c.media), TEAMS["alice"])
    c.apply(image("alice-pic", owner="alice"), TEAMS["alice"])
    c.apply(image("carol-pic", owner="carol"), TEAMS["carol"])
    trained = c.wait_phase("LoraTraining", TEAMS["alice"], "avatar", "Succeeded", timeout=600)
    picture = c.wait_phase("ImageGeneration", TEAMS["alice"], "alice-pic", "Succeeded")
    c.wait_phase("ImageGeneration", TEAMS["carol"], "carol-pic", "Succeeded")
    weights = trained["versions"][-1]["modelUri"]
    dataset = trained["versions"][-1]["datasetUri"]
    pic = picture["versions"][-1]["images"][0]["uri"]
    lora_uid = uid_of(c, "LoraTraining", TEAMS["alice"], "avatar")
    signed = c.store.presign(c.store.key_of(pic), 600)

    # bob names them: refused at admission, in Python's words, whether the key exists or not
    assert c.s3_proxy is not None
    http = f"{c.s3_proxy.endpoint}/{BUCKET}/{c.store.key_of(dataset)}"
    tries = [
        ("ImageGeneration", {"prompt": "p", "model": "flux-lora", "loras": [{"url": weights}]}),
        (
            "ImageGeneration",
            {"prompt": "p", "model": "flux-lora", "loras": [{"url": weights.replace("/v1/", "/v9/")}]},
        ),
        ("VideoGeneration", {"prompt": "p", "model": "wan-2.2-i2v", "image": {"url": signed}}),
        ("LoraTraining", {"triggerWord": "tw", "source": {"url": http}}),
        ("Transcription", {"source": {"url": pic}}),
    ]
    for n, (kind, spec) in enumerate(tries):
        spec = {"owner": "bob", "provider": "offline", **spec}
        expected = python_words(kind, spec, c, {})
        assert expected, (kind, spec)
        ok, said = applied(
            k,
            TEAMS["bob"],
            {
                "apiVersion": "contentgen.io/v1alpha1",
                "kind": kind,
                "metadata": {"name": f"try-{n}"},
                "spec": spec,
            },
        )
        assert not ok and said.endswith(f"denied request: {expected}"), said

    # shared with bob for use: his picture with alice's LoRA by its key runs; the dataset stays hers
    c.patch(
        "LoraTraining",
        TEAMS["alice"],
        "avatar",
        {"metadata": {"annotations": {"contentgen.io/shared-with": "owner:bob=use"}}},
    )
    bobs = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "metadata": {"name": "bob-pic"},
        "spec": {
            "owner": "bob",
            "provider": "offline",
            "prompt": "p",
            "model": "flux-lora",
            "loras": [{"url": weights}],
        },
    }
    wait_for(lambda: applied(k, TEAMS["bob"], bobs)[0], 60, "the grant at admission")
    c.hold()  # his run's Job and Secret made, its pod waits: its credentials renewed meanwhile
    job = wait_for(lambda: next(iter(c.jobs(TEAMS["bob"])), None), 120, "bob's Job")["metadata"]["name"]
    path = f"/api/v1/namespaces/{TEAMS['bob']}/secrets/{secret_name(job)}"
    first = json.loads(
        base64.b64decode(wait_for(lambda: c.admin.get_or_none(path), 60, "its Secret")["data"][FILE])
    )
    renewed = wait_for(
        lambda: (
            (d := json.loads(base64.b64decode(c.admin.get(path)["data"][FILE])))["SessionToken"]
            != first["SessionToken"]
            and d
        ),
        STS_WINDOW * 2,
        "a renewal",
    )
    c.release()
    made = c.wait_phase("ImageGeneration", TEAMS["bob"], "bob-pic", "Succeeded")
    own = c.store.key_of(made["versions"][-1]["images"][0]["uri"])
    events = [e["reason"] for e in c.events(TEAMS["bob"], "bob-pic")]
    assert "SharedInputUsed" in events

    # bob's run's own credentials, from a pod of his namespace
    theirs = {
        "weights": c.store.key_of(weights),
        "dataset": c.store.key_of(dataset),
        "pic": c.store.key_of(pic),
    }
    attempts = {
        "own read": f"store.get_bytes({own!r})",
        "own temp write": f"store.put_bytes('temp/{made_uid(c)}/probe.json', b'{{}}', 'application/json')",
        "shared weights": f"store.get_bytes({theirs['weights']!r})",
        "their dataset": f"store.get_bytes({theirs['dataset']!r})",
        "their picture": f"store.get_bytes({theirs['pic']!r})",
        "write theirs": f"store.put_bytes('loras/alice/{lora_uid}/v1/evil.safetensors', b'x', 'x')",
        "list theirs": f"list(store.list('loras/alice/{lora_uid}/'))",
        "delete theirs": f"store.delete({theirs['pic']!r})",
        "list the bucket": "list(store.list(''))",
    }
    live = probe(c, TEAMS["bob"], "probe-live", renewed, attempts)
    assert [label for label, said in live.items() if said == "ok"] == [
        "own read",
        "own temp write",
        "shared weights",
    ], live
    refused = {label: said for label, said in live.items() if said != "ok"}
    assert all(
        "AccessDenied" in said or "403" in said or "denied" in said.lower() for said in refused.values()
    ), refused

    # no namespace holds the bucket's key; the runs' Secrets are gone once they ended
    key = base64.b64encode(c.env["AWS_ACCESS_KEY_ID"].encode()).decode()
    for namespace in TEAMS.values():
        secrets = c.admin.get(f"/api/v1/namespaces/{namespace}/secrets")["items"]
        assert not [s for s in secrets if key in json.dumps(s.get("data") or {})], namespace
    wait_for(
        lambda: (
            not [
                s
                for ns in TEAMS.values()
                for s in c.admin.get(f"/api/v1/namespaces/{ns}/secrets")["items"]
                if s["metadata"]["name"].endswith("-store")
            ]
        ),
        STS_WINDOW * 2,
        "the runs' Secrets retired",
    )

    # after the run, once its session ends, its credentials work no more
    ends = renewed["Expiration"]
    time.sleep(max(0.0, _seconds_until(ends)) + 5)
    after = probe(
        c,
        TEAMS["bob"],
        "probe-after",
        renewed,
        {"own read": attempts["own read"], "shared weights": attempts["shared weights"]},
    )
    assert "ok" not in after.values(), after

    # the store's log: alice's keys read by her own runs and by bob's run's weights, nothing else
    assert c.sts is not None
    alice_keys = [
        r
        for r in c.sts.requests()
        if "/alice/" in f"/{r.key}" and r.status < 300 and r.operation.endswith("GET.OBJECT")
    ]
    sessions = [r for r in alice_keys if "assumed-role" in r.principal]  # runs' (the operator is the admin)
    assert sessions, "alice's runs read her keys with their own sessions"
    strangers = [r for r in sessions if r.key != theirs["weights"] and not _alices(r.principal, c)]
    assert strangers == [], strangers


def made_uid(c: Cluster) -> str:
    return uid_of(c, "ImageGeneration", TEAMS["bob"], "bob-pic")


def _alices(principal: str, c: Cluster) -> bool:
    """A session of one of alice's runs (session names carry the run's uid, its first 8 digits)."""
    uids = [
        uid_of(c, "LoraTraining", TEAMS["alice"], "avatar"),
        uid_of(c, "ImageGeneration", TEAMS["alice"], "alice-pic"),
    ]
    return any(f"contentgen-{uid[:8]}-" in principal for uid in uids)


def _seconds_until(stamp: str) -> float:
    from datetime import UTC, datetime

    return (datetime.fromisoformat(stamp.replace("Z", "+00:00")) - datetime.now(UTC)).total_seconds()
