"""An experiment: every strategy x seed on one scenario, run through Ray (or in-process),
written to a run folder: metrics.parquet (one row per strategy, seed and stage),
TensorBoard scalars, summary.json (mean ± sample std, ddof = 1, over seeds, with n) and curves.png."""

from __future__ import annotations

import dataclasses
import time

import pandas as pd

from raycl.active import report
from raycl.active.distributed import run_all
from raycl.active.loop import LoopConfig
from raycl.active.scenario import Scenario
from raycl.active.strategies import make_strategy
from raycl.provenance import environment
from raycl.runio import RunDir, write_parquet

# the rows of the runs finished so far, written as each run ends (now, even inside
# `results(out)`), so an interrupted experiment keeps them; removed once metrics.parquet is final
PARTIAL = "metrics.partial.parquet"


def run_experiment(scenario: Scenario, strategies: list[str], seeds: list[int], cfg: LoopConfig, out: str,
                   runner=None, progress: bool = True) -> dict:
    """`runner` (raycl.runner.Runner) runs the (strategy, seed) jobs; default: this process."""
    if runner is None:
        from raycl.runner import Runner

        runner = Runner(use_ray=False, progress=False)
    for s in strategies:  # fail on a bad spec before starting anything
        make_strategy(s)
    run = RunDir(out)
    jobs = [(s, seed) for seed in seeds for s in strategies]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(jobs), desc="active-learning runs", unit="run")
    # per seed, the fingerprints of the data its runs used (the scenario differs per seed: its
    # validation split and OOD draw); per run, the environment where it differs from this one's
    prov: dict = {"data": {}, "environment": environment(), "run_environments": {}, "data_differs": []}

    def done(rows: list[dict], run_prov: dict | None = None) -> None:
        if run_prov is not None:
            tag = f"{rows[0]['strategy']}/seed{rows[0]['seed']}"
            for name, fp in run_prov["data"].items():
                if prov["data"].setdefault(f"seed_{rows[0]['seed']}/{name}", fp) != fp:
                    prov["data_differs"].append(f"{tag}: {name} {fp}")
            if run_prov["environment"] != prov["environment"]:
                prov["run_environments"][tag] = run_prov["environment"]
        for r in rows:
            run.log(**r)
            tag = f"{r['strategy']}/seed{r['seed']}"
            run.scalar(f"{tag}/accuracy", r["accuracy"], r["stage"])
            run.scalar(f"{tag}/labeled_pct", r["labeled_pct"], r["stage"])
            run.scalar(f"{tag}/ood_queries", r["ood_queries"], r["stage"])
            run.scalar(f"{tag}/selection_seconds", r["selection_seconds"], r["stage"])
        write_parquet(run.path / PARTIAL, run.rows, now=True)  # a partial table survives an interruption
        if run._tb is not None:
            run._tb.flush()
        if bar:
            last = rows[-1]
            bar.set_postfix_str(f"{last['strategy']} seed {last['seed']}: acc {last['accuracy']:.3f}")
            bar.update(1)

    t0 = time.perf_counter()
    try:
        run_all(runner, scenario, jobs, cfg, done)
    finally:  # the bar's last line before any error message
        if bar:
            bar.close()
    df = pd.DataFrame(run.rows)
    summary = report.summarize(df)
    cfg_dict = dataclasses.asdict(cfg)
    if cfg_dict.get("superclasses") is not None:
        cfg_dict["superclasses"] = [int(c) for c in cfg_dict["superclasses"]]
    result = {
        "scenario": dataclasses.asdict(scenario),
        "config": cfg_dict,
        "strategies": summary,
        "checks": report.comparisons(summary, report.main_weibull(strategies), ood=scenario.ood_fraction > 0),
        # the same checks for every Weibull reading (the spec asks for OOD queries of each)
        "checks_each_weibull": {s: report.comparisons(summary, s, ood=scenario.ood_fraction > 0)
                                for s in strategies if s.startswith("weibull")},
        "wall_seconds": time.perf_counter() - t0,
        "provenance": {**prov, "data": dict(sorted(prov["data"].items()))},
    }
    run.summary(result)
    title = f"{scenario.dataset}" + (f" + {int(100 * scenario.ood_fraction)}% OOD ({', '.join(scenario.ood)})"
                                     if scenario.ood_fraction else "") + f", {len(seeds)} seeds"
    run.figure(report.accuracy_figure(df, title), "curves.png")
    run.close()
    (run.path / PARTIAL).unlink(missing_ok=True)
    return result
