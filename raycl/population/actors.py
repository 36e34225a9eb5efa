"""The two Ray actors of the population: plain classes, made remote by raycl.population.trainer.

A `SynapseWorker` holds one model: θ_m, its hyper-stream and its random generator (a
`SynapseState`), and advances it with the reference's `begin_epoch` / `advance`. The
`PhenotypeServer` holds φ and its optimizer (`PhenotypeOptimizer`): each step it takes the M
workers' gradients in model order, steps φ and returns the new φ, one object that all
workers read. Both know where they are in the run (epoch, step) and refuse a call meant
for another position, so a worker that Ray restarted with a blank state can never
silently take part before the driver has restored it from a checkpoint.
"""

from __future__ import annotations

import os
import time

import torch

from raycl.hyper.algorithm import PhenotypeOptimizer
from raycl.hyper.config import HyperConfig
from raycl.hyper.models import build_model
from raycl.hyper.population import SynapseState, advance, begin_epoch, model_generator
from raycl.hyper.progress import ModelProgress, PhenotypeProgress, epoch_report, model_snapshot, restore_model, stream_to
from raycl.hyper.trainer import CHECKPOINT, checkpoint_dict, steps_per_epoch
from raycl.runio import torch_save


class StalePosition(RuntimeError):
    """A call for another (epoch, step) than the actor is at: it was restarted, or a step failed."""


def _check(at, want, who: str) -> None:
    if at != want:
        raise StalePosition(f"{who} is at {at}, the call is for {want}")


def pick_device() -> torch.device:
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


class SynapseWorker:
    def __init__(self, cfg: dict, index: int, pool, theta0, threads: int = 1, fault: tuple | None = None):
        torch.set_num_threads(threads)
        self.cfg = HyperConfig.from_dict(cfg)
        self.index = index
        self.device = pick_device()
        self.model = build_model(self.cfg)[0].to(self.device)  # the computation only; θ and φ come in
        self.pool = pool
        self.theta0 = {n: t.to(self.device) for n, t in theta0.items()}
        self.state = SynapseState(index, self.theta0, model_generator(self.cfg.seed, index))
        self.progress: ModelProgress | None = None
        self.at = None  # (epoch, step) once loaded from a checkpoint; None = blank
        self.begun = False
        # test hook: die at (epoch, step) in the first life of this actor only
        self.fault = fault if fault is not None and not self._restarted() else None

    @staticmethod
    def _restarted() -> bool:
        import warnings

        import ray

        with warnings.catch_warnings():  # Ray's own property trips its deprecation warning
            warnings.simplefilter("ignore")
            return bool(ray.get_runtime_context().was_current_actor_reconstructed)

    def ready(self) -> dict:
        import ray

        return {"index": self.index, "pid": os.getpid(), "device": str(self.device),
                "node": ray.get_runtime_context().get_node_id(), "gpus": ray.get_gpu_ids()}

    def load(self, ckpt: dict) -> None:
        """Take this model's state from a checkpoint (in the object store, shared by all workers)."""
        self.progress = restore_model(self.state, ckpt["models"][self.index])
        self.at = (ckpt["epoch"], ckpt["step"])
        self.begun = ckpt["step"] > 0
        if self.begun:
            self.state.theta = {n: t.to(self.device) for n, t in self.state.theta.items()}
            self.state.stream = stream_to(self.state.stream, self.device)
            self.state.window = [({n: t.to(self.device) for n, t in th.items()}, (x.to(self.device), y))
                                 for th, (x, y) in self.state.window]

    def begin_epoch(self, epoch: int, theta0=None) -> None:
        """Reset θ (to the server's learned θ0 when one is passed) and draw the epoch's stream."""
        _check((self.at, self.begun), ((epoch, 0), False), f"worker {self.index}")
        start = {n: t.to(self.device) for n, t in theta0.items()} if theta0 is not None else self.theta0
        begin_epoch(self.state, self.pool, self.cfg, start)
        self.state.stream = stream_to(self.state.stream, self.device)
        self.progress = ModelProgress()
        self.begun = True

    def advance(self, phi, epoch: int, step: int):
        """One hyper-step and this model's gradients; returns ({"phi": ∇φ, "theta0": ∇θ0 or None},
        compute seconds)."""
        _check((self.at, self.begun), ((epoch, step), True), f"worker {self.index}")
        if self.fault == (self.index, epoch, step):
            os._exit(1)
        t = time.perf_counter()
        phi = {n: p.to(self.device) for n, p in phi.items()}
        r = advance(self.model, self.cfg, self.state, phi, step)
        grad = {"phi": {n: g.cpu() for n, g in r.grad_phi.items()},
                "theta0": {n: g.cpu() for n, g in r.grad_theta0.items()} if r.grad_theta0 is not None else None}
        seconds = time.perf_counter() - t
        self.progress.add(r, seconds)
        self.at = (epoch, step + 1)
        return grad, seconds

    def snapshot(self, epoch: int, step: int) -> dict:
        _check(self.at, (epoch, step), f"worker {self.index}")
        return model_snapshot(self.state, self.progress if self.begun else None)

    def end_epoch(self, phi, epoch: int) -> dict:
        """This model's epoch report with the final φ; then wait for the next epoch."""
        n = steps_per_epoch(self.cfg)
        _check((self.at, self.begun), ((epoch, n), True), f"worker {self.index}")
        phi = {k: p.to(self.device) for k, p in phi.items()}
        report = epoch_report(self.model, self.cfg, self.state, phi, self.progress, n)
        self.at, self.begun, self.progress = (epoch + 1, 0), False, None
        return report


