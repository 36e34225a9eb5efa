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


def task_loss(model, params: Params, x: torch.Tensor, y: torch.Tensor, mode: str,
              n_seen: int | None = None) -> torch.Tensor:
    """NLL over class logits (eq 6.1), or reconstruction MSE for the DAN auto-encoder (eq 6.2).
    With n_seen the softmax runs over the first n_seen classes only (the seen-softmax read-out)."""
    out = functional_call(model, params, (x,))
    if mode == "unsupervised":
        return F.mse_loss(out, x)
    if n_seen is not None:
        out = out[:, :n_seen]
    return F.cross_entropy(out, y.to(out.device))  # labels are built on the CPU


def synaptic_step(model, theta: Params, phi: Params, x, y, lr: float, mode: str, create_graph: bool = False,
                  n_seen: int | None = None):
    """One plain SGD step on the synapses (eq 6.3). Returns (θ_{t+1}, task loss).

    With create_graph the new θ stays a function of φ, so a later loss can be
    back-propagated through the update.
    """
    if not create_graph:
        theta = {n: t.detach().requires_grad_() for n, t in theta.items()}
    loss = task_loss(model, {**theta, **phi}, x, y, mode, n_seen)
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


READOUT_RULES = ("linear", "seen-softmax", "reset", "ncm")


def seen_classes(cfg: HyperConfig, step: int) -> int | None:
    """The softmax's classes at synaptic step `step` under the seen-softmax rule (None: all)."""
    if cfg.readout_rule != "seen-softmax":
        return None
    return step // cfg.k + 1 if cfg.order == "sequential" else cfg.h_cl


def output_rows(theta: Params, n_outputs: int) -> tuple[str, str]:
    """The names of the read-out's weight and bias: the last θ pair with one row per class."""
    names = [n for n, t in theta.items() if t.dim() >= 1 and t.shape[0] == n_outputs]
    weights = [n for n in names if theta[n].dim() == 2]
    biases = [n for n in names if theta[n].dim() == 1]
    if not weights or not biases:
        from raycl import RayclError

        raise RayclError("the reset read-out rule needs a linear read-out layer (--readout linear)")
    return weights[-1], biases[-1]


def reset_output_row(theta: Params, row: int, n_outputs: int) -> Params:
    """ANML-style: a new class's output row starts from zero, so its first update is not
    fighting the random row the network was initialised with."""
    w, b = output_rows(theta, n_outputs)
    out = dict(theta)
    for n in (w, b):
        t = theta[n].detach().clone()
        t[row] = 0
        out[n] = t
    return out


@dataclass
class StepResult:
    theta: Params  # θ_{t+1}
    grad_phi: Params  # ∇φ of the hyper-loss for this model
    task_loss: float
    hyper_loss: float
    grad_theta0: Params | None = None  # with a learned θ0: the hyper-loss's gradient w.r.t. the θ it is taken at


def _grads(cfg: HyperConfig, hl, phi: Params, theta_at: Params):
    """∇φ of the hyper-loss and, when θ0 is learned, its first-order θ0 gradient (as first-order
    MAML: the gradient w.r.t. the synapses the hyper-loss is evaluated at)."""
    learn_theta0 = "theta0" in cfg.learn
    wrt = list(phi.values()) + (list(theta_at.values()) if learn_theta0 else [])
    grads = torch.autograd.grad(hl, wrt)
    g_phi = dict(zip(phi.keys(), grads[: len(phi)]))
    g_theta0 = dict(zip(theta_at.keys(), grads[len(phi):])) if learn_theta0 else None
    return g_phi, g_theta0


def local_step(model, cfg: HyperConfig, theta: Params, phi: Params, task, hyper, window=(),
               n_seen: int | None = None) -> StepResult:
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
            unrolled, tl = synaptic_step(model, unrolled, phi, *earlier, cfg.lr_synapses, cfg.mode, create_graph=True,
                                         n_seen=n_seen)
        theta_next = unrolled
    if cfg.phi_grad == "first-order" or replay:  # the real step, from θ_t
        theta_next, tl = synaptic_step(model, theta, frozen_phi, *task, cfg.lr_synapses, cfg.mode, n_seen=n_seen)
    if cfg.phi_grad == "first-order":
        unrolled = {n: t.requires_grad_() for n, t in theta_next.items()} if "theta0" in cfg.learn else theta_next
    hl = task_loss(model, {**unrolled, **phi}, *hyper, cfg.mode)
    g_phi, g_theta0 = _grads(cfg, hl, phi, unrolled)
    return StepResult(
        theta={n: t.detach() for n, t in theta_next.items()},
        grad_phi=g_phi,
        task_loss=float(tl),
        hyper_loss=float(hl.detach()),
        grad_theta0=g_theta0,
    )


