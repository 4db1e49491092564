"""The control plane follows the API server's rules for custom resources, CRDs, patches,
concurrency, deletion and watches (through the request pipeline, without HTTP)."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.cluster.apiserver import Request
from contentgen.cluster.server import LocalControlPlane
from tests.cluster.api_fixtures import Api, control_plane, crds, lora, refused
from tests.conftest import ROOT

CG = "contentgen.io"
CRD = "apiextensions.k8s.io"


@pytest.fixture
def local(tmp_path: Path) -> LocalControlPlane:
    return control_plane(tmp_path, rbac=False)


@pytest.fixture
def api(local: LocalControlPlane) -> Api:
    return Api(local.plane)


# --- CRD admission -------------------------------------------------------------------------------


def shipped_crds() -> list[tuple[str, dict[str, Any]]]:
    found = [
        (p.relative_to(ROOT).as_posix(), yaml.safe_load(p.read_text()))
        for p in sorted((ROOT / "crds").glob("*.yaml"))
    ]
    found += [
        (p.relative_to(ROOT).as_posix(), yaml.safe_load(p.read_text()))
        for p in sorted((ROOT / "charts" / "contentgen" / "crds").glob("*.yaml"))
    ]
    found += [
        (f"charts/install.yaml: {d['metadata']['name']}", d)
        for d in yaml.safe_load_all((ROOT / "charts" / "install.yaml").read_text())
        if d and d.get("kind") == "CustomResourceDefinition"
    ]
    return found


@pytest.mark.parametrize(("where", "crd"), shipped_crds(), ids=[w for w, _ in shipped_crds()])
def test_every_crd_we_ship_is_admitted(tmp_path: Path, where: str, crd: dict[str, Any]) -> None:
    api = Api(control_plane(tmp_path, install_crds=False, rbac=False).plane)
    created = api.create(CRD, "customresourcedefinitions", crd)
    conditions = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}


def transcription_crd() -> dict[str, Any]:
    return next(c for c in crds() if c["spec"]["names"]["kind"] == "Transcription")


def schema_of(crd: dict[str, Any]) -> dict[str, Any]:
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def test_a_default_that_fails_its_own_schema_is_refused(tmp_path: Path) -> None:
    """The defect a real server found: `default: {}` on an object with required fields."""
    api = Api(control_plane(tmp_path, install_crds=False, rbac=False).plane)
    crd = transcription_crd()
    schema_of(crd)["properties"]["status"]["properties"]["transcript"]["default"] = {}
    error = refused(lambda: api.create(CRD, "customresourcedefinitions", crd), 422)
    assert error.message.startswith(
        'CustomResourceDefinition.apiextensions.k8s.io "transcriptions.contentgen.io" is invalid:'
    )
    assert (
        "spec.versions[0].schema.openAPIV3Schema.properties[status].properties[transcript].default.textUri: "
        "Required value" in error.message
    )


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda s: s["properties"]["spec"]["properties"]["prompt"].pop("type"),
            "properties[spec].properties[prompt].type: Required value: "
            "must not be empty for specified object fields",
        ),
        (
            lambda s: s["properties"]["spec"]["x-kubernetes-validations"].append(
                {"rule": "self.promt != ''"}
            ),
            "undefined field 'promt'",
        ),
        (
            lambda s: s["properties"]["spec"]["properties"]["tags"].update({"uniqueItems": True}),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ),
        (
            lambda s: s["properties"]["spec"]["properties"]["numImages"].update({"default": 99}),
            "properties[numImages].default: Invalid value: 99:",
        ),
        (
            lambda s: s["properties"]["status"]["properties"]["conditions"]["items"]["required"].remove(
                "type"
            ),
            "this property is in x-kubernetes-list-map-keys, "
            "so it must have a default or be a required property",
        ),
        (
            lambda s: s["properties"]["spec"].update(
                {
                    "properties": {
                        **s["properties"]["spec"]["properties"],
                        "x": {
                            "type": "object",
                            "properties": {"a": {"type": "string"}},
                            "additionalProperties": {"type": "string"},
                        },
                    }
                }
            ),
            "additionalProperties and properties are mutual exclusive",
        ),
    ],
    ids=["untyped", "cel-unknown-field", "unique-items", "bad-default", "map-key", "props-and-additional"],
)
def test_crds_a_real_server_refuses_are_refused(tmp_path: Path, mutate: Any, expected: str) -> None:
    api = Api(control_plane(tmp_path, install_crds=False, rbac=False).plane)
    crd = next(c for c in crds() if c["spec"]["names"]["kind"] == "ImageGeneration")
    mutate(schema_of(crd))
    error = refused(lambda: api.create(CRD, "customresourcedefinitions", crd), 422)
    assert expected in error.message


def test_crd_names_must_match(api: Api) -> None:
    crd = copy.deepcopy(transcription_crd())
    crd["metadata"]["name"] = "transcripts.contentgen.io"
    error = refused(lambda: api.create(CRD, "customresourcedefinitions", crd), 422)
    assert (
        'metadata.name: Invalid value: "transcripts.contentgen.io": must be spec.names.plural+"."+spec.group'
        in error.message
    )


# --- custom resources: defaults, pruning, schema, CEL ----------------------------------------------


def test_create_defaults_and_sets_server_fields(api: Api) -> None:
    created = api.create(CG, "loratrainings", lora(), "default")
    assert created["spec"]["dataset"] == {
        "maxFrames": 40,
        "minSceneSeconds": 1.0,
        "faceFilter": True,
        "captionTemplate": "a photo of {trigger}",
        "captioning": "template",
    }
    meta = created["metadata"]
    assert (
        meta["generation"] == 1
        and meta["uid"]
        and meta["creationTimestamp"]
        and int(meta["resourceVersion"]) > 0
    )
    assert "status" not in created


@pytest.mark.parametrize(
    ("validation", "outcome"), [("Strict", 400), ("Warn", "warning"), ("Ignore", "silent"), ("", "warning")]
)
def test_unknown_fields_follow_field_validation(api: Api, validation: str, outcome: Any) -> None:
    body = lora(bogus=1)
    query = {"fieldValidation": validation} if validation else {}
    if outcome == 400:
        error = refused(
            lambda: api.call("create", CG, "loratrainings", "default", body=body, query=query), 400
        )
        assert error.message == 'strict decoding error: unknown field "spec.bogus"'
        return
    response = api.call("create", CG, "loratrainings", "default", body=body, query=query)
    assert "bogus" not in response.body["spec"]
    assert response.warnings == (['unknown field "spec.bogus"'] if outcome == "warning" else [])


def test_schema_and_cel_errors_name_every_field(api: Api) -> None:
    body = lora(owner="Not An Owner", dataset={"maxFrames": 500, "captionTemplate": "no trigger"})
    error = refused(lambda: api.create(CG, "loratrainings", body, "default"), 422)
    assert error.message.startswith('LoraTraining.contentgen.io "demo" is invalid: [')
    fields = {c["field"] for c in error.details["causes"]}
    assert {"spec.owner", "spec.dataset.maxFrames"} <= fields
    # CEL runs only on objects the schema accepts
    error = refused(
        lambda: api.create(CG, "loratrainings", lora(dataset={"captionTemplate": "no trigger"}), "default"),
        422,
    )
    assert error.details["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "message": 'Invalid value: "string": must contain {trigger}, where the trigger word goes',
            "field": "spec.dataset.captionTemplate",
        }
    ]


def test_transition_rules_apply_on_update_and_patch(api: Api) -> None:
    api.create(CG, "loratrainings", lora(), "default")
    error = refused(
        lambda: api.patch(CG, "loratrainings", "default", "demo", {"spec": {"owner": "bob"}}), 422
    )
    assert "spec.owner: Invalid value" in error.message and "owner is immutable" in error.message


# --- the status subresource and generation ------------------------------------------------------------


def test_status_is_its_own_subresource(api: Api) -> None:
    api.create(CG, "loratrainings", lora(), "default")
    # the main endpoint ignores status
    main = api.patch(CG, "loratrainings", "default", "demo", {"status": {"phase": "Running"}})
    assert "status" not in main and main["metadata"]["generation"] == 1
    # the status endpoint ignores everything else, and defaults and prunes the status
    status = api.patch(
        CG,
        "loratrainings",
        "default",
        "demo",
        {"spec": {"tags": ["x"]}, "status": {"phase": "Running", "bogus": 1}},
        sub="status",
    )
    assert status["status"]["phase"] == "Running" and status["status"]["progress"] == 0
    assert "bogus" not in status["status"] and "tags" not in status["spec"]
    assert status["metadata"]["generation"] == 1
    # and validates it
    error = refused(
        lambda: api.patch(
            CG, "loratrainings", "default", "demo", {"status": {"progress": 101}}, sub="status"
        ),
        422,
    )
    assert (
        "status.progress: Invalid value: 101: status.progress in body should be less than or equal to 100"
        in error.message
    )


def test_generation_bumps_on_spec_changes_only(api: Api) -> None:
    api.create(CG, "loratrainings", lora(), "default")
    labelled = api.patch(CG, "loratrainings", "default", "demo", {"metadata": {"labels": {"a": "b"}}})
    assert labelled["metadata"]["generation"] == 1
    edited = api.patch(CG, "loratrainings", "default", "demo", {"spec": {"tags": ["new"]}})
    assert edited["metadata"]["generation"] == 2
    unchanged = api.patch(CG, "loratrainings", "default", "demo", {"spec": {"tags": ["new"]}})
    assert unchanged["metadata"]["generation"] == 2
    assert (
        unchanged["metadata"]["resourceVersion"] == edited["metadata"]["resourceVersion"]
    )  # no-op: no write


# --- concurrency and patch types ------------------------------------------------------------------------


def test_put_needs_the_current_resource_version(api: Api) -> None:
    created = api.create(CG, "loratrainings", lora(), "default")
    body = copy.deepcopy(created)
    del body["metadata"]["resourceVersion"]
    error = refused(lambda: api.call("update", CG, "loratrainings", "default", "demo", body), 422)
    assert "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update" in error.message
    api.call(
        "update",
        CG,
        "loratrainings",
        "default",
        "demo",
        {**created, "spec": {**created["spec"], "tags": ["a"]}},
    )
    error = refused(lambda: api.call("update", CG, "loratrainings", "default", "demo", created), 409)
    assert error.message == (
        'Operation cannot be fulfilled on loratrainings.contentgen.io "demo": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )


def test_patch_types(api: Api, local: LocalControlPlane) -> None:
    api.create(CG, "loratrainings", lora(), "default")
    patched = api.patch(
        CG,
        "loratrainings",
        "default",
        "demo",
        [{"op": "add", "path": "/spec/tags", "value": ["a"]}],
        kind="json",
    )
    assert patched["spec"]["tags"] == ["a"]
    error = refused(
        lambda: api.patch(
            CG,
            "loratrainings",
            "default",
            "demo",
            [{"op": "test", "path": "/spec/owner", "value": "bob"}],
            kind="json",
        ),
        422,
    )
    error = refused(
        lambda: api.patch(CG, "loratrainings", "default", "demo", {"spec": {}}, kind="strategic"), 415
    )
    assert error.message.startswith(
        "the body of the request was in an unknown format - accepted media types include:"
    )
    assert "application/apply-patch+yaml" in error.message and "strategic" not in error.message
    # built-in kinds take strategic merge patches: lists merge by their key
    api.create(
        "",
        "configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a.io/x"]}},
        "default",
    )
    merged = api.patch(
        "", "configmaps", "default", "c", {"metadata": {"finalizers": ["b.io/y"]}}, kind="strategic"
    )
    assert merged["metadata"]["finalizers"] == ["a.io/x", "b.io/y"]


def test_a_list_emptied_by_a_patch_is_not_stored(api: Api) -> None:
    """Built-in list fields and ObjectMeta's are `omitempty`: the server keeps no empty list."""
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "finalizers": ["a.io/x"]}}
    api.create("", "configmaps", config, "default")
    deleted = {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.io/x"]}}
    patched = api.patch("", "configmaps", "default", "c", deleted, kind="strategic")
    assert "finalizers" not in patched["metadata"]
    assert "finalizers" not in api.get("", "configmaps", "default", "c")["metadata"]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "selector": {"matchLabels": {"app": "d"}},
            "template": {
                "metadata": {"labels": {"app": "d"}},
                "spec": {"containers": [{"name": "c", "image": "i:1", "env": [{"name": "A", "value": "1"}]}]},
            },
        },
    }
    api.create("apps", "deployments", deployment, "default")
    no_env = {
        "spec": {
            "template": {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "$patch": "delete"}]}]}}
        }
    }
    patched = api.patch("apps", "deployments", "default", "d", no_env, kind="strategic")
    container = patched["spec"]["template"]["spec"]["containers"][0]
    assert container["name"] == "c" and "env" not in container
    # the same for custom resources' metadata (kopf removes its finalizer with a merge patch)
    api.create(
        CG, "loratrainings", {**lora(), "metadata": {"name": "f", "finalizers": ["k.io/f"]}}, "default"
    )
    patched = api.patch(CG, "loratrainings", "default", "f", {"metadata": {"finalizers": [], "labels": {}}})
    assert "finalizers" not in patched["metadata"] and "labels" not in patched["metadata"]


