"""§6.4.6: a DAN with one input channel is a learned activation function f: R -> R.
Plot f and f' for every phenotype in a checkpoint."""

from __future__ import annotations

import torch

from raycl import RayclError


def activation_curves(phen, lo: float = -4.0, hi: float = 4.0, n: int = 801, max_units: int = 8):
    """x, f(x) and f'(x) (each (n, units)) for a one-input-channel phenotype or bank."""
    if phen.n_channels != 1:
        raise RayclError(
            f"this phenotype takes {phen.n_channels} input channels; the activation view needs n_channels=1 "
            "(train one with e.g. `raycl sine --n-channels 1`)"
        )
    x = torch.linspace(lo, hi, n, dtype=phen.weights[0].dtype)
    units = 1 if phen.n_units is None else min(phen.n_units, max_units)
    inp = x.view(n, 1, 1).expand(n, units, 1).clone() if phen.n_units is not None else x.view(n, 1).clone()
    if phen.n_units is not None and units < phen.n_units:  # evaluate the whole bank, keep the first units
        inp = x.view(n, 1, 1).expand(n, phen.n_units, 1).clone()
    inp.requires_grad_(True)
    y = phen(inp)
    (dy,) = torch.autograd.grad(y.sum(), inp)
    y, dy = y.detach().reshape(n, -1)[:, :units], dy.detach().reshape(n, -1)[:, :units]
    return x, y, dy


def activation_figure(phenotypes: dict, lo: float = -4.0, hi: float = 4.0, title: str = ""):
    from raycl.plots import pyplot

    plt = pyplot()

    fig, axes = plt.subplots(len(phenotypes), 2, figsize=(9, 3.0 * len(phenotypes)), squeeze=False)
    for row, (name, phen) in enumerate(phenotypes.items()):
        x, y, dy = activation_curves(phen, lo, hi)
        for ax, vals, label in ((axes[row][0], y, "f(x)"), (axes[row][1], dy, "f'(x)")):
            ax.plot(x, vals, lw=1.5)
            ax.axhline(0, color="0.8", lw=0.8)
            ax.axvline(0, color="0.8", lw=0.8)
            ax.set_title(f"{name}: {label}" + (f" ({vals.shape[1]} units)" if vals.shape[1] > 1 else ""), fontsize=9)
            ax.set_xlabel("DAN input x")
        axes[row][0].plot(x, torch.tanh(x), "k--", lw=0.8, label="tanh (reference)")
        axes[row][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
