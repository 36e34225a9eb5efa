import json

import numpy as np
import pytest
import torch

from raycl import RayclError
from raycl.cli import main
from raycl.dan import build_dan_regressor, snapshot
from raycl.runio import read_parquet
from raycl.sine.config import SineConfig
from raycl.sine.meta import SineLearner, _Updater, deploy, run_function
from raycl.sine.tasks import keep, sample_function, sample_stream, subtask_windows, whole_function_grid



pytestmark = pytest.mark.usefixtures("one_thread")

def test_filter_as_written_and_range_reading():
    x = np.linspace(-5, 5, 1001)
    inside = 0.7 * np.sin(x)  # within [-.8, .8], range 1.4
    deep = 0.7 * np.sin(x) - 0.5  # dips to -1.2
    flat = 0.1 * np.sin(x) - 0.85
    assert keep(inside, "range") and not keep(inside, "literal")  # literal discards y_min > -.8
    assert keep(deep, "literal") and not keep(deep, "range")
    assert not keep(flat, "range") and not keep(flat, "literal")  # range < .4
    with pytest.raises(ValueError):
        keep(inside, "other")


@pytest.mark.parametrize("filter", ["range", "literal"])
def test_sampled_functions_pass_filter(filter):
    rng = np.random.default_rng(0)
    grid = np.linspace(-5, 5, 1001)
    for _ in range(20):
        fn = sample_function(rng, filter)
        assert keep(fn(grid), filter)
        assert all(0 < a < 2 for a in fn.a) and all(0 < r < np.pi / 3 for r in fn.r)
        assert all(-5 <= p <= 5 for p in fn.p)


def test_stream_windows():
    assert subtask_windows() == [(-5.0, -3.0), (-3.0, -1.0), (-1.0, 1.0), (1.0, 3.0), (3.0, 5.0)]
    rng = np.random.default_rng(1)
    fn = sample_function(rng)
    stream = sample_stream(fn, rng, 5, 100)
    assert len(stream) == 5
    for (lo, hi), (x, y) in zip(subtask_windows(), stream):
        assert x.shape == (100, 1) and y.shape == (100, 1)
        assert x.min() >= lo and x.max() <= hi
        assert torch.allclose(y, fn(x))


def test_foreach_adam_equals_torch_adam():
    torch.manual_seed(0)
    p1 = {"a": torch.nn.Parameter(torch.randn(5, 3)), "b": torch.nn.Parameter(torch.randn(4))}
    p2 = {k: torch.nn.Parameter(v.detach().clone()) for k, v in p1.items()}
    mine, ref = _Updater(p1, 1e-2, "adam"), torch.optim.Adam(p2.values(), lr=1e-2)
    for _ in range(20):
        g = {k: torch.randn_like(v) for k, v in p1.items()}
        mine.step(g)
        for k in p2:
            p2[k].grad = g[k].clone()
        ref.step()
    assert all(torch.allclose(p1[k], p2[k], atol=1e-6) for k in p1)


def _small_learner(optimizer="adam", lr_theta=1e-2):
    cfg = SineConfig(hidden=(10, 10), n_channels=4, optimizer=optimizer, lr_theta=lr_theta)
    return cfg, SineLearner.build(cfg, torch.Generator().manual_seed(0))


def test_synapses_learn_and_theta_resets():
    cfg, learner = _small_learner()
    rng = np.random.default_rng(2)
    fn = sample_function(rng)
    stream, grid = sample_stream(fn, rng, 5, 40), whole_function_grid(fn)
    phi0, theta0 = snapshot(learner.phi), snapshot(learner.theta)
    rec = run_function(learner, stream, grid)
    assert len(rec["total"]) == 6 and len(rec["memory"]) == 5
    assert rec["total"][-1] < 0.5 * rec["total"][0]  # θ fitted the function
    assert all(torch.equal(phi0[k], v) for k, v in learner.phi.items())  # φ frozen
    learner.reset_theta()
    assert all(torch.equal(theta0[k], v) for k, v in learner.theta.items())


def test_memory_step_moves_phi_only():
    _, learner = _small_learner()
    x, y = torch.rand(30, 1) * 10 - 5, torch.rand(30, 1) - 0.5
    theta, phi = snapshot(learner.theta), snapshot(learner.phi)
    learner.memory_step(x, y)
    assert all(torch.equal(theta[k], v) for k, v in learner.theta.items())
    assert any(not torch.equal(phi[k], v) for k, v in learner.phi.items())


