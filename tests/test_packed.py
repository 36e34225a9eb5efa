"""The packed population (M models stacked in one process, their steps vmapped) gives the
reference trainer's numbers, writes its checkpoint format, and refuses what it does not compute."""

import math

import pytest
import torch
from conftest import refused

from raycl import RayclError
from raycl.hyper.config import preset
from raycl.hyper.trainer import ReferenceTrainer, load_run_checkpoint
from raycl.population.packed import PackedTrainer
from test_hyper import toy_pool

torch.set_num_threads(1)

CFG = preset("tiny", population=3, epochs=2)


@pytest.fixture(scope="module")
def pool():
    return toy_pool()


def assert_same_phi(a, b, tol=1e-6):
    assert a.keys() == b.keys()
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=0, atol=tol)


def assert_same_rows(got, want):
    """Same rows; floats to ~1e-6 relative (vmapped reductions may differ in the last bits)."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.keys() == w.keys()
        for k in w:
            if k == "seconds":
                continue
            if isinstance(w[k], float) and not math.isnan(w[k]):
                assert g[k] == pytest.approx(w[k], rel=2e-6, abs=1e-7), (k, g, w)
            else:
                assert g[k] == w[k] or (math.isnan(g[k]) and math.isnan(w[k])), (k, g, w)


@pytest.mark.parametrize("changes", [
    {},
    {"phi_grad": "through-task"},
    {"phi_grad": "through-update", "learn": "phenotype+theta0", "readout_rule": "reset"},
    {"readout_rule": "seen-softmax", "order": "iid"},
])
def test_packed_population_matches_the_reference(pool, changes):
    cfg = CFG.with_(**changes)
    ref = ReferenceTrainer(cfg, pool=pool)
    ref.train(progress=False)
    packed = PackedTrainer(cfg, pool=pool)
    packed.train(progress=False)
    assert packed.epoch == ref.epoch == 2
    assert_same_phi(packed.phi, ref.phi)
    if ref.server.theta0 is not None:
        assert_same_phi(packed.server.theta0, ref.server.theta0)
    assert_same_rows(packed.history, ref.history)
    assert len(packed.last_trace["grad_norm"]) == len(ref.last_trace["grad_norm"])


def test_packed_checkpoint_resumes_to_the_uninterrupted_phenotype_in_any_backend(pool, tmp_path):
    cfg = CFG.with_(epochs=3, checkpoint_every=1)
    full = PackedTrainer(cfg, pool=pool)
    full.train(progress=False)
    part = PackedTrainer(cfg, tmp_path / "run", pool=pool)
    part.train(epochs=2, progress=False)
    ckpt = load_run_checkpoint(tmp_path / "run")
    assert ckpt["epoch"] == 2 and ckpt["step"] == 0
    resumed = PackedTrainer.resume(tmp_path / "run", {"pool": pool})
    assert resumed.epoch == 2
    resumed.train(progress=False)
    assert_same_phi(resumed.phi, full.phi)
    assert_same_rows(resumed.history, full.history)
    # the reference's checkpoint format: the reference trainer carries the packed run on too
    ref = ReferenceTrainer(cfg, pool=pool)
    ref.restore(ckpt)
    ref.train(progress=False)
    assert_same_phi(ref.phi, full.phi)


def test_an_unsupported_setting_names_what_to_use_instead(pool, cli, tmp_path):
    with pytest.raises(RayclError, match="supports unroll 1; use --backend reference or ray"):
        PackedTrainer(CFG.with_(phi_grad="through-update", unroll=2), pool=pool)
    line = refused(cli, ["hyper-train", "--preset", "tiny", "--backend", "packed", "--phi-grad", "through-update",
                         "--unroll", "2", "--out", tmp_path / "run"], absent=[tmp_path / "run"])
    assert "--backend reference or ray" in line


def test_cli_hyper_train_with_the_packed_backend(tmp_path):
    from raycl.cli import main

    from raycl.runio import read_json, read_parquet

    run, ref = tmp_path / "run", tmp_path / "ref"
    assert main(["hyper-train", "--preset", "tiny", "--backend", "packed", "--epochs", "1", "--out", str(run)]) == 0
    ckpt = load_run_checkpoint(run)
    assert ckpt["epoch"] == 1 and len(ckpt["models"]) == ckpt["config"]["population"] == 2
    # the table holds one row per model of the one epoch, the losses the checkpoint's history has
    df = read_parquet(run / "hyper_training.parquet")
    assert sorted(zip(df["epoch"], df["model"])) == [(1, 0), (1, 1)]
    assert {"task_loss", "hyper_loss", "phi_grad_norm", "memory", "generalization"} <= set(df.columns)
    assert df["hyper_loss"].tolist() == pytest.approx([r["hyper_loss"] for r in ckpt["history"]], rel=1e-12)
    assert ((df["memory"] >= 0) & (df["memory"] <= 1)).all() and (df["hyper_loss"] > 0).all()
    assert read_json(run / "config.json")["epochs"] == 1
    # the same command with the reference backend gives the same phenotype and rows
    assert main(["hyper-train", "--preset", "tiny", "--backend", "reference", "--epochs", "1", "--out", str(ref)]) == 0
    want = load_run_checkpoint(ref)
    assert_same_phi(ckpt["server"]["phi"], want["server"]["phi"])
    assert_same_rows(ckpt["history"], want["history"])
