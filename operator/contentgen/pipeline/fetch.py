"""Fetching a source: http(s) streamed to disk with a size cap, s3:// through boto3, and local
paths for local runs only.

Hosts are resolved before connecting, and loopback, link-local (169.254.0.0/16, the cloud
metadata address), private, multicast and reserved addresses are refused unless the settings
allow them. The connection goes to the address that was checked (with the original host name
for TLS and the Host header), so DNS cannot swap in another address between check and
connect; every redirect hop is checked the same way.

Name resolution fails in two ways that mean different things. A temporary failure (EAI_AGAIN:
a resolver timed out or answered SERVFAIL; EAI_FAIL and system errors likewise) says nothing
about the name, so it is retried with backoff and, if it persists, fails the attempt as
transient (the Job's next attempt tries again). Only a definite "no such name" (EAI_NONAME, or
EAI_NODATA: the name has no address), given twice in a row, is the user's error (InvalidInput).
"""

from __future__ import annotations

import ipaddress
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from contentgen.api import is_local_path
from contentgen.errors import InvalidInput, SourceRefused, TransientError
from contentgen.pipeline.progress import SubProgress
from contentgen.redact import redact_url
from contentgen.store.access import StorePlace, located

if TYPE_CHECKING:
    import httpx  # imported where a URL is fetched: a local run's file needs none of it (~60 ms)

MAX_REDIRECTS = 5
CHUNK = 1024 * 1024
DNS_ATTEMPTS = 5  # waits of up to 1, 2, 4, 8 s between them
DNS_MAX_DELAY = 8.0

# getaddrinfo(host, port) as socket.getaddrinfo answers it: (family, type, proto, name, sockaddr)
Resolver = Callable[[str, int], Sequence[tuple[Any, ...]]]

# "no such name" and "no address for the name": definite answers about the name itself
_DEFINITE = frozenset(
    code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None)) if code
)


def _getaddrinfo(host: str, port: int) -> Sequence[tuple[Any, ...]]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


@dataclass(frozen=True)
class Fetched:
    path: Path
    size_bytes: int
    public_url: str | None  # a URL a provider could fetch itself (http(s) sources on public hosts)


def _blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or (isinstance(ip, ipaddress.IPv4Address) and ip in ipaddress.ip_network("100.64.0.0/10"))
    )


def resolve(
    host: str,
    port: int,
    resolver: Resolver = _getaddrinfo,
    sleep: Callable[[float], None] = time.sleep,
    jitter: Callable[[], float] = random.random,
    field: str = "source.url",
) -> Sequence[tuple[Any, ...]]:
    """`resolver(host, port)`, retried with backoff while the failure is temporary. InvalidInput
    (naming `field`, where the URL came from) only when the name is definitely unknown twice in a
    row; TransientError when the resolver never answered for sure."""
    definite = 0
    why = ""
    for attempt in range(1, DNS_ATTEMPTS + 1):
        try:
            return resolver(host, port)
        except socket.gaierror as exc:
            why = exc.strerror or str(exc)
            definite = definite + 1 if exc.errno in _DEFINITE else 0
            if definite >= 2:
                raise InvalidInput(f"cannot resolve host {host!r}: {why}; check {field}") from None
        except OSError as exc:  # a timeout or a socket error while asking
            why, definite = type(exc).__name__, 0
        if attempt < DNS_ATTEMPTS:
            sleep(jitter() * min(DNS_MAX_DELAY, 2.0 ** (attempt - 1)) if definite == 0 else 1.0)
    raise TransientError(
        f"could not resolve host {host!r} after {DNS_ATTEMPTS} tries ({why}); the name may be fine and "
        "the resolver unwell: a later attempt tries again",
        reason="SourceUnavailable",
    )


def resolve_checked(
    host: str,
    port: int,
    allow_private: bool,
    resolver: Resolver = _getaddrinfo,
    sleep: Callable[[float], None] = time.sleep,
    field: str = "source.url",
) -> str:
    """An address for `host` that may be fetched; SourceRefused when none may."""
    infos = resolve(host, port, resolver, sleep, field=field)
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    allowed = [a for a in addresses if allow_private or not _blocked(a)]
    if not allowed:
        raise SourceRefused(
            f"source host {host!r} resolves to an internal address ({addresses[0]}); only public hosts "
            "are fetched unless CONTENTGEN_ALLOW_PRIVATE_SOURCES=true (the chart's allowPrivateSources)"
        )
    return str(allowed[0])


_PICTURES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"BM", "BMP"))


def still_picture(head: bytes) -> str:
    """The picture format the first bytes of a file are ("" for anything else): a source that
    should be a video and is a picture is said as such, not as a video too short to use."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in _PICTURES if head.startswith(magic)), "")


def fetch(
    url: str,
    dest_dir: Path,
    *,
    max_bytes: int,
    allow_private: bool,
    local: bool,
    timeout: float = 60.0,
    progress: SubProgress | None = None,
    client: httpx.Client | None = None,
    resolver: Resolver = _getaddrinfo,
    sleep: Callable[[float], None] = time.sleep,
    store: StorePlace | None = None,
) -> Fetched:
    """`store`: where the run's store is reached, which no redirect may lead into (what a spec names
    there is checked against its owner before the run: pipeline/owners.py)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    scheme = urlparse(url).scheme
    if scheme in ("http", "https"):
        return _fetch_http(
            url, dest_dir, max_bytes, allow_private, timeout, progress, client, resolver, sleep, store
        )
    if scheme == "s3":
        return _fetch_s3(url, dest_dir, max_bytes)
    if is_local_path(url):
        if not local:
            raise SourceRefused(
                f"local paths are accepted by `contentgen run` only, not in the cluster: {url}"
            )
        return _local(url, max_bytes)
    raise SourceRefused(f"unsupported source URL scheme {scheme!r}: use http://, https:// or s3://")


