"""Bad input and faults for the other command families (data, activation, sine, sweep, selfnet,
atari, active): every case ends in one line naming the problem (no traceback), exit code 2,
and leaves what was on disk untouched; a refused run makes no folder. The hyper-learning
commands' cases are in test_bad_input.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import refused, refused_while_locked_then_taken_over

QUICK_SINE = ["--preset", "quick", "--no-progress", "--epochs", "2", "--deploy-functions", "2",
              "--variants", "meta_fixed,random_fixed"]
TINY_ACTIVE = ["--no-ray", "--seeds", "1", "--stages", "1", "--initial", "20", "--budget", "30", "--epochs", "1",
               "--min-steps", "3", "--eval-every", "1", "--strategies", "random"]
TINY_SELFNET = ["--no-ray", "--tasks", "1", "--epochs", "1", "--baselines", "none"]


def assert_drawn_png(path: Path) -> None:
    """A whole PNG (it decodes) with something drawn on it: the old bytes were replaced by a figure."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        assert im.format == "PNG" and min(im.size) > 50
        px = np.asarray(im.convert("L"), dtype=float)
    assert px.std() > 5


def _finished(folder: Path, **files) -> Path:
    """A folder holding what a finished run leaves (its summary and a table)."""
    folder.mkdir(parents=True)
    (folder / "summary.json").write_text(json.dumps({"done": True}))
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


@pytest.fixture(scope="module")
def sine_run(tmp_path_factory):
    """A finished quick sine run (2 meta-epochs)."""
    from raycl.cli import main

    run = tmp_path_factory.mktemp("sine") / "done"
    assert main(["sine", "--out", str(run), *QUICK_SINE]) == 0
    return run


@pytest.fixture(scope="module")
def one_channel_phenotype(tmp_path_factory) -> Path:
    """A bare φ state dict of a one-input-channel phenotype (what `raycl activation` draws)."""
    from raycl.dan.phenotype import Phenotype

    path = tmp_path_factory.mktemp("phen") / "phi.pt"
    torch.save(Phenotype(1, (4,)).state_dict(), path)
    return path


# --- data preview ---------------------------------------------------------------------------------

def test_data_preview_out_is_a_folder_or_below_a_missing_one(cli, tmp_path):
    assert "is a folder" in refused(cli, ["data", "preview", "digits", "--out", tmp_path], keep=[tmp_path])
    line = refused(cli, ["data", "preview", "digits", "--out", tmp_path / "none" / "p.png"],
                   absent=[tmp_path / "none"])
    assert "does not exist" in line


def test_data_preview_never_replaces_a_file_unless_overwrite(cli, tmp_path):
    png = tmp_path / "p.png"
    png.write_bytes(b"mine")
    assert "--overwrite" in refused(cli, ["data", "preview", "digits", "--out", png], keep=[png])
    code, _, err = cli("data", "preview", "digits", "--out", png, "--overwrite", "--classes", "2", "--per-class", "2")
    assert code == 0, err
    assert_drawn_png(png)


def test_data_preview_unknown_source_and_missing_root(cli, tmp_path):
    assert "unknown dataset 'nope'" in refused(cli, ["data", "preview", "nope", "--out", tmp_path / "p.png"],
                                               absent=[tmp_path / "p.png"])
    line = refused(cli, ["data", "preview", "mnist", "--out", tmp_path / "p.png", "--data-root", tmp_path / "missing"],
                   absent=[tmp_path / "p.png", tmp_path / "missing"])
    assert "mnist" in line


def test_data_preview_bad_counts(cli, tmp_path):
    assert "--classes: must be > 0" in refused(cli, ["data", "preview", "digits", "--out", tmp_path / "p.png",
                                                     "--classes", "0"], absent=[tmp_path / "p.png"])


# --- activation -----------------------------------------------------------------------------------

def test_activation_missing_corrupt_or_folder_checkpoint(cli, tmp_path):
    assert "does not exist" in refused(cli, ["activation", tmp_path / "none.pt", "--out", tmp_path / "a.png"],
                                       absent=[tmp_path / "a.png"])
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert "corrupt" in refused(cli, ["activation", tmp_path / "bad.pt", "--out", tmp_path / "a.png"],
                                keep=[tmp_path / "bad.pt"], absent=[tmp_path / "a.png"])
    assert "is a folder" in refused(cli, ["activation", tmp_path, "--out", tmp_path / "a.png"],
                                    absent=[tmp_path / "a.png"])


