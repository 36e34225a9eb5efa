"""Hyper-training drivers.

`PopulationTrainer` is what every backend shares: the outer loop, the rows it logs, the
TensorBoard scalars and the checkpoint file. `ReferenceTrainer` advances the M models one
after another in this process with the pure functions of raycl.hyper.algorithm; the Ray
backend (raycl.population.RayTrainer) runs the same functions in actors and must
reproduce its numbers.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from raycl import RayclError
from raycl.guard import DivergenceGuard
from raycl.hyper.algorithm import PhenotypeOptimizer
from raycl.hyper.bookkeeping import ModelProgress, PhenotypeProgress, epoch_report, model_snapshot, restore_model
from raycl.hyper.config import HyperConfig
from raycl.hyper.models import build_model
from raycl.hyper.stream import meta_pool
from raycl.hyper.synapses import SynapseState, advance, begin_epoch, model_generator
from raycl.provenance import record
from raycl.runio import RunDir, torch_load, torch_save

CHECKPOINT = "checkpoint.pt"


def meta_train_pool(cfg: HyperConfig):
    """The hyper-task distribution: the source's meta-train classes, in the models' input form."""
    return meta_pool(cfg.source, "meta-train", cfg.image_size, cfg.data_root)


def steps_per_epoch(cfg: HyperConfig) -> int:
    """Hyper-steps (φ updates) per outer epoch: one per synaptic step, or one per task."""
    return cfg.h_cl if cfg.phi_grad == "through-task" else cfg.h_cl * cfg.k


def checkpoint_dict(cfg: HyperConfig, epoch: int, step: int, theta0, phi0, server: dict, models: list[dict],
                    history: list[dict], progress: dict | None = None, provenance: dict | None = None) -> dict:
    """The one checkpoint format of every backend. step > 0 marks a mid-epoch checkpoint: then
    `models` carry θ_m and their streams and `progress` the phenotype side's record."""
    return {"config": cfg.to_dict(), "epoch": epoch, "step": step, "theta0": theta0, "phi0": phi0,
            "server": server, "models": list(models), "history": list(history), "progress": progress,
            "provenance": provenance}


def fresh_checkpoint(cfg: HyperConfig, theta0, phi0) -> dict:
    """The state of a run before its first step, in checkpoint form."""
    models = [model_snapshot(SynapseState(m, theta0, model_generator(cfg.seed, m)), None)
              for m in range(cfg.population)]
    return checkpoint_dict(cfg, 0, 0, theta0, phi0, PhenotypeOptimizer(phi0, cfg, theta0).state_dict(), models, [])


