"""Built-in kinds: the defaults the API server fills in and the validation it does, for the kinds
the project meets (Namespace, Pod, Job, Secret, ...). Schemas come from the Kubernetes 1.33
OpenAPI definitions that the `kubernetes-validate` package ships; type errors are 400s (the
request cannot be decoded), missing required fields 422s, unknown fields follow the request's
`fieldValidation` (Strict: 400; Warn, the default: dropped with a warning; Ignore: dropped).
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError, bad_request
from .structural import FieldError, invalid, not_supported, required

KUBERNETES_VERSION = "v1.33.0"
JOB_LABELS = (
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-name",
    "controller-uid",
    "job-name",
)


# --- schemas -------------------------------------------------------------------------------------


def check_schema(obj: dict[str, Any], field_validation: str, warnings: list[str]) -> list[FieldError]:
    """Validate a built-in object against its 1.33 schema; unknown fields are removed (with a
    warning) or refused, as `field_validation` says. Returns 422-style field errors; a value of
    the wrong type cannot be decoded and is a 400, as from the real server."""
    from . import schemas, structural

    schema = schemas.schema_for(obj.get("kind", ""), obj.get("apiVersion", ""))
    if schema is None:
        return []
    unknown: list[str] = []
    structural.prune(obj, schema, root=False, pruned=unknown)
    for path in unknown:
        if field_validation == "Strict":
            raise bad_request(f'strict decoding error: unknown field "{path}"')
        if field_validation != "Ignore":
            warnings.append(f'unknown field "{path}"')
    errors = structural.validate(obj, schema)
    for error in errors:
        if error.type == "FieldValueTypeInvalid":
            version = obj.get("apiVersion", "").split("/")[-1]
            raise bad_request(
                f'{obj.get("kind")} in version "{version}" cannot be handled as a {obj.get("kind")}: '
                f"{error.field}: {error.detail}"
            )
    return errors


# --- defaults --------------------------------------------------------------------------------------


def default_pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
    spec["serviceAccount"] = spec["serviceAccountName"]
    for container in spec.get("containers") or []:
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("resources", {})
        for env in container.get("env") or []:
            ref = (env.get("valueFrom") or {}).get("fieldRef")
            if ref is not None:
                ref.setdefault("apiVersion", "v1")


def default_job(job: dict[str, Any]) -> None:
    spec = job.setdefault("spec", {})
    meta = job["metadata"]
    spec.setdefault("parallelism", 1)
    spec.setdefault("completions", 1)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    if "backoffLimitPerIndex" not in spec:
        spec.setdefault("backoffLimit", 6)
    spec.setdefault(
        "podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    )
    template_meta = spec.setdefault("template", {}).setdefault("metadata", {})
    if not meta.get("labels") and template_meta.get("labels"):  # SetDefaults_Job
        meta["labels"] = dict(template_meta["labels"])
    if not spec.get("manualSelector"):  # generateSelector, in the strategy's PrepareForCreate
        generated = {
            label: meta["name"] if label.endswith("job-name") else meta["uid"] for label in JOB_LABELS
        }
        spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": meta["uid"]}}
        template_meta["labels"] = {**(template_meta.get("labels") or {}), **generated}
    default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))


def default_on_create(kind: str, obj: dict[str, Any]) -> None:
    if kind == "Namespace":
        obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
        obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif kind == "Pod":
        default_pod_spec(obj.setdefault("spec", {}))
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif kind == "Job":
        obj.pop("status", None)
        default_job(obj)
        obj["status"] = {}
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
    elif kind == "Deployment":
        obj.setdefault("spec", {}).setdefault("replicas", 1)


def normalize(kind: str, obj: dict[str, Any]) -> None:
    """What decoding does on every write: Secret stringData moves into data (base64)."""
    if kind == "Secret" and obj.get("stringData"):
        import base64

        data = obj.setdefault("data", {}) or {}
        for key, value in obj.pop("stringData").items():
            data[key] = base64.b64encode(str(value).encode()).decode()
        obj["data"] = data


# --- kind-specific validation ---------------------------------------------------------------------------


def validate_job(job: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    errors: list[FieldError] = []
    spec = job.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    if pod.get("restartPolicy") not in ("OnFailure", "Never"):
        errors.append(required("spec.template.spec.restartPolicy", 'valid values: "OnFailure", "Never"'))
    if spec.get("podFailurePolicy") and pod.get("restartPolicy") != "Never":
        errors.append(
            invalid(
                "spec.template.spec.restartPolicy",
                pod.get("restartPolicy", ""),
                'only "Never" is supported when podFailurePolicy is specified',
            )
        )
    for i, rule in enumerate((spec.get("podFailurePolicy") or {}).get("rules") or []):
        where = f"spec.podFailurePolicy.rules[{i}]"
        if rule.get("action") not in ("Count", "FailIndex", "FailJob", "Ignore"):
            errors.append(
                not_supported(
                    f"{where}.action", rule.get("action", ""), ["Count", "FailIndex", "FailJob", "Ignore"]
                )
            )
        if bool(rule.get("onExitCodes")) == bool(rule.get("onPodConditions")):
            errors.append(
                invalid(where, rule, "specifying one of OnExitCodes and OnPodConditions is required")
            )
        codes = rule.get("onExitCodes") or {}
        if codes and codes.get("operator") == "In" and 0 in (codes.get("values") or []):
            errors.append(invalid(f"{where}.onExitCodes.values[0]", 0, "must not be 0 for the In operator"))
    for field in (
        "backoffLimit",
        "activeDeadlineSeconds",
        "ttlSecondsAfterFinished",
        "parallelism",
        "completions",
    ):
        value = spec.get(field)
        if isinstance(value, int) and value < 0:
            errors.append(invalid(f"spec.{field}", value, "must be greater than or equal to 0"))
    if old is not None:
        old_spec = old.get("spec") or {}
        for field in (
            "selector",
            "completions",
            "completionMode",
            "podFailurePolicy",
            "backoffLimitPerIndex",
        ):
            if spec.get(field) != old_spec.get(field) and field != "completions":
                errors.append(invalid(f"spec.{field}", spec.get(field), "field is immutable"))
        if spec.get("template") != old_spec.get("template") and not old_spec.get("suspend"):
            errors.append(invalid("spec.template", spec.get("template"), "field is immutable"))
    return errors


def validate_builtin(kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    if kind == "Job":
        return validate_job(obj, old)
    if kind == "Pod" and old is not None:
        spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
        changed = {k for k in set(spec) | set(old_spec) if spec.get(k) != old_spec.get(k)}
        # Pod updates may change only a few fields of spec (images, deadline, tolerations added);
        # spec.nodeName is set through pods/binding only.
        if changed - {"activeDeadlineSeconds", "tolerations"}:
            return [
                FieldError(
                    "FieldValueForbidden",
                    "spec",
                    detail="pod updates may not change fields other than `spec.containers[*].image`,"
                    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
                    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
                    "(allow it to be set to 1 if it was previously negative)",
                )
            ]
    return []


def ensure(condition: bool, error: ApiError) -> None:
    if not condition:
        raise error
