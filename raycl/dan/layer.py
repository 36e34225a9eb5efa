"""A layer of DANs: vector-valued synapses θ feeding n_out DANs (eq 5.2, 5.3)."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from raycl.dan.phenotype import Phenotype, uniform_init_


class DANLayer(nn.Module):
    """Dense synapses `weight` (n_in, n_out*n_channels) + `bias` (n_out*n_channels).

    forward(x, skips=(), phenotype=None): the raw product x @ weight + bias (no activation),
    plus `skip @ skip_weights[k]` for every skip input (eq 5.3), is reshaped to
    (B, n_out, n_channels) and sent through the phenotype in one batched call; the result is
    (B, n_out). The phenotype is the layer's own (`self.phenotype`, net1/net2) or, when the
    layer owns none (net0), the one passed in. Skip synapses carry no bias (the main bias
    already covers it).

    Synapse init (`reset_synapses`): nn.Linear's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    for weights and bias, with fan_in the width of the source layer of each matrix.
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        n_channels: int,
        skip_in: Sequence[int] = (),
        phenotype: Phenotype | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.n_in, self.n_out, self.n_channels = int(n_in), int(n_out), int(n_channels)
        self.skip_in = tuple(int(s) for s in skip_in)
        width = self.n_out * self.n_channels
        self.weight = nn.Parameter(torch.empty(self.n_in, width))
        self.bias = nn.Parameter(torch.empty(width))
        self.skip_weights = nn.ParameterList(nn.Parameter(torch.empty(s, width)) for s in self.skip_in)
        if phenotype is not None:
            if phenotype.n_channels != self.n_channels:
                raise ValueError(f"phenotype takes {phenotype.n_channels} channels, layer has {self.n_channels}")
            if phenotype.n_units not in (None, self.n_out):
                raise ValueError(f"phenotype bank has {phenotype.n_units} units, layer has {self.n_out} DANs")
        self.phenotype = phenotype
        self.reset_synapses(generator)

    def reset_synapses(self, generator: torch.Generator | None = None) -> None:
        bound = 1.0 / math.sqrt(self.n_in)
        uniform_init_(self.weight, bound, generator)
        uniform_init_(self.bias, bound, generator)
        for s, w in zip(self.skip_in, self.skip_weights):
            uniform_init_(w, 1.0 / math.sqrt(s), generator)

    def dan_input(self, x: torch.Tensor, skips: Sequence[torch.Tensor] = ()) -> torch.Tensor:
        """The raw synaptic signal σ_in, shaped (B, n_out, n_channels)."""
        if len(skips) != len(self.skip_in):
            raise ValueError(f"layer expects {len(self.skip_in)} skip inputs, got {len(skips)}")
        z = torch.addmm(self.bias, x, self.weight)
        for s, w in zip(skips, self.skip_weights):
            z = z + s @ w
        return z.view(x.shape[0], self.n_out, self.n_channels)

    def forward(
        self, x: torch.Tensor, skips: Sequence[torch.Tensor] = (), phenotype: Phenotype | None = None
    ) -> torch.Tensor:
        phen = self.phenotype if self.phenotype is not None else phenotype
        if phen is None:
            raise ValueError("this DANLayer owns no phenotype; pass phenotype=")
        return phen(self.dan_input(x, skips)).squeeze(-1)

    def extra_repr(self) -> str:
        return f"n_in={self.n_in}, n_out={self.n_out}, n_channels={self.n_channels}, skip_in={self.skip_in}"
