import json

import numpy as np
import pytest
import torch

from raycl import RayclError
from raycl.selfnet.ae import ACTIVATIONS, ContractiveAE, cosine
from raycl.selfnet.flat import flatten, join, load_flat, num_params, pad_mask, split_pad
from raycl.selfnet.store import NetMeta, SelfNet, fit_ae
from raycl.selfnet.tasknets import make_tasknet


def test_task_network_parameter_counts():
    assert num_params(make_tasknet("mnist", 10)) == 21_840
    cifar = make_tasknet("cifar", 2)
    assert num_params(cifar) == 61_326 == 3 * 20_442
    assert split_pad(flatten(cifar), 20_442).shape == (3, 20_442)  # exactly three sub-vectors, no padding
    for arch, shape in (("mnist", (1, 28, 28)), ("cifar", (3, 32, 32))):
        assert make_tasknet(arch, 10)(torch.zeros(4, *shape)).shape == (4, 10)


@pytest.mark.parametrize("length,n", [(61_326, 20_442), (21_840, 20_442), (21_840, 21_840), (845_493, 76_863),
                                      (7, 3), (3, 7)])
def test_split_pad_join_round_trip_is_exact(length, n):
    v = torch.randn(length)
    chunks = split_pad(v, n)
    assert chunks.shape == (-(-length // n), n)
    assert torch.equal(join(chunks, length), v)
    mask = pad_mask(length, n)
    assert int(mask.sum()) == length and torch.all(chunks[~mask] == 0)


def test_flatten_and_load_round_trip():
    a, b = make_tasknet("cifar", 2, seed=1), make_tasknet("cifar", 2, seed=2)
    load_flat(b, flatten(a))
    assert torch.equal(flatten(a), flatten(b))
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(a(x), b(x))
    with pytest.raises(ValueError):
        load_flat(b, torch.zeros(10))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("hidden,residual", [((), False), ((6,), False), ((6,), True)])
def test_contractive_penalty_matches_autograd_jacobian(activation, hidden, residual):
    torch.manual_seed(0)
    ae = ContractiveAE(17, 3, hidden, activation, residual=residual).double()
    x = torch.randn(4, 17, dtype=torch.double)
    _, pre = ae.encode_pre(x)
    ours = ae.jacobian_sq_norm(pre)
    ref = torch.stack([torch.autograd.functional.jacobian(ae.encode, x[i:i + 1]).pow(2).sum() for i in range(4)])
    torch.testing.assert_close(ours, ref)


def test_tanh_penalty_is_not_the_sigmoid_derivative():
    # the authors' code used h(1-h) under tanh; the two differ, and ours matches autograd (above)
    torch.manual_seed(0)
    ae = ContractiveAE(9, 2, (), "tanh").double()
    x = torch.randn(3, 9, dtype=torch.double)
    h, pre = ae.encode_pre(x)
    wrong = ((h * (1 - h)) ** 2) @ (ae.enc[0].weight ** 2).sum(1)
    assert not torch.allclose(ae.jacobian_sq_norm(pre), wrong)


def _nets(k, length=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(length, generator=g)
    return [base + 0.3 * torch.randn(length, generator=g) for _ in range(k)]


def test_ae_training_stops_at_the_threshold():
    torch.manual_seed(0)
    nets = _nets(4, 200)
    start = fit_ae(ContractiveAE(200, 4, (), "elu"), nets, threshold=2.0, max_iters=0).history[0]
    threshold = start + 0.5 * (1 - start)  # halfway from the untrained AE to a perfect one
    torch.manual_seed(0)
    res = fit_ae(ContractiveAE(200, 4, (), "elu"), nets, threshold=threshold, lr=1e-2, max_iters=2000)
    assert res.reached and res.history[-1] >= threshold
    assert all(h < threshold for h in res.history[:-1])  # stopped the first time it got there
    assert res.iterations == len(res.history) - 1 > 0
    assert sum(res.cosines) / len(res.cosines) == pytest.approx(res.history[-1], abs=1e-6)
    capped = fit_ae(ContractiveAE(200, 4, (), "elu"), nets, threshold=1.5, max_iters=7)
    assert not capped.reached and capped.iterations == 7 and len(capped.history) == 8


def test_store_keeps_only_s_floats_per_task_and_recollects():
    torch.manual_seed(0)
    s, n = 3, 100
    sn = SelfNet(n, s, (), "elu", buffer_size=2, thresholds=(0.9,), lr=1e-2, max_iters=300)
    nets = _nets(4, 250) + [torch.randn(60)]  # 250 -> 3 sub-vectors; 60 -> 1 (padded)
    for i, v in enumerate(nets):
        sn.add(f"t{i}", v, NetMeta("flat", 0, v.numel()))
    assert len(sn.buffer) == 1  # the fifth waits in the buffer
    sn.consolidate()
    assert not sn.buffer
    for i, v in enumerate(nets):
        assert sn.latents[f"t{i}"].shape == (-(-v.numel() // n), s)
        assert sn.recollect(f"t{i}").shape == v.shape
    state = sn.state_dict()
    floats = sum(t.numel() for t in state["ae_state"].values()) + sum(t.numel() for t in state["latents"].values())
    assert floats == sn.ae.num_params() + (4 * 3 + 1) * s
    per_task_tensors = {k: v for k, v in state.items() if k not in ("ae_state", "latents")}
    assert not any(isinstance(x, torch.Tensor) for x in json.loads(json.dumps(per_task_tensors, default=str)))
    st = sn.storage()
    assert st["latent_floats"] == 13 * s and st["buffer_floats"] == 0
    assert st["independent_floats"] == 4 * 250 + 60
    back = SelfNet.from_state(state)
    assert torch.equal(back.recollect("t2"), sn.recollect("t2"))
    assert all(f.reached for f in sn.fits)
    assert sum(sn.fits[-1].cosines) / len(nets) >= 0.9


def _finetuned(k, length, seed=0):
    """k networks fine-tuned from one source: low-rank task-specific differences, ~15% of the norm."""
    g = torch.Generator().manual_seed(seed)
    source, basis = torch.randn(length, generator=g), torch.randn(4, length, generator=g)
    return [source + 0.075 * (torch.randn(4, generator=g) @ basis) for _ in range(k)]


def test_residual_ae_starts_at_the_centre_and_stores_nothing_more():
    torch.manual_seed(0)
    nets = _finetuned(3, 400)
    plain, res = ContractiveAE(400, 3, (), "elu"), ContractiveAE(400, 3, (), "elu", residual=True)
    assert res.num_params() == plain.num_params()  # the centre is the decoder's own bias
    x = torch.stack(nets)
    res.centre_on(x)
    with torch.no_grad():
        assert torch.equal(res.dec[-1].bias, x.mean(0))
        assert all(cosine(r, x.mean(0)) > 0.999 for r in res(x))
        # the encoder sees the difference from the centre: shifting the centre shifts the code's input
        z = res.encode(x)
        res.dec[-1].bias += 1.0
        assert torch.allclose(res.encode(x + 1.0), z, atol=1e-5)


@pytest.mark.usefixtures("one_thread")
def test_residual_coding_folds_finetuned_networks_where_raw_coding_stalls():
    # bench/selfnet.py's problem in small: buffer 1, every network's cosine >= 0.997 at every fold
    def folds(residual):
        torch.manual_seed(0)
        sn = SelfNet(1000, 4, (), "elu", 1, (0.997,), 1e-6, 3e-3, 100, "min", "cpu", residual=residual)
        for i, v in enumerate(_finetuned(4, 1000)):
            sn.add(f"t{i}", v)
        return sn

    res, raw = folds(True), folds(False)
    assert all(f.reached for f in res.fits) and all(min(f.cosines) >= 0.997 for f in res.fits)
    assert res.fits[0].iterations == 0  # the first network is the centre itself
    assert not any(f.reached for f in raw.fits[1:])  # the same AE coding raw networks hits the 100-update cap
    back = SelfNet.from_state(res.state_dict())
    assert back.ae.residual and torch.equal(back.recollect("t3"), res.recollect("t3"))
    assert sum(t.numel() for t in res.latents.values()) == 4 * 4  # still s floats per task


def test_store_errors_are_user_facing(tmp_path):
    from raycl.runio import torch_load

    sn = SelfNet(10, 2, buffer_size=2)
    with pytest.raises(RayclError, match="no task 'missing' in the store; stored: none"):
        sn.recollect("missing")
    v = torch.randn(10)
    sn.add("t0", v)
    assert sn.in_buffer("t0") and torch.equal(sn.recollect("t0"), v)  # buffered: given back exactly
    with pytest.raises(RayclError, match="no task 'missing' in the store; stored: t0$"):
        sn.recollect("missing")
    bad = tmp_path / "store.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(RayclError, match="store.pt is corrupt"):
        torch_load(bad)
    with pytest.raises(RayclError, match="not a Self-Net store .*point at a store.pt a run wrote"):
        SelfNet.from_state({"latents": {}})


@pytest.fixture(scope="module")
def digits():
    from raycl.selfnet.streams import load_pair

    return load_pair("digits")


def test_streams_on_digits(digits):
    from raycl.selfnet.streams import make_stream

    train, test = digits
    split = make_stream("split", train, test, 3, seed=0)
    for t in split:
        assert t.num_classes == 2 and t.train_x.shape[1:] == (1, 28, 28)
        assert 0.35 < float(t.train_y.float().mean()) < 0.45  # ~40% positives
        assert len(t.info["neg"]) == 4 and t.info["pos"][0] not in t.info["neg"]
    perm = make_stream("permuted", train, test, 2, seed=0)
    assert perm[0].info["identity"] and perm[0].num_classes == 10
    assert not torch.equal(perm[0].train_x, perm[1].train_x)
    assert torch.equal(perm[0].train_x.flatten(1).sort(1).values, perm[1].train_x.flatten(1).sort(1).values)
    c10 = make_stream("cifar10", train, test, 2)
    assert c10[0].train_x.shape[1:] == (3, 32, 32) and c10[1].info["pos"] == [1]
    c100 = make_stream("cifar100", train, test, 2)
    assert c100[0].num_classes == 10 and not c100[0].info["disjoint"]
    pairs = make_stream("pairs", train, test, 2)
    assert pairs[1].name.startswith("pair1:2/3")
    with pytest.raises(RayclError, match="unknown stream 'rotated'; choose one of: .*split"):
        make_stream("rotated", train, test, 2)


def test_task_network_learns_and_baseline_regularizers(digits):
    from raycl.selfnet.baselines import Quadratic, fisher_diagonal, make_learner, make_regularizer
    from raycl.selfnet.streams import make_stream
    from raycl.selfnet.train import TaskNetConfig, accuracy, train_task_network

    torch.set_num_threads(1)
    tasks = make_stream("pairs", *digits, 2, seed=0)
    cfg = TaskNetConfig(epochs=3, lr=0.02, momentum=0.9)
    net0 = make_tasknet("mnist", 10, seed=0)
    before = accuracy(net0, tasks[0])
    flat, acc = train_task_network(tasks[0], "mnist", 10, cfg, seed=0)
    assert acc > max(before, 0.9)
    # fine-tuning from a source stays nearer to it with a stronger anchor
    far, _ = train_task_network(tasks[1], "mnist", 10, TaskNetConfig(2, 32, 0.02, 0.9, 0.0), init=flat, source=flat)
    near, _ = train_task_network(tasks[1], "mnist", 10, TaskNetConfig(2, 32, 0.02, 0.9, 50.0), init=flat, source=flat)
    assert (near - flat).norm() < (far - flat).norm()

    net = load_flat(make_tasknet("mnist", 10), flat)
    f = fisher_diagonal(net, tasks[0], samples=16)
    assert [x.shape for x in f] == [p.shape for p in net.parameters()] and all((x >= 0).all() for x in f)
    l2, ol2, oewc = make_regularizer("l2"), make_regularizer("online_l2"), make_regularizer("online_ewc")
    assert isinstance(l2, Quadratic) and make_regularizer("sgd").penalty(net) is None
    for t in tasks:
        for r in (l2, ol2, oewc):
            r.after_task(net, t)
    assert len(l2.terms) == 2 and len(ol2.terms) == 1 and len(oewc.terms) == 1
    assert l2.penalty(net).item() == 0.0  # at the anchor
    with pytest.raises(RayclError, match="unknown baseline 'bogus'; choose from: .*ewc.*replay"):
        make_regularizer("bogus")
    pc = make_learner("pc", "mnist", 10, TaskNetConfig(epochs=4, lr=0.02, momentum=0.9))
    pc.learn(tasks[0], 0)
    assert pc.accuracy(tasks[0]) > 0.8  # the knowledge base distilled the active column


def test_si_lwf_and_replay_forget_less_than_sgd_and_task_aware_heads_help(digits):
    """Three digit pairs in turn: each of the new baselines ends above plain SGD on the shared head;
    a head per task (task identity given) is above the shared head for SGD."""
    from raycl.selfnet.baselines import Replay, make_regularizer, task_aware_stream
    from raycl.selfnet.experiments import run_baseline
    from raycl.selfnet.streams import make_stream
    from raycl.selfnet.train import TaskNetConfig

    torch.set_num_threads(1)
    tasks = make_stream("pairs", *digits, 3, seed=0)
    aware, outputs = task_aware_stream(tasks)
    assert [t.head for t in aware] == [0, 2, 4] and outputs == 6 and [t.head for t in tasks] == [0, 0, 0]
    si = make_regularizer("si")
    net = make_tasknet("mnist", 10, seed=0)
    si.before_task(net, tasks[0])
    assert si.penalty(net) is None  # nothing learned yet
    cfg = TaskNetConfig(epochs=6, lr=0.02, momentum=0.9)
    # SI's c = 100: a few hundred small steps leave its path integral small (the default c = 1 barely acts here)
    final = {n: run_baseline(n, tasks, "mnist", 10, cfg, lam={"si": 100.0}.get(n), seed=0)["final"]
             for n in ("sgd", "si", "lwf", "replay")}
    for n in ("si", "lwf", "replay"):
        assert final[n] > final["sgd"] + 0.05, final  # measured seeds 0-2: +0.11 to +0.37
    res = run_baseline("sgd", tasks, "mnist", 10, cfg, seed=0, task_aware=True)
    assert res["rows"][0]["method"] == "sgd:task-aware"
    assert res["final"] > final["sgd"] + 0.1, (res["final"], final["sgd"])  # measured +0.17 to +0.31
    rep = Replay(1.0, per_task=5)
    for t in tasks:
        rep.after_task(None, t)
    assert [len(y) for _, _, y in rep.memory] == [5, 5, 5] and [m[0].name for m in rep.memory] == [t.name for t in tasks]


def test_cli_continual_runs_both_head_forms_of_each_baseline(tmp_path):
    import pandas as pd

    from raycl.cli import main

    out = tmp_path / "run"
    assert main(["selfnet", "continual", "--no-ray", "--tasks", "2", "--buffer", "2", "--epochs", "1",
                 "--tune-epochs", "1", "--max-iters", "20", "--baselines", "sgd,replay", "--heads", "both",
                 "--out", str(out)]) == 0
    df = pd.read_parquet(out / "metrics.parquet")
    forms = {"sgd", "sgd:task-aware", "replay", "replay:task-aware"}
    assert set(df.method) == forms | {"selfnet"}
    finals = json.loads((out / "summary.json").read_text())["baselines_final_acc"]
    last = df[df.stage == 1].groupby("method").accuracy.mean()
    assert set(finals) == forms and all(abs(finals[m] - last[m]) < 1e-12 for m in forms)


def test_cli_continual_seeds_pools_independent_repeats(tmp_path):
    import numpy as np
    import pandas as pd

    from raycl.cli import main

    out = tmp_path / "run"
    assert main(["selfnet", "continual", "--no-ray", "--seeds", "2", "--seed", "3", "--tasks", "2", "--buffer", "2",
                 "--epochs", "2", "--tune-epochs", "1", "--max-iters", "20", "--baselines", "sgd",
                 "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["seeds"] == [3, 4] and "over 2 seeds" in s["what"]
    for seed in (3, 4):
        one = json.loads((out / f"seed_{seed}" / "summary.json").read_text())
        assert s["per_seed"][str(seed)]["baselines_final_acc"] == one["baselines_final_acc"]
    sgd = [s["per_seed"][k]["baselines_final_acc"]["sgd"] for k in ("3", "4")]
    assert s["final_accuracy"]["sgd"]["n"] == 2 and abs(s["final_accuracy"]["sgd"]["mean"] - np.mean(sgd)) < 1e-12
    df = pd.read_parquet(out / "metrics.parquet")
    assert set(df.seed) == {3, 4} and set(df.method) == {"selfnet", "sgd"}
    # independent repeats: the same tasks, other networks and codes
    a, b = (torch.load(out / f"seed_{k}" / "store.pt", weights_only=True)["latents"] for k in (3, 4))
    assert a.keys() == b.keys() and not any(torch.equal(a[k], b[k]) for k in a)


def test_scaling_seeds_give_accuracy_by_compression_factor_over_the_seeds(tmp_path):
    """scaling --seeds N: RUN/summary.json gives the accuracy after each consolidation by
    compression factor k/s, mean ± sample std over the seeds; the last one is each seed's final."""
    import numpy as np

    from raycl.cli import main

    out = tmp_path / "sc"
    assert main(["selfnet", "scaling", "--no-ray", "--seeds", "2", "--tasks", "4", "--buffer", "2", "--latent", "2",
                 "--epochs", "1", "--tune-epochs", "1", "--max-iters", "10", "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    by = s["by_compression_factor"]
    assert set(by) == {"1", "2"} and by["2"]["accuracy"]["n"] == 2
    finals = [s["per_seed"][k]["selfnet"]["final_reconstructed_acc"] for k in ("0", "1")]
    assert by["2"]["accuracy"]["mean"] == pytest.approx(np.mean(finals))
    assert by["2"]["accuracy"]["std"] == pytest.approx(np.std(finals, ddof=1))
    assert s["single_batch_acc"]["n"] == 2
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_diverging_baseline_is_recorded_and_the_comparison_goes_on(tmp_path, capsys):
    """One baseline's divergence does not throw away the other methods: the run ends with exit 0,
    summary.json names where it diverged and the fix, and its accuracy stays out of the finals."""
    import pandas as pd

    from raycl.cli import main

    out = tmp_path / "run"
    assert main(["selfnet", "continual", "--no-ray", "--seeds", "2", "--tasks", "2", "--buffer", "2", "--epochs", "1",
                 "--tune-epochs", "1", "--max-iters", "10", "--baselines", "sgd,ewc", "--baseline-lam", "1e15",
                 "--out", str(out)]) == 0
    s = json.loads((out / "summary.json").read_text())
    assert set(s["final_accuracy"]) == {"selfnet", "selfnet (original networks)", "sgd"}
    assert len(s["diverged"]) == 2 and all("ewc (seed" in m and "task 2 of 2" in m and "--baseline-lam" in m
                                           for m in s["diverged"])
    err = capsys.readouterr().err
    assert err.count("raycl: warning: ewc (seed") == 2
    df = pd.read_parquet(out / "metrics.parquet")
    assert set(df[df.method == "ewc"].stage) == {0}  # its rows end at the last task it learned


def test_cli_continual_seeds_on_ray_runs_each_baseline_as_its_own_task_with_the_same_numbers(tmp_path):
    """With Ray, --seeds N submits every (seed, baseline, head form) as its own task and hands the
    results to the seed's Self-Net job; every number equals the in-process run's."""
    import ray

    from raycl.cli import main

    tiny = ["selfnet", "continual", "--seeds", "2", "--seed", "3", "--tasks", "2", "--buffer", "2", "--epochs", "1",
            "--tune-epochs", "1", "--max-iters", "10", "--baselines", "sgd,lwf", "--heads", "both"]
    try:
        assert main([*tiny, "--num-cpus", "2", "--out", str(tmp_path / "ray")]) == 0
    finally:
        ray.shutdown()
    assert main([*tiny, "--no-ray", "--out", str(tmp_path / "serial")]) == 0
    on_ray, serial = (json.loads((tmp_path / k / "summary.json").read_text()) for k in ("ray", "serial"))
    assert set(on_ray["final_accuracy"]) == {"selfnet", "selfnet (original networks)", "sgd", "sgd:task-aware", "lwf",
                                             "lwf:task-aware"}
    assert on_ray["final_accuracy"] == serial["final_accuracy"]
    for seed in ("3", "4"):
        assert on_ray["per_seed"][seed]["baselines_final_acc"] == serial["per_seed"][seed]["baselines_final_acc"]


def test_cli_continual_writes_table_summary_and_figure(tmp_path, digits):
    import pandas as pd

    from raycl.cli import main
    from raycl.runio import torch_load
    from raycl.selfnet.streams import make_stream
    from raycl.selfnet.train import accuracy_of_flat

    out = tmp_path / "run"
    rc = main(["selfnet", "continual", "--no-ray", "--tasks", "2", "--buffer", "2", "--epochs", "1", "--tune-epochs", "1",
               "--max-iters", "50", "--baselines", "sgd,ewc", "--out", str(out)])
    assert rc == 0
    df = pd.read_parquet(out / "metrics.parquet")
    for col in ("method", "task", "stage", "original_acc", "reconstructed_acc", "cosine", "compression_factor",
                "storage_ratio"):
        assert col in df.columns
    assert set(df.method) == {"selfnet", "sgd", "ewc"}
    # after stage s every method is tested on tasks 0..s: 1 + 2 rows each
    for _, g in df.groupby("method"):
        assert sorted(zip(g["stage"], g["task"])) == [(0, 0), (1, 0), (1, 1)]
    assert df["accuracy"].between(0, 1).all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task_network_params"] == 21_840 and summary["tasks"] == 2
    last = df[df["stage"] == 1]
    # the summary's numbers are the table's last stage
    assert set(summary["baselines_final_acc"]) == {"sgd", "ewc"}
    for b in ("sgd", "ewc"):
        assert summary["baselines_final_acc"][b] == pytest.approx(last[last.method == b]["accuracy"].mean())
    sn, mine = summary["selfnet"], last[last.method == "selfnet"].sort_values("task")
    assert sn["final_reconstructed_acc"] == pytest.approx(mine["reconstructed_acc"].mean())
    assert sn["final_original_acc"] == pytest.approx(mine["original_acc"].mean())
    assert sn["gap_points"] == pytest.approx(100 * (sn["final_original_acc"] - sn["final_reconstructed_acc"]))
    assert sn["final_mean_cosine"] == pytest.approx(mine["cosine"].mean()) and (mine["cosine"] <= 1 + 1e-6).all()
    # buffer 2: task 0 waited in the buffer at stage 0, both were folded in at stage 1
    first = df[(df.method == "selfnet") & (df.stage == 0)].iloc[0]
    assert first["in_buffer"] and first["reconstructed_acc"] != first["reconstructed_acc"]  # NaN: not coded yet
    # store.pt is the store those numbers came from: its recollected networks score what the table says
    store = SelfNet.from_state(torch_load(out / "store.pt"))
    assert sorted(store.latents) == ["t0", "t1"] and not store.buffer
    tasks = make_stream("split", *digits, 2, seed=0)
    for j, row in zip((0, 1), mine.itertuples()):
        rec = store.recollect(f"t{j}")
        assert rec.numel() == 21_840
        assert accuracy_of_flat("mnist", 10, rec, tasks[j]) == pytest.approx(row.reconstructed_acc)
    assert (out / "continual.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit) as e:  # a range check on the flag: argparse's error, exit 2
        main(["selfnet", "continual", "--no-ray", "--tasks", "0", "--out", str(out)])
    assert e.value.code == 2
    # the finished run is never replaced by a new one without --overwrite
    assert main(["selfnet", "continual", "--no-ray", "--tasks", "2", "--out", str(out)]) == 2
    assert json.loads((out / "summary.json").read_text()) == summary


@pytest.mark.slow
def test_ray_trainer_matches_serial(digits):
    import ray

    from raycl.runner import Runner
    from raycl.selfnet.streams import make_stream
    from raycl.selfnet.train import TaskNetConfig
    from raycl.selfnet.trainers import TaskNetTrainer, TNJob

    tasks = make_stream("pairs", *digits, 2, seed=0)
    jobs = [TNJob(i, TaskNetConfig(epochs=1), seed=i) for i in range(2)]
    serial = TaskNetTrainer()(tasks, "mnist", 10, jobs)
    trainer = TaskNetTrainer(Runner(num_cpus=2, progress=False))
    try:
        parallel = trainer(tasks, "mnist", 10, jobs)
    finally:
        trainer.close()
        ray.shutdown()
    for (a, acc_a), (b, acc_b) in zip(serial, parallel):
        assert torch.equal(a, b) and acc_a == acc_b


def test_cli_summaries_and_store_record_the_stream_provenance(tmp_path, digits):
    import re

    from raycl.cli import main
    from raycl.runio import torch_load
    from raycl.selfnet.streams import make_stream, provenance

    out = tmp_path / "run"
    assert main(["selfnet", "continual", "--no-ray", "--tasks", "2", "--buffer", "2", "--epochs", "1", "--tune-epochs", "1",
                 "--max-iters", "20", "--baselines", "none", "--out", str(out)]) == 0
    p = json.loads((out / "summary.json").read_text())["provenance"]
    assert p["environment"]["torch"] and len(p["data"]) == 4
    assert all(re.fullmatch("[0-9a-f]{16}", v) for v in p["data"].values())
    assert p["data"] == provenance(make_stream("split", *digits, 2, seed=0))["data"]  # the default stream, rebuilt
    assert torch_load(out / "store.pt")["provenance"] == p
    rob = tmp_path / "rob"
    assert main(["selfnet", "robustness", "--no-ray", "--tasks", "1", "--epochs", "1", "--sigmas", "0.1", "--draws", "1",
                 "--out", str(rob)]) == 0
    p = json.loads((rob / "summary.json").read_text())["provenance"]
    assert len(p["data"]) == 2 and p["environment"]["torch"]


def test_robustness_seeds_summarise_independent_repeats_that_match_single_runs(tmp_path):
    """--seeds 2 runs the experiment for seeds 0 and 1 into seed_S/; RUN/summary.json gives each
    measure as mean ± sample std over them, and seed 1's repeat is the run `--seed 1` gives."""
    from raycl.cli import main

    tiny = ["selfnet", "robustness", "--no-ray", "--tasks", "1", "--epochs", "1", "--sigmas", "0.01,3", "--draws", "1"]
    out = tmp_path / "rep"
    assert main([*tiny, "--seeds", "2", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    per_seed = [json.loads((out / f"seed_{s}" / "summary.json").read_text()) for s in (0, 1)]
    below = [d["mean_drop_below_threshold_points"] for d in per_seed]
    m = summary["mean_drop_below_threshold_points"]
    assert m["n"] == 2 and m["mean"] == pytest.approx(np.mean(below)) and m["std"] == pytest.approx(np.std(below, ddof=1))
    assert below[0] != below[1]  # the repeats differ: their own networks and noise
    single = tmp_path / "single"
    assert main([*tiny, "--seed", "1", "--out", str(single)]) == 0
    alone = json.loads((single / "summary.json").read_text())
    assert alone["by_sigma"] == per_seed[1]["by_sigma"]