def test_server_side_apply_owns_fields_and_reports_conflicts(api: Api) -> None:
    applied = lora(tags=["a"])
    created = api.patch(
        CG, "loratrainings", "default", "demo", applied, kind="apply", query={"fieldManager": "alice"}
    )
    (entry,) = created["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"]) == ("alice", "Apply")
    assert "f:tags" in entry["fieldsV1"]["f:spec"]
    # another manager changing alice's field conflicts, unless it forces
    theirs = lora(tags=["b"])
    error = refused(
        lambda: api.patch(
            CG, "loratrainings", "default", "demo", theirs, kind="apply", query={"fieldManager": "bob"}
        ),
        409,
    )
    assert (
        error.message
        == 'Apply failed with 1 conflict: conflict with "alice" using contentgen.io/v1alpha1: .spec.tags'
    )
    forced = api.patch(
        CG,
        "loratrainings",
        "default",
        "demo",
        theirs,
        kind="apply",
        query={"fieldManager": "bob", "force": "true"},
    )
    assert forced["spec"]["tags"] == ["b"]
    # a field a manager stops applying, and nobody else owns, is removed
    mine = lora(description="mine")
    api.patch(CG, "loratrainings", "default", "demo", mine, kind="apply", query={"fieldManager": "carol"})
    mine["spec"].pop("description")
    after = api.patch(
        CG, "loratrainings", "default", "demo", mine, kind="apply", query={"fieldManager": "carol"}
    )
    assert "description" not in after["spec"] and after["spec"]["tags"] == ["b"]
    error = refused(lambda: api.patch(CG, "loratrainings", "default", "demo", mine, kind="apply"), 422)
    assert "fieldManager: Required value: is required for apply patch" in error.message


