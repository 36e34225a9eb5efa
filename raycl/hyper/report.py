"""Deploying a hyper-training run against its baselines and writing its tables and figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from raycl.hyper.config import HyperConfig  # noqa: E402
from raycl.hyper.evaluate import (  # noqa: E402
    EVAL_SEED,
    Contender,
    compare,
    deployment_sets,
    format_differences,
    format_table,
    summarize,
)
from raycl.hyper.models import build_model  # noqa: E402
from raycl.hyper.trainer import load_checkpoint  # noqa: E402
from raycl.runio import read_parquet, save_figure, write_json, write_parquet  # noqa: E402


def deploy_run(run: Path, ds=None, seeds: int = 5, eval_source: str = "digits", eval_root=None,
               criterion: str = "memory", progress: bool = True) -> dict:
    ckpt = load_checkpoint(run)
    cfg = HyperConfig.from_dict(ckpt["config"])
    model, _, _ = build_model(cfg)
    theta0 = ckpt["theta0"]
    contenders = [
        Contender("hyper-trained", model, theta0, ckpt["server"]["phi"]),
        Contender("random phenotype", model, theta0, ckpt["phi0"]),
        Contender("iid replay (500)", model, theta0, ckpt["phi0"], kind="replay"),
    ]
    sets = deployment_sets(cfg, eval_source, eval_root)
    all_rows, summary = [], {"config": cfg.to_dict(), "hyper_epochs": ckpt["epoch"], "seeds": seeds,
                             "criterion": criterion, "eval_source": eval_source, "by_d": {}}
    for d in ds or [cfg.d]:
        rows, chosen = compare(contenders, sets, cfg, d, seeds, criterion=criterion, progress=progress)
        all_rows += rows
        s = summarize(rows, chosen, lower_is_better=cfg.mode == "unsupervised")
        summary["by_d"][str(d)] = {"results": s, "selection": chosen, "table": format_table(s, cfg.mode) + "\n" + format_differences(s, cfg.mode)}
        save_figure(curves_figure(rows, d, cfg.mode), run / f"deployment_d{d}.png")
        if cfg.mode == "unsupervised":
            fig = reconstruction_figure(contenders[0], sets["meta-eval"], cfg, d, chosen[contenders[0].name]["lr"])
            save_figure(fig, run / f"reconstructions_d{d}.png")
    write_parquet(run / "deployment.parquet", all_rows)
    if (run / "hyper_training.parquet").exists():
        save_figure(training_figure(read_parquet(run / "hyper_training.parquet")), run / "hyper_training.png")
    write_json(run / "summary.json", summary)
    return summary


def reconstruction_figure(c: Contender, pool, cfg: HyperConfig, d: int, lr: float):
    """Like Fig 6.4: reconstructions of one instance of every class of a meta-eval sequence,
    after the first task, halfway, and after all d (rows), classes in learning order (columns)."""
    import torch
    from torch.func import functional_call

    from raycl.hyper.deploy import deploy, deployment_streams

    stream = deployment_streams(pool, 1, d, cfg.deploy_i, cfg.deploy_holdout, EVAL_SEED)[0]
    x = stream.train_x[:, 0]
    stages = sorted({1, max(1, d // 2), d})
    shots = {}

    def grab(j, params):
        if j in stages:
            with torch.no_grad():
                shots[j] = functional_call(c.model, params, (x,))

    deploy(c.model, c.theta0, c.phi, stream, cfg.k, lr, cfg.mode, on_task=grab)
    side = cfg.image_size
    fig, axes = plt.subplots(len(stages) + 1, d, figsize=(d * 0.9, (len(stages) + 1) * 0.95), squeeze=False)
    for col in range(d):
        for row, img in enumerate([x] + [shots[j] for j in stages]):
            ax = axes[row][col]
            ax.imshow(img[col].view(side, side), cmap="gray")
            ax.axis("off")
    for row, label in enumerate(["input"] + [f"after {j}" for j in stages]):
        axes[row][0].set_title(label, fontsize=7, loc="left")
    fig.suptitle("deployment reconstructions (classes in learning order)", fontsize=9)
    return fig


def curves_figure(rows: list[dict], d: int, mode: str):
    """Memory and generalization after each deployment task (like Fig 6.3 / 6.10)."""
    import pandas as pd

    df = pd.DataFrame(rows)
    sets = list(dict.fromkeys(df["set"]))
    fig, axes = plt.subplots(2, len(sets), figsize=(4 * len(sets), 6), squeeze=False, sharex=True)
    for col, s in enumerate(sets):
        for row, metric in enumerate(("memory", "generalization")):
            ax = axes[row][col]
            for c, g in df[df["set"] == s].groupby("contender", sort=False):
                m = g.groupby("task")[metric].agg(["mean", "std"])
                ax.plot(m.index, m["mean"], marker="o", ms=3, label=c)
                ax.fill_between(m.index, m["mean"] - m["std"], m["mean"] + m["std"], alpha=0.15)
            ax.set_title(f"{s}: {metric}", fontsize=9)
            ax.set_xlabel("tasks learned")
            ax.set_ylabel("accuracy" if mode == "supervised" else "MSE")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"deployment, d = {d} (mean ± std over seeds)", fontsize=10)
    fig.tight_layout()
    return fig


def training_figure(df):
    """Hyper-training curves: hyper-loss, and memory / generalization at the end of each
    epoch on the models' own streams (like Fig 6.6 / 6.7)."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    for ax, k in zip(axes, ("hyper_loss", "memory", "generalization")):
        for m, g in df.groupby("model"):
            ax.plot(g["epoch"], g[k], alpha=0.35, lw=0.8)
        mean = df.groupby("epoch")[k].mean()
        ax.plot(mean.index, mean.values, color="k", lw=1.5, label="population mean")
        ax.set_title(k.replace("_", " "), fontsize=9)
        ax.set_xlabel("outer epoch")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
