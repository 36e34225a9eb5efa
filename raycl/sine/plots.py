"""Figures of the Chapter 5 run: Fig 5.2 (fits after each sub-task), Fig 5.4/5.5 style
comparisons, meta-training curves."""

from __future__ import annotations

import numpy as np

from raycl.plots import pyplot
from raycl.sine.tasks import subtask_windows, whole_function_grid
from raycl.stats import describe, what


def smooth(v, k: int = 25) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    if len(v) < 2:
        return v
    k = max(1, min(k, len(v)))
    c = np.cumsum(np.insert(v, 0, 0.0))
    head = c[1:k] / np.arange(1, k)
    return np.concatenate([head, (c[k:] - c[:-k]) / k])


def fit_figure(fns, deployed: dict, cfg, n_functions: int = 4):
    """Like Fig 5.2: per function, the fit over the whole function after each sub-task
    (dark = after task 1, cyan = after the last). One row per fixed-phenotype variant."""
    plt = pyplot()
    rows = [v for v in ("meta_fixed", "random_fixed") if v in deployed] or list(deployed)[:1]
    n = min(n_functions, len(fns))
    fig, axes = plt.subplots(len(rows), n, figsize=(3.4 * n, 2.8 * len(rows)), squeeze=False)
    cmap = plt.get_cmap("cool")
    edges = [a for a, _ in subtask_windows(cfg.n_subtasks)][1:]
    for r, v in enumerate(rows):
        for j in range(n):
            ax = axes[r][j]
            gx, gy = whole_function_grid(fns[j], cfg.grid_points)
            ax.plot(gx[:, 0], gy[:, 0], "k", lw=2.2, label="target")
            preds = deployed[v][j]["preds"][1:]
            for t, p in enumerate(preds):
                shade = 0.15 + 0.85 * t / max(1, len(preds) - 1)
                ax.plot(gx[:, 0], p, color=cmap(shade) if t else "navy", lw=1.1, label=f"after task {t + 1}")
            for e in edges:
                ax.axvline(e, color="0.85", lw=0.8)
            mse = deployed[v][j]["total"][-1]
            ax.set_title(f"{v} fn {j}: final MSE {mse:.3f}", fontsize=8)
            ax.set_ylim(-1.3, 1.3)
        axes[r][0].set_ylabel(v)
    axes[0][-1].legend(fontsize=6, loc="lower right")
    fig.suptitle("Deployment: fit over the whole function after each sub-task (synapses learn, φ fixed)", fontsize=10)
    fig.tight_layout()
    return fig


def variants_figure(deployed: dict, names: dict):
    """Like Fig 5.5: (a) whole-function loss before learning and after each task (mean, with
    the inter-quartile band), (b) final whole-function loss per model (box: quartiles,
    whiskers 5-95%, diamond: mean). Log scale: the errors of random phenotypes are
    heavy-tailed."""
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    finals, labels = [], []
    for v, recs in deployed.items():
        tot = np.array([r["total"] for r in recs])
        xs = np.arange(tot.shape[1])
        line, = a.plot(xs, tot.mean(0), marker="o", label=names.get(v, v))
        a.fill_between(xs, *np.percentile(tot, [25, 75], axis=0), alpha=0.12, color=line.get_color())
        finals.append(tot[:, -1])
        labels.append(names.get(v, v).split(":")[0])
    a.set_yscale("log")
    a.set_xlabel("after sub-task (0 = before learning)")
    a.set_ylabel("MSE over the whole function")
    a.set_title("(a) total loss during deployment (mean; band: quartiles)", fontsize=10)
    a.legend(fontsize=7)
    b.boxplot(finals, whis=(5, 95), showmeans=True, meanprops={"marker": "D"})
    b.set_xticks(range(1, len(labels) + 1), labels)
    b.set_yscale("log")
    b.set_ylabel("final whole-function MSE")
    b.set_title(f"(b) after all sub-tasks ({len(finals[0])} unseen functions)", fontsize=10)
    fig.tight_layout()
    return fig


def meta_curve_figure(curves: dict, title: str):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, c in curves.items():
        line, = ax.plot(smooth(c), label=f"{name} (25-epoch mean)")
        ax.plot(c, color=line.get_color(), alpha=0.2, lw=0.7)
    ax.set_xlabel("meta-epoch (one target function each)")
    ax.set_ylabel("memory loss after the last sub-task")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def compare_figure(kind: str, curves: dict, results: dict):
    """Like Fig 5.4 (sharing) or the n_channels sweep: meta-training memory loss (left),
    deployment whole-function MSE with φ fixed (right)."""
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4))
    for name, c in curves.items():
        a.plot(smooth(c), label=f"{kind} {name}")
    a.set_xlabel("meta-epoch")
    a.set_ylabel("memory loss (25-epoch mean)")
    a.set_title("meta-training", fontsize=10)
    a.legend(fontsize=8)
    keys = list(results)
    b.bar(keys, [results[k]["whole_function_mse"]["mean"] for k in keys],
          yerr=[results[k]["whole_function_mse"]["std"] for k in keys], capsize=4)
    b.set_xlabel(kind)
    b.set_ylabel("deployment whole-function MSE")
    n = sorted({results[k]["whole_function_mse"]["n"] for k in keys})
    b.set_title(f"deployment, φ fixed\n({what('unseen functions', '/'.join(map(str, n)))})", fontsize=9)
    fig.tight_layout()
    return fig


def seeds_figure(per_seed: list[dict], names: dict):
    """Independent repeats: (a) per unseen function, random φ0 against meta-learned φ* (both
    fixed; below the diagonal = meta-learned forgets less), one colour per seed; (b) per variant,
    every seed's mean whole-function MSE (dots) and the mean over seeds (bar)."""
    plt = pyplot()
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.5))
    lo, hi = np.inf, 0.0
    for s in per_seed:
        dep = s["deployment"]
        if {"meta_fixed", "random_fixed"} <= set(dep):
            m = np.asarray(dep["meta_fixed"]["per_function"]["whole_function_mse"])
            r = np.asarray(dep["random_fixed"]["per_function"]["whole_function_mse"])
            a.scatter(r, m, s=14, alpha=0.8, label=f"seed {s['seed']}")
            lo, hi = min(lo, m.min(), r.min()), max(hi, m.max(), r.max())
    if hi > 0:
        a.plot([lo, hi], [lo, hi], color="0.5", lw=0.8)
        a.set_xscale("log")
        a.set_yscale("log")
        a.legend(fontsize=7)
    a.set_xlabel("random φ0, fixed: whole-function MSE")
    a.set_ylabel("meta-learned φ*, fixed: whole-function MSE")
    a.set_title("(a) per unseen function (below the line: meta-learned better)", fontsize=10)
    variants = [v for v in per_seed[0]["deployment"] if v != "variant_names"]
    means = np.array([[s["deployment"][v]["whole_function_mse"]["mean"] for s in per_seed] for v in variants])
    xs = np.arange(len(variants))
    spread = [describe(row) for row in means]
    b.bar(xs, [d["mean"] for d in spread], color="0.85", capsize=4,
          yerr=[d["std"] for d in spread] if means.shape[1] > 1 else None)
    for j in range(means.shape[1]):
        b.scatter(xs, means[:, j], s=14, zorder=3)
    b.set_xticks(xs, [names.get(v, v).split(":")[0] for v in variants])
    b.set_yscale("log")
    b.set_ylabel("per-seed mean whole-function MSE")
    b.set_title(f"(b) per-seed means (dots); bars: {what('seeds', len(per_seed))}", fontsize=9)
    fig.tight_layout()
    return fig
