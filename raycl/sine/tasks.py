"""Chapter 5 target functions (eq 5.1) and their sub-task streams."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from raycl.sine.names import FILTERS

_CHECK_GRID = np.linspace(-5.0, 5.0, 1001)


@dataclass(frozen=True)
class SineFunction:
    """y = a0 sin(r0 x + p0) + a1 sin(r1 x + p1)."""

    a: tuple[float, float]
    r: tuple[float, float]
    p: tuple[float, float]

    def __call__(self, x):
        lib = torch if isinstance(x, torch.Tensor) else np
        return sum(a * lib.sin(r * x + p) for a, r, p in zip(self.a, self.r, self.p))


def keep(y: np.ndarray, filter: str = "range") -> bool:
    """The dissertation's filter on a function's values over [-5, 5].

    'literal': discard y_max > .8, y_min > -.8 or y_max - y_min < .4, as printed (§5.3);
      this keeps functions dipping far below -.8 (84% go below -1, out of a tanh output's reach).
    'range': discard y_max > .8, y_min < -.8 or y_max - y_min < .4, which gives the output
      range [-.8, .8] the text says the filter yields (and makes its ~.03 MSE reachable).
    """
    lo, hi = float(y.min()), float(y.max())
    if filter == "literal":
        return not (hi > 0.8 or lo > -0.8 or hi - lo < 0.4)
    if filter == "range":
        return not (hi > 0.8 or lo < -0.8 or hi - lo < 0.4)
    raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")


def sample_function(rng: np.random.Generator, filter: str = "range", max_tries: int = 100_000) -> SineFunction:
    """a ~ U(0, 2), r ~ U(0, pi/3), p ~ U(-5, 5) for both sines, redrawn until kept."""
    for _ in range(max_tries):
        a, r, p = rng.uniform(0, 2, 2), rng.uniform(0, math.pi / 3, 2), rng.uniform(-5, 5, 2)
        fn = SineFunction(tuple(a.tolist()), tuple(r.tolist()), tuple(p.tolist()))
        if keep(fn(_CHECK_GRID), filter):
            return fn
    raise RuntimeError("no target function passed the filter")  # ~10-15% pass; never happens


def subtask_windows(n_subtasks: int = 5, lo: float = -5.0, hi: float = 5.0) -> list[tuple[float, float]]:
    """[-5,-3), [-3,-1), [-1,1), [1,3), [3,5] for the defaults."""
    edges = np.linspace(lo, hi, n_subtasks + 1)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def sample_stream(
    fn: SineFunction, rng: np.random.Generator, n_subtasks: int = 5, samples_per_task: int = 100,
    dtype=torch.float32,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per sub-task, `samples_per_task` points drawn uniformly from its window, as (x, y)
    tensors of shape (samples_per_task, 1), in the order they are seen."""
    stream = []
    for lo, hi in subtask_windows(n_subtasks):
        x = rng.uniform(lo, hi, samples_per_task)
        xt = torch.as_tensor(x, dtype=dtype).unsqueeze(1)
        stream.append((xt, fn(xt)))
    return stream


def whole_function_grid(fn: SineFunction, n: int = 500, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.linspace(-5.0, 5.0, n, dtype=dtype).unsqueeze(1)
    return x, fn(x)
