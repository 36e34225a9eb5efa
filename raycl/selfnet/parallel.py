"""Ray plumbing: independent task networks train in parallel as Ray tasks.

The stream's tasks go to the object store once; every job ships only its init/source
vectors. Each Ray task uses one CPU thread (or a GPU share when there is one), so the
numbers are the same as SerialTrainer's for the same seeds."""

from __future__ import annotations

import torch

from raycl.selfnet.streams import Task
from raycl.selfnet.trainers import TNJob


def _train_one(task, arch, num_outputs, job):
    import torch

    from raycl.selfnet.train import train_task_network

    torch.set_num_threads(1)
    return train_task_network(task, arch, num_outputs, job.cfg, job.init, job.source, job.seed)


class RayTaskNetTrainer:
    """Callable like SerialTrainer; starts (or joins) Ray through raycl.cluster.init_ray."""

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        import ray

        from raycl.cluster import init_ray

        init_ray(address=address, num_cpus=num_cpus)
        gpus = 0.25 if ray.cluster_resources().get("GPU", 0) > 0 else 0
        self._remote = ray.remote(num_cpus=1, num_gpus=gpus)(_train_one)
        self._refs: dict[int, object] = {}
        self._tasks_id = None

    def __call__(self, tasks: list[Task], arch: str, num_outputs: int, jobs: list[TNJob]) -> list[tuple[torch.Tensor, float]]:
        import ray

        if self._tasks_id != id(tasks):  # a new stream: put its tasks in the object store once
            self._refs, self._tasks_id = {}, id(tasks)
        for j in jobs:
            if j.task not in self._refs:
                self._refs[j.task] = ray.put(tasks[j.task])
        return ray.get([self._remote.remote(self._refs[j.task], arch, num_outputs, j) for j in jobs])

    def close(self) -> None:
        self._refs = {}


RayTrainer = RayTaskNetTrainer  # the old name, until raycl/selfnet/cli.py imports the new one (issue 20)
