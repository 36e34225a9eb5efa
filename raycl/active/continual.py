"""Continual active learning with DANs: a next step the dissertation proposes (§3.5), where
DALBT's encoder is made of DAN layers whose frozen hyper-trained phenotype lets it learn each
newly labelled class without retraining from scratch and without replay.

Per seed the classes come in a random order, `classes_per_stage` at a time. At stage s the
unlabeled pool holds the (unlabeled) training images of every class seen so far; the learner
queries `budget` of them (stage 0 at random, later with `strategy` and its own model), the
oracle labels them, and the learner learns:

  dan         DALBT with a DANEncoder: the hyper-trained φ frozen, SGD on synapses, classifier
              and projector, on the stage's new labels only; its weights carry over
  dan-random  the same with a random frozen φ: a gain of `dan` over it is the phenotype's
  finetune    DALBT (its CNN encoder) trained on the new labels only; weights carry over
  scratch     a fresh DALBT each stage, trained on every label so far (the usual active loop)

Accuracy is over the test images of the classes seen so far, argmax over those classes; the
first stage's classes are reported apart (forgetting). Every learner uses plain SGD with the
rate and epochs tuned for it on the validation split of the tuning seeds (same grid, same effort).
Pure: no Ray, no files (`experiment` takes a raycl.runner.Runner).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict

import numpy as np
import torch

from raycl import RayclError
from raycl.active.config import LEARNERS, ContinualConfig
from raycl.active.pools import ActiveData, Pools
from raycl.active.query import QueryContext

CONTINUAL = ("dan", "dan-random", "finetune")  # learn only the new labels, no replay


def dan_architecture(ckpt: dict) -> dict:
    """The DAN encoder a hyper-training checkpoint's phenotype was trained in: image size,
    hidden widths (read off the saved synapses), channels, sharing, phenotype sizes."""
    from raycl.hyper.config import HyperConfig

    cfg = HyperConfig.from_dict(ckpt["config"])
    if cfg.model != "dan" or cfg.mode != "supervised":
        raise RayclError(f"a continual DAN learner needs a supervised DAN hyper-training; this run has model "
                         f"'{cfg.model}', mode '{cfg.mode}'")
    theta0 = ckpt["theta0"]
    n_layers = len([k for k in theta0 if k.startswith("layers.") and k.endswith(".weight")])
    n_layers -= 1 if cfg.readout == "dan" else 0  # the output DANs are not features
    hidden = [int(theta0[f"layers.{k}.weight"].shape[1]) // cfg.n_channels for k in range(n_layers)]
    return {"image_size": cfg.image_size, "hidden": hidden, "n_channels": cfg.n_channels, "sharing": cfg.sharing,
            "phenotype_hidden": list(cfg.phenotype_hidden)}


def make_learner(kind: str, shape, n_classes: int, cfg: ContinualConfig, arch: dict | None = None,
                 phi: dict | None = None, generator: torch.Generator | None = None):
    from raycl.active.models import BarlowTwinsNet, DANEncoder

    if kind not in LEARNERS:
        raise RayclError(f"unknown learner '{kind}'; choose from {', '.join(LEARNERS)}")
    encoder = None
    if kind.startswith("dan"):
        if arch is None or (kind == "dan" and phi is None):
            raise RayclError("the dan learners need a hyper-trained phenotype: give --phenotype RUN")
        encoder = DANEncoder(**arch, phi=phi if kind == "dan" else None, generator=generator)
    return BarlowTwinsNet(shape, n_classes, encoder=encoder, gamma=cfg.bt_weight, projector=cfg.projector)


def learn(model, images: torch.Tensor, labels: torch.Tensor, epochs: int, batch_size: int, lr: float,
          generator: torch.Generator, clip: float = 0.0) -> int:
    """`epochs` passes of plain SGD over (images, labels), gradient norm clipped at `clip`
    (0: not clipped); returns the number of updates."""
    from raycl.guard import DivergenceGuard

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr)
    guard = DivergenceGuard("continual active learning loss", "lower the --lrs", start=math.log(10))
    model.train()
    n, steps = len(images), 0
    for epoch in range(epochs):
        order = torch.randperm(n, generator=generator)
        for i in range(0, n, batch_size):
            b = order[i:i + batch_size]
            if len(b) < 2:  # batch norm in the projector needs two samples
                continue
            loss, _ = model.loss(images[b], labels[b])
            guard.check(loss.item(), f"epoch {epoch + 1}, lr {lr}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if clip > 0:
                torch.nn.utils.clip_grad_norm_(params, clip)
            opt.step()
            steps += 1
    return steps


@torch.no_grad()
def seen_accuracy(model, images: torch.Tensor, labels: torch.Tensor, seen: np.ndarray, of=None) -> float:
    """Accuracy on the images of the classes `of` (default: all `seen`), argmax over the seen classes."""
    from raycl.active.train import predict

    keep = torch.as_tensor(np.isin(labels.numpy(), seen if of is None else of))
    if not keep.any():
        return float("nan")
    probs, _ = predict(model, images[keep], torch.device("cpu"))
    seen_t = torch.as_tensor(np.sort(seen))
    pred = seen_t[probs[:, seen_t].argmax(1)]
    return float((pred == labels[keep]).float().mean())


def run(data: ActiveData, learner: str, seed: int, cfg: ContinualConfig, lr: float, epochs: int,
        arch: dict | None = None, phi: dict | None = None, evaluate_on: str = "test") -> list[dict]:
    """One learner's continual active-learning run (SGD rate `lr`, `epochs` passes a stage):
    one row per stage."""
    from raycl.active.strategies import make_strategy
    from raycl.active.train import seed_everything, seeded_generator

    rng = seed_everything(seed)
    gen = seeded_generator(seed)
    pool, n_classes = data.pool, data.num_classes
    truth = pool.labels.numpy()
    order = rng.permutation(n_classes)
    per = cfg.classes_per_stage
    if per < 1 or per > n_classes:
        raise RayclError(f"--classes-per-stage must be in 1..{n_classes}, got {per}")
    stages = [order[i:i + per] for i in range(0, n_classes, per)]
    chooser = make_strategy(cfg.strategy)
    arrived_first = np.flatnonzero(np.isin(truth, stages[0]))
    first = rng.choice(arrived_first, size=min(cfg.budget, len(arrived_first)), replace=False)
    pools = Pools(len(pool), first, truth[first])
    new = first
    evaluation = data.test if evaluate_on == "test" else data.val
    model = make_learner(learner, pool.shape, n_classes, cfg, arch, phi, gen)
    rows = []
    for s, arrived in enumerate(stages):
        seen = np.concatenate(stages[:s + 1])
        t0 = time.perf_counter()
        if s > 0:  # query this stage's labels among the unlabeled images of the classes seen so far
            candidates = pools.unlabeled[np.isin(truth[pools.unlabeled], seen)]
            b = min(cfg.budget, len(candidates))
            ctx = QueryContext(model=model, images=pool.images, labeled=pools.labeled, labels=pools.labels,
                               unlabeled=candidates, num_classes=n_classes, validation=data.val.images)
            new = np.asarray(chooser.select(ctx, b, rng), dtype=np.int64)
            pools.add(new, truth[new])
        select_s = time.perf_counter() - t0
        if learner == "scratch":
            model = make_learner(learner, pool.shape, n_classes, cfg, arch, phi, gen)
            idx = pools.labeled
        else:
            idx = new
        t0 = time.perf_counter()
        steps = learn(model, pool.images[torch.as_tensor(idx)], torch.as_tensor(truth[idx]), epochs, cfg.batch_size,
                      lr, gen, cfg.clip)
        rows.append({
            "learner": learner, "seed": seed, "stage": s, "classes_seen": len(seen),
            "new_classes": ",".join(str(int(c)) for c in arrived),
            "labels": len(pools.labeled), "stage_labels": len(new), "trained_on": len(idx),
            "new_class_labels": int(np.isin(truth[new], arrived).sum()),
            "accuracy": seen_accuracy(model, evaluation.images, evaluation.labels, seen),
            "first_classes_accuracy": seen_accuracy(model, evaluation.images, evaluation.labels, seen, stages[0]),
            "updates": steps, "sample_gradients": steps * cfg.batch_size,
            "train_seconds": time.perf_counter() - t0, "selection_seconds": select_s, "lr": lr, "epochs": epochs,
        })
    return rows


def tune_score(data: ActiveData, learner: str, cfg: ContinualConfig, lr: float, epochs: int, seed: int, arch=None,
               phi=None) -> float:
    """One setting's score on a tuning seed: the last stage's validation accuracy (-inf when
    the loss diverges with it)."""
    try:
        return run(data, learner, seed, cfg, lr, epochs, arch, phi, evaluate_on="val")[-1]["accuracy"]
    except RayclError:
        return -math.inf


# --- jobs (module-level, so a Runner can ship them to Ray) ------------------------------------

def tune_job(scenario, learner: str, cfg: ContinualConfig, lr: float, epochs: int, seed: int, arch, phi) -> float:
    return tune_score(scenario.build(seed), learner, cfg, lr, epochs, seed, arch, phi)


def run_job(scenario, learner: str, seed: int, cfg: ContinualConfig, lr: float, epochs: int, arch, phi) -> list[dict]:
    try:
        return run(scenario.build(seed), learner, seed, cfg, lr, epochs, arch, phi)
    except RayclError as e:
        raise RayclError(f"{learner}, seed {seed}, with its tuned lr {lr} and {epochs} epochs: {e}") from None


def experiment(scenario, learners: list[str], seeds: list[int], cfg: ContinualConfig, phenotypes: list[dict],
               runner) -> dict:
    """Tune every learner's rate, then run every (learner, seed) as a job of `runner`. Seed i
    deploys phenotypes[i % len]; tuning uses the first. Returns tuning results and all rows."""
    if not cfg.lrs or not all(lr > 0 for lr in cfg.lrs):
        raise RayclError(f"--lrs must be positive rates, got {','.join(map(str, cfg.lrs))}")
    if not cfg.epochs or not all(e >= 1 for e in cfg.epochs):
        raise RayclError(f"--epochs must be counts >= 1, got {','.join(map(str, cfg.epochs))}")
    archs = [p["arch"] for p in phenotypes] or [None]
    phis = [p["phi"] for p in phenotypes] or [None]
    scen, cfg_ref = runner.put(scenario), runner.put(cfg)
    grid = [(name, lr, ep) for name in learners for lr in cfg.lrs for ep in cfg.epochs]
    tune_seeds = range(cfg.tune_seed, cfg.tune_seed + cfg.tune_seeds)
    scores = runner.gather([runner.submit(tune_job, scen, name, cfg_ref, lr, ep, s, archs[0], phis[0])
                            for name, lr, ep in grid for s in tune_seeds], desc="tuning")
    mean = [float(np.mean(scores[i:i + cfg.tune_seeds])) for i in range(0, len(scores), cfg.tune_seeds)]
    tuned = {name: {"scores": {(lr, ep): sc for (n, lr, ep), sc in zip(grid, mean) if n == name}}
             for name in learners}
    for t in tuned.values():
        t["lr"], t["epochs"] = max(t["scores"], key=t["scores"].get)
    jobs = [(name, seed, i % len(archs)) for i, seed in enumerate(seeds) for name in learners]
    handles = [runner.submit(run_job, scen, name, seed, cfg_ref, tuned[name]["lr"], tuned[name]["epochs"], archs[k],
                             phis[k])
               for name, seed, k in jobs]
    rows = []
    for i, result in runner.as_completed(handles, desc="continual runs"):
        for r in result:
            r["phenotype"] = jobs[i][2] if jobs[i][0] == "dan" else -1
        rows.extend(result)
    return {"config": asdict(cfg), "tuning": {k: {"lr": v["lr"], "epochs": v["epochs"],
                                                  "scores": {f"lr {lr} epochs {ep}": sc
                                                             for (lr, ep), sc in v["scores"].items()}}
                                              for k, v in tuned.items()}, "rows": rows}


def summarize(rows: list[dict]) -> dict:
    """Per learner and stage: mean and sample std (ddof 1) over seeds of accuracy,
    first-classes accuracy, labels and updates; n = seeds."""
    import pandas as pd

    from raycl.stats import describe

    df = pd.DataFrame(rows)
    out = {}
    for learner, g in df.groupby("learner", sort=False):
        stages = []
        for stage, h in g.groupby("stage"):
            stages.append({"stage": int(stage), "classes_seen": int(h["classes_seen"].iloc[0]),
                           **{k: describe(h[k].to_numpy()) for k in
                              ("accuracy", "first_classes_accuracy", "labels", "trained_on", "updates",
                               "train_seconds")}})
        out[learner] = stages
    return out


def against_dan(rows: list[dict], metric: str = "accuracy") -> dict:
    """The hyper-trained phenotype's claim, measured over phenotypes (the trained things): per
    other learner, dan minus it at the last stage, paired by seed, averaged within each
    phenotype, then raycl.stats.paired over the phenotypes (n = phenotypes; with one
    phenotype, n = 1 and no spread)."""
    import pandas as pd

    from raycl.stats import paired

    df = pd.DataFrame(rows)
    last = df[df["stage"] == df["stage"].max()]
    dan = last[last["learner"] == "dan"].set_index("seed")
    if dan.empty:
        return {}
    out = {}
    for other in [n for n in dict.fromkeys(last["learner"]) if n != "dan"]:
        o = last[last["learner"] == other].set_index("seed")
        seeds = dan.index.intersection(o.index)
        by_phenotype = pd.DataFrame({"phenotype": dan.loc[seeds, "phenotype"], "dan": dan.loc[seeds, metric],
                                     "other": o.loc[seeds, metric]}).groupby("phenotype").mean()
        out[other] = {**paired(by_phenotype["dan"], by_phenotype["other"]),
                      "phenotypes": len(by_phenotype), "seeds": len(seeds)}
    return out


def figure(rows: list[dict], title: str = ""):
    """Accuracy on the seen classes and on the first stage's classes against labels used, and
    the updates each stage cost, per learner, ± sample std over seeds."""
    import pandas as pd

    from raycl.plots import mean_curves, pyplot
    from raycl.stats import what

    df = pd.DataFrame(rows)
    fig, axes = pyplot().subplots(1, 3, figsize=(14, 4.2))
    n = sorted(set(df.groupby("learner")["seed"].nunique()))
    for ax, y, label in ((axes[0], "accuracy", "test accuracy, seen classes (%)"),
                         (axes[1], "first_classes_accuracy", "test accuracy, first stage's classes (%)")):
        mean_curves(ax, df, "learner", "labels", y, at="stage", scale=100, marker="o", ms=3)
        ax.set_xlabel(f"labels used (band: {what('seeds', '/'.join(map(str, n)))})", fontsize=8)
        ax.set_ylabel(label)
    mean_curves(axes[2], df, "learner", "stage", "updates", marker="o", ms=3)
    axes[2].set_xlabel("stage")
    axes[2].set_ylabel("SGD updates in the stage")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
