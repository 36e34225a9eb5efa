"""Book-keeping inside one outer epoch, shared by every backend: each model's running losses
and step times, the phenotype side's gradient norms and step times, and the snapshots a
checkpoint needs to continue a model exactly, at an epoch boundary or mid-epoch.

Keeping this in one place is what lets the reference trainer and the Ray actors produce
the same rows and the same checkpoint file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from raycl.hyper.algorithm import StepResult
from raycl.hyper.config import HyperConfig
from raycl.hyper.deploy import stage_metrics
from raycl.hyper.stream import HyperStream
from raycl.hyper.synapses import SynapseState


@dataclass
class ModelProgress:
    """One model's record of the current epoch."""

    # float32 sums of (task loss, hyper-loss): the same float32 additions as a sum over the population
    sums: torch.Tensor = field(default_factory=lambda: torch.zeros(2))
    task_loss: list[float] = field(default_factory=list)
    hyper_loss: list[float] = field(default_factory=list)
    compute_s: list[float] = field(default_factory=list)

    def add(self, r: StepResult, seconds: float) -> None:
        self.sums += torch.tensor([r.task_loss, r.hyper_loss])
        self.task_loss.append(r.task_loss)
        self.hyper_loss.append(r.hyper_loss)
        self.compute_s.append(seconds)

    def state(self) -> dict:
        return {"sums": self.sums.clone(), "task_loss": list(self.task_loss), "hyper_loss": list(self.hyper_loss),
                "compute_s": list(self.compute_s)}

    @classmethod
    def from_state(cls, s: dict) -> "ModelProgress":
        return cls(s["sums"].clone(), list(s["task_loss"]), list(s["hyper_loss"]), list(s["compute_s"]))


@dataclass
class PhenotypeProgress:
    """The phenotype side's record of the current epoch: one entry per step."""

    grad_norm_sum: float = 0.0  # a Python float sum, in step order
    grad_norm: list[float] = field(default_factory=list)
    compute_s: list[float] = field(default_factory=list)  # the step's critical-path compute
    wall_s: list[float] = field(default_factory=list)  # the step's wall time

    def add(self, norm: float, compute_s: float, wall_s: float) -> None:
        self.grad_norm_sum += norm
        self.grad_norm.append(norm)
        self.compute_s.append(compute_s)
        self.wall_s.append(wall_s)

    def state(self) -> dict:
        return {k: (list(v) if isinstance(v, list) else v) for k, v in self.__dict__.items()}

    @classmethod
    def from_state(cls, s: dict) -> "PhenotypeProgress":
        return cls(**{k: (list(v) if isinstance(v, list) else v) for k, v in s.items()})


def stream_to(stream: HyperStream, device) -> HyperStream:
    return HyperStream(stream.classes, stream.train_x.to(device), stream.holdout_x.to(device))


def stream_state(stream: HyperStream) -> dict:
    """The stream as plain tensors (a checkpoint holds no pickled objects: it loads weights-only)."""
    return {"classes": stream.classes.detach().cpu().clone(), "train_x": stream.train_x.detach().cpu().clone(),
            "holdout_x": stream.holdout_x.detach().cpu().clone()}


def stream_from_state(s: dict) -> HyperStream:
    return HyperStream(s["classes"], s["train_x"], s["holdout_x"])


def model_snapshot(state: SynapseState, progress: ModelProgress | None) -> dict:
    """What continues this model exactly. At an epoch boundary (progress None) that is its
    random state; mid-epoch also θ_m, its hyper-stream and the epoch's record so far. Only
    tensors, dicts, lists, tuples and numbers, so the checkpoint loads with weights_only=True."""
    snap = state.snapshot()
    if progress is not None:
        snap.update(theta={n: t.detach().cpu().clone() for n, t in state.theta.items()},
                    stream=stream_state(state.stream), progress=progress.state(),
                    window=[({n: t.detach().cpu().clone() for n, t in th.items()}, tuple(x.cpu() for x in task))
                            for th, task in state.window])
    return snap


def restore_model(state: SynapseState, snap: dict) -> ModelProgress | None:
    """Inverse of model_snapshot; returns the epoch's record when the snapshot is mid-epoch."""
    state.restore(snap)
    if "progress" not in snap:
        return None
    state.theta = {n: t.clone() for n, t in snap["theta"].items()}
    state.stream = stream_from_state(snap["stream"])
    state.window = list(snap.get("window", []))
    return ModelProgress.from_state(snap["progress"])


def epoch_report(model, cfg: HyperConfig, state: SynapseState, phi, progress: ModelProgress, n_steps: int) -> dict:
    """One model's end-of-epoch numbers: mean losses over the epoch's steps, and memory and
    generalization on its own stream before θ is reset (like Fig 6.6 / 6.7)."""
    mean = progress.sums / n_steps
    m = stage_metrics(model, {**state.theta, **phi}, state.stream, cfg.h_cl, cfg.mode)
    return {"model": state.index, "task_loss": float(mean[0]), "hyper_loss": float(mean[1]),
            "memory": m["memory"], "generalization": m["generalization"],
            "trace": {"task_loss": progress.task_loss, "hyper_loss": progress.hyper_loss,
                      "compute_s": progress.compute_s}}
