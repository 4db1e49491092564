"""bench/pools.py's decisions: the plan of requests over LoRAs and owners, the baseline's sample,
percentiles, the loads counted from a process's output, the pictures compared, what fails the
benchmark, and the docs' table between its markers. (The benchmark itself runs the tiny FLUX in
worker and pool processes: `make bench-pools`.)"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from pathlib import Path

import pytest

from bench.pools import (
    MARKERS,
    Done,
    Measures,
    by_lora,
    compare,
    loads_in,
    markdown,
    medians,
    percentile,
    plan,
    problems,
    sample,
    saved,
    split_row,
    table_from,
    with_table,
)


def test_the_plan_uses_every_lora_of_both_owners_and_the_base_alone() -> None:
    made = plan(100, 20)
    assert len(made) == 100 and len({r.seed for r in made}) == 100
    first = made[:21]
    assert sorted(r.lora for r in first if r.lora is not None) == list(range(20))
    assert [r.lora for r in first].count(None) == 1
    owners = {r.lora: r.owner for r in made if r.lora is not None}
    assert Counter(owners.values()) == {"alice": 10, "bob": 10}  # each LoRA one owner's, half each
    assert all(owners[r.lora] == r.owner for r in made if r.lora is not None)
    assert {r.owner for r in made if r.lora is None} == {"alice", "bob"}
    with pytest.raises(ValueError, match="at least 1"):
        plan(0, 20)


def test_the_baseline_is_spread_over_the_plan() -> None:
    made = plan(100, 20)
    chosen = sample(made, 10)
    assert [r.index for r in chosen] == list(range(0, 100, 10))
    assert {r.owner for r in chosen} == {"alice", "bob"} and any(r.lora is None for r in chosen)
    assert sample(made[:3], 10) == made[:3]


def test_percentiles_by_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]
    assert percentile(values, 50) == 10.0 and percentile(values, 95) == 19.0
    assert percentile([3.0], 95) == 3.0 and math.isnan(percentile([], 50))


def test_loads_are_counted_once_each_from_a_process_output() -> None:
    bar = "Loading pipeline components...:   0%|          | 0/7 [00:00<?, ?it/s]\r"
    done = "Loading pipeline components...: 100%|██████████| 7/7 [00:01<00:00,  6.55it/s]"
    one = bar + "Loading pipeline components...:  57%|█████▋    | 4/7\r" + done + done + "\n"
    assert loads_in(one) == 1 and loads_in(one * 3) == 3 and loads_in("memory plan: bf16\n") == 0


def done(name: str, started: float, seconds: float, picture: str = "p", **changes: object) -> Done:
    made = Done(name, started, seconds, ok=True, loads=0, picture=picture, gpu_seconds=1.0)
    return dataclasses.replace(made, **changes)  # type: ignore[arg-type]


def passing() -> Measures:
    """What a pool that meets every goal measures: 4 requests, 2 of them also as Jobs."""
    job = [done("req-000", 0, 30.0, "a", loads=1, gpu_seconds=25.0), done("req-002", 30, 30.0, "c", loads=1)]
    pool = [
        done("req-000", 0.0, 40.0, "a"),
        done("req-001", 0.5, 42.0, "b"),
        done("req-002", 40.0, 8.0, "c"),
        done("req-003", 42.0, 9.0, "d"),
    ]
    return Measures(
        requests=4,
        loras=2,
        steps=4,
        draw_seconds=2.0,
        draw_cpu_seconds=3.0,
        job=job,
        job_pod_seconds=60.0,
        pool=pool,
        pool_pod_seconds=52.0,
        pool_cold_seconds=35.0,
        pool_status={"loads": 1, "drawn": 4, "busySeconds": 9.2, "requests": 4, "warmSeconds": 40.0},
        pool_loads_seen=1,
        pool_cpu_seconds=13.5,
        pool_cpu_pictures=4,
        equal=2,
        compared=2,
    )


def test_a_pool_meeting_every_goal_passes_and_its_table_says_so() -> None:
    m = passing()
    assert compare(m.job, m.pool) == (2, 2, [])
    assert problems(m) == []
    table = markdown(m, "1.0 1.0 1.0", "2026-11-25 20:00 UTC", 600)
    assert "| CPU time per picture ÷ the drawing alone's | **1.12×** (3.38 s a picture over 4" in table
    assert "| wall time per picture ÷ the drawing alone's (shared CPU) | **1.15×**" in table
    assert "≤ 1.2× (met)" in table and "**2 of 2**" in table
    assert "40.0 s / 42.0 s (2 started while the pool came up" in table  # cold: before warm
    assert "**8.0 s** / 9.0 s" in table  # warm p50 / p95
    assert "| LoRA files loaded per picture | (not said: each request's loaded and unloaded) |" in table
    kept = {**m.pool_status, "loras": {"kept": 2, "capacity": 32, "loads": 2}}
    table = markdown(dataclasses.replace(m, pool_status=kept), "1.0 1.0 1.0", "2026-11-25 20:00 UTC", 600)
    assert "| **0.50** (2 loads for 4 pictures; 2 kept at the end, 32 at most) | 1.00 (each Job" in table
    assert "before and after the runs" not in table


def test_the_drawing_alone_brackets_the_runs() -> None:
    """Timed before and after the runs, its medians are those of both sets."""
    before, after = [[2.0, 3.0], [2.2, 3.2], [2.1, 3.1]], [[2.6, 3.6], [2.5, 3.5], [2.4, 3.4]]
    assert medians(before) == (2.1, 3.1) and medians(before + after) == (2.3, 3.3)
    m = dataclasses.replace(
        passing(), draw_samples=before + after, draw_bracketed=True, draw_seconds=2.3, draw_cpu_seconds=3.3
    )
    table = markdown(m, "1.0 1.0 1.0", "2026-11-26 13:00 UTC", 600)
    assert "drawing alone 3.30 s, the median of 6 before and after the runs)" in table


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"pool_cpu_seconds": 15.0}, "CPU time per picture is 1.25× the drawing alone's"),
        ({"pool_loads_seen": 2}, "loaded its base 2 times"),
        ({"pool_pod_seconds": 3600.0}, "pictures per pod-hour: pool 4, Job per request 120"),
        ({"job": [done("req-000", 0, 5.0, "a", loads=1)]}, "warm p50 8.0 s"),
        ({"equal": 1, "unequal": ["req-002"]}, "1 of 2 pooled pictures differ"),
        ({"compared": 0, "equal": 0}, "no pooled picture was compared"),
    ],
)
def test_each_goal_missed_fails_the_benchmark(change: dict[str, object], said: str) -> None:
    m = dataclasses.replace(passing(), **change)  # type: ignore[arg-type]
    found = problems(m)
    assert len(found) == 1 and said in found[0], found


def test_failed_requests_and_a_pooled_worker_that_loads_fail_it() -> None:
    m = passing()
    m.pool[3] = dataclasses.replace(m.pool[3], ok=False, error="ProviderUnreachable: gone")
    m.pool[2] = dataclasses.replace(m.pool[2], loads=1)
    found = problems(m)
    assert any("1 request(s) failed, e.g. req-003: ProviderUnreachable" in p for p in found)
    assert any("the pool drew 3 of 4" in p for p in found)
    assert any("loaded a pipeline of its own" in p for p in found)
    assert compare(m.job, [dataclasses.replace(d, picture="x") for d in m.pool]) == (
        0,
        2,
        ["req-000", "req-002"],
    )


def test_the_table_goes_between_its_markers() -> None:
    start, end = MARKERS["process"]
    real_start, real_end = MARKERS["real"]
    page = f"# Performance\n\n{start}\nold\n{end}\n\n{real_start}\nold\n{real_end}\n"
    process_only = f"# Performance\n\n{start}\nnew\n{end}\n\n{real_start}\nold\n{real_end}\n"
    assert with_table(page, "new") == process_only
    assert with_table(page, "new", "real").endswith(f"{real_start}\nnew\n{real_end}\n")  # each node its own
    with pytest.raises(ValueError, match="no <!-- bench-pools:start -->"):
        with_table("# Performance\n", "new")


def test_on_the_real_node_each_request_is_an_imagegeneration_users_could_apply() -> None:
    """bench/pools_real.py's requests pass the API's validation as written (the LoRA by its s3://
    URL in the store, the denoising each run asks for); the pool runs torch on one thread."""
    from bench.pools_real import held_seconds, manifest, one_thread, seconds_between
    from contentgen.api.manifests import parse
    from contentgen.api.validation import validate_document

    with_lora, alone = plan(21, 20)[3], plan(21, 20)[20]
    for request, run in ((with_lora, "pool"), (alone, "job")):
        doc = manifest(request, run)
        (parsed,) = parse(json.dumps(doc), "bench")
        outcome = validate_document(parsed)
        assert outcome.kind is not None and outcome.problems == (), outcome.problems
        assert doc["spec"]["denoising"] == run and doc["metadata"]["name"] == f"{run}-{request.name}"
    assert manifest(with_lora, "pool")["spec"]["loras"] == [
        {"url": f"s3://contentgen/bench-loras/{with_lora.owner}/lora-3.safetensors", "scale": 0.8}
    ]
    assert "loras" not in manifest(alone, "job")["spec"]
    deployment = {"spec": {"template": {"spec": {"containers": [{"name": "pool", "env": [{"name": "A"}]}]}}}}
    (container,) = one_thread(deployment)["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [{"name": "A"}, {"name": "OMP_NUM_THREADS", "value": "1"}]
    assert seconds_between("2026-11-26T21:00:05Z", "2026-11-26T21:01:07Z") == 62
    ended = {"terminated": {"finishedAt": "2026-11-26T21:00:15Z"}}
    pod = {"status": {"startTime": "2026-11-26T21:00:05Z", "containerStatuses": [{"state": ended}]}}
    assert held_seconds(pod) == 10  # a Job holds its GPU from its pod's start to its worker's end
    assert held_seconds({"status": {"startTime": "2026-11-26T21:00:05Z"}}) == 0  # it never ran


def test_on_a_gpu_the_time_per_picture_is_judged_by_wall_time() -> None:
    """A GPU's picture is its wall time (the CPU thread that waits for it spins): the goal is the
    billed seconds per picture against the drawing alone's, and the CPU ratio is not shown."""
    m = dataclasses.replace(passing(), device="cuda", size="full", pool_cpu_seconds=100.0)
    assert problems(m) == []  # the CPU ratio (8.33×) no longer counts
    slow = dataclasses.replace(m, pool_status={**m.pool_status, "busySeconds": 10.0})
    (found,) = problems(slow)
    assert "time per picture is 1.25× the drawing alone's (2.50 s against 2.00 s)" in found
    table = markdown(m, "1.0 1.0 1.0", "2026-11-27 01:00 UTC", 600, "gpu")
    assert "CPU time per picture" not in table
    assert "| wall time per picture ÷ the drawing alone's | **1.15×**" in table and "≤ 1.2× (met)" in table
    assert "FLUX.1-dev's architecture with random bf16 weights on cuda, 1024 × 1024" in table


