"""Sampling-time table (dissertation Table 3.1): every strategy selects b samples from the
same unlabeled pool with the same trained model; median wall seconds over repeats.

The offline pool is the digits resized to `size` and tiled (each copy with its own noise)
to `pool + labeled` images; the model is the DAL-OSR M2 network for that size (LeNet encoder
at 28x28, VGG16 at 32x32), trained briefly on the labeled part."""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from raycl.active.models import make_model
from raycl.active.query import QueryContext
from raycl.active.strategies import STRATEGIES, make_strategy
from raycl.active.config import ActiveTrainConfig
from raycl.active.train import fit, seeded_generator
from raycl.data import load, to_common
from raycl.host import pick_device
from raycl.provenance import record

VALIDATION = 200  # held-out images beside the pool (the Weibull threshold=val reading uses them)

ALL = ["random", "uncertainty", "weibull", "weibull:threshold=0.25", "weibull:threshold=val,balance=1", "coreset",
       "mc-dropout", "dbal", "ensemble", "vaal", "batchbald", "waal"]


def timing_pool(n: int, size: int, seed: int):
    channels = 3 if size >= 32 else 1
    base = to_common(load("digits"), size=size, channels=channels)
    g = torch.Generator().manual_seed(seed)
    reps = -(-n // len(base))
    images = base.images.repeat(reps, 1, 1, 1)[:n]
    images = (images + 0.05 * torch.randn(images.shape, generator=g)).clamp_(0, 1)
    return images, base.labels.repeat(reps)[:n]


def sampling_time(pool: int = 10000, labeled: int = 100, budget: int = 100, size: int = 28, repeats: int = 2,
                  strategies: list[str] | None = None, device: str | None = None, seed: int = 0,
                  train_steps: int = 150, progress: bool = False) -> dict:
    strategies = strategies or ALL
    dev = pick_device(device)
    rng = np.random.default_rng(seed)
    images, labels = timing_pool(pool + labeled + VALIDATION, size, seed)
    order = rng.permutation(len(images))
    lab, unl = np.sort(order[:labeled]), np.sort(order[labeled:labeled + pool])
    val_images = images[torch.as_tensor(np.sort(order[labeled + pool:]))]  # threshold=val reads it
    cfg = ActiveTrainConfig(epochs=1, min_steps=train_steps, eval_every=10 ** 6, patience=0)
    torch.manual_seed(seed)

    def train_fresh(s: int):
        m = make_model("vnn", tuple(images.shape[1:]), 10, variant="M2")
        val = torch.as_tensor(lab[: min(200, len(lab))])
        return fit(m, images[torch.as_tensor(lab)], labels[torch.as_tensor(lab)], images[val], labels[val], cfg, dev,
                   seeded_generator(s))[0]

    model = train_fresh(seed)
    ctx_args = dict(model=model, images=images, labeled=lab, labels=labels[torch.as_tensor(lab)].numpy(),
                    unlabeled=unl, num_classes=10, device=dev, train_fresh=train_fresh, validation=val_images)
    strats = {spec: make_strategy(spec) for spec in strategies}
    times: dict[str, list[float]] = {spec: [] for spec in strategies}
    rounds = range(repeats + 1)
    if progress:
        from tqdm import tqdm

        rounds = tqdm(rounds, desc="timing rounds (first is warm-up)", unit="round")
    # rounds interleave the strategies so a change in machine load hits them all alike
    for r in rounds:
        for spec, strat in strats.items():
            ctx = QueryContext(**ctx_args)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            picked = strat.select(ctx, budget, np.random.default_rng([seed, r]))
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if r:  # round 0 warms up (allocator, lazy imports) and is not counted
                times[spec].append(time.perf_counter() - t0)
            assert len(set(picked.tolist())) == budget
    out = {spec: {"seconds": statistics.median(t), "min_seconds": min(t), "per_sample_ms": 1000 * statistics.median(t) / budget}
           for spec, t in times.items()}
    result = {"pool": pool, "labeled": labeled, "budget": budget, "image_size": size, "repeats": repeats,
              "device": str(dev), "torch_threads": torch.get_num_threads(), "strategies": out,
              "provenance": record(pool=[images, labels])}  # as an ImageSet of them hashes
    if "weibull" in out and "uncertainty" in out:
        result["weibull_over_uncertainty"] = out["weibull"]["seconds"] / out["uncertainty"]["seconds"]
        # the same ratio within each round, then the median: robust to load that drifts between rounds
        result["weibull_over_uncertainty_paired"] = statistics.median(
            w / u for w, u in zip(times["weibull"], times["uncertainty"]))
    return result


assert set(s.split(":")[0] for s in ALL) == set(STRATEGIES)
