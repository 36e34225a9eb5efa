"""Deployment comparison: the hyper-trained phenotype against its baselines, each at its own
learning rate chosen on meta-train classes only, on meta-train, meta-test and meta-eval."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from raycl import RayclError
from raycl.data import load
from raycl.hyper.algorithm import Params
from raycl.hyper.config import DEFAULT_LRS, HyperConfig
from raycl.hyper.deploy import deploy, deploy_replay, deployment_streams
from raycl.hyper.stream import meta_pool, prepare_pool
from raycl.provenance import feed
from raycl.stats import describe, paired
from raycl.runio import read_json, write_json

SELECT_SEED = 100_000  # deployment sequences for choosing a learning rate (meta-train only)
EVAL_SEED = 200_000  # deployment sequences that are reported


@dataclass
class Contender:
    """A way of deploying a network: synapses from theta0 learn with the phenotype `phi`
    frozen (kind 'frozen'; a plain network has phi = {}), or the whole network learns with
    iid replay of everything seen (kind 'replay', `budget` updates in all)."""

    name: str
    model: object
    theta0: Params
    phi: Params
    kind: str = "frozen"  # frozen | replay
    budget: int | None = 500  # replay updates in all; None: k·d, the replay-free contenders' budget


GAINS = (1.5, 2.0)  # random phenotypes beyond the initial gain 1


def standard_contenders(cfg: HyperConfig, ckpt: dict, model) -> list[Contender]:
    """The hyper-trained phenotype and its tuned baselines, all from the run's own θ0: random
    phenotypes (φ0 at gain 1, fresh ones at gains 1.5 and 2), a tanh MLP of the same widths
    (supervised), and iid replay of everything seen from φ0, with 500 updates and with the
    replay-free contenders' k·d."""
    from raycl.dan import MLP, reset_phenotype, split_parameters
    from raycl.hyper.models import build_model

    theta0, phi0 = ckpt["theta0"], ckpt["phi0"]
    # a run that learned θ0 deploys from its learned θ0; the baselines keep the run's initial one
    learned = ckpt["server"].get("theta0") or theta0
    out = [Contender("hyper-trained", model, learned, ckpt["server"]["phi"]),
           Contender("random phenotype g=1", model, theta0, phi0)]
    for g in GAINS:
        other, _, _ = build_model(cfg)
        reset_phenotype(other, g, torch.Generator().manual_seed(cfg.seed + 7))
        out.append(Contender(f"random phenotype g={g}", model, theta0,
                             {n: p.detach().clone() for n, p in split_parameters(other)[1].items()}))
    if cfg.mode == "supervised":
        mlp = MLP(cfg.image_size**2, cfg.hidden, cfg.n_outputs, torch.Generator().manual_seed(cfg.seed))
        out.append(Contender("tanh MLP", mlp, {n: p.detach().clone() for n, p in mlp.named_parameters()}, {}))
    out.append(Contender("iid replay (500)", model, theta0, phi0, kind="replay"))
    out.append(Contender("iid replay (k·d)", model, theta0, phi0, kind="replay", budget=None))
    return out


META_EVAL_REAL = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "kmnist": "KMNIST"}  # name: torchvision folder


def meta_eval_source(source: str | None, root) -> str:
    """The meta-eval dataset: as named; with only --data-root, the one MNIST-family dataset laid
    out there (ROOT/MNIST, ROOT/FashionMNIST or ROOT/KMNIST); else the offline digits."""
    if source is not None:
        return source
    if root is None:
        return "digits"
    from pathlib import Path

    found = [n for n, folder in META_EVAL_REAL.items() if (Path(root).expanduser() / folder / "raw").is_dir()]
    if len(found) != 1:
        what = f"holds {' and '.join(found)}" if found else "holds none of MNIST/, FashionMNIST/, KMNIST/ (each with raw/)"
        raise RayclError(f"--data-root {root} {what}; name the meta-eval set with --data "
                         f"{'|'.join(META_EVAL_REAL)}")
    return found[0]


