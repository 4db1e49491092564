"""What the node computes for a container before and after running it, as the kubelet does
(pkg/kubelet/kubelet_pods.go makeEnvironmentVariables, pkg/api/v1/resource for resourceFieldRef,
kuberuntime_container.go getTerminationMessage), without any API or process: the environment, the
mapping of container paths to per-pod host directories, and the termination message.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# kubecontainer limits
MAX_TERMINATION_MESSAGE = 4096  # bytes of the termination-message file kept (its end)
MAX_LOG_FALLBACK_BYTES = 2048  # FallbackToLogsOnError: at most this much of ...
MAX_LOG_FALLBACK_LINES = 80  # ... the last this many log lines

Lookup = Callable[[str, str], "dict[str, Any] | None"]  # (namespace, name) -> Secret or ConfigMap


class ConfigError(Exception):
    """The container cannot be configured yet (CreateContainerConfigError): a missing Secret,
    ConfigMap or key. The message is the kubelet's."""


# --- $(VAR) expansion (third_party/forked/golang/expansion) ----------------------------------------


def expand(value: str, lookup: Callable[[str], str | None]) -> str:
    """`$(NAME)` becomes NAME's value when NAME is defined (else stays as written), `$$(NAME)`
    is an escaped `$(NAME)`."""
    out, i = [], 0
    while i < len(value):
        char = value[i]
        if char == "$" and i + 1 < len(value):
            nxt = value[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = value.find(")", i + 2)
                if end != -1:
                    name = value[i + 2 : end]
                    found = lookup(name)
                    out.append(found if found is not None else f"$({name})")
                    i = end + 1
                    continue
            out.append("$" + nxt)
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


# --- container paths ----------------------------------------------------------------------------


@dataclass
class Mounts:
    """Container paths (mount paths, the termination-message path) and the host paths that
    stand for them. A process runs on the host, so paths it is given through its environment,
    arguments or working directory are rewritten to the host side."""

    paths: dict[str, Path] = field(default_factory=dict)

    def add(self, container_path: str, host: Path) -> None:
        self.paths[container_path.rstrip("/") or "/"] = host

    def host(self, path: str) -> str | None:
        best = ""
        for mount in self.paths:
            inside = path == mount or path.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best):
                best = mount
        if not best:
            return None
        rest = path[len(best) :].lstrip("/")
        return str(self.paths[best] / rest) if rest else str(self.paths[best])

    def rewrite(self, value: str) -> str:
        """The host path for a value that is a container path under a mount; other values as they are."""
        if not value.startswith("/"):
            return value
        return self.host(value) or value


# --- the environment ----------------------------------------------------------------------------

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def service_env(host: str, port: int) -> dict[str, str]:
    """The `kubernetes` service's variables, which every container gets (envvars.FromServices)."""
    tcp = f"tcp://{host}:{port}"
    prefix = f"KUBERNETES_PORT_{port}_TCP"
    return {
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": str(port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(port),
        "KUBERNETES_PORT": tcp,
        prefix: tcp,
        f"{prefix}_PROTO": "tcp",
        f"{prefix}_PORT": str(port),
        f"{prefix}_ADDR": host,
    }


_QUANTITY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_SUFFIX = {
    "": 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}


def quantity(value: str | int | float) -> float:
    """A resource quantity ("500m", "6Gi", 2) as a number."""
    match = _QUANTITY.match(str(value).strip())
    if not match or match.group(2) not in _SUFFIX:
        raise ConfigError(f"invalid quantity {value!r}")
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def resource_field(
    pod: dict[str, Any], ref: dict[str, Any], allocatable: dict[str, str], container_name: str = ""
) -> str:
    """A resourceFieldRef's value: the container's limit or request, a limit that is unset being
    the node's allocatable (as the kubelet fills it in), divided by the divisor and rounded up
    (pkg/api/v1/resource ExtractContainerResourceValue)."""
    import math

    name = ref.get("containerName") or container_name
    container = next((c for c in pod["spec"].get("containers") or [] if c["name"] == name), None)
    if container is None:
        raise ConfigError(f"resourceFieldRef: no container named {name!r}")
    kind, _, resource = str(ref.get("resource", "")).partition(".")
    if kind not in ("limits", "requests") or resource not in ("cpu", "memory", "ephemeral-storage"):
        raise ConfigError(f"unsupported container resource : {ref.get('resource')}")
    resources = container.get("resources") or {}
    value = (resources.get(kind) or {}).get(resource)
    if value is None and kind == "requests":
        value = (resources.get("limits") or {}).get(resource)  # a request defaults to the limit
    if value is None:
        value = allocatable.get(resource, "0") if kind == "limits" else "0"
    divisor = quantity(ref.get("divisor") or "1")
    return str(max(1 if resource == "cpu" else 0, math.ceil(quantity(value) / divisor)))


