"""`ray job submit` against a real local head with token authentication on (Ray 2.60's
default): start a head on free ports in its own temp folder, submit a small hyper-training
job, wait for SUCCEEDED, check its outputs, stop the head (only its own processes: `ray
stop` would stop every Ray on a shared machine)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RAY = str(Path(sys.executable).with_name("ray"))


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def pids_under(marker: str) -> list[int]:
    """Processes whose command line names `marker` (this head's unique temp folder)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker in (p / "cmdline").read_bytes().decode(errors="replace"):
                    out.append(int(p.name))
            except OSError:
                pass
    return [p for p in out if p != os.getpid()]


def stop_head(proc: subprocess.Popen, temp: str) -> None:
    proc.send_signal(signal.SIGTERM)  # `ray start --block` stops its processes on SIGTERM
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    deadline = time.time() + 20
    while pids_under(temp) and time.time() < deadline:
        time.sleep(0.5)
    for pid in pids_under(temp):  # anything left of this head only
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="module")
def head():
    temp = tempfile.mkdtemp(prefix="rj", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    port, dash, agent, client = free_ports(4)
    # the job's `python` is whatever the head's PATH finds first: this interpreter
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [RAY, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port),
         "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dash), "--dashboard-agent-listen-port", str(agent),
         "--ray-client-server-port", str(client), "--num-cpus", "2", "--temp-dir", temp, "--disable-usage-stats"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dash}"
    try:
        deadline = time.time() + 120
        while True:  # the job API answers once the dashboard is up
            r = subprocess.run([RAY, "job", "list", "--address", address], env={**env, "RAY_AUTH_MODE": "token"},
                               capture_output=True, text=True, timeout=60)
            if r.returncode == 0:
                break
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the head did not come up: {proc.stdout.read() if proc.poll() is not None else ''}"
                                   f"{r.stderr[-2000:]}")
            time.sleep(2)
        yield address, env
    finally:
        stop_head(proc, temp)
        shutil.rmtree(temp, ignore_errors=True)


def test_job_submit_hyper_train_with_token(head, tmp_path):
    address, env = head
    out = tmp_path / "run"
    # without the token the job API refuses: authentication really is on
    r = subprocess.run([RAY, "job", "list", "--address", address], env={**env, "RAY_AUTH_MODE": "disabled"},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    r = subprocess.run(
        [RAY, "job", "submit", "--address", address, "--working-dir", ".", "--",
         "python", "jobs/hyper_train.py", "--preset", "tiny", "--data", "digits", "--epochs", "2", "--out", str(out)],
        cwd=REPO, env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    job = re.search(r"Job '(raysubmit_\w+)' succeeded", r.stdout)
    assert job, r.stdout[-3000:]
    # the job's status through the Python job client, which presents the token too
    probe = ("import sys; from ray.job_submission import JobSubmissionClient; "
             "print(JobSubmissionClient(sys.argv[1]).get_job_status(sys.argv[2]).value)")
    status = subprocess.run([sys.executable, "-c", probe, address, job.group(1)],
                            env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=60)
    assert status.stdout.strip().splitlines()[-1] == "SUCCEEDED", status.stdout + status.stderr
    assert "hyper-trained 2 epochs" in r.stdout
    import pandas as pd
    import torch

    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    assert ckpt["epoch"] == 2 and ckpt["config"]["source"] == "digits" and len(ckpt["models"]) == 2

    df = pd.read_parquet(out / "hyper_training.parquet")
    assert sorted(df["epoch"].unique()) == [1, 2] and len(df) == 2 * 2  # tiny: population 2
    assert json.loads((out / "config.json").read_text())["epochs"] == 2


@pytest.mark.slow
def test_job_submit_sweep(head, tmp_path):
    """A sweep as a job: inside it RAY_ADDRESS is set, so Tune runs its trials on the head."""
    address, env = head
    out = tmp_path / "sweep"
    r = subprocess.run(
        [RAY, "job", "submit", "--address", address, "--working-dir", ".", "--",
         "python", "jobs/sweep_overtraining.py", "--preset", "tiny", "--setting", "1", "--epochs", "2",
         "--backend", "reference", "--out", str(out)],
        cwd=REPO, env={**env, "RAY_AUTH_MODE": "token"}, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "ran 1 trials: 1 finished" in r.stdout
    import pandas as pd

    df = pd.read_parquet(out / "sweep.parquet")
    assert df["trial"].nunique() == 1 and sorted(df["epoch"]) == [0, 1, 2]
    assert list((out / "tune").glob("*/events.out.tfevents.*"))


def test_job_entry_points_add_a_default_only_for_flags_the_job_leaves_out(monkeypatch):
    import importlib.util

    import raycl.cli

    spec = importlib.util.spec_from_file_location("_entry", Path(__file__).resolve().parents[1] / "jobs" / "_entry.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    seen = []
    monkeypatch.setattr(raycl.cli, "main", lambda argv: seen.append(argv) or 0)
    for argv in (["--out", "r"], ["--out", "r", "--preset=small"], ["--preset", "tiny"]):
        monkeypatch.setattr(sys, "argv", ["job.py", *argv])
        with pytest.raises(SystemExit):
            entry.run(["atari"], {"--preset": "cluster"})
    assert seen == [["atari", "--out", "r", "--preset", "cluster"],
                    ["atari", "--out", "r", "--preset=small"],
                    ["atari", "--preset", "tiny"]]
