"""Deploying a hyper-training run against its baselines and writing its tables and figures."""

from __future__ import annotations

from pathlib import Path

from raycl.hyper.config import HyperConfig
from raycl.hyper.evaluate import (
    EVAL_SEED,
    Contender,
    compare,
    deployment_sets,
    format_phenotype_table,
    format_verdicts,
    markdown_tables,
    standard_contenders,
    summarize_phenotypes,
)
from raycl.hyper.config import DEFAULT_LRS
from raycl.hyper.models import build_model
from raycl.hyper.replicate import replicated_runs
from raycl.hyper.trainer import check_architecture, load_run_checkpoint
from raycl.provenance import data_mismatch, record
from raycl.runio import atomic_write_bytes, read_parquet, save_figure, write_json, write_parquet


def deploy_phenotype(run: str, ds: list[int] | None, sequences: int, eval_source: str, eval_root,
                     criterion: str, lrs=None, cache: str | None = None, progress: bool = False,
                     rule: str | None = None) -> dict:
    """Deploy one hyper-trained phenotype and its baselines (the run's own θ0/φ0) at each d:
    rows tagged with the phenotype's training seed, the chosen rates, and whether the data
    differs from what the run trained on. Runs in a Ray task for a replicated run."""
    run = Path(run)
    ckpt = load_run_checkpoint(run)
    cfg = HyperConfig.from_dict(ckpt["config"])
    model, built_theta0, built_phi0 = build_model(cfg)
    check_architecture(ckpt, built_theta0, built_phi0)
    contenders = standard_contenders(cfg, ckpt, model)
    sets = deployment_sets(cfg, eval_source, eval_root)
    now = record(**sets)
    rule = rule or cfg.readout_rule
    out = {"run": str(run), "phenotype": cfg.seed, "config": cfg.to_dict(), "epochs": ckpt["epoch"], "rule": rule,
           "provenance": {"trained": ckpt.get("provenance"), "deployed": now},
           "data_changed": data_mismatch(ckpt.get("provenance"), now), "rows": [], "chosen": {}}
    for d in ds or [cfg.d]:
        rows, chosen = compare(contenders, sets, cfg, d, sequences, lrs=tuple(lrs or DEFAULT_LRS), criterion=criterion,
                               progress=progress, cache=Path(cache) if cache else None, rule=rule)
        out["rows"] += [{**r, "phenotype": cfg.seed} for r in rows]
        out["chosen"][str(d)] = chosen
    return out


def result_suffix(rule: str) -> str:
    """File-name suffix of a deployment's results: none for the linear read-out, else _RULE,
    so deployments under several read-out rules sit side by side in one run folder."""
    return "" if rule == "linear" else f"_{rule}"


def deploy_run(run: Path, ds=None, seeds: int = 5, eval_source: str = "digits", eval_root=None,
               criterion: str = "matched", progress: bool = True, runner=None, lrs=None,
               cache: Path | None = None, rule: str | None = None) -> dict:
    """Deploy a run, or every phenotype of a replicated run (RUN/seeds.json; each as a Ray
    task through `runner`), and summarise across phenotypes and across sequences. `rule` is
    the deployment read-out rule (default: the one the run trained with)."""
    folders = replicated_runs(run) or [run]
    for f in folders:
        load_run_checkpoint(f)  # every phenotype is there and loads safely, before any deployment
    args = (list(ds) if ds else None, seeds, eval_source, eval_root, criterion, list(lrs) if lrs else None,
            str(cache) if cache else None)
    if runner is None or len(folders) == 1:
        per = [deploy_phenotype(str(f), *args, progress=progress, rule=rule) for f in folders]
    else:
        per = runner.gather([runner.submit(deploy_phenotype, str(f), *args, rule=rule) for f in folders],
                            desc="phenotypes")
    cfg = HyperConfig.from_dict(per[0]["config"])
    rule = per[0]["rule"]
    sfx = result_suffix(rule)
    rows = [r for p in per for r in p["rows"]]
    changed = sorted({(p["phenotype"], n) for p in per for n in p["data_changed"]})
    summary = {"config": cfg.to_dict(), "phenotypes": [p["phenotype"] for p in per],
               "hyper_epochs": [p["epochs"] for p in per], "sequences": seeds, "criterion": criterion,
               "eval_source": eval_source, "readout_rule": rule, "plus_minus": "sample std (ddof = 1): over phenotypes (independent "
               "hyper-trainings) and, in brackets, over all deployment sequences",
               "data_changed": [f"seed {s}: {n}" for s, n in changed],
               "provenance": {str(p["phenotype"]): p["provenance"] for p in per}, "by_d": {}}
    for d in sorted({r["d"] for r in rows}):
        at_d = [r for r in rows if r["d"] == d]
        s = summarize_phenotypes(at_d, lower_is_better=cfg.mode == "unsupervised")
        summary["by_d"][str(d)] = {
            "results": s, "selection": {str(p["phenotype"]): p["chosen"][str(d)] for p in per},
            "table": format_phenotype_table(s, cfg.mode) + "\n" + format_verdicts(s, cfg.mode)}
        save_figure(deployment_figure(at_d, d, cfg.mode), run / f"deployment{sfx}_d{d}.png")
        if cfg.mode == "unsupervised" and len(per) == 1:
            ckpt = load_run_checkpoint(folders[0])
            model, _, _ = build_model(cfg)
            fig = reconstruction_figure(standard_contenders(cfg, ckpt, model)[0],
                                        deployment_sets(cfg, eval_source, eval_root)["meta-eval"], cfg, d,
                                        per[0]["chosen"][str(d)]["hyper-trained"]["lr"])
            save_figure(fig, run / f"reconstructions_d{d}.png")
    md = [f"# Deployment of `{run.name}`", "", f"Phenotypes (training seeds): {summary['phenotypes']}; "
          f"{seeds} deployment sequences per set and phenotype; criterion {criterion}; meta-eval {eval_source}; "
          f"read-out rule {rule}.", ""]
    for d, entry in summary["by_d"].items():
        md += [f"## d = {d}", "", *markdown_tables(entry["results"], cfg.mode), "",
               f"![deployment d={d}](deployment{sfx}_d{d}.png)", ""]
    atomic_write_bytes(run / f"deployment{sfx}.md", "\n".join(md).encode())
    write_parquet(run / f"deployment{sfx}.parquet", [{**r, "readout_rule": rule} for r in rows])
    if (run / "hyper_training.parquet").exists():
        save_figure(training_figure(read_parquet(run / "hyper_training.parquet")), run / "hyper_training.png")
    write_json(run / f"summary{sfx}.json", summary)
    return summary


