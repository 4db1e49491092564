"""Authentication and RBAC authorization, as kube-apiserver does them.

- Bearer tokens: static ones (the admin's) and ServiceAccount tokens this control plane mints
  (TokenRequest, the pod runner), valid while the ServiceAccount with that uid exists.
  A ServiceAccount is `system:serviceaccount:NS:NAME` in the groups `system:serviceaccounts`,
  `system:serviceaccounts:NS` and `system:authenticated`.
- Impersonation headers (Impersonate-User, -Group), allowed by the `impersonate` verb.
- The RBAC authorizer: ClusterRoleBindings grant their ClusterRole everywhere, RoleBindings
  their Role or ClusterRole in their namespace; rules match verbs, API groups, resources
  (`*`, `res/sub`, `*/sub`, `res/*`), resourceNames, and non-resource URLs. `system:masters`
  is allowed everything, like the real privileged-group authorizer.
- The bootstrap policy a real cluster starts with for discovery (`system:discovery`,
  `system:basic-user`, `system:public-info-viewer`).
- Escalation prevention: creating or updating a Role or ClusterRole needs every permission in it
  (or `escalate`), a binding needs every permission of its role (or `bind`).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from typing import Any

from .apiserver import MASTERS, Attributes, ControlPlane, Request, User
from .errors import forbidden, unauthorized

RBAC = "rbac.authorization.k8s.io"
AUTHENTICATED = "system:authenticated"


def service_account_user(namespace: str, name: str, uid: str = "") -> User:
    return User(
        f"system:serviceaccount:{namespace}:{name}",
        ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED),
        uid,
    )


@dataclass(frozen=True)
class _Minted:
    namespace: str
    name: str
    uid: str


class Authenticator:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.static: dict[str, User] = {}
        self._minted: dict[str, _Minted] = {}
        self._lock = threading.Lock()
        plane.token_issuer = self.mint

    def add_static(self, token: str, user: User) -> None:
        self.static[token] = user

    def mint(self, namespace: str, name: str, uid: str) -> str:
        """A token for a ServiceAccount (what TokenRequest and projected volumes return)."""
        token = "sa." + secrets.token_urlsafe(32)
        with self._lock:
            self._minted[token] = _Minted(namespace, name, uid)
        return token

    def authenticate(self, header: str) -> User:
        """The user of an `Authorization` header; anonymous without one; 401 for a bad token."""
        if not header:
            return User("system:anonymous", ("system:unauthenticated",))
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized()
        token = token.strip()
        if token in self.static:
            return self.static[token]
        with self._lock:
            minted = self._minted.get(token)
        if minted is None:
            raise unauthorized()
        account = self.plane.store.peek(("", "serviceaccounts"), minted.namespace, minted.name)
        if account is None or account["metadata"]["uid"] != minted.uid:
            raise unauthorized()  # a bound token dies with its ServiceAccount
        return service_account_user(minted.namespace, minted.name, minted.uid)

    def impersonate(self, user: User, headers: Any) -> User:
        """Apply Impersonate-User / Impersonate-Group, checking the `impersonate` verb."""
        target = headers.get("Impersonate-User")
        groups = (
            headers.get_all("Impersonate-Group")
            if hasattr(headers, "get_all")
            else headers.get("Impersonate-Group")
        )
        groups = list(groups or [])
        if not target:
            if groups:
                raise forbidden("users", "", "", "requested impersonation of groups without a user")
            return user
        if target.startswith("system:serviceaccount:"):
            _, _, namespace, name = target.split(":", 3)
            attrs = Attributes(
                user, "impersonate", "", "v1", "serviceaccounts", namespace=namespace, name=name
            )
            new = service_account_user(namespace, name)
            new = User(new.name, tuple(dict.fromkeys([*new.groups, *groups])))
        else:
            attrs = Attributes(user, "impersonate", "", "v1", "users", name=target)
            new = User(target, tuple(dict.fromkeys([*groups, AUTHENTICATED])))
        checks = [attrs] + [Attributes(user, "impersonate", "", "v1", "groups", name=g) for g in groups]
        for check in checks:
            allowed, _ = self.plane.authorize(check)
            if not allowed:
                where = f'in the namespace "{check.namespace}"' if check.namespace else "at the cluster scope"
                raise forbidden(
                    check.resource,
                    "",
                    check.name,
                    f'User "{user.name}" cannot impersonate resource "{check.resource}" '
                    f'in API group "" {where}',
                )
        return new


# --- the authorizer ---------------------------------------------------------------------------------


def _subject_matches(subject: dict[str, Any], user: User, binding_namespace: str) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return bool(subject.get("name") == user.name)
    if kind == "Group":
        return subject.get("name") in user.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return user.name == f"system:serviceaccount:{namespace}:{subject.get('name')}"
    return False


def _resource_matches(rule: dict[str, Any], resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for r in rule.get("resources") or []:
        if r == "*" or r == combined:
            return True
        if subresource and (r == f"*/{subresource}" or r == f"{resource}/*"):
            return True
    return False


def rule_allows(rule: dict[str, Any], attrs: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.resource_request:
        for url in rule.get("nonResourceURLs") or []:
            if url == "*" or url == attrs.path or (url.endswith("*") and attrs.path.startswith(url[:-1])):
                return True
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.group not in groups:
        return False
    if not _resource_matches(rule, attrs.resource, attrs.subresource):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


BOOTSTRAP: list[dict[str, Any]] = [
    {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "system:discovery", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": [
            {
                "nonResourceURLs": [
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
                "verbs": ["get"],
            }
        ],
    },
    {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "system:basic-user", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": [
            {
                "apiGroups": ["authorization.k8s.io"],
                "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                "verbs": ["create"],
            }
        ],
    },
    {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": "system:public-info-viewer",
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        },
        "rules": [
            {"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}
        ],
    },
    {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "cluster-admin", "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
        "rules": [
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            {"nonResourceURLs": ["*"], "verbs": ["*"]},
        ],
    },
]
for _role, _groups in (
    ("system:discovery", [AUTHENTICATED]),
    ("system:basic-user", [AUTHENTICATED]),
    ("system:public-info-viewer", [AUTHENTICATED, "system:unauthenticated"]),
    ("cluster-admin", [MASTERS]),
):
    BOOTSTRAP.append(
        {
            "apiVersion": f"{RBAC}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": _role, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
            "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": _role},
            "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": g} for g in _groups],
        }
    )


RBAC_TYPES = [(RBAC, p) for p in ("clusterrolebindings", "clusterroles", "rolebindings", "roles")]
RULE_CACHE_SIZE = 10_000


class RbacAuthorizer:
    """Privileged group, then RBAC (the authorization chain `--authorization-mode=RBAC`)."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        # (user, namespace) -> (the RBAC types' write counts, the rules): every request asks, and
        # collecting walks every binding; the answer holds until a role or binding changes.
        self._rules: dict[tuple[User, str], tuple[tuple[int, ...], list[dict[str, Any]]]] = {}

    def rules_for(self, user: User, namespace: str) -> list[dict[str, Any]]:
        """The rules that apply to `user` in `namespace` (callers must not change them)."""
        with self.plane.store.lock:
            stamp = tuple(self.plane.store.writes.get(key, 0) for key in RBAC_TYPES)
            cached = self._rules.get((user, namespace))
            if cached is not None and cached[0] == stamp:
                return cached[1]
            rules = self._collect(user, namespace)
            if len(self._rules) >= RULE_CACHE_SIZE:
                self._rules.clear()
            self._rules[(user, namespace)] = (stamp, rules)
            return rules

    def _collect(self, user: User, namespace: str) -> list[dict[str, Any]]:
        store = self.plane.store
        rules: list[dict[str, Any]] = []
        for binding in store.items((RBAC, "clusterrolebindings")):
            if any(_subject_matches(s, user, "") for s in binding.get("subjects") or []):
                role = store.peek((RBAC, "clusterroles"), "", binding["roleRef"]["name"])
                rules += (role or {}).get("rules") or []
        if namespace:
            for binding in store.items((RBAC, "rolebindings"), namespace):
                if not any(_subject_matches(s, user, namespace) for s in binding.get("subjects") or []):
                    continue
                ref = binding["roleRef"]
                if ref.get("kind") == "ClusterRole":
                    role = store.peek((RBAC, "clusterroles"), "", ref["name"])
                else:
                    role = store.peek((RBAC, "roles"), namespace, ref["name"])
                rules += (role or {}).get("rules") or []
        return rules

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        if MASTERS in attrs.user.groups:
            return True, ""
        with self.plane.store.lock:
            for rule in self.rules_for(attrs.user, attrs.namespace):
                if rule_allows(rule, attrs):
                    return True, ""
        return False, ""


