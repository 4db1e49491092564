"""A key names its owner, and a spec may name only its own owner's keys or what is shared with it
(pure; docs/security.md).

Every address a spec reads (api/inputs.py) that lies in the store's own bucket, by whatever name
reaches it (`s3://bucket/key`, the endpoint's https address path-style or virtual-hosted, a
presigned link, the same path on another name of the endpoint), is checked against the owner its
key's layout names (store/keys.py `holder`): an output of `spec.owner`'s is theirs; another owner's
output only where that owner's resource shares it with `spec.owner` for the access it needs (a
LoRA's weights: `use`; any other file: `read`); an upload only its own owner's; the store's own
state (temp/, outbox/, unknown places) and keys with escapes or dot segments never. The store is
never asked, so the words are the same whether the object exists or not.

The same rule holds in three places: the chart's admission policy (the CEL charts/ is generated
with, controller/input_policy.py), the HTTP API and the operator before a Job (resolving through
`crossings`), and the pipeline before it fetches or presigns anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from contentgen.api.inputs import Access, SpecInput
from contentgen.api.sharing import Grant

from .keys import KeyHolder, holder

# AWS's own names of S3 (path-style: s3.amazonaws.com/BUCKET/KEY, s3.REGION.amazonaws.com/...,
# s3-REGION..., dualstack and FIPS ones; virtual-hosted: BUCKET.<any of them>/KEY).
AWS_HOST = re.compile(r"^s3([.-][a-z0-9-]+)*\.amazonaws\.com(\.cn)?(:\d+)?$")
REASON = "InputNotShared"


@dataclass(frozen=True)
class StorePlace:
    """Where the store's objects can be named from: its bucket and key prefix (s3://), the hosts
    of its endpoints (its own and the public one links are signed for), or a local store's
    directory."""

    bucket: str = ""
    prefix: str = ""
    hosts: tuple[str, ...] = ()  # host[:port], lowercase
    root: str = ""  # a local store's directory

    @classmethod
    def of(cls, store_url: str, *endpoints: str) -> StorePlace:
        """The place of the store `store_url` (s3://bucket/prefix, file:///dir or a directory)
        reached at `endpoints` (URLs; empty ones are skipped)."""
        parsed = urlparse(store_url)
        if parsed.scheme == "s3":
            prefix = parsed.path.strip("/")
            hosts = tuple(sorted({urlparse(e).netloc.lower() for e in endpoints if e}))
            return cls(bucket=parsed.netloc, prefix=f"{prefix}/" if prefix else "", hosts=hosts)
        path = parsed.path if parsed.scheme == "file" else store_url
        return cls(root=str(Path(path).expanduser().resolve())) if path else cls()


@dataclass(frozen=True)
class Located:
    """An address of the store's: the key it names, and whether it names it plainly (no %-escapes
    in an http(s) address, which S3 would decode into another key)."""

    key: str
    plain: bool = True


def located(url: str, place: StorePlace) -> Located | None:
    """The key `url` names in the store at `place`, or None where it is not the store's."""
    if url.startswith("s3://"):
        bucket, _, key = url[len("s3://") :].partition("/")
        return _in_bucket(bucket, key, place, plain="?" not in key and "#" not in key)
    try:
        parsed = urlparse(url)
    except ValueError:  # no address at all (`http://[` : no host to reach, the store's or another's)
        return None
    if parsed.scheme in ("http", "https") and place.bucket:
        host, path = parsed.netloc.lower().rpartition("@")[2], parsed.path
        plain = "%" not in path and "\\" not in path
        decoded = unquote(path)
        bucket = place.bucket.lower()
        endpoint = host[len(bucket) + 1 :] if host.startswith(f"{bucket}.") else ""
        if endpoint and (endpoint in place.hosts or AWS_HOST.match(endpoint)):  # virtual-hosted
            return Located(_inside(decoded[1:], place), plain)
        first, _, rest = decoded[1:].partition("/")
        # Path-style, on the store's endpoint or on any other name of it (an address or alias the
        # policy cannot know): a path that starts with the bucket is taken as the store's.
        if first.lower() == bucket:
            return Located(_inside(rest, place), plain)
        return None
    if place.root and (parsed.scheme == "file" or "://" not in url):
        local = Path(unquote(parsed.path) if parsed.scheme == "file" else url).expanduser()
        try:
            relative = local.resolve().relative_to(place.root)
        except ValueError:
            return None
        return Located(relative.as_posix())
    return None


