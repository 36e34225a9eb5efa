"""`raycl report hyper`: Hyper-Learning measured honestly. Every hyper-training run in a
results folder is deployed against tuned baselines and its IID control, at d = 5 and 10,
over many seeds, with representation diagnostics, into one Markdown report."""

from __future__ import annotations

from pathlib import Path

from torch.func import functional_call
from tqdm.auto import tqdm

from raycl import RayclError
from raycl.hyper.config import HyperConfig
from raycl.hyper.config import DEFAULT_LRS
from raycl.hyper.deploy import deploy, deployment_streams
from raycl.hyper.diagnostics import layer_cosines, phenotype_response
from raycl.hyper.evaluate import (
    EVAL_SEED,
    GAINS,
    Contender,
    compare,
    deployment_sets,
    standard_contenders,
    summarize,
)
from raycl.hyper.models import build_model
from raycl.hyper.report import deployment_figure
from raycl.hyper.trainer import CHECKPOINT, ReferenceTrainer, load_run_checkpoint
from raycl.plots import pyplot
from raycl.stats import describe, fmt, paired, what
from raycl.runio import atomic_write_bytes, read_json, save_figure, write_json, write_parquet

NOT_BASELINES = ("hyper-trained", "IID control", "iid replay (500)", "iid replay (k·d)")  # replay is reported, not "beaten"


def find_runs(results: Path) -> list[Path]:
    runs = sorted(p.parent for p in results.glob("**/" + CHECKPOINT))
    if not runs:
        raise RayclError(f"no hyper-training runs (folders with {CHECKPOINT}) under {results}; "
                         f"run `raycl hyper-train --out {results}/main` first")
    return runs


def iid_control(run: Path, ckpt: dict, progress: bool) -> dict:
    """The run's IID control: the same settings and epochs with order=iid. Trained (and
    checkpointed in RUN/iid-control) when missing."""
    cfg = HyperConfig.from_dict(ckpt["config"]).with_(order="iid")
    out = run / "iid-control"
    if (out / CHECKPOINT).exists():
        ctrl = load_run_checkpoint(out)
        if ctrl["epoch"] >= ckpt["epoch"]:
            return ctrl
        trainer = ReferenceTrainer(cfg, out)
        trainer.restore(ctrl)
    else:
        trainer = ReferenceTrainer(cfg, out)
    trainer.train(epochs=ckpt["epoch"], progress=progress)
    trainer.save()
    return load_run_checkpoint(out)


def contenders_for(run: Path, ckpt: dict, progress: bool, train_control: bool = True) -> tuple[HyperConfig, list[Contender]]:
    """The standard contenders, with the run's IID control after the hyper-trained phenotype."""
    cfg = HyperConfig.from_dict(ckpt["config"])
    model, _, _ = build_model(cfg)
    out = standard_contenders(cfg, ckpt, model)
    if cfg.order == "sequential" and (train_control or (run / "iid-control" / CHECKPOINT).exists()):
        control = iid_control(run, ckpt, progress)["server"]
        out.insert(1, Contender("IID control", model, control.get("theta0") or ckpt["theta0"], control["phi"]))
    return cfg, out


def just_learned(rows: list[dict]) -> dict:
    """Accuracy on each task right after learning it, averaged over tasks, per contender/set/d."""
    acc: dict = {}
    for r in rows:
        acc.setdefault((r["contender"], r["set"], r["d"]), []).append(r["last_task"])
    return {k: sum(v) / len(v) for k, v in acc.items()}


