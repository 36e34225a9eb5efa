"""The Ray population gives the reference trainer's numbers, also through a lost worker and a
resume from disk. Ray is started once for the module (2 CPUs); everything uses the 'tiny'
preset on the offline digits so each run takes seconds."""

import pytest
import torch

ray = pytest.importorskip("ray")

from raycl import RayclError  # noqa: E402
from raycl.data import load  # noqa: E402
from raycl.hyper.config import preset  # noqa: E402
from raycl.hyper.stream import prepare_pool  # noqa: E402
from raycl.hyper.trainer import ReferenceTrainer, load_run_checkpoint  # noqa: E402
from raycl.population import RayTrainer  # noqa: E402

CFG = preset("tiny", source="digits", population=2, epochs=3, checkpoint_every=1)


@pytest.fixture(scope="module")
def cluster():
    from raycl.cluster import init_ray

    init_ray(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def pool():
    return prepare_pool(load("digits"), CFG.image_size)


@pytest.fixture(scope="module")
def reference(pool):
    torch.set_num_threads(1)
    trainer = ReferenceTrainer(CFG, pool=pool)
    trainer.train(progress=False)
    return trainer


def assert_same_phi(a, b, tol=1e-6):
    assert a.keys() == b.keys()
    for n in a:
        assert torch.allclose(a[n], b[n], atol=tol, rtol=0), (n, (a[n] - b[n]).abs().max())


def strip(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history]


def test_ray_population_matches_reference(cluster, pool, reference, tmp_path):
    trainer = RayTrainer(CFG, tmp_path / "run", pool=pool)
    trainer.train(progress=False)
    assert trainer.epoch == 3 and trainer.recoveries == 0
    assert_same_phi(trainer.phi, reference.phi)
    assert strip(trainer.history) == strip(reference.history)
    # same checkpoint format: what `raycl deploy` reads
    ckpt = load_run_checkpoint(tmp_path / "run")
    assert ckpt["epoch"] == 3 and ckpt["step"] == 0
    assert_same_phi(ckpt["server"]["phi"], reference.phi)
    assert set(ckpt["theta0"]) == set(reference.theta0)
    # TensorBoard: per-model and population losses, φ gradient norm, step time split
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tags = EventAccumulator(str(tmp_path / "run" / "tb")).Reload().Tags()["scalars"]
    for tag in ("step/model0/task_loss", "step/model1/hyper_loss", "step/population/hyper_loss",
                "step/phi_grad_norm", "time/step_compute_ms", "time/step_sync_ms", "population/hyper_loss"):
        assert tag in tags
    # the last epoch's per-step record: the reference's gradient norms and losses, step by step,
    # averaging to the epoch's row, and the same numbers TensorBoard got
    trace, want = trainer.last_trace, reference.last_trace
    assert trace["epoch"] == 3 and len(trace["grad_norm"]) == len(trace["wall_s"]) == trainer.n_steps
    assert trace["grad_norm"] == pytest.approx(want["grad_norm"], rel=1e-6)
    for k in ("task_loss", "hyper_loss"):
        assert len(trace[k]) == CFG.population and all(len(v) == trainer.n_steps for v in trace[k])
        assert trace[k] == [pytest.approx(v, rel=1e-6) for v in want[k]]
    assert sum(trace["grad_norm"]) / trainer.n_steps == pytest.approx(trainer.history[-1]["phi_grad_norm"], rel=1e-9)
    acc = EventAccumulator(str(tmp_path / "run" / "tb")).Reload()
    logged = [e.value for e in acc.Scalars("step/phi_grad_norm")][-trainer.n_steps:]
    assert logged == pytest.approx(trace["grad_norm"], rel=1e-6)  # float32 in the event file


def test_two_ray_runs_of_one_seed_give_bit_identical_phenotypes(cluster, pool):
    runs = [RayTrainer(CFG.with_(epochs=1), pool=pool) for _ in range(2)]
    for r in runs:
        r.train(progress=False)
    a, b = (r.phi for r in runs)
    assert all(torch.equal(a[n], b[n]) for n in a)


def test_worker_dying_mid_epoch_is_restarted_and_the_run_matches(cluster, pool, reference, tmp_path):
    # worker 1 calls os._exit at step 6 of epoch 1; the last restore point is step 4 of that epoch
    cfg = CFG.with_(checkpoint_steps=4)
    trainer = RayTrainer(cfg, tmp_path / "run", pool=pool, fault=(1, 1, 6))
    trainer.train(progress=False)
    assert trainer.recoveries == 1 and trainer.epoch == 3
    assert_same_phi(trainer.phi, reference.phi)
    assert strip(trainer.history) == strip(reference.history)


class KillsAnActor(RayTrainer):
    """ray.kill(no_restart=False) on one actor right after epoch 1, while its restore point is taken."""

    victim = "worker"
    killed = False

    def _epoch_done(self, save):
        super()._epoch_done(save)
        if self.epoch == 1 and not self.killed:  # once: a rollback may bring epoch 1 back
            self.killed = True
            ray.kill(self.server if self.victim == "server" else self.workers[0], no_restart=False)


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["worker", "server"])
def test_ray_kill_of_an_actor_is_survived(cluster, pool, reference, victim):
    trainer = type("Kills", (KillsAnActor,), {"victim": victim})(CFG, pool=pool)
    trainer.train(progress=False)
    assert trainer.recoveries == 1
    assert_same_phi(trainer.phi, reference.phi)
    assert strip(trainer.history) == strip(reference.history)


