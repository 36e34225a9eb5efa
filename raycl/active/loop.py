"""The pool-based active-learning loop (Algorithm 2 / 3), pure: no Ray, no files.

Per stage: train a model on the labeled pool (fresh, or warm-started from the last stage),
keep its best state on the validation split, report the test split once, then let the
strategy pick b unlabeled samples and the oracle label them. Out-of-distribution picks are
refused: the query is spent, the sample returns to the pool. The number of stages is fixed
by the label budget: enough queries to label `target` of the in-distribution pool with an
exact oracle."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from raycl import RayclError
from raycl.active.models import make_model
from raycl.active.oracle import NoisyOracle, Oracle
from raycl.active.pools import ActiveData, Pools, initial_labeled
from raycl.active.query import QueryContext
from raycl.active.strategies import make_strategy
from raycl.active.config import ActiveTrainConfig
from raycl.active.train import accuracy, fit, seed_everything, seeded_generator
from raycl.host import pick_device


@dataclass
class LoopConfig:
    model: str = "vnn"  # vnn (DAL-OSR) | dalbt
    model_options: dict = field(default_factory=dict)  # e.g. {"variant": "M1", "latent": 60}
    initial: int = 50  # |L0|
    budget: int = 50  # b, queries per stage
    target: float = 0.4  # label budget: fraction of the in-distribution pool
    stages: int | None = None  # override the number of query stages
    warm_start: bool = True  # measured a third cheaper than a fresh model a stage, and not less accurate (docs/results/active.md)
    remove_classes: int = 0  # biased initial pool
    noise: float = 0.0  # noisy oracle: fraction of labels flipped within a superclass
    superclasses: np.ndarray | None = None  # superclass of each class (noisy oracle)
    train: ActiveTrainConfig = field(default_factory=ActiveTrainConfig)
    device: str | None = None


def query_stages(cfg: LoopConfig, in_distribution: int) -> int:
    if cfg.stages is not None:
        return int(cfg.stages)
    want = int(round(cfg.target * in_distribution)) - cfg.initial
    return max(0, math.ceil(want / cfg.budget))


def make_oracle(data: ActiveData, cfg: LoopConfig, rng: np.random.Generator) -> Oracle:
    truth = data.pool.labels.numpy()
    if cfg.noise > 0:
        if cfg.superclasses is None:
            raise RayclError("a noisy oracle flips labels within superclasses: use a dataset with coarse labels "
                             "(cifar100) or give --superclasses '0,6,8,9;1,4,7;2,3,5'")
        return NoisyOracle(truth, cfg.superclasses, cfg.noise, rng)
    return Oracle(truth)


def run(data: ActiveData, strategy: str, seed: int, cfg: LoopConfig,
        progress: Callable[[dict], None] | None = None) -> list[dict]:
    """One active-learning run; returns one row per stage."""
    rng = seed_everything(seed)
    device = pick_device(cfg.device)
    chooser = make_strategy(strategy)
    pool, n_classes = data.pool, data.num_classes
    oracle = make_oracle(data, cfg, rng)
    first = oracle(initial_labeled(data, cfg.initial, rng, cfg.remove_classes))
    pools = Pools(len(pool), first.labeled, first.labels)
    n_in = int((~data.ood).sum())
    stages = query_stages(cfg, n_in)
    gen = seeded_generator(seed)

    def train(model=None, generator=gen):
        model = model or make_model(cfg.model, pool.shape, n_classes, **cfg.model_options)
        lab = torch.as_tensor(pools.labeled)
        return fit(model, pool.images[lab], torch.as_tensor(pools.labels), data.val.images, data.val.labels,
                   cfg.train, device, generator)

    rows, model = [], None
    last = {"selection_seconds": 0.0, "queried": 0, "ood": 0, "rejected": 0, "threshold": float("nan")}
    ood_total, refused = 0, np.zeros(0, dtype=np.int64)
    for stage in range(stages + 1):
        t0 = time.perf_counter()
        model, info = train(model if cfg.warm_start else None)
        train_s = time.perf_counter() - t0
        row = {
            "strategy": strategy, "seed": seed, "stage": stage,
            "labeled": len(pools.labeled), "labeled_pct": 100.0 * len(pools.labeled) / n_in,
            "accuracy": accuracy(model, data.test.images, data.test.labels, device),
            "val_accuracy": info["val_accuracy"], "best_epoch": info["best_epoch"],
            "trained_epochs": info["trained_epochs"],
            "queries": oracle.queries - cfg.initial, "ood_queries": ood_total,
            "stage_queries": last["queried"], "stage_ood_queries": last["ood"], "weibull_rejected": last["rejected"],
            "weibull_threshold": last["threshold"],
            "selection_seconds": last["selection_seconds"], "train_seconds": train_s,
        }
        rows.append(row)
        if progress:
            progress(row)
        if stage == stages or len(pools.unlabeled) == 0:
            break
        ctx = QueryContext(model=model, images=pool.images, labeled=pools.labeled, labels=pools.labels,
                           unlabeled=pools.unlabeled, num_classes=n_classes, device=device, validation=data.val.images,
                           refused=refused,
                           train_fresh=lambda s: train(generator=seeded_generator(s))[0])
        b = min(cfg.budget, len(ctx.unlabeled))
        t0 = time.perf_counter()
        picked = np.asarray(chooser.select(ctx, b, rng), dtype=np.int64)
        sel_s = time.perf_counter() - t0
        if len(picked) != b or len(np.unique(picked)) != b or not np.isin(picked, ctx.unlabeled).all():
            raise RuntimeError(f"strategy {strategy} returned an invalid query ({len(picked)} indices for b={b})")
        answer = oracle(picked)
        pools.add(answer.labeled, answer.labels)
        ood_total += len(answer.refused)
        refused = np.union1d(refused, answer.refused)
        last = {"selection_seconds": sel_s, "queried": b, "ood": len(answer.refused),
                "rejected": ctx.info.get("rejected", 0), "threshold": ctx.info.get("threshold", float("nan"))}
    return rows
