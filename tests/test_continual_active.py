"""Continual active learning with DANs (raycl/active/continual.py, `raycl active continual`)."""

import numpy as np
import pytest
import torch

from conftest import error_line, refused

from raycl import RayclError
from raycl.active.config import ContinualConfig


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A real (one-epoch) hyper-training of the tiny preset: its checkpoint is what users pass."""
    from raycl.cli import main

    out = tmp_path_factory.mktemp("phen") / "run"
    assert main(["hyper-train", "--preset", "tiny", "--epochs", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def digits():
    from raycl.active.scenario import Scenario

    return Scenario(ood=(), ood_fraction=0.0).build(0)


def test_architecture_comes_from_the_checkpoint(tiny_run):
    from raycl.active.continual import dan_architecture
    from raycl.hyper.config import preset
    from raycl.hyper.trainer import load_run_checkpoint

    tiny = preset("tiny")
    arch = dan_architecture(load_run_checkpoint(tiny_run))
    assert arch == {"image_size": tiny.image_size, "hidden": list(tiny.hidden), "n_channels": tiny.n_channels,
                    "sharing": tiny.sharing, "phenotype_hidden": list(tiny.phenotype_hidden)}


def test_dan_encoder_loads_and_freezes_the_phenotype(tiny_run, one_thread):
    from raycl.active.continual import dan_architecture, learn, make_learner
    from raycl.hyper.trainer import load_run_checkpoint

    ckpt = load_run_checkpoint(tiny_run)
    arch, phi = dan_architecture(ckpt), ckpt["server"]["phi"]
    model = make_learner("dan", (1, 8, 8), 10, ContinualConfig(), arch, phi, torch.Generator().manual_seed(0))
    dans = model.encoder.dans
    params = dict(dans.named_parameters())
    for name, value in phi.items():  # the hyper-trained φ, exactly, and frozen
        torch.testing.assert_close(params[name].detach(), value)
        assert not params[name].requires_grad
    synapses = {n: p.detach().clone() for n, p in params.items() if n not in phi}
    logits, latent = model.predict(torch.rand(3, 1, 8, 8))
    assert logits.shape == (3, 10) and latent.shape == (3, arch["hidden"][-1])
    x, y = torch.rand(12, 1, 8, 8), torch.randint(0, 10, (12,))
    assert learn(model, x, y, 3, 4, 0.1, torch.Generator().manual_seed(0)) == 9
    for name, value in phi.items():  # SGD moved the synapses, never φ
        torch.testing.assert_close(params[name].detach(), value)
    assert all(not torch.equal(params[n].detach(), v) for n, v in synapses.items())
    # a φ of other sizes does not fit
    wrong = {**arch, "phenotype_hidden": [7]}
    with pytest.raises(RayclError, match="does not fit this DAN encoder"):
        make_learner("dan", (1, 8, 8), 10, ContinualConfig(), wrong, phi)


def test_stages_labels_and_no_replay(tiny_run, digits, one_thread):
    """Every stage adds b labels of the classes seen so far; the continual learners train on
    that stage's labels only, scratch on all of them (so its updates grow)."""
    from raycl.active.continual import dan_architecture, run
    from raycl.hyper.trainer import load_run_checkpoint

    ckpt = load_run_checkpoint(tiny_run)
    cfg = ContinualConfig(classes_per_stage=4, budget=12, batch_size=4)
    for learner in ("dan", "finetune", "scratch"):
        rows = run(digits, learner, 1, cfg, 0.05, 2, dan_architecture(ckpt), ckpt["server"]["phi"])
        assert [r["classes_seen"] for r in rows] == [4, 8, 10]  # the last stage gets the 2 left
        assert [r["labels"] for r in rows] == [12, 24, 36] and all(r["stage_labels"] == 12 for r in rows)
        arrived = [set(map(int, r["new_classes"].split(","))) for r in rows]
        assert set().union(*arrived) == set(range(10)) and sum(map(len, arrived)) == 10
        assert rows[0]["new_class_labels"] == 12  # stage 0 can only query its own classes
        if learner == "scratch":
            assert [r["trained_on"] for r in rows] == [12, 24, 36] and [r["updates"] for r in rows] == [6, 12, 18]
        else:
            assert all(r["trained_on"] == 12 and r["updates"] == 6 for r in rows)
        assert all(0 <= r["accuracy"] <= 1 and 0 <= r["first_classes_accuracy"] <= 1 for r in rows)
    # the same seed gives the same run (class order, queries, training)
    again = run(digits, "finetune", 1, cfg, 0.05, 2)
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in run(digits, "finetune", 1, cfg, 0.05, 2)]


def test_scratch_learns_the_first_classes(digits, one_thread):
    """DALBT on 100 labels of 5 digit classes ends far above chance (20%) on their test images."""
    from raycl.active.continual import run

    cfg = ContinualConfig(classes_per_stage=5, budget=100, strategy="random")
    rows = run(digits, "scratch", 3, cfg, 0.1, 15)
    assert rows[0]["accuracy"] > 0.45 and rows[1]["accuracy"] > 0.5


