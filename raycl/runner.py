"""Independent jobs (seeds, comparison runs) as Ray tasks, or one after another in this
process: the one runner of every family (`--no-ray` gives the in-process path).

Nothing here knows about any experiment: `Runner.submit(fn, *args)` schedules a call of a
module-level function and `Runner.gather(handles)` returns the results in submission order.
Every call runs with `threads` torch threads, so a job gives the same numbers with and
without Ray.
"""

from __future__ import annotations

from typing import Any, Callable


def _call(fn: Callable, threads: int, args: tuple, kwargs: dict) -> Any:
    import torch

    from raycl.host import keep_heap

    keep_heap()
    torch.set_num_threads(max(1, threads))
    return fn(*args, **kwargs)


class Runner:
    def __init__(self, use_ray: bool = True, address: str | None = None, num_cpus: int | None = None,
                 threads: int = 1, progress: bool = True):
        self.use_ray, self.threads, self.progress = use_ray, max(1, int(threads)), progress
        if use_ray:
            import ray

            from raycl.cluster import init_ray

            init_ray(address=address, num_cpus=num_cpus)
            self._task = ray.remote(num_cpus=self.threads)(_call)

    def submit(self, fn: Callable, *args, **kwargs):
        """Ray: starts now (the caller may keep working meanwhile). In-process: runs at gather."""
        if self.use_ray:
            return self._task.remote(fn, self.threads, args, kwargs)
        return (fn, args, kwargs)

    def gather(self, handles: list, desc: str = "runs") -> list:
        from tqdm import tqdm

        bar = tqdm(total=len(handles), desc=desc, disable=not self.progress, leave=False, dynamic_ncols=True)
        if not self.use_ray:
            out = []
            for fn, args, kwargs in handles:
                out.append(_call(fn, self.threads, args, kwargs))
                bar.update(1)
            bar.close()
            return out
        import ray

        pending = list(handles)
        while pending:  # only to advance the bar as runs finish, in any order
            done, pending = ray.wait(pending, num_returns=1)
            bar.update(len(done))
        bar.close()
        return ray.get(list(handles))
