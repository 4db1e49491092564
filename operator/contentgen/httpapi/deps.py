"""What routes get injected: the services, the authenticated caller, and common parameters."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from threading import Lock
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, Path, Query, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticCustomError, core_schema
from starlette.convertors import Convertor, register_url_convertor

from contentgen.api import CATALOG_TYPES
from contentgen.api.regex import SPACES
from contentgen.api.validation import said
from contentgen.catalog import (
    FILTER_HELP,
    SORT_HELP,
    AmbiguousReference,
    Catalog,
    Filters,
    OwnerScope,
    Page,
    Sort,
    params,
    resolve,
)
from contentgen.catalog.queries import DEFAULT_LIMIT, MAX_LIMIT
from contentgen.store import ObjectStore

from .auth import SESSION_COOKIE
from .errors import ApiError, bad_request, not_found
from .identity import LOOPBACK_HOSTS, Caller, Identities
from .kube import KubeUnavailable
from .settings import ApiSettings


class _CatalogType:
    """A catalog type (api.CATALOG_TYPES, one per kind), checked and listed from the kinds'
    registry when a request is read and when the OpenAPI document is written, not when this
    module is imported: a kind declared later is filtered by too. Its refusal and its schema are
    a Literal's."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(_known_type, core_schema.str_schema())

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"enum": list(CATALOG_TYPES), "type": "string"}


def _known_type(name: str) -> str:
    if name not in CATALOG_TYPES:
        *rest, last = (repr(t) for t in CATALOG_TYPES)
        expected = f"{', '.join(rest)} or {last}" if rest else last
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
    return name


# The catalog's vocabularies as types, so the OpenAPI document lists them (the types are the
# kinds' registry's; tests/httpapi checks that the others match contentgen.catalog).
TypeName = Annotated[str, _CatalogType()]
StatusName = Literal["Pending", "Running", "Succeeded", "Failed", "Interrupted", "Deleted"]
RunPhase = Literal["Pending", "Running", "Succeeded", "Failed", "Cancelled", "Interrupted"]
SortField = Literal["createdAt", "updatedAt", "completedAt", "name", "status", "type", "owner", "totalBytes"]
Order = Literal["asc", "desc"]


class Authenticator(Protocol):
    def authenticate(self, token: str) -> Caller | None: ...


@dataclass
class Services:
    settings: ApiSettings
    catalog: Catalog
    identities: Identities
    open_store: Callable[[], ObjectStore]
    sleep: Callable[[float], Awaitable[None]]
    creator: Any = None  # creators.Creator, or None when creating is off
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
    auto_error=False,
    description="A static token from the tokens file, or a Kubernetes token (auth kubernetes).",
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


_session = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The web UI's session: the token, set by POST /ui/session (HttpOnly, SameSite=Strict).",
)


def _host(request: Request) -> str:
    host = request.headers.get("host", "")
    return host.rsplit(":", 1)[0] if not host.endswith("]") else host


def local_request(request: Request) -> None:
    """Local mode answers this machine only: a loopback peer, and a Host header naming this
    machine (a page elsewhere that renames itself to 127.0.0.1, DNS rebinding, gets nothing)."""
    peer = request.client.host if request.client is not None else ""
    if peer not in ("127.0.0.1", "::1", "localhost") and not peer.startswith("127."):
        raise ApiError(403, "forbidden", "this API runs in local mode and answers this machine only")
    if _host(request).lower() not in LOOPBACK_HOSTS:
        raise ApiError(
            403, "forbidden", "local mode answers requests for localhost or 127.0.0.1 only (Host header)"
        )


def identify(request: Request, svc: Services, token: str | None) -> Caller | None:
    """The caller of a request (see identity.Identities), None when it names none."""
    ids = svc.identities
    if ids.local:
        local_request(request)
        return ids.local_caller()
    found = ids.from_proxy(request.client.host if request.client is not None else None, request.headers.get)
    if found is None and token:
        try:
            found = ids.from_token(token)
        except KubeUnavailable as exc:
            raise ApiError(503, "identity_unavailable", str(exc), {"Retry-After": "5"}) from None
    return found


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_session)],
    svc: Annotated[Services, Depends(services)],
) -> Caller:
    """The caller: local mode's owner; a trusted proxy's user; or from `Authorization: Bearer
    TOKEN`, or for browsers (images, EventSource) the UI's session cookie holding the same token,
    checked the same way on every request."""
    token = credentials.credentials if credentials is not None else cookie
    found = identify(request, svc, token)
    if found is None:
        if not token:
            ways = []
            if svc.identities.takes_tokens:
                ways.append("send Authorization: Bearer TOKEN")
            if svc.identities.proxies is not None:
                ways.append("sign in through the authenticating proxy")
            raise ApiError(401, "unauthorized", "missing bearer token: " + " or ".join(ways), _CHALLENGE)
        raise ApiError(401, "unauthorized", "unknown token", _CHALLENGE)
    if not found.owners and not found.admin:
        groups = f" (groups {', '.join(found.groups)})" if found.groups else ""
        raise ApiError(
            403,
            "no_owner",
            f"{found.user}{groups} acts for no owner: an administrator maps the user or a group to an "
            "owner in the owners file (CONTENTGEN_API_OWNERS_FILE)",
        )
    return found


