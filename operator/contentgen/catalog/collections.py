"""Collections in the catalog (issue 38): one document per collection, {_id, name, owner,
description, members [{id, addedAt, by}], shares, createdAt, updatedAt, rev}, whose members are
records of any kind; what a collection shows (a member another owner did not share with the caller
is not shown), searches and archives (a zip of its members' files with a manifest).
"""

from __future__ import annotations

import json
import re
import secrets
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from contentgen.api.reading import Reading, Text
from contentgen.api.sharing import (
    Grant,
    access_of,
    grantee_keys,
    grants_of,
    with_grant,
    without_grant,
)
from contentgen.errors import ContentgenError
from contentgen.store import LocalStore, ObjectStore

from .base import Catalog
from .dates import iso_z
from .downloads import version_uris
from .migrate import upgrade
from .sharing import MAX_SHARED_LISTED

COLLECTIONS = "collections"
MAX_MEMBERS = 1000


class CollectionError(ValueError):
    """A collection change that cannot be made (the message says why)."""


class Member(Reading):
    """A collection's member as stored: the record's id, when and by whom it was added."""

    id: Text = ""
    added_at: Text = ""
    by: Text = ""

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "addedAt": self.added_at, "by": self.by}


def _grants(shares: Any) -> tuple[Grant, ...]:
    return grants_of({"shares": shares})


class Collection(Reading):
    """A collection as the catalog stores it, read where it leaves MongoDB. Its `shares` are the
    grants among them (an entry that is no grant is skipped, as everywhere grants are read)."""

    id: str = Field(alias="_id")
    name: Text = ""
    owner: Text = ""
    description: Text = ""
    members: tuple[Member, ...] = ()
    shares: Annotated[tuple[Grant, ...], BeforeValidator(_grants)] = ()
    created_by: Text = ""
    created_at: Text = ""
    updated_at: Text = ""
    rev: int | None = None  # None: written before revisions (matched as absent)

    def holds(self, record_id: str) -> bool:
        return any(m.id == record_id for m in self.members)

    def access(self, owners: Iterable[str], groups: Iterable[str] = ()) -> str:
        """What callers acting for `owners` (in `groups`) may do with it: owner, read, use or none."""
        return access_of(self.shares, self.owner, owners, groups)

    def shares_shown(self, access: str) -> list[dict[str, Any]]:
        """Its grants as the HTTP API and the CLI show them: to its owner only."""
        return [g.wire() for g in self.shares] if access == "owner" else []

    def stored(self) -> dict[str, Any]:
        """Its fields as the catalog stores them, but its id."""
        return {
            "name": self.name,
            "owner": self.owner,
            "description": self.description,
            "members": [m.wire() for m in self.members],
            "shares": [g.wire() for g in self.shares],
            "createdBy": self.created_by,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "rev": self.rev,
        }