def deployment_sets(cfg: HyperConfig, eval_source: str = "digits", eval_root=None) -> dict:
    """meta-train: the hyper-training classes; meta-test: the source's held-out classes;
    meta-eval: another dataset (the offline digits, or MNIST when given)."""
    sets = {"meta-train": meta_pool(cfg.source, "meta-train", cfg.image_size, cfg.data_root)}
    held_out = meta_pool(cfg.source, "meta-test", cfg.image_size, cfg.data_root)
    if held_out is not None:
        sets["meta-test"] = held_out
    eval_split = "test" if eval_source in META_EVAL_REAL else None
    sets["meta-eval"] = prepare_pool(load(eval_source, split=eval_split, root=eval_root), cfg.image_size)
    return sets


def run_contender(c: Contender, stream, cfg: HyperConfig, lr: float, seed: int, rule: str = "linear") -> list[dict]:
    if c.kind == "replay":
        budget = c.budget if c.budget is not None else cfg.k * stream.n_tasks
        return deploy_replay(c.model, c.theta0, c.phi, stream, budget, lr, cfg.mode, cfg.deploy_i,
                             torch.Generator().manual_seed(seed), rule, cfg.n_outputs)
    return deploy(c.model, c.theta0, c.phi, stream, cfg.k, lr, cfg.mode, rule=rule, n_outputs=cfg.n_outputs)


CRITERIA = ("memory", "generalization", "both")


def final_score(rows: list[dict], criterion: str, mode: str) -> float:
    last = rows[-1]
    v = {"memory": last["memory"], "generalization": last["generalization"],
         "both": (last["memory"] + last["generalization"]) / 2}[criterion]
    v = -v if mode == "unsupervised" else v  # MSE: lower is better
    return -math.inf if math.isnan(v) else v


SELECT_STREAMS = 5  # meta-train sequences each learning rate is scored on


def select_lrs(c: Contender, pool, cfg: HyperConfig, d: int, lrs=DEFAULT_LRS, n_streams: int = SELECT_STREAMS,
               criteria=CRITERIA, rule: str = "linear") -> dict:
    """For each criterion, the learning rate with the best mean final score on `n_streams`
    meta-train sequences: {criterion: {"lr": lr, "scores": {lr: mean score}}}. One deployment
    per rate and sequence serves every criterion."""
    streams = deployment_streams(pool, n_streams, d, cfg.deploy_i, cfg.deploy_holdout, SELECT_SEED)
    finals = {lr: [run_contender(c, st, cfg, lr, SELECT_SEED + j, rule) for j, st in enumerate(streams)] for lr in lrs}
    out = {}
    for crit in criteria:
        scores = {lr: sum(final_score(r, crit, cfg.mode) for r in runs) / len(runs) for lr, runs in finals.items()}
        out[crit] = {"lr": max(scores, key=scores.get), "scores": scores}
    return out


def select_lr(c: Contender, pool, cfg: HyperConfig, d: int, lrs=DEFAULT_LRS, n_streams: int = SELECT_STREAMS,
              criterion: str = "memory") -> tuple[float, dict]:
    """The learning rate with the best mean final score on meta-train sequences."""
    chosen = select_lrs(c, pool, cfg, d, lrs, n_streams, (criterion,))[criterion]
    return chosen["lr"], chosen["scores"]


def rates_for(selected: dict, criterion: str) -> dict:
    """The rate each metric is reported at: 'matched' reports memory at the memory-selected
    rate and generalization at the generalization-selected one; otherwise one rate for both."""
    if criterion == "matched":
        return {"memory": selected["memory"]["lr"], "generalization": selected["generalization"]["lr"]}
    return {"memory": selected[criterion]["lr"], "generalization": selected[criterion]["lr"]}


def deploy_at_rates(c: Contender, stream, cfg: HyperConfig, rates: dict, seed: int, rule: str = "linear") -> list[dict]:
    """Per-task rows whose memory (and last_task) come from the deployment at the memory rate
    and whose generalization comes from the one at the generalization rate (one run if equal)."""
    runs = {lr: run_contender(c, stream, cfg, lr, seed, rule) for lr in set(rates.values())}
    mem, gen = runs[rates["memory"]], runs[rates["generalization"]]
    return [{**m, "generalization": g["generalization"], "lr_memory": rates["memory"],
             "lr_generalization": rates["generalization"]} for m, g in zip(mem, gen)]


def data_key(sets: dict) -> str:
    h = hashlib.sha256()
    feed(h, {n: [p.images, p.labels] for n, p in sets.items()})
    return h.hexdigest()