def test_plastic_deployment_restores_phi():
    _, learner = _small_learner()
    rng = np.random.default_rng(3)
    fn = sample_function(rng)
    streams = [(sample_stream(fn, rng, 5, 5), whole_function_grid(fn))]
    phi = snapshot(learner.phi)
    deploy(learner, phi, streams, plastic=True)
    assert all(torch.equal(phi[k], v) for k, v in learner.phi.items())


def test_deployment_learning_rate_overrides_alpha_for_that_call_only(tmp_path, capsys):
    rng = np.random.default_rng(4)
    fn = sample_function(rng)
    streams = [(sample_stream(fn, rng, 2, 5), whole_function_grid(fn))]
    _, learner = _small_learner(lr_theta=1e-2)
    _, other = _small_learner(lr_theta=3e-3)
    phi = snapshot(learner.phi)
    at_other = deploy(learner, phi, streams, lr_theta=3e-3)
    assert learner.theta_opt.lr == 1e-2
    assert at_other[0]["total"] == pytest.approx(deploy(other, phi, streams)[0]["total"], rel=1e-6)
    assert deploy(learner, phi, streams)[0]["total"] != pytest.approx(at_other[0]["total"], rel=1e-3)
    with pytest.raises(SystemExit) as e:  # a range check on the flag itself: argparse's error, exit 2
        main(["sine", "--preset", "quick", "--out", str(tmp_path / "run"), "--deploy-lr-theta", "0"])
    assert e.value.code == 2
    assert "--deploy-lr-theta: must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_sine_cli_quick(tmp_path):
    out = tmp_path / "run"
    assert main(["sine", "--preset", "quick", "--out", str(out), "--no-progress", "--epochs", "3"]) == 0
    s = json.loads((out / "summary.json").read_text())
    ms = s["must_show"]
    assert ms["meta_learned"]["n"] == 3 and ms["random"]["n"] == 3
    assert set(s["deployment"]) >= {"meta_fixed", "random_fixed", "random_unique_plastic"}
    for f in ["fig5_2.png", "fig5_5.png", "meta_training.png"]:
        assert (out / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f
    assert list((out / "tb").glob("events.out.tfevents.*"))
    df = read_parquet(out / "metrics.parquet")
    meta = df[df.phase == "meta"]
    assert meta.epoch.tolist() == [1, 2, 3] and np.isfinite(meta[["total_loss", "memory_loss", "task_loss"]]).all().all()
    # fewer than 25 epochs: the first and last 25 are all three, averaged
    mt = s["meta_training"]
    assert mt["memory_loss_first25"] == pytest.approx(meta.memory_loss.mean()) == mt["memory_loss_last25"]
    dep = df[df.phase == "deploy"]
    assert set(dep.after_task.dropna().astype(int)) == set(range(6))
    for v in ("meta_fixed", "random_fixed", "random_unique_plastic"):
        rows = dep[dep.variant == v]
        assert len(rows) == 3 * 6  # 3 unseen functions, evaluated before and after each of 5 sub-tasks
        # the summary's whole-function MSE per function is the table's loss after the last sub-task
        last = rows[rows.after_task == 5].sort_values("function").total_loss.tolist()
        assert s["deployment"][v]["per_function"]["whole_function_mse"] == pytest.approx(last)
        assert s["deployment"][v]["whole_function_mse"]["mean"] == pytest.approx(np.mean(last))
    assert ms["meta_learned"]["mean"] == pytest.approx(s["deployment"]["meta_fixed"]["whole_function_mse"]["mean"])
    assert ms["random"]["mean"] == pytest.approx(s["deployment"]["random_fixed"]["whole_function_mse"]["mean"])
    ck = torch.load(out / "checkpoints" / "phenotype.pt", weights_only=True)
    assert ck["meta"]["epoch"] == 3 and ck["meta"]["memory_loss_last25"] == pytest.approx(mt["memory_loss_last25"])


def test_activation_view(tmp_path, capsys):
    from raycl.dan.checkpoint import save_phenotype

    net = build_dan_regressor(hidden=(5, 5), n_channels=1, sharing="net1")
    save_phenotype(tmp_path / "p.pt", net, epoch=7)
    from PIL import Image

    assert main(["activation", str(tmp_path / "p.pt"), "--out", str(tmp_path / "f.png")]) == 0
    with Image.open(tmp_path / "f.png") as im:
        assert im.format == "PNG" and im.width > 200 and im.height > 200
        assert np.asarray(im.convert("L"), dtype=float).std() > 5  # curves drawn, not a blank canvas
    capsys.readouterr()
    wide = build_dan_regressor(hidden=(5, 5), n_channels=3)
    save_phenotype(tmp_path / "w.pt", wide)
    assert main(["activation", str(tmp_path / "w.pt"), "--out", str(tmp_path / "g.png")]) == 2
    assert "n_channels=1" in capsys.readouterr().err and not (tmp_path / "g.png").exists()
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert main(["activation", str(tmp_path / "bad.pt"), "--out", str(tmp_path / "h.png")]) == 2
    assert "corrupt" in capsys.readouterr().err and not (tmp_path / "h.png").exists()


def test_activation_derivative_matches_finite_difference():
    from raycl.dan import Phenotype
    from raycl.dan.activation import activation_curves

    for phen in (Phenotype(1, gain=2.0), Phenotype(1, n_units=3, gain=2.0)):
        x, y, dy = activation_curves(phen.double(), -2, 2, n=8001)
        fd = (y[2:] - y[:-2]) / (x[2:] - x[:-2]).unsqueeze(1)
        assert torch.allclose(fd, dy[1:-1], rtol=1e-3, atol=1e-4)


def test_checkpoint_roundtrip(tmp_path):
    from raycl.dan.checkpoint import load_phenotype, model_from_checkpoint, phenotypes_from_state, save_phenotype

    net = build_dan_regressor(hidden=(6, 6), n_channels=3, sharing="net2")
    save_phenotype(tmp_path / "c.pt", net)
    ck = load_phenotype(tmp_path / "c.pt")
    again = model_from_checkpoint(ck)
    x = torch.randn(4, 1)
    assert torch.equal(again(x), net(x))
    phens = phenotypes_from_state(ck["phi"])
    assert set(phens) == {"layers.0.phenotype", "layers.1.phenotype", "layers.2.phenotype"}
    assert phens["layers.0.phenotype"].n_units == 6
    with pytest.raises(RayclError):
        phenotypes_from_state({"layers.0.weight": torch.zeros(2)})


@pytest.mark.slow
def test_meta_training_beats_random_phenotype(tmp_path):
    """A small Chapter 5 run: the meta-learned phenotype forgets less than φ0."""
    out = tmp_path / "run"
    args = ["sine", "--out", str(out), "--no-progress", "--epochs", "80", "--deploy-functions", "12",
            "--hidden", "16", "16", "--n-channels", "8", "--variants", "meta_fixed,random_fixed"]
    assert main(args) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["meta_training"]["memory_loss_last25"] < s["meta_training"]["memory_loss_first25"]
    ms = s["must_show"]
    assert ms["meta_learned"]["mean"] < ms["random"]["mean"]
    assert ms["functions_where_meta_is_better"] >= 8


@pytest.mark.slow
def test_bench_prints_one_json_line():
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, "bench/dan_layer.py", "--sizes", "2e4", "--reps", "1", "--batch", "8"],
                         cwd=root, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])["results"][0]
    assert abs(r["dan"]["theta"] - r["dense"]["params"]) / r["dan"]["theta"] < 0.05