def test_activation_out_and_range(cli, tmp_path, one_channel_phenotype):
    png = tmp_path / "a.png"
    png.write_bytes(b"mine")
    assert "already exists" in refused(cli, ["activation", one_channel_phenotype, "--out", png], keep=[png])
    assert "LO < HI" in refused(cli, ["activation", one_channel_phenotype, "--out", tmp_path / "b.png",
                                      "--range", "2", "-2"], absent=[tmp_path / "b.png"])
    assert "is a folder" in refused(cli, ["activation", one_channel_phenotype, "--out", tmp_path])
    code, _, err = cli("activation", one_channel_phenotype, "--out", png, "--overwrite")
    assert code == 0, err
    assert_drawn_png(png)


def test_activation_needs_a_one_channel_phenotype(cli, tmp_path, sine_run):
    line = refused(cli, ["activation", sine_run / "checkpoints" / "phenotype.pt", "--out", tmp_path / "a.png"],
                   keep=[sine_run], absent=[tmp_path / "a.png"])
    assert "n_channels=1" in line


# --- sine -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, says", [
    (["--epochs", "0"], "--epochs: must be > 0"),
    (["--variants", "meta_fixed,nope"], "unknown variant"),
    (["--lr-theta", "1e35"], "too large"),
    (["--deploy-functions", "1"], "at least 2"),
    (["--seeds", "2", "--compare", "sharing"], "--compare runs with one seed"),
])
def test_sine_bad_settings_stop_before_any_folder(cli, tmp_path, flags, says):
    line = refused(cli, ["sine", "--preset", "quick", "--out", tmp_path / "run", *flags], absent=[tmp_path / "run"])
    assert says in line


def test_sine_out_is_a_file(cli, tmp_path):
    f = tmp_path / "afile"
    f.write_text("mine")
    assert "is a file" in refused(cli, ["sine", "--out", f, *QUICK_SINE], keep=[f])


def test_sine_new_run_never_replaces_a_finished_one(cli, sine_run):
    line = refused(cli, ["sine", "--out", sine_run, *QUICK_SINE], keep=[sine_run])
    assert "already holds a run" in line and "--overwrite" in line


def test_sine_second_writer_is_refused_and_a_stale_lock_taken_over(cli, tmp_path):
    run = tmp_path / "busy"
    refused_while_locked_then_taken_over(cli, run, ["sine", "--out", run, *QUICK_SINE, "--epochs", "1"])
    s = json.loads((run / "summary.json").read_text())
    assert s["epochs"] == 1 and set(s["deployment"]) - {"variant_names"} == {"meta_fixed", "random_fixed"}
    assert torch.load(run / "checkpoints" / "phenotype.pt", weights_only=True)["meta"]["epoch"] == 1

def test_sine_overwrite_replaces_the_old_run(cli, tmp_path):
    run = _finished(tmp_path / "old", **{"stray.txt": "old"})
    code, _, err = cli("sine", "--out", run, *QUICK_SINE, "--epochs", "1", "--overwrite")
    assert code == 0, err
    assert not (run / "stray.txt").exists() and json.loads((run / "summary.json").read_text())["epochs"] == 1


def test_sine_divergence_stops_and_keeps_the_last_good_checkpoint(cli, tmp_path, monkeypatch):
    """The DAN's bounded output keeps a real sine MSE finite at any finite learning rate, so
    the fault is planted: meta-epoch 4's MSE becomes NaN, after the checkpoint of epoch 3."""
    import raycl.sine.meta as meta

    real, calls = meta.run_function, []

    def poisoned(*a, **kw):
        rec = real(*a, **kw)
        calls.append(1)
        if kw.get("memory_step") and len(calls) == 4:
            rec["total"][-1] = float("nan")
        return rec

    monkeypatch.setattr(meta, "run_function", poisoned)
    run = tmp_path / "div"
    line = refused(cli, ["sine", "--out", run, "--preset", "quick", "--no-progress", "--epochs", "6",
                         "--ckpt-every", "3"])
    assert "diverged" in line and "meta-epoch 4" in line and "--lr-theta" in line
    kept = torch.load(run / "checkpoints" / "phenotype.pt", weights_only=True)
    assert kept["meta"]["epoch"] == 3
    assert not (run / "summary.json").exists() and not (run / "fig5_5.png").exists()  # no half result set


