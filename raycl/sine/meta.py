"""The Chapter 5 algorithm ("Meta-Learning a Neuronal Phenotype") and its deployment.

Pure algorithm, no I/O: a `SineLearner` holds a DAN regressor, its initial synapses θ0 and
two plain-gradient updaters (θ with lr α, φ with lr γ). `run_function` learns one target
function sub-task by sub-task, batch 1, one update per sample; with `memory_step=True` it
also steps φ alone on the memory loss over everything seen so far after each sub-task
(meta-training); with it off and φ frozen it is deployment.
"""

from __future__ import annotations

from typing import Callable, Iterable

import numpy as np
import torch

from raycl import RayclError
from raycl.dan import build_dan_regressor, load_into, snapshot, split_parameters
from raycl.dan.fused import FusedDAN
from raycl.sine.config import SineConfig
from raycl.sine.names import OPTIMIZERS
from raycl.sine.tasks import sample_function, sample_stream, whole_function_grid



class _Updater:
    """Plain gradient steps (eq 5.5/5.7) or Adam, on a named set of parameters.

    Adam is written with foreach ops: torch.optim.Adam costs milliseconds per step and per
    construction, which dominates a loop of batch-1 updates on a ~75k-parameter network.
    """

    betas = (0.9, 0.999)
    eps = 1e-8

    def __init__(self, params: dict[str, torch.nn.Parameter], lr: float, kind: str):
        if kind not in OPTIMIZERS:
            raise RayclError(f"optimizer must be one of {OPTIMIZERS}, got {kind!r}")
        self.params, self.lr, self.kind = params, lr, kind
        self.names = list(params)
        self.m = [torch.zeros_like(p) for p in params.values()] if kind == "adam" else []
        self.v = [torch.zeros_like(p) for p in params.values()] if kind == "adam" else []
        self.t = 0

    def reset(self) -> None:
        if self.m:
            torch._foreach_zero_(self.m)
            torch._foreach_zero_(self.v)
        self.t = 0

    @torch.no_grad()
    def step(self, grads: dict[str, torch.Tensor]) -> None:
        idx = [i for i, k in enumerate(self.names) if k in grads]
        ps = [self.params[self.names[i]] for i in idx]
        gs = [grads[self.names[i]] for i in idx]
        if self.kind == "sgd":
            torch._foreach_add_(ps, gs, alpha=-self.lr)
            return
        self.t += 1
        b1, b2 = self.betas
        ms, vs = [self.m[i] for i in idx], [self.v[i] for i in idx]
        torch._foreach_lerp_(ms, gs, 1 - b1)
        torch._foreach_mul_(vs, b2)
        torch._foreach_addcmul_(vs, gs, gs, value=1 - b2)
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, (1 - b2**self.t) ** 0.5)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(ps, ms, denom, value=-self.lr / (1 - b1**self.t))