def test_run_checkpoint_holds_theta0(tmp_path):
    """Checkpoints written mid-training store the θ0 every function starts from."""
    from raycl.dan.checkpoint import load_phenotype, model_from_checkpoint
    from raycl.sine.experiment import SineExperiment

    cfg = SineConfig(hidden=(8, 8), n_channels=4, samples_per_task=10)
    exp = SineExperiment(tmp_path / "run", cfg, epochs=2, deploy_functions=2, ckpt_every=1, progress=False,
                         variants=("meta_fixed", "random_fixed"))
    exp()
    fresh = SineLearner.build(cfg, torch.Generator().manual_seed(exp.init_seed))
    for name in ("phenotype.pt", "phenotype_e00001.pt"):
        ck = load_phenotype(tmp_path / "run" / "checkpoints" / name)
        assert all(torch.equal(ck["theta0"][k], v) for k, v in fresh.theta0.items())
    model = model_from_checkpoint(ck)
    assert ck["meta"]["epoch"] == 1 and model(torch.zeros(3, 1)).shape == (3, 1)


def _fake_seed(seed, meta, rand):
    """A run summary as SineExperiment writes it, reduced to what seeds_summary reads."""
    dep = {}
    for v, vals in (("meta_fixed", meta), ("random_fixed", rand)):
        dep[v] = {"whole_function_mse": {"mean": float(np.mean(vals))},
                  "per_function": {"whole_function_mse": list(vals), "seen_data_mse": list(vals)}}
    return {"seed": seed, "deployment": dep, "meta_training": {"memory_loss_last25": 0.01}, "seconds": 1.0,
            "cpu_seconds": 1.0}


