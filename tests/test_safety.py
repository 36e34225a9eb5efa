"""Safe by default (issue 16): no code path from a data file to execution.

Every kind of file raycl reads is planted with a malicious pickle whose unpickling would
create a sentinel file; raycl must refuse it with a RayclError (or, on the command line,
exit code 2 and one line) and the sentinel must not exist afterwards. The payload is shown
to be live first, so these tests fail if the guards are taken away.
"""

from __future__ import annotations

import json
import pathlib
import pickle

import numpy as np
import pytest
import torch

from raycl import RayclError
from raycl.cli import main

torch.set_num_threads(1)


class Payload:
    """Unpickling this calls pathlib.Path.touch(sentinel): code run by merely loading a file."""

    def __init__(self, sentinel):
        self.sentinel = pathlib.Path(sentinel)

    def __reduce__(self):
        return (pathlib.Path.touch, (self.sentinel,))


@pytest.fixture
def sentinel(tmp_path):
    return tmp_path / "PWNED"


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Glyph cache and sweep key out of the user's home."""
    monkeypatch.setenv("RAYCL_CACHE", str(tmp_path_factory.getbasetemp() / "raycl-cache"))


def plant_torch(path: pathlib.Path, sentinel, **extra) -> pathlib.Path:
    """A torch.save file (the zip format raycl writes) whose pickle runs the payload."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"server": Payload(sentinel), "epoch": 1, **extra}, path)
    return path


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


# --- the payload is live: without the guards it runs ---------------------------------------------


def test_payload_runs_when_unpickled_the_unsafe_way(tmp_path, sentinel):
    pickle.loads(pickle.dumps(Payload(sentinel)))
    assert sentinel.exists()
    sentinel.unlink()
    torch.load(plant_torch(tmp_path / "checkpoint.pt", sentinel), weights_only=False)
    assert sentinel.exists()


# --- checkpoints: torch_load is weights-only, always ------------------------------------------------


def test_hyper_checkpoint_is_refused_by_load_run_checkpoint(tmp_path, sentinel):
    from raycl.hyper.trainer import load_run_checkpoint

    plant_torch(tmp_path / "run" / "checkpoint.pt", sentinel)
    with pytest.raises(RayclError, match=r"checkpoint.pt holds a pickled Python object .*could run code"):
        load_run_checkpoint(tmp_path / "run")
    assert not sentinel.exists()


@pytest.mark.parametrize("argv", [
    ["deploy", "{run}"],
    ["hyper-train", "--resume", "--out", "{run}"],
    ["report", "hyper", "{results}"],
])
def test_cli_refuses_a_planted_hyper_checkpoint_with_one_line(tmp_path, sentinel, capsys, argv):
    run = tmp_path / "results" / "run"
    plant_torch(run / "checkpoint.pt", sentinel)
    code = main([a.format(run=run, results=run.parent) for a in argv])
    line = one_error_line(capsys)
    assert code == 2, line
    assert line.startswith("raycl: error: checkpoint ") and "pickled Python object" in line
    assert not sentinel.exists()


def test_activation_cli_refuses_a_planted_phenotype_checkpoint(tmp_path, sentinel, capsys):
    ckpt = plant_torch(tmp_path / "phenotype.pt", sentinel, format="raycl.dan.phenotype/1")
    assert main(["activation", str(ckpt), "--out", str(tmp_path / "a.png")]) == 2
    assert "pickled Python object" in one_error_line(capsys)
    assert not sentinel.exists() and not (tmp_path / "a.png").exists()


def test_dan_phenotype_checkpoint_is_refused(tmp_path, sentinel):
    from raycl.dan.checkpoint import load_phenotype

    ckpt = plant_torch(tmp_path / "phenotype.pt", sentinel)
    with pytest.raises(RayclError, match="pickled Python object"):
        load_phenotype(ckpt)
    assert not sentinel.exists()


def test_sweep_trial_checkpoint_is_refused_not_skipped(tmp_path, sentinel):
    """A trial folder's checkpoint cut short is skipped; one holding pickled objects is an error."""
    from raycl.sweeps.trial import resume_point

    d = tmp_path / "t_setting" / "checkpoint_000000"
    plant_torch(d / "checkpoint.pt", sentinel)
    (d / "rows.json").write_text(json.dumps([{"trial": "t", "epoch": 0}, {"trial": "t", "epoch": 1}]))
    with pytest.raises(RayclError, match="pickled Python object"):
        resume_point(None, tmp_path / "t_setting")
    assert not sentinel.exists()