def diagnostics(contenders: list[Contender], sets: dict, cfg: HyperConfig, d: int, lrs: dict, seeds: int) -> list[dict]:
    """Within/between-class centred cosine of every hidden layer at θ0 and after deployment."""
    rows = []
    for c in contenders:
        if c.kind != "frozen":
            continue
        for set_name in ("meta-test", "meta-eval"):
            if set_name not in sets:
                continue
            for s, stream in enumerate(deployment_streams(sets[set_name], seeds, d, cfg.deploy_i, cfg.deploy_holdout, EVAL_SEED)):
                x, y = stream.instances("all")
                final = {}
                deploy(c.model, c.theta0, c.phi, stream, cfg.k, lrs[c.name], cfg.mode, rule=cfg.readout_rule,
                       n_outputs=cfg.n_outputs,
                       on_task=lambda j, p: final.update(p) if j == d else None)
                for when, params in (("theta0", {**c.theta0, **c.phi}), ("deployed", final)):
                    for layer, cos in enumerate(layer_cosines(c.model, params, x, y), start=1):
                        rows.append({"contender": c.name, "set": set_name, "seed": s, "d": d, "when": when,
                                     "layer": layer, **cos})
    return rows


def phenotype_figure(contenders: list[Contender], cfg: HyperConfig):
    """Each frozen phenotype's response (first DAN layer's phenotype): f and f' for one
    channel, a 2-D slice over channels 0 and 1 otherwise (like Fig 6.12)."""
    frozen = [c for c in contenders if c.kind == "frozen" and c.phi]
    prefix = sorted({n.rsplit(".weights.", 1)[0].rsplit(".biases.", 1)[0] for n in frozen[0].phi})[0]
    module = frozen[0].model.get_submodule(prefix)
    fig, axes = pyplot().subplots(1, len(frozen), figsize=(3.2 * len(frozen), 3), squeeze=False)
    for ax, c in zip(axes[0], frozen):
        sub = {n[len(prefix) + 1:]: p for n, p in c.phi.items() if n.startswith(prefix + ".")}

        def f(u, sub=sub):
            return functional_call(module, sub, (u,))

        u, resp, dresp = phenotype_response(f, cfg.n_channels)
        if dresp is None:
            im = ax.imshow(resp, extent=[u[0], u[-1], u[0], u[-1]], origin="lower", cmap="RdBu_r", vmin=-1, vmax=1)
            ax.set_xlabel("channel 0")
            ax.set_ylabel("channel 1")
        else:
            ax.plot(u, resp, label="f")
            ax.plot(u, dresp, label="f'")
            ax.legend(fontsize=7)
        ax.set_title(c.name, fontsize=8)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8) if cfg.n_channels > 1 else None
    fig.suptitle(f"phenotype response ({prefix})", fontsize=9)
    return fig