def deployment_key(c: Contender, data: str, cfg: HyperConfig, d: int, seeds: int, lrs, criterion: str,
                   rule: str = "linear") -> str:
    """Everything a contender's deployment results depend on, hashed: its network (structure,
    θ0, φ), how it deploys (read-out rule too), the deployment settings, and the sets' data."""
    h = hashlib.sha256()
    deploy_cfg = {f: getattr(cfg, f) for f in ("k", "deploy_i", "deploy_holdout", "mode", "n_outputs")}
    # the linear rule keeps the key it had before read-out rules existed, so earlier results stay valid
    feed(h, ["v2", c.name, c.kind, c.budget, repr(c.model), c.theta0, c.phi, deploy_cfg, d, seeds, list(lrs),
             criterion, SELECT_SEED, SELECT_STREAMS, EVAL_SEED, data] + ([rule] if rule != "linear" else []))
    return h.hexdigest()[:32]


def _read_cached(path: Path | None) -> dict | None:
    if path is None or not path.exists():
        return None
    try:
        return read_json(path)
    except RayclError:  # a damaged cache entry is deployed again and rewritten
        return None


def compare(contenders: list[Contender], sets: dict, cfg: HyperConfig, d: int, seeds: int = 5,
            lrs=DEFAULT_LRS, criterion: str = "matched", progress: bool = True,
            cache: Path | None = None, rule: str = "linear") -> tuple[list[dict], dict]:
    """Rows (contender, set, seed, task, metrics) and the chosen learning rates. With `cache`
    (a folder), a contender deployed before with exactly the same network, settings and data
    (a baseline shared by several runs) is read back instead of deployed again."""
    if rule == "ncm" and cfg.mode != "supervised":
        raise RayclError("the ncm read-out rule classifies; it does not apply to the auto-encoder (mode unsupervised)")
    if cfg.mode == "supervised" and d > cfg.n_outputs:
        raise RayclError(f"d={d} exceeds the network's {cfg.n_outputs} class outputs; deploy with --d <= {cfg.n_outputs}")
    rows, chosen = [], {}
    total = len(contenders) * (1 + len(sets))
    bar = tqdm(total=total, desc=f"deploying (d={d})", disable=not progress)
    data = data_key(sets) if cache else None
    for c in contenders:
        path = cache / f"{deployment_key(c, data, cfg, d, seeds, lrs, criterion, rule)}.json" if cache else None
        hit = _read_cached(path)
        if hit is not None:
            rows += hit["rows"]
            chosen[c.name] = {**hit.get("chosen", {}), "lr": hit["lr"],
                              "selection_scores": {float(k): v for k, v in hit["scores"].items()}}
            for sel in chosen[c.name].get("selection", {}).values():  # JSON keys are strings
                sel["scores"] = {float(k): v for k, v in sel["scores"].items()}
            bar.update(1 + len(sets))
            continue
        selected = select_lrs(c, sets["meta-train"], cfg, d, lrs, rule=rule)
        rates = rates_for(selected, criterion)
        lr, scores = rates["memory"], selected["memory" if criterion == "matched" else criterion]["scores"]
        chosen[c.name] = {"lr": lr, "lr_generalization": rates["generalization"], "selection_scores": scores,
                          "selection": selected}
        bar.update()
        mine = []
        for set_name, pool in sets.items():
            for s, stream in enumerate(deployment_streams(pool, seeds, d, cfg.deploy_i, cfg.deploy_holdout, EVAL_SEED)):
                for r in deploy_at_rates(c, stream, cfg, rates, EVAL_SEED + s, rule):
                    mine.append({"contender": c.name, "set": set_name, "seed": s, "d": d, "lr": lr, **r})
            bar.update()
        rows += mine
        if path is not None:  # read back by later runs, so written now
            write_json(path, {"rows": mine, "lr": lr, "scores": scores, "chosen": chosen[c.name]}, now=True)
    bar.close()
    return rows, chosen


METRICS = ("memory", "generalization", "last_task")


def _stats(v: list[float]) -> dict:
    return describe(v)


