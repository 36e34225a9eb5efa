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
from raycl.hyper.config import HyperConfig
from raycl.hyper.deploy import DEFAULT_LRS, deploy, deploy_replay, deployment_streams
from raycl.hyper.stream import meta_pool, prepare_pool
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
    budget: int = 500


def deployment_sets(cfg: HyperConfig, eval_source: str = "digits", eval_root=None) -> dict:
    """meta-train: the hyper-training classes; meta-test: the source's held-out classes;
    meta-eval: another dataset (the offline digits, or MNIST when given)."""
    sets = {"meta-train": meta_pool(cfg.source, "meta-train", cfg.image_size, cfg.data_root)}
    held_out = meta_pool(cfg.source, "meta-test", cfg.image_size, cfg.data_root)
    if held_out is not None:
        sets["meta-test"] = held_out
    eval_split = "test" if eval_source in ("mnist", "fashion-mnist", "kmnist") else None
    sets["meta-eval"] = prepare_pool(load(eval_source, split=eval_split, root=eval_root), cfg.image_size)
    return sets


def run_contender(c: Contender, stream, cfg: HyperConfig, lr: float, seed: int) -> list[dict]:
    if c.kind == "replay":
        return deploy_replay(c.model, c.theta0, c.phi, stream, c.budget, lr, cfg.mode, cfg.deploy_i,
                             torch.Generator().manual_seed(seed))
    return deploy(c.model, c.theta0, c.phi, stream, cfg.k, lr, cfg.mode)


def final_score(rows: list[dict], criterion: str, mode: str) -> float:
    last = rows[-1]
    v = {"memory": last["memory"], "generalization": last["generalization"],
         "both": (last["memory"] + last["generalization"]) / 2}[criterion]
    v = -v if mode == "unsupervised" else v  # MSE: lower is better
    return -math.inf if math.isnan(v) else v


def select_lr(c: Contender, pool, cfg: HyperConfig, d: int, lrs=DEFAULT_LRS, n_streams: int = 3,
              criterion: str = "memory") -> tuple[float, dict]:
    """The learning rate with the best mean final score on meta-train sequences."""
    streams = deployment_streams(pool, n_streams, d, cfg.deploy_i, cfg.deploy_holdout, SELECT_SEED)
    scores = {}
    for lr in lrs:
        s = [final_score(run_contender(c, st, cfg, lr, SELECT_SEED + j), criterion, cfg.mode)
             for j, st in enumerate(streams)]
        scores[lr] = sum(s) / len(s)
    return max(scores, key=scores.get), scores


def _feed(h, x) -> None:
    if isinstance(x, torch.Tensor):
        h.update(f"{tuple(x.shape)}{x.dtype}".encode())
        h.update(x.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(x, dict):
        for k in sorted(x):
            h.update(str(k).encode())
            _feed(h, x[k])
    elif isinstance(x, (list, tuple)):
        for v in x:
            _feed(h, v)
    else:
        h.update(repr(x).encode())


def data_key(sets: dict) -> str:
    h = hashlib.sha256()
    _feed(h, {n: [p.images, p.labels] for n, p in sets.items()})
    return h.hexdigest()


def deployment_key(c: Contender, data: str, cfg: HyperConfig, d: int, seeds: int, lrs, criterion: str) -> str:
    """Everything a contender's deployment results depend on, hashed: its network (structure,
    θ0, φ), how it deploys, the deployment settings, and the sets' data (`data_key`)."""
    h = hashlib.sha256()
    deploy_cfg = {f: getattr(cfg, f) for f in ("k", "deploy_i", "deploy_holdout", "mode", "n_outputs")}
    _feed(h, [c.name, c.kind, c.budget, repr(c.model), c.theta0, c.phi, deploy_cfg, d, seeds, list(lrs), criterion,
              SELECT_SEED, EVAL_SEED, data])
    return h.hexdigest()[:32]


def _read_cached(path: Path | None) -> dict | None:
    if path is None or not path.exists():
        return None
    try:
        return read_json(path)
    except RayclError:  # a damaged cache entry is deployed again and rewritten
        return None


def compare(contenders: list[Contender], sets: dict, cfg: HyperConfig, d: int, seeds: int = 5,
            lrs=DEFAULT_LRS, criterion: str = "memory", progress: bool = True,
            cache: Path | None = None) -> tuple[list[dict], dict]:
    """Rows (contender, set, seed, task, metrics) and the chosen learning rates. With `cache`
    (a folder), a contender deployed before with exactly the same network, settings and data
    (a baseline shared by several runs) is read back instead of deployed again."""
    if cfg.mode == "supervised" and d > cfg.n_outputs:
        raise RayclError(f"d={d} exceeds the network's {cfg.n_outputs} class outputs; deploy with --d <= {cfg.n_outputs}")
    rows, chosen = [], {}
    total = len(contenders) * (1 + len(sets))
    bar = tqdm(total=total, desc=f"deploying (d={d})", disable=not progress)
    data = data_key(sets) if cache else None
    for c in contenders:
        path = cache / f"{deployment_key(c, data, cfg, d, seeds, lrs, criterion)}.json" if cache else None
        hit = _read_cached(path)
        if hit is not None:
            rows += hit["rows"]
            chosen[c.name] = {"lr": hit["lr"], "selection_scores": {float(k): v for k, v in hit["scores"].items()}}
            bar.update(1 + len(sets))
            continue
        lr, scores = select_lr(c, sets["meta-train"], cfg, d, lrs, criterion=criterion)
        chosen[c.name] = {"lr": lr, "selection_scores": scores}
        bar.update()
        mine = []
        for set_name, pool in sets.items():
            for s, stream in enumerate(deployment_streams(pool, seeds, d, cfg.deploy_i, cfg.deploy_holdout, EVAL_SEED)):
                for r in run_contender(c, stream, cfg, lr, EVAL_SEED + s):
                    mine.append({"contender": c.name, "set": set_name, "seed": s, "d": d, "lr": lr, **r})
            bar.update()
        rows += mine
        if path is not None:
            write_json(path, {"rows": mine, "lr": lr, "scores": scores})
    bar.close()
    return rows, chosen


METRICS = ("memory", "generalization", "last_task")


def _stats(v: list[float]) -> dict:
    t = torch.tensor(v, dtype=torch.float64)
    return {"mean": float(t.mean()), "std": float(t.std(unbiased=False)), "n": len(t)}


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