# --- deletion ----------------------------------------------------------------------------------------------


def test_finalizers_hold_deletion_and_cannot_be_added_while_deleting(api: Api) -> None:
    body = lora()
    body["metadata"]["finalizers"] = ["contentgen.io/cleanup"]
    api.create(CG, "loratrainings", body, "default")
    response = api.delete(CG, "loratrainings", "default", "demo")
    assert response.code == 200 and response.body["metadata"]["deletionTimestamp"]
    error = refused(
        lambda: api.patch(
            CG,
            "loratrainings",
            "default",
            "demo",
            {"metadata": {"finalizers": ["contentgen.io/cleanup", "x.io/y"]}},
        ),
        422,
    )
    assert (
        "no new finalizers can be added if the object is being deleted, "
        'found new finalizers []string{"x.io/y"}' in error.message
    )
    gone = api.patch(CG, "loratrainings", "default", "demo", {"metadata": {"finalizers": None}})
    assert gone["metadata"]["deletionTimestamp"]
    refused(lambda: api.get(CG, "loratrainings", "default", "demo"), 404)


def test_delete_preconditions(api: Api) -> None:
    api.create(CG, "loratrainings", lora(), "default")
    error = refused(
        lambda: api.delete(CG, "loratrainings", "default", "demo", {"preconditions": {"uid": "other"}}), 409
    )
    assert "Precondition failed: UID in precondition: other" in error.message


