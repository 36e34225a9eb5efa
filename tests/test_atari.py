"""Incremental Atari: preprocessing, the baby-a3c network, the A3C loss, Ray actors, Self-Net folding."""

import numpy as np
import pytest
import torch

from raycl import RayclError
from raycl.atari.a3c import A3CConfig, a3c_loss, apply_flat_gradients, discount, play_episodes
from raycl.atari.env import GAMES, make_env, preprocess
from raycl.atari.incremental import AtariConfig, format_table, run_incremental, score_table, validate
from raycl.atari.net import ActorCritic, num_params
from raycl.selfnet.flat import num_chunks


def test_all_five_games_make_and_preprocess():
    for g in GAMES:
        env = make_env(g, seed=0)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (210, 160) and env.action_space.n == 18
        x = preprocess(obs)
        assert x.shape == (1, 80, 80) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
        env.close()


def test_preprocess_crops_rows_35_to_195_and_averages_2x2():
    frame = np.zeros((210, 160), np.uint8)
    frame[35:37, 0:2] = 255  # first 2x2 block of the field
    frame[:35] = 255  # score area: cropped away
    frame[195:] = 255
    x = preprocess(frame)
    assert x[0, 0, 0] == 1.0 and x.sum() == 1.0
    rgb = np.repeat(frame[..., None], 3, axis=2)
    np.testing.assert_allclose(preprocess(rgb), x)


def test_network_size_matches_the_authors_padding():
    model = ActorCritic(18)
    n = sum(p.numel() for p in model.parameters())
    assert n == num_params(18) == 845_491
    assert num_chunks(n, 76_863) == 11 and 11 * 76_863 == 845_493  # 2 zeros of padding
    v, logits, hx = model(torch.rand(3, 1, 80, 80), model.initial_state(3))
    assert v.shape == (3, 1) and logits.shape == (3, 18) and hx.shape == (3, 256)


def test_discount_and_gae_with_tau_one_is_return_minus_value():
    np.testing.assert_allclose(discount(np.array([1.0, 0.0, 2.0]), 0.5), [1.5, 1.0, 2.0])
    torch.manual_seed(0)
    T, A, gamma = 5, 4, 0.9
    values = torch.randn(T + 1, 1, requires_grad=True)
    logits = torch.randn(T, A, requires_grad=True)
    logps = torch.log_softmax(logits, -1)
    actions = torch.tensor([0, 3, 1, 1, 2])
    rewards = np.array([1.0, 0.0, -1.0, 0.0, 1.0])
    loss, parts = a3c_loss(values, logps, actions, rewards, gamma, 1.0, 0.01)
    # by hand: R_t bootstrapped from V(s_T); with τ = 1 the GAE advantage is R_t - V(s_t)
    v = values.detach().view(-1).double()
    R = torch.zeros(T, dtype=torch.float64)
    acc = v[-1]
    for t in reversed(range(T)):
        acc = rewards[t] + gamma * acc
        R[t] = acc
    adv = (R - v[:-1]).float()
    lp = logps.gather(1, actions.view(-1, 1)).view(-1)
    policy = -(lp * adv).sum()
    value = 0.5 * (R.float() - values[:-1, 0]).pow(2).sum()
    ent = -(logps * logps.exp()).sum()
    assert parts["policy_loss"] == pytest.approx(policy.item(), rel=1e-5)
    assert parts["value_loss"] == pytest.approx(value.item(), rel=1e-5)
    assert loss.item() == pytest.approx((policy + 0.5 * value - 0.01 * ent).item(), rel=1e-5)
    loss.backward()
    # the critic's gradient is -(R_t - V_t)/2 per step and none flows into the bootstrap
    np.testing.assert_allclose(values.grad[:-1, 0].numpy(), (-(R - v[:-1]) * 0.5).numpy(), rtol=1e-4)
    assert values.grad[-1, 0] == 0


def test_flat_gradients_step_like_adam_on_the_model():
    torch.manual_seed(0)
    a, b = ActorCritic(6), ActorCritic(6)
    b.load_state_dict(a.state_dict())
    oa, ob = torch.optim.Adam(a.parameters(), 1e-3), torch.optim.Adam(b.parameters(), 1e-3)
    x, h = torch.rand(2, 1, 80, 80), a.initial_state(2)
    v, logits, _ = a(x, h)
    (v.sum() + logits.pow(2).sum()).backward()
    oa.step()
    flat = torch.cat([p.grad.reshape(-1) for p in a.parameters()])
    apply_flat_gradients(b, ob, flat)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


def test_evaluation_is_seeded():
    torch.manual_seed(0)
    m = ActorCritic()
    s1 = play_episodes(m, "Boxing", 1, seed=3, max_steps=20)
    assert s1 == play_episodes(m, "Boxing", 1, seed=3, max_steps=20)


