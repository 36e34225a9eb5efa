"""The networks hyper-training uses, with their θ/φ split (raycl.dan does the building)."""

from __future__ import annotations

import torch

from raycl.dan import DANAutoEncoder, WarpNetwork, build_dan_classifier, match_warp_to, split_parameters
from raycl.hyper.config import HyperConfig


def build_model(cfg: HyperConfig, generator: torch.Generator | None = None):
    """The population's shared architecture, initialised from cfg.seed: returns (model, θ0, φ0)."""
    g = generator or torch.Generator().manual_seed(cfg.seed)
    input_dim = cfg.image_size**2
    if cfg.mode == "unsupervised":
        model = DANAutoEncoder(input_dim, cfg.hidden, cfg.latent, cfg.n_channels, sharing=cfg.sharing,
                               phenotype_hidden=cfg.phenotype_hidden, generator=g)
    else:
        model = build_dan_classifier(input_dim, cfg.n_outputs, hidden=cfg.hidden, n_channels=cfg.n_channels,
                                     target_params=cfg.target_params, sharing=cfg.sharing, readout=cfg.readout,
                                     phenotype_hidden=cfg.phenotype_hidden, generator=g)
        if cfg.model == "warp":
            model = match_warp_to(model, generator=g)
    theta, phi = split_parameters(model)
    return model, {n: p.detach().clone() for n, p in theta.items()}, {n: p.detach().clone() for n, p in phi.items()}
