"""One job per (strategy, seed) run of the pure loop, through raycl.runner (Ray tasks or this
process). Nothing here knows about active learning beyond calling `raycl.active.loop.run`."""

from __future__ import annotations

from typing import Callable, Iterable


def provenance(data) -> dict:
    """What one run trained and was tested on (raycl.provenance.record): the pool (in- and
    out-of-distribution images with their true labels, -1 for OOD), the OOD images in it,
    the validation and the test split, and the environment it ran in."""
    import torch

    from raycl.provenance import record

    ood = data.pool.images[torch.as_tensor(data.ood)] if data.ood.any() else None
    return record(pool=data.pool, ood=ood, val=data.val, test=data.test)


def one_run(scenario, strategy: str, seed: int, cfg) -> tuple[list[dict], dict]:
    """One run's rows, and its provenance (computed here, in the job that builds the data)."""
    from raycl.active.loop import run

    data = scenario.build(seed)
    return run(data, strategy, seed, cfg), provenance(data)


def run_all(runner, scenario, jobs: Iterable[tuple[str, int]], cfg,
            on_done: Callable[[list[dict], dict], None]) -> None:
    """Every (strategy, seed) as a job of `runner`; rows and provenance go to `on_done` as runs finish."""
    scenario_ref, cfg_ref = runner.put(scenario), runner.put(cfg)
    handles = [runner.submit(one_run, scenario_ref, s, seed, cfg_ref) for s, seed in jobs]
    for _, (rows, prov) in runner.as_completed(handles):
        on_done(rows, prov)
