"""Ray plumbing: one Ray task per (strategy, seed) run of the pure loop. Nothing here knows
about active learning beyond calling `raycl.active.loop.run`."""

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


def _one_run(scenario, strategy: str, seed: int, cfg, threads: int | None = None) -> tuple[list[dict], dict]:
    """One run's rows, and its provenance (computed here, in the task that builds the data)."""
    import torch

    from raycl.active.loop import run

    if threads:
        torch.set_num_threads(threads)
    data = scenario.build(seed)
    return run(data, strategy, seed, cfg), provenance(data)


def run_local(scenario, jobs: Iterable[tuple[str, int]], cfg, on_done: Callable[[list[dict], dict], None]) -> None:
    """The same runs in this process, one after another (tests, --no-ray)."""
    for strategy, seed in jobs:
        on_done(*_one_run(scenario, strategy, seed, cfg))


def run_ray(scenario, jobs: Iterable[tuple[str, int]], cfg, on_done: Callable[[list[dict], dict], None],
            address: str | None = None, num_cpus: int | None = None, cpus_per_run: float = 1.0,
            gpus_per_run: float = 0.0) -> None:
    """Every (strategy, seed) as a Ray task; rows and provenance handed to `on_done` as runs finish."""
    import ray

    from raycl.cluster import init_ray

    init_ray(address=address, num_cpus=num_cpus)
    task = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run)(_one_run)
    threads = max(1, int(cpus_per_run))
    scenario_ref, cfg_ref = ray.put(scenario), ray.put(cfg)
    pending = [task.remote(scenario_ref, s, seed, cfg_ref, threads) for s, seed in jobs]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        on_done(*ray.get(done[0]))
