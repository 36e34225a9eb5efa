"""The oracle that answers label queries: exact, noisy (a flipped label stays within its
superclass), and out-of-distribution aware (it refuses to label an image from outside the
task's classes; the query is spent and the image goes back to the unlabeled pool)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raycl import RayclError


@dataclass
class Answer:
    labeled: np.ndarray  # pool indices that got a label
    labels: np.ndarray
    refused: np.ndarray  # pool indices the oracle would not label (out of distribution)


class Oracle:
    """Labels queries with the pool's true labels; refuses out-of-distribution images.

    `truth` holds the true label of each pool image (-1 for out-of-distribution images).
    `lost` counts the queries spent on refused images (the budget lost)."""

    def __init__(self, truth: np.ndarray):
        self.truth = np.asarray(truth, dtype=np.int64)
        self.lost = 0
        self.queries = 0

    def _label(self, idx: np.ndarray) -> np.ndarray:
        return self.truth[idx]

    def __call__(self, idx) -> Answer:
        idx = np.asarray(idx, dtype=np.int64)
        ood = self.truth[idx] < 0
        self.queries += len(idx)
        self.lost += int(ood.sum())
        ok = idx[~ood]
        return Answer(labeled=ok, labels=self._label(ok), refused=idx[ood])


class NoisyOracle(Oracle):
    """Each pool image's answer is fixed once: with probability `rate` it is another class of
    the same superclass (CIFAR-100's 20 coarse classes, or any grouping given), chosen
    uniformly; a class alone in its superclass keeps its label."""

    def __init__(self, truth: np.ndarray, coarse_of_class: np.ndarray, rate: float, rng: np.random.Generator):
        super().__init__(truth)
        if not 0 <= rate <= 1:
            raise RayclError(f"noise rate must be in [0, 1], got {rate}")
        coarse_of_class = np.asarray(coarse_of_class, dtype=np.int64)
        self.coarse_of_class = coarse_of_class
        self.noisy = self.truth.copy()
        flip = (rng.random(len(self.truth)) < rate) & (self.truth >= 0)
        for i in np.flatnonzero(flip):
            y = self.truth[i]
            siblings = np.flatnonzero((coarse_of_class == coarse_of_class[y]) & (np.arange(len(coarse_of_class)) != y))
            if len(siblings):
                self.noisy[i] = rng.choice(siblings)
        self.flipped = self.noisy != self.truth

    def _label(self, idx: np.ndarray) -> np.ndarray:
        return self.noisy[idx]


def coarse_of_class(labels, coarse_labels, num_classes: int) -> np.ndarray:
    """The superclass of each fine class, read off paired label arrays (e.g. CIFAR-100)."""
    labels, coarse_labels = np.asarray(labels), np.asarray(coarse_labels)
    out = np.full(num_classes, -1, dtype=np.int64)
    ok = labels >= 0
    out[labels[ok]] = coarse_labels[ok]
    if (out < 0).any():
        raise RayclError("some classes never appear in the data, so their superclass is unknown")
    return out


def parse_superclasses(text: str, num_classes: int) -> np.ndarray:
    """'0,6,8,9;1,4,7;2,3,5' -> superclass of each class (for data without coarse labels)."""
    out = np.full(num_classes, -1, dtype=np.int64)
    for g, group in enumerate(text.split(";")):
        for c in group.split(","):
            c = int(c)
            if not 0 <= c < num_classes or out[c] >= 0:
                raise RayclError(f"--superclasses: class {c} is out of range or listed twice")
            out[c] = g
    if (out < 0).any():
        raise RayclError(f"--superclasses must list every class 0..{num_classes - 1} once")
    return out
