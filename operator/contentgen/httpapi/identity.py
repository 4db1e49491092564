"""Who calls, and which owners' records that identity may see and act for.

Identities come from four sources (CONTENTGEN_API_AUTH lists the ones in use):

- tokens: a static bearer token from the tokens file (auth.py), mapped to one owner there;
- proxy: an authenticating proxy in front of the API (oauth2-proxy's X-Auth-Request-User, -Email
  and -Groups headers), believed only when the connection comes from one of
  CONTENTGEN_API_TRUSTED_PROXIES; from anywhere else the headers are ignored;
- kubernetes: a Kubernetes bearer token (a ServiceAccount's, or any token the cluster's
  authenticators accept), checked with a TokenReview; its user name and groups are the identity;
- local: a laptop: every request is the one local owner, from this machine only.

A proxy or Kubernetes identity is mapped to owners by the owners file (CONTENTGEN_API_OWNERS_FILE):

    owners:
      - owner: alice
        users: [alice@example.com, "system:serviceaccount:team-a:ci"]   # user name or e-mail
      - owner: team-a
        groups: [team-a]                                               # any of these groups
    admins:                      # see every owner's records
      users: [ops@example.com]
      groups: [platform-admins]
    userOwners: false            # true: an identity no entry names is its own owner (its user
                                 # name, lowercased, characters outside a-z 0-9 . _ - as "-")

An identity may act for several owners (all its entries'); the first is what a create uses when it
names none. The file is read again when it changes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Generic, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contentgen.api.common import OWNER_PATTERN

from .kube import Kube, KubeError, KubeUnavailable

M = TypeVar("M", bound=BaseModel)

log = logging.getLogger(__name__)

OwnerName = Annotated[str, Field(pattern=OWNER_PATTERN, max_length=63)]


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: the owner it acts for by default and every owner it may act for."""

    owner: str
    admin: bool = False
    owners: tuple[str, ...] = ()
    user: str = ""  # as its source names it (a token's owner, a proxy's user, a Kubernetes user)
    via: str = "token"  # token | proxy | kubernetes | local
    groups: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if not self.owners:
            object.__setattr__(self, "owners", (self.owner,) if self.owner else ())
        if not self.user:
            object.__setattr__(self, "user", self.owner)

    @property
    def scope(self) -> str | tuple[str, ...] | None:
        """Whose records it sees: None (everyone's) for an admin."""
        if self.admin:
            return None
        return self.owners[0] if len(self.owners) == 1 else self.owners

    def may_act_for(self, owner: str) -> bool:
        return self.admin or owner in self.owners


class IdentityError(ValueError):
    """The owners file or the identity settings cannot be used."""


class Principals(BaseModel):
    model_config = ConfigDict(extra="forbid")

    users: list[Annotated[str, Field(min_length=1, max_length=512)]] = []
    groups: list[Annotated[str, Field(min_length=1, max_length=512)]] = []


class OwnerEntry(Principals):
    owner: OwnerName


class OwnersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    owners: list[OwnerEntry] = []
    admins: Principals = Field(default_factory=Principals)
    user_owners: bool = Field(default=False, alias="userOwners")


_NOT_OWNER_CHARS = re.compile(r"[^a-z0-9._-]+")


def owner_from_user(user: str) -> str:
    """An owner name for a user name: lowercased, other characters as '-', trimmed to 63."""
    name = _NOT_OWNER_CHARS.sub("-", user.lower()).strip("-._")[:63].strip("-._")
    return name if re.fullmatch(OWNER_PATTERN, name) else ""


