"""The grants the operator mirrors for admission (controller/shares.py), as pure functions and
against a recorded API: LoraTrainings with and without the annotation, one deleted, the ConfigMap's
1 MiB, a write only when the data changes, and a former leader's write refused. The ConfigMap read
by the chart's policy on the real kube-apiserver is tests/owners/test_share_policy.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from contentgen.controller.kube import KubeError, NotLeading
from contentgen.controller.observe import LoraState, lora_state
from contentgen.controller.shares import MAX_DATA_BYTES, ShareMirror, params_data


def training(namespace: str, name: str, shared: str | None = None, owner: str = "alice") -> LoraState:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "uid": f"u-{name}"}
    if shared is not None:
        meta["annotations"] = {"contentgen.io/shared-with": shared}
    return lora_state({"metadata": meta, "spec": {"owner": owner}, "status": {}})


def test_only_loras_with_grants_are_mirrored_under_namespace_dot_name() -> None:
    loras = [
        training("studio-a", "avatar", " bob=use, group:artists=read "),
        training("studio-a", "plain"),  # no annotation
        training("studio-a", "empty", ""),
        training("studio-b", "v1.2", "owner:carol=read", owner="dora"),  # a name with dots
        training("studio-c", "bad", "group:artists=use,owner:BAD=read"),  # nothing valid in it
    ]
    data, left_out = params_data(loras)
    assert data == {
        "studio-a.avatar": "owner:bob=use,group:artists=read",  # the canonical grants
        "studio-b.v1.2": "owner:carol=read",
    }
    assert left_out == []
    # A LoraTraining deleted leaves the index, and its key the data; so does a taken-back annotation.
    assert params_data(loras[1:])[0] == {"studio-b.v1.2": "owner:carol=read"}
    unshared = [training("studio-a", "avatar", ""), *loras[1:]]
    assert "studio-a.avatar" not in params_data(unshared)[0]


def test_what_a_configmap_cannot_hold_is_left_out_and_said() -> None:
    long_name = "n" * 250  # a valid LoraTraining name, too long for a key with its namespace
    many = [training("studio-a", f"lora-{i:06d}", "owner:bob=use,owner:carol=read") for i in range(25000)]
    data, left_out = params_data([training("studio-a", long_name, "bob=use"), *many])
    assert left_out[0] == f"studio-a.{long_name}"
    assert len(json.dumps(data).encode()) <= MAX_DATA_BYTES < 1024 * 1024
    kept = sorted(data)
    assert kept[0] == "studio-a.lora-000000" and left_out[1:] == sorted(left_out[1:])
    assert max(kept) < min(left_out[1:])  # the first in key order are kept
    assert len(kept) + len(left_out) == 25001


class Recorded:
    """An API server holding one ConfigMap: GETs answered, JSON patches applied when their test of
    the resourceVersion holds (422 otherwise, as the API server answers)."""

    def __init__(self, data: dict[str, str] | None = None, leading: bool = True) -> None:
        self.version, self.data, self.leading = 1, dict(data or {}), leading
        self.calls: list[tuple[str, Any]] = []

    async def request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        assert path == "/api/v1/namespaces/contentgen/configmaps/contentgen-shares"
        if method != "GET" and not self.leading:
            raise NotLeading(path)
        self.calls.append((method, body))
        if method == "GET":
            return {"metadata": {"resourceVersion": str(self.version)}, "data": dict(self.data)}
        assert method == "PATCH"
        test, add = body
        if test["value"] != str(self.version):
            raise KubeError(422, {"message": "the test operation failed"}, path)
        assert add["op"] == "add" and add["path"] == "/data"
        self.data, self.version = dict(add["value"]), self.version + 1
        return {}


def mirror(api: Recorded, loras: list[LoraState]) -> ShareMirror:
    m = ShareMirror(api, "contentgen", "contentgen-shares", lambda: loras, coalesce=0.01, retry=0.01)  # type: ignore[arg-type]
    return m


def test_the_mirror_writes_on_change_only() -> None:
    api = Recorded({"stale.entry": "owner:x=use"})
    loras = [training("studio-a", "avatar", "bob=use")]
    m = mirror(api, loras)

    async def go() -> None:
        await m.sync()  # the full resync at a leader's start: what was there is replaced
        assert api.data == {"studio-a.avatar": "owner:bob=use"} and m.writes == 1
        await m.sync()  # nothing changed: no request at all
        assert len(api.calls) == 2
        loras.append(training("studio-a", "plain"))  # a LoraTraining without grants changes nothing
        await m.sync()
        assert len(api.calls) == 2
        loras[0] = training("studio-a", "avatar", "bob=use,carol=use")
        await m.sync()
        assert api.data == {"studio-a.avatar": "owner:bob=use,owner:carol=use"} and m.writes == 2

    asyncio.run(go())


def test_a_burst_of_changes_is_one_write_and_a_conflict_is_retried() -> None:
    api = Recorded()
    loras: list[LoraState] = []
    m = mirror(api, loras)

    async def go() -> None:
        task = asyncio.create_task(m.run())
        try:
            await wait(lambda: m.writes == 0 and len(api.calls) == 1)  # the resync: read, nothing to write
            for i in range(20):
                loras.append(training("studio-a", f"l{i}", "bob=use"))
                m.changed()
            await wait(lambda: len(api.data) == 20)
            assert m.writes == 1
            # Someone else wrote between the mirror's read and its patch (a former leader's late
            # write): the guarded patch is refused and the mirror reads again.
            original = api.request

            async def racing(method: str, path: str, body: Any = None, **kw: Any) -> Any:
                answer = await original(method, path, body, **kw)
                if method == "GET" and api.version == 2:
                    api.version, api.data = 3, {"old.leader": "owner:x=use"}
                return answer

            api.request = racing  # type: ignore[method-assign]
            loras.pop()
            m.changed()
            await wait(lambda: len(api.data) == 19 and "old.leader" not in api.data)
        finally:
            task.cancel()

    asyncio.run(go())


def test_a_replica_without_the_lease_writes_nothing() -> None:
    api = Recorded(leading=False)
    m = mirror(api, [training("studio-a", "avatar", "bob=use")])
    with pytest.raises(NotLeading):
        asyncio.run(m.sync())
    assert api.data == {} and [c[0] for c in api.calls] == ["GET"]


async def wait(check: Any, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "not in time"
        await asyncio.sleep(0.01)
