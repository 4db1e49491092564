"""A local store that counts its writes (tests/run, cluster)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from contentgen.errors import TransientError
from contentgen.store import LocalStore, keys


class CountingStore(LocalStore):
    """A local store that counts writes and deletes by key, and refuses the first write of keys
    that `refuse` picks (once each), as a store outage would."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.writes: Counter[str] = Counter()
        self.deletes: Counter[str] = Counter()
        self.refuse: Callable[[str], bool] = lambda key: False
        self.refused: set[str] = set()

    def _count(self, key: str) -> None:
        if key not in self.refused and self.refuse(key):
            self.refused.add(key)
            raise TransientError(f"the store did not answer writing {key}", reason="StoreUnavailable")
        self.writes[key] += 1

    def put_bytes(self, key: str, data: bytes, content_type: str, *, if_absent: bool = False) -> Any:
        self._count(key)
        return super().put_bytes(key, data, content_type, if_absent=if_absent)

    def put_file(self, key: str, path: Path, content_type: str, *, if_absent: bool = False) -> Any:
        self._count(key)
        return super().put_file(key, path, content_type, if_absent=if_absent)

    def delete(self, key: str) -> bool:
        self.deletes[key] += 1
        return super().delete(key)

    def delete_prefix(self, prefix: str) -> int:
        self.deletes[prefix] += 1
        return super().delete_prefix(prefix)

    def outputs_written_twice(self) -> dict[str, int]:
        return {k: n for k, n in self.writes.items() if n > 1 and not keys.is_mutable(k)}
