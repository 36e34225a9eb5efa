"""Representation diagnostics (why a phenotype helps memory and what it does to
generalization): centred cosine similarity of hidden codes within and between classes,
and the phenotype's response curve."""

from __future__ import annotations

import torch
from torch.func import functional_call


def centred_cosine(codes: torch.Tensor, labels: torch.Tensor) -> dict:
    """Mean cosine similarity of row-centred codes (each code minus its own mean over units,
    i.e. the Pearson correlation of two codes) over pairs of distinct instances of the same
    class ('within') and of different classes ('between'). Identical codes give 1,
    orthogonal zero-mean codes 0. A constant code has no direction and counts as 0."""
    h = codes.double() - codes.double().mean(1, keepdim=True)
    h = h / h.norm(dim=1, keepdim=True).clamp_min(1e-12)
    sim = h @ h.T
    same = labels[:, None] == labels[None, :]
    off_diag = ~torch.eye(len(labels), dtype=torch.bool)
    within, between = sim[same & off_diag], sim[~same]
    return {
        "within": float(within.mean()) if len(within) else float("nan"),
        "between": float(between.mean()) if len(between) else float("nan"),
    }


@torch.no_grad()
def layer_cosines(model, params, x: torch.Tensor, y: torch.Tensor) -> list[dict]:
    """centred_cosine of every hidden layer's code for inputs x with classes y."""
    _, hidden = functional_call(model, params, (x,), {"return_hidden": True})
    return [centred_cosine(h, y) for h in hidden]


@torch.no_grad()
def phenotype_response(phenotype_fn, n_channels: int, points: int = 101, span: float = 3.0):
    """The phenotype's output over its input: f(u) and f'(u) along channel 0 for one
    channel; for more channels a 2-D grid over channels 0 and 1 with the others at 0."""
    u = torch.linspace(-span, span, points)
    if n_channels == 1:
        with torch.enable_grad():
            v = u.clone().requires_grad_()
            f = phenotype_fn(v[:, None]).squeeze(-1)
            df = torch.autograd.grad(f.sum(), v)[0]
        return u, f.detach(), df
    grid = torch.zeros(points, points, n_channels)
    grid[..., 0] = u[None, :]
    grid[..., 1] = u[:, None]
    return u, phenotype_fn(grid.view(-1, n_channels)).view(points, points), None