def parse_config(model: type[M], text: str, *, empty: object = None) -> M:
    """A YAML or JSON configuration file as `model` (`empty` stands for an empty file), or
    ValueError with positions and messages only: neither the YAML parser's message nor pydantic's
    is passed on, as both quote the input, which may hold a token."""
    try:
        data = yaml.safe_load(text)
        return model.model_validate(data if data or empty is None else empty)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ValueError(f"not valid YAML or JSON{where}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(problems) from None


@dataclass(frozen=True)
class OwnerMap:
    file: OwnersFile = field(default_factory=OwnersFile)

    @classmethod
    def parse(cls, text: str) -> OwnerMap:
        try:
            return cls(parse_config(OwnersFile, text, empty={}))
        except ValueError as exc:
            raise IdentityError(str(exc)) from None

    def caller(self, user: str, groups: Iterable[str], *, via: str, also: Iterable[str] = ()) -> Caller:
        """The caller for `user` (and the other names it goes by, e.g. its e-mail) in `groups`."""
        names = {user, *also} - {""}
        member = set(groups)
        owners = [e.owner for e in self.file.owners if names & set(e.users) or member & set(e.groups)]
        if not owners and self.file.user_owners and (own := owner_from_user(user)):
            owners = [own]
        admin = bool(names & set(self.file.admins.users) or member & set(self.file.admins.groups))
        unique = tuple(dict.fromkeys(owners))
        return Caller(unique[0] if unique else "", admin, unique, user, via, tuple(sorted(member)))


V = TypeVar("V")


class ReloadedFile(Generic[V]):
    """A configuration file (`what`: "tokens file"), parsed again when its modification time or
    size changes. A bad new version is reported once (as `error`) and the previous one is kept."""

    def __init__(self, path: Path, what: str, parse: Callable[[str], V], error: type[ValueError]) -> None:
        self.path, self.what, self._parse, self._error = path, what, parse, error
        self._stamp = self._stat()
        self._value = self._load()

    def _stat(self) -> tuple[int, int]:
        try:
            info = os.stat(self.path)
        except OSError as exc:
            raise self._error(f"cannot read the {self.what} {self.path}: {exc.strerror}") from None
        return info.st_mtime_ns, info.st_size

    def _load(self) -> V:
        try:
            return self._parse(self.path.read_text())
        except OSError as exc:
            raise self._error(f"cannot read the {self.what} {self.path}: {exc.strerror}") from None
        except self._error as exc:
            raise self._error(f"{self.path}: {exc}") from None

    def current(self, kept: str) -> V:
        """The file's latest good version (`kept` names what is kept, for the warning)."""
        try:
            stamp = self._stat()
            if stamp != self._stamp:
                self._stamp = stamp  # a bad file is reported once, not on every request
                self._value = self._load()
                log.info("reloaded the %s %s", self.what, self.path)
        except self._error as exc:
            log.warning("keeping the previous %s: %s", kept, exc)
        return self._value


class OwnerMapSource:
    """The owners file, read again when it changes (a bad new version keeps the previous one)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._none = OwnerMap()
        self._file = ReloadedFile(path, "owners file", OwnerMap.parse, IdentityError) if path else None

    def current(self) -> OwnerMap:
        return self._none if self._file is None else self._file.current("owners")


# --- an authenticating proxy ------------------------------------------------------------------


def parse_networks(values: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Addresses and CIDRs (10.0.0.0/8, 127.0.0.1, ::1); IdentityError naming a bad one."""
    out = []
    for value in values:
        text = value.strip()
        if not text:
            continue
        try:
            out.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise IdentityError(
                f"CONTENTGEN_API_TRUSTED_PROXIES: {text!r} is not an address or CIDR (e.g. 10.0.0.0/8)"
            ) from None
    return tuple(out)


@dataclass(frozen=True)
class ProxyHeaders:
    user: str = "X-Auth-Request-User"
    email: str = "X-Auth-Request-Email"
    groups: str = "X-Auth-Request-Groups"


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    headers: ProxyHeaders = field(default_factory=ProxyHeaders)

    def trusts(self, peer: str | None) -> bool:
        """Whether the connection's own address (never a forwarded one) is a trusted proxy's."""
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.networks)

    def identity(self, get: Callable[[str], str | None]) -> tuple[str, str, list[str]] | None:
        """(user, e-mail, groups) from the headers (read with `get`); None without a user or e-mail."""
        user = (get(self.headers.user) or "").strip()
        email = (get(self.headers.email) or "").strip()
        if not user and not email:
            return None
        groups = [g.strip() for g in (get(self.headers.groups) or "").split(",") if g.strip()]
        return user or email, email, groups


