"""Fetching sources: size caps, redirects, internal addresses refused, TLS verified by host name."""

from __future__ import annotations

import ipaddress
import os
import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from contentgen.errors import InvalidInput, SourceRefused, TransientError
from contentgen.pipeline import fetch as fetch_module
from contentgen.pipeline.fetch import fetch, resolve_checked
from contentgen.store.s3 import S3Store
from tests.httpserver import serve

BODY = os.urandom(200_000)


def get(url: str, tmp_path: Path, **kwargs):  # type: ignore[no-untyped-def]
    options = {"max_bytes": 10**6, "allow_private": True, "local": False, "timeout": 5.0}
    options.update(kwargs)
    return fetch(url, tmp_path / "dl", **options)


@pytest.fixture
def only_metadata_blocked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat loopback as public so a local server can stand in for the internet; block the rest."""

    def blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return not ip.is_loopback and (ip.is_link_local or ip.is_private)

    monkeypatch.setattr(fetch_module, "_blocked", blocked)


def test_streams_to_disk_and_reports_progress(tmp_path: Path) -> None:
    seen_progress: list[float] = []
    with serve({"/v.mp4": (200, {}, BODY)}) as (base, _):
        fetched = get(f"{base}/v.mp4", tmp_path, progress=seen_progress.append)
    assert fetched.path.read_bytes() == BODY
    assert fetched.path.suffix == ".mp4" and fetched.size_bytes == len(BODY)
    assert seen_progress and seen_progress[-1] == 100.0
    assert not list((tmp_path / "dl").glob("*.partial"))


def test_internal_hosts_are_refused_by_default(tmp_path: Path) -> None:
    with (
        serve({"/v.mp4": (200, {}, BODY)}) as (base, seen),
        pytest.raises(SourceRefused, match="internal address"),
    ):
        get(f"{base}/v.mp4", tmp_path, allow_private=False)
    assert seen == []  # refused before connecting


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "169.254.169.254",
        "10.1.2.3",
        "192.168.1.1",
        "172.16.0.1",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",
    ],
)
def test_internal_addresses(address: str) -> None:
    with pytest.raises(SourceRefused):
        resolve_checked(address, 80, allow_private=False)
    assert ipaddress.ip_address(resolve_checked(address, 80, allow_private=True)) == ipaddress.ip_address(
        address
    )


def test_public_addresses_pass() -> None:
    assert resolve_checked("93.184.216.34", 443, allow_private=False) == "93.184.216.34"


def test_each_redirect_hop_is_checked(tmp_path: Path, only_metadata_blocked: None) -> None:
    routes = {
        "/ok": (302, {"Location": "/final"}, b""),
        "/final": (200, {}, BODY),
        "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/to-ftp": (302, {"Location": "ftp://example.com/x"}, b""),
    }
    with serve(routes) as (base, _):
        assert get(f"{base}/ok", tmp_path, allow_private=False).path.read_bytes() == BODY
        with pytest.raises(SourceRefused, match="internal address"):
            get(f"{base}/to-metadata", tmp_path, allow_private=False)
        with pytest.raises(InvalidInput, match="too many redirects"):
            get(f"{base}/loop", tmp_path, allow_private=False)
        with pytest.raises(SourceRefused, match="unsupported URL"):
            get(f"{base}/to-ftp", tmp_path, allow_private=False)


def test_no_redirect_leads_into_the_store(tmp_path: Path, only_metadata_blocked: None) -> None:
    """A source whose server redirects into the run's store (its path-style address, another name of
    it, a presigned link of another owner's output) is refused before the store is asked: what a spec
    names there is checked against its owner, by its own address (store/access.py)."""
    from contentgen.store.access import StorePlace

    place = StorePlace.of("s3://outputs/pre", "http://store.internal:9000")
    routes = {
        "/to-store": (
            302,
            {
                "Location": "http://store.internal:9000/outputs/pre/loras/alice/u/v1/model.safetensors?X-Amz-Signature=x"
            },
            b"",
        ),
        "/to-alias": (302, {"Location": "/outputs/pre/datasets/alice/u/v1/dataset.zip"}, b""),
        "/elsewhere": (302, {"Location": "/final"}, b""),
        "/final": (200, {}, BODY),
    }
    with serve(routes) as (base, _):
        for path in ("/to-store", "/to-alias"):
            with pytest.raises(SourceRefused, match="redirects into the store's bucket"):
                fetch(
                    f"{base}{path}", tmp_path, max_bytes=10**6, allow_private=False, local=False, store=place
                )
        found = fetch(
            f"{base}/elsewhere", tmp_path, max_bytes=10**6, allow_private=False, local=False, store=place
        )
        assert found.path.read_bytes() == BODY


def test_size_cap_declared_and_streamed(tmp_path: Path) -> None:
    routes = {"/declared": (200, {}, BODY), "/chunked": (200, {"Transfer-Encoding": "chunked"}, BODY)}
    with serve(routes) as (base, _):
        with pytest.raises(InvalidInput, match="limit"):
            get(f"{base}/declared", tmp_path, max_bytes=1000)
        with pytest.raises(InvalidInput, match="limit"):
            get(f"{base}/chunked", tmp_path, max_bytes=100_000)
        assert get(f"{base}/chunked", tmp_path).path.read_bytes() == BODY
    assert not list((tmp_path / "dl").glob("*.partial"))


def test_http_errors(tmp_path: Path) -> None:
    routes = {"/gone": (404, {}, b""), "/busy": (503, {}, b""), "/slow": ("slow", 2)}
    with serve(routes) as (base, _):
        with pytest.raises(InvalidInput, match="HTTP 404"):
            get(f"{base}/gone?X-Amz-Signature=topsecret", tmp_path)
        with pytest.raises(TransientError, match="HTTP 503"):
            get(f"{base}/busy", tmp_path)
        with pytest.raises(TransientError, match="timed out"):
            get(f"{base}/slow", tmp_path, timeout=0.2)


def test_signatures_never_appear_in_errors(tmp_path: Path) -> None:
    with serve({}) as (base, _), pytest.raises(InvalidInput) as caught:
        get(f"{base}/x.mp4?X-Amz-Signature=topsecret&X-Amz-Credential=AKIA", tmp_path)
    assert "topsecret" not in str(caught.value) and "AKIA" not in str(caught.value)


def test_tls_is_verified_against_the_host_name(tmp_path: Path) -> None:
    """The fetcher connects to the checked address but verifies the certificate of the host."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("localhost")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_cert.configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    with serve({"/v.mp4": (200, {}, BODY)}, ssl_context=server_ctx) as (base, seen):
        with httpx.Client(verify=client_ctx, trust_env=False) as client:
            fetched = fetch(
                f"{base}/v.mp4",
                tmp_path / "dl",
                max_bytes=10**6,
                allow_private=True,
                local=False,
                client=client,
            )
        assert fetched.path.read_bytes() == BODY
        assert seen[0]["headers"]["Host"] == base.removeprefix("https://")
        # A certificate for another name is refused even though the address is the same.
        wrong = trustme.CA()
        wrong_ctx = ssl.create_default_context()
        wrong.configure_trust(wrong_ctx)
        with httpx.Client(verify=wrong_ctx, trust_env=False) as client, pytest.raises(TransientError):
            fetch(
                f"{base}/v.mp4",
                tmp_path / "dl2",
                max_bytes=10**6,
                allow_private=True,
                local=False,
                client=client,
            )


