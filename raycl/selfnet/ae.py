"""The contractive auto-encoder over (sub-vectors of) flattened network weights (§2.2.3).

loss = mean over networks of (1 - cos(θ, θ̂)) + λ · mean over inputs of ||J_f(x)||_F²  (eq 2.3/2.4)

J_f is the Jacobian of the encoder's output (the latent code) with respect to its input.
The encoder is a stack of dense layers with one elementwise activation σ, so
J = D_L W_L ... D_1 W_1 with D_l = diag(σ'(a_l)): we compute it in closed form from the
pre-activations, using the derivative of the activation actually used (the authors' code
used the sigmoid's h(1-h) under tanh; here each activation brings its own σ').

Residual coding (`residual=True`): the encoder sees x − b, b the decoder's output bias (a
learned AE parameter, so no extra floats), and `centre_on` starts b at the networks' mean
with a near-zero output layer. Networks fine-tuned from one source differ by ~15% of their
norm; coded raw, that common part swamps the encoder's input and the untrained decoder's
output (~10x the networks' scale), and Adam crawls (measured: 20 networks stall at cosine
~0.996 after 1,500 updates; centred, they reach 0.997 in ~50).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# activation and its derivative, both as functions of the pre-activation a
ACTIVATIONS = {
    "tanh": (torch.tanh, lambda a: 1 - torch.tanh(a) ** 2),
    "sigmoid": (torch.sigmoid, lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a))),
    "elu": (F.elu, lambda a: torch.where(a > 0, torch.ones_like(a), torch.exp(torch.clamp(a, max=0)))),
    "relu": (F.relu, lambda a: (a > 0).to(a.dtype)),
    "linear": (lambda a: a, torch.ones_like),
}


class ContractiveAE(nn.Module):
    """n -> hidden... -> s (activation after every encoder layer) -> decoder_hidden... -> n (linear out).

    decoder_hidden defaults to the encoder's hidden sizes mirrored. With no hidden layers the
    latent is the AE's one hidden layer (the Split-MNIST AEs) and every recollection lies in
    an s-dimensional affine subspace; a decoder hidden layer makes that a curved s-manifold."""

    def __init__(self, n: int, latent: int, hidden: tuple[int, ...] = (), activation: str = "tanh",
                 decoder_hidden: tuple[int, ...] | None = None, residual: bool = False):
        super().__init__()
        self.residual = residual
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation '{activation}'; choose one of: {', '.join(ACTIVATIONS)}")
        self.n, self.latent, self.hidden, self.activation = n, latent, tuple(hidden), activation
        self.decoder_hidden = tuple(hidden[::-1]) if decoder_hidden is None else tuple(decoder_hidden)
        self._act, self._dact = ACTIVATIONS[activation]
        sizes = [n, *hidden, latent]
        self.enc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        rev = [latent, *self.decoder_hidden, n]
        self.dec = nn.ModuleList(nn.Linear(a, b) for a, b in zip(rev[:-1], rev[1:]))

    def config(self) -> dict:
        return {"n": self.n, "latent": self.latent, "hidden": list(self.hidden), "activation": self.activation,
                "decoder_hidden": list(self.decoder_hidden), "residual": self.residual}

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def encode_pre(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The latent code and every encoder layer's pre-activation."""
        if self.residual:  # the centre is a constant of the input map: no gradient through it
            x = x - self.dec[-1].bias.detach()
        pre = []
        for layer in self.enc:
            a = layer(x)
            pre.append(a)
            x = self._act(a)
        return x, pre

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_pre(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.dec):
            z = layer(z)
            if i < len(self.dec) - 1:
                z = self._act(z)
        return z

    @torch.no_grad()
    def centre_on(self, x: torch.Tensor, weight_scale: float = 0.01) -> None:
        """Start the decoder at the rows' mean: output bias = mean(x), output weights shrunk,
        so the first recollections are the centre plus a small learned difference."""
        self.dec[-1].bias.copy_(x.mean(0))
        self.dec[-1].weight.mul_(weight_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def jacobian_sq_norm(self, pre: list[torch.Tensor]) -> torch.Tensor:
        """||∂latent/∂x||_F² per input row, from the encoder's pre-activations."""
        d_last = self._dact(pre[-1])  # (B, s)
        if len(self.enc) == 1:
            # J = diag(σ'(a)) W  =>  ||J||² = Σ_j σ'(a_j)² ||W_j||²
            w_sq = (self.enc[0].weight ** 2).sum(1)  # (s,)
            return (d_last ** 2) @ w_sq
        # general stack: J_b = D_L W_L ... D_1 W_1, built from the small (latent) end
        j = d_last.unsqueeze(2) * self.enc[-1].weight.unsqueeze(0)  # (B, s, h_{L-1})
        for layer, a in zip(reversed(self.enc[:-1]), reversed(pre[:-1])):
            j = (j * self._dact(a).unsqueeze(1)) @ layer.weight  # (B, s, h_{l-1})
        return (j ** 2).sum((1, 2))


def cosine_per_network(x: torch.Tensor, y: torch.Tensor, owner: torch.Tensor, mask: torch.Tensor,
                       count: int, eps: float = 1e-12) -> torch.Tensor:
    """Cosine similarity of every whole network, from its rows of sub-vectors.

    x, y: (rows, n) original and reconstructed sub-vectors; owner[row] = network index;
    mask: (rows, n) False on zero padding (ignored in y, so padding never counts)."""
    y = y * mask
    dot = torch.zeros(count, dtype=x.dtype, device=x.device).index_add_(0, owner, (x * y).sum(1))
    nx = torch.zeros_like(dot).index_add_(0, owner, (x * x).sum(1))
    ny = torch.zeros_like(dot).index_add_(0, owner, (y * y).sum(1))
    return dot / torch.sqrt(nx * ny).clamp_min(eps)


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    return float(a @ b / (a.norm() * b.norm()).clamp_min(1e-30))
