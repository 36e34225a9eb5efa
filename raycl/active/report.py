"""Results of an active-learning experiment: the stage table, mean ± std summaries over
seeds, and accuracy-vs-labeled-% curves (like the dissertation's Fig 3.3)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def mean_std(values) -> dict:
    v = np.asarray(list(values), dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "n": int(len(v))}


def summarize(df: pd.DataFrame) -> dict:
    """Per strategy, over seeds: final accuracy, final labeled %, OOD queries (total),
    mean selection seconds per stage, and the area under the accuracy curve."""
    out = {}
    for strategy, g in df.groupby("strategy", sort=False):
        last = g.loc[g.groupby("seed")["stage"].idxmax()]
        curve = g.groupby("seed")["accuracy"].mean()
        sel = g[g["stage"] > 0].groupby("seed")["selection_seconds"].mean()
        out[strategy] = {
            "final_accuracy": mean_std(last["accuracy"]),
            "final_labeled_pct": mean_std(last["labeled_pct"]),
            "ood_queries": mean_std(last["ood_queries"]),
            "queries": mean_std(last["queries"]),
            "mean_accuracy_over_stages": mean_std(curve),
            "selection_seconds_per_stage": mean_std(sel) if len(sel) else None,
            "seeds": sorted(int(s) for s in g["seed"].unique()),
        }
    return out


def main_weibull(names) -> str | None:
    """The Weibull reading the checks evaluate: the first one with a rejection threshold."""
    names = list(names)
    return next((n for n in names if n.startswith("weibull") and "threshold" in n), None) \
        or next((n for n in names if n.startswith("weibull")), None)


def comparisons(summary: dict, weibull: str | None = None) -> dict:
    """The DAL-OSR out-of-distribution claims, when the strategies ran: Weibull sampling
    queries fewer OOD samples than random and uncertainty sampling, and ends no less
    accurate than random sampling (on the mean over seeds)."""
    weibull = weibull or main_weibull(summary)
    if weibull is None:
        return {}
    w = summary[weibull]
    out: dict = {"weibull": weibull}
    for base in ("random", "uncertainty"):
        if base in summary:
            out[f"fewer_ood_queries_than_{base}"] = w["ood_queries"]["mean"] < summary[base]["ood_queries"]["mean"]
    if "random" in summary:
        out["final_accuracy_not_below_random"] = w["final_accuracy"]["mean"] >= summary["random"]["final_accuracy"]["mean"]
    return out


def curves_figure(df: pd.DataFrame, title: str = ""):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    has_ood = df["ood_queries"].max() > 0
    fig, axes = plt.subplots(1, 2 if has_ood else 1, figsize=(11 if has_ood else 6, 4.2), squeeze=False)
    ax = axes[0][0]
    order = df.groupby("strategy")["accuracy"].mean().sort_values(ascending=False).index  # legend by accuracy
    for strategy in order:
        g = df[df["strategy"] == strategy].groupby("stage")
        x, m, s = g["labeled_pct"].mean(), 100 * g["accuracy"].mean(), 100 * g["accuracy"].std().fillna(0)
        line, = ax.plot(x, m, marker="o", ms=3, label=strategy)
        ax.fill_between(x, m - s, m + s, alpha=0.15, color=line.get_color())
        if has_ood:
            axes[0][1].plot(g["stage"].first().index, g["ood_queries"].mean(), marker="o", ms=3, label=strategy)
    ax.set_xlabel("% labeled data")
    ax.set_ylabel("mean test accuracy (%) ± std over seeds")
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
