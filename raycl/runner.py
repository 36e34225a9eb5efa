"""Independent jobs (seeds, comparison runs) as Ray tasks, or one after another in this
process: the one runner of every family (`--no-ray` gives the in-process path).

Nothing here knows about any experiment: `Runner.submit(fn, *args)` schedules a call of a
module-level function, `Runner.gather(handles)` returns the results in submission order and
`Runner.as_completed(handles)` yields them as they finish. Every call runs with `threads`
torch threads (and takes that many Ray CPUs), so a job gives the same numbers with and
without Ray. `gpus_per_worker` is each task's GPU share, asked only of a cluster that has GPUs.
"""

from __future__ import annotations

from typing import Any, Callable


def _call(fn: Callable, threads: int, kwargs: dict, *args) -> Any:
    # args last and unpacked: Ray resolves an ObjectRef (from Runner.put) only as a top-level argument
    import torch

    from raycl.host import keep_heap

    keep_heap()
    torch.set_num_threads(max(1, threads))
    return fn(*args, **kwargs)


class Runner:
    def __init__(self, use_ray: bool = True, address: str | None = None, num_cpus: int | None = None,
                 threads: int = 1, gpus_per_worker: float = 0.0, progress: bool = True):
        self.use_ray, self.threads, self.progress = use_ray, max(1, int(threads)), progress
        if use_ray:
            import ray

            from raycl.cluster import init_ray

            init_ray(address=address, num_cpus=num_cpus)
            gpus = gpus_per_worker if ray.cluster_resources().get("GPU", 0) > 0 else 0
            self._task = ray.remote(num_cpus=self.threads, num_gpus=gpus)(_call)

    def put(self, obj):
        """A large argument shared by many jobs: in the object store once (Ray), else itself.
        Pass it positionally to `submit` (Ray resolves top-level arguments only)."""
        if self.use_ray:
            import ray

            return ray.put(obj)
        return obj

    def submit(self, fn: Callable, *args, **kwargs):
        """Ray: starts now (the caller may keep working meanwhile). In-process: runs at gather."""
        if self.use_ray:
            return self._task.remote(fn, self.threads, kwargs, *args)
        return (fn, args, kwargs)

    def as_completed(self, handles: list, desc: str = "runs"):
        """(index, result) of each job as it finishes (in-process: in submission order)."""
        from tqdm import tqdm

        bar = tqdm(total=len(handles), desc=desc, disable=not self.progress, leave=False, dynamic_ncols=True)
        try:
            if not self.use_ray:
                for i, (fn, args, kwargs) in enumerate(handles):
                    yield i, _call(fn, self.threads, kwargs, *args)
                    bar.update(1)
                return
            import ray

            index = {ref: i for i, ref in enumerate(handles)}
            pending = list(handles)
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                yield index[done[0]], ray.get(done[0])
                bar.update(1)
        finally:
            bar.close()

    def gather(self, handles: list, desc: str = "runs") -> list:
        out = [None] * len(handles)
        for i, result in self.as_completed(handles, desc):
            out[i] = result
        return out