def reconstruction_figure(c: Contender, pool, cfg: HyperConfig, d: int, lr: float):
    """Like Fig 6.4: reconstructions of one instance of every class of a meta-eval sequence,
    after the first task, halfway, and after all d (rows), classes in learning order (columns)."""
    import torch
    from torch.func import functional_call

    from raycl.hyper.deploy import deploy, deployment_streams
    from raycl.plots import pyplot

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
    fig, axes = pyplot().subplots(len(stages) + 1, d, figsize=(d * 0.9, (len(stages) + 1) * 0.95), squeeze=False)
    for col in range(d):
        for row, img in enumerate([x] + [shots[j] for j in stages]):
            ax = axes[row][col]
            ax.imshow(img[col].view(side, side), cmap="gray")
            ax.axis("off")
    for row, label in enumerate(["input"] + [f"after {j}" for j in stages]):
        axes[row][0].set_title(label, fontsize=7, loc="left")
    fig.suptitle("deployment reconstructions (classes in learning order)", fontsize=9)
    return fig


def deployment_figure(rows: list[dict], d: int, mode: str):
    """Memory and generalization after each deployment task (like Fig 6.3 / 6.10)."""
    import pandas as pd

    from raycl.plots import mean_curves, pyplot

    df = pd.DataFrame(rows)
    by_phenotype = "phenotype" in df and df["phenotype"].nunique() > 1
    sets = list(dict.fromkeys(df["set"]))
    fig, axes = pyplot().subplots(2, len(sets), figsize=(4 * len(sets), 6), squeeze=False, sharex=True)
    for col, s in enumerate(sets):
        for row, metric in enumerate(("memory", "generalization")):
            ax = axes[row][col]
            at = df[df["set"] == s]
            if by_phenotype:  # the band is the spread of the per-phenotype means
                at = at.groupby(["contender", "phenotype", "task"], as_index=False, sort=False)[metric].mean()
            mean_curves(ax, at, "contender", "task", metric, marker="o", ms=3)
            ax.set_title(f"{s}: {metric}", fontsize=9)
            ax.set_xlabel("tasks learned")
            ax.set_ylabel("accuracy" if mode == "supervised" else "MSE")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    over = f"{df['phenotype'].nunique()} phenotypes" if by_phenotype else f"{df['seed'].nunique()} sequences"
    fig.suptitle(f"deployment, d = {d} (mean ± sample std over {over})", fontsize=10)
    fig.tight_layout()
    return fig


def training_figure(df):
    """Hyper-training curves: hyper-loss, and memory / generalization at the end of each
    epoch on the models' own streams (like Fig 6.6 / 6.7)."""
    from raycl.plots import pyplot

    fig, axes = pyplot().subplots(1, 3, figsize=(12, 3.2))
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
