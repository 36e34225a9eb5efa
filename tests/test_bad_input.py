"""Bad input and faults for the hyper-learning commands and the CLI as a whole: every case
ends in one line naming the problem (no traceback), the documented exit code, and leaves
what was on disk untouched. The other families' cases are in test_bad_input_families.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


import pytest
import torch
from conftest import error_line, refused, refused_while_locked_then_taken_over, snapshot, write_lock

TINY = ["--preset", "tiny"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny hyper-training run (3 epochs), deployed once."""
    from raycl.cli import main

    run = tmp_path_factory.mktemp("runs") / "done"
    assert main(["hyper-train", "--out", str(run), *TINY]) == 0
    assert main(["deploy", str(run), "--d", "3", "--sequences", "2", "--lrs", "0.3"]) == 0
    return run


# --- numbers and names on the command line ---------------------------------------------------------

@pytest.mark.parametrize("flags, says", [
    (["--epochs", "0"], "--epochs: must be > 0"),
    (["--lr-synapses", "nan"], "finite"),
    (["--lr-phenotype", "-0.001"], "--lr-phenotype: must be > 0"),
    (["--population", "0"], "--population: must be > 0"),
    (["--seed", "-1"], "--seed: must be >= 0"),
    (["--k", "two"], "invalid"),
    (["--preset", "nope"], "invalid choice"),
    (["--h-cl", "10", "--h-h", "5"], "h_cl <= h_h"),
    (["--order", "random"], "invalid choice"),
    (["--data", "nope"], "nope"),
])
def test_hyper_train_bad_settings_stop_before_any_folder(cli, tmp_path, flags, says):
    line = refused(cli, ["hyper-train", "--out", tmp_path / "run", *TINY, *flags], absent=[tmp_path / "run"])
    assert says in line


def test_missing_dataset_root_names_the_dataset_and_leaves_no_folder(cli, tmp_path):
    line = refused(cli, ["hyper-train", "--out", tmp_path / "run", *TINY, "--data", "mnist",
                         "--data-root", tmp_path / "missing"], absent=[tmp_path / "run"])
    assert "mnist" in line and "missing" in line


def test_unknown_command_and_flag(cli):
    code, _, err = cli("nope")
    assert code == 2 and "invalid choice: 'nope'" in error_line(err) and "hyper-train" in error_line(err)
    code, _, err = cli("hyper-train", "--out", "x", "--no-such-flag")
    assert code == 2 and "unrecognized arguments" in error_line(err)


# --- run folders -------------------------------------------------------------------------------

def test_out_is_a_file_or_below_a_file(cli, tmp_path):
    f = tmp_path / "afile"
    f.write_text("mine")
    assert "is a file" in refused(cli, ["hyper-train", "--out", f, *TINY])
    assert f.read_text() == "mine"
    refused(cli, ["hyper-train", "--out", f / "run", *TINY])


def test_out_in_an_unwritable_place(cli):
    line = refused(cli, ["hyper-train", "--out", "/proc/raycl-run", *TINY], absent=["/proc/raycl-run"])
    assert "writable" in line


def test_a_new_run_never_replaces_a_finished_one(cli, finished):
    line = refused(cli, ["hyper-train", "--out", finished, *TINY], keep=[finished])
    assert "already holds a run" in line and "--resume" in line and "--overwrite" in line


def test_resume_refuses_changed_architecture(cli, finished):
    line = refused(cli, ["hyper-train", "--out", finished, "--resume", "--n-channels", "3", "--epochs", "5"],
                   keep=[finished])
    assert "--n-channels 3 (the run has 2)" in line


def test_resume_needs_a_run_and_a_reason(cli, finished, tmp_path):
    assert "does not exist" in refused(cli, ["hyper-train", "--out", tmp_path / "none", "--resume"],
                                       absent=[tmp_path / "none"])
    assert "already finished" in refused(cli, ["hyper-train", "--out", finished, "--resume"], keep=[finished])
    assert "pass one of them" in refused(cli, ["hyper-train", "--out", finished, "--resume", "--overwrite"],
                                         keep=[finished])


