"""How the API finds the Kubernetes API server (httpapi/kube.py), without one: a kubeconfig that
cannot be read is one line naming it, none at all is None (and the mode that needs it says so), a
server that does not answer is KubeUnavailable, and the `kubernetes` package is imported only where
the API talks to Kubernetes: a laptop's API never loads it. The calls themselves run against the
real kube-apiserver in test_kube.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from contentgen.httpapi import ApiSettings, create_app
from contentgen.httpapi.app import build_creator
from contentgen.httpapi.identity import IdentityError
from contentgen.httpapi.kube import SERVICE_ACCOUNT, KubeUnavailable, in_a_pod, load


@pytest.fixture(autouse=True)
def _no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)


def _kubeconfig(path: Path, server: str, *, current: str = "x") -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": current,
            }
        )
    )
    return path


def test_the_service_account_is_where_the_librarys_in_cluster_loader_reads_it() -> None:
    from kubernetes.config import incluster_config

    assert str(SERVICE_ACCOUNT / "token") == incluster_config.SERVICE_TOKEN_FILENAME
    assert str(SERVICE_ACCOUNT / "ca.crt") == incluster_config.SERVICE_CERT_FILENAME


def test_without_a_configuration_there_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load(account=tmp_path) is None and not in_a_pod(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "env.kubeconfig", "https://127.0.0.1:1")))
    found = load(account=tmp_path)
    assert found is not None and found.server == "https://127.0.0.1:1"
    settings = ApiSettings(catalog="unused://", api_create="kubernetes")
    monkeypatch.delenv("KUBECONFIG")
    with pytest.raises(IdentityError) as refused:
        build_creator(settings, object(), object)  # type: ignore[arg-type]
    assert str(refused.value) == (
        "CONTENTGEN_API_CREATE=kubernetes needs the Kubernetes API: run in a pod with a ServiceAccount "
        "token, or set CONTENTGEN_API_KUBECONFIG"
    )


def test_a_kubeconfig_that_cannot_be_read_is_one_line_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.kubeconfig"
    broken = tmp_path / "broken.kubeconfig"
    broken.write_text("clusters: [\n  - : :\n")
    elsewhere = _kubeconfig(tmp_path / "elsewhere.kubeconfig", "https://127.0.0.1:1", current="gone")
    said = {}
    for path in (missing, broken, elsewhere):
        with pytest.raises(ValueError, match="kubeconfig") as refused:
            load(path)
        said[path.name] = str(refused.value)
        assert "\n" not in said[path.name] and str(path) in said[path.name], said
    assert said["missing.kubeconfig"] == f"the kubeconfig {missing} does not exist"
    assert said["elsewhere.kubeconfig"].startswith(f"cannot read the kubeconfig {elsewhere}: ")
    assert "gone" in said["elsewhere.kubeconfig"]
    settings = ApiSettings(
        catalog="unused://", api_auth=["kubernetes"], api_kubeconfig=broken, api_create="off"
    )
    with pytest.raises(IdentityError) as refused:
        create_app(settings, catalog=object())  # type: ignore[arg-type]
    assert str(refused.value).startswith(f"auth kubernetes: cannot read the kubeconfig {broken}: ")


def test_a_server_that_does_not_answer_is_unavailable_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    kube = load(_kubeconfig(tmp_path / "closed.kubeconfig", f"https://127.0.0.1:{port}"))
    assert kube is not None
    with pytest.raises(KubeUnavailable) as unavailable:
        kube.get("imagegenerations", "default", "x")
    said = str(unavailable.value)
    assert (
        said.startswith(f"the Kubernetes API at https://127.0.0.1:{port} cannot be reached: ")
        and "\n" not in said
    )
    assert "refused" in said.lower()


# In a process of its own (this one has imported everything): which modes of the API load the
# kubernetes package. A kubeconfig given, it is loaded (so the check can see it).
WHO_IMPORTS = """
import json, sys
from contentgen.httpapi import ApiSettings, create_app
from contentgen.httpapi.app import build_creator
settings = ApiSettings(**json.loads(sys.argv[1]))
create_app(settings, catalog=object())
print(json.dumps("kubernetes" in sys.modules))
"""


@pytest.mark.parametrize(
    ("settings", "loaded"),
    [
        ({"api_auth": ["local"], "api_offline": True}, False),  # `contentgen api --local`
        ({"api_auth": ["tokens"]}, False),  # static tokens, creates off (auto, no pod, no kubeconfig)
        ({"api_auth": ["tokens"], "api_create": "kubernetes"}, True),
    ],
    ids=["laptop", "tokens", "creates-in-a-cluster"],
)
def test_only_an_api_that_talks_to_kubernetes_imports_its_client(
    tmp_path: Path, settings: dict[str, object], loaded: bool
) -> None:
    tokens = tmp_path / "tokens.yaml"
    tokens.write_text("tokens: [{owner: alice, token: alice-token-0123456789}]")
    values = {
        "catalog": "unused://",
        "store": str(tmp_path / "store"),
        "api_tokens_file": str(tokens),
        **settings,
    }
    if loaded:
        values["api_kubeconfig"] = str(_kubeconfig(tmp_path / "k.kubeconfig", "https://127.0.0.1:1"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBERNETES_", "KUBECONFIG"))}
    env["HOME"] = str(tmp_path)
    ran = subprocess.run(
        [sys.executable, "-c", WHO_IMPORTS, json.dumps(values)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout.splitlines()[-1]) is loaded
