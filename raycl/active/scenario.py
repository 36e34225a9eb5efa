"""Which data a run uses: the in-distribution dataset (train split -> pool + validation, test
split -> test), out-of-distribution sources mixed into the pool, and the superclasses a
noisy oracle needs. Offline default: scikit-learn digits with the `shapes` OOD source at 20%;
real: e.g. CIFAR-10 with SVHN / KMNIST / FashionMNIST."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from raycl.active.oracle import coarse_of_class, parse_superclasses
from raycl.active.pools import ActiveData, build
from raycl.data import load

TEST_SPLIT = {"digits": "test"}


@dataclass
class Scenario:
    dataset: str = "digits"
    ood: tuple[str, ...] = ("shapes",)
    ood_fraction: float = 0.2
    val_fraction: float = 0.1
    data_root: str | None = None
    download: bool = False

    def _load(self, name: str, split: str | None = None):
        return load(name, split=split, root=self.data_root, download=self.download)

    def build(self, seed: int) -> ActiveData:
        """The same seed gives the same validation split and the same OOD images."""
        rng = np.random.default_rng([seed, 7])
        train = self._load(self.dataset, "train")
        test = self._load(self.dataset, TEST_SPLIT.get(self.dataset, "test"))
        ood = [self._load(n) for n in self.ood] if self.ood_fraction > 0 else None
        return build(train, test, rng, self.val_fraction, ood, self.ood_fraction)

    def superclasses(self, text: str | None = None) -> np.ndarray | None:
        """From --superclasses if given, else from the dataset's coarse labels (CIFAR-100)."""
        train = self._load(self.dataset, "train")
        if text:
            return parse_superclasses(text, train.num_classes)
        if train.coarse_labels is not None:
            return coarse_of_class(train.labels.numpy(), train.coarse_labels.numpy(), train.num_classes)
        return None
