"""Hyper-streams (§6.3, Fig 6.1): for one model, h_H classes drawn from the hyper-task
distribution, i training and some held-out instances of each; the first h_CL classes are
the continual-learning sequence, the rest are never trained on by the synapses."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from raycl import RayclError
from raycl.data import ImageSet, load, mix, to_common


def prepare_pool(data: ImageSet, image_size: int) -> ImageSet:
    """Common shape (1 channel, image_size^2) and per-image standardisation, as all models see it."""
    data = to_common(data, image_size, 1)
    data.images = standardise(data.images.flatten(1)).view(len(data.images), 1, image_size, image_size)
    return data


def standardise(x: torch.Tensor) -> torch.Tensor:
    """Each row (one flattened image) to mean 0 and std 1."""
    return (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True).clamp_min(1e-6)


# sources with a class split: (meta-train classes, held-out meta-test classes)
CLASS_SPLITS = {"glyphs": ("background", "evaluation"), "omniglot": ("background", "evaluation")}


def meta_pool(source: str, part: str, image_size: int, root=None) -> ImageSet | None:
    """The hyper-task distribution (part='meta-train') or its held-out classes ('meta-test';
    None when no source has any). `source` may join several with '+', e.g.
    'omniglot+fashion-mnist+cifar100+mini-imagenet' (the dissertation's mixed-source runs):
    their classes are pooled at a common shape; a source without a class split goes to
    meta-train whole."""
    sets = []
    for name in source.split("+"):
        train_split, test_split = CLASS_SPLITS.get(name, (None, None))
        if part == "meta-train":
            sets.append(load(name, split=train_split, root=root))
        elif test_split is not None:
            sets.append(load(name, split=test_split, root=root))
    if not sets:
        return None
    return prepare_pool(sets[0] if len(sets) == 1 else mix(sets, image_size, 1, name=f"{source} {part}"), image_size)


@dataclass
class HyperStream:
    """train_x (n_tasks, i, D), holdout_x (n_tasks, h, D); the label of task j is j."""

    classes: torch.Tensor  # source class id of each task
    train_x: torch.Tensor
    holdout_x: torch.Tensor

    @property
    def n_tasks(self) -> int:
        return len(self.classes)

    def task(self, j: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.train_x[j]
        return x, torch.full((len(x),), j, dtype=torch.long)

    def __post_init__(self):
        self._instances: dict = {}  # instances() is asked for every synaptic step: build each view once

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if k != "_instances"}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._instances = {}

    def _flat(self, which: str, upto: int | None = None):
        parts = {"train": [self.train_x], "holdout": [self.holdout_x], "all": [self.train_x, self.holdout_x]}[which]
        xs, ys = [], []
        for p in parts:
            p = p[:upto]
            xs.append(p.flatten(0, 1))
            ys.append(torch.arange(len(p)).repeat_interleave(p.shape[1]))
        return torch.cat(xs), torch.cat(ys)

    def instances(self, which: str = "all", upto: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """All instances ('train', 'holdout' or 'all') of tasks [0, upto), with their labels."""
        key = (which, upto)
        if key not in self._instances:
            self._instances[key] = self._flat(which, upto)
        return self._instances[key]

    def video(self, k: int):
        """The video-stream view (§6.4): each task's i instances repeated for k frames."""
        for j in range(self.n_tasks):
            x, y = self.task(j)
            for _ in range(k):
                yield x, y


def sample_stream(pool: ImageSet, n_tasks: int, i: int, holdout: int, generator: torch.Generator) -> HyperStream:
    """n_tasks distinct classes of `pool`, each with i training and `holdout` held-out instances."""
    groups = pool.by_class()
    eligible = torch.tensor([c for c, g in enumerate(groups) if len(g) >= i + holdout])
    if len(eligible) < n_tasks:
        raise RayclError(
            f"{pool.name} has {len(eligible)} classes with >= {i + holdout} instances; a hyper-stream needs {n_tasks}. "
            "Lower h_h / d, i or holdout, or use a larger source."
        )
    classes = eligible[torch.randperm(len(eligible), generator=generator)[:n_tasks]]
    flat = pool.images.flatten(1)
    train, hold = [], []
    for c in classes.tolist():
        g = groups[c]
        pick = g[torch.randperm(len(g), generator=generator)[: i + holdout]]
        train.append(flat[pick[:i]])
        hold.append(flat[pick[i:]])
    return HyperStream(classes, torch.stack(train), torch.stack(hold))