def test_resume_from_a_mid_epoch_checkpoint_after_the_run_stopped(cluster, pool, reference, tmp_path):
    # no restarts allowed: the worker's death at step 9 of epoch 1 ends the run, like a killed
    # driver; the run folder holds the checkpoint of step 8
    cfg = CFG.with_(checkpoint_steps=4)
    run = tmp_path / "run"
    with pytest.raises(RayclError, match="--resume"):
        RayTrainer(cfg, run, pool=pool, max_restarts=0, fault=(1, 1, 9)).train(progress=False)
    ckpt = load_run_checkpoint(run)
    assert (ckpt["epoch"], ckpt["step"]) == (1, 8)
    resumed = RayTrainer.resume(run, {"pool": pool})
    assert (resumed.epoch, resumed.step) == (1, 8)
    resumed.train(progress=False)
    assert_same_phi(resumed.phi, reference.phi)
    assert strip(resumed.history) == strip(reference.history)
    # the reference trainer continues a Ray checkpoint too (one format)
    cross = ReferenceTrainer(cfg, pool=pool)
    cross.restore(ckpt)
    cross.train(progress=False)
    assert_same_phi(cross.phi, reference.phi)


def test_an_error_the_user_can_fix_comes_back_as_itself(cluster):
    from raycl.population.trainer import _recoverable, _user_error

    @ray.remote(num_cpus=0)
    def nan_gradient():
        raise RayclError("the phenotype gradient is not finite (NaN/inf); lower lr_synapses or lr_phenotype")

    @ray.remote(num_cpus=0)
    def server_step():  # the phenotype server gathers the workers' results itself
        return ray.get(nan_gradient.remote())

    for call in (nan_gradient, server_step):
        with pytest.raises(Exception) as info:
            ray.get(call.remote())
        assert not _recoverable(info.value)
        err = _user_error(info.value)
        assert type(err) is RayclError and str(err).startswith("the phenotype gradient is not finite")


def test_phi_travels_packed_and_arrives_exactly():
    from raycl.hyper.models import build_model
    from raycl.population.actors import FlatParams

    phi = build_model(preset("tiny"))[2]
    wire = FlatParams(phi)
    flat = wire.pack(phi)
    assert flat.ndim == 1 and flat.size == sum(p.numel() for p in phi.values())
    flat.setflags(write=False)  # as Ray hands it over from the object store
    back = wire.unpack(flat)
    assert list(back) == list(phi)
    for n in phi:
        assert back[n].shape == phi[n].shape and back[n].dtype == phi[n].dtype and torch.equal(back[n], phi[n])


def test_workers_keep_their_heap_on_glibc():
    import platform

    from raycl.host import keep_heap

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("the allocator setting is glibc's")
    assert keep_heap() is True and keep_heap() is True  # set once, answered again


def test_unrolled_phenotype_gradient_matches_reference_across_a_mid_epoch_resume(cluster, pool, tmp_path):
    # the window of earlier synaptic steps is part of a mid-epoch checkpoint
    cfg = CFG.with_(phi_grad="through-update", unroll=3, epochs=2, checkpoint_steps=4)
    torch.set_num_threads(1)
    ref = ReferenceTrainer(cfg, pool=pool)
    ref.train(progress=False)
    run = tmp_path / "run"
    with pytest.raises(RayclError, match="--resume"):
        RayTrainer(cfg, run, pool=pool, max_restarts=0, fault=(1, 1, 7)).train(progress=False)
    assert load_run_checkpoint(run)["step"] == 4
    resumed = RayTrainer.resume(run, {"pool": pool})
    resumed.train(progress=False)
    assert_same_phi(resumed.phi, ref.phi)
    assert strip(resumed.history) == strip(ref.history)


@pytest.mark.parametrize("changes", [
    {"phi_grad": "through-task", "hyper_loss_over": "seen", "readout_rule": "reset"},
    {"learn": "phenotype+theta0", "readout_rule": "seen-softmax"},
], ids=["through-task+reset", "learned-theta0+seen-softmax"])
def test_round_two_options_give_the_reference_numbers_on_ray(cluster, pool, tmp_path, changes):
    cfg = CFG.with_(epochs=2, **changes)
    torch.set_num_threads(1)
    ref = ReferenceTrainer(cfg, pool=pool)
    ref.train(progress=False)
    trainer = RayTrainer(cfg, tmp_path / "run", pool=pool)
    trainer.train(progress=False)
    assert_same_phi(trainer.phi, ref.phi)
    assert strip(trainer.history) == strip(ref.history)
    if "theta0" in cfg.learn:
        assert_same_phi(load_run_checkpoint(tmp_path / "run")["server"]["theta0"], ref.server.theta0)
