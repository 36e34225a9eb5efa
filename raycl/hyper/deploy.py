"""Deployment (§6.3, last paragraph): φ frozen, synapses from θ0 learn d tasks in sequence,
each seen once (k plain SGD steps on its i instances), no replay. Memory is accuracy on the
instances trained on, generalization accuracy on held-out instances of the classes seen."""

from __future__ import annotations

import torch
from torch.func import functional_call

from raycl.hyper.algorithm import Params, synaptic_step
from raycl.hyper.stream import HyperStream, sample_stream


@torch.no_grad()
def score(model, params: Params, x, y, n_seen: int, mode: str, means: torch.Tensor | None = None) -> float:
    """Accuracy with argmax over the classes seen so far (or, given class `means` of the last
    hidden layer, the nearest class mean), or reconstruction MSE."""
    if means is not None:
        _, hidden = functional_call(model, params, (x,), {"return_hidden": True})
        pred = torch.cdist(hidden[-1], means).argmin(1)
        return float((pred == y.to(pred.device)).float().mean())
    out = functional_call(model, params, (x,))
    if mode == "unsupervised":
        return float(((out - x) ** 2).mean())
    return float((out[:, :n_seen].argmax(1) == y.to(out.device)).float().mean())


@torch.no_grad()
def class_means(model, params: Params, stream: HyperStream, seen: int) -> torch.Tensor:
    """Nearest-class-mean read-out: each seen class's mean last-hidden-layer code over the
    instances it was trained on (the synapses' memory, no held-out instance)."""
    x, y = stream.instances("train", upto=seen)
    _, hidden = functional_call(model, params, (x,), {"return_hidden": True})
    h = hidden[-1]
    return torch.stack([h[y.to(h.device) == c].mean(0) for c in range(seen)])


def stage_metrics(model, params: Params, stream: HyperStream, seen: int, mode: str, rule: str = "linear") -> dict:
    tx, ty = stream.instances("train", upto=seen)
    hx, hy = stream.instances("holdout", upto=seen)
    lx, ly = stream.task(seen - 1)
    means = class_means(model, params, stream, seen) if rule == "ncm" else None
    return {
        "memory": score(model, params, tx, ty, seen, mode, means),
        "generalization": score(model, params, hx, hy, seen, mode, means) if len(hx) else float("nan"),
        "last_task": score(model, params, lx, ly, seen, mode, means),
    }


def _rule_step(rule: str, theta: Params, j: int, n_outputs: int | None):
    """What a read-out rule does as task j begins: reset zeroes the new class's output row."""
    if rule == "reset":
        from raycl.hyper.algorithm import reset_output_row

        return reset_output_row(theta, j, n_outputs)
    return theta


def deploy(model, theta0: Params, phi: Params, stream: HyperStream, k: int, lr: float, mode: str,
           on_task=None, rule: str = "linear", n_outputs: int | None = None) -> list[dict]:
    """Learn the stream's tasks in order with φ fixed; metrics after each task.
    `on_task(j, params)` is called after task j (1-based), e.g. to draw reconstructions.
    `rule` is the read-out rule: linear, seen-softmax (the softmax over the seen classes
    only), reset (a new class's output row starts at zero) or ncm (linear training, read out
    by the nearest class mean of the last hidden layer)."""
    theta = dict(theta0)
    rows = []
    for j in range(stream.n_tasks):
        x, y = stream.task(j)
        theta = _rule_step(rule, theta, j, n_outputs)
        n_seen = j + 1 if rule == "seen-softmax" else None
        for _ in range(k):
            theta, _ = synaptic_step(model, theta, phi, x, y, lr, mode, n_seen=n_seen)
        rows.append({"task": j + 1, **stage_metrics(model, {**theta, **phi}, stream, j + 1, mode, rule)})
        if on_task is not None:
            on_task(j + 1, {**theta, **phi})
    return rows


def deploy_replay(model, theta0: Params, phi0: Params, stream: HyperStream, budget: int, lr: float, mode: str,
                  batch: int, generator: torch.Generator, rule: str = "linear", n_outputs: int | None = None) -> list[dict]:
    """The iid-replay baseline (Fig 6.10): the whole network (θ and φ) from its random init,
    trained with SGD on batches drawn iid from everything seen so far, `budget` updates in all."""
    params = {**theta0, **phi0}
    names = list(params)
    rows = []
    per_task = [budget // stream.n_tasks + (j < budget % stream.n_tasks) for j in range(stream.n_tasks)]
    for j in range(stream.n_tasks):
        x_all, y_all = stream.instances("train", upto=j + 1)
        params = _rule_step(rule, params, j, n_outputs)
        n_seen = j + 1 if rule == "seen-softmax" else None
        for _ in range(per_task[j]):
            pick = torch.randint(len(x_all), (batch,), generator=generator)
            # every parameter is plastic here, so all of them are the "synapses" of this step
            params, _ = synaptic_step(model, params, {}, x_all[pick], y_all[pick], lr, mode, n_seen=n_seen)
        rows.append({"task": j + 1, **stage_metrics(model, {n: params[n] for n in names}, stream, j + 1, mode, rule)})
    return rows


def deployment_streams(pool, n: int, d: int, i: int, holdout: int, seed: int) -> list[HyperStream]:
    """n deployment sequences of d tasks; seed s always gives the same sequence."""
    return [sample_stream(pool, d, i, holdout, torch.Generator().manual_seed(seed + s)) for s in range(n)]