def test_atari_store_and_game_checkpoint_are_refused(tmp_path, sentinel, monkeypatch):
    from raycl.atari import parallel
    from raycl.atari.incremental import AtariConfig, run_incremental

    cfg = AtariConfig(games=("Pong",), frames=20, workers=1, episodes=1)
    plant_torch(tmp_path / "store.pt", sentinel, selfnet={}, norms={})
    with pytest.raises(RayclError, match="store.pt holds a pickled Python object"):
        run_incremental(cfg, tmp_path, resume=True, progress=False)
    assert not sentinel.exists()

    class NoRay:  # the mid-game checkpoint is read before any training: no Ray needed to reach it
        def __init__(self, *a, **k):
            pass

    monkeypatch.setattr(parallel, "RayA3C", NoRay)
    (tmp_path / "store.pt").unlink()
    plant_torch(tmp_path / "checkpoints" / "Pong.pt", sentinel, frames=10, state={})
    with pytest.raises(RayclError, match="Pong.pt holds a pickled Python object"):
        run_incremental(cfg, tmp_path, resume=True, progress=False)
    assert not sentinel.exists()


def test_old_mid_epoch_checkpoint_with_a_pickled_stream_names_the_fix(tmp_path):
    """A mid-epoch checkpoint of an older raycl pickled the HyperStream object: refused with the fix."""
    from raycl.hyper.stream import HyperStream
    from raycl.hyper.trainer import load_run_checkpoint

    stream = HyperStream(torch.arange(3), torch.zeros(3, 2, 4), torch.zeros(3, 1, 4))
    torch.save({"server": {}, "epoch": 0, "step": 2, "models": [{"index": 0, "stream": stream}]},
               tmp_path / "checkpoint.pt")
    with pytest.raises(RayclError, match=r"HyperStream.*older raycl.*end-of-epoch checkpoint or rerun"):
        load_run_checkpoint(tmp_path)


def test_torch_save_refuses_anything_but_plain_data(tmp_path):
    from raycl.hyper.stream import HyperStream
    from raycl.runio import torch_load, torch_save

    stream = HyperStream(torch.arange(3), torch.zeros(3, 2, 4), torch.zeros(3, 1, 4))
    for bad, where in [({"models": [{"stream": stream}]}, "stream"), ({"x": np.float32(1)}, "numpy.float32"),
                       ({"x": np.zeros(2)}, "numpy.ndarray"), ({"g": torch.Generator()}, "Generator")]:
        with pytest.raises(TypeError, match=where):
            torch_save(tmp_path / "c.pt", bad)
    assert not (tmp_path / "c.pt").exists()
    plain = {"t": torch.ones(2), "l": [1, 2.5, "s", None, True], "tup": (torch.zeros(1), {"k": b"b"}),
             "rng": torch.Generator().manual_seed(3).get_state()}
    back = torch_load(torch_save(tmp_path / "c.pt", plain))
    assert back["l"] == plain["l"] and torch.equal(back["rng"], plain["rng"]) and isinstance(back["tup"], tuple)


# --- what raycl writes loads weights-only, and resumes exactly ------------------------------------------


class _Stop(Exception):
    pass


class _StopAtStep:
    """Stands in for the trainer's φ server: stops the run at the start of synaptic step n (before
    any model moves), the state a mid-epoch checkpoint is taken in."""

    def __init__(self, server, n: int):
        self.server, self.left = server, n

    def __getattr__(self, name):
        return getattr(self.server, name)

    @property
    def phi(self):
        if self.left == 0:
            raise _Stop
        self.left -= 1
        return self.server.phi


