"""Name resolution: a temporary failure is retried and, if it persists, transient; only a definite
"no such name", confirmed on a second look, is the user's error. The resolver is one the test
scripts (it answers as socket.getaddrinfo does: addresses, or socket.gaierror with the EAI_* code
glibc gives for NXDOMAIN, SERVFAIL and timeouts), so nothing depends on the machine's DNS."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from contentgen.errors import InvalidInput, TransientError
from contentgen.pipeline.fetch import DNS_ATTEMPTS, fetch, resolve_checked
from tests.httpserver import serve

NXDOMAIN = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
NODATA = socket.gaierror(
    getattr(socket, "EAI_NODATA", socket.EAI_NONAME), "No address associated with hostname"
)
AGAIN = socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")  # SERVFAIL, timeout
FAIL = socket.gaierror(socket.EAI_FAIL, "Non-recoverable failure in name resolution")


class Resolver:
    """Answers each look-up with the next scripted outcome (the last one repeats)."""

    def __init__(self, *script: BaseException | str) -> None:
        self.script = list(script)
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> Sequence[tuple[Any, ...]]:
        self.asked.append((host, port))
        outcome = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (outcome, port))]


class Sleep(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.mark.parametrize(
    "temporary", [AGAIN, FAIL, TimeoutError("timed out")], ids=["again", "fail", "timeout"]
)
def test_a_temporary_failure_is_retried_and_then_answers(temporary: BaseException) -> None:
    resolver, sleep = Resolver(temporary, temporary, "93.184.216.34"), Sleep()
    assert resolve_checked("video.example", 443, False, resolver, sleep) == "93.184.216.34"
    assert len(resolver.asked) == 3 and len(sleep) == 2


@pytest.mark.parametrize(
    "temporary", [AGAIN, FAIL, TimeoutError("timed out")], ids=["again", "fail", "timeout"]
)
def test_a_resolver_that_stays_unwell_is_transient_never_the_users_error(temporary: BaseException) -> None:
    resolver, sleep = Resolver(temporary), Sleep()
    with pytest.raises(TransientError, match="a later attempt tries again") as raised:
        resolve_checked("video.example", 443, False, resolver, sleep)
    assert raised.value.reason == "SourceUnavailable"
    assert len(resolver.asked) == DNS_ATTEMPTS and len(sleep) == DNS_ATTEMPTS - 1
    assert all(0 <= s <= 8 for s in sleep)


@pytest.mark.parametrize("definite", [NXDOMAIN, NODATA], ids=["nxdomain", "nodata"])
def test_no_such_name_twice_in_a_row_is_invalid_input(definite: BaseException) -> None:
    resolver, sleep = Resolver(definite), Sleep()
    with pytest.raises(InvalidInput, match=r"cannot resolve host 'video\.example'.*check source\.url"):
        resolve_checked("video.example", 443, False, resolver, sleep)
    assert len(resolver.asked) == 2 and len(sleep) == 1


def test_one_nxdomain_is_not_trusted_alone() -> None:
    # a resolver can answer NXDOMAIN wrongly once (a stale negative cache, a split-horizon flap)
    resolver = Resolver(NXDOMAIN, "93.184.216.34")
    assert resolve_checked("video.example", 443, False, resolver, Sleep()) == "93.184.216.34"


def test_nxdomain_is_confirmed_only_by_consecutive_answers() -> None:
    resolver = Resolver(NXDOMAIN, AGAIN, NXDOMAIN, AGAIN, NXDOMAIN)
    with pytest.raises(TransientError):
        resolve_checked("video.example", 443, False, resolver, Sleep())
    assert len(resolver.asked) == DNS_ATTEMPTS


def test_fetch_resolves_through_the_given_resolver(tmp_path: Path) -> None:
    with serve({"/v.mp4": (200, {}, b"video")}) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        resolver = Resolver(AGAIN, "127.0.0.1")
        fetched = fetch(
            f"http://video.example:{port}/v.mp4",
            tmp_path,
            max_bytes=100,
            allow_private=True,
            local=False,
            resolver=resolver,
            sleep=Sleep(),
        )
    assert fetched.path.read_bytes() == b"video"
    assert resolver.asked == [("video.example", port)] * 2
    assert fetched.public_url is None  # it resolved to loopback


def test_fetch_of_an_unknown_host_fails_as_input_without_connecting(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"check source\.url"):
        fetch(
            "https://no-such-host.example/v.mp4",
            tmp_path,
            max_bytes=100,
            allow_private=False,
            local=False,
            resolver=Resolver(NXDOMAIN),
            sleep=Sleep(),
        )
