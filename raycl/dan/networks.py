"""Networks of DANs (§5.4, §6.1), the DAN auto-encoder (§6.4.2), and the baselines: a plain
tanh MLP and WarpGrad-style networks with dense linear warp layers (§6.4.4)."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from raycl.dan.layer import DANLayer
from raycl.dan.phenotype import Phenotype, normal_init_, uniform_init_

SHARING_MODES = ("net0", "net1", "net2")
READOUTS = ("linear", "dan")


class DANNetwork(nn.Module):
    """input_dim -> DAN layers of widths `hidden` -> output_dim.

    Node layers are numbered 0 (input, not DANs), 1..L (hidden DANs), L+1 (output).
    sharing: 'net0' one phenotype for the whole net (`self.phenotype`); 'net1' one per DAN
      layer (`layers.k.phenotype`); 'net2' one per neuron (a stacked bank per layer).
    skips: when True, synapses j -> j+2 are added to the input of every DAN layer k >= 2
      (eq 5.3); with readout='dan' the output layer gets one too (Chapter 5: 0->2, 1->3).
    readout: 'linear' a plain linear map (with bias) of the last hidden layer to the outputs
      (synapses, θ), or 'dan' a layer of output_dim DANs (outputs bounded by tanh, §5.6).

    forward(x) -> (B, output_dim); forward(x, return_hidden=True) -> (out, [h_1..h_L]).
    """

    def __init__(
        self,
        input_dim: int,
        hidden: Sequence[int],
        output_dim: int,
        n_channels: int,
        sharing: str = "net0",
        skips: bool = False,
        readout: str = "linear",
        phenotype_hidden: Sequence[int] = (15, 8),
        phenotype_gain: float = 1.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if sharing not in SHARING_MODES:
            raise ValueError(f"sharing must be one of {SHARING_MODES}, got {sharing!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if not hidden and readout == "linear":
            raise ValueError("a DAN network with a linear read-out needs at least one hidden layer")
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.hidden = tuple(int(h) for h in hidden)
        self.n_channels, self.sharing, self.skips, self.readout = int(n_channels), sharing, bool(skips), readout
        self.phenotype_hidden = tuple(int(h) for h in phenotype_hidden)
        # constructor arguments, so a checkpoint can rebuild the same network
        self.config = dict(
            input_dim=self.input_dim, hidden=list(self.hidden), output_dim=self.output_dim, n_channels=self.n_channels,
            sharing=sharing, skips=self.skips, readout=readout, phenotype_hidden=list(self.phenotype_hidden),
        )

        widths = (self.input_dim, *self.hidden) + ((self.output_dim,) if readout == "dan" else ())
        n_dan_layers = len(widths) - 1

        def new_phenotype(n_units=None):
            return Phenotype(self.n_channels, self.phenotype_hidden, phenotype_gain, n_units, generator)

        self.phenotype = new_phenotype() if sharing == "net0" else None
        self.layers = nn.ModuleList()
        for k in range(1, n_dan_layers + 1):
            skip_in = (widths[k - 2],) if (skips and k >= 2) else ()
            own = None if sharing == "net0" else new_phenotype(widths[k] if sharing == "net2" else None)
            self.layers.append(DANLayer(widths[k - 1], widths[k], self.n_channels, skip_in, own, generator))
        self.head = nn.Linear(self.hidden[-1], self.output_dim) if readout == "linear" else None
        if self.head is not None:
            reset_linear_(self.head, generator)

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        acts = [x]
        for k, layer in enumerate(self.layers, start=1):
            skip = (acts[k - 2],) if layer.skip_in else ()
            acts.append(layer(acts[-1], skip, self.phenotype))
        out = self.head(acts[-1]) if self.head is not None else acts[-1]
        if return_hidden:
            return out, acts[1 : len(self.hidden) + 1]
        return out

    def phenotypes(self) -> list[Phenotype]:
        return [m for m in self.modules() if isinstance(m, Phenotype)]


class DANAutoEncoder(DANNetwork):
    """Encoder input -> hidden... -> latent and decoder latent -> reversed(hidden) -> input,
    all DAN layers; the reconstruction read-out is linear (default) or DAN. Trained with MSE.
    Skip synapses are not used here: they would let the signal bypass the bottleneck.
    """

    def __init__(
        self,
        input_dim: int,
        hidden: Sequence[int],
        latent: int,
        n_channels: int,
        sharing: str = "net0",
        readout: str = "linear",
        phenotype_hidden: Sequence[int] = (15, 8),
        phenotype_gain: float = 1.0,
        generator: torch.Generator | None = None,
    ):
        hidden = tuple(int(h) for h in hidden)
        super().__init__(
            input_dim, (*hidden, int(latent), *reversed(hidden)), input_dim, n_channels, sharing,
            False, readout, phenotype_hidden, phenotype_gain, generator,
        )
        self.latent = int(latent)
        self.n_encoder_layers = len(hidden) + 1
        self.config = dict(
            input_dim=int(input_dim), hidden=list(hidden), latent=self.latent, n_channels=int(n_channels),
            sharing=sharing, readout=readout, phenotype_hidden=list(self.phenotype_hidden),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[: self.n_encoder_layers]:
            x = layer(x, (), self.phenotype)
        return x

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[self.n_encoder_layers :]:
            z = layer(z, (), self.phenotype)
        return self.head(z) if self.head is not None else z

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(self(x), x)


def reset_linear_(lin: nn.Linear, generator: torch.Generator | None = None) -> None:
    """nn.Linear's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), from a given generator."""
    bound = 1.0 / math.sqrt(lin.in_features)
    uniform_init_(lin.weight, bound, generator)
    if lin.bias is not None:
        uniform_init_(lin.bias, bound, generator)


