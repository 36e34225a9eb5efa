"""Self-Net's experiments (Chapter 2) as plain functions: a stream in, rows and a summary out.

Who trains the task networks is a `trainer` (trainers.TaskNetTrainer: Ray tasks or this process); the
auto-encoder trains in this process, on the GPU when there is one. Original weights are
kept by the *harness* only to report each recollection's cosine; the store never sees them
after folding.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from raycl.selfnet.ae import ContractiveAE, cosine
from raycl.selfnet.baselines import make_learner, task_aware_stream
from raycl.selfnet.flat import flatten
from raycl.selfnet.store import NetMeta, SelfNet, fit_ae
from raycl.selfnet.streams import Task
from raycl.selfnet.tasknets import make_tasknet
from raycl.selfnet.train import TaskNetConfig, accuracy_of_flat
from raycl.selfnet.trainers import TaskNetTrainer, TNJob

SOURCES = ("first-batch-mean", "first-task", "none")


@dataclass
class SelfNetConfig:
    latent: int = 5
    hidden: tuple[int, ...] = ()
    activation: str = "elu"
    buffer_size: int = 5
    thresholds: tuple[float, ...] = (0.9996, 0.987, 0.986)
    lam: float = 1e-4
    lr: tuple[float, ...] = (3e-3, 1e-4)  # per consolidation, the last repeats
    max_iters: int = 3000
    stop: str = "mean"
    n: int | None = None  # AE input size; default: the task network's parameter count
    source: str = "first-batch-mean"  # where later task networks start (§2.3, §2.4.2)
    decoder_hidden: tuple[int, ...] | None = None  # None: mirror `hidden`
    residual: bool = True  # code differences from the decoder's output bias (ContractiveAE.residual)


def _mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else float("nan")


def train_stream_networks(tasks, arch, num_outputs, first_cfg, tune_cfg, source_mode, indices, source,
                          trainer, seed) -> tuple[list[tuple[torch.Tensor, float]], torch.Tensor | None]:
    """Train the task networks for `indices` (independent, so in parallel). The first batch
    starts from one shared seeded init; later ones fine-tune from the source θ*."""
    if source is None or source_mode == "none":
        common = None if source_mode == "none" else flatten(make_tasknet(arch, num_outputs, seed=seed))
        jobs = [TNJob(i, first_cfg, seed + 1 + i, init=common) for i in indices]
    else:
        jobs = [TNJob(i, tune_cfg, seed + 1 + i, init=source, source=source) for i in indices]
    results = trainer(tasks, arch, num_outputs, jobs)
    if source is None and source_mode == "first-batch-mean":
        source = torch.stack([f for f, _ in results]).mean(0)
    elif source is None and source_mode == "first-task":
        source = results[0][0].clone()
    return results, source


def run_selfnet(tasks: list[Task], arch: str, num_outputs: int, cfg: SelfNetConfig, first_cfg: TaskNetConfig,
                tune_cfg: TaskNetConfig, trainer=None, seed: int = 0, on_stage=None, device=None,
                on_ae=None) -> dict:
    """Algorithm 1 over a stream. After every task, every task seen so far is evaluated with
    its recollection (or its original while it waits in the buffer)."""
    trainer = trainer or TaskNetTrainer()
    probe = make_tasknet(arch, num_outputs)
    length = sum(p.numel() for p in probe.parameters())
    sn = SelfNet(cfg.n or length, cfg.latent, cfg.hidden, cfg.activation, cfg.buffer_size, cfg.thresholds,
                 cfg.lam, cfg.lr, cfg.max_iters, cfg.stop, device=device, seed=seed, decoder_hidden=cfg.decoder_hidden,
                 residual=cfg.residual)
    originals: dict[int, tuple[torch.Tensor, float]] = {}
    source, rows, fits = None, [], []
    m = cfg.buffer_size
    for start in range(0, len(tasks), m):
        batch = list(range(start, min(start + m, len(tasks))))
        results, source = train_stream_networks(tasks, arch, num_outputs, first_cfg, tune_cfg, cfg.source, batch,
                                                source, trainer, seed)
        for i, (flat, acc) in zip(batch, results):
            originals[i] = (flat, acc)
            fit = sn.add(f"t{i}", flat, NetMeta(arch, num_outputs, flat.numel()), on_ae)
            if i == len(tasks) - 1 and sn.buffer:
                fit = sn.consolidate(on_ae)  # the stream ended: fold in what is left
            if fit is not None:
                fits.append({"stage": i, "tasks": len(sn.latents), "iterations": fit.iterations, "reached": fit.reached,
                             "threshold": fit.threshold, "mean_cosine": _mean(fit.cosines),
                             "min_cosine": min(fit.cosines), "seconds": fit.seconds})
            st = sn.storage()
            source_floats = source.numel() if source is not None and cfg.source != "none" else 0
            honest = st["independent_floats"] / (st["selfnet_floats"] + source_floats)
            for j in range(i + 1):
                rec = sn.recollect(f"t{j}")
                buffered = sn.in_buffer(f"t{j}")
                rec_acc = originals[j][1] if buffered else accuracy_of_flat(arch, num_outputs, rec, tasks[j])
                rows.append({"method": "selfnet", "stage": i, "task": j, "task_name": tasks[j].name,
                             "accuracy": rec_acc, "original_acc": originals[j][1],
                             "reconstructed_acc": None if buffered else rec_acc,
                             "cosine": None if buffered else cosine(rec, originals[j][0]), "in_buffer": buffered,
                             "compression_factor": st["compression_factor"], "storage_ratio": honest,
                             "ae_iterations": fit.iterations if fit is not None else None})
            if on_stage is not None:
                on_stage("selfnet", i, rows)
    st = sn.storage()
    source_floats = source.numel() if source is not None and cfg.source != "none" else 0
    st["source_floats"] = source_floats
    st["selfnet_floats"] += source_floats
    st["storage_ratio"] = st["independent_floats"] / st["selfnet_floats"]
    last = [r for r in rows if r["stage"] == len(tasks) - 1]
    return {"rows": rows, "fits": fits, "storage": st, "store": sn, "originals": originals,
            "final_reconstructed": _mean([r["accuracy"] for r in last]),
            "final_original": _mean([r["original_acc"] for r in last]),
            "final_mean_cosine": _mean([r["cosine"] for r in last])}


def after_consolidations(rows: list[dict]):
    """Self-Net's mean accuracy over all tasks seen at every stage where none waits in the buffer
    (just after a consolidation), with the compression factor there: one row per (seed, stage)
    of --seeds rows."""
    import pandas as pd

    df = pd.DataFrame(rows)
    df = df[df.method == "selfnet"]
    g = df.groupby(["seed", "stage"]).agg(accuracy=("accuracy", "mean"), original_acc=("original_acc", "mean"),
                             compression_factor=("compression_factor", "first"), buffered=("in_buffer", "any"))
    return g[~g.buffered.astype(bool)].drop(columns="buffered").reset_index()


def run_baseline(name: str, tasks: list[Task], arch: str, num_outputs: int, cfg: TaskNetConfig, lam=None,
                 seed: int = 0, on_stage=None, device=None, task_aware: bool = False) -> dict:
    """One shared network learns the stream with baseline `name`; all seen tasks evaluated after
    each. `task_aware`: every task its own head, chosen by the task's identity (method NAME:task-aware).
    A baseline whose loss diverges stops there: its rows end at the last task it learned, "final"
    is None and "diverged" says where (one method's failure is a result of the comparison)."""
    from raycl.guard import Diverged

    if task_aware:
        tasks, heads = task_aware_stream(tasks)
        num_outputs = max(num_outputs, heads)
    learner = make_learner(name, arch, num_outputs, cfg, lam, seed, device)
    name = f"{name}:task-aware" if task_aware else name
    rows, just_learned = [], {}
    for i, task in enumerate(tasks):
        try:
            learner.learn(task, i)
        except Diverged as e:
            return {"method": name, "rows": rows, "final": None,
                    "diverged": f"{name} (seed {seed}) diverged on task {i + 1} of {len(tasks)}: {e}"}
        just_learned[i] = learner.accuracy(task)
        for j in range(i + 1):
            acc = just_learned[j] if j == i else learner.accuracy(tasks[j])
            rows.append({"method": name, "stage": i, "task": j, "task_name": tasks[j].name, "accuracy": acc,
                         "original_acc": just_learned[j], "reconstructed_acc": None, "cosine": None,
                         "in_buffer": None, "compression_factor": None, "storage_ratio": None, "ae_iterations": None})
        if on_stage is not None:
            on_stage(name, i, rows)
    last = [r for r in rows if r["stage"] == len(tasks) - 1]
    return {"method": name, "rows": rows, "final": _mean([r["accuracy"] for r in last]), "diverged": None}


# --- robustness (Fig 2.2) --------------------------------------------------------------------
def robustness(nets: list[tuple[Task, torch.Tensor, float]], arch: str, num_outputs: int, sigmas, draws: int = 3,
               seed: int = 0) -> list[dict]:
    """i.i.d. zero-mean Gaussian noise on the weights, σ relative to the weights' std:
    accuracy against cosine similarity to the original."""
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for k, (task, flat, acc) in enumerate(nets):
        scale = float(flat.std())
        for s in sigmas:
            for d in range(draws):
                noisy = flat + s * scale * torch.randn(flat.shape, generator=gen)
                rows.append({"network": k, "task_name": task.name, "sigma": s, "draw": d, "cosine": cosine(noisy, flat),
                             "accuracy": accuracy_of_flat(arch, num_outputs, noisy, task), "original_acc": acc})
    return rows


# --- one AE, whole networks vs sub-vectors, several architectures (Fig 2.7) -----------------
def curve(ae: ContractiveAE, vectors, iters: int, lr: float, lam: float) -> tuple[list[float], float]:
    t0 = time.perf_counter()
    res = fit_ae(ae, vectors, threshold=2.0, lam=lam, lr=lr, max_iters=iters)
    return res.history, time.perf_counter() - t0


def multi_arch(vectors: list[torch.Tensor], metas: list[NetMeta], tasks: list[Task], n: int, latent: int,
               threshold: float, lr: float, lam: float, max_iters: int, activation: str = "elu", seed: int = 0,
               residual: bool = True) -> dict:
    """One AE of input n holds networks of different architectures and sizes (split + padded)."""
    sn = SelfNet(n, latent, (), activation, buffer_size=len(vectors), thresholds=(threshold,), lam=lam, lr=lr,
                 max_iters=max_iters, seed=seed, residual=residual)
    fit = None
    for i, (v, m) in enumerate(zip(vectors, metas)):
        fit = sn.add(f"n{i}", v, m) or fit
    rows = []
    for i, (v, m, t) in enumerate(zip(vectors, metas, tasks)):
        rec = sn.recollect(f"n{i}")
        rows.append({"network": i, "arch": m.arch, "params": m.length, "sub_vectors": math.ceil(m.length / n),
                     "task_name": t.name, "cosine": cosine(rec, v),
                     "original_acc": accuracy_of_flat(m.arch, m.num_outputs, v, t),
                     "reconstructed_acc": accuracy_of_flat(m.arch, m.num_outputs, rec, t)})
    return {"rows": rows, "fit": fit, "storage": sn.storage()}


def single_batch_accuracy(originals: dict[int, tuple[torch.Tensor, float]], tasks: list[Task], arch: str,
                          num_outputs: int, cfg: SelfNetConfig, seed: int = 0) -> dict:
    """The green line of Fig 2.3: a fresh AE learns every original network in one batch
    (to the last threshold), then every task is evaluated with its recollection."""
    keys = sorted(originals)
    sn = SelfNet(cfg.n or originals[keys[0]][0].numel(), cfg.latent, cfg.hidden, cfg.activation, len(keys),
                 (cfg.thresholds[-1],), cfg.lam, cfg.lr[0], cfg.max_iters, cfg.stop, seed=seed,
                 decoder_hidden=cfg.decoder_hidden, residual=cfg.residual)
    fit = None
    for k in keys:
        fit = sn.add(f"t{k}", originals[k][0], NetMeta(arch, num_outputs, originals[k][0].numel())) or fit
    accs = [accuracy_of_flat(arch, num_outputs, sn.recollect(f"t{k}"), tasks[k]) for k in keys]
    return {"reconstructed_acc": _mean(accs), "iterations": fit.iterations, "reached": fit.reached,
            "threshold": fit.threshold, "mean_cosine": _mean(fit.cosines)}