def test_bad_input_names_the_fix(tmp_path):
    with pytest.raises(RayclError, match="use one of"):
        make_env("NotAGame")
    with pytest.raises(RayclError, match="--frames"):
        validate(AtariConfig(frames=0))
    with pytest.raises(RayclError, match="repeats"):
        validate(AtariConfig(games=("Pong", "Pong")))
    (tmp_path / "scores.parquet").write_bytes(b"x")
    with pytest.raises(RayclError, match="--resume"):
        run_incremental(AtariConfig(games=("Pong",)), tmp_path, progress=False)


def test_score_table_pairs_originals_with_reconstructions():
    rows = [{"stage": 0, "after": "Pong", "game": "Pong", "network": "original", "cosine": 1.0, "episode": e,
             "score": s} for e, s in enumerate([1.0, 3.0])]
    rows += [{"stage": 0, "after": "Pong", "game": "Pong", "network": "reconstructed", "cosine": 0.998,
              "episode": e, "score": s} for e, s in enumerate([2.0, 2.0])]
    (t,) = score_table(rows, ["Pong"])
    # sample std (ddof = 1) over the episodes: [1, 3] -> sqrt(2)
    assert (t["original_mean"], t["reconstructed_mean"], t["reconstructed_std"]) == (2, 2, 0)
    assert t["original_std"] == pytest.approx(2 ** 0.5) and t["original_n"] == t["reconstructed_n"] == 2
    text = format_table([t])
    assert "0.99800" in text and "2.0 ± 1.4" in text and "sample std (ddof = 1) over 2 evaluation episodes" in text
    (one,) = score_table([rows[0], rows[2]], ["Pong"])  # one episode: no spread, shown as '-'
    assert one["original_std"] != one["original_std"] and "1.0 ± -" in format_table([one])


@pytest.fixture(scope="module")
def ray2():
    import ray

    from raycl.cluster import init_ray

    init_ray(num_cpus=2)
    yield
    ray.shutdown()