def test_a_second_writer_is_refused_naming_the_first(cli, tmp_path):
    run = tmp_path / "busy"
    refused_while_locked_then_taken_over(cli, run, ["hyper-train", "--out", run, *TINY])
    # the run that took the stale lock over is a whole tiny run: 3 epochs of 2 models
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 3 and [(r["epoch"], r["model"]) for r in ckpt["history"]] == [
        (e, m) for e in (1, 2, 3) for m in (0, 1)]


def test_a_lock_from_another_host_is_respected(cli, tmp_path):
    run = tmp_path / "shared"
    run.mkdir()
    write_lock(run, 1, host="another-node")
    assert "another-node" in refused(cli, ["hyper-train", "--out", run, *TINY], keep=[run])


def test_overwrite_replaces_the_old_run(cli, tmp_path):
    run = tmp_path / "again"
    assert cli("hyper-train", "--out", run, *TINY, "--epochs", "1")[0] == 0
    (run / "stray.txt").write_text("old")
    code, _, err = cli("hyper-train", "--out", run, *TINY, "--overwrite")
    assert code == 0, err
    assert not (run / "stray.txt").exists()
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 3


def test_files_follow_the_umask(cli, tmp_path):
    from raycl import runio

    old = os.umask(0o002)
    try:
        mode = 0o666 & ~0o002
        runio._FILE_MODE, saved = mode, runio._FILE_MODE
        runio.write_json(tmp_path / "x.json", {"a": 1})
        runio.torch_save(tmp_path / "c.pt", {"a": torch.zeros(1)})
    finally:
        os.umask(old)
        runio._FILE_MODE = saved
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o664
    assert (tmp_path / "c.pt").stat().st_mode & 0o777 == 0o664


def test_default_mode_is_what_open_gives(tmp_path):
    from raycl.runio import write_json

    write_json(tmp_path / "a.json", {})
    (tmp_path / "b.txt").write_text("")
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == (tmp_path / "b.txt").stat().st_mode & 0o777


# --- divergence -------------------------------------------------------------------------------

def test_divergence_stops_with_a_message_and_keeps_the_last_checkpoint(cli, tmp_path):
    run = tmp_path / "div"
    assert cli("hyper-train", "--out", run, *TINY, "--epochs", "2", "--checkpoint-every", "1")[0] == 0
    good = torch.load(run / "checkpoint.pt", weights_only=True)
    # continuing is allowed to change only the length; plant the explosion through the learning rate
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    ckpt["config"]["lr_synapses"] = 1e6
    torch.save(ckpt, run / "checkpoint.pt")
    before = snapshot(run)
    code, _, err = cli("hyper-train", "--out", run, "--resume", "--epochs", "4")
    assert code == 2
    line = error_line(err)
    assert "diverged" in line and "--lr-synapses" in line
    assert snapshot(run)["checkpoint.pt"] == before["checkpoint.pt"]
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == good["epoch"]


def test_divergence_on_a_fresh_run_leaves_no_folder(cli, tmp_path):
    line = refused(cli, ["hyper-train", "--out", tmp_path / "div", *TINY, "--lr-synapses", "1e6"],
                   absent=[tmp_path / "div"])
    assert "over 100x its start" in line


# --- deploy and report ---------------------------------------------------------------------------

def test_deploy_bad_inputs(cli, finished, tmp_path):
    assert "does not exist" in refused(cli, ["deploy", tmp_path / "none"])
    assert "--d: must be > 0" in refused(cli, ["deploy", finished, "--d", "0"], keep=[finished])
    assert "already holds a deployment" in refused(cli, ["deploy", finished], keep=[finished])
    line = refused(cli, ["deploy", finished, "--d", "500", "--overwrite"], keep=[finished])
    assert "exceeds" in line
    line = refused(cli, ["deploy", finished, "--overwrite", "--data", "mnist", "--data-root",
                         tmp_path / "missing"], keep=[finished])
    assert "mnist" in line