def cosine_figure(diag_rows: list[dict]):
    import pandas as pd

    df = pd.DataFrame(diag_rows)
    last = df[df["layer"] == df["layer"].max()]
    g = last.groupby(["contender", "when"])[["within", "between"]].mean().reset_index()
    names = list(dict.fromkeys(g["contender"]))
    fig, ax = pyplot().subplots(figsize=(1.3 * len(names) + 2, 3.2))
    width = 0.2
    for j, (when, kind) in enumerate([(w, k) for w in ("theta0", "deployed") for k in ("within", "between")]):
        vals = [float(g[(g.contender == n) & (g.when == when)][kind].iloc[0]) for n in names]
        ax.bar([i + (j - 1.5) * width for i in range(len(names))], vals, width, label=f"{kind}, {when}")
    ax.set_xticks(range(len(names)), names, rotation=20, fontsize=7, ha="right")
    ax.set_ylabel("centred cosine (last hidden layer)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def _pct(m: dict) -> str:
    return f"{100 * m['mean']:.1f} ± {100 * m['std']:.1f}"


def run_study(run: Path, ds=(5, 10), seeds: int = 20, eval_source: str = "digits", eval_root=None,
              progress: bool = True, train_control: bool = True, cache: Path | None = None, lrs=DEFAULT_LRS) -> dict:
    ckpt = load_run_checkpoint(run)
    with_control = (train_control or (run / "iid-control" / CHECKPOINT).exists()) and ckpt["config"]["order"] == "sequential"
    key = {"epochs": ckpt["epoch"], "ds": list(ds), "seeds": seeds, "eval_source": eval_source, "iid_control": with_control,
           "lrs": list(lrs), "selection": "matched, 5 meta-train sequences"}
    if (run / "report.json").exists() and read_json(run / "report.json").get("key") == key:
        return read_json(run / "report.json")  # a finished study of this very checkpoint
    cfg, contenders = contenders_for(run, ckpt, progress, train_control)
    if cfg.mode != "supervised":
        raise RayclError(f"{run}: the report covers supervised runs; deploy unsupervised runs with `raycl deploy`")
    sets = deployment_sets(cfg, eval_source, eval_root)
    study = {"run": str(run), "key": key, "config": cfg.to_dict(), "epochs": ckpt["epoch"], "by_d": {}}
    all_rows, diag_rows = [], []
    for d in ds:
        rows, chosen = compare(contenders, sets, cfg, d, seeds, lrs=tuple(lrs), progress=progress, cache=cache,
                               rule=cfg.readout_rule)
        all_rows += rows
        summ = summarize(rows, chosen)
        lrs = {c: v["lr"] for c, v in chosen.items()}
        diag = diagnostics(contenders, sets, cfg, d, lrs, min(seeds, 5))
        diag_rows += diag
        study["by_d"][str(d)] = {"results": summ, "lr": lrs, "just_learned": {
            f"{c}|{s}": v for (c, s, dd), v in just_learned(rows).items() if dd == d}}
        save_figure(deployment_figure(rows, d, cfg.mode), run / f"report_curves_d{d}.png")
    write_parquet(run / "report_deployment.parquet", all_rows)
    write_parquet(run / "report_diagnostics.parquet", diag_rows)
    save_figure(cosine_figure(diag_rows), run / "report_cosine.png")
    save_figure(phenotype_figure(contenders, cfg), run / "report_phenotype.png")
    study["diagnostics"] = _cosine_summary(diag_rows)
    write_json(run / "report.json", study)
    return study


def _cosine_summary(diag_rows: list[dict]) -> dict:
    out: dict = {}
    for r in diag_rows:
        key = f"{r['contender']}|{r['set']}|d={r['d']}|layer{r['layer']}|{r['when']}"
        e = out.setdefault(key, {"within": [], "between": []})
        e["within"].append(r["within"])
        e["between"].append(r["between"])
    return {k: {kk: sum(v) / len(v) for kk, v in e.items()} for k, e in out.items()}


def claims(study: dict) -> list[str]:
    """Does the hyper-trained phenotype beat the best tuned replay-free baseline, on memory and
    separately on generalization, per set and d? (difference of means; > 2 std = larger std)."""
    lines = []
    for d, entry in study["by_d"].items():
        res = entry["results"]
        for s in ("meta-test", "meta-eval"):
            if s not in res["hyper-trained"]:
                continue
            for k in ("memory", "generalization"):
                best = best_baseline(res, s, k)
                base = {best: res[best][s][k]}
                ht = res["hyper-trained"][s][k]
                paired = res[best][s]["hyper-trained minus this"][k]
                diff = paired["mean"]
                spread = max(ht["std"], base[best]["std"])
                t = diff / max(paired["std"], 1e-12) * paired["n"] ** 0.5
                verdict = "yes, by > 2 std" if diff > 2 * spread else ("yes, within 2 std" if diff > 0 else "no")
                lines.append(f"| {d} | {s} | {k} | {_pct(ht)} | {best}: {_pct(base[best])} | "
                             f"{100 * diff:+.1f} ± {100 * paired['std']:.1f} (t = {t:.1f}) | {verdict} |")
    return lines


def best_baseline(res: dict, s: str, k: str) -> str:
    base = {c: v[s][k] for c, v in res.items() if c not in NOT_BASELINES}
    return max(base, key=lambda c: base[c]["mean"])


def _groups(studies: list[dict]) -> list[list[dict]]:
    """Studies grouped by configuration: the phenotypes of one replicated run (RUN/seeds.json)
    together, every other run alone; in the order the runs were found."""
    groups: dict = {}
    for st in studies:
        parent = Path(st["run"]).parent
        key = parent if (parent / "seeds.json").exists() else Path(st["run"])
        groups.setdefault(key, []).append(st)
    return list(groups.values())


def overview(studies: list[dict], name) -> list[str]:
    """One row per configuration (a replicated run's phenotypes together): the hyper-trained
    phenotype and its paired difference to the best tuned replay-free baseline, per metric, set
    and d. With several phenotypes the ± is the sample std over phenotypes (of each one's mean
    over its sequences); with one, over its deployment sequences (marked 'seq.')."""
    cols = [(d, s) for d in sorted({d for st in studies for d in st["by_d"]}, key=int) for s in ("meta-test", "meta-eval")]
    md = []
    for k in ("generalization", "memory"):
        md += [f"**{k.capitalize()}**: hyper-trained, then in brackets its paired difference to the best tuned "
               "replay-free baseline (accuracy %). n = phenotypes (independent hyper-trainings); ± is the sample std "
               "over phenotypes, or over deployment sequences where n = 1 (seq.).", "",
               "| run | n | epochs | " + " | ".join(f"d={d} {s}" for d, s in cols) + " |",
               "|---|---|---|" + "---|" * len(cols)]
        best: dict = {}
        for group in _groups(studies):
            label = name(group[0]) if len(group) == 1 else str(Path(name(group[0])).parent)
            cells = []
            for d, s in cols:
                have = [st for st in group if s in st["by_d"].get(d, {}).get("results", {}).get("hyper-trained", {})]
                if len(have) < len(group) or not have:
                    cells.append("-")
                    continue
                if len(group) == 1:
                    res = have[0]["by_d"][d]["results"]
                    b = best_baseline(res, s, k)
                    p = res[b][s]["hyper-trained minus this"][k]
                    ht = res["hyper-trained"][s][k]
                    cells.append(f"{_pct(ht)} seq. ({100 * p['mean']:+.1f} ± {100 * p['std']:.1f})")
                    mean = ht["mean"]
                else:
                    names = [c for c in have[0]["by_d"][d]["results"] if c not in NOT_BASELINES]
                    per = {c: [st["by_d"][d]["results"][c][s][k]["mean"] for st in have] for c in names}
                    b = max(names, key=lambda c: sum(per[c]) / len(per[c]))
                    ht = [st["by_d"][d]["results"]["hyper-trained"][s][k]["mean"] for st in have]
                    a, diff = describe(ht), paired(ht, per[b])
                    cells.append(f"{fmt(a, 100)} ({100 * diff['mean']:+.1f} ± {100 * diff['std']:.1f})")
                    mean = a["mean"]
                if mean > best.get((d, s), ("", -1.0))[1]:
                    best[(d, s)] = (label, mean)
            md.append(f"| `{label}` | {len(group)} | {group[0]['epochs']} | " + " | ".join(cells) + " |")
        md += ["", "Highest hyper-trained " + k + ": " + "; ".join(
            f"d={d} {s}: `{best[(d, s)][0]}` ({100 * best[(d, s)][1]:.1f})" for d, s in cols if (d, s) in best) + ".", ""]
    return md


def replicated_claims(studies: list[dict], rel) -> list[str]:
    """For each replicated run (RUN/seeds.json with seed_S/ studies), the claims across its
    independent hyper-trainings: per phenotype the hyper-trained mean and the best tuned
    replay-free baseline's mean over the same sequences; paired over phenotypes."""
    groups: dict = {}
    for st in studies:
        parent = Path(st["run"]).parent
        if (parent / "seeds.json").exists():
            groups.setdefault(parent, []).append(st)
    md = []
    for parent, group in groups.items():
        n = len(group)
        md += [f"## Claims across {n} independent hyper-trainings of `{rel(parent)}`", "",
               f"Each cell: {what('phenotypes', n)} of the per-phenotype mean over its deployment sequences "
               "(accuracy %). The best tuned replay-free baseline is the one with the highest mean over phenotypes; "
               "the paired difference is taken per phenotype on the same sequences; the verdict asks for more than "
               "2 std, the larger across-phenotype std of the two.", "",
               "| d | set | metric | hyper-trained | best tuned baseline | paired difference (t, p) | ahead by > 2 std? |",
               "|---|---|---|---|---|---|---|"]
        for d in sorted({d for st in group for d in st["by_d"]}, key=int):
            have = [st for st in group if d in st["by_d"]]
            for s_ in ("meta-test", "meta-eval"):
                if any(s_ not in st["by_d"][d]["results"]["hyper-trained"] for st in have):
                    continue
                for k in ("memory", "generalization"):
                    names = [c for c in have[0]["by_d"][d]["results"] if c not in NOT_BASELINES]
                    per = {c: [st["by_d"][d]["results"][c][s_][k]["mean"] for st in have] for c in names}
                    best = max(names, key=lambda c: sum(per[c]) / len(per[c]))
                    ht = [st["by_d"][d]["results"]["hyper-trained"][s_][k]["mean"] for st in have]
                    a, b, diff = describe(ht), describe(per[best]), paired(ht, per[best])
                    spread = max(a["std"], b["std"])
                    verdict = ("-" if len(have) < 2 else "yes" if diff["mean"] > 2 * spread else
                               "no (ahead within 2 std)" if diff["mean"] > 0 else "no")
                    md.append(f"| {d} | {s_} | {k} | {fmt(a, 100)} | {best}: {fmt(b, 100)} | "
                              f"{100 * diff['mean']:+.1f} ± {100 * diff['std']:.1f} (t = {diff['t']:.2f}, "
                              f"p = {diff['p']:.3g}) | {verdict} |")
        md.append("")
    return md


def write_report(results: Path, studies: list[dict], out: Path) -> Path:
    sources = sorted({st["key"]["eval_source"] for st in studies})
    md = ["# Hyper-Learning, honestly measured", "", f"Meta-eval set: {', '.join(sources)}.", "",
          "Every phenotype or network is deployed at its own learning rate, chosen on meta-train classes only "
          "(never meta-test or meta-eval). Numbers are accuracy % after all d tasks, mean ± std over deployment "
          "sequences; paired differences use the same sequences for every contender. Baselines: random phenotypes "
          f"at gains 1, {', '.join(map(str, GAINS))} (weights ~ N(0, g²/fan_in)); a plain tanh MLP with the same hidden "
          "sizes; iid replay of everything seen (500 updates, reported but replay-based); the IID control "
          "(hyper-training whose synaptic steps see the stream's classes in random order).", ""]
    rel = lambda p: Path(p).relative_to(out.parent) if Path(p).is_relative_to(out.parent) else Path(p)  # noqa: E731
    md += replicated_claims(studies, rel)
    if len(_groups(studies)) > 1:
        md += ["## All runs", "", *overview(studies, lambda st: str(rel(st["run"]))), ""]
    for st in studies:
        run = Path(st["run"])
        cfg = st["config"]
        md += [f"## Run `{rel(run)}`", "",
               f"{st['epochs']} outer epochs; population {cfg['population']}, k={cfg['k']}, i={cfg['i']}, "
               f"h_CL={cfg['h_cl']}, h_H={cfg['h_h']}, hyper-loss over {cfg['hyper_loss_over']}, "
               f"order {cfg['order']}, φ gradient {cfg['phi_grad']}"
               f"{' through ' + str(cfg['unroll']) + ' steps' if cfg.get('unroll', 1) > 1 else ''}, lr θ {cfg['lr_synapses']}, lr φ {cfg['lr_phenotype']}, "
               f"hidden {cfg['hidden']}, n_channels {cfg['n_channels']}, source {cfg['source']}.", "",
               "### Claims of this one phenotype (spread over deployment sequences: one sample of hyper-training)", "",
               "| d | set | metric | hyper-trained | best tuned replay-free baseline | paired difference (t over seeds) | hyper-trained better? (2 std = the larger std of the two) |",
               "|---|---|---|---|---|---|---|", *claims(st), ""]
        for d, entry in st["by_d"].items():
            res = entry["results"]
            sets = [s for s in ("meta-train", "meta-test", "meta-eval") if s in res["hyper-trained"]]
            md += [f"### d = {d}", "",
                   "| contender | lr | " + " | ".join(f"{s} memory | {s} generalization | {s} just learned" for s in sets) + " |",
                   "|---|---|" + "---|" * (3 * len(sets))]
            for c, v in res.items():
                cells = []
                for s in sets:
                    jl = entry["just_learned"].get(f"{c}|{s}")
                    cells += [_pct(v[s]["memory"]), _pct(v[s]["generalization"]), f"{100 * jl:.1f}" if jl is not None else "-"]
                md.append(f"| {c} | {entry['lr'][c]:g} | " + " | ".join(cells) + " |")
            md += ["", "Paired difference, hyper-trained minus each contender (memory / generalization, mean ± std):", "",
                   "| contender | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
            for c, v in res.items():
                if c == "hyper-trained":
                    continue
                cells = []
                for s in sets:
                    p = v[s]["hyper-trained minus this"]
                    cells.append(f"{100 * p['memory']['mean']:+.1f} ± {100 * p['memory']['std']:.1f} / "
                                 f"{100 * p['generalization']['mean']:+.1f} ± {100 * p['generalization']['std']:.1f}")
                md.append(f"| {c} | " + " | ".join(cells) + " |")
            md += ["", f"![deployment curves d={d}]({rel(run / f'report_curves_d{d}.png')})", ""]
        md += ["### Representations", "",
               "Mean centred cosine (Pearson correlation of hidden codes) within and between classes, last hidden "
               "layer, on meta-test and meta-eval sequences of the largest d, at θ0 and after deployment. Low "
               "within-class similarity means near-orthogonal codes per instance: it stops interference (memory) "
               "but also stops generalization.", "",
               "| contender | set | within θ0 | between θ0 | within deployed | between deployed |", "|---|---|---|---|---|---|"]
        dmax = max(st["by_d"], key=int)
        diag = st["diagnostics"]
        layers = sorted({k.split("|")[3] for k in diag})
        for key in sorted({k.rsplit("|", 2)[0] for k in diag if f"|d={dmax}|" in k}):
            c, s, _ = key.split("|")
            a, b = diag[f"{key}|{layers[-1]}|theta0"], diag[f"{key}|{layers[-1]}|deployed"]
            md.append(f"| {c} | {s} | {a['within']:.3f} | {a['between']:.3f} | {b['within']:.3f} | {b['between']:.3f} |")
        md += ["", f"![centred cosine]({rel(run / 'report_cosine.png')})",
               f"![phenotype response]({rel(run / 'report_phenotype.png')})", ""]
    atomic_write_bytes(out, "\n".join(md).encode())
    return out


def report_hyper(results: Path, out: Path | None = None, ds=(5, 10), seeds: int = 20, eval_source: str = "digits",
                 eval_root=None, progress: bool = True, train_control: bool = True, cache: Path | None = None,
                 lrs=DEFAULT_LRS) -> Path:
    runs = [r for r in find_runs(results) if r.name != "iid-control"]
    studies = []
    for run in tqdm(runs, desc="runs", disable=not progress or len(runs) == 1):
        cfg = HyperConfig.from_dict(load_run_checkpoint(run)["config"])
        if cfg.mode != "supervised":
            continue
        # baselines shared by runs of one architecture are deployed once
        studies.append(run_study(run, ds, seeds, eval_source, eval_root, progress, train_control,
                                 cache=cache or results / ".deployments", lrs=lrs))
    return write_report(results, studies, out or results / "report.md")