def test_seen_accuracy_reads_out_over_the_seen_classes_only():
    from raycl.active.continual import seen_accuracy

    class Fixed(torch.nn.Module):  # always most confident in class 9, then in the true class
        def predict(self, x, stochastic=False):
            logits = torch.full((len(x), 10), -5.0)
            logits[:, 9] = 5.0
            logits[torch.arange(len(x)), x[:, 0, 0, 0].long()] = 1.0
            return logits, logits

    labels = torch.tensor([0, 1, 2, 9])
    images = labels.float().view(4, 1, 1, 1).expand(4, 1, 2, 2).clone()
    assert seen_accuracy(Fixed(), images, labels, np.array([0, 1, 2])) == 1.0  # 9 not seen: not a choice
    assert seen_accuracy(Fixed(), images, labels, np.array([0, 1, 2, 9])) == 0.25
    assert seen_accuracy(Fixed(), images, labels, np.array([0, 1, 2, 9]), of=np.array([9])) == 1.0


def test_command_end_to_end(cli, tiny_run, tmp_path):
    from raycl.runio import read_json, read_parquet

    out = tmp_path / "cal"
    code, stdout, err = cli("active", "continual", "--phenotype", tiny_run, "--learners", "dan", "finetune",
                          "--seeds", "2", "--no-ray", "--classes-per-stage", "5", "--budget", "8", "--epochs", "1,2",
                            "--lrs", "0.01,0.1", "--tune-seeds", "1", "--out", out)
    assert code == 0, err
    rows = read_parquet(out / "metrics.parquet")
    assert len(rows) == 2 * 2 * 2 and set(rows["learner"]) == {"dan", "finetune"}
    summary = read_json(out / "summary.json")
    assert set(summary["tuning"]["dan"]["scores"]) == {f"lr {lr} epochs {e}" for lr in (0.01, 0.1) for e in (1, 2)}
    tuned = summary["tuning"]["dan"]
    assert tuned["scores"][f"lr {tuned['lr']} epochs {tuned['epochs']}"] == max(tuned["scores"].values())
    assert set(rows[rows["learner"] == "dan"]["epochs"]) == {tuned["epochs"]}
    assert summary["learners"]["dan"][-1]["accuracy"]["n"] == 2
    assert summary["phenotypes"][0]["run"] == str(tiny_run) and summary["phenotypes"][0]["arch"]["hidden"] == [8, 8]
    assert "mean ± sample std (ddof = 1) over 2 seeds" in stdout and "dan " in stdout
    # one phenotype: the dan-minus-finetune difference is one sample, averaged over the 2 seeds
    diff = summary["dan_minus"]["finetune"]
    last = rows[rows["stage"] == rows["stage"].max()].set_index(["learner", "seed"])["accuracy"]
    assert diff["n"] == 1 and diff["phenotypes"] == 1 and diff["seeds"] == 2
    assert diff["mean"] == pytest.approx(last["dan"].mean() - last["finetune"].mean())
    assert "over 1 phenotypes" in stdout
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_input(cli, tmp_path, tiny_run):
    line = refused(cli, ["active", "continual", "--out", tmp_path / "a"], absent=[tmp_path / "a"])
    assert "give --phenotype RUN" in line
    line = refused(cli, ["active", "continual", "--phenotype", tmp_path, "--out", tmp_path / "b"],
                   absent=[tmp_path / "b"])
    assert "holds no checkpoint.pt" in line
    line = refused(cli, ["active", "continual", "--phenotype", tiny_run, "--seeds", "3", "--seed", "999",
                         "--out", tmp_path / "c"], absent=[tmp_path / "c"])
    assert "--tune-seed 1000 (with --tune-seeds 2) overlaps the reported seeds" in line
    line = refused(cli, ["active", "continual", "--phenotype", tiny_run, "--strategy", "nope", "--out", tmp_path / "d"])
    assert "nope" in line


def test_a_folder_of_seeds_gives_every_phenotype(tmp_path):
    from raycl.active.cli import phenotype_runs

    for s in (0, 1, 10):
        (tmp_path / "many" / f"seed_{s}").mkdir(parents=True)
        (tmp_path / "many" / f"seed_{s}" / "checkpoint.pt").write_bytes(b"")
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "checkpoint.pt").write_bytes(b"")
    runs = phenotype_runs([str(tmp_path / "one"), str(tmp_path / "many")])
    assert [p.relative_to(tmp_path).as_posix() for p in runs] == ["one", "many/seed_0", "many/seed_1", "many/seed_10"]


def test_the_phenotype_claim_is_measured_over_phenotypes():
    from raycl.active.continual import against_dan

    rows = []
    for seed, phen, dan, other in ((0, 0, 0.8, 0.5), (1, 1, 0.7, 0.6), (2, 0, 0.6, 0.5), (3, 1, 0.9, 0.6)):
        rows += [{"learner": "dan", "seed": seed, "stage": 1, "phenotype": phen, "accuracy": dan},
                 {"learner": "finetune", "seed": seed, "stage": 1, "phenotype": -1, "accuracy": other},
                 {"learner": "dan", "seed": seed, "stage": 0, "phenotype": phen, "accuracy": 0.0},
                 {"learner": "finetune", "seed": seed, "stage": 0, "phenotype": -1, "accuracy": 1.0}]
    d = against_dan(rows)["finetune"]
    # phenotype 0: (0.3 + 0.1) / 2 = 0.2; phenotype 1: (0.1 + 0.3) / 2 = 0.2 -> mean 0.2, std 0, n 2
    assert (d["n"], d["phenotypes"], d["seeds"]) == (2, 2, 4)
    assert d["mean"] == pytest.approx(0.2) and d["std"] == pytest.approx(0.0, abs=1e-12)
