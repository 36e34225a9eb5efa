"""Active learning: Weibull open-set model, query strategies, oracle, loop and CLI."""

import json

import numpy as np
import pytest
import torch

from raycl import RayclError
from raycl.active import weibull as W
from raycl.active.bald import batchbald_select
from raycl.active.models import barlow_twins_terms, make_model
from raycl.active.oracle import NoisyOracle, Oracle, parse_superclasses
from raycl.active.pools import ActiveData, Pools, initial_labeled
from raycl.active.query import QueryContext, entropy
from raycl.active.strategies import balanced, make_strategy
from raycl.data import ImageSet


def _blobs(n_per=60, classes=3, dim=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.eye(dim)[:classes] * 5
    z = torch.cat([centers[c] + torch.randn(n_per, dim, generator=g) for c in range(classes)])
    y = torch.arange(classes).repeat_interleave(n_per)
    return z, y


def test_weibull_outlier_probability_rises_with_distance_from_class_mean():
    z, y = _blobs()
    model = W.fit(z, y, y, 3, tail=0.1)
    mean = model.means[0].float()
    away = torch.zeros_like(mean)
    away[3] = 1.0  # a direction orthogonal to every class mean
    steps = torch.linspace(0, 12, 25)
    p = model.outlier_probability(mean + steps[:, None] * away, torch.zeros(25, dtype=torch.long))
    assert torch.all(p[1:] >= p[:-1] - 1e-7), p
    assert p[0] < 0.01 and p[-1] > 0.99
    # class members mostly inside, far points outside
    inside = model.outlier_probability(z[y == 1], torch.ones(60, dtype=torch.long))
    assert (inside < 0.5).float().mean() > 0.8


def test_weibull_cdf_matches_scipy():
    from scipy.stats import weibull_min

    z, y = _blobs(seed=1)
    model = W.fit(z, y, y, 3)
    q = z[:20] + 0.5
    pred = y[:20]
    p = model.outlier_probability(q, pred).double()
    d = W.distance(q.float(), model.means[pred].float()).double().numpy()
    for i in range(20):
        c = int(pred[i])
        ref = weibull_min.cdf(d[i] + W.SHIFT - float(model.small[c]), float(model.shape[c]), 0, float(model.scale[c]))
        assert abs(float(p[i]) - ref) < 1e-6


def _tight(func, x0, args=(), disp=0):
    from scipy.optimize import fmin

    return fmin(func, x0, args=args, xtol=1e-10, ftol=1e-12, disp=0, maxiter=20000, maxfun=20000)


def test_weibull_mle_matches_scipy_fit():
    from scipy.stats import weibull_min

    rng = np.random.default_rng(0)
    xs = [weibull_min.rvs(c, scale=s, size=n, random_state=rng) for c, s, n in [(0.7, 2, 40), (1.5, 0.3, 8),
                                                                                  (3, 5, 100), (8, 1, 3)]]
    k, lam = W.weibull_mle(xs)  # samples of different sizes, one solve
    for x, ki, li in zip(xs, k, lam):
        kc, _, lc = weibull_min.fit(x, floc=0, optimizer=_tight)
        assert abs(ki / kc - 1) < 1e-6 and abs(li / lc - 1) < 1e-6
    # libMR-shifted tails (x ≈ 10^4, k ≈ 10^5): scipy's likelihood is only evaluated to ~1e-6 there,
    # so the outlier probabilities agree to that; the Newton solution's own equation holds exactly
    for n in (3, 7, 40):
        t = np.sort(rng.gamma(2, 0.03, size=n))
        x = t + W.SHIFT - t[0]
        (ki,), (li,) = W.weibull_mle([x])
        kc, _, lc = weibull_min.fit(x, floc=0, optimizer=_tight)
        assert abs(ki / kc - 1) < 1e-5 and abs(li / lc - 1) < 1e-9
        assert np.abs(weibull_min.cdf(x, ki, 0, li) - weibull_min.cdf(x, kc, 0, lc)).max() < 5e-6
        v = np.log1p((x - x[0]) / x[0])
        w = np.exp(ki * (v - v.max()))
        assert abs(1 / ki + v.mean() - (w * v).sum() / w.sum()) < 1e-12 * v.std()


def _context(n=90, labeled=20, classes=10, seed=0):
    torch.manual_seed(seed)
    images = torch.rand(n, 1, 8, 8)
    model = make_model("vnn", (1, 8, 8), classes, variant="M1")
    lab = np.arange(0, n, n // labeled)[:labeled]
    unl = np.setdiff1d(np.arange(n), lab)
    labels = np.arange(labeled) % classes
    return QueryContext(model=model, images=images, labeled=lab, labels=labels, unlabeled=unl, num_classes=classes,
                        train_fresh=lambda s: make_model("vnn", (1, 8, 8), classes, variant="M1"))


SPECS = ["random", "uncertainty", "weibull", "weibull:threshold=0.5", "weibull:order=lowest",
         "weibull:threshold=0.5,rank=uncertainty,balance=1", "coreset",
         "mc-dropout:passes=3", "dbal:passes=3", "ensemble:members=2", "vaal:steps=2,batch=8",
         "batchbald:passes=4,configs=16,candidates=30", "waal:steps=2,batch=8"]


@pytest.mark.parametrize("spec", SPECS)
def test_every_strategy_returns_b_distinct_unlabeled_indices(spec):
    ctx = _context()
    b = 7
    picked = make_strategy(spec).select(ctx, b, np.random.default_rng(0))
    assert len(picked) == b and len(set(picked.tolist())) == b
    assert np.isin(picked, ctx.unlabeled).all()
    # asking for more than is left gives the whole unlabeled pool
    assert sorted(make_strategy(spec).select(ctx, len(ctx.unlabeled) + 5, np.random.default_rng(0))) == sorted(ctx.unlabeled)


def test_bad_strategy_spec_names_the_fix():
    with pytest.raises(RayclError, match="choose from"):
        make_strategy("nope")
    with pytest.raises(RayclError, match="key=value"):
        make_strategy("weibull:threshold")


def test_weibull_threshold_never_queries_rejected_samples_while_known_ones_remain():
    ctx = _context(n=200, labeled=30)
    strat = make_strategy("weibull:threshold=0.5")
    p = strat.outlier_probability(ctx).numpy()
    known = ctx.unlabeled[p <= 0.5]
    b = min(10, len(known))
    picked = strat.select(ctx, b, np.random.default_rng(0))
    assert np.isin(picked, known).all()


class _LatentModel(torch.nn.Module):
    """An 'image' is its own latent; logits are minus the distances to fixed class centres."""

    def __init__(self, centres):
        super().__init__()
        self.centres = centres

    def predict(self, x, stochastic=False):
        z = x.flatten(1)
        return -torch.cdist(z, self.centres), z


def _open_set_context(seed=0):
    """Three latent blobs, 20 labeled per class, 150 unlabeled per class, 60 far-away unknowns,
    30 validation images per class. As with a trained network, the labeled samples sit tighter
    around their class centre than unseen ones, and by a different amount per class."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(6)[:3] * 5

    def blob(n, spread):
        y = torch.arange(3).repeat_interleave(n)
        return centres[y] + torch.tensor(spread)[y, None] * torch.randn(3 * n, 6, generator=g), y

    z_l, y_l = blob(20, [0.5, 0.5, 0.5])
    z_u, y_u = blob(150, [0.5, 1.5, 1.0])
    unknown = 5 * torch.randn(60, 6, generator=g) + torch.tensor([0, 0, 0, 15.0, 15.0, 0])
    z_v, _ = blob(30, [0.5, 1.5, 1.0])
    images = torch.cat([z_l, z_u, unknown])[:, None, None, :]
    n_l = len(z_l)
    ctx = QueryContext(model=_LatentModel(centres), images=images, labeled=np.arange(n_l), labels=y_l.numpy(),
                       unlabeled=np.arange(n_l, len(images)), num_classes=3, validation=z_v[:, None, None, :])
    truth = np.concatenate([y_u.numpy(), np.full(60, -1)])  # per unlabeled position; -1: unknown
    return ctx, truth


def test_balanced_takes_groups_round_robin_best_first():
    score = np.array([5, 4, 3, 2, 1, 0.5, 9, 8])
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    order = balanced(score, groups, 8)
    assert order.tolist() == [6, 0, 3, 7, 1, 4, 2, 5]
    assert sorted(groups[order[:6]].tolist()) == [0, 0, 1, 1, 2, 2]


def test_weibull_open_set_picks_known_samples_balanced_over_predicted_classes():
    ctx, truth = _open_set_context()
    strat = make_strategy("weibull:threshold=val,accept=0.9,balance=1")
    model, z, pred, _, _ = strat.model(ctx)
    s, cut = model.log_hazard(z, pred).numpy(), strat.log_threshold(ctx, model)
    pred = pred.numpy()
    known = s <= cut[pred]
    # per-class thresholds: every class keeps most of its unseen members, the unknowns are rejected
    for c in range(3):
        assert known[(truth == c) & (pred == c)].mean() > 0.7
    assert known[truth < 0].mean() < 0.1
    # one probability threshold for all (fitted on the tight labeled samples) rejects most of the widest class
    glob = s <= make_strategy("weibull:threshold=0.25").log_threshold(ctx, model)[pred]
    assert glob[(truth == 1) & (pred == 1)].mean() < 0.5
    b = 30
    picked = strat.select(ctx, b, np.random.default_rng(0))
    pos = np.searchsorted(ctx.unlabeled, picked)
    assert known[pos].all()  # nothing rejected while known samples remain
    assert np.bincount(pred[pos], minlength=3).tolist() == [10, 10, 10]
    # within each class, the most outlying of the known samples
    for c in range(3):
        mine = np.flatnonzero(known & (pred == c))
        assert set(pos[pred[pos] == c]) == set(mine[np.argsort(-s[mine])[:10]])


def test_weibull_known_unknowns_reject_what_lies_nearest_a_refused_sample():
    ctx, truth = _open_set_context()
    ctx.refused = ctx.unlabeled[truth < 0][:5]  # the oracle refused five of the unknowns
    strat = make_strategy("weibull:threshold=val,balance=1,unknowns=1")
    _, z, _, _, z_labeled = strat.model(ctx)
    near = strat.near_refused(ctx, z, z_labeled)
    assert near[np.isin(ctx.unlabeled, ctx.refused)].all()
    assert near[truth >= 0].mean() < 0.02 and near[truth < 0].mean() > 0.5
    picked = strat.select(ctx, 30, np.random.default_rng(0))
    assert not np.isin(picked, ctx.refused).any()


def test_weibull_threshold_val_needs_validation_images():
    ctx, _ = _open_set_context()
    ctx.validation = None
    with pytest.raises(RayclError, match="validation"):
        make_strategy("weibull:threshold=val").select(ctx, 5, np.random.default_rng(0))
    with pytest.raises(RayclError, match="threshold"):
        make_strategy("weibull:threshold=high")


def test_batchbald_avoids_duplicates_that_bald_would_take_twice():
    g = torch.Generator().manual_seed(0)
    informative = torch.softmax(3 * torch.randn(1, 8, 4, generator=g), -1)  # models disagree
    dull = torch.full((5, 8, 4), 0.25)
    other = torch.softmax(3 * torch.randn(1, 8, 4, generator=g), -1)
    probs = torch.cat([informative, informative, dull, other])  # point 1 duplicates point 0
    bald = entropy(probs.mean(1)) - entropy(probs).mean(1)
    chosen = batchbald_select(probs, 2)
    assert chosen[0] == int(bald.argmax())
    assert set(chosen) == {0, 7} or set(chosen) == {1, 7}


def test_batchbald_joint_entropy_is_exact_for_two_points():
    g = torch.Generator().manual_seed(1)
    probs = torch.softmax(torch.randn(6, 5, 3, generator=g), -1)
    first, second = batchbald_select(probs, 2, configs=100)
    p = probs.double()

    def mi(i, j):
        joint = torch.einsum("tc,td->cd", p[i], p[j]) / 5
        h = -(joint * joint.log()).sum()
        return float(h - entropy(p[i]).mean() - entropy(p[j]).mean())

    assert second == max((j for j in range(6) if j != first), key=lambda j: mi(first, j))


def test_oracle_never_labels_ood_and_returns_it_to_the_pool():
    truth = np.array([0, 1, 2, -1, 1, -1, 0, 2])  # -1: out of distribution
    oracle = Oracle(truth)
    pools = Pools(len(truth), np.array([0]), np.array([0]))
    answer = oracle(np.array([1, 3, 5, 6]))
    assert sorted(answer.refused) == [3, 5] and sorted(answer.labeled) == [1, 6]
    assert (answer.labels == truth[answer.labeled]).all()
    pools.add(answer.labeled, answer.labels)
    assert oracle.lost == 2 and oracle.queries == 4
    assert {3, 5} <= set(pools.unlabeled) and not {3, 5} & set(pools.labeled)


def test_noisy_oracle_flips_within_the_superclass():
    rng = np.random.default_rng(0)
    coarse = np.repeat(np.arange(20), 5)  # CIFAR-100 shape: 20 superclasses of 5 classes
    truth = rng.integers(0, 100, size=5000)
    oracle = NoisyOracle(truth, coarse, 0.3, rng)
    answer = oracle(np.arange(5000))
    flipped = answer.labels != truth
    assert 0.27 < flipped.mean() < 0.33
    assert (coarse[answer.labels] == coarse[truth]).all()
    alone = NoisyOracle(np.array([0, 1, 2]), np.array([0, 1, 1]), 1.0, rng)  # class 0 has no sibling
    assert list(alone(np.arange(3)).labels) == [0, 2, 1]


def test_superclass_text_must_cover_every_class():
    assert list(parse_superclasses("0,2;1", 3)) == [0, 1, 0]
    with pytest.raises(RayclError, match="every class"):
        parse_superclasses("0;1", 3)


def test_biased_initial_pool_leaves_out_classes_and_ood():
    labels = torch.arange(10).repeat(20)
    labels[:30] = -1
    pool = ImageSet("p", torch.zeros(200, 1, 2, 2), labels, [str(i) for i in range(10)])
    data = ActiveData(pool, (labels < 0).numpy(), pool.subset([40]), pool.subset([41]))
    data.val.class_names = pool.class_names
    idx = initial_labeled(data, 50, np.random.default_rng(0), remove_classes=3)
    got = set(labels[idx].tolist())
    assert -1 not in got and len(got) == 7


def test_barlow_twins_terms_match_the_definition():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(32, 6, generator=g), torch.randn(32, 6, generator=g)
    on, off = barlow_twins_terms(z1, z2)
    n1 = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + 1e-5)
    n2 = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + 1e-5)
    c = n1.T @ n2 / 32
    assert torch.allclose(on, ((1 - c.diagonal()) ** 2).sum(), atol=1e-4)
    assert torch.allclose(off, (c ** 2).sum() - (c.diagonal() ** 2).sum(), atol=1e-4)
    same_on, _ = barlow_twins_terms(z1, z1)
    assert same_on < 1e-3


def test_models_give_probabilities_and_latents_in_one_pass():
    x = torch.rand(4, 1, 28, 28)
    for kind, opts, dim in [("vnn", {"variant": "M2"}, 60), ("dalbt", {}, 60)]:
        m = make_model(kind, (1, 28, 28), 10, **opts)
        logits, z = m.predict(x)
        assert logits.shape == (4, 10) and z.shape == (4, dim)
        loss, parts = m.loss(x, torch.arange(4))
        loss.backward()
        assert torch.isfinite(loss) and "ce" in parts


def _tiny_args(out, *extra):
    return ["active", "run", "--no-ray", "--seeds", "2", "--stages", "1", "--initial", "20", "--budget", "30",
            "--epochs", "1", "--min-steps", "3", "--eval-every", "1", "--out", str(out), *extra]


def test_cli_run_writes_table_summary_curves(tmp_path):
    from raycl.cli import main
    from raycl.runio import read_parquet

    out = tmp_path / "run"
    assert main(_tiny_args(out, "--strategies", "random", "weibull:threshold=0.5")) == 0
    df = read_parquet(out / "metrics.parquet")
    for col in ["strategy", "seed", "stage", "labeled_pct", "accuracy", "ood_queries", "selection_seconds"]:
        assert col in df.columns
    assert len(df) == 2 * 2 * 2
    # OOD queries are never labeled: labeled grows by exactly the accepted queries
    for _, g in df.groupby(["strategy", "seed"]):
        g = g.sort_values("stage")
        assert (g["labeled"].diff().dropna() == (g["stage_queries"] - g["stage_ood_queries"]).iloc[1:]).all()
    summary = json.loads((out / "summary.json").read_text())
    s = summary["strategies"]["random"]["final_accuracy"]
    # raycl.stats.describe over the two seeds: the sample std (ddof = 1)
    assert {"mean", "std", "n", "se", "ci95"} <= set(s) and s["n"] == 2
    acc = df[(df["strategy"] == "random") & (df["stage"] == df["stage"].max())]["accuracy"]
    assert s["std"] == pytest.approx(float(np.std(acc, ddof=1)))
    # time to result of one (strategy, seed): its training and selection seconds over every stage
    per_run = df[df["strategy"] == "random"].groupby("seed")[["train_seconds", "selection_seconds"]].sum().sum(axis=1)
    assert summary["strategies"]["random"]["run_seconds"]["mean"] == pytest.approx(per_run.mean()) and per_run.min() > 0
    assert df["accuracy"].between(0, 1).all() and (df["labeled_pct"] > 0).all() and (df["labeled_pct"] <= 100).all()
    assert sorted(df["seed"].unique()) == [0, 1] and sorted(df["stage"].unique()) == [0, 1]
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / "curves.png").stat().st_size > 1000
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = (out / "tb").glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events)).Reload()
    g = df[(df["strategy"] == "random") & (df["seed"] == 1)].sort_values("stage")
    assert [e.value for e in acc.Scalars("random/seed1/accuracy")] == pytest.approx(g["accuracy"].tolist(), rel=1e-6)


def test_cli_noisy_scenario_needs_superclasses_only_without_coarse_labels(tmp_path, capsys):
    from raycl.cli import main

    from raycl.runio import read_parquet

    assert main(_tiny_args(tmp_path / "n", "--scenario", "noisy", "--seeds", "1", "--stages", "1",
                           "--strategies", "random", "weibull", "--model", "dalbt")) == 0
    summary = json.loads((tmp_path / "n" / "summary.json").read_text())
    # no OOD in the pool: no claim about OOD queries, only the accuracy one
    assert set(summary["checks"]) == {"weibull", "final_accuracy_not_below_random"}
    cfg = summary["config"]
    # digits have no coarse labels: the noisy oracle flips 20% within the digit groups 0,6;1,7;2,3,5,8;4,9
    assert cfg["noise"] == 0.2 and cfg["model"] == "dalbt"
    assert cfg["superclasses"] == [0, 1, 2, 2, 3, 2, 0, 1, 2, 3]
    assert summary["scenario"]["ood_fraction"] == 0.0
    df = read_parquet(tmp_path / "n" / "metrics.parquet")
    df = df[df["strategy"] == "random"]
    assert df["stage"].tolist() == [0, 1] and set(df["seed"]) == {0}
    assert df["labeled"].tolist() == [20, 50] and (df["ood_queries"] == 0).all()  # no OOD: every query labeled
    assert df["accuracy"].between(0, 1).all()
    assert main(_tiny_args(tmp_path / "x", "--strategies", "bogus")) == 2
    assert "unknown strategy" in capsys.readouterr().err


@pytest.mark.slow
def test_ray_run_and_learning_improves(tmp_path):
    from raycl.cli import main
    from raycl.runio import read_parquet

    out = tmp_path / "ray"
    args = ["active", "run", "--seeds", "2", "--num-cpus", "2", "--strategies", "random", "--scenario", "standard",
            "--initial", "30", "--budget", "150", "--stages", "2", "--out", str(out)]
    assert main(args) == 0
    df = read_parquet(out / "metrics.parquet")
    by_stage = df.groupby("stage")["accuracy"].mean()
    assert by_stage.iloc[-1] > by_stage.iloc[0] + 0.03


def test_active_help_explains(capsys):
    from raycl.cli import main

    with pytest.raises(SystemExit) as e:
        main(["active", "run", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "out-of-distribution" in out and "--strategies" in out


def test_sampling_time_prints_one_json_line(tmp_path, capsys):
    from raycl.cli import main

    assert main(["active", "sampling-time", "--pool", "200", "--labeled", "40", "--budget", "10", "--size", "8",
                 "--repeats", "1", "--train-steps", "5", "--strategies", "random", "uncertainty", "weibull",
                 "--out", str(tmp_path)]) == 0
    from raycl.runio import read_json, read_parquet

    line = capsys.readouterr().out.strip().splitlines()[-1]
    result = json.loads(line)
    assert (result["pool"], result["labeled"], result["budget"], result["image_size"], result["repeats"]) == (
        200, 40, 10, 8, 1)
    assert set(result["strategies"]) == {"random", "uncertainty", "weibull"}
    # the printed line is the JSON written; the table has one row per strategy with the same numbers
    assert read_json(tmp_path / "sampling_time.json") == result
    df = read_parquet(tmp_path / "sampling_time.parquet")
    assert sorted(df["strategy"]) == ["random", "uncertainty", "weibull"]
    assert list(df.columns) == ["strategy", "seconds", "min_seconds", "per_sample_ms"]
    for row in df.to_dict("records"):
        s = result["strategies"][row["strategy"]]
        assert {k: row[k] for k in s} == pytest.approx(s)
        # one counted repeat: its median is its minimum; per-sample is the median over the budget of 10
        assert s["seconds"] == s["min_seconds"] and s["per_sample_ms"] == pytest.approx(100 * s["seconds"])
    st = result["strategies"]
    assert result["weibull_over_uncertainty"] == pytest.approx(st["weibull"]["seconds"] / st["uncertainty"]["seconds"])
    assert result["weibull_over_uncertainty_paired"] == pytest.approx(result["weibull_over_uncertainty"])
    assert set(result["provenance"]["data"]) == {"pool"}


@pytest.mark.slow
def test_weibull_with_rejection_queries_fewer_ood_than_random(tmp_path):
    from raycl.cli import main

    out = tmp_path / "ood"
    assert main(["active", "run", "--seeds", "3", "--num-cpus", "2", "--strategies", "random", "weibull:threshold=0.25",
                 "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())["strategies"]
    assert s["weibull:threshold=0.25"]["ood_queries"]["mean"] < s["random"]["ood_queries"]["mean"]


def test_fit_stops_early_after_patience_epochs_without_a_better_validation_accuracy():
    from raycl.active.config import ActiveTrainConfig
    from raycl.active.train import fit

    x, y = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(40) % 3
    # 3 updates an epoch; min_steps 24 holds early stopping off until epoch 8
    for patience, min_steps, trained in [(3, 0, 4), (0, 0, 12), (3, 24, 8)]:
        # lr 0: the validation accuracy never improves on the first check
        cfg = ActiveTrainConfig(epochs=12, lr=0.0, eval_every=1, patience=patience, batch_size=16, min_steps=min_steps)
        torch.manual_seed(0)
        model = make_model("vnn", (1, 8, 8), 3)
        _, info = fit(model, x, y, x[:12], y[:12], cfg, torch.device("cpu"), torch.Generator().manual_seed(0))
        assert info["best_epoch"] == 1 and info["trained_epochs"] == trained


def test_run_summary_records_provenance_per_seed(tmp_path):
    import re

    from raycl.active.distributed import provenance
    from raycl.active.scenario import Scenario
    from raycl.cli import main

    out = tmp_path / "run"
    assert main(_tiny_args(out, "--strategies", "random", "uncertainty")) == 0
    p = json.loads((out / "summary.json").read_text())["provenance"]
    assert p["environment"]["torch"] and p["data_differs"] == []
    assert set(p["data"]) == {f"seed_{s}/{n}" for s in (0, 1) for n in ("pool", "ood", "val", "test")}
    assert all(re.fullmatch("[0-9a-f]{16}", v) for v in p["data"].values())
    assert p["data"]["seed_0/test"] == p["data"]["seed_1/test"] and p["data"]["seed_0/pool"] != p["data"]["seed_1/pool"]
    assert p["data"]["seed_1/pool"] == provenance(Scenario().build(1))["data"]["pool"]  # the default scenario's