class PopulationTrainer:
    """Shared driver. A backend implements run_epoch() (from self.step to the epoch's end,
    returning its rows via epoch_rows), checkpoint() and _load(ckpt)."""

    def __init__(self, cfg: HyperConfig, out: str | Path | None = None, pool=None):
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.model, self.theta0, phi0 = build_model(cfg)
        self.phi0 = phi0
        self.pool = pool if pool is not None else meta_train_pool(cfg)
        self.provenance = record(**{"meta-train": self.pool})  # the exact arrays trained on, and with what
        self.epoch = 0
        self.step = 0  # next synaptic step within the epoch (0: at an epoch boundary)
        self.history: list[dict] = []
        self.last_trace: dict | None = None  # per-step record of the last epoch run
        self.run = RunDir(out) if out is not None else None
        # a fresh network's loss: chance-level cross-entropy, or about 1 for standardised pixels
        start = math.log(cfg.n_outputs) if cfg.mode == "supervised" else 1.0
        self.guard = DivergenceGuard("the loss", "start a new run with lower --lr-synapses / --lr-phenotype",
                                     start=start)

    @property
    def n_steps(self) -> int:
        return steps_per_epoch(self.cfg)

    # --- backend hooks ----------------------------------------------------------------------
    def run_epoch(self) -> list[dict]:
        raise NotImplementedError

    def checkpoint(self) -> dict:
        raise NotImplementedError

    def _load(self, ckpt: dict) -> None:
        raise NotImplementedError

    def _write_checkpoint(self) -> None:
        torch_save(self.run.path / CHECKPOINT, self.checkpoint())

    def _epoch_done(self, save: bool) -> None:
        if save:
            self.save()

    # --- the algorithm's outer loop ---------------------------------------------------------
    def train(self, epochs: int | None = None, progress: bool = True) -> list[dict]:
        epochs = self.cfg.epochs if epochs is None else epochs
        bar = tqdm(desc="hyper-training", unit="epoch", disable=not progress, initial=self.epoch, total=epochs)
        try:
            while self.epoch < epochs:
                rows = self.run_epoch()
                self.history += rows
                self._log(rows)
                bar.n = self.epoch
                mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("hyper_loss", "memory", "generalization")}
                bar.set_postfix(hyper_loss=f"{mean['hyper_loss']:.3f}", memory=f"{mean['memory']:.2f}",
                                general=f"{mean['generalization']:.2f}")
                save = self.run is not None and (self.epoch % self.cfg.checkpoint_every == 0 or self.epoch == epochs)
                self._epoch_done(save)
        finally:
            bar.close()
            if self.run is not None:  # also on Ctrl-C / SIGTERM: the event files are whole, no writer thread left
                self.run.close_tensorboard()
        return self.history

    def epoch_rows(self, reports: list[dict], grad_norm_sum: float, seconds: float) -> list[dict]:
        """The history rows of the epoch that just ended (self.epoch already counts it)."""
        rows = []
        for rep in sorted(reports, key=lambda r: r["model"]):
            for key in ("task_loss", "hyper_loss"):
                self.guard.check(rep[key], f"epoch {self.epoch} (model {rep['model']}, {key.replace('_', ' ')})")
            rows.append({"epoch": self.epoch, "model": rep["model"], "task_loss": rep["task_loss"],
                         "hyper_loss": rep["hyper_loss"], "phi_grad_norm": grad_norm_sum / self.n_steps,
                         "memory": rep["memory"], "generalization": rep["generalization"], "seconds": seconds})
        return rows

    def set_trace(self, reports: list[dict], phenotype: PhenotypeProgress) -> None:
        """Keep the epoch's per-step record: every model's losses and compute, φ's gradient
        norm, and each step's wall time split into compute (critical path) and synchronisation."""
        reports = sorted(reports, key=lambda r: r["model"])
        self.last_trace = {
            "epoch": self.epoch,
            "task_loss": [r["trace"]["task_loss"] for r in reports],
            "hyper_loss": [r["trace"]["hyper_loss"] for r in reports],
            "model_compute_s": [r["trace"]["compute_s"] for r in reports],
            "grad_norm": list(phenotype.grad_norm), "compute_s": list(phenotype.compute_s),
            "wall_s": list(phenotype.wall_s),
            "sync_s": [max(0.0, w - c) for w, c in zip(phenotype.wall_s, phenotype.compute_s)],
        }

    # --- outputs ----------------------------------------------------------------------------
    def _log(self, rows: list[dict]) -> None:
        if self.run is None:
            return
        for r in rows:
            for k in ("task_loss", "hyper_loss", "memory", "generalization"):
                self.run.scalar(f"model{r['model']}/{k}", r[k], r["epoch"])
        for k in ("task_loss", "hyper_loss", "memory", "generalization"):
            self.run.scalar(f"population/{k}", sum(r[k] for r in rows) / len(rows), rows[0]["epoch"])
        self.run.scalar("population/phi_grad_norm", rows[0]["phi_grad_norm"], rows[0]["epoch"])
        self._log_steps()

    def _log_steps(self) -> None:
        """Per-step scalars at global step epoch * steps_per_epoch + step."""
        t = self.last_trace
        if t is None or t["epoch"] != self.epoch:
            return
        base = (t["epoch"] - 1) * self.n_steps
        for j in range(len(t["wall_s"])):
            g = base + j
            for m in range(len(t["task_loss"])):
                self.run.scalar(f"step/model{m}/task_loss", t["task_loss"][m][j], g)
                self.run.scalar(f"step/model{m}/hyper_loss", t["hyper_loss"][m][j], g)
            for k in ("task_loss", "hyper_loss"):
                self.run.scalar(f"step/population/{k}", sum(v[j] for v in t[k]) / len(t[k]), g)
            self.run.scalar("step/phi_grad_norm", t["grad_norm"][j], g)
            self.run.scalar("time/step_compute_ms", 1e3 * t["compute_s"][j], g)
            self.run.scalar("time/step_sync_ms", 1e3 * t["sync_s"][j], g)
        self.run.scalar("time/sync_share", sum(t["sync_s"]) / max(sum(t["compute_s"]), 1e-12), t["epoch"])

    def save(self) -> None:
        self._write_checkpoint()
        self._write_tables()

    def _write_tables(self) -> None:
        # progress files that go with the checkpoint: written now, even inside a result set
        self.run.rows = list(self.history)
        self.run.flush("hyper_training.parquet", now=True)
        self.run.summary(self.cfg.to_dict(), "config.json", now=True)

    def restore(self, ckpt: dict) -> None:
        check_architecture(ckpt, self.theta0, self.phi0)
        self.epoch, self.step = ckpt["epoch"], ckpt.get("step", 0)
        self.theta0, self.phi0 = ckpt["theta0"], ckpt["phi0"]
        self.history = list(ckpt["history"])
        self._load(ckpt)

    @classmethod
    def resume(cls, run_dir: str | Path, trainer_options: dict | None = None, **overrides) -> "PopulationTrainer":
        ckpt = load_run_checkpoint(run_dir)
        trainer = cls(resume_config(ckpt, overrides, run_dir), run_dir, **(trainer_options or {}))
        trainer.restore(ckpt)
        return trainer