def test_mid_epoch_checkpoint_loads_weights_only_and_resumes_to_the_same_phi(tmp_path):
    from test_hyper import CFG, toy_pool

    from raycl.hyper.trainer import ReferenceTrainer, load_run_checkpoint

    cfg = CFG.with_(epochs=2, phi_grad="through-update", unroll=3)  # the window of steps is checkpointed too
    pool = toy_pool()
    full = ReferenceTrainer(cfg, pool=pool)
    full.train(progress=False)

    part = ReferenceTrainer(cfg, tmp_path / "run", pool=pool)
    part.train(epochs=1, progress=False)
    server, part.server = part.server, _StopAtStep(part.server, 5)
    with pytest.raises(_Stop):
        part.train(progress=False)
    part.server = server
    assert (part.epoch, part.step) == (1, 5)
    part.save()

    raw = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)  # plain data only
    assert raw["step"] == 5 and set(raw["models"][0]["stream"]) == {"classes", "train_x", "holdout_x"}
    assert len(raw["models"][0]["window"]) == 2

    resumed = ReferenceTrainer(cfg, tmp_path / "run", pool=pool)
    resumed.restore(load_run_checkpoint(tmp_path / "run"))
    assert (resumed.epoch, resumed.step) == (1, 5)
    resumed.train(progress=False)
    for n in full.phi:
        torch.testing.assert_close(resumed.phi[n], full.phi[n], rtol=0, atol=0)
    assert [r["hyper_loss"] for r in resumed.history] == pytest.approx([r["hyper_loss"] for r in full.history])


def test_selfnet_store_and_atari_checkpoints_round_trip_weights_only(tmp_path):
    from raycl.atari.incremental import AtariConfig
    from raycl.atari.parallel import ParameterServer
    from raycl.runio import torch_load, torch_save
    from raycl.selfnet import NetMeta, SelfNet

    torch.manual_seed(0)
    sn = SelfNet(20, 2, (), "elu", buffer_size=1, thresholds=(0.5,), lr=1e-2, max_iters=20)
    sn.add("Pong", torch.randn(50), NetMeta("baby-a3c", 18, 50))
    norms, folds = {"Pong": 1.5}, [{"stage": 0, "game": "Pong", "iterations": 3, "seconds": 0.1, "min_cosine": 0.9}]
    saved = torch_load(torch_save(tmp_path / "store.pt", {"selfnet": sn.state_dict(), "norms": norms, "folds": folds}))
    assert torch.equal(SelfNet.from_state(saved["selfnet"]).recollect("Pong"), sn.recollect("Pong"))

    server = ParameterServer(18, 1e-4, seed=0)
    server.apply(np.full(len(server.weights()), 1e-3, np.float32))  # Adam now has moments to save
    cfg = AtariConfig(games=("Pong",))
    ckpt = torch_load(torch_save(tmp_path / "Pong.pt", {"game": "Pong", "frames": 200, "state": server.state(),
                                                         "config": cfg.as_dict()}))
    again = ParameterServer(18, 1e-4, seed=1, state=ckpt["state"])
    assert np.array_equal(again.weights(), server.weights()) and again.updates == 1


# --- the sweep folder: Tuner.restore only for folders raycl made here ------------------------------------


def _spec(out):
    from raycl.sweeps.space import overtraining_settings
    from raycl.sweeps.tuning import SweepSpec

    return SweepSpec("overtraining", overtraining_settings("tiny")[:1], out, 1, backend="reference",
                     gpus_per_model=0.0)


def test_sweep_folder_without_raycls_marker_is_not_restored(tmp_path, sentinel):
    from raycl.sweeps.tuning import MARKER, tuner

    spec = _spec(tmp_path / "sweep")
    spec.experiment.mkdir(parents=True)
    (spec.experiment / "tuner.pkl").write_bytes(pickle.dumps(Payload(sentinel)))
    with pytest.raises(RayclError, match=r"did not create on this machine \(it has no .raycl-sweep.json\)"
                                         r".*unpickles its tuner.pkl.*new --out"):
        tuner(spec)
    (spec.experiment / MARKER).write_text(json.dumps({"raycl": "0.1.0", "created": "now", "nonce": "00",
                                                      "hmac": "0" * 64}))  # a marker written by hand
    with pytest.raises(RayclError, match="not signed with this machine's sweep key"):
        tuner(spec)
    assert not sentinel.exists()


