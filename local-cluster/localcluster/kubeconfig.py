"""kubeconfig files for the cluster's users: a client certificate (admin, the controllers, the
node) or a bearer token (a ServiceAccount's), all trusting the cluster's CA."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml


def write(
    path: Path,
    *,
    server: str,
    ca_pem: bytes,
    user: str,
    cert: Path | None = None,
    key: Path | None = None,
    token: str | None = None,
    token_file: Path | None = None,
    namespace: str = "default",
) -> Path:
    credentials: dict[str, Any] = {}
    if cert is not None and key is not None:
        credentials["client-certificate-data"] = base64.b64encode(cert.read_bytes()).decode()
        credentials["client-key-data"] = base64.b64encode(key.read_bytes()).decode()
    if token is not None:
        credentials["token"] = token
    if token_file is not None:
        credentials["tokenFile"] = str(token_file)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "local",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [
            {"name": "local", "context": {"cluster": "local", "user": user, "namespace": namespace}}
        ],
        "current-context": "local",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)  # readers never see half a file
    return path