CallerDep = Annotated[Caller, Depends(caller)]
ServicesDep = Annotated[Services, Depends(services)]


def owner_scope(who: Caller, requested: str | None) -> OwnerScope:
    """The owners a listing is limited to: the caller's (or one of them, `requested`); for an
    admin `requested` (None: everyone's)."""
    if who.admin:
        return requested
    if requested is not None:
        if requested not in who.owners:
            raise ApiError(
                403, "forbidden", f"owner: {who.user} does not act for owner {requested!r} (an admin may)"
            )
        return requested
    return who.scope


def record_scope(who: Caller) -> OwnerScope:
    """The owners a single record must have one of to be visible (None: any, for an admin)."""
    return who.scope


def _time(name: str, value: str | None, *, end: bool) -> datetime | None:
    if value is None:
        return None
    try:
        if not matches(TIME_PATTERN, value):  # what the document says; parse_time takes more
            raise ValueError(
                f"{value!r} is not an ISO date or datetime (e.g. 2025-01-31 or 2025-01-31T12:00:00Z)"
            )
        return params.parse_time(value, end=end)
    except ValueError as exc:
        raise bad_request(name, str(exc)) from None


# What a record reference looks like (catalog/names.py reads it): what the path's pattern and the
# `ref` convertor below admit, so the document refuses what the server would.
_SEGMENT = r"[0-9A-Za-z][0-9A-Za-z._-]*"
REF_PATTERN = said(
    rf"^{_SEGMENT}(/{_SEGMENT})?(@[0-9A-Za-z-]+)?$",
    "a record's id, a unique prefix of it (4 or more characters), a name, namespace/name or "
    "namespace/name@id-prefix (letters, digits, '.', '_' and '-', each part starting with a letter or digit)",
)
# An ISO date or datetime (parse_time reads it), years 1000-2999 (no overflow at either end).
TIME_PATTERN = said(
    r"^[12][0-9]{3}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    r"|02-(0[1-9]|1[0-9]|2[0-8]))"
    r"([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?"
    r"(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$",
    "a date (2026-11-24) or a date and time (2026-11-24T15:02:11Z, or with an offset: +01:00)",
)


class RefConvertor(Convertor[str]):
    """A record reference in a path (`{ref:ref}`): one segment, or namespace/name, but never one
    that ends in an action of its own (cancel, rerun, compare, stop): GET /api/jobs/NS/cancel would
    otherwise read as the record NS/cancel, and its 405 would name the wrong methods. Such a
    record is reached by its id."""

    regex = r"[^/]+(?:/(?!(?:cancel|rerun|compare|stop)$)[^/]+)?"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("ref", RefConvertor())
_TIME = {"pattern": TIME_PATTERN}  # checked in _time, with its own message


# 1 to 20 words (queries.search_words), without control characters.
_WORD = rf"[^{SPACES}\x00-\x1f\x7f-\x9f]+"
_GAP = f"[{SPACES}]"
SEARCH_PATTERN = said(
    rf"^{_GAP}*{_WORD}({_GAP}+{_WORD}){{0,19}}{_GAP}*$", "1 to 20 words, without control characters"
)


def matches(pattern: str, value: str) -> bool:
    """Whether the whole of `value` matches a document's pattern (^...$; Python's $ would take a
    trailing newline)."""
    return re.fullmatch(pattern.removeprefix("^").removesuffix("$"), value) is not None


RefPath = Annotated[
    str,
    Path(
        description="The record: its id, a unique prefix of it (4+ characters), namespace/name (the "
        "resource that exists now), namespace/name@id-prefix (one of several of that name), or a bare "
        "name (namespace default first, then any).",
        max_length=400,
        json_schema_extra={"pattern": REF_PATTERN},  # checked in find_record, with its own message
    ),
]
OwnerQuery = Annotated[str | None, Query(description=FILTER_HELP["owner"] + "; admin tokens only.")]
TypeQuery = Annotated[TypeName | None, Query(alias="type", description=FILTER_HELP["type"])]


