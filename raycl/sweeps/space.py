"""What a sweep varies: the over-training settings of §6.4.3 (and a grid around them) and
the model sizes of §6.4.5. Pure: each setting is a name and a full HyperConfig dict."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from raycl import RayclError
from raycl.hyper.config import PRESETS, HyperConfig, preset

# §6.4.3: (i, h_CL, h_H) with d = 3, from the overtrain-N presets (which also fix the
# held-out instances per class that 20 drawings per class leave room for)
OVERTRAINING_PRESETS = ("overtrain-1", "overtrain-2", "overtrain-3", "overtrain-4")
STREAM_FIELDS = ("i", "h_cl", "h_h", "d", "holdout")

# §6.4.5: populations of 5 models of 25M / 75M / 200M parameters; `cpu` is the same trend
# at sizes a laptop runs in minutes
SCALE_SIZES = {
    "paper": (25_000_000, 75_000_000, 200_000_000),
    "cpu": (20_000, 60_000, 200_000),
    "tiny": (2_000, 5_000),
}
SCALE_POPULATION = 5
INSTANCES_PER_CLASS = 20  # glyphs and Omniglot: 20 drawings per class


@dataclass(frozen=True)
class Setting:
    name: str
    hyper: dict  # HyperConfig.to_dict()

    @property
    def config(self) -> HyperConfig:
        return HyperConfig.from_dict(self.hyper)


def _base(name: str, overrides: dict) -> HyperConfig:
    if name not in PRESETS:
        raise RayclError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}")
    return preset(name, **overrides)


def stream_name(i: int, h_cl: int, h_h: int) -> str:
    return f"i={i} h_CL={h_cl} h_H={h_h}"


def overtraining_settings(base: str = "default", grid: dict | None = None, **overrides) -> list[Setting]:
    """The four §6.4.3 settings on top of preset `base` (its model, k, epochs...), or, with
    `grid` = {"i": [...], "h_cl": [...], "h_h": [...]}, every combination with h_CL <= h_H."""
    cfg = _base(base, overrides)
    out = []
    if grid:
        missing = [k for k in ("i", "h_cl", "h_h") if not grid.get(k)]
        if missing:
            raise RayclError(f"a grid needs values for i, h_cl and h_h (missing: {', '.join(missing)})")
        for i, h_cl, h_h in itertools.product(grid["i"], grid["h_cl"], grid["h_h"]):
            if h_cl > h_h:
                continue
            holdout = max(0, min(cfg.holdout, INSTANCES_PER_CLASS - i))
            out.append(Setting(stream_name(i, h_cl, h_h),
                               cfg.with_(i=i, h_cl=h_cl, h_h=h_h, d=3, holdout=holdout).to_dict()))
        if not out:
            raise RayclError("the grid has no combination with h_cl <= h_h")
    else:
        for name in OVERTRAINING_PRESETS:
            p = PRESETS[name]
            s = cfg.with_(**{k: getattr(p, k) for k in STREAM_FIELDS})
            out.append(Setting(stream_name(s.i, s.h_cl, s.h_h), s.to_dict()))
    return out


def scale_settings(base: str = "default", sizes: str | None = "cpu", params: list[int] | None = None,
                   population: int = SCALE_POPULATION, **overrides) -> list[Setting]:
    """One setting per parameter count (per model), all with `population` models."""
    if params:
        targets = tuple(int(p) for p in params)
    elif sizes in SCALE_SIZES:
        targets = SCALE_SIZES[sizes]
    else:
        raise RayclError(f"unknown sizes '{sizes}'; choose one of: {', '.join(SCALE_SIZES)}, or pass --params")
    cfg = _base(base, {**overrides, "population": population})
    return [Setting(f"{_short(t)} params", cfg.with_(target_params=t).to_dict()) for t in targets]


def _short(n: int) -> str:
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div:
            return f"{n / div:g}{unit}"
    return str(n)


def bundles(hyper: dict, backend: str, driver_cpus: float, cpus_per_model: float, gpus_per_model: float) -> list[dict]:
    """A trial's placement-group bundles: the trial driver, then one per model (Ray backend).
    The reference backend runs the whole population inside the trial driver."""
    def bundle(cpu, gpu):
        return {"CPU": cpu, **({"GPU": gpu} if gpu else {})}

    if backend == "reference":
        return [bundle(driver_cpus, gpus_per_model)]
    return [bundle(driver_cpus, 0)] + [bundle(cpus_per_model, gpus_per_model)] * hyper["population"]