def summarize(rows: list[dict], chosen: dict, reference: str | None = None, lower_is_better: bool = False) -> dict:
    """Mean and std over seeds after all d tasks, per contender and set, and each
    contender's paired difference from `reference` (the first contender by default) on
    the same deployment sequences, signed so that positive favours the reference (for MSE,
    lower_is_better). `beats_by_2std` asks whether the mean difference exceeds twice the
    larger of the two contenders' std."""
    sign = -1.0 if lower_is_better else 1.0
    final: dict = {}
    for r in rows:
        if r["task"] == r["d"]:
            final.setdefault(r["contender"], {}).setdefault(r["set"], {})[r["seed"]] = r
    out: dict = {}
    for c, by_set in final.items():
        out[c] = {"lr": chosen[c]["lr"]}
        for s, by_seed in by_set.items():
            out[c][s] = {k: _stats([r[k] for r in by_seed.values()]) for k in METRICS}
    reference = reference or next(iter(final))
    for c, by_set in final.items():
        if c == reference:
            continue
        for s, by_seed in by_set.items():
            ref = final[reference][s]
            seeds = sorted(set(by_seed) & set(ref))
            entry = {}
            for k in ("memory", "generalization"):
                diff = _stats([sign * (ref[i][k] - by_seed[i][k]) for i in seeds])
                spread = max(out[reference][s][k]["std"], out[c][s][k]["std"])
                entry[k] = {**diff, "beats_by_2std": diff["mean"] > 2 * spread}
            out[c][s][f"{reference} minus this"] = entry
    return out


def format_table(summary: dict, mode: str = "supervised") -> str:
    unit = "accuracy %" if mode == "supervised" else "reconstruction MSE"
    scale = 100 if mode == "supervised" else 1
    sets = list(dict.fromkeys(s for c in summary.values() for s in c if s != "lr"))
    lines = [f"after all d tasks, mean ± std over seeds ({unit}); lr chosen on meta-train",
             f"{'contender':<22}{'lr':>8}  " + "  ".join(f"{s + ' mem':>17}{s + ' gen':>17}" for s in sets)]
    for c, entry in summary.items():
        cells = []
        for s in sets:
            for k in ("memory", "generalization"):
                m = entry.get(s, {}).get(k)
                cells.append(f"{m['mean'] * scale:>10.1f} ± {m['std'] * scale:<4.1f}" if m else f"{'-':>17}")
        lines.append(f"{c:<22}{entry['lr']:>8.3g}  " + "  ".join(f"{x:>17}" for x in cells))
    return "\n".join(lines)


def format_differences(summary: dict, mode: str = "supervised") -> str:
    """One line per baseline and set: the reference's paired advantage and whether it beats by 2 std."""
    scale = 100 if mode == "supervised" else 1
    lines = []
    for c, entry in summary.items():
        for s, m in entry.items():
            if s == "lr":
                continue
            for key, diff in m.items():
                if not key.endswith("minus this"):
                    continue
                ref = key[: -len(" minus this")]
                better = "advantage" if mode == "supervised" else "advantage (lower MSE)"
                cells = [f"{k} {diff[k]['mean'] * scale:+.1f} (paired std {diff[k]['std'] * scale:.1f}, "
                         f"{'>' if diff[k]['beats_by_2std'] else 'not >'} 2 std)" for k in ("memory", "generalization")]
                lines.append(f"{ref} vs {c}, {s}, {better}: " + "; ".join(cells))
    return "\n".join(lines)


# --- across independent hyper-trainings --------------------------------------------------------

REPLAY = "iid replay"  # contenders whose name starts so see all data again: reported, never "beaten"