def test_local_paths_only_for_local_runs(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    video.write_bytes(BODY)
    with pytest.raises(SourceRefused, match="contentgen run"):
        get(str(video), tmp_path, local=False)
    with pytest.raises(SourceRefused, match="contentgen run"):
        get(video.as_uri(), tmp_path, local=False)
    assert get(str(video), tmp_path, local=True).path == video
    assert get(video.as_uri(), tmp_path, local=True).path == video
    with pytest.raises(InvalidInput, match="does not exist"):
        get(str(tmp_path / "missing.mp4"), tmp_path, local=True)
    with pytest.raises(SourceRefused, match="scheme"):
        get("gopher://host/x", tmp_path)


def test_s3_sources(s3: str, tmp_path: Path) -> None:
    S3Store(s3).put_bytes("videos/v.mp4", BODY, "video/mp4")
    fetched = get(f"s3://{s3}/videos/v.mp4", tmp_path)
    assert fetched.path.read_bytes() == BODY and fetched.public_url is None
    with pytest.raises(InvalidInput, match="does not exist"):
        get(f"s3://{s3}/videos/missing.mp4", tmp_path)
    with pytest.raises(InvalidInput, match="limit"):
        get(f"s3://{s3}/videos/v.mp4", tmp_path, max_bytes=1000)


def test_https_goes_direct_not_through_https_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A source (a video's picture, a LoRA's video) is fetched from the address checked, never
    through HTTPS_PROXY or HTTP_PROXY (docs/videos.md): the fetcher's own client, given only a CA
    that trusts the test server, answers without the proxy ever being asked."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    made = httpx.Client

    def trusting(*args, **kwargs):  # type: ignore[no-untyped-def]
        return made(*args, **{**kwargs, "verify": client_ctx})  # the fetcher's other options kept

    monkeypatch.setattr(httpx, "Client", trusting)
    with (
        serve({}) as (proxy, asked),
        serve({"/picture.png": (200, {}, BODY)}, ssl_context=server_ctx) as (base, seen),
    ):
        for variable in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(variable, proxy)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        fetched = get(f"{base.replace('127.0.0.1', 'localhost')}/picture.png", tmp_path)
    assert fetched.path.read_bytes() == BODY and len(seen) == 1 and asked == []
