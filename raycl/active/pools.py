"""Pools for pool-based active learning: the data a run sees (labeled / unlabeled index
sets over one training pool, a validation split for model selection, a test split) and the
scenarios that shape them (out-of-distribution images mixed in, a biased initial pool)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from raycl import RayclError
from raycl.data import ImageSet, to_common


@dataclass
class ActiveData:
    """pool: every image the learner may query. pool.labels holds the true labels (the oracle's
    knowledge, never the learner's); `ood` marks out-of-distribution images (label -1 in
    `pool.labels`). val/test are in-distribution only."""

    pool: ImageSet
    ood: np.ndarray  # bool (len(pool),)
    val: ImageSet
    test: ImageSet

    @property
    def num_classes(self) -> int:
        return self.val.num_classes


class Pools:
    """Labeled and unlabeled index sets over one pool; labels are what the oracle said."""

    def __init__(self, size: int, labeled: np.ndarray, labels: np.ndarray):
        labeled = np.asarray(labeled, dtype=np.int64)
        if len(np.unique(labeled)) != len(labeled):
            raise ValueError("labeled indices repeat")
        self.size = size
        self._labels: dict[int, int] = dict(zip(labeled.tolist(), np.asarray(labels).tolist()))
        mask = np.ones(size, dtype=bool)
        mask[labeled] = False
        self._unlabeled = mask

    @property
    def labeled(self) -> np.ndarray:
        return np.fromiter(self._labels.keys(), dtype=np.int64, count=len(self._labels))

    @property
    def labels(self) -> np.ndarray:
        return np.fromiter(self._labels.values(), dtype=np.int64, count=len(self._labels))

    @property
    def unlabeled(self) -> np.ndarray:
        return np.flatnonzero(self._unlabeled)

    def add(self, idx: np.ndarray, labels: np.ndarray) -> None:
        idx = np.asarray(idx, dtype=np.int64)
        if not self._unlabeled[idx].all():
            raise ValueError("can only label samples from the unlabeled pool")
        self._unlabeled[idx] = False
        self._labels.update(zip(idx.tolist(), np.asarray(labels).tolist()))


def split_indices(n: int, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(n)
    k = int(round(n * fraction))
    return np.sort(perm[k:]), np.sort(perm[:k])


def build(
    train: ImageSet,
    test: ImageSet,
    rng: np.random.Generator,
    val_fraction: float = 0.1,
    ood: list[ImageSet] | None = None,
    ood_fraction: float = 0.0,
) -> ActiveData:
    """Hold out a validation split from `train`, then mix out-of-distribution images into the
    rest so they make up `ood_fraction` of the pool (images converted to train's shape)."""
    if not 0 <= ood_fraction < 1:
        raise RayclError(f"ood fraction must be in [0, 1), got {ood_fraction}")
    keep, val_idx = split_indices(len(train), val_fraction, rng)
    pool, val = train.subset(keep), train.subset(val_idx)
    flags = np.zeros(len(pool), dtype=bool)
    if ood_fraction > 0:
        if not ood:
            raise RayclError("an out-of-distribution fraction needs at least one OOD source (--ood NAME)")
        c, h, _ = train.shape
        sources = [to_common(s, size=h, channels=c) for s in ood]
        images = torch.cat([s.images for s in sources])
        want = int(round(len(pool) * ood_fraction / (1 - ood_fraction)))
        if want > len(images):
            most = len(images) / (len(pool) + len(images))
            raise RayclError(f"need {want} out-of-distribution images but the OOD sources hold {len(images)}; "
                             f"lower --ood-fraction (at most {int(most * 1000) / 1000} here) or add sources to --ood")
        pick = torch.as_tensor(rng.choice(len(images), size=want, replace=False))
        pool = ImageSet(
            name=f"{train.name}+ood",
            images=torch.cat([pool.images, images[pick]]),
            labels=torch.cat([pool.labels, torch.full((want,), -1, dtype=torch.long)]),
            class_names=train.class_names,
            coarse_labels=None if train.coarse_labels is None else torch.cat(
                [pool.coarse_labels, torch.full((want,), -1, dtype=torch.long)]),
            coarse_names=train.coarse_names,
        )
        flags = np.concatenate([flags, np.ones(want, dtype=bool)])
        # shuffle, so that pool order says nothing about which images are out of distribution
        order = rng.permutation(len(pool))
        pool, flags = pool.subset(order), flags[order]
    return ActiveData(pool=pool, ood=flags, val=val, test=test)


def initial_labeled(
    data: ActiveData, size: int, rng: np.random.Generator, remove_classes: int = 0
) -> np.ndarray:
    """L0: `size` in-distribution pool indices drawn at random; a biased pool draws them only
    from classes other than `remove_classes` randomly chosen ones (Sinha et al.'s protocol)."""
    labels = data.pool.labels.numpy()
    allowed = ~data.ood
    if remove_classes:
        if remove_classes >= data.num_classes:
            raise RayclError(f"cannot remove {remove_classes} of {data.num_classes} classes from the initial pool")
        gone = rng.choice(data.num_classes, size=remove_classes, replace=False)
        allowed &= ~np.isin(labels, gone)
    candidates = np.flatnonzero(allowed)
    if size > len(candidates):
        raise RayclError(f"initial pool of {size} asked for but only {len(candidates)} eligible samples")
    return np.sort(rng.choice(candidates, size=size, replace=False))
