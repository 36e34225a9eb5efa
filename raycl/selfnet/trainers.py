"""Who trains a batch of independent task networks: this process (serial), or Ray
(raycl.selfnet.parallel). Both take the same jobs and return the same results."""

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


class SerialTrainer:
    """Train the jobs one after another in this process."""

    def __call__(self, tasks: list[Task], arch: str, num_outputs: int, jobs: list[TNJob]) -> list[tuple[torch.Tensor, float]]:
        return [train_task_network(tasks[j.task], arch, num_outputs, j.cfg, j.init, j.source, j.seed) for j in jobs]

    def close(self) -> None:
        pass
