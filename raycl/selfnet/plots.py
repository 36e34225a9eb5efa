"""Figures in the manner of the dissertation's Fig 2.2, 2.3, 2.4/2.5 and 2.7 (matplotlib, Agg)."""

from __future__ import annotations

import pandas as pd

from raycl.plots import pyplot
from raycl.selfnet.baselines import BASELINE_NAMES


def continual(rows: list[dict], title: str):
    """Mean accuracy over all tasks seen, after every stage (Fig 2.4 / 2.5). A baseline keeps
    its colour in both forms: solid with the shared head, dashed with a head per task."""
    df = pd.DataFrame(rows)
    fig, ax = pyplot().subplots(figsize=(9, 4.5))
    colours: dict[str, str] = {}
    for method, g in df.groupby("method", sort=False):
        curve = g.groupby("stage")["accuracy"].mean()
        base, _, form = method.partition(":")
        if method == "selfnet":
            ax.plot(curve.index + 1, curve.values * 100, "o-", color="k", ms=3, lw=2, label="Self-Net (recollections)")
            orig = g.groupby("stage")["original_acc"].mean()
            ax.plot(orig.index + 1, orig.values * 100, "k:", lw=1, label="independent networks (originals)")
            continue
        label = BASELINE_NAMES.get(base, base) + (f" ({form})" if form else "")
        line, = ax.plot(curve.index + 1, curve.values * 100, "--" if form else "-", color=colours.get(base),
                        label=label)
        colours.setdefault(base, line.get_color())
    ax.set_xlabel("stage (tasks learned)")
    ax.set_ylabel("mean accuracy over tasks seen (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def scaling(rows: list[dict], fits: list[dict], single_batch: float | None, title: str):
    """Fig 2.3: accuracy against compression factor at every consolidation; AE updates per stage."""
    df = pd.DataFrame(rows)
    df = df[df.method == "selfnet"]
    fig, (a, b) = pyplot().subplots(2, 1, figsize=(7, 6))
    stages = [f["stage"] for f in fits]
    at = df[df.stage.isin(stages)].groupby("stage")
    cf = at["compression_factor"].first()
    a.plot(cf.values, at["accuracy"].mean().values * 100, "o-", label="Self-Net (continual)")
    a.plot(cf.values, at["original_acc"].mean().values * 100, "s-", color="tab:orange", label="original networks")
    if single_batch is not None:
        a.axhline(single_batch * 100, color="tab:green", ls="--", label="AE trained on all networks at once")
    a.set_xlabel("compression factor k / s")
    a.set_ylabel("mean accuracy (%)")
    a.set_title(title, fontsize=9)
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    b.bar(range(1, len(fits) + 1), [f["iterations"] for f in fits])
    b.set_xlabel("consolidation")
    b.set_ylabel("AE updates (to threshold, or the cap)")
    b.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def scaling_seeds(consolidated: pd.DataFrame, single_batch: list[float], title: str):
    """Fig 2.3 over seeds: accuracy after every consolidation against the compression factor,
    mean ± sample std over the seeds (`consolidated`: experiments.after_consolidations)."""
    by = consolidated.groupby("compression_factor")
    fig, ax = pyplot().subplots(figsize=(7, 4))
    for col, style, label in (("accuracy", "o-", "Self-Net (continual)"), ("original_acc", "s-", "original networks")):
        m, sd = by[col].mean() * 100, by[col].std(ddof=1).fillna(0) * 100
        ax.errorbar(m.index, m.values, yerr=sd.values, fmt=style, capsize=3, label=label)
    if single_batch:
        mean = sum(single_batch) / len(single_batch) * 100
        ax.axhline(mean, color="tab:green", ls="--", label="AE trained on all networks at once (mean)")
    ax.set_xlabel("compression factor k / s")
    ax.set_ylabel("mean accuracy over tasks seen (%)")
    ax.set_title(f"{title}; bars: sample std over {consolidated.seed.nunique()} seeds", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def robustness(rows: list[dict], threshold: float, title: str):
    """Fig 2.2: accuracy of noisy copies against their cosine similarity to the original."""
    df = pd.DataFrame(rows)
    fig, ax = pyplot().subplots(figsize=(7, 4))
    ax.scatter((1 - df.cosine).clip(lower=1e-7), df.accuracy * 100, s=8, alpha=0.6, c=df.network, cmap="tab10")
    for acc in df.groupby("network")["original_acc"].first():
        ax.axhline(acc * 100, color="gray", ls=":", lw=0.8)
    ax.axvline(1 - threshold, color="red", lw=1, label=f"cosine {threshold}")
    ax.set_xscale("log")
    ax.invert_xaxis()  # closer to the original to the right
    ax.set_xlabel("1 − cosine similarity to the original weights (log)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def multi_arch(curves: dict[str, list[float]], rows: list[dict], title: str):
    """Fig 2.7: (left) mean cosine against AE updates; (right) originals vs recollections per network."""
    fig, (a, b) = pyplot().subplots(1, 2, figsize=(11, 4))
    for name, h in curves.items():
        a.plot(range(len(h)), h, label=name)
    a.set_xlabel("AE updates")
    a.set_ylabel("mean cosine similarity")
    a.set_ylim(max(0.0, min(min(h) for h in curves.values())), 1.0)
    a.legend(fontsize=7)
    a.grid(alpha=0.3)
    df = pd.DataFrame(rows)
    x = range(len(df))
    b.bar([i - 0.2 for i in x], df.original_acc * 100, 0.4, label="original")
    b.bar([i + 0.2 for i in x], df.reconstructed_acc * 100, 0.4, label="recollection")
    b.set_xticks(list(x), [f"{r.arch}\n{r.task_name[:10]}" for r in df.itertuples()], fontsize=6)
    b.set_ylabel("accuracy (%)")
    b.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