class Collections:
    """The collections of a catalog."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.docs = catalog.sibling(COLLECTIONS)
        self.guard = catalog.guard

    def create(self, owner: str, name: str, description: str, by: str, now: datetime) -> Collection:
        if self.named(owner, name) is not None:
            raise CollectionError(f"owner {owner!r} has a collection named {name!r} already")
        made = Collection(
            _id="c" + secrets.token_hex(8),
            name=name,
            owner=owner,
            description=description,
            created_by=by,
            created_at=iso_z(now),
            updated_at=iso_z(now),
            rev=1,
        )
        with self.guard:
            self.docs.insert_one({"_id": made.id, **made.stored()})
        return made

    def get(self, cid: str) -> Collection | None:
        with self.guard:
            found = self.docs.find_one({"_id": cid})
        return Collection.of(found) if found is not None else None

    def named(self, owner: str, name: str) -> Collection | None:
        with self.guard:
            found = self.docs.find_one({"owner": owner, "name": name})
        return Collection.of(found) if found is not None else None

    def visible(
        self, owners: Iterable[str], groups: Iterable[str] = (), admin: bool = False
    ) -> list[Collection]:
        """The caller's collections and those shared with it (an admin: every one), by name."""
        owners = list(owners)
        query: dict[str, Any] = (
            {}
            if admin
            else {"$or": [{"owner": {"$in": owners}}, {"shares.to": {"$in": grantee_keys(owners, groups)}}]}
        )
        with self.guard:
            found = [Collection.of(d) for d in self.docs.find(query).limit(MAX_SHARED_LISTED)]
        return sorted(found, key=lambda c: (c.owner, c.name, c.id))

    def find(
        self, ref: str, owners: Iterable[str], groups: Iterable[str] = (), admin: bool = False
    ) -> tuple[Collection, str] | None:
        """The collection `ref` (its id, or the name of one of the caller's own) with the caller's
        access (owner, read, use); None where the caller may not see it."""
        owners = list(owners)
        found = self.get(ref)
        if found is None:
            mine = [c for o in owners if (c := self.named(o, ref)) is not None]
            found = mine[0] if len(mine) == 1 else None
        if found is None:
            return None
        if admin:
            return found, "owner"
        access = found.access(owners, groups)
        return (found, access) if access != "none" else None

    def _change(self, cid: str, change: Callable[[Collection], Collection]) -> Collection:
        """Apply `change` conditionally on the collection's rev; retried. Fields this version does
        not know are kept."""
        for _ in range(8):
            current = self.get(cid)
            if current is None:
                raise CollectionError(f"collection {cid} is gone")
            new = change(current).model_copy(update={"rev": (current.rev or 0) + 1})
            with self.guard:
                result = self.docs.update_one({"_id": cid, "rev": current.rev}, {"$set": new.stored()})
            if result.matched_count:
                return new
        raise CollectionError(f"collection {cid}: too many writers at once; try again")

    def add(self, cid: str, record_id: str, by: str, now: datetime) -> Collection:
        def change(found: Collection) -> Collection:
            if found.holds(record_id):
                return found
            if len(found.members) >= MAX_MEMBERS:
                raise CollectionError(f"a collection holds at most {MAX_MEMBERS} assets")
            member = Member(id=record_id, added_at=iso_z(now), by=by)
            return found.model_copy(update={"members": (*found.members, member), "updated_at": iso_z(now)})

        return self._change(cid, change)

    def remove(self, cid: str, record_id: str, now: datetime) -> tuple[Collection, bool]:
        removed = False

        def change(found: Collection) -> Collection:
            nonlocal removed
            members = tuple(m for m in found.members if m.id != record_id)
            removed = len(members) != len(found.members)
            return found.model_copy(update={"members": members, "updated_at": iso_z(now)})

        return self._change(cid, change), removed

    def share(
        self, cid: str, now: datetime, *, give: Grant | None = None, take: str | None = None
    ) -> tuple[Collection, bool]:
        changed = True

        def change(found: Collection) -> Collection:
            nonlocal changed
            if give is not None:
                after = with_grant(found.shares, give)
            else:
                after, changed = without_grant(found.shares, take or "")
            return found.model_copy(update={"shares": after, "updated_at": iso_z(now)})

        return self._change(cid, change), changed

    def delete(self, cid: str) -> bool:
        with self.guard:
            return bool(self.docs.delete_one({"_id": cid}).deleted_count)

    def members(self, collection: Collection) -> list[dict[str, Any]]:
        """The member records (current shape) that still exist, in the order they were added."""
        ids = [m.id for m in collection.members]
        found = {d["_id"]: upgrade(d) for d in self.catalog.find_raw({"_id": {"$in": ids}})} if ids else {}
        return [found[i] for i in ids if i in found]


# --- what a collection shows, searches and archives -----------------------------------------------