def _field(pod: dict[str, Any], path: str, pod_ip: str) -> str:
    m, spec = pod["metadata"], pod.get("spec") or {}
    simple = {
        "metadata.name": m.get("name", ""),
        "metadata.namespace": m.get("namespace", ""),
        "metadata.uid": m.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": pod_ip,
        "status.hostIPs": pod_ip,
        "spec.schedulerName": spec.get("schedulerName", ""),
    }
    if path in simple:
        return str(simple[path])
    if match := re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path):
        return str((m.get(match.group(1)) or {}).get(match.group(2), ""))
    if path in ("metadata.labels", "metadata.annotations"):
        items = sorted((m.get(path.split(".")[1]) or {}).items())
        return "\n".join(f'{k}="{v}"' for k, v in items)
    raise ConfigError(f"unsupported fieldPath: {path}")


def _get(lookup: Lookup, kind: str, namespace: str, name: str, optional: bool) -> dict[str, Any] | None:
    obj = lookup(namespace, name)
    if obj is None and not optional:
        raise ConfigError(f'{kind.lower()} "{name}" not found')
    return obj


def _secret_data(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (secret.get("data") or {}).items()}


def field_value(pod: dict[str, Any], path: str, pod_ip: str) -> str:
    """A fieldRef's value (also what a downwardAPI volume writes)."""
    return _field(pod, path, pod_ip)


def container_env(
    pod: dict[str, Any],
    container: dict[str, Any],
    *,
    secrets: Lookup,
    configmaps: Lookup,
    pod_ip: str,
    services: dict[str, str] | None = None,
    allocatable: dict[str, str] | None = None,
) -> dict[str, str]:
    """The container's variables: envFrom first, then env in order, each value with `$(VAR)`
    references to earlier variables expanded, or resolved from its source; then the service
    variables not otherwise set. Raises ConfigError as the kubelet reports it."""
    ns = pod["metadata"].get("namespace", "")
    env: dict[str, str] = {}
    services = dict(services or {})
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            ref = source["configMapRef"]
            cm = _get(configmaps, "ConfigMap", ns, ref.get("name", ""), bool(ref.get("optional")))
            data = dict((cm or {}).get("data") or {})
        else:
            ref = source.get("secretRef") or {}
            secret = _get(secrets, "Secret", ns, ref.get("name", ""), bool(ref.get("optional")))
            data = _secret_data(secret) if secret else {}
        for key, value in data.items():
            if _ENV_NAME.match(prefix + key):  # invalid names are skipped (with an event upstream)
                env[prefix + key] = value

    def lookup(name: str) -> str | None:
        return env.get(name, services.get(name))

    for var in container.get("env") or []:
        name, value = var["name"], var.get("value", "")
        source = var.get("valueFrom")
        if value:
            value = expand(value, lookup)
        elif source:
            resolved = _resolve(
                pod, ns, source, secrets, configmaps, pod_ip, allocatable or {}, container["name"]
            )
            if resolved is None:  # an optional source that is absent
                continue
            value = resolved
        services.pop(name, None)
        env[name] = value
    return {**services, **env}


def _resolve(
    pod: dict[str, Any],
    ns: str,
    source: dict[str, Any],
    secrets: Lookup,
    configmaps: Lookup,
    pod_ip: str,
    allocatable: dict[str, str],
    container: str,
) -> str | None:
    if "fieldRef" in source:
        return _field(pod, source["fieldRef"].get("fieldPath", ""), pod_ip)
    if "resourceFieldRef" in source:
        return resource_field(pod, source["resourceFieldRef"], allocatable, container)
    if "configMapKeyRef" in source:
        ref = source["configMapKeyRef"]
        optional, name, key = bool(ref.get("optional")), ref.get("name", ""), ref.get("key", "")
        cm = _get(configmaps, "ConfigMap", ns, name, optional)
        if cm is None:
            return None
        if key not in (cm.get("data") or {}):
            if optional:
                return None
            raise ConfigError(f"couldn't find key {key} in ConfigMap {ns}/{name}")
        return str(cm["data"][key])
    ref = source.get("secretKeyRef") or {}
    optional, name, key = bool(ref.get("optional")), ref.get("name", ""), ref.get("key", "")
    secret = _get(secrets, "Secret", ns, name, optional)
    if secret is None:
        return None
    data = _secret_data(secret)
    if key not in data:
        if optional:
            return None
        raise ConfigError(f"couldn't find key {key} in Secret {ns}/{name}")
    return data[key]


# --- the termination message ----------------------------------------------------------------------


def tail_bytes(path: Path, limit: int) -> bytes:
    with path.open("rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - limit))
        return f.read()


def log_tail(log: Path) -> str:
    """The last 80 lines of the log, of which at most the last 2048 bytes."""
    if not log.exists():
        return ""
    lines = tail_bytes(log, 1 << 20).splitlines(keepends=True)[-MAX_LOG_FALLBACK_LINES:]
    return b"".join(lines)[-MAX_LOG_FALLBACK_BYTES:].decode("utf-8", "replace")


def termination_message(message_file: Path, log: Path, exit_code: int, policy: str, reason: str) -> str:
    """The last 4096 bytes of the termination-message file; with FallbackToLogsOnError, a failed
    container that left the file missing or empty gets the end of its log instead."""
    fallback = policy == "FallbackToLogsOnError" and exit_code != 0 and reason != "ContainerCannotRun"
    if message_file.exists():
        data = tail_bytes(message_file, MAX_TERMINATION_MESSAGE)
        if data or not fallback:
            return data.decode("utf-8", "replace")
    elif not fallback:
        return ""
    return log_tail(log)