def _in_bucket(bucket: str, key: str, place: StorePlace, *, plain: bool) -> Located | None:
    if not place.bucket or bucket.lower() != place.bucket.lower():
        return None
    return Located(_inside(key, place), plain)


def _inside(key: str, place: StorePlace) -> str:
    """`key` within the store's prefix; "" (no key of ours: the store's own) outside it."""
    if not place.prefix:
        return key
    return key[len(place.prefix) :] if key.startswith(place.prefix) else ""


@dataclass(frozen=True)
class Crossing:
    """A spec's input in the store that is not plainly its owner's: refused (with why), or allowed
    by the key owner's grant (a use across owners, which is audited)."""

    input: SpecInput
    holder: KeyHolder
    owner: str  # spec.owner
    needs: Access
    refusal: str = ""  # "" where a grant allows it

    @property
    def allowed(self) -> bool:
        return not self.refusal


GrantsOf = Callable[[str], Iterable[Grant]]  # a resource's grants by its uid (none: ())


def crossings(
    found: Iterable[SpecInput], owner: str, place: StorePlace, grants_of: GrantsOf
) -> list[Crossing]:
    """Each input of `found` that names the store and is not `owner`'s own output or upload:
    refused, or allowed by a grant."""
    crossed: list[Crossing] = []
    for entry in found:
        where = located(entry.url, place)
        if where is None:
            continue
        held = holder(where.key) if where.plain and where.key else _state()
        if held.held in ("output", "upload") and held.owner == owner:
            continue
        if held.held == "baseline":
            continue  # pictures of a base model without a LoRA, no owner's (shared by design)
        needs: Access = "use" if held.weights and entry.access == "use" else "read"
        shared = held.held == "output" and _granted(grants_of(held.uid), owner, needs)
        words = "" if shared else refusal(entry.field, held, owner, needs, place.bucket, plain=where.plain)
        crossed.append(Crossing(entry, held, owner, needs, words))
    return crossed


def _state() -> KeyHolder:
    return KeyHolder("state")


def _granted(grants: Iterable[Grant], owner: str, needs: Access) -> bool:
    return any(g.to == f"owner:{owner}" and g.access == needs for g in grants)


def refusal(field: str, held: KeyHolder, owner: str, needs: Access, bucket: str, *, plain: bool) -> str:
    """Why `field` may not name that key, in one line (the admission policy's CEL says the same):
    never whether the object exists."""
    if not plain:
        return (
            f"{field}: an address in the store's bucket {bucket!r} must name its key plainly (no "
            f"%-escapes): name the object as s3://{bucket}/KEY"
        )
    if held.held == "output":
        return (
            f"{field}: {held.named} belongs to owner {held.owner!r}, who has not shared it with owner "
            f"{owner!r} (spec.owner) for {needs}; name an output of owner {owner!r}, or have "
            f"{held.owner!r} share it for {needs} (docs/sharing.md)"
        )
    if held.held == "upload":
        return (
            f"{field}: {held.named} is an upload of owner {held.owner!r}, and uploads are not shared; upload "
            f"the file as owner {owner!r} (spec.owner)"
        )
    return (
        f"{field}: names a key of the store's own (not an output or an upload of owner {owner!r}), "
        f"which no resource may name; name an output or an upload of owner {owner!r}"
    )


def first_refusal(crossed: Iterable[Crossing]) -> Crossing | None:
    return next((c for c in crossed if not c.allowed), None)
