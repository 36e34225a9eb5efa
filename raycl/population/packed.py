"""`PackedTrainer`: M models in one process, their hyper-steps computed together.

The M models' synapses are stacked (each tensor of θ gets a leading model dimension) and one
`torch.func.vmap` call runs every model's synaptic step and φ gradient at once, with φ shared.
This is the fast path when the models are small (one per device wastes it) or when there are
more models than devices. Everything random stays per model and in Python, exactly as in
`raycl.hyper.synapses.advance`: each model keeps its own `SynapseState` (generator,
hyper-stream) and draws its task and hyper-stream batches in the same order; only the
compute is vmapped. φ is stepped by the same `PhenotypeOptimizer` with the list of per-model
gradients, so the run gives the reference trainer's φ and rows, and writes its checkpoint.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.func import grad, vmap

from raycl import RayclError
from raycl.host import pick_device
from raycl.hyper.algorithm import Params, StepResult, hyper_batch, output_rows, seen_classes, task_batch, task_loss
from raycl.hyper.bookkeeping import epoch_report, stream_to
from raycl.hyper.config import HyperConfig
from raycl.hyper.trainer import ReferenceTrainer


PER_MODEL = (0, None, 0, 0, 0, 0)  # vmap's in_dims for (θ, φ, task x, task y, hyper x, hyper y): φ is shared


def check_packable(cfg: HyperConfig) -> None:
    """The settings the packed form computes; anything else is refused with what to use instead."""
    if cfg.unroll > 1:
        raise RayclError("--backend packed supports unroll 1; use --backend reference or ray for --unroll > 1 "
                         "(or --phi-grad through-task, which goes back through a whole task)")


def stack(thetas: list[Params], device) -> Params:
    return {n: torch.stack([t[n] for t in thetas]).to(device) for n in thetas[0]}


def unstack(theta: Params, m: int) -> Params:
    return {n: t[m] for n, t in theta.items()}


class PackedStep:
    """One hyper-step of one model as a function of (θ_m, batches_m) with φ shared, built from
    `task_loss` with torch.func transforms (autograd.grad does not run under vmap) and
    following `local_step` / `task_step` step for step; vmapped over the model dimension."""

    def __init__(self, model, cfg: HyperConfig):
        self.model, self.cfg = model, cfg
        self.learn_theta0 = "theta0" in cfg.learn

    def _loss(self, theta, phi, x, y, n_seen=None):
        return task_loss(self.model, {**theta, **phi}, x, y, self.cfg.mode, n_seen)

    def _sgd(self, theta, phi, x, y, n_seen):
        """The synaptic step (eq 6.3): θ - α ∇θ L_task. Returns (θ_{t+1}, task loss)."""
        def loss(th):
            out = self._loss(th, phi, x, y, n_seen)
            return out, out.detach()

        g, tl = grad(loss, has_aux=True)(theta)
        return {n: t - self.cfg.lr_synapses * g[n] for n, t in theta.items()}, tl

    def _wrt(self):
        # the θ-side gradient costs the weight-gradient products: only when θ0 is learned
        return (0, 1) if self.learn_theta0 else 0

    def _hyper(self, theta_at, phi, hx, hy):
        """∇φ of the hyper-loss at θ_at held constant and, with a learned θ0, its gradient w.r.t. θ_at."""
        def loss(ph, th):
            out = self._loss(th, ph, hx, hy)
            return out, out.detach()

        g, hl = grad(loss, argnums=self._wrt(), has_aux=True)(phi, theta_at)
        g_phi, g_at = g if self.learn_theta0 else (g, {})
        return g_phi, g_at, hl

    def first_order(self, theta, phi, x, y, hx, hy, n_seen=None):
        theta_next, tl = self._sgd(theta, phi, x, y, n_seen)  # φ is no grad input here: θ_{t+1} is held constant
        g_phi, g_at, hl = self._hyper(theta_next, phi, hx, hy)
        return theta_next, g_phi, g_at, tl, hl

    def through(self, theta, phi, xs, ys, hx, hy, n_seen: tuple):
        """The φ gradient back through len(xs) synaptic steps (through-update: 1, through-task: k).
        A zero `probe` added to the last θ gives the gradient w.r.t. the θ the hyper-loss is taken
        at (the learned θ0's first-order gradient) from the same backward pass."""
        def hyper(ph, probe):
            th, tls = theta, []
            for j, ns in enumerate(n_seen):
                th, tl = self._sgd(th, ph, xs[j], ys[j], ns)
                tls.append(tl)
            out = self._loss({n: t + probe[n] for n, t in th.items()}, ph, hx, hy)
            return out, ({n: t.detach() for n, t in th.items()}, torch.stack(tls), out.detach())

        probe = {n: torch.zeros_like(t) for n, t in theta.items()}
        g, (theta_next, tls, hl) = grad(hyper, argnums=self._wrt(), has_aux=True)(phi, probe)
        g_phi, g_at = g if self.learn_theta0 else (g, {})
        return theta_next, g_phi, g_at, tls, hl


class PackedTrainer(ReferenceTrainer):
    """The population packed into one process: M models stacked, one vmapped hyper-step. The
    states, the phenotype optimizer (on the CPU) and the checkpoint are the reference's."""

    def __init__(self, cfg: HyperConfig, out: str | Path | None = None, pool=None, *, device=None):
        check_packable(cfg)
        super().__init__(cfg, out, pool)
        self.device = pick_device(device)
        self.model = self.model.to(self.device)  # the computation only; θ and φ come in
        if cfg.readout_rule == "reset":
            self._reset_rows = output_rows(self.theta0, cfg.n_outputs)  # a missing linear read-out fails here
        self.packed = PackedStep(self.model, cfg)
        self.theta: Params | None = None  # the population's θ, (M, ...) on self.device, inside an epoch

    # --- the population's θ: stacked inside an epoch, per model in the states otherwise -------------
    def _pack(self) -> None:
        for s in self.states:
            s.stream = stream_to(s.stream, self.device)
        self.theta = stack([s.theta for s in self.states], self.device)

    def _unpack(self) -> None:
        if self.theta is not None:
            for m, s in enumerate(self.states):
                s.theta = {n: t.clone() for n, t in unstack(self.theta, m).items()}

    def _reset_row(self, row: int) -> None:
        """reset_output_row for every model: the rows it zeroes are the same for all of them."""
        for n in self._reset_rows:
            t = self.theta[n].clone()
            t[:, row] = 0
            self.theta[n] = t

    def _to(self, batches: list) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys = zip(*batches)
        return torch.stack(xs).to(self.device), torch.stack([y.to(self.device) for y in ys])

    # --- one hyper-step of all M models -----------------------------------------------------------
    def _step(self, phi: Params, step: int) -> list[StepResult]:
        cfg, states = self.cfg, self.states
        sequential_reset = cfg.readout_rule == "reset" and cfg.order == "sequential"
        if cfg.phi_grad == "through-task":
            first = step * cfg.k
            if sequential_reset:
                self._reset_row(step)
            # per model, in advance()'s order: the task's k batches, then the hyper-batch
            draws = [([task_batch(s.stream, cfg, first + j, s.generator) for j in range(cfg.k)],
                      hyper_batch(s.stream, cfg, step, s.generator)) for s in states]
            tasks = [self._to(d[0]) for d in draws]
            xs, ys = torch.stack([t[0] for t in tasks]), torch.stack([t[1] for t in tasks])  # (M, k, i, ...)
            hx, hy = self._to([d[1] for d in draws])
            n_seen = tuple(seen_classes(cfg, first + j) for j in range(cfg.k))
            fn = lambda th, ph, a, b, c, d: self.packed.through(th, ph, a, b, c, d, n_seen)  # noqa: E731
            theta, g_phi, g_at, tls, hl = vmap(fn, in_dims=PER_MODEL)(self.theta, phi, xs, ys, hx, hy)
            tls = tls.cpu()
            task_losses = [sum(float(v) for v in tls[m]) / cfg.k for m in range(len(states))]
        else:
            if sequential_reset and step % cfg.k == 0:
                self._reset_row(step // cfg.k)
            draws = [(task_batch(s.stream, cfg, step, s.generator), hyper_batch(s.stream, cfg, step // cfg.k,
                                                                                 s.generator)) for s in states]
            x, y = self._to([d[0] for d in draws])
            hx, hy = self._to([d[1] for d in draws])
            n_seen = seen_classes(cfg, step)
            if cfg.phi_grad == "first-order":
                fn = lambda th, ph, a, b, c, d: self.packed.first_order(th, ph, a, b, c, d, n_seen)  # noqa: E731
                theta, g_phi, g_at, tls, hl = vmap(fn, in_dims=PER_MODEL)(self.theta, phi, x, y, hx, hy)
            else:  # through-update, one step
                fn = lambda th, ph, a, b, c, d: self.packed.through(  # noqa: E731
                    th, ph, a.unsqueeze(0), b.unsqueeze(0), c, d, (n_seen,))
                theta, g_phi, g_at, tls, hl = vmap(fn, in_dims=PER_MODEL)(self.theta, phi, x, y, hx, hy)
                tls = tls[:, 0]
            task_losses = [float(v) for v in tls.cpu()]
        self.theta = theta
        g_phi = {n: g.cpu() for n, g in g_phi.items()}
        g_at = {n: g.cpu() for n, g in g_at.items()} if self.packed.learn_theta0 else None
        hl = hl.cpu()
        return [StepResult(theta={}, grad_phi=unstack(g_phi, m), task_loss=task_losses[m], hyper_loss=float(hl[m]),
                           grad_theta0=unstack(g_at, m) if g_at is not None else None) for m in range(len(states))]

    # --- the backend hooks ------------------------------------------------------------------------
    def run_epoch(self) -> list[dict]:
        cfg, t0 = self.cfg, time.perf_counter()
        if self.step == 0:
            self._begin_epoch()
        if self.theta is None:
            self._pack()
        for step in range(self.step, self.n_steps):
            t_step = time.perf_counter()
            phi = {n: p.to(self.device) for n, p in self.server.phi.items()}
            results = self._step(phi, step)
            compute = time.perf_counter() - t_step
            for r, p in zip(results, self._progress):
                p.add(r, compute)  # the models are computed together: each one's compute is the packed step's
            norm = self.server.step([r.grad_phi for r in results], [r.grad_theta0 for r in results])
            wall = time.perf_counter() - t_step
            self._phenotype.add(norm, wall, wall)  # one process: the whole step is compute
            self.step = step + 1
        self._unpack()
        self.theta = None
        phi = {n: p.to(self.device) for n, p in self.server.phi.items()}
        reports = [epoch_report(self.model, cfg, s, phi, p, self.n_steps) for s, p in zip(self.states, self._progress)]
        self.epoch, self.step = self.epoch + 1, 0
        self.set_trace(reports, self._phenotype)
        return self.epoch_rows(reports, self._phenotype.grad_norm_sum, time.perf_counter() - t0)

    def checkpoint(self) -> dict:
        self._unpack()
        return super().checkpoint()

    def _load(self, ckpt: dict) -> None:
        super()._load(ckpt)  # a mid-epoch checkpoint (written by the Ray backend) brings θ_m and streams
        self.theta = None  # packed again from the states at the next step