# --- escalation prevention (registry/rbac: ConfirmNoEscalation, BindingAuthorized) ------------------


def _expand(rule: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(verb, group, resource, name) items a rule grants ("" name: any)."""
    out = []
    for verb in rule.get("verbs") or []:
        if rule.get("nonResourceURLs"):
            out += [(verb, "", "", url) for url in rule["nonResourceURLs"]]
            continue
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                for name in rule.get("resourceNames") or [""]:
                    out.append((verb, group, resource, name))
    return out


def _holds(
    plane: ControlPlane, user: User, namespace: str, item: tuple[str, str, str, str], non_resource: bool
) -> bool:
    verb, group, resource, name = item
    if non_resource:
        attrs = Attributes(user, verb, path=name)
    else:
        res, _, sub = resource.partition("/")
        attrs = Attributes(user, verb, group, "", res, sub, namespace, name)
    allowed, _ = plane.authorizer.authorize(attrs)
    return allowed


def _format_rule(item: tuple[str, str, str, str], non_resource: bool) -> str:
    verb, group, resource, name = item
    if non_resource:
        return f'{{NonResourceURLs:["{name}"], Verbs:["{verb}"]}}'
    names = f', ResourceNames:["{name}"]' if name else ""
    return f'{{APIGroups:["{group}"], Resources:["{resource}"]{names}, Verbs:["{verb}"]}}'


def escalation_check(
    plane: ControlPlane, req: Request, obj: dict[str, Any] | None, old: dict[str, Any] | None
) -> None:
    """An admission plugin: refuse roles and bindings that grant more than their author holds."""
    t = req.type
    if obj is None or t.group != RBAC or MASTERS in req.user.groups:
        return
    namespace = req.namespace if t.namespaced else ""
    if t.plural in ("roles", "clusterroles"):
        verb_resource = t.plural
        allowed, _ = plane.authorizer.authorize(
            Attributes(
                req.user,
                "escalate",
                RBAC,
                "v1",
                verb_resource,
                namespace=namespace,
                name=obj["metadata"]["name"],
            )
        )
        if allowed:
            return
        rules = obj.get("rules") or []
    elif t.plural in ("rolebindings", "clusterrolebindings"):
        ref = obj.get("roleRef") or {}
        role_plural = "clusterroles" if ref.get("kind") == "ClusterRole" else "roles"
        allowed, _ = plane.authorizer.authorize(
            Attributes(
                req.user,
                "bind",
                RBAC,
                "v1",
                role_plural,
                namespace=namespace if role_plural == "roles" else "",
                name=ref.get("name", ""),
            )
        )
        if allowed:
            return
        role = plane.store.peek(
            (RBAC, role_plural), namespace if role_plural == "roles" else "", ref.get("name", "")
        )
        rules = (role or {}).get("rules") or []
    else:
        return
    missing = []
    for rule in rules:
        non_resource = bool(rule.get("nonResourceURLs"))
        for item in _expand(rule):
            if not _holds(plane, req.user, namespace, item, non_resource):
                missing.append(_format_rule(item, non_resource))
    if missing:
        groups = " ".join(f'"{g}"' for g in req.user.groups)
        raise forbidden(
            t.plural,
            t.group,
            obj["metadata"]["name"],
            f'user "{req.user.name}" (groups=[{groups}]) '
            "is attempting to grant RBAC permissions not currently held:\n" + "\n".join(missing),
        )