class MLP(nn.Module):
    """Plain tanh MLP baseline: input -> hidden... (tanh) -> linear output. All synapses (θ)."""

    def __init__(self, input_dim: int, hidden: Sequence[int], output_dim: int, generator=None):
        super().__init__()
        dims = (int(input_dim), *map(int, hidden), int(output_dim))
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        for lin in self.linears:
            reset_linear_(lin, generator)

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        hid = []
        for lin in self.linears[:-1]:
            x = torch.tanh(lin(x))
            hid.append(x)
        out = self.linears[-1](x)
        return (out, hid) if return_hidden else out


class WarpLayer(nn.Linear):
    """A dense linear warp layer (WarpGrad): meta-learned, fixed at deployment, so it counts
    as φ in `split_parameters`. Init: weights N(0, gain²/fan_in), bias 0."""

    is_phenotype = True

    def __init__(self, width: int, gain: float = 1.0, generator=None):
        super().__init__(width, width)
        self.reset_parameters(gain, generator)

    def reset_parameters(self, gain: float = 1.0, generator=None) -> None:  # noqa: D401
        normal_init_(self.weight, gain / math.sqrt(self.in_features), generator)
        with torch.no_grad():
            self.bias.zero_()


class WarpNetwork(nn.Module):
    """WarpGrad-style baseline: per hidden layer an ordinary linear layer (θ), then a dense
    linear warp layer (φ), then tanh; a linear read-out (θ). forward as DANNetwork."""

    def __init__(self, input_dim: int, hidden: Sequence[int], output_dim: int, warp_gain: float = 1.0, generator=None):
        super().__init__()
        dims = (int(input_dim), *map(int, hidden))
        self.hidden = tuple(dims[1:])
        self.task_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.warp_layers = nn.ModuleList(WarpLayer(b, warp_gain, generator) for b in dims[1:])
        self.head = nn.Linear(dims[-1], int(output_dim))
        for lin in [*self.task_layers, self.head]:
            reset_linear_(lin, generator)

    def forward(self, x: torch.Tensor, return_hidden: bool = False):
        hid = []
        for task, warp in zip(self.task_layers, self.warp_layers):
            x = torch.tanh(warp(task(x)))
            hid.append(x)
        out = self.head(x)
        return (out, hid) if return_hidden else out