class ReferenceTrainer(PopulationTrainer):
    """M models advanced one after another in this process."""

    def __init__(self, cfg: HyperConfig, out: str | Path | None = None, pool=None):
        super().__init__(cfg, out, pool)
        self.states = [SynapseState(m, self.theta0, model_generator(cfg.seed, m)) for m in range(cfg.population)]
        self.server = PhenotypeOptimizer(self.phi0, cfg, self.theta0)
        self._progress: list[ModelProgress] = []
        self._phenotype = PhenotypeProgress()

    @property
    def phi(self):
        return self.server.phi

    def _begin_epoch(self) -> None:
        """Every model's synapses from θ0 (the learned θ0, when it is learned) and fresh progress trackers."""
        start = self.server.theta0 or self.theta0
        for s in self.states:
            begin_epoch(s, self.pool, self.cfg, start)
        self._progress = [ModelProgress() for _ in self.states]
        self._phenotype = PhenotypeProgress()

    def run_epoch(self) -> list[dict]:
        cfg, t0 = self.cfg, time.perf_counter()
        if self.step == 0:
            self._begin_epoch()
        for step in range(self.step, self.n_steps):
            t_step = time.perf_counter()
            phi = self.server.phi
            results = []
            for s, p in zip(self.states, self._progress):
                t = time.perf_counter()
                results.append(advance(self.model, cfg, s, phi, step))
                p.add(results[-1], time.perf_counter() - t)
            norm = self.server.step([r.grad_phi for r in results], [r.grad_theta0 for r in results])
            wall = time.perf_counter() - t_step
            self._phenotype.add(norm, wall, wall)  # one process: the whole step is compute
            self.step = step + 1
        reports = [epoch_report(self.model, cfg, s, self.server.phi, p, self.n_steps)
                   for s, p in zip(self.states, self._progress)]
        self.epoch, self.step = self.epoch + 1, 0
        self.set_trace(reports, self._phenotype)
        return self.epoch_rows(reports, self._phenotype.grad_norm_sum, time.perf_counter() - t0)

    def checkpoint(self) -> dict:
        mid = self.step > 0
        models = [model_snapshot(s, self._progress[s.index] if mid else None) for s in self.states]
        return checkpoint_dict(self.cfg, self.epoch, self.step, self.theta0, self.phi0, self.server.state_dict(),
                               models, self.history, self._phenotype.state() if mid else None, self.provenance)

    def _load(self, ckpt: dict) -> None:
        self.server.load_state_dict(ckpt["server"])
        progress = [restore_model(s, snap) for s, snap in zip(self.states, ckpt["models"])]
        if self.step > 0:
            self._progress = progress
            self._phenotype = PhenotypeProgress.from_state(ckpt["progress"])


# what --resume may change: how long to go on and how often to save; everything else is the run's
RESUMABLE = {"epochs", "checkpoint_every", "checkpoint_steps", "data_root"}


def resume_config(ckpt: dict, overrides: dict, run_dir: str | Path = "the run") -> HyperConfig:
    """The run's own config with the overrides --resume allows; any other changed setting is
    refused, since it would continue a different run (or fail to load its tensors)."""
    saved = HyperConfig.from_dict(ckpt["config"])
    changed = {k: v for k, v in overrides.items() if v is not None and getattr(saved, k) != v}
    bad = sorted(set(changed) - RESUMABLE)
    if bad:
        diff = ", ".join(f"--{k.replace('_', '-')} {changed[k]} (the run has {getattr(saved, k)})" for k in bad)
        raise RayclError(f"--resume continues {run_dir} with its own settings, but {diff}; drop the flag, or start a "
                         f"new run in another --out. With --resume only --{', --'.join(sorted(k.replace('_', '-') for k in RESUMABLE))} may change")
    cfg = saved.with_(**changed) if changed else saved
    if cfg.epochs <= ckpt["epoch"] and cfg.epochs == saved.epochs and ckpt.get("step", 0) == 0:
        raise RayclError(f"{run_dir} already finished its {saved.epochs} epochs; pass a larger --epochs to go on")
    return cfg


def check_architecture(ckpt: dict, theta0: dict, phi0: dict) -> None:
    """A checkpoint's tensors must have the shapes its own config builds."""
    for what, built, saved in (("synapses", theta0, ckpt.get("theta0")), ("phenotype", phi0, ckpt.get("phi0"))):
        if not isinstance(saved, dict) or set(saved) != set(built) or any(
                tuple(saved[n].shape) != tuple(built[n].shape) for n in built):
            raise RayclError(f"the checkpoint's {what} do not match the network its config builds (edited or from "
                             "another raycl version); it cannot be resumed or deployed: start a new run")


def load_run_checkpoint(run_dir: str | Path) -> dict:
    ckpt = torch_load(Path(run_dir) / CHECKPOINT)
    if not isinstance(ckpt, dict) or "server" not in ckpt:
        raise RayclError(f"{Path(run_dir) / CHECKPOINT} is not a raycl hyper-training checkpoint")
    return ckpt


