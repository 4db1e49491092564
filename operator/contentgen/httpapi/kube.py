"""The API's connection to the Kubernetes API server, through the maintained `kubernetes` client:
TokenReview, and create, get, merge patch and delete of contentgen's custom resources, as the
library's typed calls (AuthenticationV1Api, CustomObjectsApi), answers as the server's JSON.

Configured as that library reads it: in a pod, the ServiceAccount (its token read again each
minute, as the kubelet rotates it); elsewhere a kubeconfig (CONTENTGEN_API_KUBECONFIG, else
$KUBECONFIG), its current context with whatever its user authenticates with (a token or tokenFile,
a client certificate, an exec plugin, an auth provider). The library is imported only where the
API talks to Kubernetes: a laptop's API never loads it. Each call is sent once with a 10 s
timeout; a server that cannot be reached or fails is KubeUnavailable (the routes answer 503 with
Retry-After), a refusal KubeError with the server's Status."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contentgen import __version__
from contentgen.api import GROUP, VERSION

if TYPE_CHECKING:
    from kubernetes.client import ApiClient, Configuration

# Where a pod's ServiceAccount is mounted: the paths the library's in-cluster loader reads.
SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TIMEOUT_SECONDS = 10.0


class KubeUnavailable(Exception):
    """The API server could not be reached or answered with a server error."""


class KubeError(Exception):
    """The API server refused a request; `status` is its HTTP status, `body` its Status object."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body.get("message") or f"HTTP {status}"))
        self.status = status
        self.body = body

    @property
    def reason(self) -> str:
        return str(self.body.get("reason") or "")

    @property
    def message(self) -> str:
        return str(self.body.get("message") or "")

    def causes(self) -> list[dict[str, str]]:
        return list((self.body.get("details") or {}).get("causes") or [])


def in_a_pod(account: Path = SERVICE_ACCOUNT) -> bool:
    """Whether this process runs in a pod with a ServiceAccount token: what the library's
    in-cluster loader needs (the service's host and port, the token file), checked without it."""
    service = os.environ.get("KUBERNETES_SERVICE_HOST") and os.environ.get("KUBERNETES_SERVICE_PORT")
    return bool(service) and (account / "token").is_file()


def load(kubeconfig: Path | None = None, *, account: Path = SERVICE_ACCOUNT) -> Kube | None:
    """The API server of `kubeconfig`; else, in a pod, its ServiceAccount's (`account`); else
    $KUBECONFIG's; None where there is none. ValueError in one line where a configuration cannot
    be read."""
    if kubeconfig is None and not in_a_pod(account) and not os.environ.get("KUBECONFIG"):
        return None
    from kubernetes import client, config
    from kubernetes.config.incluster_config import InClusterConfigLoader

    configuration = client.Configuration()
    if kubeconfig is None and in_a_pod(account):
        try:
            loader = InClusterConfigLoader(str(account / "token"), str(account / "ca.crt"))
            loader.load_and_set(configuration)
        except config.ConfigException as exc:
            raise ValueError(f"the pod's ServiceAccount ({account}): {_one_line(exc)}") from None
        return Kube(configuration)
    path = str(kubeconfig) if kubeconfig is not None else os.environ["KUBECONFIG"]
    if kubeconfig is not None and not kubeconfig.is_file():
        raise ValueError(f"the kubeconfig {kubeconfig} does not exist")
    try:
        config.load_kube_config(config_file=path, client_configuration=configuration)
    except Exception as exc:  # the library's ConfigException, YAML's and the OS's errors alike
        raise ValueError(f"cannot read the kubeconfig {path}: {_one_line(exc)}") from None
    return Kube(configuration)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class Kube:
    """The calls the API makes, on one connection pool; safe to share between request threads."""

    def __init__(self, configuration: Configuration, timeout: float = TIMEOUT_SECONDS) -> None:
        from kubernetes import client

        configuration.retries = False  # sent once: a caller is told to retry (503, Retry-After)
        self.server = str(configuration.host)
        self.timeout = timeout
        self.api: ApiClient = client.ApiClient(configuration)
        self.api.user_agent = f"contentgen-api/{__version__}"
        self._objects = client.CustomObjectsApi(self.api)
        self._authentication = client.AuthenticationV1Api(self.api)

    def review_token(self, token: str, audiences: tuple[str, ...] = ()) -> dict[str, Any]:
        """A TokenReview of `token` (for `audiences`, where given): its status as the server wrote it."""
        from kubernetes import client

        spec = client.V1TokenReviewSpec(token=token, audiences=list(audiences) or None)
        review = client.V1TokenReview(api_version="authentication.k8s.io/v1", kind="TokenReview", spec=spec)
        answer = self._call(self._authentication.create_token_review, review)
        wire = self.api.sanitize_for_serialization(answer)
        status: dict[str, Any] = wire.get("status") or {}
        return status

    def create(self, plural: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        made: dict[str, Any] = self._call(
            self._objects.create_namespaced_custom_object, GROUP, VERSION, namespace, plural, body
        )
        return made

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call(
            self._objects.get_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
        )
        return found

    def merge_patch(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (RFC 7386); with metadata.resourceVersion in it, the API server
        applies it only to that version (409 Conflict otherwise)."""
        patched: dict[str, Any] = self._call(
            self._objects.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            patch,
            _content_type="application/merge-patch+json",
        )
        return patched

    def delete(self, plural: str, namespace: str, name: str, *, uid: str) -> None:
        """Deleted in the background, and only where its uid is still `uid` (409 otherwise): never a
        newer resource of the same name."""
        from kubernetes import client

        options = client.V1DeleteOptions(
            api_version="v1",
            kind="DeleteOptions",
            propagation_policy="Background",
            preconditions=client.V1Preconditions(uid=uid),
        )
        self._call(
            self._objects.delete_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            plural,
            name,
            body=options,
        )

    def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        """`method` of the library, its failures as KubeError (refused) or KubeUnavailable."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            return method(*args, _request_timeout=self.timeout, **kwargs)
        except ApiException as exc:
            if not exc.status:  # the library's word for a TLS failure: no answer came
                raise KubeUnavailable(
                    f"the Kubernetes API at {self.server} cannot be reached: {_one_line(exc.reason or exc)}"
                ) from None
            body = _status_of(exc.body)
            if exc.status >= 500 and exc.status != 501:
                raise KubeUnavailable(
                    f"the Kubernetes API answered {exc.status}: {body.get('message', '')}"
                ) from None
            raise KubeError(exc.status, body) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise KubeUnavailable(
                f"the Kubernetes API at {self.server} cannot be reached: {_one_line(reason)}"
            ) from None


def _status_of(text: str | bytes | None) -> dict[str, Any]:
    """A refusal's body as the Status object it is ({} where it is none)."""
    try:
        body = json.loads(text or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