# --- Kubernetes tokens ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reviewed:
    user: str
    groups: tuple[str, ...]


class TokenReviewer:
    """Kubernetes bearer tokens, checked by the API server (TokenReview). Answers are kept for
    `ttl` seconds (a refused token for `negative_ttl`), by the token's SHA-256, so that a page of
    thumbnails does not send one review per image; at most `size` are kept."""

    def __init__(
        self,
        kube: Kube,
        audiences: tuple[str, ...] = (),
        ttl: float = 60.0,
        negative_ttl: float = 10.0,
        size: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube, self.audiences = kube, audiences
        self.ttl, self.negative_ttl, self.size, self.clock = ttl, negative_ttl, size, clock
        self._cache: OrderedDict[bytes, tuple[float, Reviewed | None]] = OrderedDict()
        self._lock = threading.Lock()

    def review(self, token: str) -> Reviewed | None:
        """The token's user and groups; None when the API server does not accept it.
        KubeUnavailable when it cannot be asked."""
        key = hashlib.sha256(token.encode()).digest()
        now = self.clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                self._cache.move_to_end(key)
                return cached[1]
        try:
            status = self.kube.review_token(token, self.audiences)
        except KubeError as exc:  # the API's own account may not review tokens
            raise KubeUnavailable(
                f"TokenReview refused ({exc.status}: {exc.message}): the API's ServiceAccount needs "
                "create on tokenreviews.authentication.k8s.io (the chart grants it with api.auth "
                "containing kubernetes)"
            ) from None
        found: Reviewed | None = None
        if status.get("authenticated"):
            user = status.get("user") or {}
            audiences = status.get("audiences")
            if not self.audiences or audiences is None or set(audiences) & set(self.audiences):
                found = Reviewed(str(user.get("username") or ""), tuple(user.get("groups") or ()))
        with self._lock:
            self._cache[key] = (now + (self.ttl if found else self.negative_ttl), found)
            self._cache.move_to_end(key)
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
        return found


# --- every source together --------------------------------------------------------------------


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


@dataclass
class Identities:
    """The identity sources in use (CONTENTGEN_API_AUTH) and how each request is matched to one:
    local mode: the local owner; else a trusted proxy's headers; else the bearer token (or the web
    UI's session cookie) as a static token, then as a Kubernetes token."""

    modes: tuple[str, ...]
    tokens: object | None = None  # has authenticate(token) -> Caller | None
    owners: OwnerMapSource = field(default_factory=lambda: OwnerMapSource(None))
    proxies: TrustedProxies | None = None
    reviewer: TokenReviewer | None = None
    local_owner: str = ""

    @property
    def local(self) -> bool:
        return "local" in self.modes

    @property
    def takes_tokens(self) -> bool:
        return "tokens" in self.modes or "kubernetes" in self.modes

    def local_caller(self) -> Caller:
        return Caller(self.local_owner, False, (self.local_owner,), "local", "local")

    def from_proxy(self, peer: str | None, header: Callable[[str], str | None]) -> Caller | None:
        """The proxy's identity, when the connection comes from a trusted proxy and it names one."""
        if self.proxies is None or not self.proxies.trusts(peer):
            return None
        found = self.proxies.identity(header)
        if found is None:
            return None
        user, email, groups = found
        return self.owners.current().caller(user, groups, via="proxy", also=(email,))

    def from_token(self, token: str) -> Caller | None:
        """A static token's caller, else a Kubernetes token's (KubeUnavailable when the API
        server cannot say); None when neither knows the token."""
        if "tokens" in self.modes and self.tokens is not None:
            found = self.tokens.authenticate(token)  # type: ignore[attr-defined]
            if found is not None:
                return found  # type: ignore[no-any-return]
        if "kubernetes" in self.modes and self.reviewer is not None:
            reviewed = self.reviewer.review(token)
            if reviewed is not None:
                return self.owners.current().caller(reviewed.user, reviewed.groups, via="kubernetes")
        return None
