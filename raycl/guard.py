"""Stopping a run whose losses diverge, in every family the same way.

A loss that becomes NaN/inf, or that climbs far above where the run started, ends the run
with a RayclError (one line, exit code 2) before the next checkpoint is written, so the
last good checkpoint is what stays on disk.
"""

from __future__ import annotations

import math

from raycl import RayclError

EXPLODE_FACTOR = 100.0  # "far above the start": a hundred times the starting loss


class Diverged(RayclError):
    """The loss a DivergenceGuard watches diverged (a comparison may record it and go on)."""


class DivergenceGuard:
    """Watches one loss. `start` is the loss a fresh model has (e.g. log(classes) for a
    cross-entropy, the data's mean square for a reconstruction); when None the first value
    seen is taken as the start."""

    def __init__(self, what: str, fix: str, start: float | None = None, factor: float = EXPLODE_FACTOR,
                 floor: float = 1e-3):
        self.what, self.fix, self.factor, self.floor = what, fix, factor, floor
        self.start = start

    @property
    def limit(self) -> float:
        return self.factor * max(abs(self.start), self.floor)

    def check(self, value: float, where: str) -> None:
        value = float(value)
        if not math.isfinite(value):
            raise Diverged(f"{self.what} became {value} at {where}: the run diverged and stops before saving "
                             f"this state (an earlier checkpoint, if any, is kept); {self.fix}")
        if self.start is None:
            self.start = value
            return
        if value > self.limit:
            raise Diverged(f"{self.what} reached {value:.4g} at {where}, over {self.factor:g}x its start "
                             f"({self.start:.4g}): the run diverged and stops before saving "
                             f"this state (an earlier checkpoint, if any, is kept); {self.fix}")