class PhenotypeServer:
    def __init__(self, cfg: dict, theta0, phi0, run_path: str | None = None):
        torch.set_num_threads(1)
        self.cfg = HyperConfig.from_dict(cfg)
        self.theta0, self.phi0 = theta0, phi0
        self.opt = PhenotypeOptimizer(phi0, self.cfg, theta0)
        self.run_path = run_path
        self.progress = PhenotypeProgress()
        self.at = None
        self.clock = time.perf_counter()

    def ready(self) -> dict:
        import ray

        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}

    def load(self, ckpt: dict) -> None:
        self.opt.load_state_dict(ckpt["server"])
        self.at = (ckpt["epoch"], ckpt["step"])
        self.progress = PhenotypeProgress.from_state(ckpt["progress"]) if ckpt["step"] > 0 else PhenotypeProgress()

    def phi(self):
        return self.opt.phi

    def theta0(self):
        """The learned θ0 (None when θ0 is not learned)."""
        return self.opt.theta0

    def begin(self, epoch: int, step: int) -> None:
        """Start the step clock: from here, wall time per step = time between φ publications."""
        _check(self.at, (epoch, step), "phenotype server")
        self.clock = time.perf_counter()

    def step(self, epoch: int, step: int, *results):
        """Average the M gradients in model order, step φ, and return the new φ.

        `results` are the workers' (gradient, compute seconds) pairs, passed as ObjectRefs
        that Ray resolves before this runs: the driver never holds them.
        """
        _check(self.at, (epoch, step), "phenotype server")
        t = time.perf_counter()
        norm = self.opt.step([g["phi"] for g, _ in results], [g["theta0"] for g, _ in results])
        now = time.perf_counter()
        # the step's critical path: the slowest model, then the φ update
        compute = max(s for _, s in results) + (now - t)
        self.progress.add(norm, compute, now - self.clock)
        self.clock = now
        self.at = (epoch, step + 1)
        return self.opt.phi

    def end_epoch(self, epoch: int) -> dict:
        _check(self.at, (epoch, steps_per_epoch(self.cfg)), "phenotype server")
        out = self.progress.state()
        self.at, self.progress = (epoch + 1, 0), PhenotypeProgress()
        return out

    def checkpoint(self, meta: dict, write: bool, *models) -> dict:
        """The run's checkpoint at (epoch, step): φ, optimizer state, every model's snapshot
        (resolved by Ray from the workers' ObjectRefs). Written atomically when `write`."""
        epoch, step = meta["epoch"], meta["step"]
        _check(self.at, (epoch, step), "phenotype server")
        ckpt = checkpoint_dict(self.cfg, epoch, step, self.theta0, self.phi0, self.opt.state_dict(), list(models),
                               meta["history"], self.progress.state() if step > 0 else None, meta.get("provenance"))
        if write and self.run_path is not None:
            from pathlib import Path

            torch_save(Path(self.run_path) / CHECKPOINT, ckpt)
        return ckpt
