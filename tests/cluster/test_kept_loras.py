"""The warm pool's kept LoRAs (`generation.KeptLoras`, issue 47) as calls on a pipeline: which
LoRA files are loaded, deleted, activated and disabled for a sequence of requests, by capacity and
by the GPU's room, and what a failed load or a duplicate leaves. The pictures they draw are
compared with a fresh process's in tests/cluster/test_pool.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contentgen.providers.cluster.generation.generation import KeptLoras


class Pipe:
    """The pipeline's LoRA methods, each call recorded; a load of a file named `bad` fails."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.adapters: dict[str, str] = {}  # adapter name -> the file's name

    def load_lora_weights(self, path: str, adapter_name: str) -> None:
        self.adapters[adapter_name] = Path(path).name
        if Path(path).name == "bad":
            raise ValueError("not a LoRA")
        self.calls.append(("load", Path(path).name))

    def delete_adapters(self, name: str) -> None:
        self.calls.append(("delete", self.adapters.pop(name)))

    def set_adapters(self, names: list[str], adapter_weights: list[float]) -> None:
        self.calls.append(("active", [self.adapters[n] for n in names], adapter_weights))

    def enable_lora(self) -> None:
        pass

    def disable_lora(self) -> None:
        self.calls.append(("disabled",))

    def unload_lora_weights(self) -> None:
        self.adapters.clear()
        self.calls.append(("unload",))


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    made = {}
    for name in ("a", "b", "c", "same-as-a", "bad"):
        made[name] = tmp_path / name
        made[name].write_bytes(b"lora a" if name == "same-as-a" else f"lora {name}".encode())
    return made


def request(kept: KeptLoras, pipe: Pipe, *loras: tuple[Path, float], room: Any = None) -> list[Any]:
    pipe.calls.clear()
    with kept.using(pipe, loras, room):
        pipe.calls.append(("draw",))
    return pipe.calls[:]


def test_kept_loras_load_once_drop_the_least_recently_used_and_disable_for_none(
    files: dict[str, Path],
) -> None:
    kept, pipe = KeptLoras(2), Pipe()
    a, b, c = files["a"], files["b"], files["c"]
    assert request(kept, pipe, (a, 0.5)) == [("load", "a"), ("active", ["a"], [0.5]), ("draw",)]
    assert request(kept, pipe, (b, 1.0)) == [("load", "b"), ("active", ["b"], [1.0]), ("draw",)]
    assert request(kept, pipe) == [("disabled",), ("draw",)]
    assert request(kept, pipe, (a, 0.8)) == [("active", ["a"], [0.8]), ("draw",)]  # kept
    assert request(kept, pipe, (c, 0.5)) == [
        ("delete", "b"),
        ("load", "c"),
        ("active", ["c"], [0.5]),
        ("draw",),
    ]
    # the same bytes under another name are the same LoRA
    assert request(kept, pipe, (files["same-as-a"], 0.3), (c, 0.2)) == [
        ("active", ["a", "c"], [0.3, 0.2]),
        ("draw",),
    ]
    assert kept.loads == 3
    assert request(KeptLoras(2), Pipe()) == [("draw",)]  # nothing kept: nothing to disable


def test_a_lora_is_loaded_only_with_room_on_the_gpu(files: dict[str, Path]) -> None:
    kept, pipe = KeptLoras(8), Pipe()
    request(kept, pipe, (files["a"], 1.0))
    request(kept, pipe, (files["b"], 1.0))
    tight = iter([0, 0, 2**31])  # no room until two are dropped
    assert request(kept, pipe, (files["c"], 1.0), room=lambda: next(tight)) == [
        ("delete", "a"),
        ("delete", "b"),
        ("load", "c"),
        ("active", ["c"], [1.0]),
        ("draw",),
    ]
    # what the request itself asks for is never dropped to make room: the load says if it fits
    assert request(kept, pipe, (files["c"], 1.0), (files["a"], 1.0), room=lambda: 0) == [
        ("load", "a"),
        ("active", ["c", "a"], [1.0, 1.0]),
        ("draw",),
    ]


def test_a_failed_load_unloads_every_kept_lora_and_one_named_twice_is_loaded_per_request(
    files: dict[str, Path],
) -> None:
    kept, pipe = KeptLoras(4), Pipe()
    request(kept, pipe, (files["a"], 1.0))
    with pytest.raises(ValueError, match="not a LoRA"):
        request(kept, pipe, (files["b"], 1.0), (files["bad"], 1.0))
    assert pipe.calls[-1] == ("unload",) and pipe.adapters == {}
    assert request(kept, pipe, (files["a"], 1.0)) == [("load", "a"), ("active", ["a"], [1.0]), ("draw",)]
    # twice in one request (two scales of one LoRA): loaded for it and unloaded after, as a Job does
    calls = request(kept, pipe, (files["a"], 0.5), (files["same-as-a"], 0.5))
    assert calls[0] == ("unload",) and calls[-1] == ("unload",) and ("draw",) in calls
    assert request(kept, pipe, (files["a"], 1.0))[0] == ("load", "a")  # nothing was kept after it


def test_another_pipeline_keeps_nothing_of_the_last(files: dict[str, Path]) -> None:
    kept, first, second = KeptLoras(4), Pipe(), Pipe()
    request(kept, first, (files["a"], 1.0))
    assert request(kept, second, (files["a"], 1.0))[0] == ("load", "a")
    assert request(kept, first, (files["a"], 1.0))[0] == ("load", "a")


def test_a_vouched_file_is_not_read_to_know_it_and_one_replaced_since_is(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pool's LoRA files are named by the SHA-256 it checked on upload (`vouch`): the first use
    does not hash 179 MB again. A file replaced since is read, as any other."""
    import hashlib

    read: list[str] = []
    digest = hashlib.file_digest

    def counted(f: Any, name: str) -> Any:
        read.append(Path(f.name).name)
        return digest(f, name)

    monkeypatch.setattr(hashlib, "file_digest", counted)
    kept, pipe = KeptLoras(4), Pipe()
    a, b = files["a"], files["b"]
    kept.vouch(a, hashlib.sha256(a.read_bytes()).hexdigest())
    assert request(kept, pipe, (a, 1.0))[0] == ("load", "a")
    assert request(kept, pipe, (b, 1.0))[0] == ("load", "b")
    assert read == ["b"]  # only the file nobody vouched for
    a.write_bytes(b"lora a, trained again")  # another inode or size: vouched no more
    request(kept, pipe, (a, 1.0))
    assert read == ["b", "a"] and kept.loads == 3
