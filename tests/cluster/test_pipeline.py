"""provider: cluster through the worker (`contentgen worker`): an ImageGeneration on the tiny
FLUX stores its pictures and records the GPU time it held as its usage (gpu-hour lines)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from contentgen.api import UsageLine
from contentgen.cli.main import main
from contentgen.store import LocalStore
from tests.harness.cluster import worker_spec

pytestmark = pytest.mark.cluster_models


def test_an_image_generation_on_the_cluster_records_its_gpu_time(models_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CONTENTGEN_GPU_COUNT", "2")
    store = LocalStore(tmp_path / "store")
    path, log = worker_spec(store, models_root, tmp_path, monkeypatch, imageSize="square", seed=5)
    assert main(["worker", "--spec", str(path), "--termination-log", str(log)]) == 0
    result = json.loads(log.read_text())
    [image] = result["images"]
    assert (image["width"], image["height"], image["seed"]) == (512, 512, 5)
    assert result["provider"] == "cluster"
    [usage] = result["usage"]  # the seconds it held the device (× GPUs on a GPU), in GPU-hours
    assert (usage["provider"], usage["item"], usage["unit"]) == ("cluster", "image-generation", "gpu-hour")
    assert 0 < usage["quantity"] * 3600 < 600


class Killed(BaseException):
    """The worker's pod ending where the test says (no error the worker could catch and report)."""


def test_a_retried_worker_makes_only_the_pictures_it_lacks_and_counts_each_once(
    models_root, tmp_path, monkeypatch
):
    """An ImageGeneration of three pictures whose worker dies after storing the first: the retry
    takes it from temp/{uid}/pictures/v1/, makes the other two, and stores the three outputs once
    each; its usage is a gpu-hour line per picture, the first under the id its maker recorded, so
    settling the run counts each picture's GPU time once."""
    from contentgen.api import Cost
    from contentgen.pricing import PriceTable, settled
    from contentgen.providers.cluster.generation import generation, pictures
    from contentgen.store import keys
    from tests.harness.stores import CountingStore

    store = CountingStore(tmp_path / "store")
    path, log = worker_spec(store, models_root, tmp_path, monkeypatch, numImages=3, seed=5)

    keep = pictures.Folder.keep

    def dies_after_the_first(self, number, *args):  # type: ignore[no-untyped-def]
        made = keep(self, number, *args)
        if number == 1:
            raise Killed
        return made

    monkeypatch.setattr(pictures.Folder, "keep", dies_after_the_first)
    with pytest.raises(Killed):
        main(["worker", "--spec", str(path), "--termination-log", str(log)])
    monkeypatch.setattr(pictures.Folder, "keep", keep)
    folder = keys.pictures_made("uid-1", 1)
    first = json.loads(store.get_bytes(folder + "image-1.json"))

    drawn: list[int] = []
    draw = generation.draw
    monkeypatch.setattr(
        generation, "draw", lambda pipe, p, out, *rest: drawn.append(p.seed) or draw(pipe, p, out, *rest)
    )
    assert main(["worker", "--spec", str(path), "--termination-log", str(log)]) == 0
    assert drawn == [6, 7]
    result = json.loads(log.read_text())
    assert [image["seed"] for image in result["images"]] == [5, 6, 7]
    assert store.get_bytes(keys.image("alice", "uid-1", 1, 1)) == store.get_bytes(folder + "image-1.png")
    made = {k.removeprefix(folder): n for k, n in store.writes.items() if k.startswith(folder)}
    names = ["request.json", *(f"image-{n}.{ext}" for n in (1, 2, 3) for ext in ("png", "json"))]
    assert made == dict.fromkeys(names, 1)  # each once, over both attempts
    assert all(store.writes[keys.image("alice", "uid-1", 1, n)] == 1 for n in (1, 2, 3))
    usage = result["usage"]
    assert [(u["item"], u["unit"]) for u in usage] == [("image-generation", "gpu-hour")] * 3
    assert usage[0]["request"] == first["request_id"] and usage[0]["quantity"] == first["gpu_seconds"] / 3600
    assert len({u["request"] for u in usage}) == 3

    prices = PriceTable()
    lines = [UsageLine.model_validate(u) for u in usage]
    started = datetime(2026, 11, 1, tzinfo=UTC)
    once = settled(Cost(), lines, prices, started)
    assert once.by_month["2026-11"] == pytest.approx(
        sum(u["quantity"] for u in usage) * prices.cluster.gpu_hour_usd, abs=1e-6
    )
    assert settled(once, lines, prices, started).by_month == once.by_month  # delivered again: counted once