def test_short_a3c_run_through_ray_actors_logs_returns_and_losses(ray2, tmp_path):
    """One game, 2 worker actors, a few hundred real ALE steps; then the Self-Net fold and replay."""
    from raycl.runio import read_json, read_parquet

    cfg = AtariConfig(games=("Pong",), frames=120, workers=2, episodes=1, eval_max_steps=30,
                      a3c=A3CConfig(max_episode_steps=30), latent=16, ae_lr=3e-2, threshold=0.99,
                      ae_max_iters=500, checkpoint_every=60)
    summary = run_incremental(cfg, tmp_path, progress=False)
    metrics = read_parquet(tmp_path / "metrics.parquet")
    assert metrics["frames"].max() >= 120
    for col in ("policy_loss", "value_loss", "entropy", "loss", "fps"):
        assert np.isfinite(metrics[col]).all()
    episodes = read_parquet(tmp_path / "train_episodes.parquet")
    assert len(episodes) >= 120 // 30 - 1 and (episodes["episode_length"] <= 30).all()
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tb").iterdir())
    # the shared network moved away from its initialisation: gradients were applied
    torch.manual_seed(0 * 100)
    init = torch.cat([p.detach().reshape(-1) for p in ActorCritic(18).parameters()])
    from raycl.runio import torch_load

    trained = torch_load(tmp_path / "nets" / "Pong.pt")
    assert trained["frames"] >= 120 and not torch.allclose(trained["flat"], init)
    ckpt = torch_load(tmp_path / "checkpoints" / "Pong.pt")
    assert ckpt["state"]["updates"] >= 120 // 20
    scores = read_parquet(tmp_path / "scores.parquet")
    assert sorted(scores["network"]) == ["original", "reconstructed"] and set(scores["game"]) == {"Pong"}
    (row,) = summary["table"]
    assert row["cosine"] >= 0.99 and summary["storage"]["tasks_stored"] == 1
    # the table is the scores file summarised: one evaluation episode per network, the fold's cosine
    orig, rec = (scores[scores["network"] == n].iloc[0] for n in ("original", "reconstructed"))
    assert (row["stage"], row["game"], row["original_n"], row["reconstructed_n"]) == (0, "Pong", 1, 1)
    assert row["original_mean"] == orig["score"] and row["reconstructed_mean"] == rec["score"]
    assert row["cosine"] == pytest.approx(float(rec["cosine"]))
    assert -21 <= orig["score"] <= 21 and -21 <= rec["score"] <= 21  # Pong: at most 21 points either way
    written = read_json(tmp_path / "summary.json")
    assert written["subvectors_per_network"] == 11 and written["table"] == [
        {k: (None if v != v else v) for k, v in row.items()}]  # NaN spreads are null in JSON
    assert (tmp_path / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_worker_actors_step_the_emulator(ray2):
    from raycl.atari.parallel import RayA3C

    reports = []
    ray_a3c = RayA3C()
    flat, state, total = ray_a3c.train("Boxing", A3CConfig(max_episode_steps=20), 80, 2, seed=1, chunk=40,
                                       on_chunk=lambda r, t: reports.append(r))
    assert total >= 80 and state["updates"] == sum(r["updates"] for r in reports)
    # ALE v5 skips 4 emulator frames per step: the emulator really ran
    assert all(r["ale_frames"] >= 4 * r["frames"] for r in reports)
    assert sum(len(r["returns"]) for r in reports) >= 2
    # resuming a finished checkpoint restores the shared network and plays no more frames
    again, state2, total2 = ray_a3c.train("Boxing", A3CConfig(), total, 2, seed=5, state=state, start_frames=total)
    torch.testing.assert_close(again, flat)
    assert total2 == total and state2["updates"] == state["updates"]


@pytest.mark.parametrize("pipeline", [False, True])
def test_one_ray_worker_matches_the_same_loop_in_process(ray2, pipeline):
    """W = 1 on Ray gives the in-process loop's weights exactly; pipelined, rollout k+1 plays on
    the weights the server returned for push k-1."""
    import numpy as np

    from raycl.atari.a3c import Player, RolloutStats, gradients
    from raycl.atari.net import ActorCritic
    from raycl.atari.parallel import ParameterServer, RayA3C, _load

    cfg = A3CConfig(max_episode_steps=15, pipeline=pipeline)
    flat, state, total = RayA3C().train("Boxing", cfg, 60, 1, seed=2, chunk=60)
    server, player, model = ParameterServer(18, cfg.lr, 2), Player("Boxing", cfg, 2000), ActorCritic(18)
    stats, w, previous = RolloutStats(), server.weights(), None
    while stats.frames < 60:
        _load(model, w)
        reply = server.apply(gradients(model, player.rollout(model, stats), cfg.grad_clip).numpy())
        w, previous = (previous if previous is not None else w, reply) if pipeline else (reply, None)
    assert total == stats.frames and state["updates"] == stats.updates >= 3
    np.testing.assert_array_equal(flat.numpy(), server.weights())


@pytest.mark.slow
def test_small_preset_all_five_games(tmp_path):
    """The small preset end to end: every network, at every stage, reconstructed at cosine >= 0.997."""
    from raycl.atari.incremental import preset

    summary = run_incremental(preset("small"), tmp_path, num_cpus=2, progress=False)
    stages = {(r["stage"], r["game"]) for r in summary["table"]}
    assert len(stages) == 15  # 1 + 2 + 3 + 4 + 5 stored networks replayed
    assert summary["min_cosine_every_stage"] >= 0.997


@pytest.mark.slow
def test_resume_keeps_stored_games_and_adds_the_next(ray2, tmp_path):
    from raycl.runio import read_parquet

    # latent 32 >= the 22 sub-vectors of two networks, so the AE can hold both
    small = dict(frames=60, workers=2, episodes=1, eval_max_steps=10, a3c=A3CConfig(max_episode_steps=20), latent=32,
                 ae_lr=3e-2, threshold=0.98, ae_max_iters=1000)
    run_incremental(AtariConfig(games=("Pong",), **small), tmp_path, progress=False)
    first = read_parquet(tmp_path / "metrics.parquet")
    summary = run_incremental(AtariConfig(games=("Pong", "Boxing"), **small), tmp_path, resume=True, progress=False)
    assert [f["game"] for f in summary["folds"]] == ["Pong", "Boxing"]
    assert [(r["stage"], r["game"]) for r in summary["table"]] == [(0, "Pong"), (1, "Pong"), (1, "Boxing")]
    metrics = read_parquet(tmp_path / "metrics.parquet")
    assert len(metrics) > len(first) and set(metrics["game"]) == {"Pong", "Boxing"}
    assert summary["min_cosine_every_stage"] >= 0.95  # two folds at 0.98: 1 - cos adds up


def test_provenance_names_games_versions_and_roms():
    import ale_py

    from raycl.atari.env import provenance

    p = provenance(("Pong", "StarGunner", "NoSuchGame"))
    d = p["data"]
    assert d["games"] == "ALE/Pong-v5,ALE/StarGunner-v5,ALE/NoSuchGame-v5" and d["ale_py"] == ale_py.__version__
    assert d["ALE/Pong-v5"].startswith("rom pong.bin md5 ") and "star_gunner.bin md5" in d["ALE/StarGunner-v5"]
    assert d["ALE/NoSuchGame-v5"].startswith("rom unavailable")
    assert all(isinstance(v, str) for v in d.values()) and p["environment"]["torch"]