def test_seeds_summary_reports_both_spreads():
    from raycl.sine.experiment import seeds_summary

    # seed means: meta .1/.2 (std .0707), random .5/.9 (std .283); pooled functions: random std .337
    s = seeds_summary([_fake_seed(0, [0.1, 0.1], [0.2, 0.8]), _fake_seed(1, [0.1, 0.3], [0.9, 0.9])])
    ms = s["must_show"]
    assert ms["meta_learned"]["over_seeds"]["per_seed_mean"] == pytest.approx([0.1, 0.2])
    assert ms["random"]["over_seeds"]["std"] == pytest.approx(np.std([0.5, 0.9], ddof=1))
    assert ms["random"]["pooled_functions"]["std"] == pytest.approx(np.std([0.2, 0.8, 0.9, 0.9], ddof=1))
    assert ms["difference_random_minus_meta"] == pytest.approx(0.55)
    fn, sd = ms["checks"]["per_function_spread"], ms["checks"]["across_seed_spread"]
    assert fn["spread"] == pytest.approx(np.std([0.2, 0.8, 0.9, 0.9], ddof=1)) and fn["meta_lower_by_more_than_spread"]
    assert sd["spread"] == pytest.approx(np.std([0.5, 0.9], ddof=1)) and sd["meta_lower_by_more_than_spread"]
    assert "per-function" in fn["spread_used"] and "per-seed mean" in sd["spread_used"]
    d = ms["paired_per_function"]
    assert d["median"] == pytest.approx(np.median([0.1, 0.7, 0.8, 0.6])) and d["functions_where_meta_is_better"] == 4
    assert ms["paired_per_seed"]["per_seed"] == pytest.approx([0.4, 0.7])
    # a wide spread over seeds fails that check only
    wide = seeds_summary([_fake_seed(0, [0.1, 0.1], [0.2, 0.2]), _fake_seed(1, [0.1, 0.1], [1.2, 1.2])])
    assert not wide["must_show"]["checks"]["across_seed_spread"]["meta_lower_by_more_than_spread"]
    assert fn["reachable_by_any_phenotype"] and fn["largest_possible_difference"] == pytest.approx(0.7)
    # heavy-tailed random errors (std > mean): even a perfect phenotype (MSE 0) fails the per-function check
    tail = seeds_summary([_fake_seed(0, [0.0, 0.0], [0.01, 0.01]), _fake_seed(1, [0.0, 0.0], [0.01, 1.0])])
    fn = tail["must_show"]["checks"]["per_function_spread"]
    assert not fn["meta_lower_by_more_than_spread"] and not fn["reachable_by_any_phenotype"]
    assert fn["largest_possible_difference"] == pytest.approx(fn["difference"])


