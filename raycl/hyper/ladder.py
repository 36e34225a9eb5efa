"""`raycl report ladder`: the over-training ladder (§6.4.3, Fig 6.5 / 6.7).

Reads the deployments (`raycl deploy RUN --d 3`) of several replicated runs, one per rung of
over-training (i, h_CL, h_H growing), and shows whether the hyper-trained phenotype's gain
over the best tuned replay-free baseline rises with over-training, with the spread over
phenotypes (independent hyper-trainings)."""

from __future__ import annotations

import math
from pathlib import Path

from raycl import RayclError
from raycl.hyper.evaluate import best_tuned_baseline
from raycl.runio import read_json
from raycl.stats import fmt

SETS = ("meta-test", "meta-eval")
METRICS = ("generalization", "memory")


def rung(run: Path, d: int) -> dict:
    """One rung: its stream shape and, per set and metric, the hyper-trained phenotype, the best
    tuned replay-free baseline and their paired difference, all over phenotypes."""
    path = Path(run) / "summary.json"
    if not path.exists():
        raise RayclError(f"{run} has no deployment (summary.json); run `raycl deploy {run} --d {d}` first")
    summary = read_json(path)
    if str(d) not in summary.get("by_d", {}):
        raise RayclError(f"{run} was not deployed at d = {d}; run `raycl deploy {run} --d {d} --overwrite`")
    res, cfg = summary["by_d"][str(d)]["results"], summary["config"]
    out = {"run": str(run), "i": cfg["i"], "h_cl": cfg["h_cl"], "h_h": cfg["h_h"], "epochs": summary["hyper_epochs"],
           "n": len(summary["phenotypes"])}
    for s in SETS:
        for k in METRICS:
            if s not in res["hyper-trained"]:
                continue
            best = best_tuned_baseline(res, s, k)
            out[f"{s}|{k}"] = {"hyper-trained": res["hyper-trained"][s][k]["over_phenotypes"], "best": best,
                               "baseline": res[best][s][k]["over_phenotypes"],
                               "difference": res[best][s][k]["vs_reference"]}
    return out


def ladder_markdown(rungs: list[dict], d: int) -> list[str]:
    n = sorted({r["n"] for r in rungs})
    md = [f"Deployment at d = {d}, accuracy %: mean ± sample std over phenotypes (n = {', '.join(map(str, n))} "
          "independent hyper-trainings per rung); the difference is paired per phenotype (hyper-trained minus the "
          "best tuned replay-free baseline, each at its rates chosen on meta-train).", ""]
    for k in METRICS:
        md += [f"**{k.capitalize()}**", "",
               "| rung | i, h_CL, h_H | set | hyper-trained | best tuned baseline | difference | p | > 2 std? |",
               "|---|---|---|---|---|---|---|---|"]
        for r in rungs:
            for s in SETS:
                e = r.get(f"{s}|{k}")
                if e is None:
                    continue
                diff = e["difference"]
                p = f"{diff['p']:.2g}" if math.isfinite(diff.get("p", math.nan)) else "-"
                verdict = "-" if diff["ahead_by_2std"] is None else ("yes" if diff["ahead_by_2std"] else "no")
                md.append(f"| `{Path(r['run']).name}` | {r['i']}, {r['h_cl']}, {r['h_h']} | {s} | "
                          f"{fmt(e['hyper-trained'], 100)} | {e['best']}: {fmt(e['baseline'], 100)} | "
                          f"{fmt(diff, 100, sign=True)} | {p} | {verdict} |")
        md.append("")
    return md


def ladder_figure(rungs: list[dict], d: int):
    from raycl.plots import pyplot

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    x = list(range(len(rungs)))
    labels = [f"i={r['i']}\nh_CL={r['h_cl']}\nh_H={r['h_h']}" for r in rungs]
    for ax, s in zip(axes, SETS):
        for key, style in (("hyper-trained", "o-"), ("baseline", "s--")):
            m = [100 * r[f"{s}|generalization"][key]["mean"] if f"{s}|generalization" in r else math.nan for r in rungs]
            sd = [100 * (r[f"{s}|generalization"][key]["std"] or 0) if f"{s}|generalization" in r else 0 for r in rungs]
            name = "hyper-trained" if key == "hyper-trained" else "best tuned replay-free baseline"
            ax.errorbar(x, m, yerr=sd, fmt=style, capsize=3, label=name)
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_title(f"{s}: generalization after d = {d}", fontsize=9)
        ax.set_ylabel("accuracy % (± std over phenotypes)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("over-training ladder: does the gain rise with i, h_CL, h_H?", fontsize=10)
    fig.tight_layout()
    return fig


def report_ladder(runs: list[Path], d: int, out: Path) -> Path:
    from raycl.runio import atomic_write_bytes, save_figure

    rungs = [rung(r, d) for r in runs]
    figure = out.with_suffix(".png")
    save_figure(ladder_figure(rungs, d), figure)
    md = [f"# Over-training ladder, d = {d}", "", *ladder_markdown(rungs, d), f"![over-training]({figure.name})", ""]
    atomic_write_bytes(out, "\n".join(md).encode())
    return out

