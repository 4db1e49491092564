"""Bearer tokens: the file format, constant-time lookup by digest, reloading, and 401s."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import httpx
import pytest

from contentgen.httpapi import Caller, TokenError, TokenSource, TokenTable
from tests.httpapi.conftest import TOKENS, auth

GOOD = "a-token-long-enough-0001"


def test_a_table_maps_tokens_and_digests_to_owners() -> None:
    digest = hashlib.sha256(b"another-token-long-enough").hexdigest()
    table = TokenTable.parse(
        f"""
tokens:
  - {{owner: alice, token: {GOOD}}}
  - {{owner: bob, sha256: {digest}}}
  - {{owner: ops, token: admin-token-long-enough, admin: true}}
"""
    )
    assert table.authenticate(GOOD) == Caller("alice")
    assert table.authenticate("another-token-long-enough") == Caller("bob")
    assert table.authenticate("admin-token-long-enough") == Caller("ops", admin=True)
    assert table.authenticate(digest) is None  # the digest itself is no token
    assert table.authenticate("") is None


def test_json_is_accepted_too() -> None:
    table = TokenTable.parse(f'{{"tokens": [{{"owner": "alice", "token": "{GOOD}"}}]}}')
    assert table.authenticate(GOOD) == Caller("alice")


def test_only_digests_are_kept() -> None:
    table = TokenTable.parse(f"tokens: [{{owner: alice, token: {GOOD}}}]")
    assert GOOD not in repr(vars(table))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "tokens: [{owner: alice, token: short}]",
            "tokens.0.token: String should have at least 16 characters",
        ),
        ("tokens: [{owner: alice}]", "give exactly one of token and sha256"),
        (
            f"tokens: [{{owner: alice, token: {GOOD}, sha256: '{'a' * 64}'}}]",
            "give exactly one of token and sha256",
        ),
        (f"tokens: [{{owner: Alice!, token: {GOOD}}}]", "tokens.0.owner: String should match pattern"),
        (
            f"tokens: [{{owner: alice, token: {GOOD}, role: x}}]",
            "tokens.0.role: Extra inputs are not permitted",
        ),
        (
            f"tokens: [{{owner: a, token: {GOOD}}}, {{owner: b, token: {GOOD}}}]",
            "the same token is listed twice",
        ),
        ("[]", "file: Input should be a valid dictionary"),
        (f"tokens: [{{owner: alice, token: '{GOOD}}}]", "not valid YAML or JSON (line 1)"),
    ],
)
def test_bad_files_are_refused_without_quoting_tokens(text: str, message: str) -> None:
    with pytest.raises(TokenError) as raised:
        TokenTable.parse(text)
    assert message in str(raised.value)
    assert GOOD not in str(raised.value) and "short" not in str(raised.value)


def test_the_file_is_read_again_when_it_changes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(f"tokens: [{{owner: alice, token: {GOOD}}}]")
    source = TokenSource(path)
    assert source.authenticate(GOOD) == Caller("alice")

    path.write_text("tokens: [{owner: bob, token: rotated-token-long-enough}]")
    os.utime(path, ns=(1, 1))  # a different mtime, however fast the test runs
    assert source.authenticate(GOOD) is None
    assert source.authenticate("rotated-token-long-enough") == Caller("bob")

    path.write_text("tokens: [{owner: carol, token: tiny-secret}]")
    os.utime(path, ns=(2, 2))
    with caplog.at_level(logging.WARNING):
        assert source.authenticate("rotated-token-long-enough") == Caller("bob")  # the old tokens stay
    assert "keeping the previous tokens" in caplog.text and "tiny-secret" not in caplog.text


def test_a_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="cannot read the tokens file"):
        TokenSource(tmp_path / "absent.yaml")


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "missing bearer token: send Authorization: Bearer TOKEN"),
        ({"Authorization": "Bearer not-a-known-token-at-all"}, "unknown token"),
        (
            {"Authorization": f"Basic {TOKENS['alice']}"},
            "missing bearer token: send Authorization: Bearer TOKEN",
        ),
        ({"Authorization": "Bearer"}, "missing bearer token: send Authorization: Bearer TOKEN"),
    ],
)
@pytest.mark.parametrize(
    "path",
    [
        "/api/jobs",
        "/api/jobs/a-lora-1",
        "/api/assets/stats",
        "/api/assets/a-lora-1/download",
        "/api/stream/job/a-lora-1",
    ],
)
async def test_requests_without_a_known_token_get_401(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], message: str
) -> None:
    response = await client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "unauthorized", "message": message}}
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.asyncio
async def test_a_digest_entry_authenticates_its_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/jobs", headers=auth("bob"))
    assert response.status_code == 200