def summarize_phenotypes(rows: list[dict], reference: str = "hyper-trained", lower_is_better: bool = False) -> dict:
    """Final values (after all d tasks) per contender, set and metric, with two spreads:
    `over_phenotypes` (the per-phenotype means; the unit of replication for a claim about
    hyper-training) and `over_sequences` (every deployment sequence of every phenotype). Each
    baseline gets the reference's paired advantage at the phenotype level (its mean over the
    same sequences, per phenotype) and a verdict that uses the across-phenotype spread."""
    sign = -1.0 if lower_is_better else 1.0
    final: dict = {}
    for r in rows:
        if r["task"] == r["d"]:
            final.setdefault(r["contender"], {}).setdefault(r["set"], {}).setdefault(r["phenotype"], []).append(r)
    out: dict = {}
    for c, by_set in final.items():
        out[c] = {}
        for s, by_ph in by_set.items():
            entry = {}
            for k in METRICS:
                means = {ph: sum(r[k] for r in rs) / len(rs) for ph, rs in by_ph.items()}
                entry[k] = {"over_phenotypes": describe(means.values()),
                            "over_sequences": describe([r[k] for rs in by_ph.values() for r in rs]),
                            "per_phenotype": means}
            entry["lr"] = {ph: {"memory": rs[0]["lr_memory"], "generalization": rs[0]["lr_generalization"]}
                           for ph, rs in by_ph.items()}
            out[c][s] = entry
    for c, by_set in out.items():
        if c == reference:
            continue
        for s, entry in by_set.items():
            ref = out[reference][s]
            for k in ("memory", "generalization"):
                phs = sorted(set(entry[k]["per_phenotype"]) & set(ref[k]["per_phenotype"]))
                a = [sign * ref[k]["per_phenotype"][p] for p in phs]
                b = [sign * entry[k]["per_phenotype"][p] for p in phs]
                diff = paired(a, b)
                spread = max(ref[k]["over_phenotypes"]["std"], entry[k]["over_phenotypes"]["std"])
                verdict = (None if len(phs) < 2 else bool(diff["mean"] > 2 * spread))
                entry[k]["vs_reference"] = {**diff, "spread": spread, "ahead_by_2std": verdict}
    return out


def best_tuned_baseline(summary: dict, s: str, k: str, reference: str = "hyper-trained",
                        exclude: tuple = ("IID control",), lower_is_better: bool = False) -> str:
    """The replay-free baseline with the best mean over phenotypes (each at its tuned rate)."""
    base = {c: v[s][k]["over_phenotypes"]["mean"] for c, v in summary.items()
            if c != reference and c not in exclude and not c.startswith(REPLAY) and s in v}
    pick = min if lower_is_better else max
    return pick(base, key=base.get)


def format_phenotype_table(summary: dict, mode: str = "supervised") -> str:
    """Every contender and set: memory and generalization as mean ± std over phenotypes
    [± std over sequences], with the rates chosen on meta-train."""
    unit, scale = ("accuracy %", 100) if mode == "supervised" else ("reconstruction MSE", 1)
    sets = list(dict.fromkeys(s for c in summary.values() for s in c))
    anyc = next(iter(summary.values()))
    n_ph = anyc[sets[0]]["memory"]["over_phenotypes"]["n"]
    n_seq = anyc[sets[0]]["memory"]["over_sequences"]["n"]
    lines = [f"after all d tasks ({unit}): mean ± sample std over {n_ph} phenotype(s) [± over all {n_seq} sequences]; "
             "rates chosen on meta-train (memory / generalization)",
             f"{'contender':<24}{'rates':>12}  " + "  ".join(f"{s + ' memory':>24}{s + ' generalization':>26}" for s in sets)]
    for c, by_set in summary.items():
        rates = sorted({(v["memory"], v["generalization"]) for v in next(iter(by_set.values()))["lr"].values()})
        rate = ",".join(f"{m:g}/{g:g}" for m, g in rates[:2]) + ("..." if len(rates) > 2 else "")
        cells = []
        for s in sets:
            for k in ("memory", "generalization"):
                e = by_set.get(s, {}).get(k)
                if e is None:
                    cells.append("-")
                    continue
                p, q = e["over_phenotypes"], e["over_sequences"]
                sd = "-" if not math.isfinite(p["std"]) else f"{p['std'] * scale:.1f}"
                cells.append(f"{p['mean'] * scale:.1f} ± {sd} [± {q['std'] * scale:.1f}]")
        lines.append(f"{c:<24}{rate:>12}  " + "  ".join(f"{x:>24}" if i % 2 == 0 else f"{x:>26}"
                                                       for i, x in enumerate(cells)))
    return "\n".join(lines)


