"""The neuronal phenotype φ: the small MLP every Deep Artificial Neuron (DAN) runs (§5.4).

One `Phenotype` is either a single network shared by many DANs (n_units=None), or a bank of
`n_units` independent networks with stacked parameters (one per neuron, "net2"), evaluated
in one einsum so no Python loop runs over neurons.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


def normal_init_(t: torch.Tensor, std: float, generator: torch.Generator | None = None) -> None:
    """Fill `t` from N(0, std²) drawn on the CPU (so a CPU generator works for any device)."""
    with torch.no_grad():
        t.copy_(torch.randn(t.shape, generator=generator, dtype=t.dtype) * std)


def uniform_init_(t: torch.Tensor, bound: float, generator: torch.Generator | None = None) -> None:
    """Fill `t` from U(-bound, bound) drawn on the CPU."""
    with torch.no_grad():
        t.copy_((torch.rand(t.shape, generator=generator, dtype=t.dtype) * 2 - 1) * bound)


class Phenotype(nn.Module):
    """MLP n_channels -> hidden... -> 1 with tanh after every layer, the output included.

    forward maps (..., n_channels) -> (..., 1). With `n_units=U` it is a bank of U
    independent phenotypes: input (..., U, n_channels) -> (..., U, 1), unit u using its own
    parameters. Weights are stored (in, out) (or (U, in, out)) so the forward is x @ W + b.

    Init (`reset_parameters`): weights ~ N(0, gain²/fan_in), biases 0.
    """

    is_phenotype = True  # split_parameters puts everything under such a module into φ

    def __init__(
        self,
        n_channels: int,
        hidden: Sequence[int] = (15, 8),
        gain: float = 1.0,
        n_units: int | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.n_channels = int(n_channels)
        self.hidden = tuple(int(h) for h in hidden)
        self.n_units = None if n_units is None else int(n_units)
        dims = (self.n_channels, *self.hidden, 1)
        lead = () if self.n_units is None else (self.n_units,)
        self.weights = nn.ParameterList(nn.Parameter(torch.empty(*lead, a, b)) for a, b in zip(dims[:-1], dims[1:]))
        self.biases = nn.ParameterList(nn.Parameter(torch.empty(*lead, b)) for b in dims[1:])
        self.reset_parameters(gain, generator)

    @property
    def dims(self) -> tuple[int, ...]:
        return (self.n_channels, *self.hidden, 1)

    def reset_parameters(self, gain: float = 1.0, generator: torch.Generator | None = None) -> None:
        for w, b in zip(self.weights, self.biases):
            normal_init_(w, gain / math.sqrt(w.shape[-2]), generator)
            with torch.no_grad():
                b.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.n_units is None:
            for w, b in zip(self.weights, self.biases):
                x = torch.tanh(torch.addmm(b, x.reshape(-1, x.shape[-1]), w).reshape(*x.shape[:-1], w.shape[-1]))
            return x
        # bank: (..., U, c) -> (U, N, c) so each unit is one batched matmul (bmm) over the batch
        lead = x.shape[:-2]
        h = x.reshape(-1, self.n_units, x.shape[-1]).transpose(0, 1)
        for w, b in zip(self.weights, self.biases):
            h = torch.tanh(torch.baddbmm(b.unsqueeze(1), h, w))
        return h.transpose(0, 1).reshape(*lead, self.n_units, 1)

    def unit(self, i: int) -> "Phenotype":
        """A standalone copy of unit i of a bank (for references and plots)."""
        if self.n_units is None:
            raise ValueError("unit() needs a phenotype bank (n_units set)")
        p = Phenotype(self.n_channels, self.hidden)
        with torch.no_grad():
            for dst, src in zip(p.weights, self.weights):
                dst.copy_(src[i])
            for dst, src in zip(p.biases, self.biases):
                dst.copy_(src[i])
        return p.to(self.weights[0].device)

    def extra_repr(self) -> str:
        dims = "->".join(map(str, self.dims))
        return f"{dims}, tanh" + ("" if self.n_units is None else f", units={self.n_units}")
