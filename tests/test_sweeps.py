"""Sweeps: the settings of §6.4.3 / §6.4.5, trial resources, the per-epoch hook and quick
deployment, the results table and figures; and (slow) a whole sweep on a local Ray whose
driver is killed mid-run and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from raycl import RayclError
from raycl.hyper.models import build_model
from raycl.sweeps.results import collect, write_figures, write_table
from raycl.sweeps.space import bundles, overtraining_settings, scale_settings

REPO = Path(__file__).resolve().parents[1]


def test_overtraining_settings_are_the_dissertations_on_the_base_preset():
    s = overtraining_settings("tiny")
    assert [(x.hyper["i"], x.hyper["h_cl"], x.hyper["h_h"], x.hyper["d"]) for x in s] == [
        (1, 3, 5, 3), (5, 6, 10, 3), (10, 10, 15, 3), (20, 20, 25, 3)]
    assert all(x.hyper["hidden"] == (8, 8) and x.hyper["k"] == 3 for x in s)  # the tiny model and k
    assert [x.name for x in s][0] == "i=1 h_CL=3 h_H=5"
    assert s[3].hyper["holdout"] == 0  # 20 drawings per class leave none to hold out at i=20


def test_grid_skips_impossible_streams_and_fits_holdout():
    s = overtraining_settings("default", {"i": [5, 18], "h_cl": [6, 12], "h_h": [10]})
    assert [(x.hyper["i"], x.hyper["h_cl"]) for x in s] == [(5, 6), (18, 6)]
    assert s[1].hyper["holdout"] == 2 and all(x.config.h_cl <= x.config.h_h for x in s)
    with pytest.raises(RayclError, match="h_cl <= h_h"):
        overtraining_settings("default", {"i": [1], "h_cl": [9], "h_h": [5]})
    with pytest.raises(RayclError, match="unknown preset"):
        overtraining_settings("nope")


def test_scale_settings_reach_their_parameter_counts():
    s = scale_settings("default", "cpu")
    assert [x.hyper["population"] for x in s] == [5, 5, 5]
    for x in s:
        _, theta0, phi0 = build_model(x.config)
        n = sum(t.numel() for t in theta0.values()) + sum(t.numel() for t in phi0.values())
        assert abs(n - x.hyper["target_params"]) / x.hyper["target_params"] < 0.05
    assert [x.hyper["target_params"] for x in scale_settings("paper-supervised", "paper")] == [25e6, 75e6, 200e6]
    assert [x.hyper["target_params"] for x in scale_settings("default", params=[1234])] == [1234]


def test_bundles_reserve_the_driver_and_one_per_model():
    h = {"population": 3}
    assert bundles(h, "ray", 0.5, 0.25, 0) == [{"CPU": 0.5}] + [{"CPU": 0.25}] * 3
    assert bundles(h, "ray", 1, 2, 1) == [{"CPU": 1}] + [{"CPU": 2, "GPU": 1}] * 3
    assert bundles(h, "reference", 1, 2, 0) == [{"CPU": 1}]


def test_pbt_needs_one_architecture(tmp_path):
    from raycl.sweeps.tuning import SweepSpec, param_space

    spec = SweepSpec("overtraining", overtraining_settings("tiny"), tmp_path, epochs=1, scheduler="pbt")
    with pytest.raises(RayclError, match="one setting"):
        param_space(spec, 0)


def test_cli_rejects_setting_with_grid(capsys):
    from raycl.cli import main

    assert main(["sweep", "overtraining", "--out", "x", "--setting", "1", "--grid-i", "1", "--grid-h-cl", "1",
                 "--grid-h-h", "2"]) == 2
    assert "does not combine with a grid" in capsys.readouterr().err


def test_epoch_hook_and_quick_deployment():
    """The trial's hook sees every epoch with the trainer's rows in place; the quick
    deployment gives accuracies in [0, 1] for every set."""
    from raycl.hyper.config import preset
    from raycl.sweeps.trial import QuickDeploy, reporting, trainer_class

    cfg = preset("tiny", source="digits", epochs=2)
    seen = []
    trainer = reporting(trainer_class("reference"), lambda t: seen.append(
        (t.epoch, sorted(r["model"] for r in t.history if r["epoch"] == t.epoch))))(cfg, None)
    trainer.train(progress=False)
    assert seen == [(1, [0, 1]), (2, [0, 1])]
    out = QuickDeploy(cfg, seeds=1, lrs=(0.1,))(trainer.model, trainer.theta0, trainer.phi)
    assert out["lr"] == 0.1 and {"meta-train/memory", "meta-eval/generalization"} <= set(out)
    assert all(0 <= v <= 1 for k, v in out.items() if k != "lr")


def _fake_trial(exp: Path, name: str, setting: str, rows_by_ckpt: dict, hyper: dict):
    t = exp / name
    t.mkdir(parents=True)
    (t / "params.json").write_text(json.dumps({"setting": {"name": setting, "hyper": hyper}}))
    for ckpt, rows in rows_by_ckpt.items():
        (t / ckpt).mkdir()
        (t / ckpt / "rows.json").write_text(json.dumps(rows))
        (t / ckpt / "checkpoint.pt").write_bytes(b"state")


def test_table_takes_each_trials_newest_checkpoint_and_figures_draw(tmp_path):
    exp = tmp_path / "tune"

    def rows(trial, setting, epochs, params):
        dep = {f"deploy_{s}_{k}": 0.5 for s in ("meta-test", "meta-eval") for k in ("memory", "generalization")}
        out = [{"trial": trial, "setting": setting, "seed": 0, "epoch": 0, "params": params, "deploy_lr": 0.1, **dep}]
        for e in range(1, epochs + 1):
            out.append({"trial": trial, "setting": setting, "seed": 0, "epoch": e, "params": params,
                        "memory": 0.1 * e, "generalization": 0.05 * e,
                        **({"deploy_lr": 0.1, **dep} if e == epochs else {})})
        return out

    for j, (i, h_cl, h_h) in enumerate([(1, 3, 5), (5, 6, 10)]):
        hyper = {"i": i, "h_cl": h_cl, "h_h": h_h, "d": 3, "k": 25, "population": 3, "target_params": 1000 * (j + 1),
                 "source": "glyphs"}
        # trial 1 was resumed: its newest checkpoint has the lower folder number
        older, newer = ("checkpoint_000000", "checkpoint_000001") if j == 0 else ("checkpoint_000001", "checkpoint_000000")
        _fake_trial(exp, f"t{j}", f"s{j}", {older: rows(f"t{j}", f"s{j}", 1, 1000 * (j + 1)),
                                             newer: rows(f"t{j}", f"s{j}", 2, 1000 * (j + 1))}, hyper)
    got = collect(exp)
    assert len(got) == 2 * 3 and len({tuple(sorted(r)) for r in got}) == 1  # one schema
    table = write_table(exp, tmp_path)
    df = pd.read_parquet(table)
    assert df.groupby("trial")["epoch"].apply(sorted).tolist() == [[0, 1, 2], [0, 1, 2]]
    assert df.loc[df["epoch"] == 0, "memory"].isna().all() and set(df["i"]) == {1, 5}
    import numpy as np
    from PIL import Image

    for kind in ("overtraining", "scale"):
        figures = write_figures(table, tmp_path, kind)
        assert figures and all(p.parent == tmp_path and p.suffix == ".png" for p in figures)
        for p in figures:
            with Image.open(p) as im:  # a whole PNG with something drawn on it
                assert im.format == "PNG" and np.asarray(im.convert("L"), dtype=float).std() > 5
    with pytest.raises(RayclError, match="no trial results"):
        write_table(tmp_path / "empty", tmp_path)


# --- a whole sweep on a local Ray, killed and resumed ------------------------------------------

def _pids_naming(marker: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and int(p.name) != os.getpid():
            try:
                if marker in (p / "cmdline").read_bytes().decode(errors="replace"):
                    out.append(int(p.name))
            except OSError:
                pass
    return out


def _ledger(exp: Path) -> list[dict]:
    f = exp / "ledger.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []


@pytest.mark.slow
def test_sweep_killed_mid_run_resumes_and_completes_every_trial_once(tmp_path):
    import tempfile

    ray_tmp = tempfile.mkdtemp(prefix="rs", dir="/tmp")  # short: socket paths
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "raycl", "sweep", "overtraining", "--preset", "tiny", "--epochs", "4",
           "--eval-every", "2", "--num-cpus", "2", "--ray-temp-dir", ray_tmp, "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("RAY_ADDRESS", None)
    exp = out / "tune"
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # kill once a trial has finished (and Tune had time to record it) while another is mid-run
        deadline = time.time() + 900
        while time.time() < deadline and first.poll() is None:
            events = _ledger(exp)
            done = {e["trial"]: e["time"] for e in events if e["event"] == "done"}
            started = {e["trial"] for e in events if e["event"] == "start"}
            mid = [t for t in started - set(done) if any(exp.glob(f"{t}_*/checkpoint_*"))]
            if done and min(done.values()) < time.time() - 8 and mid:
                break
            time.sleep(1)
        assert first.poll() is None, "the sweep ended before it could be killed"
        os.killpg(first.pid, signal.SIGKILL)
    finally:
        first.wait(timeout=60)
        for pid in _pids_naming(ray_tmp):  # this sweep's Ray processes only
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    before = _ledger(exp)
    finished_before = {e["trial"] for e in before if e["event"] == "done"}
    assert finished_before and len(finished_before) < 4

    second = subprocess.run([*cmd, "--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    for pid in _pids_naming(ray_tmp):
        os.kill(pid, signal.SIGKILL)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "resumed 4 trials: 4 finished" in second.stdout

    events = _ledger(exp)
    done = [e["trial"] for e in events if e["event"] == "done"]
    assert len(done) == 4 and len(set(done)) == 4  # every trial finished exactly once
    resumed = [e for e in events[len(before):] if e["event"] == "start"]
    assert not {e["trial"] for e in resumed} & finished_before  # finished trials did not run again
    assert any(e["from_epoch"] > 0 for e in resumed)  # the interrupted trial went on from its checkpoint

    # each trial's population ran in its placement group: driver bundle 0.5 CPU + 2 models x 0.25,
    # all taken once the SynapseWorkers were up
    placed = [e for e in events if e["event"] == "placement"]
    assert placed and all(e["cpu_reserved"] == 1.0 and e["cpu_free"] == 0.0 for e in placed), placed

    df = pd.read_parquet(out / "sweep.parquet")
    assert df["trial"].nunique() == 4 and df["setting"].nunique() == 4
    assert all(sorted(g) == [0, 1, 2, 3, 4] for _, g in df.groupby("trial")["epoch"])  # each epoch once
    for t in df["trial"].unique():
        assert list(exp.glob(f"{t}_*/events.out.tfevents.*")), f"no TensorBoard events for {t}"
    assert (out / "overtraining.png").exists() and (out / "curves.png").exists()
    import shutil

    shutil.rmtree(ray_tmp, ignore_errors=True)


def test_resume_point_prefers_the_newest_complete_checkpoint(tmp_path):
    """Tune's recorded checkpoint, unless the trial's folder holds a newer complete one
    (the driver was killed before Tune recorded it); a checkpoint cut short is skipped."""
    from ray import tune

    from raycl.runio import torch_save
    from raycl.sweeps.trial import resume_point

    def ckpt(d: Path, epoch: int, corrupt: bool = False):
        d.mkdir(parents=True)
        rows = [{"trial": "t", "epoch": e} for e in range(epoch + 1)]
        (d / "rows.json").write_text(json.dumps(rows))
        if corrupt:
            (d / "checkpoint.pt").write_bytes(b"cut short")
        else:
            torch_save(d / "checkpoint.pt", {"epoch": epoch})
        return d

    trial = tmp_path / "t_setting"
    recorded = ckpt(trial / "checkpoint_000000", 1)
    ckpt(trial / "checkpoint_000001", 2)
    ckpt(trial / "checkpoint_000002", 3, corrupt=True)
    state, rows = resume_point(tune.Checkpoint.from_directory(recorded), trial)
    assert state["epoch"] == 2 and rows[-1]["epoch"] == 2
    state, _ = resume_point(tune.Checkpoint.from_directory(recorded), None)  # PBT: only what Tune hands over
    assert state["epoch"] == 1
    assert resume_point(None, tmp_path / "none") == (None, [])


def test_metric_direction_and_unknown_metric(tmp_path, capsys):
    from raycl.cli import main
    from raycl.sweeps.tuning import SweepSpec, metric_mode

    sup = overtraining_settings("tiny")
    assert metric_mode(SweepSpec("overtraining", sup, tmp_path, 1, metric="memory")) == "max"
    assert metric_mode(SweepSpec("overtraining", sup, tmp_path, 1, metric="hyper_loss")) == "min"
    ae = overtraining_settings("tiny", mode="unsupervised")
    assert metric_mode(SweepSpec("overtraining", ae, tmp_path, 1, metric="deploy/meta-eval/memory")) == "min"
    assert main(["sweep", "overtraining", "--out", str(tmp_path), "--metric", "accuracy"]) == 2
    assert "unknown --metric 'accuracy'" in capsys.readouterr().err


def test_summary_provenance_holds_each_trials_meta_train_fingerprint(tmp_path):
    """Each trial's rows carry its trainer's meta-train fingerprint; the sweep summary's
    provenance collects them (rows from older checkpoints without it are left out)."""
    import re

    from raycl.hyper.config import preset
    from raycl.runio import results
    from raycl.sweeps.trial import trainer_class
    from raycl.sweeps.tuning import provenance

    fp = trainer_class("reference")(preset("tiny", source="digits", epochs=1), None).provenance["data"]["meta-train"]
    exp = tmp_path / "tune"
    hyper = {"i": 1, "h_cl": 3, "h_h": 5, "d": 3, "k": 25, "population": 3, "target_params": 1000, "source": "digits"}
    for j in range(2):
        row = {"trial": f"t{j}", "setting": "s", "seed": 0, "epoch": 0, "params": 1000, "deploy_lr": 0.1}
        _fake_trial(exp, f"t{j}", "s", {"checkpoint_000000": [{**row, **({"meta_train_data": fp} if j == 0 else {})}]},
                    hyper)
    with results(tmp_path):  # as run_sweep does: the table is held until the summary is written
        p = provenance(write_table(exp, tmp_path))
    assert p["data"] == {"t0/meta-train": fp} and re.fullmatch("[0-9a-f]{16}", fp)
    assert p["environment"]["torch"]