def local_path(url: str) -> Path:
    """The file a local source (a plain path or file:// URL) names."""
    return Path(unquote(urlparse(url).path) if url.startswith("file://") else url).expanduser()


def missing_local(url: str) -> str:
    """Why a local source cannot be read ("" where it can, or where it is not a local path): said
    by `contentgen run` before anything is recorded, and by the fetch itself."""
    if not is_local_path(url):
        return ""
    path = local_path(url)
    if path.is_dir():
        return f"source file {path} is a folder, not a file"
    if not path.is_file():
        return f"source file {path} does not exist (or is not a file)"
    if not os.access(path, os.R_OK):
        return f"source file {path} cannot be read (its permissions)"
    if path.stat().st_size == 0:
        return f"source file {path} is empty"
    return ""


def _local(url: str, max_bytes: int) -> Fetched:
    path = local_path(url)
    if problem := missing_local(url):
        raise InvalidInput(problem)
    size = path.stat().st_size
    if size > max_bytes:
        raise InvalidInput(f"source file {path} is {size} bytes, over the {max_bytes}-byte limit")
    return Fetched(path, size, None)


def _fetch_s3(url: str, dest_dir: Path, max_bytes: int) -> Fetched:
    from contentgen.store.s3 import S3Store

    parsed = urlparse(url)
    store = S3Store(parsed.netloc)
    key = parsed.path.lstrip("/")
    from contentgen.store import ObjectNotFound

    try:
        path = store.get_file(key, dest_dir / _filename(url), max_bytes=max_bytes)
    except ObjectNotFound:
        raise InvalidInput(f"source {url} does not exist; check source.url") from None
    return Fetched(path, path.stat().st_size, None)


def _filename(url: str) -> str:
    name = Path(unquote(urlparse(url).path)).name
    return "source" + (Path(name).suffix[:10] if name else "")


def _fetch_http(
    url: str,
    dest_dir: Path,
    max_bytes: int,
    allow_private: bool,
    timeout: float,
    progress: SubProgress | None,
    client: httpx.Client | None,
    resolver: Resolver = _getaddrinfo,
    sleep: Callable[[float], None] = time.sleep,
    store: StorePlace | None = None,
) -> Fetched:
    import httpx

    own_client = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(timeout), trust_env=False, follow_redirects=False)
    target = dest_dir / _filename(url)
    current = url
    public = True
    try:
        for _ in range(MAX_REDIRECTS + 1):
            parsed = httpx.URL(current)
            if parsed.scheme not in ("http", "https") or not parsed.host:
                raise SourceRefused(f"redirect to an unsupported URL: {redact_url(current)}")
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            address = resolve_checked(parsed.host, port, allow_private, resolver, sleep)
            public = public and not _blocked(ipaddress.ip_address(address))
            request = http.build_request(
                "GET",
                parsed.copy_with(host=address),
                headers={"Host": parsed.netloc.decode("ascii"), "Accept-Encoding": "identity"},
                extensions={"sni_hostname": parsed.host},
            )
            response = http.send(request, stream=True)
            try:
                if response.is_redirect:
                    location = response.headers.get("location", "")
                    current = str(parsed.join(location))
                    if store is not None and located(current, store) is not None:
                        raise SourceRefused(
                            f"{redact_url(url)} redirects into the store's bucket, whose objects a spec "
                            "names by their own address (checked against their owner): name it so"
                        )
                    continue
                size = _save(response, target, current, max_bytes, progress)
                return Fetched(target, size, url if public else None)
            finally:
                response.close()
        raise InvalidInput(f"too many redirects fetching {redact_url(url)}")
    except httpx.TimeoutException:
        raise TransientError(f"timed out fetching {redact_url(url)}", reason="SourceUnavailable") from None
    except httpx.TransportError as exc:
        raise TransientError(
            f"could not fetch {redact_url(url)}: {type(exc).__name__}", reason="SourceUnavailable"
        ) from None
    finally:
        if own_client:
            http.close()


def _save(
    response: httpx.Response, target: Path, url: str, max_bytes: int, progress: SubProgress | None
) -> int:
    shown = redact_url(url)
    if response.status_code >= 500 or response.status_code == 429:
        raise TransientError(f"{shown} answered HTTP {response.status_code}", reason="SourceUnavailable")
    if response.status_code != 200:
        raise InvalidInput(f"{shown} answered HTTP {response.status_code}; check source.url")
    declared = int(response.headers.get("content-length") or 0)
    if declared > max_bytes:
        raise InvalidInput(f"{shown} is {declared} bytes, over the {max_bytes}-byte limit")
    received = 0
    partial = target.with_name(target.name + ".partial")
    with partial.open("wb") as out:
        for chunk in response.iter_bytes(CHUNK):
            received += len(chunk)
            if received > max_bytes:
                partial.unlink(missing_ok=True)
                raise InvalidInput(f"{shown} is over the {max_bytes}-byte limit")
            out.write(chunk)
            if progress is not None and declared:
                progress(100.0 * received / declared)
    partial.replace(target)
    return received