def task_step(model, cfg: HyperConfig, theta: Params, phi: Params, batches, hyper,
              n_seen: list | None = None) -> StepResult:
    """One model's share of a per-task hyper-step (phi_grad = through-task, OML/ANML style):
    the task's k synaptic steps with φ fixed, then the hyper-loss at the task's last θ,
    back-propagated once through all k updates to φ. φ moves once per task.

    θ follows exactly the plain SGD trajectory (φ does not change inside the task), so this is
    the gradient the window form (`unroll` = k) would give at the task's last step, for one
    backward pass instead of k."""
    phi = {n: p.detach().requires_grad_() for n, p in phi.items()}
    unrolled = {n: t.detach().requires_grad_() for n, t in theta.items()}
    losses = []
    for j, (x, y) in enumerate(batches):
        unrolled, tl = synaptic_step(model, unrolled, phi, x, y, cfg.lr_synapses, cfg.mode, create_graph=True,
                                     n_seen=None if n_seen is None else n_seen[j])
        losses.append(float(tl))
    hl = task_loss(model, {**unrolled, **phi}, *hyper, cfg.mode)
    g_phi, g_theta0 = _grads(cfg, hl, phi, unrolled)
    return StepResult(
        theta={n: t.detach() for n, t in unrolled.items()},
        grad_phi=g_phi,
        task_loss=sum(losses) / len(losses),
        hyper_loss=float(hl.detach()),
        grad_theta0=g_theta0,
    )


def average_gradients(grads: list[Params]) -> Params:
    """Mean of the population's φ gradients (eq 6.6), summed in model order."""
    out = {n: g.clone() for n, g in grads[0].items()}
    for g in grads[1:]:
        for n in out:
            out[n] += g[n]
    return {n: v / len(grads) for n, v in out.items()}


class PhenotypeOptimizer:
    """φ and its optimizer; one step per hyper-step with the population's mean gradient.
    With cfg.learn naming theta0, the synapses' starting point θ0 is learned beside φ (same
    optimizer, first-order gradients); with learn = theta0 alone φ stays where it started."""

    def __init__(self, phi: Params, cfg: HyperConfig, theta0: Params | None = None):
        self.params = {n: torch.nn.Parameter(p.detach().clone()) for n, p in phi.items()}
        self.learn_phi = "phenotype" in cfg.learn
        self.init = ({n: torch.nn.Parameter(t.detach().clone()) for n, t in theta0.items()}
                     if "theta0" in cfg.learn and theta0 is not None else {})
        cls = torch.optim.Adam if cfg.phenotype_optimizer == "adam" else torch.optim.SGD
        learned = (list(self.params.values()) if self.learn_phi else []) + list(self.init.values())
        self.opt = cls(learned, lr=cfg.lr_phenotype)

    @property
    def phi(self) -> Params:
        return {n: p.detach() for n, p in self.params.items()}

    @property
    def theta0(self) -> Params | None:
        """The learned θ0 (None when θ0 is not learned)."""
        return {n: p.detach() for n, p in self.init.items()} if self.init else None

    def step(self, grads: list[Params], theta0_grads: list[Params] | None = None) -> float:
        """Average, step, and return the mean φ gradient's norm."""
        mean = average_gradients(grads)
        norm = torch.sqrt(sum((g.double() ** 2).sum() for g in mean.values())).item()
        if not torch.isfinite(torch.tensor(norm)):
            from raycl import RayclError

            raise RayclError("the phenotype gradient is not finite (NaN/inf); lower lr_synapses or lr_phenotype")
        if self.learn_phi:
            for n, p in self.params.items():
                p.grad = mean[n].to(p.dtype)
        if self.init:
            mean0 = average_gradients(theta0_grads)
            for n, p in self.init.items():
                p.grad = mean0[n].to(p.dtype)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return norm

    def state_dict(self) -> dict:
        state = {"phi": self.phi, "opt": self.opt.state_dict()}
        if self.init:
            state["theta0"] = self.theta0
        return state

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            for n, p in self.params.items():
                p.copy_(state["phi"][n])
            for n, p in self.init.items():
                p.copy_(state["theta0"][n])
        self.opt.load_state_dict(state["opt"])