def test_sweep_folder_raycl_made_resumes_and_one_from_another_machine_does_not(tmp_path, monkeypatch):
    from raycl.sweeps.tuning import MARKER, check_restorable, tuner

    spec = _spec(tmp_path / "sweep")
    t, restored = tuner(spec)
    assert not restored and (spec.experiment / MARKER).exists() and (spec.experiment / "tuner.pkl").exists()
    check_restorable(spec.experiment)
    t, restored = tuner(spec)  # a rerun with the same --out resumes
    assert restored
    monkeypatch.setenv("RAYCL_CACHE", str(tmp_path / "another-machine"))  # another key: a copied folder
    with pytest.raises(RayclError, match="did not create on this machine"):
        check_restorable(spec.experiment)


# --- dataset files ---------------------------------------------------------------------------------------


def test_cifar_batch_with_a_payload_is_refused(tmp_path, sentinel):
    from test_data import write_cifar10

    from raycl.data import load

    base = write_cifar10(tmp_path)
    for proto in (2, 4):
        (base / "data_batch_2").write_bytes(pickle.dumps({"data": Payload(sentinel), "labels": []}, protocol=proto))
        with pytest.raises(RayclError, match=r"'cifar10'.*data_batch_2.*unexpected object"):
            load("cifar10", "train", root=tmp_path)
    assert not sentinel.exists()
    assert len(load("cifar10", "test", root=tmp_path)) == 3  # real batches (arrays, lists, strings) still load


def test_cifar_unpickler_allows_arrays_lists_and_strings_only():
    from raycl.data.real import _ArrayUnpickler

    def unpickle(data: bytes):
        import io

        return _ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()

    ok = {"data": np.arange(6, dtype=np.uint8).reshape(2, 3), "labels": [1, 2], "names": ["a", b"b"]}
    back = unpickle(pickle.dumps(ok, protocol=2))
    assert np.array_equal(back["data"], ok["data"]) and back["names"] == ["a", b"b"]
    for evil in (Payload("x"), np.float64(1.0), pathlib.Path("x"), {1, 2}.__class__, print):
        with pytest.raises(pickle.UnpicklingError, match="unexpected object"):
            unpickle(pickle.dumps(evil, protocol=2))


def test_glyph_cache_with_an_object_array_is_redrawn_not_unpickled(tmp_path, sentinel, monkeypatch, caplog):
    from raycl.data import offline

    monkeypatch.setenv("RAYCL_CACHE", str(tmp_path))
    path = tmp_path / f"glyphs-{offline.generator_key()}-8px-seed0.npz"
    np.savez(path, images=np.array([Payload(sentinel)], dtype=object), sha256=np.array("0" * 64))
    with np.load(path, allow_pickle=True) as f:  # the payload is live
        f["images"]
    assert sentinel.exists()
    sentinel.unlink()
    x = offline.glyph_pixels(8, seed=0)
    assert not sentinel.exists()
    assert x.shape == (400, 20, 8, 8) and x.dtype == np.uint8 and "corrupt" in caplog.text
    with np.load(path, allow_pickle=False) as f:  # rewritten with plain pixels
        assert np.array_equal(f["images"], x)


@pytest.mark.parametrize("entry", ["../outside.jpg", "{abs}", "sub/../../outside.jpg", "..\\outside.jpg"])
def test_mini_imagenet_csv_may_not_leave_its_images_folder(tmp_path, entry):
    from PIL import Image

    from raycl.data import load

    root = tmp_path / "mini"
    (root / "images").mkdir(parents=True)
    outside = tmp_path / "outside.jpg"
    Image.new("RGB", (10, 10), (255, 0, 0)).save(outside)
    Image.new("RGB", (10, 10), (0, 255, 0)).save(root / "images" / "ok.jpg")
    entry = entry.format(abs=outside)
    (root / "val.csv").write_text(f"filename,label\nok.jpg,n01\n{entry},n02\n")
    with pytest.raises(RayclError, match=r"val.csv: entry '.*outside.jpg' is not a file name inside "
                                         r"ROOT/images/.*list each file by its path relative to ROOT/images/"):
        load("mini-imagenet", "val", root=root)
    (root / "val.csv").write_text("filename,label\nok.jpg,n01\n")
    assert len(load("mini-imagenet", "val", root=root)) == 1
