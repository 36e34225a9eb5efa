"""Phenotype checkpoints: φ (plus θ0 and the network's constructor arguments), written
atomically, readable back as a network or as bare phenotypes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from raycl import RayclError
from raycl.runio import torch_load, torch_save

FORMAT = "raycl.dan.phenotype/1"
_PHEN_KEY = re.compile(r"^(.*?)(weights|biases)\.(\d+)$")


def save_phenotype(
    path: str | Path, model: torch.nn.Module, theta0: dict[str, torch.Tensor] | None = None, **meta: Any
) -> Path:
    """Write φ, θ0 (the model's current θ unless `theta0` is given) and `model.config` (when
    the model has one) to `path`, atomically."""
    from raycl.dan.params import split_parameters

    theta, phi = split_parameters(model)
    theta = theta if theta0 is None else theta0
    obj = {
        "format": FORMAT,
        "model_class": type(model).__name__,
        "model_config": getattr(model, "config", None),
        "phi": {k: v.detach().cpu().clone() for k, v in phi.items()},
        "theta0": {k: v.detach().cpu().clone() for k, v in theta.items()},
        "meta": meta,
    }
    return torch_save(path, obj)


def load_phenotype(path: str | Path) -> dict:
    obj = torch_load(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        return obj
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"format": FORMAT, "phi": obj, "model_class": None, "model_config": None, "meta": {}}
    raise RayclError(f"{path} is not a raycl phenotype checkpoint (expected format {FORMAT} or a φ state dict)")




def model_from_checkpoint(ckpt: dict) -> torch.nn.Module:
    """Rebuild the saved network with its θ0 and φ loaded."""
    from raycl.dan import networks

    cls = getattr(networks, ckpt.get("model_class") or "", None)
    if cls is None or not ckpt.get("model_config"):
        raise RayclError("this checkpoint holds only φ, not a network description; it cannot rebuild the model")
    model = cls(**ckpt["model_config"])
    missing = model.load_state_dict({**ckpt.get("theta0", {}), **ckpt["phi"]}, strict=False)
    if missing.unexpected_keys:
        raise RayclError(f"checkpoint does not match {cls.__name__}: unexpected {missing.unexpected_keys[:3]}")
    return model


def phenotypes_from_state(phi: dict[str, torch.Tensor]) -> dict[str, "Phenotype"]:  # noqa: F821
    """Every phenotype in a φ state dict, keyed by its module prefix (e.g. 'phenotype',
    'layers.1.phenotype'); sizes and bank-ness are read off the tensor shapes."""
    from raycl.dan.phenotype import Phenotype

    groups: dict[str, dict[tuple[str, int], torch.Tensor]] = {}
    for k, v in phi.items():
        m = _PHEN_KEY.match(k)
        if m:
            groups.setdefault(m.group(1).rstrip("."), {})[(m.group(2), int(m.group(3)))] = v
    out = {}
    for prefix, parts in groups.items():
        n = 1 + max(i for kind, i in parts if kind == "weights")
        ws = [parts[("weights", i)] for i in range(n)]
        bank = ws[0].dim() == 3
        dims = [w.shape[-2] for w in ws] + [ws[-1].shape[-1]]
        phen = Phenotype(dims[0], dims[1:-1], n_units=ws[0].shape[0] if bank else None)
        with torch.no_grad():
            for i in range(n):
                phen.weights[i].copy_(ws[i])
                phen.biases[i].copy_(parts[("biases", i)])
        out[prefix or "phenotype"] = phen
    if not out:
        raise RayclError("no phenotype parameters (…weights.N / …biases.N) found in this checkpoint")
    return out