def test_sine_cli_seeds_in_process(tmp_path):
    out = tmp_path / "run"
    args = ["sine", "--preset", "quick", "--out", str(out), "--no-progress", "--epochs", "2", "--seeds", "2",
            "--seed", "3", "--no-ray", "--variants", "meta_fixed,random_fixed"]
    assert main(args) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["seeds"] == [3, 4]
    one = [json.loads((out / f"seed_{k}" / "summary.json").read_text()) for k in (3, 4)]
    # each seed has its own unseen functions and its own meta-training
    f3, f4 = (o["deployment"]["random_fixed"]["per_function"]["whole_function_mse"] for o in one)
    assert f3 != f4 and len(f3) == 3
    assert s["deployment"]["random_fixed"]["over_seeds"]["per_seed_mean"] == pytest.approx([np.mean(f3), np.mean(f4)])
    assert s["deployment"]["random_fixed"]["pooled_functions"]["n"] == 6
    df = read_parquet(out / "per_function.parquet")
    assert len(df) == 2 * 2 * 3 and set(df.seed) == {3, 4}
    for png in ("seeds.png", "seed_3/fig5_5.png", "seed_4/fig5_5.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    assert [json.loads((out / f"seed_{k}" / "summary.json").read_text())["seed"] for k in (3, 4)] == [3, 4]
    # the first seed alone reproduces its repeat exactly
    assert main(["sine", "--preset", "quick", "--out", str(tmp_path / "alone"), "--no-progress", "--epochs", "2",
                 "--seed", "3", "--variants", "meta_fixed,random_fixed"]) == 0
    alone = json.loads((tmp_path / "alone" / "summary.json").read_text())
    assert alone["deployment"]["random_fixed"]["per_function"] == one[0]["deployment"]["random_fixed"]["per_function"]
    assert main(["sine", "--preset", "quick", "--out", str(out), "--seeds", "2", "--compare", "sharing"]) == 2


def test_compare_sharing_in_process(tmp_path):
    out = tmp_path / "run"
    args = ["sine", "--preset", "quick", "--out", str(out), "--no-progress", "--epochs", "2", "--no-ray",
            "--compare", "sharing", "--variants", "meta_fixed,random_fixed"]
    assert main(args) == 0
    s = json.loads((out / "summary.json").read_text())
    c = s["compare_sharing"]
    assert set(c) == {"net0", "net1", "net2"}
    # net0 is the main run, reused; net1/net2 are their own meta-trainings
    assert c["net0"]["per_function"] == s["deployment"]["meta_fixed"]["per_function"]
    assert c["net1"]["per_function"] != c["net0"]["per_function"]
    assert (out / "fig5_4.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # each comparison's phenotype checkpoint is a network with that sharing, meta-trained as long as the main run
    from raycl.dan.checkpoint import load_phenotype, model_from_checkpoint

    for net in ("net1", "net2"):
        ck = load_phenotype(out / "checkpoints" / f"sharing_{net}" / "phenotype.pt")
        assert ck["meta"]["epoch"] == 2 and ck["model_config"]["sharing"] == net
        assert model_from_checkpoint(ck)(torch.zeros(3, 1)).shape == (3, 1)
    df = read_parquet(out / "metrics.parquet")
    assert (df[df.phase == "meta"].run.value_counts().to_dict()) == {"main": 2, "sharing:net1": 2, "sharing:net2": 2}


@pytest.mark.slow
def test_ray_comparisons_match_in_process(tmp_path):
    import ray

    base = ["sine", "--preset", "quick", "--no-progress", "--epochs", "2", "--compare", "channels",
            "--variants", "meta_fixed", "--num-cpus", "2"]
    try:
        assert main([*base, "--out", str(tmp_path / "ray")]) == 0
    finally:
        ray.shutdown()
    assert main([*base, "--out", str(tmp_path / "local"), "--no-ray"]) == 0
    a, b = (json.loads((tmp_path / k / "summary.json").read_text())["compare_channels"] for k in ("ray", "local"))
    assert a["1"]["per_function"] == b["1"]["per_function"]


def test_provenance_in_summaries_and_checkpoints(tmp_path):
    """summary.json and every checkpoint fingerprint the exact targets meta-trained and deployed on."""
    import re

    from raycl.dan.checkpoint import load_phenotype
    from raycl.provenance import fingerprint
    from raycl.runner import Runner
    from raycl.sine.experiment import SineExperiment, run_seeds

    cfg = SineConfig(hidden=(8, 8), n_channels=4, samples_per_task=10)
    kw = dict(epochs=2, deploy_functions=2, ckpt_every=1, variants=("meta_fixed", "random_fixed"))
    exp = SineExperiment(tmp_path / "run", cfg, progress=False, **kw)
    exp()
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    p = s["provenance"]
    assert set(p["data"]) == {"meta-train", "deploy"} and p["environment"]["torch"]
    assert all(re.fullmatch("[0-9a-f]{16}", v) for v in p["data"].values())
    rng = np.random.default_rng(exp.train_seed)  # the meta-training targets, drawn again
    drawn = [sample_stream(sample_function(rng, cfg.filter), rng, cfg.n_subtasks, cfg.samples_per_task)
             for _ in range(2)]
    assert p["data"]["meta-train"] == fingerprint(drawn)
    assert p["data"]["deploy"] == fingerprint(exp.deployment_streams(cfg)[1])
    ck = tmp_path / "run" / "checkpoints"
    assert load_phenotype(ck / "phenotype.pt")["meta"]["provenance"]["data"]["meta-train"] == fingerprint(drawn)
    first = load_phenotype(ck / "phenotype_e00001.pt")["meta"]["provenance"]
    assert first["data"]["meta-train"] == fingerprint(drawn[:1]) and first["environment"]["torch"]
    pooled = run_seeds(tmp_path / "seeds", cfg, [0, 1], Runner(use_ray=False, progress=False), **kw)
    on_disk = json.loads((tmp_path / "seeds" / "summary.json").read_text())["provenance"]
    assert on_disk == pooled["provenance"] and on_disk["environment"]["torch"]
    assert set(on_disk["data"]) == {f"seed_{k}/{n}" for k in (0, 1) for n in ("meta-train", "deploy")}
    assert on_disk["data"]["seed_0/deploy"] == p["data"]["deploy"]  # seed 0 is the run above
    assert on_disk["data"]["seed_0/deploy"] != on_disk["data"]["seed_1/deploy"]
