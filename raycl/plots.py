"""One plotting setup for every figure: matplotlib on the Agg backend (files, no display),
chosen on first use so that importing raycl never imports matplotlib; and the one
mean-curve drawing the families' curve figures share."""

from __future__ import annotations

import functools


@functools.cache
def pyplot():
    """matplotlib.pyplot on the Agg backend (selected once, on the first call)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mean_curves(ax, df, by: str, x: str, y: str, *, at: str | None = None, order=None, scale: float = 1.0,
                band: bool = True, **style) -> None:
    """One line per value of `by` (in `order`, else first-seen order): the mean of `y` over
    the rows at each value of `at` (default `x`), drawn at the mean of `x` there; with `band`,
    ± the sample std (ddof = 1, as raycl.stats; no band where a point has one row)."""
    at = at or x
    for name in (order if order is not None else dict.fromkeys(df[by])):
        g = df[df[by] == name].groupby(at)
        m = scale * g[y].mean()
        xs = m.index if x == at else g[x].mean()
        line, = ax.plot(xs, m, label=name, **style)
        if band:
            s = scale * g[y].std(ddof=1).fillna(0)
            ax.fill_between(xs, m - s, m + s, alpha=0.15, color=line.get_color())
