"""What every query strategy shares: the context it queries in (`QueryContext`), the
`Strategy` interface and the scoring helpers. Its own module so that the strategies in
strategies.py, adversarial.py and bald.py import it and not each other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from raycl.active.train import predict


@dataclass
class QueryContext:
    model: torch.nn.Module
    images: torch.Tensor  # the whole pool
    labeled: np.ndarray  # pool indices
    labels: np.ndarray  # the oracle's labels for `labeled`
    unlabeled: np.ndarray
    num_classes: int
    device: torch.device = torch.device("cpu")
    batch_size: int = 1024
    train_fresh: Callable[[int], torch.nn.Module] | None = None  # a new model on L (ensembles)
    info: dict = field(default_factory=dict)  # what a strategy wants logged
    validation: torch.Tensor | None = None  # held-out in-distribution images (weibull threshold=val)
    refused: np.ndarray | None = None  # pool indices the oracle refused so far (back in `unlabeled`)

    def predict(self, idx: np.ndarray, stochastic: bool = False, model=None):
        return predict(model or self.model, self.images[torch.as_tensor(idx)], self.device, self.batch_size, stochastic)

    def mc_probs(self, idx: np.ndarray, passes: int) -> torch.Tensor:
        """(len(idx), passes, C) class probabilities with dropout on and z sampled."""
        return torch.stack([self.predict(idx, stochastic=True)[0] for _ in range(passes)], 1)


def top(scores, b: int) -> np.ndarray:
    """Positions of the b largest scores (stable: earlier positions win ties)."""
    scores = np.asarray(scores, dtype=np.float64)
    return np.argsort(-scores, kind="stable")[:b]


def entropy(p: torch.Tensor, dim: int = -1) -> torch.Tensor:
    return -(p * p.clamp_min(1e-12).log()).sum(dim)


class Strategy:
    name = "?"

    def select(self, ctx: QueryContext, b: int, rng: np.random.Generator) -> np.ndarray:
        u = ctx.unlabeled
        if b >= len(u):
            return u.copy()
        return u[self.rank(ctx, b, rng)]

    def rank(self, ctx: QueryContext, b: int, rng: np.random.Generator) -> np.ndarray:
        """b distinct positions into ctx.unlabeled."""
        raise NotImplementedError