def test_deploy_corrupt_or_edited_checkpoint(cli, finished, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(finished, run)
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert "corrupt" in refused(cli, ["deploy", run, "--overwrite"], keep=[run])
    ckpt = torch.load(finished / "checkpoint.pt", weights_only=True)
    ckpt["phi0"] = {k: v[..., :1] for k, v in ckpt["phi0"].items()}
    torch.save(ckpt, run / "checkpoint.pt")
    assert "do not match" in refused(cli, ["deploy", run, "--overwrite"], keep=[run])


def test_report_bad_inputs(cli, finished, tmp_path):
    assert "not a folder" in refused(cli, ["report", "hyper", tmp_path / "none"])
    (tmp_path / "empty").mkdir()
    assert "no hyper-training runs" in refused(cli, ["report", "hyper", tmp_path / "empty"],
                                               keep=[tmp_path / "empty"])
    assert "is a folder" in refused(cli, ["report", "hyper", finished.parent, "--out", tmp_path],
                                    keep=[finished.parent])


# --- the error path itself ----------------------------------------------------------------------

def test_internal_failure_is_one_line_exit_1_and_debug_shows_the_traceback(cli, tmp_path, monkeypatch):
    import raycl.hyper.trainer as trainer

    def broken(cfg):
        raise ValueError("something inside broke")

    monkeypatch.setattr(trainer, "meta_train_pool", broken)
    code, _, err = cli("hyper-train", "--out", tmp_path / "r", *TINY)
    assert code == 1
    line = error_line(err)
    assert "internal error" in line and "something inside broke" in line and "--debug" in line
    with pytest.raises(ValueError):
        cli("hyper-train", "--out", tmp_path / "r", *TINY, "--debug")
    assert not (tmp_path / "r").exists()


def test_results_are_all_or_nothing_summary_last(tmp_path):
    from raycl.runio import results, write_json, write_parquet

    with pytest.raises(RuntimeError):
        with results(tmp_path):
            write_parquet(tmp_path / "metrics.parquet", [{"a": 1}])
            raise RuntimeError("late failure")
    assert not any(tmp_path.iterdir())
    order = []
    import raycl.runio as runio

    real = runio._write_now
    runio._write_now = lambda p, d: (order.append(p.name), real(p, d))[1]
    try:
        with results(tmp_path):
            write_json(tmp_path / "summary.json", {"done": True})
            write_parquet(tmp_path / "metrics.parquet", [{"a": 1}])
            assert not (tmp_path / "summary.json").exists()
    finally:
        runio._write_now = real
    assert order == ["metrics.parquet", "summary.json"]


# --- signals ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_run_keeps_the_checkpoint_and_resume_finishes_it(tmp_path, sig, code):
    from raycl.cli import main

    run = tmp_path / "sig"
    cmd = [sys.executable, "-m", "raycl", "hyper-train", "--out", str(run), *TINY, "--epochs", "400",
           "--checkpoint-every", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "--resume" in err.strip().splitlines()[-1]
    assert not (run / ".raycl.lock").exists()
    epoch = torch.load(run / "checkpoint.pt", weights_only=True)["epoch"]
    assert 1 <= epoch < 400
    # resume to a few epochs past the interruption: the same φ as one uninterrupted run
    assert main(["hyper-train", "--out", str(run), "--resume", "--epochs", str(epoch + 2)]) == 0
    whole = tmp_path / "whole"
    assert main(["hyper-train", "--out", str(whole), *TINY, "--epochs", str(epoch + 2)]) == 0
    a = torch.load(run / "checkpoint.pt", weights_only=True)["server"]["phi"]
    b = torch.load(whole / "checkpoint.pt", weights_only=True)["server"]["phi"]
    assert all(torch.equal(a[k], b[k]) for k in a)
