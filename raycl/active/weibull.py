"""Extreme-value (Weibull) open-set model over latents (§3.3.4, after Mundt et al.; the
authors' code used libMR's FitHigh, reproduced here with scipy):

per class, the mean latent of correctly classified labeled samples; cosine distances of those
samples to it; the largest `tail` fraction of them, shifted so the tail's smallest value sits
at a large constant; a 2-parameter Weibull fitted by maximum likelihood
(`scipy.stats.weibull_min.fit(..., floc=0)`). A sample's outlier probability is the fitted
CDF at its distance to the mean of its predicted class: near 0 inside the class's bulk,
rising to 1 beyond its tail."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

SHIFT = 10000.0  # libMR's translate_amount


def cosine_distance(z: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """1 - cos(z_i, means_i), row by row."""
    return 1 - F.cosine_similarity(z, means, dim=1, eps=1e-8)


@dataclass
class WeibullModel:
    means: torch.Tensor  # (C, D) class mean latents
    shape: torch.Tensor  # (C,) Weibull shape k (nan: class had no correct sample)
    scale: torch.Tensor  # (C,) Weibull scale λ
    small: torch.Tensor  # (C,) the tail's smallest distance (the shift is SHIFT - small)

    def outlier_probability(self, latents: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
        """CDF of the predicted class's Weibull at the sample's distance; one vectorized pass.
        A class without a model gives 1 (nothing known about it)."""
        latents = latents.to(self.means.device, torch.float64)
        c = predicted.to(self.means.device)
        d = cosine_distance(latents, self.means[c])
        x = (d + SHIFT - self.small[c]).clamp(min=0)
        # 1 - exp(-(x/λ)^k) computed in log space: k is large (~1e5) because of the shift
        p = -torch.expm1(-torch.exp(self.shape[c] * (torch.log(x) - torch.log(self.scale[c]))))
        return torch.where(torch.isnan(p), torch.ones_like(p), p).float()


def fit(latents: torch.Tensor, labels: torch.Tensor, predicted: torch.Tensor, num_classes: int,
        tail: float = 0.05, min_tail: int = 5) -> WeibullModel:
    """Fit one Weibull per class on the correctly classified (latent, label) pairs.
    The tail is the largest max(ceil(tail * n), min_tail) distances (all of them if fewer)."""
    from scipy.stats import weibull_min

    latents = latents.to(torch.float64)
    correct = predicted == labels
    means = torch.zeros(num_classes, latents.shape[1], dtype=torch.float64)
    shape = torch.full((num_classes,), float("nan"), dtype=torch.float64)
    scale = torch.full_like(shape, float("nan"))
    small = torch.zeros_like(shape)
    for c in range(num_classes):
        z = latents[correct & (labels == c)]
        if len(z) == 0:
            continue
        means[c] = z.mean(0)
        d = np.sort(cosine_distance(z, means[c].expand_as(z)).numpy())
        k = min(len(d), max(math.ceil(tail * len(d)), min_tail))
        t = d[-k:]
        small[c] = t[0]
        if np.ptp(t) <= 1e-12:  # one point or identical distances: a step at that distance
            shape[c], scale[c] = 1e6, SHIFT + 1e-9
            continue
        kc, _, lam = weibull_min.fit(t + SHIFT - t[0], floc=0)
        shape[c], scale[c] = kc, lam
    return WeibullModel(means, shape, scale, small)
