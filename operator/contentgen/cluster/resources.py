"""The resource types the control plane serves: the built-in ones the project meets, and the
custom resources of every established CustomResourceDefinition."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # string, integer, number, boolean, date
    json_path: str
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    subresources: tuple[str, ...] = ()  # "status", "scale", "token", "log", "finalize", ...
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    # metadata.generation is kept and bumped when the desired state changes
    generation: bool = False
    # PUT without metadata.resourceVersion is refused (custom resources, most built-ins allow it)
    unconditional_update: bool = True
    # what DELETE without a propagation policy does to dependents (batch/v1 Jobs orphan them)
    default_propagation: str = "Background"
    # custom resources: the CRD's version entry (schema, printer columns) and the CRD itself
    crd: dict[str, Any] | None = field(default=None, compare=False, hash=False)
    columns: tuple[Column, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        if self.crd is not None:
            return str(self.crd["spec"]["names"].get("singular") or self.kind.lower())
        return self.kind.lower()

    @property
    def key(self) -> tuple[str, str]:
        """(group, plural): what storage and RBAC name it by."""
        return (self.group, self.plural)

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def schema(self) -> dict[str, Any] | None:
        """The structural schema of a custom resource (None for built-ins)."""
        if self.crd is None:
            return None
        version = next(v for v in self.crd["spec"]["versions"] if v["name"] == self.version)
        schema: dict[str, Any] | None = (version.get("schema") or {}).get("openAPIV3Schema")
        return schema


def _b(group: str, version: str, plural: str, kind: str, namespaced: bool = True, **kw: Any) -> ResourceType:
    return ResourceType(group, version, plural, kind, namespaced, **kw)


BUILTIN: tuple[ResourceType, ...] = (
    _b("", "v1", "namespaces", "Namespace", False, subresources=("status", "finalize"), short_names=("ns",)),
    _b(
        "",
        "v1",
        "pods",
        "Pod",
        subresources=("status", "log", "binding", "eviction"),
        short_names=("po",),
        categories=("all",),
    ),
    _b("", "v1", "events", "Event", short_names=("ev",)),
    _b("", "v1", "secrets", "Secret"),
    _b("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _b("", "v1", "serviceaccounts", "ServiceAccount", subresources=("token",), short_names=("sa",)),
    _b("", "v1", "services", "Service", subresources=("status",), short_names=("svc",), categories=("all",)),
    _b(
        "",
        "v1",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        subresources=("status",),
        short_names=("pvc",),
    ),
    _b(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        subresources=("status", "scale"),
        short_names=("deploy",),
        categories=("all",),
        generation=True,
    ),
    _b(
        "batch",
        "v1",
        "jobs",
        "Job",
        subresources=("status",),
        categories=("all",),
        generation=True,
        default_propagation="Orphan",
    ),
    _b("events.k8s.io", "v1", "events", "Event", short_names=("ev",)),
    _b("coordination.k8s.io", "v1", "leases", "Lease"),
    _b("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _b("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _b("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    _b("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    _b(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        subresources=("status",),
        short_names=("pdb",),
        generation=True,
    ),
    _b(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        subresources=("status",),
        short_names=("ing",),
        generation=True,
    ),
    _b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        subresources=("status",),
        short_names=("crd", "crds"),
        generation=True,
    ),
    _b(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        False,
        verbs=("create",),
    ),
    _b("authorization.k8s.io", "v1", "subjectaccessreviews", "SubjectAccessReview", False, verbs=("create",)),
)


def from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of an (admitted) CustomResourceDefinition."""
    spec = crd["spec"]
    names = spec["names"]
    types = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        columns = tuple(
            Column(
                c["name"],
                c["type"],
                c["jsonPath"],
                c.get("description", ""),
                int(c.get("priority", 0)),
                c.get("format", ""),
            )
            for c in version.get("additionalPrinterColumns") or []
        )
        types.append(
            ResourceType(
                spec["group"],
                version["name"],
                names["plural"],
                names["kind"],
                spec["scope"] == "Namespaced",
                subresources=tuple(sorted((version.get("subresources") or {}).keys())),
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                generation=True,
                unconditional_update=False,
                crd=crd,
                columns=columns,
            )
        )
    return types
