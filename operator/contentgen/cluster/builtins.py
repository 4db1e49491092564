"""Built-in kinds: the defaults the API server fills in and the validation it does, for the kinds
the project meets (Namespace, Pod, Job, Secret, ...). Schemas come from the Kubernetes 1.33
OpenAPI definitions that the `kubernetes-validate` package ships; type errors are 400s (the
request cannot be decoded), missing required fields 422s, unknown fields follow the request's
`fieldValidation` (Strict: 400; Warn, the default: dropped with a warning; Ignore: dropped).
"""

from __future__ import annotations

import json
import re
from functools import cache
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


@cache
def _validator(kind: str, api_version: str) -> Any:
    """A JSON Schema validator of the kind (strict: unknown fields are errors), or None."""
    from importlib import resources

    import jsonschema
    import referencing

    base = (
        resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / f"{KUBERNETES_VERSION}-local-strict"
    )
    file_api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_file = base / f"{kind.lower()}-{file_api}.json"
    if not schema_file.is_file():
        return None
    schema = json.loads(schema_file.read_text())
    definitions = json.loads((base / "_definitions.json").read_text())
    registry: Any = referencing.Registry()
    registry = referencing.Resource.from_contents(schema) @ registry
    registry = referencing.Resource.from_contents(definitions) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _path(error: Any) -> str:
    text = ""
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def check_schema(obj: dict[str, Any], field_validation: str, warnings: list[str]) -> list[FieldError]:
    """Validate a built-in object against its 1.33 schema; unknown fields are removed (with a
    warning) or refused, as `field_validation` says. Returns 422-style field errors."""
    try:
        validator = _validator(obj.get("kind", ""), obj.get("apiVersion", ""))
    except Exception:  # pragma: no cover - the package without its schemas
        return []
    if validator is None:
        return []
    unknown: list[str] = []
    errors: list[FieldError] = []
    for error in validator.iter_errors(obj):
        where = _path(error)
        if error.validator == "additionalProperties":
            extra = re.findall(r"'([^']+)' (?:was|were) unexpected", error.message) or re.findall(
                r"'([^']+)'", error.message
            )
            unknown += [f"{where}.{name}" if where else name for name in extra]
        elif error.validator == "required":
            name = error.message.split("'")[1]
            errors.append(required(f"{where}.{name}" if where else name))
        elif error.validator == "type":
            expected = error.validator_value
            raise bad_request(
                f'{obj.get("kind")} in version "{obj.get("apiVersion", "").split("/")[-1]}" cannot be handled as a '
                f"{obj.get('kind')}: json: cannot unmarshal {_json_type(error.instance)} into Go struct field "
                f".{where} of type {expected}"
            )
        elif error.validator == "enum":
            errors.append(
                not_supported(where, error.instance, [v for v in error.validator_value if v is not None])
            )
        else:
            errors.append(invalid(where, error.instance, error.message))
    for path in unknown:
        if field_validation == "Strict":
            raise bad_request(f'strict decoding error: unknown field "{path}"')
        if field_validation != "Ignore":
            warnings.append(f'unknown field "{path}"')
        _drop(obj, path)
    return errors


def _json_type(value: Any) -> str:
    return {str: "string", bool: "bool", int: "number", float: "number", list: "array", dict: "object"}.get(
        type(value), "null"
    )


def _drop(obj: dict[str, Any], path: str) -> None:
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node: Any = obj
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node.get(part)
        if node is None:
            return
    last = parts[-1]
    if isinstance(node, dict):
        node.pop(last, None)


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
        # Pod updates may change only a few fields of spec (images, deadline, tolerations added).
        allowed = (
            {"activeDeadlineSeconds", "tolerations", "nodeName"}
            if not old_spec.get("nodeName")
            else {"activeDeadlineSeconds", "tolerations"}
        )
        if changed - allowed:
            return [
                FieldError(
                    "FieldValueForbidden",
                    "spec",
                    detail="pod updates may not change fields other than `spec.containers[*].image`,"
                    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
                    "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
                    "was previously negative)",
                )
            ]
    return []


def ensure(condition: bool, error: ApiError) -> None:
    if not condition:
        raise error
