"""Bearer tokens mapped to owners, from a YAML or JSON file (the chart mounts a Secret there):

    tokens:
      - owner: alice
        token: "a-long-random-string"       # at least 16 characters
      - owner: bob
        sha256: "<hex SHA-256 of bob's token>"   # instead of `token`, to keep it out of the Secret
      - owner: ops
        token: "another-long-random-string"
        admin: true                          # sees every owner's records

Only SHA-256 digests are kept in memory, and a presented token is compared with every digest in
constant time. The file is read again when it changes (a Secret update), so tokens rotate without a
restart; a file that fails to load keeps the previous tokens. Tokens are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contentgen.api.common import OWNER_PATTERN

from .identity import Caller, ReloadedFile, parse_config

log = logging.getLogger(__name__)
MIN_TOKEN_LENGTH = 16
# The web UI keeps the token in this cookie (HttpOnly, SameSite=Strict), so that images and
# EventSource, which cannot send headers, authenticate like every other request.
SESSION_COOKIE = "contentgen_session"


class TokenError(ValueError):
    """The tokens file cannot be used."""


class TokenEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    owner: Annotated[str, Field(pattern=OWNER_PATTERN, max_length=63)]
    token: Annotated[str, Field(min_length=MIN_TOKEN_LENGTH)] | None = Field(default=None, repr=False)
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = Field(default=None, repr=False)
    admin: bool = False

    @model_validator(mode="after")
    def _one_secret(self) -> TokenEntry:
        if (self.token is None) == (self.sha256 is None):
            raise ValueError("give exactly one of token and sha256")
        return self

    def digest(self) -> bytes:
        if self.sha256 is not None:
            return bytes.fromhex(self.sha256)
        return _digest(self.token or "")


class TokenFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tokens: list[TokenEntry]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class TokenTable:
    def __init__(self, entries: list[tuple[bytes, Caller]]) -> None:
        digests = [digest for digest, _ in entries]
        if len(set(digests)) != len(digests):
            raise TokenError("the same token is listed twice")
        self._entries = entries

    @classmethod
    def parse(cls, text: str) -> TokenTable:
        try:
            data = parse_config(TokenFile, text)
        except ValueError as exc:
            raise TokenError(str(exc)) from None
        return cls([(entry.digest(), Caller(entry.owner, entry.admin, via="token")) for entry in data.tokens])

    def authenticate(self, token: str) -> Caller | None:
        digest = _digest(token)
        found = None
        for known, caller in self._entries:  # no early exit: the time does not depend on the match
            if hmac.compare_digest(digest, known):
                found = caller
        return found


class TokenSource:
    """The tokens file, read again when it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = ReloadedFile(path, "tokens file", TokenTable.parse, TokenError)

    def table(self) -> TokenTable:
        return self._file.current("tokens")

    def authenticate(self, token: str) -> Caller | None:
        return self.table().authenticate(token)
