"""The docs' generated sections (API fields, settings, statuses and reasons, commands, prices) match
the code, and what they are generated from is complete: every reason the code can write is in
api/reasons.py, every setting has a description."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from contentgen.api.docs import reference
from contentgen.api.reasons import REASONS
from contentgen.docs import PAGES, SECTIONS, splice
from tests.conftest import ROOT

PACKAGE = ROOT / "operator" / "contentgen"


@pytest.mark.parametrize("page", list(PAGES))
def test_generated_sections_are_current(page: str) -> None:
    text = (ROOT / page).read_text()
    assert splice(text, PAGES[page], page) == text, f"{page} is stale: run `make generate`"


def test_a_stale_section_is_found() -> None:
    page = "docs/reference/settings.md"
    text = (ROOT / page).read_text().replace("CONTENTGEN_WORK_DIR", "CONTENTGEN_WORKDIR", 1)
    assert splice(text, PAGES[page], page) != text
    with pytest.raises(ValueError, match="has no <!-- settings-pipeline:start"):
        splice("# no sections\n", PAGES[page], page)


def test_reference_covers_every_spec_field() -> None:
    text = reference()
    for field in (
        "spec.dataset.captionTemplate",
        "spec.loras[].loraRef.name",
        "spec.speakerLabels",
        "status.versions[].sha256",
        "status.transcript.wordCount",
        "status.conditions[].reason",
    ):
        assert f"`{field}`" in text


def test_every_setting_is_documented() -> None:
    for name, render in SECTIONS.items():
        if name.startswith("settings-"):
            for line in render().splitlines()[2:]:
                if line.startswith("| `CONTENTGEN_"):
                    assert line.rstrip(" |").split("|")[-1].strip(), f"{name}: {line} has no description"


def test_every_command_is_in_the_reference() -> None:
    from contentgen.cli.main import COMMANDS

    text = (ROOT / "docs/reference/commands.md").read_text()
    for name in COMMANDS:
        assert f"### contentgen {name}\n" in text
    for action in ("list", "get", "lineage", "prune", "delete"):
        assert f"#### contentgen assets {action}\n" in text


# --- reasons ----------------------------------------------------------------------------------------

# Where reasons are written: status conditions, Events, the worker's failures.
# api/references.py: the one reference resolver (loraRef, imageRef), whose refusals are reasons
REASON_SOURCES = (
    "controller",
    "pipeline",
    "providers",
    "store",
    "errors.py",
    "cli/worker.py",
    "api/references.py",
)
CAMEL = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+$")
# CamelCase words in those modules that are not reasons: Kubernetes' and S3's own vocabulary,
# class and provider names.
NOT_REASONS = {
    # STS's answer and an IAM policy's condition operator (controller/run_credentials.py, store/scopes.py)
    "AccessKeyId", "SecretAccessKey", "SessionToken", "StringLike",
    # Kubernetes
    "ClusterRole", "ConfigMap", "RoleBinding", "ServiceAccount", "DeleteOptions", "IfNotPresent",
    "RuntimeDefault", "FallbackToLogsOnError", "FailJob", "DisruptionTarget", "PodScheduled",
    "CreateContainerConfigError", "CreateContainerError", "ErrImagePull", "ImagePullBackOff",
    "ErrImageNeverPull", "InvalidImageName", "BearerToken", "DirectoryOrCreate", "NoSchedule",
    # a Job's interim conditions, a pod's DisruptionTarget reasons and ContainersReady (observe.py, pods.py)
    "FailureTarget", "SuccessCriteriaMet", "DeletionByTaintManager", "TerminationByKubelet",
    "EvictionByEvictionAPI", "PreemptionByScheduler", "ContainersReady",
    # condition types of ours that are not also a reason (docs/likeness.md#gates)
    "LikenessEvaluated",
    # a Notification's condition reasons: not a work resource's (docs/notifications.md lists them)
    "DeliveryFailing", "SecretForbidden", "SecretKeyMissing", "SecretNotFound", "SecretInvalid",
    # Kueue (a Workload's condition types, read by controller/kueue.py)
    "QuotaReserved",
    # S3 and HTTP
    "AccessDenied", "InvalidAccessKeyId", "NoSuchBucket", "InvalidBucketName", "NoSuchKey", "NotFound",
    "NoSuchUpload",  # an abort of an upload that is gone already (store/s3.py)
    "SignatureDoesNotMatch", "ContentLength", "ContentType", "ResponseContentDisposition",
    "IfNoneMatch", "PreconditionFailed", "NotImplemented", "ConditionalRequestConflict",
    "ChecksumSHA256", "UploadId", "PartNumber",
    # names of kinds, classes and providers
    "LoraTraining", "ImageGeneration", "LoraEvaluation", "VideoGeneration", "AssemblyAI", "FalProvider",
    "LocalStore",
    # a run across nodes: the objects that run it and their own words (controller/jobsets.py)
    "JobSet", "TrainJob", "ClusterTrainingRuntime", "FailJobSet",
    "ObjectStore", "ObjectInfo", "ObjectNotFound", "SubProgress",
    "PipelineKind", "ControllerKind", "UnknownKind",  # the kind registries' declarations, and their error
    "StatusT",  # a type variable (controller/status.py)
    "FlowMatchEulerDiscreteScheduler", "UniPCMultistepScheduler", "FluxPipeline",
    # picture formats (pipeline/fetch.py still_picture)
    "WebP",
}  # fmt: skip


def strings(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def written_reasons(every_word: bool = False) -> dict[str, str]:
    """CamelCase words (or, every_word, all strings) in the modules that write reasons."""
    found: dict[str, str] = {}
    for source in REASON_SOURCES:
        root = PACKAGE / source
        for path in [root] if root.is_file() else sorted(root.rglob("*.py")):
            for word in strings(path) - NOT_REASONS:
                if every_word or CAMEL.match(word):
                    found.setdefault(word, str(path.relative_to(PACKAGE)))
    return found


def test_every_reason_the_code_writes_is_documented() -> None:
    missing = {word: where for word, where in written_reasons().items() if word not in REASONS}
    assert not missing, f"add these to api/reasons.py (or, if not a reason, to NOT_REASONS): {missing}"


def test_every_documented_reason_is_one_the_code_writes() -> None:
    written = written_reasons(every_word=True)  # one-word reasons too: Queued, Running, Failed
    assert not set(REASONS) - set(written), set(REASONS) - set(written)


def test_the_statuses_page_lists_every_reason() -> None:
    text = (ROOT / "docs/reference/statuses.md").read_text()
    for name, reason in REASONS.items():
        assert f"`{name}`" in text and reason.meaning in text