def format_verdicts(summary: dict, mode: str = "supervised", reference: str = "hyper-trained") -> str:
    """The paired verdict of the reference against the random phenotype and the best tuned
    replay-free baseline, per set and metric, at the phenotype level."""
    scale = 100 if mode == "supervised" else 1
    lower = mode == "unsupervised"
    lines = []
    sets = [s for s in summary[reference] if s != "meta-train"]  # meta-train chose the rates: no claim there
    for s in sets:
        for k in ("memory", "generalization"):
            best = best_tuned_baseline(summary, s, k, reference, lower_is_better=lower)
            for name in dict.fromkeys(["random phenotype g=1", best]):
                if name not in summary or s not in summary[name]:
                    continue
                v = summary[name][s][k]["vs_reference"]
                tag = " (best tuned baseline)" if name == best else ""
                if v["ahead_by_2std"] is None:
                    verdict = "no verdict: one phenotype (train several with --seeds N)"
                else:
                    verdict = ("ahead by > 2 std" if v["ahead_by_2std"] else
                               "ahead, within 2 std" if v["mean"] > 0 else "not ahead")
                    verdict += f"; paired t = {v['t']:.2f}, p = {v['p']:.3g}" if math.isfinite(v["t"]) else ""
                sd = f"{v['std'] * scale:.1f}" if math.isfinite(v["std"]) else "-"
                lines.append(f"{s} {k}: {reference} minus {name}{tag}: {v['mean'] * scale:+.1f} ± {sd} over "
                             f"{v['n']} phenotype(s) (2 std = {2 * v['spread'] * scale:.1f}): {verdict}"
                             if math.isfinite(v["spread"]) else
                             f"{s} {k}: {reference} minus {name}{tag}: {v['mean'] * scale:+.1f} over {v['n']} "
                             f"phenotype(s): {verdict}")
    return "\n".join(lines)


def markdown_tables(summary: dict, mode: str = "supervised", reference: str = "hyper-trained") -> list[str]:
    """The deployment summary of one d as Markdown: every contender with both spreads and its
    rates, then the paired verdicts against the random phenotype and the best tuned baseline."""
    scale = 100 if mode == "supervised" else 1
    lower = mode == "unsupervised"
    sets = [s for s in summary[reference] if s != "meta-train"] or list(summary[reference])
    first = summary[reference][sets[0]]["memory"]
    n_ph, n_seq = first["over_phenotypes"]["n"], first["over_sequences"]["n"]

    def cell(e):
        p, q = e["over_phenotypes"], e["over_sequences"]
        sd = f"{p['std'] * scale:.1f}" if math.isfinite(p["std"]) else "-"
        return f"{p['mean'] * scale:.1f} ± {sd} [{q['std'] * scale:.1f}]"

    md = [f"After all d tasks ({'accuracy %' if mode == 'supervised' else 'MSE'}): mean ± sample std over {n_ph} "
          f"phenotypes (independent hyper-trainings; baselines use each run's own θ0), in brackets the sample std "
          f"over all {n_seq} deployment sequences. Rates: memory / generalization, chosen on meta-train.", "",
          "| contender | rates | " + " | ".join(f"{s} memory | {s} generalization" for s in sets) + " |",
          "|---|---|" + "---|---|" * len(sets)]
    for c, by_set in summary.items():
        rates = sorted({(v["memory"], v["generalization"]) for v in by_set[sets[0]]["lr"].values()})
        md.append(f"| {c} | {', '.join(f'{m:g}/{g:g}' for m, g in rates)} | "
                  + " | ".join(f"{cell(by_set[s]['memory'])} | {cell(by_set[s]['generalization'])}" for s in sets) + " |")
    md += ["", f"Paired over phenotypes, {reference} minus baseline (mean ± sample std of the per-phenotype "
           "differences; t and two-sided p of the paired t-test; ahead by > 2 std uses the larger across-phenotype "
           "std of the two):", "",
           "| set | metric | baseline | difference | t | p | ahead by > 2 std? |", "|---|---|---|---|---|---|---|"]
    for s in sets:
        for k in ("memory", "generalization"):
            best = best_tuned_baseline(summary, s, k, reference, lower_is_better=lower)
            for name in dict.fromkeys(["random phenotype g=1", best]):
                v = summary[name][s][k]["vs_reference"]
                sd = f"{v['std'] * scale:.1f}" if math.isfinite(v["std"]) else "-"
                tag = f"{name} (best tuned)" if name == best else name
                verdict = "-" if v["ahead_by_2std"] is None else ("yes" if v["ahead_by_2std"] else "no")
                t = f"{v['t']:.2f}" if math.isfinite(v["t"]) else "-"
                p = f"{v['p']:.2g}" if math.isfinite(v["p"]) else "-"
                md.append(f"| {s} | {k} | {tag} | {v['mean'] * scale:+.1f} ± {sd} | {t} | {p} | {verdict} |")
    return md
