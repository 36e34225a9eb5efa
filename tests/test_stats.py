"""raycl.stats: the one mean/std/t-test module every family reports with (issue 17)."""

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from raycl.stats import PLUS_MINUS, describe, fmt, paired, what


def test_describe_matches_hand_computed_values():
    d = describe([1.0, 2.0, 3.0, 4.0])
    # mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5, over n - 1 = 3
    assert d["n"] == 4 and d["mean"] == 2.5
    assert d["std"] == pytest.approx(math.sqrt(5 / 3), abs=1e-15)
    assert d["se"] == pytest.approx(math.sqrt(5 / 3) / 2, abs=1e-15)
    assert (d["median"], d["min"], d["max"]) == (2.5, 1.0, 4.0)
    half = sps.t.ppf(0.975, 3) * math.sqrt(5 / 3) / 2
    assert d["ci95"] == pytest.approx([2.5 - half, 2.5 + half], abs=1e-12)
    # the sample std, not the population std
    assert d["std"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1)) and d["std"] != pytest.approx(np.std([1, 2, 3, 4]))


def test_describe_accepts_generators_and_arrays():
    assert describe(x for x in (2, 4))["mean"] == 3.0
    assert describe(np.array([2, 4]))["std"] == pytest.approx(math.sqrt(2))


def test_one_value_has_no_spread():
    d = describe([7.0])
    assert d["n"] == 1 and d["mean"] == 7.0 and d["median"] == 7.0
    assert math.isnan(d["std"]) and math.isnan(d["se"]) and all(math.isnan(v) for v in d["ci95"])
    with pytest.raises(ValueError):
        describe([])


def test_paired_matches_scipy_ttest_rel():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 1.0, 12)
    b = a - rng.normal(0.3, 0.5, 12)
    p = paired(a, b)
    ref = sps.ttest_rel(a, b)
    assert p["t"] == pytest.approx(float(ref.statistic), abs=1e-12)
    assert p["p"] == pytest.approx(float(ref.pvalue), abs=1e-12)
    diff = describe(a - b)
    assert {k: p[k] for k in diff} == diff  # describe() of the differences, plus t and p
    assert p["n"] == 12


def test_paired_by_hand():
    p = paired([3.0, 5.0, 4.0], [1.0, 2.0, 3.0])  # differences 2, 3, 1: mean 2, sample std 1
    assert p["mean"] == 2.0 and p["std"] == pytest.approx(1.0, abs=1e-15)
    assert p["t"] == pytest.approx(2 * math.sqrt(3), abs=1e-12)
    assert p["p"] == pytest.approx(2 * sps.t.sf(2 * math.sqrt(3), 2), abs=1e-12)


def test_paired_needs_matched_pairs_and_a_spread():
    with pytest.raises(ValueError, match="matched pairs"):
        paired([1.0, 2.0, 3.0], [1.0, 2.0])
    one = paired([2.0], [1.0])
    assert one["mean"] == 1.0 and math.isnan(one["t"]) and math.isnan(one["p"])
    same = paired([2.0, 3.0], [1.0, 2.0])  # every difference 1: std 0, no t
    assert same["std"] == 0.0 and math.isnan(same["t"]) and math.isnan(same["p"])


def test_fmt_and_caption():
    assert fmt(describe([1.0, 3.0])) == "2.0 ± 1.4"
    assert fmt(describe([0.01, 0.03]), scale=100, digits=2) == "2.00 ± 1.41"
    assert fmt(describe([5.0])) == "5.0 ± -"
    assert fmt({"mean": 5.0, "std": None}) == "5.0 ± -"  # NaN read back from JSON as null
    assert fmt({"mean": 5.0}, digits=0) == "5 ± -"
    assert what("seeds", 3) == f"{PLUS_MINUS} over 3 seeds" == "mean ± sample std (ddof = 1) over 3 seeds"


def test_undefined_spread_is_null_in_json(tmp_path):
    from raycl.runio import read_json, write_json

    write_json(tmp_path / "s.json", {"x": describe([1.0])})
    back = read_json(tmp_path / "s.json")["x"]
    assert back["std"] is None and back["ci95"] == [None, None] and json.dumps(back)
    assert fmt(back) == "1.0 ± -"


def test_quartiles_are_the_median_and_the_inner_half():
    from raycl.stats import quartiles

    assert quartiles([5, 1, 4, 2, 3]) == {"median": 3.0, "q1": 2.0, "q3": 4.0, "n": 5}
    assert quartiles([7.25]) == {"median": 7.25, "q1": 7.25, "q3": 7.25, "n": 1}
    assert quartiles([1, 2, 3, 100])["median"] == 2.5  # an outlier does not move it
    with pytest.raises(ValueError):
        quartiles([])
