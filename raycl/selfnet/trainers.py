"""Who trains a batch of independent task networks: one job each through raycl.runner (Ray
tasks, or this process with --no-ray). Each job takes the runner's threads, so the numbers
are the same either way for the same seeds."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from raycl.selfnet.streams import Task
from raycl.selfnet.train import TaskNetConfig, train_task_network


@dataclass
class TNJob:
    task: int  # index into the stream
    cfg: TaskNetConfig
    seed: int
    init: torch.Tensor | None = None  # start weights (None: the seed's random init)
    source: torch.Tensor | None = None  # anchor θ* for λ·MSE(θ*, θ) (eq 2.5)


def _train_one(task: Task, arch: str, num_outputs: int, job: TNJob) -> tuple[torch.Tensor, float]:
    return train_task_network(task, arch, num_outputs, job.cfg, job.init, job.source, job.seed)


class TaskNetTrainer:
    """`trainer(tasks, arch, num_outputs, jobs)` -> [(flat weights, test accuracy)] in job order.
    A stream's tasks go to the runner's object store once; every job ships only its vectors."""

    def __init__(self, runner=None):
        if runner is None:
            from raycl.runner import Runner

            runner = Runner(use_ray=False, progress=False)
        self.runner = runner
        self._shared: dict[int, object] = {}
        self._stream = None

    def __call__(self, tasks: list[Task], arch: str, num_outputs: int, jobs: list[TNJob]) -> list[tuple[torch.Tensor, float]]:
        if self._stream is not tasks:  # a new stream
            self._shared, self._stream = {}, tasks
        for j in jobs:
            if j.task not in self._shared:
                self._shared[j.task] = self.runner.put(tasks[j.task])
        return self.runner.gather([self.runner.submit(_train_one, self._shared[j.task], arch, num_outputs, j)
                                   for j in jobs], desc="task networks")

    def close(self) -> None:
        self._shared, self._stream = {}, None
