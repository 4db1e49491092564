"""A checkpoint's pictures drawn by every process of a training on several GPUs (distributed.py):
rank 0's watch asks for them as it would of one process (live.py's InLoopPictures), each rank
draws its share on its own copy of the model (the same weights, the same LoRA: DDP keeps them
alike), and rank 0 keeps them all and scores them. The GPUs are held for the drawing's wall time,
each picture counted an equal part of it: the pictures' GPU-seconds add up to what was held."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..generation import flux, generation, pictures
from ..training import distributed
from .flux_live import Arguments, Chosen, Generator, InLoopPictures

Ordered = list[tuple[int, generation.Picture]]


class SharedPictures(InLoopPictures):
    def __init__(
        self,
        provider: Generator,
        team: distributed.Team,
        work_dir: Path,
        pipe: Any,
        encoded: Mapping[str, Any],
        on: flux.Device,
        plan: Chosen,
        arguments: Arguments | None = None,
    ) -> None:
        super().__init__(provider, pipe, encoded, on, plan, arguments)
        self.team, self.work_dir = team, work_dir

    def drawn(self, ordered: Ordered, with_lora: bool, work_dir: Path) -> Iterator[tuple[int, Path, float]]:
        """Rank 0: `ordered` drawn in shares, each picture's file here; its seconds the drawing's
        wall time over the pictures."""
        if not self.team.world.several:
            yield from super().drawn(ordered, with_lora, work_dir)
            return
        began = time.monotonic()
        answers = distributed.drawn_in_shares(self.team, (ordered, with_lora), self.share)
        held = (time.monotonic() - began) / max(1, len(ordered))
        files = {number: data for answer in answers for number, data in answer or []}
        for number, _ in ordered:
            path = work_dir / pictures.picture_name(number)
            path.write_bytes(files[number])
            yield number, path, held

    def share(self, order: tuple[Ordered, bool]) -> list[tuple[int, bytes]]:
        """This rank's share of an order (rank 0's too), as PNG bytes."""
        ordered, with_lora = order
        mine = self.team.shares(ordered)
        return [
            (number, path.read_bytes())
            for number, path, _ in InLoopPictures.drawn(self, mine, with_lora, self.work_dir)
        ]
