"""Several Ray nodes on one machine: a head and extra nodes with their own resources, started
by `ray.cluster_utils.Cluster` (what Ray's own multi-node tests use), every node on 127.0.0.1
with token authentication, and this process connected through raycl's `init_ray(address=...)`.

Where the population's actors land (nodes that advertise fake GPUs), a node dying mid-epoch
(its workers restarted on another node, or, with no room left, a clear error and `--resume`),
and a Tune sweep losing a node. The population runs end with the reference trainer's numbers.
The module's head has 1 CPU; each test adds (and removes) the nodes it needs."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
import time

import pytest
import torch

ray = pytest.importorskip("ray")

from raycl import RayclError  # noqa: E402
from raycl.data import load  # noqa: E402
from raycl.hyper.config import preset  # noqa: E402
from raycl.hyper.stream import prepare_pool  # noqa: E402
from raycl.hyper.trainer import ReferenceTrainer, load_run_checkpoint  # noqa: E402
from raycl.population import RayTrainer  # noqa: E402
from test_population import assert_same_phi, strip  # noqa: E402
from test_ray_security import _client, _descendants, is_loopback, ray_listeners  # noqa: E402

ONE_EPOCH = preset("tiny", source="digits", population=2, epochs=1)
# 12 steps per epoch, a restore point (and checkpoint.pt) every 4: a node dies after step 4 of epoch 1
THREE = preset("tiny", source="digits", population=3, epochs=2, checkpoint_every=1, checkpoint_steps=4)
KILL_AT = (1, 4)

# fast detection of a killed node: 3 missed health checks 1 s apart (Ray's default: ~30 s)
HEAD_CONFIG = {"enable_metrics_collection": False, "health_check_initial_delay_ms": 0,
               "health_check_period_ms": 1000, "health_check_failure_threshold": 3}


@pytest.fixture(scope="module")
def cluster():
    """A 1-CPU head on 127.0.0.1 with token authentication (RAY_AUTH_MODE=token in the
    environment the nodes inherit, the token as init_ray keeps it); this process is the driver."""
    from ray import cluster_utils

    from raycl import cluster as rc

    if ray.is_initialized():
        ray.shutdown()
    keep = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_ADDRESS", "RAY_worker_niceness")}
    os.environ.pop("RAY_ADDRESS", None)
    os.environ["RAY_worker_niceness"] = "0"
    temp = tempfile.mkdtemp(prefix="rmn", dir="/tmp")  # short: socket paths
    with pytest.MonkeyPatch.context() as mp:
        # Cluster records its head in /tmp/ray/ray_current_cluster (what `ray status` and
        # address="auto" read) and deletes that file on shutdown: leave other people's Ray alone
        mp.setattr(ray._private.utils, "write_ray_address", lambda *a, **k: None)
        mp.setattr(ray._common.utils, "reset_ray_address", lambda *a, **k: None)
        rc._enforce_token_auth()
        c = cluster_utils.Cluster(initialize_head=True, head_node_args=dict(
            node_ip_address="127.0.0.1", num_cpus=1, num_gpus=0, temp_dir=temp, include_dashboard=False,
            _system_config=HEAD_CONFIG))
        c.temp = temp
        try:
            assert c.address.startswith("127.0.0.1:")
            rc.init_ray(address=c.address)  # how raycl joins a running cluster (--address / RAY_ADDRESS)
            yield c
        finally:
            ray.shutdown()
            c.shutdown()
            shutil.rmtree(temp, ignore_errors=True)
            for k, v in keep.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


def add_node(c, **resources):
    """A node with its own raylet, object store and agents, on 127.0.0.1; waits until the
    driver sees its resources."""
    node = c.add_node(node_ip_address="127.0.0.1", temp_dir=c.temp, **resources)
    wait_for(lambda: any(n["NodeID"] == node.node_id and n["Alive"] for n in ray.nodes()), "the new node")
    return node


def kill_node(c, node) -> None:
    """A machine dying: SIGKILL its raylet and every worker the raylet started (the population's
    actors, Tune's trial actors, which would otherwise go on taking calls from their callers
    for a moment) at once, then its agents and object store (Cluster.remove_node)."""
    raylet = node.all_processes["raylet"][0].process.pid
    for pid in [raylet, *(_descendants(raylet) - {raylet})]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    c.remove_node(node, allow_graceful=False)


def remove_nodes(c, *nodes) -> None:
    for n in nodes:
        if n is not None and n in c.worker_nodes:
            c.remove_node(n, allow_graceful=False)


def wait_for(cond, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def resources_settle(want: dict) -> None:
    """Wait until the cluster's totals are `want` (a removed node's resources are gone)."""
    wait_for(lambda: all(ray.cluster_resources().get(k, 0) == v for k, v in want.items()), f"resources {want}")


@pytest.fixture(scope="module")
def pool():
    return prepare_pool(load("digits"), ONE_EPOCH.image_size)


def reference_of(cfg, pool):
    torch.set_num_threads(1)
    trainer = ReferenceTrainer(cfg, pool=pool)
    trainer.train(progress=False)
    return trainer


class Where(RayTrainer):
    """Records after each epoch where the server and the workers run: [server, worker 0, ...]."""

    seen: list = []

    def _epoch_done(self, save):
        super()._epoch_done(save)
        self.seen = ray.get([self.server.ready.remote()] + [w.ready.remote() for w in self.workers])


# --- the cluster itself ----------------------------------------------------------------------

def test_joining_a_loopback_address_keeps_it_on_loopback():
    """init_ray(address=...) connects to these with 127.0.0.1 kept (Ray would use the machine's address)."""
    from raycl.cluster import _is_loopback

    assert all(map(_is_loopback, ["127.0.0.1:6379", "localhost:6379", "[::1]:6379", "127.0.0.1"]))
    assert not any(map(_is_loopback, ["10.0.0.5:6379", "head:6379", "ray://127.0.0.1:10001", "auto"]))


def test_every_node_listens_on_loopback_only_and_needs_the_token(cluster, tmp_path):
    from ray._raylet import AuthenticationMode, get_authentication_mode

    node = add_node(cluster, num_cpus=1)
    try:
        nodes = [n for n in ray.nodes() if n["Alive"]]
        assert len(nodes) == 2 and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
        assert get_authentication_mode() == AuthenticationMode.TOKEN
        rows = ray_listeners()  # this process's descendants: both nodes' GCS, raylets, agents, workers
        assert sum(name == "raylet" for _, name, _, _ in rows) >= 2, rows
        assert [r for r in rows if not is_loopback(r[2])] == []
        # the added node's raylet refuses a caller without the token as the head's GCS does
        other = next(n for n in nodes if n["NodeID"] == node.node_id)
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH") and k != "RAY_ADDRESS"}
        env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token to find
        raylet = f"127.0.0.1:{other['NodeManagerPort']}"
        got = _client([cluster.address, raylet, ""], {**env, "RAY_AUTH_MODE": "disabled"})
        assert got == {"gcs": "UNAUTHENTICATED", "raylet": "UNAUTHENTICATED", "ray_client": "AuthenticationError"}
    finally:
        remove_nodes(cluster, node)


# --- 1. placement on (fake) GPUs ---------------------------------------------------------------

def test_one_worker_per_gpu_two_per_gpu_at_half_and_the_server_on_the_drivers_node(cluster, pool, tmp_path):
    """A second node advertises 2 GPUs that do not exist: Ray hands each worker a GPU id (and
    CUDA_VISIBLE_DEVICES), torch finds no CUDA and the worker computes on the CPU, with the
    reference's numbers. The server, which writes the run folder, stays on the driver's node."""
    gpu_node = add_node(cluster, num_cpus=2, num_gpus=2)
    try:
        resources_settle({"CPU": 3, "GPU": 2})
        driver = ray.get_runtime_context().get_node_id()
        reference = reference_of(ONE_EPOCH, pool)
        for share, cards in ((1.0, 2), (0.5, 1)):
            run = tmp_path / f"gpus{share}"
            trainer = Where(ONE_EPOCH, run, pool=pool, gpus_per_model=share)
            trainer.train(progress=False)
            server, *workers = trainer.seen
            assert server["node"] == driver != gpu_node.node_id
            assert [w["node"] for w in workers] == [gpu_node.node_id] * 2  # the only node with GPUs
            assert all(len(w["gpus"]) == 1 for w in workers), workers
            assert len({w["gpus"][0] for w in workers}) == cards, (share, workers)  # 1 GPU: both on one card
            if not torch.cuda.is_available():
                assert {w["device"] for w in workers} == {"cpu"}
            assert_same_phi(trainer.phi, reference.phi)
            assert load_run_checkpoint(run)["epoch"] == 1  # written by the server, on the driver's node
    finally:
        remove_nodes(cluster, gpu_node)
        resources_settle({"CPU": 1, "GPU": 0})


# --- 2. a node dies mid-epoch -------------------------------------------------------------------

class KillsANode(Where):
    """Once the step-4 restore point of epoch 1 is on disk, kill every process of `victim`;
    `replacement` (resources of a node to add first, or None) stands in for an autoscaler
    bringing a new node."""

    cluster = victim = replacement = None
    placed: list = []
    added = None

    def _restore_point(self, write, after=None):
        super()._restore_point(write, after)
        if (self.epoch, self.step) == KILL_AT and not self.placed:
            ray.get(self._restore_points[-1])
            self.placed = ray.get([w.ready.remote() for w in self.workers])
            if self.replacement:
                self.added = add_node(self.cluster, **self.replacement)
            kill_node(self.cluster, self.victim)


@pytest.fixture(scope="module")
def reference_three(pool):
    return reference_of(THREE, pool)


def spread_run(cluster, pool, run, base=KillsANode, **extra):
    """A head with 1 CPU and a node with 2: of 3 workers of 1 CPU, one runs on the head."""
    victim = add_node(cluster, num_cpus=2)
    resources_settle({"CPU": 3})
    cls = type("Kills", (base,), {"cluster": cluster, "victim": victim, **extra})
    return cls(THREE, run, pool=pool, cpus_per_model=1.0), victim


@pytest.mark.slow
def test_node_dying_mid_epoch_its_workers_restart_on_another_node_and_the_run_matches(
        cluster, pool, reference_three, tmp_path):
    trainer, victim = spread_run(cluster, pool, tmp_path / "run", replacement={"num_cpus": 2})
    head = ray.get_runtime_context().get_node_id()
    try:
        trainer.train(progress=False)
        before = [w["node"] for w in trainer.placed]
        assert sorted(before) == sorted([head, victim.node_id, victim.node_id]), before
        assert trainer.recoveries == 1 and trainer.epoch == 2
        after = {w["index"]: w["node"] for w in trainer.seen[1:]}
        for m, node in enumerate(before):  # the dead node's workers were restarted on the new one
            assert after[m] == (trainer.added.node_id if node == victim.node_id else node)
        assert_same_phi(trainer.phi, reference_three.phi)
        assert strip(trainer.history) == strip(reference_three.history)
    finally:
        remove_nodes(cluster, victim, trainer.added)
        resources_settle({"CPU": 1})


class WaitsBriefly(KillsANode):
    def _await_actors(self, timeout_s=180.0):
        super()._await_actors(timeout_s=20.0)  # raycl waits 180 s for a node to come back


@pytest.mark.slow
def test_node_dying_with_no_room_left_stops_with_resume_and_the_resumed_run_matches(
        cluster, pool, reference_three, tmp_path):
    run = tmp_path / "run"
    trainer, victim = spread_run(cluster, pool, run, base=WaitsBriefly)
    back = None
    try:
        with pytest.raises(RayclError, match=r"did not come back within 20 s \(the population needs 3 CPU, "
                                             r"the cluster has 1: a node left\?\); resume the run with --resume"):
            trainer.train(progress=False)
        ckpt = load_run_checkpoint(run)
        assert (ckpt["epoch"], ckpt["step"]) == KILL_AT
        back = add_node(cluster, num_cpus=2)  # the node is back (or another one came)
        resources_settle({"CPU": 3})
        resumed = RayTrainer.resume(run, {"pool": pool})
        assert (resumed.epoch, resumed.step) == KILL_AT
        resumed.train(progress=False)
        assert_same_phi(resumed.phi, reference_three.phi)
        assert strip(resumed.history) == strip(reference_three.history)
    finally:
        remove_nodes(cluster, victim, back)
        resources_settle({"CPU": 1})


# --- 3. a Tune sweep losing a node ------------------------------------------------------------

def _ledger(exp) -> list[dict]:
    f = exp / "ledger.jsonl"
    return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []


def kill_when_a_trial_runs_there(cluster, node, exp, stop: threading.Event, seen: dict) -> None:
    """Kill `node` once a trial whose placement group lies on it has a checkpoint of an epoch
    but has not finished; seen["victims"]: those trials."""
    from raycl.sweeps.trial import rows_epoch

    while not stop.is_set():
        events = _ledger(exp)
        done = {e["trial"] for e in events if e["event"] == "done"}
        groups = {e["trial"]: e["placement_group"] for e in events if e["event"] == "placement"}
        table = ray.util.placement_group_table()
        there = {t for t, pg in groups.items() if t not in done and pg in table
                 and set(table[pg]["bundles_to_node_id"].values()) == {node.node_id}
                 and any(rows_epoch(d) >= 1 for d in exp.glob(f"{t}_*/checkpoint_*"))}
        if there:
            seen["victims"] = there
            kill_node(cluster, node)
            return
        time.sleep(0.3)


@pytest.mark.slow
def test_sweep_losing_a_node_retries_its_trials_and_keeps_every_row_once(cluster, tmp_path):
    """3 trials of 1 CPU (trial driver 0.5 + 2 models x 0.25, packed in one placement group) on
    a 1-CPU head and a 2-CPU node; the node dies while trials run there. Tune retries them
    (FailureConfig max_failures=1) from their last checkpoint on the head, and the sweep's
    table holds each trial's epochs once."""
    from raycl.sweeps.space import overtraining_settings
    from raycl.sweeps.tuning import SweepSpec, run_sweep

    import pandas as pd

    epochs = 3
    node = add_node(cluster, num_cpus=2)
    resources_settle({"CPU": 3})
    settings = overtraining_settings("tiny", {"i": [1, 2, 3], "h_cl": [3], "h_h": [5]}, source="digits")
    spec = SweepSpec("overtraining", settings, tmp_path / "sweep", epochs,
                     eval_every=epochs, eval_seeds=1, eval_lrs=(0.1,), driver_cpus=0.5, cpus_per_model=0.25)
    stop, seen = threading.Event(), {}
    killer = threading.Thread(target=kill_when_a_trial_runs_there, args=(cluster, node, spec.experiment, stop, seen))
    killer.start()
    try:
        summary = run_sweep(spec, address=cluster.address)  # this process stays connected
    finally:
        stop.set()
        killer.join()
        remove_nodes(cluster, node)
        resources_settle({"CPU": 1})
    assert seen.get("victims"), "the node was never killed while a trial ran there"
    assert (summary["trials"], summary["terminated"], summary["errored"]) == (3, 3, 0), summary
    events = _ledger(spec.experiment)
    done = [e["trial"] for e in events if e["event"] == "done"]
    assert len(done) == 3 and len(set(done)) == 3  # every trial finished exactly once
    for t in seen["victims"]:  # ... the ones on the dead node after a retry from their checkpoint
        starts = [e["from_epoch"] for e in events if e["event"] == "start" and e["trial"] == t]
        assert len(starts) >= 2 and starts[0] == 0 and starts[-1] >= 1, (t, starts)
    df = pd.read_parquet(tmp_path / "sweep" / "sweep.parquet")
    assert df["trial"].nunique() == 3
    assert all(sorted(g) == list(range(epochs + 1)) for _, g in df.groupby("trial")["epoch"])  # each epoch once
