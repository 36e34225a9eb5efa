"""Networks as flat weight vectors, and flat vectors as zero-padded sub-vectors.

A task network of any size is stored by an auto-encoder of input size n by cutting its
flat vector into ceil(q / n) sub-vectors of length n, the last one zero-padded
(dissertation footnote 1). `join` undoes `split_pad` exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def flatten(model: nn.Module) -> torch.Tensor:
    """All parameters, in `model.parameters()` order, as one detached float32 vector."""
    return torch.cat([p.detach().reshape(-1).float() for p in model.parameters()]).cpu()


def load_flat(model: nn.Module, flat: torch.Tensor) -> nn.Module:
    """Write a flat vector (as made by `flatten`) back into `model`'s parameters, in place."""
    n = num_params(model)
    if flat.numel() != n:
        raise ValueError(f"flat vector has {flat.numel()} values but the network has {n} parameters")
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            k = p.numel()
            p.copy_(flat[offset:offset + k].view_as(p).to(p.dtype))
            offset += k
    return model


def num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def num_chunks(length: int, n: int) -> int:
    return max(1, math.ceil(length / n))


def split_pad(flat: torch.Tensor, n: int) -> torch.Tensor:
    """(ceil(q/n), n) sub-vectors of a length-q vector, the last one padded with zeros."""
    flat = flat.reshape(-1)
    r = num_chunks(flat.numel(), n)
    out = flat.new_zeros(r * n)
    out[: flat.numel()] = flat
    return out.view(r, n)


def join(chunks: torch.Tensor, length: int) -> torch.Tensor:
    """Re-join sub-vectors into the original length-`length` vector (drops the padding)."""
    return chunks.reshape(-1)[:length].clone()


def pad_mask(length: int, n: int) -> torch.Tensor:
    """(r, n) boolean mask: True where `split_pad` put real values, False on padding."""
    r = num_chunks(length, n)
    return (torch.arange(r * n) < length).view(r, n)
