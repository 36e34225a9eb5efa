import math

import pytest
import torch
from torch.func import functional_call

from raycl import RayclError
from raycl.data import ImageSet
from raycl.hyper.algorithm import PhenotypeOptimizer, hyper_batch, local_step, synaptic_step, task_batch
from raycl.hyper.config import HyperConfig, preset
from raycl.hyper.deploy import deploy, deploy_replay
from raycl.hyper.models import build_model
from raycl.hyper.synapses import SynapseState, advance, begin_epoch, model_generator
from raycl.hyper.stream import prepare_pool, sample_stream
from raycl.hyper.trainer import ReferenceTrainer

torch.set_num_threads(1)


def toy_pool(n_classes=12, per_class=6, size=8, seed=0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    protos = torch.rand(n_classes, 1, size, size, generator=g)
    x = protos.repeat_interleave(per_class, 0) + 0.2 * torch.rand(n_classes * per_class, 1, size, size, generator=g)
    y = torch.arange(n_classes).repeat_interleave(per_class)
    return prepare_pool(ImageSet("toy", x.clamp(0, 1), y, [f"c{i}" for i in range(n_classes)]), size)


CFG = preset("tiny")  # population 2, i=2, k=3, h_cl=4, h_h=6, holdout=2, 8x8 images


def test_stream_splits_are_disjoint():
    pool = toy_pool()
    s = sample_stream(pool, 6, 2, 2, torch.Generator().manual_seed(1))
    assert len(set(s.classes.tolist())) == 6
    flat = pool.images.flatten(1)
    # every train and held-out instance is a distinct pool row; none appears twice
    rows = torch.cat([s.train_x.flatten(0, 1), s.holdout_x.flatten(0, 1)])
    idx = [int((flat == r).all(1).nonzero()[0]) for r in rows]
    assert len(set(idx)) == len(idx)
    # labels are stream positions and each instance belongs to its task's class
    x, y = s.instances("all")
    assert set(y.tolist()) == set(range(6))
    for r, lab in zip(rows, torch.cat([s.instances("train")[1], s.instances("holdout")[1]])):
        i = int((flat == r).all(1).nonzero()[0])
        assert int(pool.labels[i]) == int(s.classes[lab])


def test_meta_train_and_meta_test_glyph_classes_are_disjoint():
    from raycl.data import load

    bg, ev = load("glyphs", split="background"), load("glyphs", split="evaluation")
    assert not set(bg.class_names) & set(ev.class_names)


def test_first_order_phi_gradient_equals_autograd_with_theta_next_held_constant():
    model, theta, phi = build_model(CFG)
    pool = toy_pool()
    s = sample_stream(pool, CFG.h_h, CFG.i, CFG.holdout, torch.Generator().manual_seed(0))
    task, hyper = s.task(0), s.instances("all")
    res = local_step(model, CFG, theta, phi, task, hyper)
    # by hand: θ_{t+1} = θ - α ∇θ L_task, then ∇φ L_hyper(θ_{t+1} constant, φ)
    th = {n: t.clone().requires_grad_() for n, t in theta.items()}
    loss = torch.nn.functional.cross_entropy(functional_call(model, {**th, **phi}, (task[0],)), task[1])
    g = torch.autograd.grad(loss, list(th.values()))
    th_next = {n: (t - CFG.lr_synapses * gi).detach() for (n, t), gi in zip(th.items(), g)}
    ph = {n: p.clone().requires_grad_() for n, p in phi.items()}
    hl = torch.nn.functional.cross_entropy(functional_call(model, {**th_next, **ph}, (hyper[0],)), hyper[1])
    expect = torch.autograd.grad(hl, list(ph.values()))
    for n, e in zip(ph, expect):
        torch.testing.assert_close(res.grad_phi[n], e, rtol=0, atol=1e-7)
    for n in theta:
        torch.testing.assert_close(res.theta[n], th_next[n], rtol=0, atol=0)
    assert math.isclose(res.hyper_loss, float(hl.detach()), rel_tol=1e-6)


def test_through_update_gradient_matches_torch_func_and_differs_from_first_order():
    cfg = CFG.with_(phi_grad="through-update", lr_synapses=0.5)
    model, theta, phi = build_model(cfg)
    s = sample_stream(toy_pool(), cfg.h_h, cfg.i, cfg.holdout, torch.Generator().manual_seed(0))
    task, hyper = s.task(0), s.instances("all")
    res = local_step(model, cfg, theta, phi, task, hyper)

    def after_update(ph):
        def inner(th):
            return torch.nn.functional.cross_entropy(functional_call(model, {**th, **ph}, (task[0],)), task[1])

        g = torch.func.grad(inner)(theta)
        th_next = {n: theta[n] - cfg.lr_synapses * g[n] for n in theta}
        return torch.nn.functional.cross_entropy(functional_call(model, {**th_next, **ph}, (hyper[0],)), hyper[1])

    expect = torch.func.grad(after_update)(phi)
    first = local_step(model, cfg.with_(phi_grad="first-order"), theta, phi, task, hyper)
    diff = 0.0
    for n in phi:
        torch.testing.assert_close(res.grad_phi[n], expect[n], rtol=1e-5, atol=1e-7)
        diff += float((res.grad_phi[n] - first.grad_phi[n]).abs().sum())
    assert diff > 1e-6


def test_unrolled_gradient_goes_through_the_last_u_updates_and_theta_takes_the_plain_step():
    cfg = CFG.with_(phi_grad="through-update", unroll=3, lr_synapses=0.5)
    model, theta0, phi = build_model(cfg)
    s = sample_stream(toy_pool(), cfg.h_h, cfg.i, cfg.holdout, torch.Generator().manual_seed(0))
    tasks, hyper = [s.task(0), s.task(0), s.task(1)], s.instances("all")

    def sgd(th, ph, task):
        g = torch.func.grad(lambda t: torch.nn.functional.cross_entropy(
            functional_call(model, {**t, **ph}, (task[0],)), task[1]))(th)
        return {n: th[n] - cfg.lr_synapses * g[n] for n in th}

    # the trajectory so far was taken with an older φ (here: φ0 scaled), as in hyper-training
    old_phi = {n: 0.9 * p for n, p in phi.items()}
    theta1 = sgd(theta0, old_phi, tasks[0])
    theta2 = sgd(theta1, old_phi, tasks[1])
    window = [(theta0, tasks[0]), (theta1, tasks[1])]
    res = local_step(model, cfg, theta2, phi, tasks[2], hyper, window)

    def after_three(ph):  # replayed from θ0 with the current φ
        th = theta0
        for t in tasks:
            th = sgd(th, ph, t)
        return torch.nn.functional.cross_entropy(functional_call(model, {**th, **ph}, (hyper[0],)), hyper[1])

    expect = torch.func.grad(after_three)(phi)
    for n in phi:
        torch.testing.assert_close(res.grad_phi[n], expect[n], rtol=1e-5, atol=1e-7)
    real = sgd(theta2, phi, tasks[2])
    for n in theta0:
        torch.testing.assert_close(res.theta[n], real[n].detach(), rtol=0, atol=1e-7)
    # a one-step window is the one-step through-update gradient
    one = local_step(model, cfg.with_(unroll=1), theta2, phi, tasks[2], hyper)
    assert sum(float((one.grad_phi[n] - res.grad_phi[n]).abs().sum()) for n in phi) > 1e-6


def test_advance_keeps_a_window_of_unroll_minus_one_steps_reset_each_epoch():
    cfg = CFG.with_(phi_grad="through-update", unroll=3)
    pool = toy_pool()
    model, theta0, phi0 = build_model(cfg)
    state = SynapseState(0, theta0, model_generator(cfg.seed, 0))
    begin_epoch(state, pool, cfg, theta0)
    thetas = [state.theta]
    for step in range(4):
        advance(model, cfg, state, phi0, step)
        thetas.append(state.theta)
    assert len(state.window) == 2
    for (th, _), expect in zip(state.window, thetas[2:4]):
        assert all(torch.equal(th[n], expect[n]) for n in th)
    begin_epoch(state, pool, cfg, theta0)
    assert state.window == []
    with pytest.raises(RayclError, match="unroll > 1 needs phi_grad=through-update"):
        CFG.with_(unroll=2)


def test_one_hyper_step_of_two_models_equals_the_step_written_out_by_hand():
    cfg = CFG.with_(phenotype_optimizer="sgd", lr_phenotype=0.1)
    pool = toy_pool()
    trainer = ReferenceTrainer(cfg, pool=pool)
    model, theta0, phi0 = trainer.model, trainer.theta0, trainer.phi0
    states = [SynapseState(m, theta0, model_generator(cfg.seed, m)) for m in range(2)]
    for s in states:
        begin_epoch(s, pool, cfg, theta0)
    results = [advance(model, cfg, s, phi0, 0) for s in states]
    trainer.server.step([r.grad_phi for r in results])

    # by hand, from the same random draws
    grads = []
    for m in range(2):
        gen = model_generator(cfg.seed, m)
        stream = sample_stream(pool, cfg.h_h, cfg.i, cfg.holdout, gen)
        x, y = stream.train_x[0], torch.zeros(cfg.i, dtype=torch.long)
        xa, ya = stream.instances("all")
        pick = torch.randint(len(xa), (cfg.hyper_batch,), generator=gen)
        th = {n: t.clone().requires_grad_() for n, t in theta0.items()}
        loss = torch.nn.functional.cross_entropy(functional_call(model, {**th, **phi0}, (x,)), y)
        g = torch.autograd.grad(loss, list(th.values()))
        th_next = {n: (t - cfg.lr_synapses * gi).detach() for (n, t), gi in zip(th.items(), g)}
        torch.testing.assert_close(states[m].theta, th_next, rtol=0, atol=0)
        ph = {n: p.clone().requires_grad_() for n, p in phi0.items()}
        hl = torch.nn.functional.cross_entropy(functional_call(model, {**th_next, **ph}, (xa[pick],)), ya[pick])
        grads.append(dict(zip(ph, torch.autograd.grad(hl, list(ph.values())))))
    for n in phi0:
        expect = phi0[n] - 0.1 * (grads[0][n] + grads[1][n]) / 2
        torch.testing.assert_close(trainer.server.phi[n], expect, rtol=0, atol=1e-7)


def test_iid_control_sees_classes_in_shuffled_order():
    cfg = CFG.with_(order="iid", i=4, h_cl=4)
    s = sample_stream(toy_pool(), cfg.h_h, cfg.i, 1, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(3)
    seq = [task_batch(s, cfg, step, g)[1] for step in range(cfg.k * cfg.h_cl)]
    first_task = torch.cat(seq[: cfg.k])
    assert len(set(first_task.tolist())) > 1  # sequential order would give only class 0 here
    assert set(torch.cat(seq).tolist()) <= set(range(cfg.h_cl))
    seq_sequential = [task_batch(s, cfg.with_(order="sequential"), step, g)[1] for step in range(cfg.k)]
    assert set(torch.cat(seq_sequential).tolist()) == {0}


def test_hyper_batch_respects_its_scope():
    s = sample_stream(toy_pool(), 6, 2, 2, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    _, y = hyper_batch(s, CFG.with_(hyper_loss_over="seen", hyper_batch=200), 1, g)
    assert set(y.tolist()) <= {0, 1}
    x, y = hyper_batch(s, CFG.with_(hyper_loss_over="heldout", hyper_batch=200), 2, g)
    hold = s.holdout_x[:3].flatten(0, 1)
    assert all((hold == r).all(1).any() for r in x)


def test_reference_training_checkpoint_resume_gives_the_same_phenotype(tmp_path):
    pool = toy_pool()
    full = ReferenceTrainer(CFG.with_(epochs=3), pool=pool)
    full.train(progress=False)
    part = ReferenceTrainer(CFG.with_(epochs=3, checkpoint_every=1), tmp_path / "run", pool=pool)
    part.train(epochs=2, progress=False)
    resumed = ReferenceTrainer(CFG.with_(epochs=3), tmp_path / "run", pool=pool)
    from raycl.hyper.trainer import load_run_checkpoint

    resumed.restore(load_run_checkpoint(tmp_path / "run"))
    assert resumed.epoch == 2
    resumed.train(progress=False)
    for n in full.phi:
        torch.testing.assert_close(resumed.phi[n], full.phi[n], rtol=0, atol=1e-6)
    assert [r["hyper_loss"] for r in resumed.history] == pytest.approx([r["hyper_loss"] for r in full.history])


def test_corrupt_checkpoint_names_the_fix(tmp_path):
    from raycl.hyper.trainer import load_run_checkpoint

    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RayclError, match="corrupt"):
        load_run_checkpoint(tmp_path)


def test_bad_config_value_is_a_clear_error():
    with pytest.raises(RayclError, match="h_cl"):
        HyperConfig(h_cl=30, h_h=25)
    with pytest.raises(RayclError, match="order"):
        preset("tiny", order="random")


def test_nan_phenotype_gradient_is_a_clear_error():
    _, _, phi = build_model(CFG)
    opt = PhenotypeOptimizer(phi, CFG)
    bad = {n: torch.full_like(p, float("nan")) for n, p in phi.items()}
    with pytest.raises(RayclError, match="lower"):
        opt.step([bad])


def test_deployment_learns_its_last_task_and_replay_remembers():
    cfg = CFG.with_(k=20)
    model, theta0, phi0 = build_model(cfg)
    s = sample_stream(toy_pool(), 3, 3, 3, torch.Generator().manual_seed(0))
    rows = deploy(model, theta0, phi0, s, cfg.k, 0.3, cfg.mode)
    assert [r["task"] for r in rows] == [1, 2, 3]
    assert rows[-1]["last_task"] == 1.0
    rep = deploy_replay(model, theta0, phi0, s, 300, 0.3, cfg.mode, 3, torch.Generator().manual_seed(0))
    assert rep[-1]["memory"] > 0.8


def test_summary_pairs_seeds_and_flags_a_two_std_win():
    from raycl.hyper.evaluate import summarize

    rows = []
    for seed, (a, b) in enumerate([(0.9, 0.5), (0.8, 0.55), (0.85, 0.45)]):
        rows.append({"contender": "trained", "set": "meta-test", "seed": seed, "d": 5, "task": 5,
                     "memory": a, "generalization": 0.5, "last_task": 1.0})
        rows.append({"contender": "random", "set": "meta-test", "seed": seed, "d": 5, "task": 5,
                     "memory": b, "generalization": 0.5, "last_task": 1.0})
    s = summarize(rows, {"trained": {"lr": 0.1}, "random": {"lr": 0.3}})
    assert s["trained"]["meta-test"]["memory"]["mean"] == pytest.approx(0.85)
    paired = s["random"]["meta-test"]["trained minus this"]
    assert paired["memory"]["mean"] == pytest.approx(0.35)
    assert paired["memory"]["beats_by_2std"] is True
    assert paired["generalization"]["beats_by_2std"] is False


def test_a_mixed_source_pools_every_sources_classes_and_keeps_held_out_classes_apart():
    from raycl.hyper.stream import meta_pool

    train = meta_pool("glyphs+shapes", "meta-train", 14)
    test = meta_pool("glyphs+shapes", "meta-test", 14)
    assert train.num_classes == 300 + 8 and test.num_classes == 100  # shapes has no held-out classes
    assert train.images.shape[1:] == (1, 14, 14) and test.images.shape[1:] == (1, 14, 14)
    assert sum(n.startswith("shapes/") for n in train.class_names) == 8
    glyph_train = {n.split("/", 1)[1] for n in train.class_names if n.startswith("glyphs")}
    assert len(glyph_train) == 300 and not glyph_train & set(test.class_names)
    assert meta_pool("digits", "meta-test", 14) is None


def test_through_task_gradient_is_the_k_step_window_gradient_and_theta_follows_plain_sgd():
    """One backward through the task's k steps gives what the window form (unroll = k) gives
    at the task's last step when φ is the same throughout, and θ is the plain SGD trajectory."""
    from raycl.hyper.algorithm import task_step

    cfg = CFG.with_(phi_grad="through-task", lr_synapses=0.5, hyper_loss_over="seen")
    model, theta0, phi = build_model(cfg)
    s = sample_stream(toy_pool(), cfg.h_h, cfg.i, cfg.holdout, torch.Generator().manual_seed(0))
    batches, hyper = [s.task(1)] * cfg.k, s.instances("all", upto=2)
    res = task_step(model, cfg, theta0, phi, batches, hyper)
    window, th = [], theta0
    for b in batches[:-1]:
        window.append((th, b))
        th, _ = synaptic_step(model, th, phi, *b, cfg.lr_synapses, cfg.mode)
    ref = local_step(model, cfg.with_(phi_grad="through-update", unroll=cfg.k), th, phi, batches[-1], hyper, window)
    for n in phi:
        torch.testing.assert_close(res.grad_phi[n], ref.grad_phi[n], rtol=1e-5, atol=1e-7)
    for n in theta0:
        torch.testing.assert_close(res.theta[n], ref.theta[n], rtol=0, atol=1e-6)
    assert res.hyper_loss == pytest.approx(ref.hyper_loss, rel=1e-6)


def test_through_task_makes_one_phenotype_step_per_task_and_lowers_the_hyper_loss():
    cfg = CFG.with_(phi_grad="through-task", hyper_loss_over="seen", lr_synapses=0.3, lr_phenotype=3e-3,
                    epochs=6, k=5)
    from raycl.hyper.trainer import steps_per_epoch

    assert steps_per_epoch(cfg) == cfg.h_cl
    trainer = ReferenceTrainer(cfg, pool=toy_pool())
    hist = trainer.train(progress=False)
    assert len(trainer.last_trace["grad_norm"]) == cfg.h_cl
    first = sum(r["hyper_loss"] for r in hist if r["epoch"] == 1)
    last = sum(r["hyper_loss"] for r in hist if r["epoch"] == cfg.epochs)
    assert last < first


def test_a_learned_theta0_moves_and_starts_every_epoch_while_learn_theta0_keeps_phi():
    pool = toy_pool()
    both = ReferenceTrainer(CFG.with_(learn="phenotype+theta0", epochs=2, lr_phenotype=1e-2), pool=pool)
    both.train(progress=False)
    moved = sum(float((both.server.theta0[n] - both.theta0[n]).abs().sum()) for n in both.theta0)
    assert moved > 0
    init_only = ReferenceTrainer(CFG.with_(learn="theta0", epochs=2, lr_phenotype=1e-2), pool=pool)
    init_only.train(progress=False)
    assert all(torch.equal(init_only.phi[n], init_only.phi0[n]) for n in init_only.phi0)
    assert sum(float((init_only.server.theta0[n] - init_only.theta0[n]).abs().sum()) for n in init_only.theta0) > 0
    # the next epoch starts from the learned θ0
    s = both.states[0]
    begin_epoch(s, pool, both.cfg, both.server.theta0 or both.theta0)
    assert all(torch.equal(s.theta[n], both.server.theta0[n]) for n in both.theta0)


def test_learned_theta0_checkpoint_resume_gives_the_same_theta0(tmp_path):
    from raycl.hyper.trainer import load_run_checkpoint

    pool, cfg = toy_pool(), CFG.with_(learn="phenotype+theta0", epochs=3, checkpoint_every=1, lr_phenotype=1e-2)
    full = ReferenceTrainer(cfg, pool=pool)
    full.train(progress=False)
    part = ReferenceTrainer(cfg, tmp_path / "run", pool=pool)
    part.train(epochs=2, progress=False)
    resumed = ReferenceTrainer(cfg, tmp_path / "run", pool=pool)
    resumed.restore(load_run_checkpoint(tmp_path / "run"))
    resumed.train(progress=False)
    for n in full.theta0:
        torch.testing.assert_close(resumed.server.theta0[n], full.server.theta0[n], rtol=0, atol=1e-6)


def test_readout_rules_at_deployment():
    from raycl.hyper.algorithm import output_rows, reset_output_row
    from raycl.hyper.deploy import class_means, score

    cfg = CFG.with_(k=20)
    model, theta0, phi0 = build_model(cfg)
    s = sample_stream(toy_pool(), 3, 3, 3, torch.Generator().manual_seed(0))
    # reset: the new class's row is zero before its first step, the others untouched
    w, b = output_rows(theta0, cfg.n_outputs)
    r = reset_output_row(theta0, 1, cfg.n_outputs)
    assert float(r[w][1].abs().sum()) == 0 and float(r[b][1].abs()) == 0
    assert torch.equal(r[w][0], theta0[w][0]) and torch.equal(theta0[w][1], build_model(cfg)[1][w][1])
    # ncm: the class means of the trained instances classify those instances (well-separated toy classes)
    params = {**theta0, **phi0}
    means = class_means(model, params, s, 3)
    assert means.shape == (3, cfg.hidden[-1])
    tx, ty = s.instances("train", upto=3)
    assert score(model, params, tx, ty, 3, cfg.mode, means) > 0.9
    runs = {rule: deploy(model, theta0, phi0, s, cfg.k, 0.3, cfg.mode, rule=rule, n_outputs=cfg.n_outputs)
            for rule in ("linear", "seen-softmax", "reset", "ncm")}
    for rule, rows in runs.items():
        assert [r["task"] for r in rows] == [1, 2, 3], rule
    # seen-softmax and reset train differently from linear; ncm trains as linear and reads out otherwise
    assert runs["seen-softmax"][0]["memory"] == 1.0  # one class seen: its softmax is that class
    assert runs["ncm"][-1]["memory"] >= 0.9
    assert runs["linear"][-1]["last_task"] == 1.0
    with pytest.raises(RayclError, match="readout_rule"):
        CFG.with_(readout_rule="ncm")