class SineLearner:
    """A DAN regressor with θ0 kept for resets; steps θ and/or φ from fused gradients."""

    def __init__(self, model, lr_theta: float, lr_phi: float, optimizer: str = "sgd"):
        self.model = model
        self.fused = FusedDAN(model)
        self.theta, self.phi = split_parameters(model)
        self.theta0 = snapshot(self.theta)
        self.theta_opt = _Updater(self.theta, lr_theta, optimizer)
        self.phi_opt = _Updater(self.phi, lr_phi, optimizer)

    @classmethod
    def build(cls, cfg: SineConfig, generator: torch.Generator | None = None) -> "SineLearner":
        return cls(build_dan_regressor(generator=generator, **cfg.model_kwargs()), cfg.lr_theta, cfg.lr_phi, cfg.optimizer)

    def reset_theta(self) -> None:
        load_into(self.theta, self.theta0)
        self.theta_opt.reset()

    def set_phi(self, values: dict[str, torch.Tensor]) -> None:
        load_into(self.phi, values)

    def step(self, x: torch.Tensor, y: torch.Tensor, phi: bool = True) -> float:
        loss, grads = self.fused.loss_and_grads(x, y)
        if not torch.isfinite(loss):
            raise RayclError(f"the sine regression loss became {float(loss)} in a batch-1 step: the run diverged and "
                             "stops here, keeping its last good checkpoint; lower --lr-theta (or --lr-phi)")
        self.theta_opt.step(grads)
        if phi:
            self.phi_opt.step(grads)
        return float(loss)

    def memory_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Step φ only on the memory loss (eq 5.7); returns the loss before the step."""
        loss, grads = self.fused.loss_and_grads(x, y, want_theta=False)
        self.phi_opt.step(grads)
        return float(loss)

    @torch.no_grad()
    def mse(self, x: torch.Tensor, y: torch.Tensor) -> float:
        return float(torch.mean((self.model(x) - y) ** 2))

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def run_function(
    learner: SineLearner,
    stream: list[tuple[torch.Tensor, torch.Tensor]],
    grid: tuple[torch.Tensor, torch.Tensor],
    memory_step: bool = False,
    plastic_phi: bool = False,
    keep_predictions: bool = False,
) -> dict:
    """Learn one function's sub-tasks in order from θ0.

    Returns lists indexed by "after sub-task s" (index 0 = before learning for `total`):
    total   MSE over the whole function (grid over [-5, 5]),
    memory  MSE over every sample seen so far (before any memory step of φ),
    task    mean single-sample loss during the sub-task,
    preds   grid predictions (when keep_predictions).
    """
    learner.reset_theta()
    gx, gy = grid
    out = {"total": [learner.mse(gx, gy)], "memory": [], "task": [], "preds": []}
    if keep_predictions:
        out["preds"].append(learner.predict(gx).squeeze(1).clone())
    seen_x, seen_y = [], []
    for x, y in stream:
        losses = [learner.step(x[i : i + 1], y[i : i + 1], phi=plastic_phi) for i in range(len(x))]
        seen_x.append(x)
        seen_y.append(y)
        hx, hy = torch.cat(seen_x), torch.cat(seen_y)
        if memory_step:
            out["memory"].append(learner.memory_step(hx, hy))
        else:
            out["memory"].append(learner.mse(hx, hy))
        out["task"].append(float(np.mean(losses)))
        out["total"].append(learner.mse(gx, gy))
        if keep_predictions:
            out["preds"].append(learner.predict(gx).squeeze(1).clone())
    return out


def meta_train(
    learner: SineLearner,
    cfg: SineConfig,
    rng: np.random.Generator,
    epochs: int,
    on_epoch: Callable[[int, dict], None] | None = None,
    data_hash=None,
) -> None:
    """Algorithm "Meta-Learning a Neuronal Phenotype": one new target function per meta-epoch,
    θ and φ both learn every sample, φ alone steps on the memory loss after each sub-task,
    θ goes back to θ0 for the next function. `data_hash` (a hashlib object), when given, is fed
    every function's sub-task (x, y) tensors as they are drawn (raycl.provenance.feed)."""
    for epoch in range(1, epochs + 1):
        fn = sample_function(rng, cfg.filter)
        stream = sample_stream(fn, rng, cfg.n_subtasks, cfg.samples_per_task)
        if data_hash is not None:
            from raycl.provenance import feed

            feed(data_hash, stream)
        rec = run_function(
            learner, stream, whole_function_grid(fn, cfg.grid_points), memory_step=True, plastic_phi=cfg.inner_phi
        )
        if on_epoch is not None:
            on_epoch(epoch, rec)


def deploy(
    learner: SineLearner,
    phi: dict[str, torch.Tensor],
    streams: Iterable[tuple[list, tuple]],
    plastic: bool = False,
    keep_predictions: bool = False,
    lr_theta: float | None = None,
) -> list[dict]:
    """Deployment: every function starts from θ0 and the given φ; φ is frozen unless
    `plastic` (then it keeps learning the task loss at lr γ, as in the inner loop). θ steps at
    `lr_theta` (default: the learner's α)."""
    records, alpha = [], learner.theta_opt.lr
    learner.theta_opt.lr = alpha if lr_theta is None else lr_theta
    try:
        for stream, grid in streams:
            learner.set_phi(phi)
            learner.phi_opt.reset()
            records.append(run_function(learner, stream, grid, plastic_phi=plastic, keep_predictions=keep_predictions))
    except RayclError as e:
        if "diverged" not in str(e):
            raise
        raise RayclError(f"deployment on unseen functions diverged (θ steps at α = {learner.theta_opt.lr:g}); "
                         "lower --deploy-lr-theta (default: --lr-theta)" + (" or --lr-phi" if plastic else "")) from None
    finally:
        learner.theta_opt.lr = alpha
    learner.set_phi(phi)
    return records