def acting_for(who: Caller, owner: str) -> None:
    """Refused (403) unless `who` acts for `owner`, the record's owner: to change a record, seeing it
    (shared with the caller) is not enough."""
    if not who.may_act_for(owner):
        raise ApiError(403, "forbidden", f"{who.user} does not act for {owner!r}, the record's owner")


def find_record(svc: Services, who: Caller, ref: str, type_: str | None = None) -> dict[str, Any]:
    """The record `ref` names (current shape), visible to `who`; 404 (another owner's too), 400
    when ambiguous (the message lists the choices)."""
    if not matches(REF_PATTERN, ref):
        raise bad_request(
            "ref",
            f"{ref!r} is not a record reference: give its id, a unique prefix of it (4+ characters), "
            "namespace/name, namespace/name@id-prefix or a name (letters, digits, '.', '_', '-')",
        )
    try:
        doc = resolve(svc.catalog, ref, owner=record_scope(who), type=type_)
    except AmbiguousReference as exc:  # a valid reference that several records answer to
        raise ApiError(409, "ambiguous", f"id: {exc}") from None
    except ValueError as exc:  # an empty id
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
    since: Annotated[str | None, Query(description=FILTER_HELP["since"], json_schema_extra=_TIME)] = None,
    until: Annotated[str | None, Query(description=FILTER_HELP["until"], json_schema_extra=_TIME)] = None,
    model: Annotated[str | None, Query(max_length=64, description=FILTER_HELP["model"])] = None,
    lora: Annotated[str | None, Query(max_length=140, description=FILTER_HELP["lora"])] = None,
    tag: Annotated[str | None, Query(max_length=64, description=FILTER_HELP["tag"])] = None,
    sort: Annotated[SortField, Query(description=SORT_HELP["sort"])] = "createdAt",
    order: Annotated[Order, Query(description=SORT_HELP["order"])] = "desc",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=SORT_HELP["limit"])] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, description=SORT_HELP["offset"])] = 0,
) -> ListQuery:
    """The filter vocabulary, with the same names as `contentgen assets list`'s flags."""
    # since at or after until: an empty range, which matches nothing (not an error the document
    # could state)
    start, end = _time("since", since, end=False), _time("until", until, end=True)
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


def stored_spec(svc: Services, doc: dict[str, Any]) -> Callable[[int], dict[str, Any] | None]:
    """A version's spec snapshot from its result.json in the store (for versions older than the
    ones whose snapshots the record keeps); None where it is not there."""
    from contentgen.api import KINDS
    from contentgen.store.results import version_result

    def read(version: int) -> dict[str, Any] | None:
        kind = KINDS.get(str(doc.get("kind")))
        if kind is None:
            return None
        result = version_result(svc.store(), kind.catalog_type, str(doc["owner"]), str(doc["_id"]), version)
        return dict(result.spec) if result is not None and result.spec else None

    return read


def find_readable(
    svc: Services, who: Caller, ref: str, type_: str | None = None, *, download: bool = False
) -> dict[str, Any]:
    """`find_record`, or else another owner's record shared with the caller (docs/sharing.md): for
    reading only; `download`: its files too, which a use-only grant does not give (403 use_only).
    Anyone else gets the 404 of a missing record."""
    from contentgen.catalog.sharing import readable

    try:
        return find_record(svc, who, ref, type_)
    except ApiError as exc:
        if exc.status != 404 or who.admin:
            raise
    found = readable(svc.catalog, ref, who.owners, who.groups, type_)
    if found is None:
        raise not_found(ref)
    doc, access = found
    if download and access == "use":
        raise ApiError(
            403,
            "use_only",
            f"{doc.get('namespace')}/{doc.get('name')} is shared with you for use only (in a loraRef): its "
            f"files are not downloaded; its owner {doc.get('owner')!r} may share it for read",
        )
    return doc


def counted_download(svc: Services, doc: dict[str, Any], uri: str) -> None:
    """A download of `uri` counted in the record's usage (catalog/usage.Usage); never fails the
    download."""
    from contentgen.api import now
    from contentgen.catalog.usage import Usage
    from contentgen.store.keys import version_of_uri

    try:
        Usage(svc.catalog).downloaded(str(doc["_id"]), version_of_uri(uri) or 0, now())
    except Exception:  # a counter that cannot be written does not refuse the file
        logging.getLogger("contentgen.api").warning("usage: the download of %s was not counted", uri)


def accessed(svc: Services, doc: dict[str, Any]) -> None:
    """A view of the record, as its usage's last access; never fails the request."""
    from contentgen.api import now
    from contentgen.catalog.usage import Usage

    try:
        Usage(svc.catalog).accessed(str(doc["_id"]), now())
    except Exception:
        logging.getLogger("contentgen.api").warning("usage: the access to %s was not noted", doc.get("_id"))
