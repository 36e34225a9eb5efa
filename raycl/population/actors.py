"""The two Ray actors of the population: plain classes, made remote by raycl.population.trainer.

A `SynapseWorker` holds one model: θ_m, its hyper-stream and its random generator (a
`SynapseState`), and advances it with the reference's `begin_epoch` / `advance`. The
`PhenotypeServer` holds φ and its optimizer (`PhenotypeOptimizer`) and drives the steps:
each step it sends φ to the M workers, averages their gradients in model order and steps φ.
Both know where they are in the run (epoch, step) and refuse a call meant for another
position, so a worker that Ray restarted with a blank state can never silently take part
before the driver has restored it from a checkpoint.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from raycl.host import keep_heap, pick_device
from raycl.hyper.algorithm import Params, PhenotypeOptimizer
from raycl.hyper.bookkeeping import ModelProgress, PhenotypeProgress, epoch_report, model_snapshot, restore_model, stream_to
from raycl.hyper.config import HyperConfig
from raycl.hyper.models import build_model
from raycl.hyper.synapses import SynapseState, advance, begin_epoch, model_generator
from raycl.hyper.trainer import CHECKPOINT, checkpoint_dict, steps_per_epoch
from raycl.runio import torch_save


class StalePosition(RuntimeError):
    """A call for another (epoch, step) than the actor is at: it was restarted, or a step failed."""


def _check(at, want, who: str) -> None:
    if at != want:
        raise StalePosition(f"{who} is at {at}, the call is for {want}")


class FlatParams:
    """φ and its gradients on the wire between the actors: one float array in a fixed order
    instead of a dict of tensors. Ray serializes a dict of the phenotype's 12 small tensors in
    about 1.8 ms on a 2-core machine and one array in 0.04 ms, and a step sends φ to every
    worker and a gradient back from each (`bench/population.py` measures the effect)."""

    def __init__(self, like: Params):
        self.names = list(like)
        self.shapes = [tuple(t.shape) for t in like.values()]
        self.sizes = [t.numel() for t in like.values()]

    def pack(self, params: Params) -> np.ndarray:
        return torch.cat([params[n].detach().reshape(-1).cpu() for n in self.names]).numpy()

    def unpack(self, flat: np.ndarray, device: torch.device | None = None) -> Params:
        whole = torch.tensor(flat, device=device)  # a copy: arrays from the object store are read-only
        return {n: p.reshape(shape) for n, p, shape in zip(self.names, whole.split(self.sizes), self.shapes)}


class SynapseWorker:
    def __init__(self, cfg: dict, index: int, pool, theta0, threads: int = 1, fault: tuple | None = None):
        keep_heap()
        torch.set_num_threads(threads)
        self.cfg = HyperConfig.from_dict(cfg)
        self.index = index
        self.device = pick_device()
        model, _, phi0 = build_model(self.cfg)
        self.model = model.to(self.device)  # the computation only; θ and φ come in
        self.wire = FlatParams(phi0)
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

    def advance(self, phi: np.ndarray, epoch: int, step: int):
        """One hyper-step with φ (packed by FlatParams) and this model's gradients; returns
        ({"phi": packed ∇φ, "theta0": ∇θ0 or None}, compute seconds)."""
        _check((self.at, self.begun), ((epoch, step), True), f"worker {self.index}")
        if self.fault == (self.index, epoch, step):
            os._exit(1)
        t = time.perf_counter()
        r = advance(self.model, self.cfg, self.state, self.wire.unpack(phi, self.device), step)
        grad = {"phi": self.wire.pack(r.grad_phi),
                "theta0": {n: g.cpu() for n, g in r.grad_theta0.items()} if r.grad_theta0 is not None else None}
        seconds = time.perf_counter() - t
        self.progress.add(r, seconds)
        self.at = (epoch, step + 1)
        return grad, seconds

    def snapshot(self, epoch: int, step: int, after=None) -> dict:
        """This model's state at (epoch, step); `after` (resolved by Ray first) orders the call
        after the server's steps that bring the worker there."""
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
        self.wire = FlatParams(phi0)
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

    def _step(self, epoch: int, step: int, results: list):
        """Average the M workers' gradients (their (gradient, compute seconds) pairs) in model
        order and step φ."""
        _check(self.at, (epoch, step), "phenotype server")
        t = time.perf_counter()
        norm = self.opt.step([self.wire.unpack(g["phi"]) for g, _ in results], [g["theta0"] for g, _ in results])
        now = time.perf_counter()
        # the step's critical path: the slowest model, then the φ update
        compute = max(s for _, s in results) + (now - t)
        self.progress.add(norm, compute, now - self.clock)
        self.clock = now
        self.at = (epoch, step + 1)

    def run(self, epoch: int, start: int, stop: int, workers: list, *after):
        """Steps start..stop-1 of the epoch, driving the workers from here: each step sends φ to
        every worker and steps φ with their gradients, so neither hop passes through the driver
        (half the synchronisation of a driver-submitted chain). `after` (the workers'
        begin_epoch, a restore point) only orders this call after them. Returns the last φ."""
        import ray

        for step in range(start, stop):
            phi = self.wire.pack(self.opt.phi)
            self._step(epoch, step, ray.get([w.advance.remote(phi, epoch, step) for w in workers]))
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