def test_namespace_lifecycle(api: Api) -> None:
    error = refused(lambda: api.create(CG, "loratrainings", lora(), "nowhere"), 404)
    assert error.message == 'namespaces "nowhere" not found'
    api.create("", "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "going"}})
    api.create(
        "", "configmaps", {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, "going"
    )
    api.delete("", "namespaces", "", "going")
    assert api.get("", "namespaces", "", "going")["status"]["phase"] == "Terminating"
    error = refused(lambda: api.create(CG, "loratrainings", lora(), "going"), 403)
    assert error.message == (
        'loratrainings.contentgen.io "demo" is forbidden: '
        "unable to create new content in namespace going because it is being terminated"
    )
    for immortal in ("default", "kube-system", "kube-public"):
        error = refused(lambda name=immortal: api.delete("", "namespaces", "", name), 403)
        assert error.message == f'namespaces "{immortal}" is forbidden: this namespace may not be deleted'
        assert "deletionTimestamp" not in api.get("", "namespaces", "", immortal)["metadata"]


# --- lists and watches ---------------------------------------------------------------------------


def test_list_pages_with_continue_tokens(api: Api) -> None:
    for i in range(5):
        api.create(CG, "loratrainings", lora(f"r{i}"), "default")
    names, token = [], ""
    while True:
        query = {"limit": "2", **({"continue": token} if token else {})}
        page = api.call("list", CG, "loratrainings", "default", query=query).body
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert names == [f"r{i}" for i in range(5)]


def test_list_by_field_and_label_selectors(api: Api) -> None:
    a = lora("a")
    a["metadata"]["labels"] = {"team": "x", "tier": "gold"}
    api.create(CG, "loratrainings", a, "default")
    api.create(CG, "loratrainings", lora("b"), "default")

    def names(**query: str) -> list[str]:
        listing = api.call("list", CG, "loratrainings", "default", query=query).body
        return [i["metadata"]["name"] for i in listing["items"]]

    assert names(labelSelector="team in (x,y),tier!=silver") == ["a"]
    assert names(labelSelector="!team") == ["b"]
    assert names(fieldSelector="metadata.name=b") == ["b"]
    error = refused(lambda: names(fieldSelector="spec.owner=alice"), 400)
    assert error.message == "field label not supported: spec.owner"


def watch(local: LocalControlPlane, query: dict[str, str], count: int) -> list[dict[str, Any]]:
    t = local.plane.type_of(CG, "loratrainings")
    events = local.plane.watch(
        Request(Api(local.plane).user, "watch", t, "default", query={"timeoutSeconds": "2", **query})
    )
    return list(itertools.islice(events, count))


def test_watch_from_a_version_sees_what_followed(api: Api, local: LocalControlPlane) -> None:
    created = api.create(CG, "loratrainings", lora(), "default")
    api.patch(CG, "loratrainings", "default", "demo", {"spec": {"tags": ["x"]}})
    api.delete(CG, "loratrainings", "default", "demo")
    events = watch(local, {"resourceVersion": created["metadata"]["resourceVersion"]}, 2)
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]


def test_objects_leaving_a_label_selector_are_deleted_from_the_watch(
    api: Api, local: LocalControlPlane
) -> None:
    body = lora()
    body["metadata"]["labels"] = {"watched": "yes"}
    created = api.create(CG, "loratrainings", body, "default")
    api.patch(CG, "loratrainings", "default", "demo", {"metadata": {"labels": {"watched": "no"}}})
    events = watch(
        local, {"resourceVersion": created["metadata"]["resourceVersion"], "labelSelector": "watched=yes"}, 1
    )
    assert [e["type"] for e in events] == ["DELETED"]


def test_watch_bookmarks_and_initial_events(api: Api, local: LocalControlPlane) -> None:
    api.create(CG, "loratrainings", lora(), "default")
    events = watch(
        local,
        {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan", "allowWatchBookmarks": "true"},
        2,
    )
    assert events[0]["type"] == "ADDED"
    assert events[1]["type"] == "BOOKMARK"
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_a_compacted_resource_version_is_gone(api: Api, local: LocalControlPlane) -> None:
    created = api.create(CG, "loratrainings", lora(), "default")
    api.patch(CG, "loratrainings", "default", "demo", {"spec": {"tags": ["x"]}})
    local.plane.store.compact()
    (event,) = watch(local, {"resourceVersion": created["metadata"]["resourceVersion"]}, 1)
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
    assert event["object"]["message"].startswith("too old resource version:")


# --- built-in kinds ------------------------------------------------------------------------------


def job(**spec: Any) -> dict[str, Any]:
    template = {"spec": {"restartPolicy": "Never", "containers": [{"name": "w", "image": "busybox:1"}]}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "j"},
        "spec": {"template": template, **spec},
    }


def test_built_in_kinds_are_validated_and_defaulted(api: Api) -> None:
    created = api.create("batch", "jobs", job(), "default")
    assert created["spec"]["backoffLimit"] == 6 and created["spec"]["completions"] == 1
    uid = created["metadata"]["uid"]
    assert created["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert created["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "j"
    broken = job()
    broken["metadata"]["name"] = "k"
    broken["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    error = refused(lambda: api.create("batch", "jobs", broken, "default"), 422)
    assert (
        'spec.template.spec.restartPolicy: Required value: valid values: "OnFailure", "Never"'
        in error.message
    )
    typo = job(backoffLimit="six")
    typo["metadata"]["name"] = "m"
    refused(lambda: api.create("batch", "jobs", typo, "default"), 400)
    error = refused(
        lambda: api.create("batch", "jobs", {**job(), "metadata": {"name": "Bad_Name"}}, "default"), 422
    )
    assert 'metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain' in error.message