def visible_members(
    collection: Collection,
    members: list[dict[str, Any]],
    owners: Iterable[str],
    groups: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """The members a caller sees through a collection it may see: the collection owner's own
    records (the collection's grant shares them), and another owner's only where the caller may
    see that record itself (a collection does not share onward what was shared with its owner)."""
    owners, groups = list(owners), list(groups)
    return [
        m
        for m in members
        if str(m.get("owner")) == collection.owner
        or access_of(grants_of(m), str(m.get("owner")), owners, groups) != "none"
    ]


def downloadable(
    collection: Collection, member: dict[str, Any], owners: Iterable[str], groups: Iterable[str] = ()
) -> bool:
    """Whether a caller with read of `collection` gets `member`'s files in its archive."""
    owner = str(member.get("owner"))
    if owner in owners or owner == collection.owner:
        return True
    return access_of(grants_of(member), owner, owners, groups) in ("owner", "read")


def matches_words(doc: dict[str, Any], words: Iterable[str]) -> bool:
    """Whether every word occurs (any case) in what search matches of a record: document.py's
    searchText (name, tags, description, prompts, trigger words, transcripts)."""
    text = str(doc.get("searchText") or "") or " ".join(
        [str(doc.get("name") or ""), *map(str, doc.get("tags") or []), str(doc.get("description") or "")]
    )
    text = text.lower()
    return all(w.lower() in text for w in words)


_UNSAFE = re.compile(r"[^0-9A-Za-z._-]+")


MANIFEST = "manifest.json"
MISSING = "MISSING.txt"


def _unique(name: str, taken: set[str]) -> str:
    """`name`, or name-2, name-3 ... (before its extension) where an earlier file took it."""
    stem, dot, ext = name.rpartition(".")
    if not dot or "/" in ext:
        stem, dot, ext = name, "", ""
    found, n = name, 1
    while found in taken or found in (MANIFEST, MISSING):
        n += 1
        found = f"{stem}-{n}{dot}{ext}"
    taken.add(found)
    return found


def _inside(key: str, version: int) -> str:
    """Where an object of version `version` sits in its member's folder: its path under the
    version's prefix (likeness/e1/likeness.json, images/0001.jpg), a LoRA's dataset under dataset/."""
    marker = f"/v{version}/"
    path = key.split(marker, 1)[1] if marker in key else key.rsplit("/", 1)[-1]
    return f"dataset/{path}" if key.startswith("datasets/") else path


def archive_plan(
    store: ObjectStore, collection: Collection, members: list[dict[str, Any]]
) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """(name in the archive, uri) of every member's latest version's files in `store`, a folder per
    member (NAMESPACE_NAME-vN/), each file under a name of its own (two members' or one member's
    same-named files both kept); and the manifest listing each member and file, with the version's
    current likeness report where it has one."""
    files: list[tuple[str, str]] = []
    taken: set[str] = set()
    listed: list[dict[str, Any]] = []
    for member in members:
        if member.get("versions"):
            listed.append(_member(store, member, taken, files))
    manifest = {
        "collection": {"id": collection.id, "name": collection.name, "owner": collection.owner},
        "members": listed,
        "files": len(files),
    }
    return files, manifest


def _member(
    store: ObjectStore, member: dict[str, Any], taken: set[str], files: list[tuple[str, str]]
) -> dict[str, Any]:
    """A member's entry in the manifest: its latest version's files in `store` added to `files`
    under a folder of its own (its name added to `taken`), and its likeness."""
    latest = member["versions"][-1]
    number = int(latest.get("version") or 0)
    folder = _unique(_UNSAFE.sub("_", f"{member.get('namespace')}_{member.get('name')}-v{number}"), taken)
    listed, by_uri = _version_files(store, latest, number, folder)
    files += [(entry["name"], entry["uri"]) for entry in listed]
    entry: dict[str, Any] = {
        **{field: str(member.get(key) or "") for field, key in _MEMBER_FIELDS},
        "version": number,
        "folder": f"{folder}/",
        "files": listed,
    }
    likeness = latest.get("likeness") or {}
    if likeness.get("verdict"):  # the version's likeness as the record holds it now
        entry["likeness"] = _likeness_entry(likeness, by_uri)
    return entry


# A member's fields in the manifest: (its name there, its key in the record).
_MEMBER_FIELDS = (
    ("id", "_id"),
    ("kind", "kind"),
    ("namespace", "namespace"),
    ("name", "name"),
    ("owner", "owner"),
)


def _version_files(
    store: ObjectStore, version: dict[str, Any], number: int, folder: str
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The manifest's entries of a version's files in `store` (each under a name of its own in
    `folder`), and where each uri is in the archive."""
    sizes = {a["uri"]: a for a in version.get("artifacts") or []}
    inside: set[str] = set()
    listed: list[dict[str, Any]] = []
    for uri in (u for u in version_uris(version) if store.owns(u)):
        path = f"{folder}/{_unique(_inside(store.key_of(uri), number), inside)}"
        listed.append({"name": path, "uri": uri, **_known(sizes.get(uri) or {})})
    return listed, {entry["uri"]: entry["name"] for entry in listed}


def _likeness_entry(likeness: dict[str, Any], by_uri: dict[str, str]) -> dict[str, Any]:
    """A likeness report as the manifest lists it: its verdict and median, and where its report
    and grid are in the archive ("" where they are not)."""
    return {
        "verdict": likeness.get("verdict"),
        "median": likeness.get("median"),
        "report": by_uri.get(str(likeness.get("reportUri") or ""), ""),
        "grid": by_uri.get(str(likeness.get("gridUri") or ""), ""),
    }


def _known(artifact: dict[str, Any]) -> dict[str, Any]:
    """What the version's artifact list says of a file: its size and SHA-256, where it says."""
    return {
        **({"sizeBytes": int(artifact["sizeBytes"])} if "sizeBytes" in artifact else {}),
        **({"sha256": artifact["sha256"]} if artifact.get("sha256") else {}),
    }


class _Sink:
    """A write-only file that hands what is written on as it comes."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


def zipped(
    store: ObjectStore, files: list[tuple[str, str]], manifest: dict[str, Any] | None = None
) -> Iterator[bytes]:
    """A zip of `files` (names unique: archive_plan), made as it is read (ZIP_STORED: pictures and
    models do not compress), a file at a time from the store, never whole in memory; a file the
    store cannot give is left out, with a line in MISSING.txt and `missing` in the manifest."""
    sink = _Sink()
    missing: list[str] = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, uri in files:
            try:
                with (
                    _local_copy(store, uri) as path,
                    open(path, "rb") as source,
                    archive.open(name, "w", force_zip64=True) as target,
                ):
                    while chunk := source.read(1 << 20):
                        target.write(chunk)
                        yield sink.take()
            except (OSError, ContentgenError) as exc:
                missing.append(f"{name}: {exc}")
            yield sink.take()
        if missing:
            archive.writestr(MISSING, "\n".join(missing) + "\n")
        if manifest is not None:
            gone = {line.split(": ", 1)[0] for line in missing}
            written = {**manifest, "missing": sorted(gone)}
            archive.writestr(MANIFEST, json.dumps(written, indent=1) + "\n")
    yield sink.take()


@contextmanager
def _local_copy(store: ObjectStore, uri: str) -> Iterator[Path]:
    """A stored object as a local path: the file itself in a local store, else a temporary copy."""
    key = store.key_of(uri)
    if isinstance(store, LocalStore):
        path = store.root / key
        if not path.is_file():
            raise OSError(f"{uri} is missing from the store")
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="contentgen-zip-") as tmp:
        yield store.get_file(key, Path(tmp) / "object")
