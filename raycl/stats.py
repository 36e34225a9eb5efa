"""The statistics every family reports with, so "±" means one thing everywhere: the sample
standard deviation (ddof = 1) over the stated unit (phenotypes, seeds, sequences, functions),
always with its n. Paired comparisons give the mean difference, its sample std, the paired t
statistic, a two-sided p-value and a 95% confidence interval (Student's t)."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

PLUS_MINUS = "mean ± sample std (ddof = 1)"


def _values(values: Iterable[float]) -> np.ndarray:
    return np.asarray([float(v) for v in values], dtype=np.float64)


def describe(values: Iterable[float]) -> dict:
    """n, mean, sample std, standard error, median and the 95% confidence interval of the mean.
    With n = 1 the spread is undefined: std, se and the interval are NaN (None in JSON)."""
    x = _values(values)
    n = len(x)
    if n == 0:
        raise ValueError("describe() needs at least one value")
    mean = float(x.mean())
    std = float(x.std(ddof=1)) if n > 1 else math.nan
    se = std / math.sqrt(n) if n > 1 else math.nan
    half = _t_quantile(n - 1) * se if n > 1 else math.nan
    return {"n": n, "mean": mean, "std": std, "se": se, "median": float(np.median(x)),
            "min": float(x.min()), "max": float(x.max()), "ci95": [mean - half, mean + half]}


def quartiles(values: Iterable[float], digits: int = 3) -> dict:
    """Median and quartiles (inclusive method) with n: the spread the benchmarks report over
    repeated timings, where a few slow outliers should not move the figure."""
    x = _values(values)
    if len(x) == 0:
        raise ValueError("quartiles() needs at least one value")
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    return {"median": round(float(med), digits), "q1": round(float(q1), digits), "q3": round(float(q3), digits),
            "n": len(x)}


def _t_quantile(df: int, q: float = 0.975) -> float:
    from scipy.stats import t

    return float(t.ppf(q, df))


def paired(a: Sequence[float], b: Sequence[float]) -> dict:
    """a - b over matched pairs: describe() of the differences, the paired t statistic and its
    two-sided p-value (NaN when n < 2 or every difference is equal)."""
    a, b = _values(a), _values(b)
    if len(a) != len(b):
        raise ValueError(f"paired() needs matched pairs, got {len(a)} and {len(b)} values")
    out = describe(a - b)
    n, sd = out["n"], out["std"]
    if n > 1 and sd > 0:
        from scipy.stats import t

        out["t"] = out["mean"] / (sd / math.sqrt(n))
        out["p"] = float(2 * t.sf(abs(out["t"]), n - 1))
    else:
        out["t"] = out["p"] = math.nan
    return out


def fmt(d: dict, scale: float = 1.0, digits: int = 1, sign: bool = False) -> str:
    """'mean ± std' (std shown as '-' when undefined); sign=True writes '+' on a difference."""
    std = d.get("std", math.nan)
    spread = "-" if std is None or not math.isfinite(std) else f"{std * scale:.{digits}f}"
    return f"{d['mean'] * scale:{'+' if sign else ''}.{digits}f} ± {spread}"


def what(unit: str, n: int) -> str:
    """The caption of a ± : e.g. 'mean ± sample std (ddof = 1) over 5 phenotypes'."""
    return f"{PLUS_MINUS} over {n} {unit}"
