"""Results of an active-learning experiment: the stage table, summaries over seeds
(raycl.stats.describe: mean ± sample std, ddof = 1, with n), and accuracy-vs-labeled-% curves (like the dissertation's Fig 3.3)."""

from __future__ import annotations

import pandas as pd

from raycl.stats import describe, what


def summarize(df: pd.DataFrame) -> dict:
    """Per strategy, over seeds: final accuracy, final labeled %, OOD queries (total),
    mean selection seconds per stage, the run's compute (training + selection seconds over
    all stages: the time to result of one (strategy, seed)) and the area under the accuracy curve. Each is
    raycl.stats.describe over the seeds: mean, sample std (ddof = 1; NaN, null in JSON, with
    one seed), n, standard error, median, range and 95% interval."""
    out = {}
    for strategy, g in df.groupby("strategy", sort=False):
        last = g.loc[g.groupby("seed")["stage"].idxmax()]
        curve = g.groupby("seed")["accuracy"].mean()
        sel = g[g["stage"] > 0].groupby("seed")["selection_seconds"].mean()
        compute = g.groupby("seed")[["train_seconds", "selection_seconds"]].sum().sum(axis=1)
        out[strategy] = {
            "final_accuracy": describe(last["accuracy"]),
            "final_labeled_pct": describe(last["labeled_pct"]),
            "ood_queries": describe(last["ood_queries"]),
            "queries": describe(last["queries"]),
            "mean_accuracy_over_stages": describe(curve),
            "selection_seconds_per_stage": describe(sel) if len(sel) else None,
            "run_seconds": describe(compute),
            "seeds": sorted(int(s) for s in g["seed"].unique()),
        }
    return out


def main_weibull(names) -> str | None:
    """The Weibull reading the checks evaluate: the first one with a rejection threshold."""
    names = list(names)
    return next((n for n in names if n.startswith("weibull") and "threshold" in n), None) \
        or next((n for n in names if n.startswith("weibull")), None)


def comparisons(summary: dict, weibull: str | None = None, ood: bool = True) -> dict:
    """The DAL-OSR claims, when the strategies ran: Weibull sampling queries fewer OOD
    samples than random and uncertainty sampling (when the pool holds OOD images: `ood`),
    and ends no less accurate than random sampling (on the mean over seeds)."""
    weibull = weibull or main_weibull(summary)
    if weibull is None:
        return {}
    w = summary[weibull]
    out: dict = {"weibull": weibull}
    for base in ("random", "uncertainty"):
        if ood and base in summary:
            out[f"fewer_ood_queries_than_{base}"] = w["ood_queries"]["mean"] < summary[base]["ood_queries"]["mean"]
    if "random" in summary:
        out["final_accuracy_not_below_random"] = w["final_accuracy"]["mean"] >= summary["random"]["final_accuracy"]["mean"]
    return out


def accuracy_figure(df: pd.DataFrame, title: str = ""):
    """Test accuracy against % labeled data per strategy, ± std over seeds (like Fig 3.3), and
    the cumulative out-of-distribution queries per stage where there were any."""
    from raycl.plots import mean_curves, pyplot

    has_ood = df["ood_queries"].max() > 0
    fig, axes = pyplot().subplots(1, 2 if has_ood else 1, figsize=(11 if has_ood else 6, 4.2), squeeze=False)
    ax = axes[0][0]
    order = df.groupby("strategy")["accuracy"].mean().sort_values(ascending=False).index  # legend by accuracy
    mean_curves(ax, df, "strategy", "labeled_pct", "accuracy", at="stage", order=order, scale=100, marker="o", ms=3)
    if has_ood:
        mean_curves(axes[0][1], df, "strategy", "stage", "ood_queries", order=order, band=False, marker="o", ms=3)
    seeds = sorted(set(df.groupby("strategy")["seed"].nunique()))
    ax.set_xlabel(f"% labeled data (band: {what('seeds', '/'.join(map(str, seeds)))})", fontsize=8)
    ax.set_ylabel("test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    if has_ood:
        axes[0][1].set_xlabel("stage")
        axes[0][1].set_ylabel("out-of-distribution queries (cumulative)")
        axes[0][1].grid(alpha=0.3)
        axes[0][1].legend(fontsize=8)
    fig.tight_layout()
    return fig
