"""Builders: DAN classifiers/regressors of a given topology or parameter count, and a
WarpGrad baseline with a parameter count matched to a DAN model."""

from __future__ import annotations

from typing import Sequence

import torch

from raycl.dan.networks import DANAutoEncoder, DANNetwork, WarpNetwork
from raycl.dan.params import count_parameters


def phenotype_param_count(n_channels: int, phenotype_hidden: Sequence[int] = (15, 8)) -> int:
    dims = (n_channels, *phenotype_hidden, 1)
    return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


def dan_param_count(
    input_dim: int,
    hidden: Sequence[int],
    output_dim: int,
    n_channels: int,
    sharing: str = "net0",
    skips: bool = False,
    readout: str = "linear",
    phenotype_hidden: Sequence[int] = (15, 8),
) -> int:
    """Parameter count of `DANNetwork(...)` without building it (for 100M+ models)."""
    widths = (input_dim, *hidden) + ((output_dim,) if readout == "dan" else ())
    c = n_channels
    n = 0
    for k in range(1, len(widths)):
        n += (widths[k - 1] + 1) * widths[k] * c
        if skips and k >= 2:
            n += widths[k - 2] * widths[k] * c
    if readout == "linear":
        n += hidden[-1] * output_dim + output_dim
    p = phenotype_param_count(c, phenotype_hidden)
    n += {"net0": p, "net1": p * (len(widths) - 1), "net2": p * sum(widths[1:])}[sharing]
    return n


def _largest_at_most(f, target: float, lo: float, hi: float, integer: bool = True) -> float:
    """Bisection for the x in [lo, hi] where the increasing f(x) crosses target."""
    while f(hi) < target:
        hi *= 2
    for _ in range(200):
        if (integer and hi - lo <= 1) or (not integer and hi - lo <= 1e-9 * hi):
            break
        mid = (lo + hi) // 2 if integer else (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) <= target else (lo, mid)
    return lo if abs(f(lo) - target) <= abs(f(hi) - target) else hi


def width_for_params(target_params: int, n_hidden_layers: int, **count_kw) -> int:
    """The equal hidden width whose DANNetwork parameter count is nearest to target_params."""
    f = lambda h: dan_param_count(hidden=(int(h),) * n_hidden_layers, **count_kw)  # noqa: E731
    return int(_largest_at_most(f, target_params, 1, 64))


def build_dan_classifier(
    input_dim: int,
    n_classes: int,
    hidden: Sequence[int] = (32, 32),
    n_channels: int = 4,
    target_params: int | None = None,
    n_hidden_layers: int | None = None,
    sharing: str = "net0",
    skips: bool = False,
    readout: str = "linear",
    phenotype_hidden: Sequence[int] = (15, 8),
    phenotype_gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> DANNetwork:
    """A DAN classifier producing logits. With `target_params`, `hidden` becomes
    `n_hidden_layers` (default len(hidden)) equal widths chosen so the total parameter count
    is nearest to target_params (within a few % for any target above ~1e4)."""
    if target_params is not None:
        n_layers = n_hidden_layers or len(hidden)
        h = width_for_params(
            target_params, n_layers, input_dim=input_dim, output_dim=n_classes, n_channels=n_channels,
            sharing=sharing, skips=skips, readout=readout, phenotype_hidden=phenotype_hidden,
        )
        hidden = (h,) * n_layers
    return DANNetwork(
        input_dim, hidden, n_classes, n_channels, sharing, skips, readout, phenotype_hidden, phenotype_gain, generator
    )


def build_dan_regressor(
    input_dim: int = 1,
    output_dim: int = 1,
    hidden: Sequence[int] = (40, 40),
    n_channels: int = 40,
    sharing: str = "net0",
    skips: bool = True,
    readout: str = "dan",
    phenotype_hidden: Sequence[int] = (15, 8),
    phenotype_gain: float = 1.0,
    generator: torch.Generator | None = None,
) -> DANNetwork:
    """The Chapter 5 topology by default: 1 input, 2 hidden layers of 40 DANs, 1 output DAN,
    skips 0->2 and 1->3, n_channels 40, phenotype 40->15->8->1."""
    return DANNetwork(
        input_dim, hidden, output_dim, n_channels, sharing, skips, readout, phenotype_hidden, phenotype_gain, generator
    )


def warp_param_count(input_dim: int, hidden: Sequence[int], output_dim: int) -> int:
    dims = (input_dim, *hidden)
    n = sum((a + 1) * b for a, b in zip(dims[:-1], dims[1:]))  # task layers
    n += sum((b + 1) * b for b in hidden)  # warp layers
    return n + (hidden[-1] + 1) * output_dim


def match_warp_to(dan_model: DANNetwork, warp_gain: float = 1.0, generator: torch.Generator | None = None) -> WarpNetwork:
    """A WarpNetwork with the DAN model's input/output sizes and depth whose total parameter
    count is nearest the DAN model's: every hidden width is the DAN's scaled by one common
    factor (an auto-encoder keeps its latent width, so the bottleneck stays)."""
    target = count_parameters(dan_model)["total"]
    base = list(dan_model.hidden)
    fixed = {len(base) // 2} if isinstance(dan_model, DANAutoEncoder) else set()

    def widths(s: float) -> tuple[int, ...]:
        return tuple(w if i in fixed else max(1, round(w * s)) for i, w in enumerate(base))

    f = lambda s: warp_param_count(dan_model.input_dim, widths(s), dan_model.output_dim)  # noqa: E731
    s = _largest_at_most(f, target, 1e-3, 4.0, integer=False)
    return WarpNetwork(dan_model.input_dim, widths(s), dan_model.output_dim, warp_gain, generator)
