"""`RayTrainer`: the population on Ray, with the reference trainer's interface and numbers.

One `SynapseWorker` actor per model, one `PhenotypeServer` actor for φ. The server drives
the steps: at step t it sends φ_t to the M workers, gathers their gradients and steps φ
(`PhenotypeServer.run`), so each step's two hops go server → worker → server and never
through the driver. The driver submits an epoch as a whole, one `run` call per stretch
between restore points, and waits (`ray.get`) only at the end of the epoch; Ray runs each
actor's calls in the order one caller submitted them and starts each once its inputs exist,
and the inputs order the driver's calls after the server's steps. Restore points
(checkpoints kept in the object store, and written to disk by the server when due) are taken
at every epoch boundary and every `checkpoint_steps` steps; when an actor dies, Ray restarts
it and the driver rolls every actor back to the last restore point that completed, then
carries on. The algorithm is deterministic given the checkpoint, so the result is the
uninterrupted run's.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from raycl import RayclError
from raycl.hyper.bookkeeping import PhenotypeProgress
from raycl.hyper.config import HyperConfig
from raycl.hyper.trainer import PopulationTrainer, fresh_checkpoint
from raycl.population.actors import PhenotypeServer, StalePosition, SynapseWorker

KEEP_RESTORE_POINTS = 4


def _causes(err: BaseException | None):
    """The error and what caused it, outermost first (a worker's error reaches the driver
    wrapped in the server's)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = getattr(err, "cause", None) or err.__cause__


def _recoverable(err: BaseException) -> bool:
    """An actor or its objects were lost (or a restarted actor refused a call): roll back."""
    from ray import exceptions as rex

    lost = (rex.RayActorError, rex.WorkerCrashedError, rex.ObjectLostError, rex.NodeDiedError,
            rex.LocalRayletDiedError, StalePosition)
    return any(isinstance(e, lost) for e in _causes(err))


def _user_error(err: BaseException) -> BaseException:
    """A RayclError raised inside an actor (a NaN gradient, say) reaches the user as itself."""
    from ray import exceptions as rex

    for e in _causes(err):
        if isinstance(e, RayclError) and not isinstance(e, rex.RayTaskError):
            return RayclError(str(e))
    return err


class RayTrainer(PopulationTrainer):
    def __init__(self, cfg: HyperConfig, out: str | Path | None = None, pool=None, *, gpus_per_model: float = 1.0,
                 cpus_per_model: float = 1.0, threads: int = 1, max_restarts: int = 3, max_recoveries: int | None = None,
                 fault: tuple | None = None, address: str | None = None, num_cpus: int | None = None):
        super().__init__(cfg, out, pool)
        self.options = {"gpus_per_model": gpus_per_model, "cpus_per_model": cpus_per_model, "threads": threads,
                        "max_restarts": max_restarts}
        self.ray_at = {"address": address, "num_cpus": num_cpus}  # where init_ray starts or joins Ray
        self.max_recoveries = max_recoveries if max_recoveries is not None else max(1, max_restarts) * cfg.population
        self.fault = fault  # test hook (model, epoch, step): that worker calls os._exit there, once
        self.recoveries = 0
        self.workers: list = []
        self.server = None
        self._state = fresh_checkpoint(cfg, self.theta0, self.phi0)  # where the actors start from
        self._restore_points: list = []  # ObjectRefs of checkpoints, oldest first
        self._inflight: list = []  # this attempt's refs, to let them settle before a rollback
        self._ctor_refs: tuple = ()

    # --- actors -----------------------------------------------------------------------------
    def _start(self) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from raycl.cluster import init_ray

        init_ray(**self.ray_at)
        o = self.options
        has_gpus = ray.cluster_resources().get("GPU", 0) > 0
        cfg = self.cfg.to_dict()
        # held for the actors' lifetime: Ray re-runs a restarted actor's constructor with them
        self._ctor_refs = pool, theta0, phi0 = ray.put(self.pool), ray.put(self.theta0), ray.put(self.phi0)
        self._gpus_each = o["gpus_per_model"] if has_gpus else 0
        worker_cls = ray.remote(SynapseWorker).options(
            num_cpus=o["cpus_per_model"], num_gpus=self._gpus_each,
            max_restarts=o["max_restarts"], max_task_retries=0)
        self.workers = [worker_cls.remote(cfg, m, pool, theta0, o["threads"], self.fault)
                        for m in range(self.cfg.population)]
        # the server writes the checkpoints: keep it on the driver's node, where the run folder is
        here = ray.get_runtime_context().get_node_id()
        self.server = ray.remote(PhenotypeServer).options(
            num_cpus=0, max_restarts=o["max_restarts"], max_task_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
        ).remote(cfg, theta0, phi0, str(self.run.path.resolve()) if self.run else None)
        self._push(ray.put(self._state))
        self._restore_points = [self._last_pushed]

    def _push(self, ckpt_ref) -> None:
        """Bring every actor to the checkpoint behind ckpt_ref (one object all of them read)."""
        import ray

        ray.get([self.server.load.remote(ckpt_ref)] + [w.load.remote(ckpt_ref) for w in self.workers])
        self._last_pushed = ckpt_ref

    def _stop(self, completed: bool) -> None:
        """Keep the final state here (the last epoch boundary's checkpoint, written to disk when
        due) and give the actors' resources back."""
        import ray

        if self.server is None:
            return
        try:
            if completed and self._restore_points:
                self._state = ray.get(self._restore_points[-1])
        finally:
            for a in [self.server, *self.workers]:
                ray.kill(a)
            self.server, self.workers, self._restore_points, self._inflight = None, [], [], []
            self._ctor_refs = ()

    @property
    def phi(self):
        import ray

        return ray.get(self.server.phi.remote()) if self.server is not None else self._state["server"]["phi"]

    # --- checkpoints --------------------------------------------------------------------------
    def _snapshot_async(self, write: bool, after=None):
        """Submit a checkpoint at the current (epoch, step), after the `after` ref when given;
        returns its ObjectRef."""
        e, s = self.epoch, self.step
        snaps = [w.snapshot.remote(e, s, after) for w in self.workers]
        meta = {"epoch": e, "step": s, "history": list(self.history), "provenance": self.provenance}
        return self.server.checkpoint.remote(meta, write and self.run is not None, *snaps)

    def _restore_point(self, write: bool, after=None) -> None:
        ref = self._snapshot_async(write, after)
        self._restore_points = (self._restore_points + [ref])[-KEEP_RESTORE_POINTS:]
        self._inflight.append(ref)

    def checkpoint(self) -> dict:
        import ray

        return ray.get(self._snapshot_async(write=False)) if self.server is not None else dict(self._state)

    def _write_checkpoint(self) -> None:
        import ray

        if self.server is None:
            from raycl.hyper.trainer import CHECKPOINT
            from raycl.runio import torch_save

            torch_save(self.run.path / CHECKPOINT, self._state)
        else:
            ray.get(self._snapshot_async(write=True))

    def _load(self, ckpt: dict) -> None:
        self._state = ckpt
        if self.server is not None:
            import ray

            self._push(ray.put(ckpt))
            self._restore_points = [self._last_pushed]

    # --- the outer loop -------------------------------------------------------------------------
    def train(self, epochs: int | None = None, progress: bool = True) -> list[dict]:
        """Start the actors from the current state, train, keep the final state, stop them
        (inside `with trainer.started():` they stay up between calls)."""
        with self.started():
            return super().train(epochs, progress)

    @contextlib.contextmanager
    def started(self):
        """The actors up for the block (started here unless they already are), then stopped,
        keeping the final state; a bench that takes turns with other trainers holds them so."""
        if self.server is not None:
            yield self
            return
        self._start()
        completed = False
        try:
            yield self
            completed = True
        finally:
            self._stop(completed)

    def _epoch_done(self, save: bool) -> None:
        self._restore_point(write=save)  # every epoch boundary is a restore point
        if save:
            self._write_tables()

    def run_epoch(self) -> list[dict]:
        while True:
            try:
                return self._attempt_epoch()
            except Exception as err:  # noqa: BLE001 - sorted below
                if not _recoverable(err):
                    raise _user_error(err) from None
                self._recover(err)

    def _attempt_epoch(self) -> list[dict]:
        import ray

        e, s0, n, every = self.epoch, self.step, self.n_steps, self.cfg.checkpoint_steps
        t0 = time.perf_counter()
        if s0 == 0:  # with a learned θ0 every model starts the epoch from the server's
            theta0 = self.server.theta0.remote() if "theta0" in self.cfg.learn else None
            after = [w.begin_epoch.remote(e, theta0) for w in self.workers]
        else:
            after = []
        self._inflight = [*after, self.server.begin.remote(e, s0)]
        # one server.run per stretch between restore points (every checkpoint_steps steps)
        stops = [t for t in range(s0 + 1, n) if every and t % every == 0] + [n]
        start = s0
        for stop in stops:
            phi = self.server.run.remote(e, start, stop, self.workers, *after)
            self._inflight.append(phi)
            if stop < n:  # the workers' snapshots wait for the stretch; the next run waits for them
                self.step = stop
                self._restore_point(write=True, after=phi)
            start, after = stop, []
        reports = [w.end_epoch.remote(phi, e) for w in self.workers]
        phenotype = self.server.end_epoch.remote(e)
        self._inflight += [*reports, phenotype]
        *reports, phenotype = ray.get([*reports, phenotype])
        self._inflight = []
        self.epoch, self.step = e + 1, 0
        phenotype = PhenotypeProgress.from_state(phenotype)
        self.set_trace(reports, phenotype)
        return self.epoch_rows(reports, phenotype.grad_norm_sum, time.perf_counter() - t0)

    def _recover(self, err: BaseException) -> None:
        """Wait until nothing of the failed attempt runs any more and the actors are back, then
        roll every actor back to the newest restore point that completed."""
        import ray

        self.recoveries += 1
        if self.recoveries > self.max_recoveries:
            raise RayclError(f"gave up after {self.max_recoveries} recoveries from lost actors (last: {err}); "
                             "check the Ray logs for why workers die (memory?) or raise --max-restarts") from None
        if self._inflight:
            ray.wait(self._inflight, num_returns=len(self._inflight), timeout=300)
        self._await_actors()
        for ref in reversed(self._restore_points):
            try:
                ckpt = ray.get(ref)
            except Exception:  # noqa: BLE001 - that restore point did not complete
                continue
            self._push(ref)
            self.epoch, self.step, self.history = ckpt["epoch"], ckpt["step"], list(ckpt["history"])
            self._restore_points = self._restore_points[: self._restore_points.index(ref) + 1]
            self._inflight = []
            return
        raise RayclError("an actor died and no restore point survived; resume from the run folder with --resume")

    def _await_actors(self, timeout_s: float = 180.0) -> None:
        """Wait until every actor answers again (Ray restarts the dead ones)."""
        import ray
        from ray import exceptions as rex

        deadline = time.monotonic() + timeout_s
        for a in [self.server, *self.workers]:
            while True:
                try:
                    ray.get(a.ready.remote(), timeout=max(1.0, deadline - time.monotonic()))
                    break
                except (rex.RayActorError, rex.GetTimeoutError):
                    # a call that reached the old incarnation fails too; only the GCS knows for sure
                    if _dead_for_good(a):
                        raise RayclError("an actor died for good (its restarts are used up); "
                                         "resume the run with --resume") from None
                if time.monotonic() > deadline:
                    raise RayclError(f"restarted actors did not come back within {timeout_s:.0f} s{self._shortfall()}; "
                                     "resume the run with --resume")
                time.sleep(0.2)

    def _shortfall(self) -> str:
        """Why restarted workers may wait for ever: the cluster (a node died?) can no longer hold them."""
        import ray

        have, m = ray.cluster_resources(), self.cfg.population
        need = {"CPU": m * self.options["cpus_per_model"], "GPU": m * self._gpus_each}
        short = [f"{need[k]:g} {k}, the cluster has {have.get(k, 0):g}" for k in need if need[k] > have.get(k, 0)]
        return f" (the population needs {'; '.join(short)}: a node left?)" if short else ""


def _dead_for_good(actor) -> bool:
    """DEAD in the GCS actor table (RESTARTING and ALIVE are not). Ray's own debugging accessor."""
    try:
        from ray._private.state import actors

        return actors(actor_id=actor._actor_id.hex()).get("State") == "DEAD"
    except Exception:  # noqa: BLE001 - the accessor moved: fall back to the deadline
        return False