def test_the_pooled_requests_are_split_by_what_their_lora_cost() -> None:
    """A LoRA's first request (its file loaded), the kept LoRA's later ones, and none, in the
    order the requests started."""
    pool = [
        done("req-001", 1.0, 9.0, lora=1, gpu_seconds=4.0),
        done("req-000", 0.0, 9.0, lora=0, gpu_seconds=3.0),
        done("req-002", 2.0, 9.0, lora=None, gpu_seconds=2.0),
        done("req-003", 3.0, 9.0, lora=0, gpu_seconds=2.2),
        done("req-004", 4.0, 9.0, lora=1, gpu_seconds=2.4, ok=False),
    ]
    assert by_lora(pool) == {"first": [3.0, 4.0], "kept": [2.2], "none": [2.0]}
    m = dataclasses.replace(passing(), pool=pool)
    assert split_row(m) == (
        "a LoRA's first request 1.75× (3.50 s, 2); a kept LoRA 1.10× (2.20 s, 1); no LoRA 1.00× (2.00 s, 1)"
    )


def test_a_saved_run_gives_its_table_again(tmp_path: Path) -> None:
    """`--table-from`: the Measures as the results file keeps them, and the same table."""
    m = dataclasses.replace(passing(), device="cuda", size="full")
    report = {
        "when": "2026-11-27 01:00 UTC",
        "node": "gpu",
        "load_average": ["0.4 0.1 0.0", "3.6 1.7 0.7"],
        "seconds": 340.0,
        "measures": dataclasses.asdict(m),
    }
    assert saved(json.loads(json.dumps(report))) == m
    path = tmp_path / "pools-gpu.json"
    path.write_text(json.dumps(report))
    assert table_from(path, docs=False) == 0
