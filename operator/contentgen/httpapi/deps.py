"""What routes get injected: the services, the authenticated caller, and common parameters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from threading import Lock
from typing import Annotated, Literal, Protocol

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from contentgen.catalog import Catalog, Filters, Page, Sort, params
from contentgen.catalog.queries import DEFAULT_LIMIT, MAX_LIMIT
from contentgen.store import ObjectStore

from .auth import Caller
from .errors import ApiError, bad_request
from .settings import ApiSettings

# The catalog's vocabularies as types, so the OpenAPI document lists them (tests/httpapi checks
# that they match contentgen.catalog).
TypeName = Literal["lora-training", "image-generation", "transcription"]
StatusName = Literal["Pending", "Running", "Succeeded", "Failed", "Deleted"]
SortField = Literal["createdAt", "updatedAt", "completedAt", "name", "status", "type", "owner", "totalBytes"]
Order = Literal["asc", "desc"]


class Authenticator(Protocol):
    def authenticate(self, token: str) -> Caller | None: ...


@dataclass
class Services:
    settings: ApiSettings
    catalog: Catalog
    tokens: Authenticator
    open_store: Callable[[], ObjectStore]
    sleep: Callable[[float], Awaitable[None]]
    _store: ObjectStore | None = field(default=None, init=False)
    _lock: Lock = field(default_factory=Lock, init=False)

    def store(self) -> ObjectStore:
        """Opened on the first download, so the API starts without store credentials."""
        with self._lock:
            if self._store is None:
                self._store = self.open_store()
            return self._store


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


_bearer = HTTPBearer(
    auto_error=False, description="A token from the tokens file (CONTENTGEN_API_TOKENS_FILE)."
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    svc: Annotated[Services, Depends(services)],
) -> Caller:
    if credentials is None:
        raise ApiError(
            401, "unauthorized", "missing bearer token: send Authorization: Bearer TOKEN", _CHALLENGE
        )
    found = svc.tokens.authenticate(credentials.credentials)
    if found is None:
        raise ApiError(401, "unauthorized", "unknown token", _CHALLENGE)
    return found


CallerDep = Annotated[Caller, Depends(caller)]
ServicesDep = Annotated[Services, Depends(services)]


def owner_scope(who: Caller, requested: str | None) -> str | None:
    """The owner a listing is limited to: the caller's own, or for an admin `requested` (None: all)."""
    if who.admin:
        return requested
    if requested is not None and requested != who.owner:
        raise ApiError(403, "forbidden", "owner: only an admin token may read another owner's records")
    return who.owner


def record_scope(who: Caller) -> str | None:
    """The owner a single record must have to be visible (None: any, for an admin)."""
    return None if who.admin else who.owner


def _time(name: str, value: str | None, *, end: bool) -> datetime | None:
    if value is None:
        return None
    try:
        return params.parse_time(value, end=end)
    except ValueError as exc:
        raise bad_request(name, str(exc)) from None


IdPath = Annotated[str, Path(description="The resource's uid.", max_length=128)]
OwnerQuery = Annotated[
    str | None, Query(description="Only this owner's records. Admin tokens only, or the caller's own owner.")
]


@dataclass(frozen=True)
class ListQuery:
    owner: str | None
    status: str | None
    since: datetime | None
    until: datetime | None
    sort: Sort
    page: Page

    def filters(self, **more: str | None) -> Filters:
        return Filters(owner=self.owner, status=self.status, since=self.since, until=self.until, **more)


def list_query(
    who: CallerDep,
    owner: OwnerQuery = None,
    status: Annotated[StatusName | None, Query(description="Default: every status but Deleted.")] = None,
    from_: Annotated[
        str | None, Query(alias="from", description="Created at or after: an ISO date or datetime (UTC).")
    ] = None,
    to: Annotated[str | None, Query(description="Created before; a date includes that whole day.")] = None,
    sort: SortField = "createdAt",
    order: Order = "desc",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ListQuery:
    since, until = _time("from", from_, end=False), _time("to", to, end=True)
    try:
        params.check_range(since, until)
    except ValueError as exc:
        raise bad_request("from/to", str(exc)) from None
    return ListQuery(
        owner=owner_scope(who, owner),
        status=status,
        since=since,
        until=until,
        sort=Sort(sort, descending=order == "desc"),
        page=Page(limit, offset),
    )


ListQueryDep = Annotated[ListQuery, Depends(list_query)]