# --- sweep ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, says", [
    (["--data", "nope"], "unknown dataset 'nope'"),
    (["--eval-data", "mnist", "--eval-data-root", "/nonexistent/raycl"], "--eval-data-root"),
    (["--metric", "accuracy"], "unknown --metric"),
    (["--scheduler", "pbt"], "one setting"),
    (["--backend", "ray", "--driver-cpus", "0"], "--driver-cpus"),
    (["--epochs", "0"], "--epochs: must be > 0"),
    (["--resume", "--overwrite"], "pass one of them"),
])
def test_sweep_bad_settings_stop_before_ray_and_any_folder(cli, tmp_path, flags, says):
    line = refused(cli, ["sweep", "overtraining", "--preset", "tiny", "--out", tmp_path / "sw", *flags],
                   absent=[tmp_path / "sw"])
    assert says in line


def test_sweep_never_replaces_a_finished_sweep(cli, tmp_path):
    sw = _finished(tmp_path / "sw", **{"sweep.parquet": "table"})
    line = refused(cli, ["sweep", "overtraining", "--preset", "tiny", "--out", sw], keep=[sw])
    assert "already holds a run" in line and "--resume" in line


def test_sweep_resume_needs_a_sweep_with_the_same_settings(cli, tmp_path):
    from raycl.cli import build_parser
    from raycl.sweeps.cli import SPEC, spec_from_args, spec_record

    assert "nothing to resume" in refused(cli, ["sweep", "overtraining", "--preset", "tiny", "--resume", "--out",
                                                tmp_path / "none"], absent=[tmp_path / "none"])
    sw = tmp_path / "sw"
    (sw / "tune").mkdir(parents=True)
    args = build_parser().parse_args(["sweep", "overtraining", "--preset", "tiny", "--epochs", "4", "--out", str(sw)])
    (sw / SPEC).write_text(json.dumps(spec_record(spec_from_args(args))))
    line = refused(cli, ["sweep", "overtraining", "--preset", "tiny", "--epochs", "6", "--resume", "--out", sw],
                   keep=[sw])
    assert "--epochs 6 (the sweep in" in line and "has 4)" in line
    line = refused(cli, ["sweep", "overtraining", "--preset", "tiny", "--epochs", "4", "--setting", "2", "--resume",
                         "--out", sw], keep=[sw])
    assert "settings differ" in line


# --- selfnet --------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, says", [
    (["--data", "mnist", "--data-root", "/nonexistent/raycl"], "mnist"),
    (["--data", "nope"], "unknown dataset 'nope'"),
    (["--baselines", "sgd,bogus"], "unknown baseline 'bogus'"),
    (["--tasks", "0"], "--tasks: must be > 0"),
    (["--thresholds", "0.99,1.5"], "--thresholds: must be in (0, 1]"),
    (["--ae-lr", "0"], "--ae-lr: must be > 0"),
    (["--thresholds", ""], "--thresholds needs at least one value"),
])
def test_selfnet_bad_settings_stop_before_any_folder(cli, tmp_path, flags, says):
    line = refused(cli, ["selfnet", "continual", "--out", tmp_path / "sn", *flags], absent=[tmp_path / "sn"])
    assert says in line


def test_selfnet_never_replaces_a_finished_run(cli, tmp_path):
    run = _finished(tmp_path / "sn", **{"metrics.parquet": "table"})
    assert "already holds a run" in refused(cli, ["selfnet", "robustness", "--out", run, *TINY_SELFNET[:3]],
                                            keep=[run])


def test_selfnet_divergence_names_the_learning_rate_and_leaves_no_folder(cli, tmp_path):
    line = refused(cli, ["selfnet", "continual", "--out", tmp_path / "sn", *TINY_SELFNET, "--lr", "1e6"],
                   absent=[tmp_path / "sn"])
    assert "diverged" in line and "lower --lr" in line


