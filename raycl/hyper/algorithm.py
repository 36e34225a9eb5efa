"""The Hyper-Learning algorithm (§6.3) as pure functions over (θ_m, φ).

These functions are the whole algorithm. The single-process reference trainer
(raycl.hyper.trainer) and the Ray population (raycl.population) both call them, so they give
the same numbers. θ and φ are dicts of tensors keyed like `model.named_parameters()`, used
through `torch.func.functional_call`; `model` only supplies the computation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.func import functional_call

from raycl.hyper.config import HyperConfig
from raycl.hyper.stream import HyperStream

Params = dict[str, torch.Tensor]


def task_loss(model, params: Params, x: torch.Tensor, y: torch.Tensor, mode: str) -> torch.Tensor:
    """NLL over class logits (eq 6.1), or reconstruction MSE for the DAN auto-encoder (eq 6.2)."""
    out = functional_call(model, params, (x,))
    if mode == "unsupervised":
        return F.mse_loss(out, x)
    return F.cross_entropy(out, y.to(out.device))  # labels are built on the CPU


def synaptic_step(model, theta: Params, phi: Params, x, y, lr: float, mode: str, create_graph: bool = False):
    """One plain SGD step on the synapses (eq 6.3). Returns (θ_{t+1}, task loss).

    With create_graph the new θ stays a function of φ, so a later loss can be
    back-propagated through the update.
    """
    if not create_graph:
        theta = {n: t.detach().requires_grad_() for n, t in theta.items()}
    loss = task_loss(model, {**theta, **phi}, x, y, mode)
    grads = torch.autograd.grad(loss, list(theta.values()), create_graph=create_graph)
    new = {n: t - lr * g for (n, t), g in zip(theta.items(), grads)}
    if not create_graph:
        new = {n: t.detach() for n, t in new.items()}
    return new, loss.detach()


def hyper_batch(stream: HyperStream, cfg: HyperConfig, task_index: int, generator: torch.Generator):
    """The instances whose loss at θ_{t+1} trains φ (eq 6.4): drawn from the whole stream
    (the dissertation's choice), from the tasks seen so far, or from their held-out instances."""
    seen = task_index + 1
    if cfg.hyper_loss_over == "stream":
        x, y = stream.instances("all")
    elif cfg.hyper_loss_over == "seen":
        x, y = stream.instances("all", upto=seen)
    else:
        x, y = stream.instances("holdout", upto=seen)
    pick = torch.randint(len(x), (cfg.hyper_batch,), generator=generator)
    return x[pick], y[pick]


def task_batch(stream: HyperStream, cfg: HyperConfig, step: int, generator: torch.Generator):
    """The synaptic step's data: task step // k (class-incremental), or for the IID control
    i instances drawn from all continual-learning tasks, so classes arrive in random order."""
    if cfg.order == "sequential":
        return stream.task(step // cfg.k)
    x, y = stream.instances("train", upto=cfg.h_cl)
    pick = torch.randint(len(x), (cfg.i,), generator=generator)
    return x[pick], y[pick]


@dataclass
class StepResult:
    theta: Params  # θ_{t+1}
    grad_phi: Params  # ∇φ of the hyper-loss for this model
    task_loss: float
    hyper_loss: float


def local_step(model, cfg: HyperConfig, theta: Params, phi: Params, task, hyper, window=()) -> StepResult:
    """One model's share of a hyper-step: SGD on θ with the task loss, then the hyper-loss at
    θ_{t+1} and its gradient w.r.t. φ (first order: θ_{t+1} held constant; or through the update).

    `window` holds the model's last (θ_before, task) pairs, oldest first. With cfg.unroll = u > 1
    the φ gradient goes through the last u updates: they are replayed from the oldest θ of the
    window with the current φ (truncated back-propagation through the synaptic trajectory).
    θ_{t+1} itself is always the one plain SGD step from θ_t."""
    phi = {n: p.detach().requires_grad_() for n, p in phi.items()}
    frozen_phi = {n: p.detach() for n, p in phi.items()}
    replay = list(window)[-(cfg.unroll - 1):] if cfg.unroll > 1 else []
    if cfg.phi_grad == "through-update":
        start = replay[0][0] if replay else theta
        unrolled = {n: t.detach().requires_grad_() for n, t in start.items()}
        for earlier in [t for _, t in replay] + [task]:
            unrolled, tl = synaptic_step(model, unrolled, phi, *earlier, cfg.lr_synapses, cfg.mode, create_graph=True)
        theta_next = unrolled
    if cfg.phi_grad == "first-order" or replay:  # the real step, from θ_t
        theta_next, tl = synaptic_step(model, theta, frozen_phi, *task, cfg.lr_synapses, cfg.mode)
    if cfg.phi_grad == "first-order":
        unrolled = theta_next
    hl = task_loss(model, {**unrolled, **phi}, *hyper, cfg.mode)
    grads = torch.autograd.grad(hl, list(phi.values()))
    return StepResult(
        theta={n: t.detach() for n, t in theta_next.items()},
        grad_phi=dict(zip(phi.keys(), grads)),
        task_loss=float(tl),
        hyper_loss=float(hl.detach()),
    )


def average_gradients(grads: list[Params]) -> Params:
    """Mean of the population's φ gradients (eq 6.6), summed in model order."""
    out = {n: g.clone() for n, g in grads[0].items()}
    for g in grads[1:]:
        for n in out:
            out[n] += g[n]
    return {n: v / len(grads) for n, v in out.items()}


class PhenotypeOptimizer:
    """φ and its optimizer; one step per synaptic step with the population's mean gradient."""

    def __init__(self, phi: Params, cfg: HyperConfig):
        self.params = {n: torch.nn.Parameter(p.detach().clone()) for n, p in phi.items()}
        cls = torch.optim.Adam if cfg.phenotype_optimizer == "adam" else torch.optim.SGD
        self.opt = cls(self.params.values(), lr=cfg.lr_phenotype)

    @property
    def phi(self) -> Params:
        return {n: p.detach() for n, p in self.params.items()}

    def step(self, grads: list[Params]) -> float:
        """Average, step, and return the mean gradient's norm."""
        mean = average_gradients(grads)
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in mean.values())).item()
        if not torch.isfinite(torch.tensor(norm)):
            from raycl import RayclError

            raise RayclError("the phenotype gradient is not finite (NaN/inf); lower lr_synapses or lr_phenotype")
        for n, p in self.params.items():
            p.grad = mean[n].to(p.dtype)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return norm

    def state_dict(self) -> dict:
        return {"phi": self.phi, "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(state["phi"][n])
        self.opt.load_state_dict(state["opt"])
