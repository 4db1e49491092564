"""What routes get injected: the services, the authenticated caller, and common parameters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from threading import Lock
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, Path, Query, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from contentgen.catalog import FILTER_HELP, SORT_HELP, Catalog, Filters, Page, Sort, params, resolve
from contentgen.catalog.queries import DEFAULT_LIMIT, MAX_LIMIT
from contentgen.store import ObjectStore

from .auth import SESSION_COOKIE, Caller
from .errors import ApiError, bad_request, not_found
from .settings import ApiSettings

# The catalog's vocabularies as types, so the OpenAPI document lists them (tests/httpapi checks
# that they match contentgen.catalog).
TypeName = Literal["lora-training", "image-generation", "transcription"]
StatusName = Literal["Pending", "Running", "Succeeded", "Failed", "Deleted"]
RunPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Cancelled"]
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


_session = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The web UI's session: the token, set by POST /ui/session (HttpOnly, SameSite=Strict).",
)


def caller(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_session)],
    svc: Annotated[Services, Depends(services)],
) -> Caller:
    """The caller, from `Authorization: Bearer TOKEN` or, for browsers (images, EventSource),
    from the UI's session cookie: the same token, checked the same way on every request."""
    token = credentials.credentials if credentials is not None else cookie
    if not token:
        raise ApiError(
            401, "unauthorized", "missing bearer token: send Authorization: Bearer TOKEN", _CHALLENGE
        )
    found = svc.tokens.authenticate(token)
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


RefPath = Annotated[
    str,
    Path(
        description="The record: its id, a unique prefix of it (4+ characters), namespace/name (the "
        "resource that exists now), namespace/name@id-prefix (one of several of that name), or a bare "
        "name (namespace default first, then any)."
    ),
]
OwnerQuery = Annotated[str | None, Query(description=FILTER_HELP["owner"] + "; admin tokens only.")]
TypeQuery = Annotated[TypeName | None, Query(alias="type", description=FILTER_HELP["type"])]


def find_record(svc: Services, who: Caller, ref: str, type_: str | None = None) -> dict[str, Any]:
    """The record `ref` names (current shape), visible to `who`; 404 (another owner's too), 400
    when ambiguous (the message lists the choices)."""
    try:
        doc = resolve(svc.catalog, ref, owner=record_scope(who), type=type_)
    except ValueError as exc:  # AmbiguousReference, or an empty id
        raise bad_request("id", str(exc)) from None
    if doc is None:
        raise not_found(ref)
    return doc


@dataclass(frozen=True)
class ListQuery:
    filters: Filters
    sort: Sort
    page: Page

    def with_type(self, type_: str | None) -> Filters:
        return replace(self.filters, type=type_)


def list_query(
    who: CallerDep,
    owner: OwnerQuery = None,
    status: Annotated[StatusName | None, Query(description=FILTER_HELP["status"])] = None,
    run: Annotated[RunPhase | None, Query(description=FILTER_HELP["run"])] = None,
    since: Annotated[str | None, Query(description=FILTER_HELP["since"])] = None,
    until: Annotated[str | None, Query(description=FILTER_HELP["until"])] = None,
    model: Annotated[str | None, Query(max_length=64, description=FILTER_HELP["model"])] = None,
    lora: Annotated[str | None, Query(max_length=140, description=FILTER_HELP["lora"])] = None,
    tag: Annotated[str | None, Query(max_length=64, description=FILTER_HELP["tag"])] = None,
    sort: Annotated[SortField, Query(description=SORT_HELP["sort"])] = "createdAt",
    order: Annotated[Order, Query(description=SORT_HELP["order"])] = "desc",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=SORT_HELP["limit"])] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, description=SORT_HELP["offset"])] = 0,
) -> ListQuery:
    """The filter vocabulary, with the same names as `contentgen assets list`'s flags."""
    start, end = _time("since", since, end=False), _time("until", until, end=True)
    try:
        params.check_range(start, end)
    except ValueError as exc:
        raise bad_request("since/until", str(exc)) from None
    filters = Filters(
        owner=owner_scope(who, owner),
        status=status,
        run=run,
        since=start,
        until=end,
        model=model,
        lora=lora,
        tag=tag,
    )
    return ListQuery(filters, Sort(sort, descending=order == "desc"), Page(limit, offset))


ListQueryDep = Annotated[ListQuery, Depends(list_query)]
