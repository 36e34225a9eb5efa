"""raycl.runio: atomic writes, clear errors on corrupt files, Parquet/JSON round trips, RunDir."""

import math

import numpy as np
import pytest
import torch

from raycl import RayclError
from raycl import runio


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_leaves_no_temp_files(tmp_path):
    path = tmp_path / "deep" / "er" / "x.bin"
    runio.atomic_write_bytes(path, b"first")
    runio.atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert [p.name for p in path.parent.iterdir()] == ["x.bin"]


def test_failed_write_keeps_the_old_file_and_no_temp(tmp_path):
    path = tmp_path / "x.bin"
    runio.atomic_write_bytes(path, b"intact")
    with pytest.raises(TypeError):
        runio.atomic_write_bytes(path, "not bytes")  # fails mid-write
    assert path.read_bytes() == b"intact" and not leftovers(tmp_path)


def test_torch_save_load_round_trip(tmp_path):
    obj = {"phi": torch.arange(6.0).reshape(2, 3), "step": 7}
    path = runio.torch_save(tmp_path / "ckpt.pt", obj)
    back = runio.torch_load(path)
    assert torch.equal(back["phi"], obj["phi"]) and back["step"] == 7
    assert not leftovers(tmp_path)


def test_torch_load_corrupt_or_missing_names_the_fix(tmp_path):
    path = runio.torch_save(tmp_path / "ckpt.pt", {"w": torch.ones(1000)})
    path.write_bytes(path.read_bytes()[:200])  # truncated, as by a crash mid-copy
    with pytest.raises(RayclError, match=r"ckpt.pt is corrupt.*delete it"):
        runio.torch_load(path)
    with pytest.raises(RayclError, match="does not exist"):
        runio.torch_load(tmp_path / "nope.pt")


def test_write_parquet_round_trip(tmp_path):
    rows = [{"step": i, "loss": 1.0 / (i + 1), "model": f"m{i % 2}", "acc": np.float32(0.5)} for i in range(5)]
    rows[2]["loss"] = float("nan")  # non-finite floats are stored as nulls
    path = runio.write_parquet(tmp_path / "metrics.parquet", rows)
    df = runio.read_parquet(path)
    assert list(df.columns) == ["step", "loss", "model", "acc"]
    assert df["step"].tolist() == list(range(5)) and df["model"].tolist() == ["m0", "m1"] * 2 + ["m0"]
    assert df["loss"][0] == 1.0 and math.isnan(df["loss"][2]) and df["acc"].tolist() == [0.5] * 5
    assert not leftovers(tmp_path)


def test_json_round_trip_and_corrupt_json(tmp_path):
    path = runio.write_json(tmp_path / "s.json", {"acc": np.float64(0.25), "inf": float("inf"), "path": tmp_path})
    assert runio.read_json(path) == {"acc": 0.25, "inf": None, "path": str(tmp_path)}
    path.write_text("{ half")
    with pytest.raises(RayclError, match="not valid JSON"):
        runio.read_json(path)


def test_rundir_writes_metrics_summary_figure_and_tensorboard(tmp_path):
    from raycl.plots import pyplot
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = runio.RunDir(tmp_path / "run")
    for step in range(3):
        run.log(step=step, loss=3.0 - step)
        run.scalar("train/loss", 3.0 - step, step)
    run.summary({"final_loss": 1.0})
    fig, ax = pyplot().subplots()
    ax.plot([0, 1])
    run.figure(fig, "curve.png")
    run.close()

    assert runio.read_parquet(tmp_path / "run" / "metrics.parquet")["loss"].tolist() == [3.0, 2.0, 1.0]
    assert runio.read_json(tmp_path / "run" / "summary.json") == {"final_loss": 1.0}
    assert (tmp_path / "run" / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    events = list((tmp_path / "run" / "tb").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(events[0]))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("train/loss")] == [(0, 3.0), (1, 2.0), (2, 1.0)]
    assert not leftovers(tmp_path / "run")
