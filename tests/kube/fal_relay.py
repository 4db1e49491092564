"""fal for the workers of the operator's tests on the real control plane: the fal fake
(tests/providers/fake_fal.py, fal's documented wire protocol) served by the test on this machine,
and the worker image's entry point wrapped so that the worker's requests to fal's hosts reach it.

Test infrastructure only, nothing of the product: contentgen has no setting that points fal
elsewhere, and fal-client's own (FAL_QUEUE_RUN_HOST) moves only the queue, still over https, with
its storage and CDN hosts fixed. A pod runs an image, not this checkout: `images` layers the
project's operator and worker images with this file as their entry point (`python fal_relay.py
worker`: `main` replaces httpx's transport in the worker's own process, then runs `contentgen
worker` as the image does) and the relay's address as a cluster DNS name (`SERVICE` in `default`,
whatever namespace the workers run in), fixed before the cluster and the relay exist;
`service_to` points that Service at the relay on the host once both do (`cluster(fal_relay=URL)`,
tests/kube/harness.py, does both). A request to one of `FAL_HOSTS` goes to the relay instead, its
own URL in a header, and `serve` answers it there with the fake, one request at a time, as the
fake answers in-process tests (`tests.providers.fakes.mocked`). Every other request (the source,
the store, the API server) goes where it was going."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

RELAY_ENV = "CONTENTGEN_TEST_FAL_RELAY"  # the relay's URL, in the worker's environment
URL_HEADER = "X-Relayed-Url"  # the request's own URL, on its way to the relay
# fal's hosts as fal-client and the provider call them (the queue and its backup, storage, the
# CDN, the platform API)
FAL_HOSTS = frozenset({"queue.fal.run", "queue.falrun.com", "rest.fal.ai", "v3.fal.media", "api.fal.ai"})
# set again for the body each hop carries, or the connection's own
HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive"})


def _headers(headers: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.lower() not in HOP_HEADERS | {URL_HEADER.lower()}]


# --- the worker's side ----------------------------------------------------------------------------


def install(relay: str) -> None:
    """This process's requests to fal's hosts go to `relay`, their URL in `URL_HEADER`."""
    target = httpx.URL(relay)
    send = httpx.HTTPTransport.handle_request

    def handle_request(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        if request.url.host not in FAL_HOSTS:
            return send(self, request)
        relayed = httpx.Request(
            request.method,
            target,
            headers=[*_headers(request.headers), (URL_HEADER, str(request.url))],
            content=request.read(),
            extensions=request.extensions,
        )
        return send(self, relayed)

    httpx.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]


def main() -> int:
    """The worker image's entry point with fal relayed: `python tests/kube/fal_relay.py worker ...`,
    with this checkout's contentgen (the one its editable install names, or a worktree's own)."""
    install(os.environ[RELAY_ENV])
    # the script's own folder (tests/kube) is no place to import from; the checkout's operator is
    sys.path[0] = str(Path(__file__).resolve().parents[2] / "operator")
    from contentgen.cli.main import main as contentgen

    return contentgen(sys.argv[1:])


# --- the test's side ------------------------------------------------------------------------------


@dataclass
class Relay:
    url: str
    problems: list[str] = field(default_factory=list)  # requests the fake could not answer
    port: int = 0


@contextmanager
def serve(fake: Callable[[httpx.Request], httpx.Response], host: str = "127.0.0.1") -> Iterator[Relay]:
    """`fake` answering relayed requests on `host`, one at a time (the fal fake keeps state)."""
    lock = threading.Lock()
    relay = Relay("")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            url = self.headers.get(URL_HEADER, "")
            try:
                request = httpx.Request(self.command, url, headers=_headers(self.headers), content=body)
                with lock:
                    response = fake(request)
                    content = response.read()
            except Exception as exc:  # the test fails on it (Relay.problems); the worker sees a 500
                relay.problems.append(f"{self.command} {url}: {type(exc).__name__}: {exc}")
                response, content = httpx.Response(500), f"the relay: {exc}".encode()
            self.send_response(response.status_code)
            for key, value in _headers(response.headers):
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def do_GET(self) -> None:
            self.answer()

        def do_POST(self) -> None:
            self.answer()

        def do_PUT(self) -> None:
            self.answer()

        def do_DELETE(self) -> None:
            self.answer()

    server = ThreadingHTTPServer((host, 0), Handler)
    server.daemon_threads = True
    relay.url = f"http://{host}:{server.server_address[1]}"
    relay.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="fal-relay", daemon=True)
    thread.start()
    try:
        yield relay
    finally:
        server.shutdown()
        server.server_close()


# --- the real node's images -------------------------------------------------------------------------

SERVICE = "fal-relay"  # a Service without a selector, its EndpointSlice the relay on the host
IN_IMAGE = "/opt/fal-relay/fal_relay.py"
REPOSITORY = "localcluster.local/{name}-falrelay"


def service_url(namespace: str) -> str:
    return f"http://{SERVICE}.{namespace}.svc.cluster.local"


def images(names: list[str], namespace: str, out: Path) -> dict[str, tuple[str, Path]]:
    """name -> (reference, archive): the project's image `name` (built or current, scripts/images.py)
    with this file as its entry point and the relay's Service URL in RELAY_ENV, by buildah. The
    reference's tag is a digest of the product image, this file and the URL: a new build only
    when one of them changed."""
    checkout = str(Path(__file__).resolve().parents[2])  # scripts/ is the checkout's, not a package's
    if checkout not in sys.path:
        sys.path.insert(0, checkout)
    from scripts import images as product

    engine = product.find_engine(os.environ.get("CONTAINER_ENGINE") or None, install=True)
    index = product.build(names, product.DEFAULT_REGISTRY, product.version(), engine, log=lambda _: None)
    url = service_url(namespace)
    made: dict[str, tuple[str, Path]] = {}
    for name in names:
        entry = index["images"][name]  # type: ignore[index]
        key = hashlib.sha256(f"{entry['digest']}\n{url}\n".encode() + Path(__file__).read_bytes()).hexdigest()
        reference = f"{REPOSITORY.format(name=name)}:{key[:16]}"
        archive = out / f"{name}-falrelay-{key[:16]}.tar"
        if not archive.is_file():
            _layer(engine, str(entry["image"]), reference, url, archive)
        made[name] = (reference, archive)
    return made


def _layer(engine: str, base: str, reference: str, url: str, archive: Path) -> None:
    from scripts import images as product

    def run(*args: str) -> str:
        done = product._run([engine, *args])
        product._check(done, f"{Path(engine).name} {args[0]}")
        return done.stdout.strip()

    container = run("from", "--pull=never", "--quiet", base).splitlines()[-1]
    try:
        run("copy", "--chmod", "0644", container, __file__, IN_IMAGE)
        run(
            "config",
            "--entrypoint",
            json.dumps(["python", IN_IMAGE]),
            "--env",
            f"{RELAY_ENV}={url}",
            container,
        )
        run("commit", "--quiet", container, reference)
    finally:
        run("rm", container)
    partial = archive.with_suffix(".partial")
    archive.parent.mkdir(parents=True, exist_ok=True)
    run(*product.save_command(engine, reference, partial)[1:])
    partial.rename(archive)


def service_to(relay: Relay, host: str, namespace: str) -> list[dict[str, Any]]:
    """The Service `SERVICE` in `namespace` and its EndpointSlice: port 80 to the relay on `host`."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": namespace},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": relay.port, "protocol": "TCP"}]},
        },
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": SERVICE,
                "namespace": namespace,
                "labels": {"kubernetes.io/service-name": SERVICE},
            },
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": relay.port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [host], "conditions": {"ready": True}}],
        },
    ]


if __name__ == "__main__":
    sys.exit(main())
