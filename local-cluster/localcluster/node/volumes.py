"""A pod's volumes as host directories (pods/<uid>/volumes/<name>): emptyDir, secret, configMap,
downwardAPI and projected (serviceAccountToken, configMap, secret, downwardAPI), written as the
kubelet's atomic writer does (a whole new set of files, then one rename), with file modes from
`defaultMode`/`mode`. ServiceAccount tokens come from the TokenRequest API, bound to the pod, and
are renewed once 80 % of their lifetime has passed (pkg/kubelet/token)."""

from __future__ import annotations

import base64
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..client import ApiError, Client
from .env import ConfigError, field_value, resource_field

DEFAULT_MODE = 0o644
TOKEN_SECONDS = 3607


@dataclass
class Token:
    volume: str
    path: str
    audiences: list[str]
    seconds: int
    issued: float = 0.0
    expires: float = 0.0


@dataclass
class Volumes:
    """The volumes of one pod. `paths` maps volume names to host directories."""

    client: Client
    pod: dict[str, Any]
    root: Path
    pod_ip: str
    allocatable: dict[str, str]
    paths: dict[str, Path] = field(default_factory=dict)
    tokens: list[Token] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    def prepare(self) -> None:
        """Make every volume (raises ConfigError with the kubelet's FailedMount message)."""
        for volume in self.pod["spec"].get("volumes") or []:
            name = volume["name"]
            target = self.root / name
            if "emptyDir" in volume:
                target.mkdir(parents=True, exist_ok=True)
            else:
                files = self._files(volume)
                _atomic_write(target, files)
            self.paths[name] = target

    def _files(self, volume: dict[str, Any]) -> dict[str, tuple[bytes, int]]:
        name = volume["name"]
        try:
            if "secret" in volume:
                source = volume["secret"]
                return self._object_files("secrets", source.get("secretName", ""), source, name)
            if "configMap" in volume:
                source = volume["configMap"]
                return self._object_files("configmaps", source.get("name", ""), source, name)
            if "downwardAPI" in volume:
                source = volume["downwardAPI"]
                return self._downward(source.get("items") or [], source.get("defaultMode", DEFAULT_MODE))
            if "projected" in volume:
                return self._projected(volume["projected"], name)
        except ConfigError as exc:
            raise ConfigError(f'MountVolume.SetUp failed for volume "{name}" : {exc}') from None
        raise ConfigError(
            f'MountVolume.SetUp failed for volume "{name}" : the local node has no such volume type '
            "(it has emptyDir, secret, configMap, downwardAPI and projected)"
        )

    def _get(self, resource: str, name: str) -> dict[str, Any] | None:
        try:
            return self.client.get_or_none(f"/api/v1/namespaces/{self.namespace}/{resource}/{name}")  # type: ignore[no-any-return]
        except ApiError as exc:  # 403 until the Node authorizer's graph has the pod
            raise ConfigError(f"failed to sync {resource[:-1]} cache: {exc}") from None

    def _object_files(
        self, resource: str, name: str, source: dict[str, Any], volume: str, default_mode: int | None = None
    ) -> dict[str, tuple[bytes, int]]:
        obj = self._get(resource, name)
        kind = "secret" if resource == "secrets" else "configmap"
        if obj is None:
            if source.get("optional"):
                return {}
            raise ConfigError(f'{kind} "{name}" not found')
        if resource == "secrets":
            data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        else:
            data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
            data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        mode = source.get("defaultMode", default_mode if default_mode is not None else DEFAULT_MODE)
        items = source.get("items")
        if items is None:
            return {k: (v, mode) for k, v in data.items()}
        files = {}
        for item in items:
            if item["key"] not in data:
                if source.get("optional"):
                    continue
                raise ConfigError(f"configmap references non-existent config key: {item['key']}")
            files[item["path"]] = (data[item["key"]], item.get("mode", mode))
        return files

    def _downward(self, items: list[dict[str, Any]], mode: int) -> dict[str, tuple[bytes, int]]:
        files = {}
        for item in items:
            if "fieldRef" in item:
                value = field_value(self.pod, item["fieldRef"].get("fieldPath", ""), self.pod_ip)
            else:
                value = resource_field(self.pod, item.get("resourceFieldRef") or {}, self.allocatable)
            files[item["path"]] = (value.encode(), item.get("mode", mode))
        return files

    def _projected(self, projected: dict[str, Any], volume: str) -> dict[str, tuple[bytes, int]]:
        mode = projected.get("defaultMode", DEFAULT_MODE)
        files: dict[str, tuple[bytes, int]] = {}
        for source in projected.get("sources") or []:
            if "serviceAccountToken" in source:
                spec = source["serviceAccountToken"]
                token = Token(
                    volume,
                    spec.get("path", "token"),
                    [spec["audience"]] if spec.get("audience") else [],
                    int(spec.get("expirationSeconds") or TOKEN_SECONDS),
                )
                files[token.path] = (self._request_token(token).encode(), mode)
                self.tokens = [t for t in self.tokens if (t.volume, t.path) != (volume, token.path)]
                self.tokens.append(token)
            elif "configMap" in source:
                s = source["configMap"]
                files.update(self._object_files("configmaps", s.get("name", ""), s, volume, mode))
            elif "secret" in source:
                s = source["secret"]
                files.update(self._object_files("secrets", s.get("name", ""), s, volume, mode))
            elif "downwardAPI" in source:
                files.update(self._downward(source["downwardAPI"].get("items") or [], mode))
            else:
                raise ConfigError(
                    "the local node projects serviceAccountToken, configMap, secret and downwardAPI"
                )
        return files

    def _request_token(self, token: Token) -> str:
        m, spec = self.pod["metadata"], self.pod["spec"]
        account = spec.get("serviceAccountName") or "default"
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": token.audiences,
                "expirationSeconds": token.seconds,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": m["name"], "uid": m["uid"]},
            },
        }
        try:
            answer = self.client.create(
                f"/api/v1/namespaces/{self.namespace}/serviceaccounts/{account}/token", body
            )
        except ApiError as exc:
            raise ConfigError(f"failed to fetch token: {exc}") from None
        token.issued = time.time()
        expires = answer["status"].get("expirationTimestamp", "")
        token.expires = _timestamp(expires) if expires else token.issued + token.seconds
        return str(answer["status"]["token"])

    def renew_tokens(self) -> None:
        """Rewrite the projected volumes whose tokens are 80 % through their lifetime."""
        now = time.time()
        due = {t.volume for t in self.tokens if now >= t.issued + 0.8 * (t.expires - t.issued)}
        for volume in self.pod["spec"].get("volumes") or []:
            if volume["name"] in due:
                _atomic_write(self.paths[volume["name"]], self._files(volume))


def _timestamp(value: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _atomic_write(target: Path, files: dict[str, tuple[bytes, int]]) -> None:
    """The kubelet's AtomicWriter, simplified: the files go into a fresh timestamped folder, the
    `..data` link moves to it in one rename, and each visible name links through `..data`."""
    target.mkdir(parents=True, exist_ok=True)
    fresh = target / f"..{time.time_ns()}"
    fresh.mkdir()
    for relative, (content, mode) in files.items():
        path = fresh / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    link = target / "..data_tmp"
    link.unlink(missing_ok=True)
    link.symlink_to(fresh.name)
    previous = os.readlink(target / "..data") if (target / "..data").is_symlink() else None
    link.replace(target / "..data")
    for top in {relative.split("/", 1)[0] for relative in files}:
        visible = target / top
        if not visible.is_symlink():
            visible.symlink_to(f"..data/{top}")
    if previous:
        shutil.rmtree(target / previous, ignore_errors=True)
    current = {r.split("/", 1)[0] for r in files}
    for entry in target.iterdir():  # names gone from the source
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in current:
            entry.unlink()


Renewer = Callable[[], None]
