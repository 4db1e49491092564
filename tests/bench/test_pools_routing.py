"""bench/pools_routing.py's decisions: what a round's pod statuses say (LoRA files loaded per
picture, graphs compiled after the warm-up, swaps and their time, each counted from the warm-up on),
what fails the benchmark, and the docs' table between its markers. (The benchmark itself runs
compiled pools of the tiny FLUX: `make bench-pools`.)"""

from __future__ import annotations

from bench.pools_routing import MARKERS, Measures, Round, markdown, problems, with_table


def pod(loads: int, graphs: int, swaps: int, seconds: float) -> dict[str, float]:
    return {"loads": loads, "graphs": graphs, "swaps": swaps, "swapSeconds": seconds}


def measures(affinity_loads: int, spread_loads: int, recompiles: int = 0) -> Measures:
    m = Measures("process", 2, 10, 4, 1, "aot_eager", 8, 4)
    for routing, loads in (("affinity", affinity_loads), ("least-loaded", spread_loads)):
        r = Round(routing, ok=10, seconds=30.0, drawn=[6, 4])
        r.warm = [pod(0, 3, 0, 0.0), pod(0, 3, 0, 0.0)]  # the warm-up's graphs: not recompiles
        r.end = [pod(loads, 3 + recompiles, 5, 0.05), pod(0, 3, 3, 0.03)]
        m.rounds.append(r)
    return m


def test_a_round_counts_from_the_warm_up_on() -> None:
    r = measures(4, 9).of("affinity")
    assert (r.pictures, r.swaps, r.recompiles) == (10, 8, 0)
    assert r.loads_per_picture == 0.4 and round(r.swap_ms, 3) == 10.0


def test_recompiles_failures_and_more_loads_with_affinity_fail_it() -> None:
    assert problems(measures(4, 9)) == []
    assert [p.split(":")[0] for p in problems(measures(4, 9, recompiles=2))] == ["affinity", "least-loaded"]
    said = problems(measures(9, 9))
    assert said == ["affinity loaded 0.90 LoRA files a picture, not fewer than least-loaded's 0.90"]
    failing = measures(4, 9)
    failing.rounds[0].ok, failing.rounds[0].failed = 9, ["req-003: ProviderUnreachable"]
    assert problems(failing)[0].startswith("affinity: 9 of 10 requests succeeded")


def test_the_table_goes_between_its_markers() -> None:
    table = markdown(measures(4, 9), "2026-11-28 21:00 UTC", "1.0", 60.0)
    assert "| affinity | 0.40 | 0.00 (0 in all) | 10.0 ms | 8 | 6, 4 |" in table
    page = f"before\n{MARKERS[0]}\nold\n{MARKERS[1]}\nafter"
    assert with_table(page, table) == f"before\n{MARKERS[0]}\n{table}\n{MARKERS[1]}\nafter"
