"""CR → Job: valid batch/v1, owned, bounded, hardened, secret-free, deterministic names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from contentgen.api import KINDS, SpecSnapshot
from contentgen.cli.main import main
from contentgen.controller.jobs import missing_credentials, render_job
from contentgen.controller.naming import job_name, label_value
from contentgen.controller.settings import OperatorSettings
from tests.conftest import EXAMPLES
from tests.harness.jobs import UID, full_settings

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# the examples of kinds of work: a Notification (examples/notification.yaml) makes no Job
EXAMPLE_FILES = [p for p in sorted(EXAMPLES.glob("*.yaml")) if yaml.safe_load(p.read_text())["kind"] in KINDS]


def snapshot(
    kind: str = "ImageGeneration", name: str = "demo", generation: int = 3, **spec: object
) -> SpecSnapshot:
    base = {"owner": "alice", "provider": "fal", "prompt": "p"}
    base.update(spec)
    return SpecSnapshot(kind=kind, name=name, namespace="team-a", uid=UID, generation=generation, spec=base)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_render_job_prints_a_valid_job_for_every_example(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["render-job", str(path)]) == 0
    job = yaml.safe_load(capsys.readouterr().out)
    kubernetes_validate.validate(job, "1.33.0", strict=True)
    manifest = yaml.safe_load(path.read_text())
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == (
        manifest["kind"],
        manifest["metadata"]["name"],
        True,
    )
    assert job["metadata"]["labels"]["contentgen.io/owner"] == manifest["spec"]["owner"]


def test_job_is_bounded_and_hardened() -> None:
    job = render_job(snapshot(), full_settings())
    spec = job["spec"]
    assert (
        spec["backoffLimit"] >= 0
        and spec["activeDeadlineSeconds"] > 0
        and spec["ttlSecondsAfterFinished"] >= 0
    )
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    # Writes go to emptyDirs only.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert set(mounts) == {"/work", "/tmp"}
    assert all(
        "emptyDir" in volumes[name] and volumes[name]["emptyDir"]["sizeLimit"] for name in mounts.values()
    )
    kubernetes_validate.validate(job, "1.33.0", strict=True)


def test_secrets_only_by_reference_and_no_mongodb() -> None:
    settings = full_settings()
    settings.mongodb_uri = "mongodb://user:hunter2@mongo:27017"
    for kind, spec in (
        ("LoraTraining", {"source": {"url": "s3://b/v.mp4"}, "triggerWord": "t"}),
        ("Transcription", {"provider": "assemblyai", "source": {"url": "s3://bkt/a.mp3"}}),
    ):
        job = render_job(snapshot(kind, **spec), settings)
        env = job["spec"]["template"]["spec"]["containers"][0]["env"]
        text = json.dumps(job)
        assert "hunter2" not in text and "mongodb" not in text.lower()
        for entry in env:
            if re.search(r"KEY|SECRET|TOKEN|PASSWORD", entry["name"]):
                assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], entry["name"]
    names = {
        e["name"]
        for e in render_job(snapshot(provider="fal"), settings)["spec"]["template"]["spec"]["containers"][0][
            "env"
        ]
    }
    assert {
        "FAL_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    } <= names and "ASSEMBLYAI_API_KEY" not in names
    offline = render_job(snapshot(provider="offline"), settings)["spec"]["template"]["spec"]["containers"][0][
        "env"
    ]
    assert "FAL_KEY" not in {e["name"] for e in offline}  # a worker gets only the key its provider needs


def test_spec_snapshot_is_frozen_into_the_job() -> None:
    snap = snapshot(prompt="a red fox")
    env = {
        e["name"]: e.get("value")
        for e in render_job(snap, full_settings())["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    frozen = SpecSnapshot.model_validate_json(env["CONTENTGEN_SPEC"])
    assert frozen == snap
    name = job_name(KINDS["ImageGeneration"], "demo", UID, 3)
    assert env["CONTENTGEN_JOB_NAME"] == name == "demo-ig-6f1c2a8e-g3"


def test_image_pull_secrets() -> None:
    settings = full_settings()
    assert render_job(snapshot(), settings)["spec"]["template"]["spec"]["imagePullSecrets"] == []
    settings.worker_image_pull_secrets = ["registry"]
    job = render_job(snapshot(), settings)
    assert job["spec"]["template"]["spec"]["imagePullSecrets"] == [{"name": "registry"}]
    kubernetes_validate.validate(job, "1.33.0", strict=True)


def test_missing_credentials() -> None:
    settings = OperatorSettings()
    assert missing_credentials("fal", settings) == "FAL_KEY"
    assert missing_credentials("assemblyai", settings) == "ASSEMBLYAI_API_KEY"
    assert missing_credentials("offline", settings) == ""
    assert missing_credentials("fal", full_settings()) == ""


@pytest.mark.parametrize(
    "name", ["a", "demo", "x" * 57, "x" * 60, "a." * 126 + "b", "y" * 253, "long-name." + "z" * 240]
)
def test_job_names_are_dns_labels_of_kind_name_and_uid(name: str) -> None:
    made = {job_name(kind, name, UID, 12) for kind in KINDS.values()}
    assert len(made) == len(KINDS)  # the kinds of one name never want one Job
    for result in made:
        assert len(result) <= 63 and DNS_LABEL.match(result), result
        assert result.endswith("-6f1c2a8e-g12") and result.startswith(name[:4].replace(".", "-"))
    ig = KINDS["ImageGeneration"]
    assert job_name(ig, name, UID, 12) == job_name(ig, name, UID, 12)  # deterministic
    assert job_name(ig, name, UID, 13) != job_name(ig, name, UID, 12)
    # a resource made again under this name (another uid) never wants the first one's Job
    assert job_name(ig, name, "0a1b2c3d-0000-4000-8000-000000000000", 12) != job_name(ig, name, UID, 12)


def test_job_names_read_as_name_kind_uid_generation() -> None:
    lt, ig, tr = KINDS["LoraTraining"], KINDS["ImageGeneration"], KINDS["Transcription"]
    assert [job_name(k, "same", UID, 1) for k in (lt, ig, tr)] == [
        "same-lt-6f1c2a8e-g1",
        "same-ig-6f1c2a8e-g1",
        "same-tr-6f1c2a8e-g1",
    ]
    assert job_name(ig, "v1.2.cat", UID, 4) == "v1-2-cat-ig-6f1c2a8e-g4"
    long = job_name(tr, "n" * 253, UID, 1234567)
    assert long == "n" * (63 - len("-tr-6f1c2a8e-g1234567")) + "-tr-6f1c2a8e-g1234567"


@pytest.mark.parametrize("value", ["alice", "team.a_b-c", "x" * 63, "y" * 64, "-bad-", "a" * 200])
def test_label_values(value: str) -> None:
    result = label_value(value)
    assert len(result) <= 63 and re.fullmatch(r"([A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?)?", result)
    if len(value) <= 63 and value[0].isalnum() and value[-1].isalnum():
        assert result == value


def test_offline_operators_run_every_job_on_the_offline_provider() -> None:
    """`local-cluster --offline`: no keys are needed and the Job runs (and records) offline."""
    settings = OperatorSettings(store="file:///tmp/store", offline=True)
    assert missing_credentials("fal", settings) == ""
    job = render_job(snapshot(provider="fal"), settings)
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(env["CONTENTGEN_SPEC"]["value"])["spec"]["provider"] == "offline"
    assert "FAL_KEY" not in env
    online = render_job(snapshot(provider="fal"), full_settings())
    online_env = {e["name"]: e for e in online["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert json.loads(online_env["CONTENTGEN_SPEC"]["value"])["spec"]["provider"] == "fal"


def test_provider_settings_and_prices_reach_the_worker() -> None:
    """The operator's provider settings and price table are what the worker reads in its Job."""
    from contentgen.pricing import PriceTable
    from contentgen.providers import _settings as worker_settings

    settings = full_settings()
    settings.fal_store_io, settings.fal_pricing_api = False, False
    # a window its short form (1234.57) would round: passed in full
    settings.assemblyai_resolve_window_seconds, settings.assemblyai_unresolved = 1234.5678, "resubmit"
    settings.prices = PriceTable.model_validate(
        {"asOf": "2027-01-01", "items": {"fal": {"fal-ai/flux/dev": {"megapixel": 0.02}}}}
    )

    def env_of(kind: str, **spec: object) -> dict[str, str]:
        job = render_job(snapshot(kind, **spec), settings)
        container = job["spec"]["template"]["spec"]["containers"][0]
        return {e["name"]: e["value"] for e in container["env"] if "value" in e}

    fal = env_of("ImageGeneration")
    read = worker_settings(fal)
    assert (read.fal_store_io, read.fal_pricing_api) == (False, False)
    assert "CONTENTGEN_ASSEMBLYAI_UNRESOLVED" not in fal  # only its own provider's
    assert PriceTable.model_validate_json(fal["CONTENTGEN_PRICES"]) == settings.prices

    aai = env_of("Transcription", provider="assemblyai", source={"url": "s3://b/a.mp3"})
    read = worker_settings(aai)
    assert (read.assemblyai_resolve_window_seconds, read.assemblyai_unresolved) == (1234.5678, "resubmit")
    assert "CONTENTGEN_FAL_STORE_IO" not in aai

    offline = env_of("ImageGeneration", provider="offline")
    providers = ("CONTENTGEN_FAL", "CONTENTGEN_ASSEMBLYAI", "CONTENTGEN_PRICES")
    assert not [name for name in offline if name.startswith(providers)]