# --- atari ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, says", [
    (["--games", "Pong,Nope"], "cannot make Atari game 'Nope'"),
    (["--games", "Pong,Pong"], "repeats"),
    (["--frames", "0"], "--frames: must be > 0"),
    (["--ae-hidden", "0"], "--ae-hidden"),
    (["--threshold", "1.5"], "--threshold: must be in (0, 1]"),
    (["--resume"], "nothing to resume"),
])
def test_atari_bad_settings_stop_before_ray_and_any_folder(cli, tmp_path, flags, says):
    line = refused(cli, ["atari", "--out", tmp_path / "at", *flags], absent=[tmp_path / "at"])
    assert says in line


def test_atari_out_is_a_file_or_holds_a_run(cli, tmp_path):
    f = tmp_path / "afile"
    f.write_text("mine")
    assert "is a file" in refused(cli, ["atari", "--out", f, "--games", "Pong"], keep=[f])
    run = _finished(tmp_path / "at", **{"scores.parquet": "table"})
    assert "already holds a run" in refused(cli, ["atari", "--out", run, "--games", "Pong"], keep=[run])


def test_atari_resume_refuses_other_settings(cli, tmp_path):
    from raycl.atari.cli import config_from_args
    from raycl.cli import build_parser

    run = tmp_path / "at"
    run.mkdir()
    args = build_parser().parse_args(["atari", "--games", "Pong,Boxing", "--frames", "500", "--out", str(run)])
    (run / "progress.json").write_text(json.dumps({"done": ["Pong"], "config": config_from_args(args).as_dict()}))
    line = refused(cli, ["atari", "--out", run, "--resume", "--games", "Pong,Boxing", "--frames", "900"], keep=[run])
    assert "--frames 900 (the run in" in line and "has 500)" in line
    line = refused(cli, ["atari", "--out", run, "--resume", "--games", "Boxing,Pong", "--frames", "500"], keep=[run])
    assert "--games Boxing,Pong" in line
    assert "pass one of them" in refused(cli, ["atari", "--out", run, "--resume", "--overwrite"], keep=[run])


# --- active ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("flags, says", [
    (["--strategies", "weibull:bogus=1"], "bad options for strategy 'weibull'"),
    (["--strategies", "random", "random"], "repeats"),
    (["--initial", "0"], "--initial: must be > 0"),
    (["--data", "mnist", "--data-root", "/nonexistent/raycl"], "--data mnist"),
    (["--ood", "nope"], "--ood: unknown dataset 'nope'"),
    (["--backbone", "resnet"], "invalid choice: 'resnet'"),
    (["--val-fraction", "1"], "--val-fraction: must be in (0, 1)"),
    (["--ood-fraction", "0.9"], "lower --ood-fraction (at most 0.5"),  # 1,600 shapes for a pool of ~1,600 digits
])
def test_active_run_bad_settings_stop_before_any_folder(cli, tmp_path, flags, says):
    line = refused(cli, ["active", "run", "--no-ray", "--out", tmp_path / "ac", *flags], absent=[tmp_path / "ac"])
    assert says in line


def test_active_never_replaces_a_finished_run(cli, tmp_path):
    run = _finished(tmp_path / "ac", **{"metrics.parquet": "table"})
    assert "already holds a run" in refused(cli, ["active", "run", "--out", run, *TINY_ACTIVE], keep=[run])
    line = refused(cli, ["active", "sampling-time", "--out", run, "--pool", "50", "--budget", "10"], keep=[run])
    assert "already holds a run" in line


def test_active_sampling_time_budget_and_labeled(cli, tmp_path):
    assert "--pool 20" in refused(cli, ["active", "sampling-time", "--pool", "20", "--budget", "30", "--out",
                                        tmp_path / "st"], absent=[tmp_path / "st"])
    assert "--labeled" in refused(cli, ["active", "sampling-time", "--labeled", "1", "--out", tmp_path / "st"],
                                  absent=[tmp_path / "st"])


def test_active_divergence_names_the_learning_rate_and_leaves_no_folder(cli, tmp_path):
    line = refused(cli, ["active", "run", "--out", tmp_path / "ac", *TINY_ACTIVE, "--lr", "1e6"],
                   absent=[tmp_path / "ac"])
    assert "diverged" in line and "lower --lr" in line
