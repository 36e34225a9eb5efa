"""The θ/φ split: synapses (plastic) vs phenotype (meta-learned, fixed at deployment)."""

from __future__ import annotations

import torch
from torch import nn

from raycl.dan.layer import DANLayer


def _phenotype_prefixes(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if getattr(m, "is_phenotype", False)]


def split_parameters(model: nn.Module) -> tuple[dict[str, nn.Parameter], dict[str, nn.Parameter]]:
    """(synapses θ, phenotype φ), keyed exactly as `model.named_parameters()`.

    φ is every parameter under a module marked `is_phenotype` (a `Phenotype`, a phenotype
    bank, or a WarpGrad `WarpLayer`); θ is everything else. Each parameter lands in exactly
    one dict, so `torch.func.functional_call(model, {**theta, **phi}, (x,))` works.
    """
    prefixes = _phenotype_prefixes(model)
    theta, phi = {}, {}
    for name, p in model.named_parameters():
        is_phi = any(pre == "" or name.startswith(pre + ".") for pre in prefixes)
        (phi if is_phi else theta)[name] = p
    return theta, phi


def count_parameters(model: nn.Module) -> dict[str, int]:
    theta, phi = split_parameters(model)
    n_theta = sum(p.numel() for p in theta.values())
    n_phi = sum(p.numel() for p in phi.values())
    return {"theta": n_theta, "phi": n_phi, "total": n_theta + n_phi}


def reset_phenotype(model: nn.Module, gain: float = 1.0, generator: torch.Generator | None = None) -> None:
    """Re-draw every phenotype (and warp layer) in `model`: weights N(0, gain²/fan_in), bias 0."""
    for name, m in model.named_modules():
        if getattr(m, "is_phenotype", False):
            m.reset_parameters(gain, generator)


def reset_synapses(model: nn.Module, generator: torch.Generator | None = None) -> None:
    """Re-draw every synapse with nn.Linear's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    from raycl.dan.networks import reset_linear_

    for m in model.modules():
        if getattr(m, "is_phenotype", False):
            continue
        if isinstance(m, DANLayer):
            m.reset_synapses(generator)
        elif isinstance(m, nn.Linear):
            reset_linear_(m, generator)


def snapshot(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached copies (e.g. θ0 to reset to)."""
    return {k: v.detach().clone() for k, v in params.items()}


def load_into(params: dict[str, nn.Parameter], values: dict[str, torch.Tensor]) -> None:
    """Copy `values` into the live parameters in place (keeps optimizer references valid)."""
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(values[k])
