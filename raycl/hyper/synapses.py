"""One model of the population: its synapses, its hyper-stream and its random generator.

`SynapseState` is what a Ray synapse-worker actor holds; the reference trainer holds M of
them in one process. Both advance them with the same two functions below.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from raycl.hyper.algorithm import (Params, StepResult, hyper_batch, local_step, reset_output_row, seen_classes,
                                   task_batch, task_step)
from raycl.hyper.config import HyperConfig
from raycl.hyper.stream import HyperStream, sample_stream


def model_generator(seed: int, index: int) -> torch.Generator:
    """Each model's own stream of randomness, independent of where the model runs."""
    return torch.Generator().manual_seed(1_000_003 * (seed + 1) + index)


@dataclass
class SynapseState:
    index: int
    theta: Params
    generator: torch.Generator
    stream: HyperStream | None = None
    window: list = field(default_factory=list)  # last (θ_before, task) pairs, for unroll > 1

    def snapshot(self) -> dict:
        """What a checkpoint needs to continue this model exactly (taken at an epoch start)."""
        return {"index": self.index, "generator": self.generator.get_state()}

    def restore(self, snap: dict) -> None:
        self.generator.set_state(snap["generator"])


def begin_epoch(state: SynapseState, pool, cfg: HyperConfig, theta0: Params) -> None:
    """Reset θ to θ0 and sample a new hyper-stream (Alg. lines 5-7 and 23)."""
    state.theta = {n: t.clone() for n, t in theta0.items()}
    state.window = []
    state.stream = sample_stream(pool, cfg.h_h, cfg.i, cfg.holdout, state.generator)


def advance(model, cfg: HyperConfig, state: SynapseState, phi: Params, step: int) -> StepResult:
    """Hyper-step `step` of the epoch for this model; θ moves, φ's gradient is returned. A
    hyper-step is one synaptic step, or with phi_grad = through-task one whole task (k steps)."""
    if cfg.phi_grad == "through-task":
        first = step * cfg.k
        if cfg.readout_rule == "reset" and cfg.order == "sequential":
            state.theta = reset_output_row(state.theta, step, cfg.n_outputs)
        batches = [task_batch(state.stream, cfg, first + s, state.generator) for s in range(cfg.k)]
        hyper = hyper_batch(state.stream, cfg, step, state.generator)
        result = task_step(model, cfg, state.theta, phi, batches, hyper,
                           [seen_classes(cfg, first + s) for s in range(cfg.k)])
        state.theta = result.theta
        return result
    if cfg.readout_rule == "reset" and cfg.order == "sequential" and step % cfg.k == 0:
        state.theta = reset_output_row(state.theta, step // cfg.k, cfg.n_outputs)
    task = task_batch(state.stream, cfg, step, state.generator)
    hyper = hyper_batch(state.stream, cfg, step // cfg.k, state.generator)
    result = local_step(model, cfg, state.theta, phi, task, hyper, state.window, seen_classes(cfg, step))
    if cfg.unroll > 1:
        state.window = (state.window + [(state.theta, task)])[-(cfg.unroll - 1):]
    state.theta = result.theta
    return result
