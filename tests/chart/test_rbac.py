"""The chart's RBAC against what the real operator, worker and HTTP API were allowed to do.

The integration tests run the operator and the worker against the local control plane, whose RBAC
authorizer enforces the chart's roles (a denial fails them); they record every authorization
decision for the two identities (API calls, and the checks admission makes for them, such as
OwnerReferencesPermissionEnforcement's) as (install mode, identity, verb, group, resource, scope)
in tests/rbac/observed-calls.json. Here the chart's rendered RBAC, for every set of values, is
loaded into the control plane: every recorded call must be allowed by its RBAC authorizer for the
right account, and nothing may be granted beyond the recorded calls (least privilege).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import pytest

from contentgen.controller.kube import Kube, KubeError
from contentgen.controller.settings import OperatorSettings
from tests.chart.conftest import (
    NAMESPACE,
    Doc,
    of_kind,
    one,
    operator_deployment,
    operator_settings,
    render,
    settings_env,
)
from tests.conftest import ROOT

CALLS = [tuple(c) for c in json.loads((ROOT / "tests" / "rbac" / "observed-calls.json").read_text())]
CLUSTER = "*cluster*"  # a grant in every namespace and at cluster scope (a ClusterRoleBinding)
NAME_ADDRESSED = {"get", "patch", "update", "delete"}  # verbs that resourceNames can limit

# What the chart may grant beyond the recorded calls: (mode, identity, verb, group, resource) ->
# why. Keep it short; every entry must be granted and not recorded (no stale entries).
# Every other permission the chart grants was exercised by the integration tests. In particular
# the worker gets `patch` on the status subresources only (no `get`: its progress channel is a
# JSON patch guarded by a `test` op), and the operator binds the worker's ClusterRole without
# `bind`, because it holds that `patch` itself (checked below).
_OWNER_REFERENCES = (
    "OwnerReferencesPermissionEnforcement asks it of the operator when it creates a LoraEvaluation's "
    "Job (blockOwnerDeletion: true, tests/kube/test_lora_evaluation.py); the plugin's check is no "
    "request of its own, and the audit logs of tests/kube hold no event for it (the other kinds' "
    "entries in observed-calls.json are older)"
)
_RUN_SECRETS = (
    "each run's own store credentials (s3.workerCredentials perRun): a namespaced install's operator "
    "makes, renews and retires them in the watched namespaces by the same code and rule as a "
    "cluster-wide one's, whose calls tests/kube/test_tenants.py records (its store is the one with STS)"
)
ALLOWED_BEYOND_RECORDED: dict[tuple[str, str, str, str, str], str] = {
    **{
        (mode, "operator", "update", "contentgen.io", f"{plural}/finalizers"): _OWNER_REFERENCES
        for mode in ("cluster-wide", "namespaced")
        for plural in ("loraevaluations", "videogenerations")  # VideoGeneration: tests/kube/test_video.py
    },
    **{
        ("namespaced", "operator", verb, "", "secrets"): _RUN_SECRETS
        for verb in ("create", "update", "delete")
    },
}

WATCHED = ["team-a", "team-b"]
MODES: dict[str, Doc] = {"cluster-wide": {}, "namespaced": {"watchNamespaces": WATCHED}}
# Other value sets whose RBAC must be the same as the mode's defaults.
API_TOKENS = {"api": {"enabled": True, "tokensSecret": {"name": "t"}}, "mongodb": {"existingSecret": "m"}}
API_KUBERNETES = {
    "api": {"enabled": True, "auth": ["kubernetes", "proxy"], "trustedProxies": ["127.0.0.1/32"]},
    "mongodb": {"existingSecret": "m"},
}
API_READ_ONLY = {"api": {**API_TOKENS["api"], "create": False}, "mongodb": {"existingSecret": "m"}}
MODE_VARIANTS: dict[str, list[Doc]] = {
    "cluster-wide": [
        {"replicaCount": 3, **API_TOKENS},
        API_KUBERNETES,
        API_READ_ONLY,
        {"s3": {"existingSecret": "contentgen-s3"}},
        {"s3": {"existingSecret": "contentgen-s3", "copyToNamespaces": False}},
    ],
    "namespaced": [
        {"watchNamespaces": ["team-a"]},
        {"watchNamespaces": WATCHED, "replicaCount": 3},
        {"watchNamespaces": WATCHED, **API_TOKENS},
    ],
}


@dataclass(frozen=True)
class Grant:
    verb: str
    group: str
    resource: str
    where: str  # CLUSTER or a namespace
    names: frozenset[str] | None  # resourceNames, when the rule limits them


@dataclass(frozen=True)
class Account:
    namespace: str
    name: str


def rule_grants(rules: list[Doc], where: str) -> set[Grant]:
    grants = set()
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs", "resourceNames"}, rule
        names = frozenset(rule["resourceNames"]) if rule.get("resourceNames") else None
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    grants.add(Grant(verb, group, resource, where, names))
    return grants


def grants_by_account(docs: list[Doc]) -> dict[Account, set[Grant]]:
    """What each ServiceAccount may do, from the bindings in `docs` (dangling references fail)."""
    cluster_roles = {d["metadata"]["name"]: d.get("rules") or [] for d in of_kind(docs, "ClusterRole")}
    roles = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d.get("rules") or []
        for d in of_kind(docs, "Role")
    }
    result: dict[Account, set[Grant]] = {}
    for binding in of_kind(docs, "ClusterRoleBinding") + of_kind(docs, "RoleBinding"):
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace")
        where = CLUSTER if binding["kind"] == "ClusterRoleBinding" else namespace
        if ref["kind"] == "ClusterRole":
            assert ref["name"] in cluster_roles, (
                f"{binding['metadata']['name']}: no ClusterRole {ref['name']}"
            )
            rules = cluster_roles[ref["name"]]
        else:
            assert binding["kind"] == "RoleBinding" and (namespace, ref["name"]) in roles, binding["metadata"]
            rules = roles[(namespace, ref["name"])]
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount", subject
            account = Account(subject["namespace"], subject["name"])
            result.setdefault(account, set()).update(rule_grants(rules, where))
    return result


def allows(grants: set[Grant], verb: str, group: str, resource: str, scope: str, namespace: str) -> bool:
    """Would RBAC allow this request? A cluster-scoped request (across all namespaces) needs a
    ClusterRoleBinding; a namespaced one a grant there or cluster-wide. Rules limited by
    resourceNames allow only requests naming one object (get, patch, update, delete)."""
    for g in grants:
        if (g.verb, g.group, g.resource) != (verb, group, resource):
            continue
        if g.names is not None and verb not in NAME_ADDRESSED:
            continue
        if g.where == CLUSTER or (scope == "namespace" and g.where == namespace):
            return True
    return False


def runtime_worker_access(namespace: str, settings: OperatorSettings) -> list[Doc]:
    """The ServiceAccount and RoleBinding the operator creates in `namespace` before its first Job
    (cluster-wide installs), made by its own code (Kube.ensure_worker_access)."""
    created: list[Doc] = []

    async def request(method: str, path: str, body: Any = None, **_: Any) -> Any:
        if method == "GET":
            raise KubeError(404, {"message": "not found"}, path)
        assert f"/namespaces/{namespace}/" in path
        created.append(body)

    kube = Kube.__new__(Kube)  # without a connection: only the requests above are made
    kube.request = request  # type: ignore[method-assign]
    asyncio.run(
        kube.ensure_worker_access(namespace, settings.worker_service_account, settings.worker_cluster_role)
    )
    assert [d["kind"] for d in created] == ["ServiceAccount", "RoleBinding"]
    return created


@dataclass
class Install:
    mode: str
    docs: list[Doc]
    settings: OperatorSettings
    operator: Account
    workers: dict[str, Account]  # namespace -> the worker's account there
    grants: dict[Account, set[Grant]]
    api: Account | None = None  # the HTTP API's, when it is installed
    api_values: Doc | None = None


# A namespace no value names: a cluster-wide operator must work there as anywhere.
SOME_NAMESPACE = "some-team"


def install(mode: str, values: Doc | None = None) -> Install:
    docs = render(MODES[mode] if values is None else values)
    settings = operator_settings(settings_env(docs))
    pod = operator_deployment(docs)["spec"]["template"]["spec"]
    operator = Account(NAMESPACE, pod["serviceAccountName"])
    if mode == "cluster-wide":
        namespaces = [SOME_NAMESPACE]
        docs = docs + runtime_worker_access(SOME_NAMESPACE, settings)
    else:
        namespaces = list(settings.watch_namespaces)
    workers = {ns: Account(ns, settings.worker_service_account) for ns in namespaces}
    deployments = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-api")]
    api = (
        Account(NAMESPACE, deployments[0]["spec"]["template"]["spec"]["serviceAccountName"])
        if deployments
        else None
    )
    api_values = (values or {}).get("api") or {}
    return Install(mode, docs, settings, operator, workers, grants_by_account(docs), api, api_values)


def api_calls(inst: Install) -> list[tuple[str, str, str, str]]:
    """The API's recorded calls that its values ask for: creating (api.create) and TokenReview
    (api.auth kubernetes)."""
    if inst.api is None:
        return []
    values = inst.api_values or {}
    creates, reviews = values.get("create", True), "kubernetes" in values.get("auth", ["tokens"])
    return [
        c
        for c in recorded(inst.mode, "api")
        if (c[2] == "tokenreviews" and reviews) or (c[1] == "contentgen.io" and creates)
    ]


def recorded(mode: str, identity: str) -> list[tuple[str, str, str, str]]:
    return [(c[2], c[3], c[4], c[5]) for c in CALLS if c[0] == mode and c[1] == identity]


# The operator's calls for the store's credentials where Jobs run (s3.copyToNamespaces, with
# s3.existingSecret, cluster-wide: controller/store_secret.py): asked of an install only when it
# copies. (Its `get` on Secrets is the Notifications' signing keys' too.)
STORE_COPY_CALLS = {
    ("create", "", "secrets"),
    ("update", "", "secrets"),
    ("get", "rbac.authorization.k8s.io", "clusterroles"),
}
RUN_SECRET_CALLS = {("create", "", "secrets"), ("update", "", "secrets"), ("delete", "", "secrets")}
COPYING = {
    "s3": {
        "existingSecret": "contentgen-s3",
        "workerCredentials": "namespaceSecret",
        "copyToNamespaces": True,
    }
}


def operator_calls(inst: Install) -> list[tuple[str, str, str, str]]:
    """The operator's recorded calls that this install's values ask for."""
    calls = recorded(inst.mode, "operator")
    backends = inst.settings.gpu_training.backends
    if "jobset" not in backends:  # trainings across nodes: none made
        calls = [c for c in calls if c[1] != "jobset.x-k8s.io"]
    if "trainjob" not in backends:  # nor TrainJobs
        calls = [c for c in calls if c[1] != "trainer.kubeflow.org"]
    wanted = (STORE_COPY_CALLS if inst.settings.copy_s3_secret else set()) | (
        RUN_SECRET_CALLS if inst.settings.store_access == "per-run" else set()
    )
    return [c for c in calls if c[:3] not in (STORE_COPY_CALLS | RUN_SECRET_CALLS) - wanted]


def missing_calls(inst: Install) -> list[str]:
    problems = []
    for verb, group, resource, scope in operator_calls(inst):
        # The Lease and the share policy's ConfigMap live in the operator's own namespace;
        # everything else wherever it works.
        own = (group, resource) in (("coordination.k8s.io", "leases"), ("", "configmaps"))
        where = [NAMESPACE] if own else list(inst.workers)
        for ns in where:
            if not allows(inst.grants.get(inst.operator, set()), verb, group, resource, scope, ns):
                problems.append(f"operator: {verb} {group}/{resource} ({scope} scope, in {ns})")
    for verb, group, resource, scope in recorded(inst.mode, "worker"):
        for ns, account in inst.workers.items():
            if not allows(inst.grants.get(account, set()), verb, group, resource, scope, ns):
                problems.append(f"worker: {verb} {group}/{resource} ({scope} scope, in {ns})")
    for verb, group, resource, scope in api_calls(inst):
        assert inst.api is not None
        for ns in inst.workers:
            if not allows(inst.grants.get(inst.api, set()), verb, group, resource, scope, ns):
                problems.append(f"api: {verb} {group}/{resource} ({scope} scope, in {ns})")
    return problems


def excess_grants(inst: Install) -> list[str]:
    """Grants beyond the recorded calls (and the allow-list), and stale allow-list entries."""
    identities = {inst.operator: "operator", **{a: "worker" for a in inst.workers.values()}}
    if inst.api is not None:
        identities[inst.api] = "api"
    problems = []
    used_allowances = set()
    for account, grants in inst.grants.items():
        if account not in identities:
            problems.append(f"{account}: bound, but neither the operator nor a worker")
            continue
        identity = identities[account]
        made = {"api": api_calls, "operator": operator_calls}.get(identity)
        calls = {c[:3] for c in (made(inst) if made is not None else recorded(inst.mode, identity))}
        for g in sorted(grants, key=lambda g: (g.group, g.resource, g.verb)):
            key = (inst.mode, identity, g.verb, g.group, g.resource)
            if (g.verb, g.group, g.resource) in calls:
                continue
            if key in ALLOWED_BEYOND_RECORDED:
                used_allowances.add(key)
                continue
            problems.append(f"{identity}: {g.verb} {g.group or 'core'}/{g.resource} was never used")
    for key in ALLOWED_BEYOND_RECORDED:
        if ALLOWED_BEYOND_RECORDED[key] is _RUN_SECRETS and inst.settings.store_access != "per-run":
            continue  # granted only with each run's own credentials
        if key[0] == inst.mode and key not in used_allowances:
            problems.append(f"allow-list entry {key} is not granted (or was recorded): remove it")
    return problems


@pytest.mark.parametrize("mode", list(MODES))
def test_every_recorded_call_is_allowed(mode: str) -> None:
    inst = install(mode)
    assert recorded(mode, "operator") and recorded(mode, "worker")
    assert missing_calls(inst) == []


@pytest.mark.parametrize("mode", list(MODES))
def test_nothing_is_granted_beyond_the_recorded_calls(mode: str) -> None:
    assert excess_grants(install(mode)) == []


def test_the_checks_catch_a_missing_and_an_extra_permission() -> None:
    inst = install("cluster-wide")
    role = one(inst.docs, "ClusterRole", "contentgen-operator")
    events = next(r for r in role["rules"] if r["resources"] == ["events"])
    events["verbs"] = ["create", "list", "patch"]
    jobs = next(r for r in role["rules"] if r["resources"] == ["jobs"])
    jobs["verbs"].remove("delete")
    broken = Install(
        inst.mode,
        inst.docs,
        inst.settings,
        inst.operator,
        inst.workers,
        grants_by_account(inst.docs),
        inst.api,
    )
    assert missing_calls(broken) == [f"operator: delete batch/jobs (namespace scope, in {SOME_NAMESPACE})"]
    assert excess_grants(broken) == ["operator: patch core/events was never used"]


def test_a_namespaced_call_granted_in_one_namespace_only_is_caught() -> None:
    inst = install("namespaced")
    docs = [
        d for d in inst.docs if not (d["kind"] == "RoleBinding" and d["metadata"]["namespace"] == "team-b")
    ]
    broken = Install(inst.mode, docs, inst.settings, inst.operator, inst.workers, grants_by_account(docs))
    problems = missing_calls(broken)
    assert problems and all("in team-b" in p for p in problems)
    assert any(p.startswith("operator:") for p in problems) and any(p.startswith("worker:") for p in problems)


def test_the_api_may_create_get_and_delete_the_kinds_and_review_tokens_only() -> None:
    """The API's own account: exactly what its values ask for, proven by recorded calls (the
    checks above): create, get and delete on the kinds, patch on loratrainings alone (a promoted
    checkpoint's, a chosen verdict's and a stop's annotations, a continue's spec.training: issue
    67), get and patch on notifications (a webhook event sent again: the annotation), and nothing
    like update, impersonation or another kind."""
    for mode, values in (
        ("cluster-wide", API_KUBERNETES),
        ("namespaced", {"watchNamespaces": WATCHED, **API_KUBERNETES}),
    ):
        inst = install(mode, values)
        assert inst.api is not None and missing_calls(inst) == [] and excess_grants(inst) == []
        grants = {(g.verb, g.group, g.resource) for g in inst.grants[inst.api]}
        kinds = {"loratrainings", "imagegenerations", "transcriptions", "loraevaluations"}
        assert grants == {(v, "contentgen.io", k) for v in ("create", "get", "delete") for k in kinds} | {
            ("patch", "contentgen.io", "loratrainings"),  # promote, verdict, stop (annotations), continue
            ("get", "contentgen.io", "notifications"),  # a webhook event sent again: the annotation
            ("patch", "contentgen.io", "notifications"),
            ("create", "authentication.k8s.io", "tokenreviews"),
        }
    read_only = install("cluster-wide", API_READ_ONLY)
    assert read_only.api is not None and read_only.api not in read_only.grants
    pod = next(
        d
        for d in render(API_READ_ONLY)
        if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-api")
    )
    assert pod["spec"]["template"]["spec"]["automountServiceAccountToken"] is False  # no rights, no token
    # With watchNamespaces, the only ClusterRole is TokenReview's (a cluster-scoped resource).
    namespaced = render({"watchNamespaces": WATCHED, **API_KUBERNETES})
    assert [d["metadata"]["name"] for d in of_kind(namespaced, "ClusterRole")] == [
        "contentgen-api-tokenreview"
    ]


@pytest.mark.parametrize("mode", list(MODES))
def test_kueues_workloads_are_listed_only_and_can_be_left_alone(mode: str) -> None:
    """A held Job's Workload (Kueue's reason in its Queued message) is listed, never got, watched or
    written, where the operator works; kueue.readWorkloads: false takes the right away and tells the
    operator not to ask."""
    inst = install(mode)
    kueue = {(g.verb, g.resource) for g in inst.grants[inst.operator] if g.group == "kueue.x-k8s.io"}
    assert kueue == {("list", "workloads")} and inst.settings.read_kueue_workloads
    off = install(mode, {**MODES[mode], "kueue": {"readWorkloads": False}})
    assert not off.settings.read_kueue_workloads
    assert not any(g.group == "kueue.x-k8s.io" for g in off.grants[off.operator])
    assert missing_calls(off) == [
        f"operator: list kueue.x-k8s.io/workloads (namespace scope, in {ns})" for ns in off.workers
    ]  # the calls the operator then never makes, and nothing else
    assert excess_grants(off) == []


def test_jobsets_are_made_watched_and_deleted_only_where_the_chart_says_they_run() -> None:
    """gpu.training.backends [job, jobset]: the operator makes, watches and deletes JobSets
    (tests/kube/test_several_nodes.py records it doing each), and nothing more of them; without
    jobset (the default) it has no right to them and makes none. A TrainJob's rights are the same
    four on trainjobs (gpu.training.backends trainjob), which tests/kube/test_trainjob_gang.py records
    it doing."""
    default = install("cluster-wide")
    assert not any(
        g.group in ("jobset.x-k8s.io", "trainer.kubeflow.org") for g in default.grants[default.operator]
    )
    inst = install("cluster-wide", {"gpu": {"training": {"backends": ["job", "jobset"]}}})
    jobsets = {(g.verb, g.resource) for g in inst.grants[inst.operator] if g.group == "jobset.x-k8s.io"}
    assert jobsets == {(verb, "jobsets") for verb in ("list", "watch", "create", "delete")}
    assert inst.settings.gpu_training.backends == ["job", "jobset"]
    assert missing_calls(inst) == [] and excess_grants(inst) == []
    trainer = install("cluster-wide", {"gpu": {"training": {"backends": ["job", "trainjob"]}}})
    trainjobs = {
        (g.verb, g.resource) for g in trainer.grants[trainer.operator] if g.group == "trainer.kubeflow.org"
    }
    assert trainjobs == {(verb, "trainjobs") for verb in ("list", "watch", "create", "delete")}
    assert missing_calls(trainer) == [] and excess_grants(trainer) == []


@pytest.mark.parametrize("mode", list(MODES))
def test_the_share_policys_configmap_is_the_one_configmap_the_operator_may_touch(mode: str) -> None:
    """get and patch on the ConfigMap the operator mirrors grants into, by its name, in its own
    namespace: no create, list, watch or delete, no other ConfigMap (the chart makes it, so that
    the operator need not create it). sharePolicy.enabled: false takes it away, and tells the
    operator not to write it."""
    inst = install(mode)
    configmaps = {g for g in inst.grants[inst.operator] if g.resource == "configmaps"}
    name = inst.settings.share_policy_config_map
    assert name == "contentgen-shares"
    assert configmaps == {Grant(v, "", "configmaps", NAMESPACE, frozenset({name})) for v in ("get", "patch")}
    assert one(inst.docs, "ConfigMap", name)["metadata"]["namespace"] == NAMESPACE
    off = install(mode, {**MODES[mode], "sharePolicy": {"enabled": False}})
    assert off.settings.share_policy_config_map == ""
    assert not any(g.resource == "configmaps" for g in off.grants[off.operator])
    assert missing_calls(off) == [
        f"operator: {verb} /configmaps (namespace scope, in {NAMESPACE})" for verb in ("get", "patch")
    ]  # the calls the operator then never makes, and nothing else
    assert excess_grants(off) == []
    assert not [d for d in off.docs if d["metadata"]["name"] == name]


@pytest.mark.parametrize("mode", list(MODES))
def test_rbac_is_the_same_with_other_values(mode: str) -> None:
    for values in MODE_VARIANTS[mode]:
        inst = install(mode, values)
        assert missing_calls(inst) == [] and excess_grants(inst) == []


def test_cluster_scoped_calls_come_from_a_cluster_role_binding() -> None:
    inst = install("cluster-wide", COPYING)
    cluster_calls = [c for c in operator_calls(inst) if c[3] == "cluster"]
    assert cluster_calls
    # The same grants as namespace-wide Roles would not do.
    as_roles = {
        Grant(g.verb, g.group, g.resource, SOME_NAMESPACE, g.names) for g in inst.grants[inst.operator]
    }
    for verb, group, resource, scope in cluster_calls:
        assert allows(inst.grants[inst.operator], verb, group, resource, scope, SOME_NAMESPACE)
        assert not allows(as_roles, verb, group, resource, scope, SOME_NAMESPACE)


def test_namespaced_install_has_no_cluster_roles_and_stays_in_its_namespaces() -> None:
    for values in [MODES["namespaced"], *MODE_VARIANTS["namespaced"]]:
        inst = install("namespaced", values)
        assert of_kind(inst.docs, "ClusterRole") == [] and of_kind(inst.docs, "ClusterRoleBinding") == []
        assert inst.settings.manage_worker_access is False
        for account, grants in inst.grants.items():
            # the watched namespaces, and the operator's own for its Lease and the share policy's
            # ConfigMap (API_TOKENS adds only Roles)
            elsewhere = {g for g in grants if g.where not in values["watchNamespaces"]}
            assert {(g.where, g.group, g.resource) for g in elsewhere} <= {
                (NAMESPACE, "coordination.k8s.io", "leases"),
                (NAMESPACE, "", "configmaps"),
            }, account
        assert set(inst.workers) == set(values["watchNamespaces"])
        # The chart makes the worker's account where its Jobs run.
        for ns, account in inst.workers.items():
            one(
                [d for d in inst.docs if d["metadata"].get("namespace") == ns], "ServiceAccount", account.name
            )
    # Every call of a namespaced install is in a namespace, but the API's TokenReview (with auth
    # kubernetes; see the test of the API's rules).
    assert all(c[5] == "namespace" for c in CALLS if c[0] == "namespaced" and c[4] != "tokenreviews")


def test_no_wildcards_anywhere() -> None:
    for mode in MODES:
        for values in [MODES[mode], *MODE_VARIANTS[mode]]:
            for role in of_kind(render(values), "ClusterRole") + of_kind(render(values), "Role"):
                for rule in role["rules"]:
                    for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                        assert not any("*" in item for item in rule.get(field, [])), (role["metadata"], rule)
                    assert "nonResourceURLs" not in rule


def test_name_limited_rules_name_our_own_objects() -> None:
    for mode in MODES:
        inst = install(mode)
        limited = {
            (g.verb, g.resource, g.names) for gs in inst.grants.values() for g in gs if g.names is not None
        }
        worker = frozenset({inst.settings.worker_service_account})
        lease = frozenset({inst.settings.leader_election_lease})
        expected = {("get", "leases", lease), ("update", "leases", lease)}
        shares = frozenset({inst.settings.share_policy_config_map})  # the grants admission reads
        expected |= {("get", "configmaps", shares), ("patch", "configmaps", shares)}
        # Notifications' signing keys: the Secret names of notifications.secretNames, by name only
        expected.add(("get", "secrets", frozenset({"contentgen-webhook"})))
        if mode == "cluster-wide":
            expected |= {("get", "serviceaccounts", worker), ("get", "rolebindings", worker)}
        assert limited == expected


@pytest.mark.parametrize("mode", list(MODES))
def test_the_store_secrets_copies_are_the_one_secret_the_operator_may_write(mode: str) -> None:
    """Cluster-wide with s3.existingSecret: create on Secrets (RBAC cannot limit it by name: the
    chart's admission policy does, tests/kube/test_store_secret.py), get and update on that
    name, get on the worker ClusterRole (the copies' owner), and nothing else of the kind; without
    the Secret, with copyToNamespaces off, or namespaced: none of it, and the operator is told not
    to copy."""
    inst = install(mode, {**MODES[mode], **COPYING})
    worker_role = inst.settings.worker_cluster_role
    writes = {g for g in inst.grants[inst.operator] if (g.verb, g.group, g.resource) in STORE_COPY_CALLS}
    if mode == "cluster-wide":
        assert inst.settings.copy_s3_secret and inst.settings.s3_secret == "contentgen-s3"
        assert writes == {
            Grant("create", "", "secrets", CLUSTER, None),
            Grant("update", "", "secrets", CLUSTER, frozenset({"contentgen-s3"})),
            Grant("get", "rbac.authorization.k8s.io", "clusterroles", CLUSTER, frozenset({worker_role})),
        }
        assert (
            Grant("get", "", "secrets", CLUSTER, frozenset({"contentgen-s3"})) in inst.grants[inst.operator]
        )
        policies = [d["metadata"]["name"] for d in of_kind(inst.docs, "ValidatingAdmissionPolicy")]
        assert [p for p in policies if "-inputs-" not in p] == [
            "contentgen-owners",
            "contentgen-shares",
            "contentgen-store-secret",
        ]
    else:
        assert not inst.settings.copy_s3_secret and not writes
    assert missing_calls(inst) == [] and excess_grants(inst) == []
    for values in (
        {**MODES[mode], "s3": {"workerCredentials": "workloadIdentity"}},
        {
            **MODES[mode],
            "s3": {"existingSecret": "x", "workerCredentials": "namespaceSecret", "copyToNamespaces": False},
        },
    ):
        off = install(mode, values)
        assert not off.settings.copy_s3_secret
        assert not any(
            (g.verb, g.group, g.resource) in STORE_COPY_CALLS or g.names == frozenset({"x"})
            for g in off.grants[off.operator]
        )
        assert "contentgen-store-secret" not in [d["metadata"]["name"] for d in off.docs]
        assert missing_calls(off) == [] and excess_grants(off) == []


@pytest.mark.parametrize("mode", list(MODES))
def test_the_runs_secrets_are_written_never_read(mode: str) -> None:
    """The chart's default (s3.workerCredentials perRun): the operator may create, update and delete
    Secrets (RBAC cannot limit these by names it does not know yet: the chart's admission policy
    holds it to its runs' own, tests/kube/test_tenants.py) and never get, list or watch one but the
    Notifications' signing keys by name; the copies' rights are not there."""
    inst = install(mode, MODES[mode])
    assert inst.settings.store_access == "per-run" and not inst.settings.copy_s3_secret
    on_secrets = {(g.verb, g.names) for g in inst.grants[inst.operator] if g.resource == "secrets"}
    assert {verb for verb, names in on_secrets if names is None} == {"create", "update", "delete"}
    assert {verb for verb, names in on_secrets if names is not None} <= {"get"}
    assert not [g for g in inst.grants[inst.operator] if g.resource == "clusterroles"]
    assert "contentgen-store-secret" in [
        d["metadata"]["name"] for d in of_kind(inst.docs, "ValidatingAdmissionPolicy")
    ]
    assert missing_calls(inst) == [] and excess_grants(inst) == []


def test_without_secret_names_no_secret_is_readable() -> None:
    """An empty notifications.secretNames renders no rule that reads Secrets (resourceNames: []
    would be every Secret); the runs' credentials are written, never read."""
    for values in (
        {"notifications": {"secretNames": []}},
        {"watchNamespaces": WATCHED, "notifications": {"secretNames": []}},
    ):
        for role in of_kind(render(values), "ClusterRole") + of_kind(render(values), "Role"):
            reads = [
                r
                for r in role["rules"]
                if "secrets" in r["resources"] and set(r["verbs"]) & {"get", "list", "watch"}
            ]
            assert not reads, role["metadata"]


def test_worker_cluster_role_is_the_one_the_operator_binds() -> None:
    docs = render()
    settings = operator_settings(settings_env(docs))
    names = [d["metadata"]["name"] for d in of_kind(docs, "ClusterRole")]
    assert settings.worker_cluster_role in names and settings.worker_cluster_role == "contentgen-worker"
    custom = operator_settings(settings_env(render({"worker": {"clusterRoleName": "cg-progress"}})))
    assert custom.worker_cluster_role == "cg-progress"
    assert "cg-progress" in [
        d["metadata"]["name"]
        for d in of_kind(render({"worker": {"clusterRoleName": "cg-progress"}}), "ClusterRole")
    ]
    # The runtime binding the operator makes points at it, for the account its Jobs use.
    (_, binding) = runtime_worker_access("x", settings)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "contentgen-worker",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": settings.worker_service_account, "namespace": "x"}
    ]


def test_operator_may_bind_the_worker_role_without_bind_or_escalate() -> None:
    """The API server lets a RoleBinding to a ClusterRole be created only by someone who holds
    every permission in it (or has `bind`): the operator holds the worker's, cluster-wide."""
    inst = install("cluster-wide")
    worker_rules = one(inst.docs, "ClusterRole", inst.settings.worker_cluster_role)["rules"]
    for g in rule_grants(worker_rules, SOME_NAMESPACE):
        assert allows(inst.grants[inst.operator], g.verb, g.group, g.resource, "namespace", SOME_NAMESPACE), g
    assert not any(g.verb in ("bind", "escalate", "impersonate") for gs in inst.grants.values() for g in gs)


def test_worker_may_only_patch_status() -> None:
    for mode in MODES:
        inst = install(mode)
        for account in inst.workers.values():
            assert {(g.verb, g.resource.split("/")[-1]) for g in inst.grants[account]} == {
                ("patch", "status")
            }
