"""A sweep's results: one Parquet table (trial, config, epoch, metrics) read from every
trial's newest checkpoint, and the figures: a bar per setting (like Fig 6.5) and the
scaling trend (like Fig 6.9)."""

from __future__ import annotations

import json
from pathlib import Path

from raycl import RayclError
from raycl.plots import mean_curves, pyplot
from raycl.runio import save_figure, write_parquet
from raycl.sweeps.trial import ROWS, rows_epoch

CONFIG_COLUMNS = ("i", "h_cl", "h_h", "d", "k", "population", "target_params", "source")
TABLE = "sweep.parquet"


def trial_dirs(experiment: Path) -> list[Path]:
    return sorted(p.parent for p in Path(experiment).glob("*/params.json"))


def _newest_rows(trial: Path) -> list[dict]:
    """The rows kept in the trial's newest checkpoint (each checkpoint holds all rows so far;
    newest by epoch: after a resume, folder numbers can restart below older leftovers)."""
    best = max(trial.glob("checkpoint_*"), key=rows_epoch, default=None)
    return json.loads((best / ROWS).read_text()) if best is not None and rows_epoch(best) >= 0 else []


def collect(experiment: Path) -> list[dict]:
    """Every trial's rows with its configuration: one row per (trial, epoch); epoch 0 holds
    the deployment of the initial (random) phenotype."""
    out = []
    for t in trial_dirs(experiment):
        params = json.loads((t / "params.json").read_text())
        hyper = params["setting"]["hyper"]
        for r in _newest_rows(t):
            out.append({**{c: hyper.get(c) for c in CONFIG_COLUMNS}, "config": json.dumps(hyper, sort_keys=True),
                        "trial_dir": t.name, **r})
    # one schema for all rows (epoch 0 has no training metrics; a Parquet schema comes from row 1)
    keys = list(dict.fromkeys(k for r in out for k in r))
    out = [{k: r.get(k) for k in keys} for r in out]
    return sorted(out, key=lambda r: (r["setting"], r["seed"], r["trial"], r["epoch"]))


def write_table(experiment: Path, out: Path) -> Path:
    rows = collect(experiment)
    if not rows:
        raise RayclError(f"no trial results under {experiment}; did the sweep run? (rerun it to resume)")
    return write_parquet(out / TABLE, rows)


def _final_and_initial(df):
    """Per trial: the last trained epoch with a deployment (trials stopped by ASHA before
    their first one are left out) and epoch 0."""
    dep = df[df["deploy_lr"].notna()]
    trained = dep[dep["epoch"] > 0]
    final = trained.loc[trained.groupby("trial")["epoch"].idxmax()]
    return final, dep[dep["epoch"] == 0]


def _sets(df) -> list[str]:
    return [s for s in ("meta-test", "meta-eval", "meta-train") if f"deploy_{s}_memory" in df.columns]


def _mean_std(g):
    """raycl.stats.describe of each group (a pandas SeriesGroupBy, NaNs dropped): the means, the
    sample stds (ddof = 1; 0, no error bar, where a group has one value) and the sorted n's."""
    import pandas as pd

    from raycl.stats import describe

    d = {k: describe(v.dropna()) for k, v in g if v.notna().any()}
    mean = pd.Series({k: x["mean"] for k, x in d.items()}, dtype=float)
    std = pd.Series({k: x["std"] for k, x in d.items()}, dtype=float)
    return mean, std, sorted({x["n"] for x in d.values()})


def _caption(ns) -> str:
    from raycl.stats import what

    return f"bars: {what('seeds', '/'.join(map(str, sorted(set(ns)))) or '?')}"


def settings_figure(df, title: str):
    """Fig 6.5: per setting, deployment memory and generalization after d tasks of the
    hyper-trained φ (solid) and of the same trial's initial φ (pale), mean ± sample std
    (ddof = 1) over seeds."""
    final, initial = _final_and_initial(df)
    order = list(dict.fromkeys(df.sort_values(["h_h", "i"])["setting"]))
    sets = _sets(df)[:2]
    fig, axes = pyplot().subplots(1, len(sets), figsize=(5.5 * len(sets), 4), squeeze=False)
    width = 0.2
    for ax, s in zip(axes[0], sets):
        ns = []
        for j, (frame, k, label, alpha) in enumerate([
            (final, "memory", "memory, hyper-trained", 1.0), (initial, "memory", "memory, initial φ", 0.35),
            (final, "generalization", "generalization, hyper-trained", 1.0),
            (initial, "generalization", "generalization, initial φ", 0.35),
        ]):
            mean, std, n = _mean_std(frame.groupby("setting")[f"deploy_{s}_{k}"])
            mean, std = mean.reindex(order), std.reindex(order).fillna(0)
            ns += n
            xs = [x + (j - 1.5) * width for x in range(len(order))]
            ax.bar(xs, 100 * mean, width, yerr=100 * std, alpha=alpha, label=label,
                   color="C0" if k == "memory" else "C1", capsize=2)
        ax.set_xticks(range(len(order)), order, rotation=20, fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel(f"accuracy after d={int(df['d'].iloc[0])} tasks (%)")
        ax.set_title(f"{title}: {s}\n{_caption(ns)}", fontsize=9)
    axes[0][0].legend(fontsize=7)
    return fig


def scaling_figure(df, title: str):
    """Fig 6.9: deployment accuracy after d tasks against parameters per model, mean ± sample
    std (ddof = 1) over seeds."""
    final, initial = _final_and_initial(df)
    sets = _sets(df)[:2]
    fig, axes = pyplot().subplots(1, len(sets), figsize=(5.5 * len(sets), 4), squeeze=False)
    for ax, s in zip(axes[0], sets):
        ns = []
        for frame, style, who in ((final, "-o", "hyper-trained"), (initial, ":x", "initial φ")):
            for k, color in (("memory", "C0"), ("generalization", "C1")):
                mean, std, n = _mean_std(frame.groupby("params")[f"deploy_{s}_{k}"])
                ns += n
                ax.errorbar(mean.index, 100 * mean, yerr=100 * std.fillna(0), fmt=style, color=color, capsize=2,
                            label=f"{k}, {who}")
        ax.set_xscale("log")
        ax.set_ylim(0, 100)
        ax.set_xlabel("parameters per model")
        ax.set_ylabel(f"accuracy after d={int(df['d'].iloc[0])} tasks (%)")
        ax.set_title(f"{title}: {s}\n{_caption(ns)}", fontsize=9)
    axes[0][0].legend(fontsize=7)
    return fig


def own_streams_figure(df):
    """The population's memory and generalization on its own streams, per outer epoch."""
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 3.5))
    train = df[df["epoch"] > 0]
    for ax, k in zip(axes, ("memory", "generalization")):
        mean_curves(ax, train, "setting", "epoch", k, scale=100, band=False)
        ax.set_xlabel("outer epoch")
        ax.set_ylabel(f"{k} on own streams (%)")
    axes[0].legend(fontsize=7)
    return fig


def write_figures(table: Path, out: Path, kind: str) -> list[Path]:
    from raycl.runio import read_parquet

    df = read_parquet(table)
    main = (settings_figure(df, "over-training (§6.4.3)") if kind == "overtraining"
            else scaling_figure(df, "scale (§6.4.5)"))
    return [save_figure(main, out / f"{kind}.png"), save_figure(own_streams_figure(df), out / "curves.png")]
