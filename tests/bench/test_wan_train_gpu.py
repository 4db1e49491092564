"""bench/wan_train_gpu.py on the CPU with a tiny Wan (`--size tiny --device cpu`): the path the GPU
run takes at real size, whole: each case's estimate from its configs, then the trainer's own step
(wan_training.flow_loss, the gradient clipped, AdamW) timed, on a bf16 and an 8-bit base, with
its activations kept in CPU memory, and stills alone."""

from __future__ import annotations

import json

from bench import wan_train_gpu


def test_each_case_is_estimated_and_timed(tmp_path):
    out = tmp_path / "out.jsonl"
    argv = ["--size", "tiny", "--device", "cpu", "--warmup", "1", "--timed", "1", "--out", str(out)]
    assert wan_train_gpu.main(argv) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["case"] for line in lines] == ["1.3b", "14b-8bit", "14b-8bit-offload", "14b-8bit-stills"]
    assert [line["base"] for line in lines] == ["bf16", "int8", "int8", "int8"]  # no fp8 on a CPU
    assert all(line["seconds_per_step"] > 0 and line["estimate_gib"] > 0 for line in lines)
    assert lines[3]["shape"] == "1 frames at 64x64" and lines[2]["activations_in_cpu_memory"]
    assert "peak_allocated" not in lines[0]  # no GPU: nothing measured of its memory
    # beside each estimate, what the planner holds a card to for it: 7 % more and 1 GiB for CUDA
    assert all(abs(line["allowance_gib"] - (line["estimate_gib"] * 1.07 + 1)) < 0.006 for line in lines)
