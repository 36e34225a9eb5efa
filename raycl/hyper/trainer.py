"""The single-process reference trainer: M models advanced one after another with the pure
functions of raycl.hyper.algorithm. The Ray population must reproduce its numbers."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from raycl import RayclError
from raycl.data import load
from raycl.hyper.algorithm import PhenotypeOptimizer
from raycl.hyper.config import HyperConfig
from raycl.hyper.deploy import stage_metrics
from raycl.hyper.models import build_model
from raycl.hyper.population import SynapseState, advance, begin_epoch, model_generator
from raycl.hyper.stream import prepare_pool
from raycl.runio import RunDir, torch_load, torch_save

CHECKPOINT = "checkpoint.pt"


def meta_train_pool(cfg: HyperConfig):
    """The hyper-task distribution: the source's meta-train classes, in the models' input form."""
    split = {"glyphs": "background", "omniglot": "background"}.get(cfg.source)
    return prepare_pool(load(cfg.source, split=split, root=cfg.data_root), cfg.image_size)


class ReferenceTrainer:
    def __init__(self, cfg: HyperConfig, out: str | Path | None = None, pool=None):
        self.cfg = cfg
        torch.manual_seed(cfg.seed)
        self.model, self.theta0, phi0 = build_model(cfg)
        self.phi0 = phi0
        self.pool = pool if pool is not None else meta_train_pool(cfg)
        self.states = [SynapseState(m, self.theta0, model_generator(cfg.seed, m)) for m in range(cfg.population)]
        self.server = PhenotypeOptimizer(phi0, cfg)
        self.epoch = 0
        self.history: list[dict] = []
        self.run = RunDir(out) if out is not None else None

    @property
    def phi(self):
        return self.server.phi

    # --- the algorithm's outer loop ---------------------------------------------------------
    def run_epoch(self) -> list[dict]:
        cfg, t0 = self.cfg, time.perf_counter()
        for s in self.states:
            begin_epoch(s, self.pool, cfg, self.theta0)
        n_steps = cfg.h_cl * cfg.k
        task_loss = torch.zeros(cfg.population)
        hyper_loss = torch.zeros(cfg.population)
        grad_norm = 0.0
        for step in range(n_steps):
            phi = self.server.phi
            results = [advance(self.model, cfg, s, phi, step) for s in self.states]
            grad_norm += self.server.step([r.grad_phi for r in results])
            task_loss += torch.tensor([r.task_loss for r in results])
            hyper_loss += torch.tensor([r.hyper_loss for r in results])
        self.epoch += 1
        return self._epoch_rows(task_loss / n_steps, hyper_loss / n_steps, grad_norm / n_steps, time.perf_counter() - t0)

    def _epoch_rows(self, task_loss, hyper_loss, grad_norm, seconds) -> list[dict]:
        """Memory and generalization of each model on its own stream at the end of the epoch
        (like Fig 6.6 / 6.7), before θ is reset."""
        rows = []
        for s in self.states:
            m = stage_metrics(self.model, {**s.theta, **self.server.phi}, s.stream, self.cfg.h_cl, self.cfg.mode)
            if not (torch.isfinite(task_loss[s.index]) and torch.isfinite(hyper_loss[s.index])):
                raise RayclError(f"model {s.index} reached a NaN/inf loss in epoch {self.epoch}; lower the learning rates")
            rows.append({"epoch": self.epoch, "model": s.index, "task_loss": float(task_loss[s.index]),
                         "hyper_loss": float(hyper_loss[s.index]), "phi_grad_norm": grad_norm,
                         "memory": m["memory"], "generalization": m["generalization"], "seconds": seconds})
        return rows

    def train(self, epochs: int | None = None, progress: bool = True) -> list[dict]:
        epochs = self.cfg.epochs if epochs is None else epochs
        bar = tqdm(range(self.epoch, epochs), desc="hyper-training", unit="epoch", disable=not progress,
                   initial=self.epoch, total=epochs)
        for _ in bar:
            rows = self.run_epoch()
            self.history += rows
            self._log(rows)
            mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("hyper_loss", "memory", "generalization")}
            bar.set_postfix(hyper_loss=f"{mean['hyper_loss']:.3f}", memory=f"{mean['memory']:.2f}",
                            general=f"{mean['generalization']:.2f}")
            if self.run is not None and (self.epoch % self.cfg.checkpoint_every == 0 or self.epoch == epochs):
                self.save()
        return self.history

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

    def checkpoint(self) -> dict:
        return {
            "config": self.cfg.to_dict(), "epoch": self.epoch, "theta0": self.theta0, "phi0": self.phi0,
            "server": self.server.state_dict(), "models": [s.snapshot() for s in self.states],
            "history": self.history,
        }

    def save(self) -> None:
        torch_save(self.run.path / CHECKPOINT, self.checkpoint())
        self.run.rows = list(self.history)
        self.run.flush("hyper_training.parquet")
        self.run.summary(self.cfg.to_dict(), "config.json")

    def restore(self, ckpt: dict) -> None:
        self.epoch = ckpt["epoch"]
        self.theta0, self.phi0 = ckpt["theta0"], ckpt["phi0"]
        self.server.load_state_dict(ckpt["server"])
        for s, snap in zip(self.states, ckpt["models"]):
            s.restore(snap)
        self.history = list(ckpt["history"])

    @classmethod
    def resume(cls, run_dir: str | Path, **overrides) -> "ReferenceTrainer":
        ckpt = load_checkpoint(run_dir)
        cfg = HyperConfig.from_dict({**ckpt["config"], **overrides})
        trainer = cls(cfg, run_dir)
        trainer.restore(ckpt)
        return trainer


def load_checkpoint(run_dir: str | Path) -> dict:
    ckpt = torch_load(Path(run_dir) / CHECKPOINT)
    if not isinstance(ckpt, dict) or "server" not in ckpt:
        raise RayclError(f"{Path(run_dir) / CHECKPOINT} is not a raycl hyper-training checkpoint")
    return ckpt
