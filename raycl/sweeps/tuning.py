"""The Ray Tune side of a sweep: resources per trial (a placement group), schedulers, the
Tuner (new or restored), and a tqdm bar over every trial's epochs."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from raycl import RayclError
from raycl.sweeps.space import Setting, bundles

EXPERIMENT = "tune"  # the Tune experiment folder under the sweep's --out
LEDGER = "ledger.jsonl"


@dataclass
class SweepSpec:
    kind: str  # overtraining | scale
    settings: list[Setting]
    out: Path
    epochs: int
    seeds: int = 1
    backend: str = "ray"  # ray | reference
    driver_cpus: float = 0.5
    cpus_per_model: float = 0.25
    gpus_per_model: float | None = None  # None: 1 per model when the cluster has GPUs
    threads: int = 1
    eval_every: int = 5
    eval_seeds: int = 5
    eval_lrs: tuple = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)  # raycl.hyper.deploy.DEFAULT_LRS
    eval_source: str = "digits"
    eval_root: str | None = None
    scheduler: str = "none"  # none | asha | pbt
    metric: str = "memory"
    samples: int = 4  # PBT: trials in the PBT population
    max_concurrent: int = 0
    grace_period: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def experiment(self) -> Path:
        return self.out.resolve() / EXPERIMENT


def _pbt_check(spec: SweepSpec) -> None:
    if spec.scheduler == "pbt" and len(spec.settings) != 1:
        raise RayclError("PBT copies φ between trials, so they must share one architecture: give one setting "
                         "(e.g. `--setting 2` for overtraining, one `--params` for scale) with --scheduler pbt")


def param_space(spec: SweepSpec, gpus_per_model: float) -> dict:
    from ray import tune

    _pbt_check(spec)
    settings = [{"name": s.name, "hyper": {**s.hyper, "epochs": spec.epochs}} for s in spec.settings]
    space = {
        "setting": tune.grid_search(settings),
        "threads": spec.threads,
        "ledger": str(spec.experiment / LEDGER),
        "experiment": str(spec.experiment),
        "run": {"backend": spec.backend, "cpus_per_model": spec.cpus_per_model, "gpus_per_model": gpus_per_model,
                "eval_every": spec.eval_every, "eval_seeds": spec.eval_seeds, "eval_lrs": list(spec.eval_lrs),
                "eval_source": spec.eval_source, "eval_root": spec.eval_root,
                # PBT hands a trial another trial's checkpoint on purpose: never prefer its own
                "disk_fallback": spec.scheduler != "pbt"},
    }
    if spec.scheduler == "pbt":
        space["seed"] = tune.randint(0, 1000)
        space["lr_phenotype"] = tune.loguniform(1e-4, 1e-2)
    else:
        space["seed"] = tune.grid_search(list(range(spec.seeds)))
    return space


def metric_mode(spec: SweepSpec) -> str:
    """Losses, and every score of the unsupervised auto-encoder (an MSE), are minimised."""
    unsupervised = spec.settings[0].hyper["mode"] == "unsupervised"
    return "min" if spec.metric in ("task_loss", "hyper_loss", "seconds") or unsupervised else "max"


def trial_name(trial) -> str:
    """Short trial folders: the id and the setting (Tune's default spells out the whole config)."""
    setting = trial.config["setting"]["name"].replace(" ", "_").replace("=", "")
    return f"{trial.trial_id}_{setting}_seed{trial.config.get('seed', 0)}"


def trial_resources(spec: SweepSpec, gpus_per_model: float):
    from ray import tune

    def resources(config: dict):
        b = bundles(config["setting"]["hyper"], spec.backend, spec.driver_cpus, spec.cpus_per_model, gpus_per_model)
        return tune.PlacementGroupFactory(b, strategy="PACK")

    return resources


def scheduler(spec: SweepSpec):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining

    if spec.scheduler == "asha":
        return ASHAScheduler(time_attr="training_iteration", max_t=spec.epochs,
                             grace_period=min(spec.grace_period, spec.epochs), reduction_factor=2)
    if spec.scheduler == "pbt":
        return PopulationBasedTraining(
            time_attr="training_iteration", perturbation_interval=max(1, spec.eval_every),
            hyperparam_mutations={"lr_phenotype": tune.loguniform(1e-4, 1e-2),
                                  "lr_synapses": tune.loguniform(1e-4, 1e-1)})
    if spec.scheduler != "none":
        raise RayclError(f"unknown scheduler '{spec.scheduler}'; choose none, asha or pbt")
    return None


def epoch_bar(total: int, initial: int = 0):
    """A Tune callback drawing a tqdm bar over all trials' epochs. Tune pickles its run
    config (tuner.pkl), so the bar itself is made on first use and never pickled."""
    from ray.tune import Callback
    from tqdm.auto import tqdm

    class EpochBar(Callback):
        def __init__(self):
            self.bar = None

        def __getstate__(self):
            return {"bar": None}

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if self.bar is None:
                self.bar = tqdm(total=total, initial=initial, desc="sweep", unit="epoch")
            self.bar.update(1)
            self.bar.set_postfix(trial=trial.trial_id, memory=f"{result.get('memory', float('nan')):.2f}")

        def on_experiment_end(self, trials, **info):
            if self.bar is not None:
                self.bar.close()

    return EpochBar()


def _gpus_per_model(spec: SweepSpec) -> float:
    import ray

    if spec.gpus_per_model is not None:
        return spec.gpus_per_model
    return 1.0 if ray.cluster_resources().get("GPU", 0) > 0 else 0.0


# Tuner.restore unpickles the experiment's tuner.pkl and its trials' state, and unpickling can
# run code: raycl restores only an experiment folder it created itself on this machine. It marks
# each new one with MARKER, signed (HMAC-SHA256) with a secret key kept in the raycl cache
# folder ($RAYCL_CACHE or ~/.cache/raycl, mode 0600), so a folder copied from elsewhere, or a
# marker written by hand, does not pass.
MARKER = ".raycl-sweep.json"
KEY_FILE = "sweep-key"


def _sweep_key() -> bytes:
    """This machine's secret for sweep markers, made on first use."""
    import secrets
    import tempfile

    from raycl.data.offline import cache_dir

    path = cache_dir() / KEY_FILE

    def read() -> bytes:
        try:
            key = bytes.fromhex(path.read_text().strip())
        except ValueError:
            key = b""
        if len(key) != 32:
            raise RayclError(f"{path} is not a raycl sweep key; delete it (sweeps marked with it can then no "
                             "longer be resumed: start them again in a new --out)")
        return key

    if path.exists():
        return read()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{KEY_FILE}.")  # mode 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        os.link(tmp, path)  # atomic, and never replaces a key another process made first
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return read()


def _signature(key: bytes, marker: dict) -> str:
    import hashlib
    import hmac

    return hmac.new(key, f"raycl-sweep|{marker['nonce']}|{marker['created']}".encode(), hashlib.sha256).hexdigest()


def mark_experiment(folder: Path) -> Path:
    """Record that raycl created this Tune experiment folder on this machine."""
    import secrets
    import time

    from raycl import __version__
    from raycl.runio import write_json

    marker = {"raycl": __version__, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "nonce": secrets.token_hex(16)}
    marker["hmac"] = _signature(_sweep_key(), marker)
    folder.mkdir(parents=True, exist_ok=True)
    return write_json(folder / MARKER, marker)


def check_restorable(folder: Path) -> None:
    """Raise unless raycl created `folder` on this machine (its marker verifies): only then may
    Tuner.restore unpickle the tuner.pkl in it."""
    import hmac
    import json

    why = None
    try:
        marker = json.loads((folder / MARKER).read_text())
        if not hmac.compare_digest(str(marker["hmac"]), _signature(_sweep_key(), marker)):
            why = f"its {MARKER} was not signed with this machine's sweep key"
    except FileNotFoundError:
        why = f"it has no {MARKER}"
    except (OSError, ValueError, KeyError, TypeError) as e:
        why = f"its {MARKER} is unreadable ({type(e).__name__})"
    if why:
        raise RayclError(
            f"{folder} holds a Tune experiment that raycl did not create on this machine ({why}); resuming it would "
            "run Tuner.restore, which unpickles its tuner.pkl and trial state, and unpickling can run code. "
            "Start a new sweep with a new --out (resume only sweep folders you made yourself)")


def tuner(spec: SweepSpec, done_epochs: int = 0):
    """A new Tuner, or the restored one when spec.experiment holds a sweep (a killed driver
    resumes: finished trials stay finished, unfinished ones go on from their last checkpoint,
    errored ones are retried from theirs)."""
    from ray import tune
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, TBXLoggerCallback

    from raycl.sweeps.trial import population_trial

    gpus = _gpus_per_model(spec)
    trainable = tune.with_resources(population_trial, trial_resources(spec, gpus))
    total = len(spec.settings) * (spec.samples if spec.scheduler == "pbt" else spec.seeds) * spec.epochs
    callbacks = [CSVLoggerCallback(), JsonLoggerCallback(), TBXLoggerCallback(), epoch_bar(total, done_epochs)]
    if tune.Tuner.can_restore(str(spec.experiment)):  # only looks for tuner.pkl
        check_restorable(spec.experiment)
        t = tune.Tuner.restore(str(spec.experiment), trainable=trainable, resume_unfinished=True,
                               resume_errored=True)
        # the restored run config is the pickled one: give it a bar that counts from here
        t._local_tuner._run_config.callbacks = callbacks
        return t, True
    run_config = tune.RunConfig(
        name=EXPERIMENT, storage_path=str(spec.out.resolve()), callbacks=callbacks, verbose=0,
        # PBT restores other trials' checkpoints: keep enough that they are still there
        checkpoint_config=tune.CheckpointConfig(num_to_keep=4 if spec.scheduler == "pbt" else 2),
        failure_config=tune.FailureConfig(max_failures=1),
    )
    tune_config = tune.TuneConfig(metric=spec.metric, mode=metric_mode(spec), scheduler=scheduler(spec),
                                  num_samples=spec.samples if spec.scheduler == "pbt" else 1,
                                  max_concurrent_trials=spec.max_concurrent or None,
                                  trial_name_creator=trial_name, trial_dirname_creator=trial_name)
    space = param_space(spec, gpus)
    mark_experiment(spec.experiment)  # before Tune writes tuner.pkl: what lets a rerun resume
    return tune.Tuner(trainable, param_space=space, tune_config=tune_config, run_config=run_config), False


def provenance(table: Path) -> dict:
    """The sweep's provenance: each trial's meta-training data fingerprint (the column its rows
    carry; the trial checkpoints hold the full record) and this driver's environment."""
    from raycl.provenance import environment
    from raycl.runio import read_parquet

    df = read_parquet(table)  # held by results() until the summary is written
    data = {}
    if "meta_train_data" in df.columns:
        for trial, fp in df.dropna(subset=["meta_train_data"]).groupby("trial")["meta_train_data"].last().items():
            data[f"{trial}/meta-train"] = str(fp)
    return {"data": data, "environment": environment()}


def run_sweep(spec: SweepSpec, address: str | None = None, num_cpus: float | None = None,
              ray_temp_dir: str | None = None) -> dict:
    """Run (or resume) the sweep, then write its table, figures and summary.json."""
    import ray

    from raycl.cluster import init_ray
    from raycl.runio import results, write_json
    from raycl.sweeps.results import collect, write_figures, write_table

    spec.out.mkdir(parents=True, exist_ok=True)
    # Tune warns each time num_to_keep forces an experiment snapshot; with per-epoch
    # checkpoints of small populations that is every few seconds, and wanted
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # snapshot the experiment state every 2 s (Tune's default: >= 10 s), so a killed driver
    # loses little: the state is a few kB per trial
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    init_ray(address=address, num_cpus=num_cpus, **({"_temp_dir": ray_temp_dir} if ray_temp_dir else {}))
    try:
        done = sum(1 for r in collect(spec.experiment) if r["epoch"] > 0) if spec.experiment.exists() else 0
        t, restored = tuner(spec, done)
        grid = t.fit()
    finally:
        if address is None and not os.environ.get("RAY_ADDRESS"):
            ray.shutdown()  # the local Ray this sweep started
    unfinished = len(grid) - grid.num_terminated - grid.num_errors
    with results(spec.out):  # the table, figures and summary.json together, summary last
        table = write_table(spec.experiment, spec.out)
        figures = write_figures(table, spec.out, spec.kind)
        summary = {
            "kind": spec.kind, "experiment": str(spec.experiment), "table": str(table),
            "figures": [str(f) for f in figures], "resumed": restored, "trials": len(grid),
            "terminated": grid.num_terminated, "errored": grid.num_errors, "unfinished": unfinished,
            "errors": [str(e).splitlines()[0] for e in grid.errors],
            "provenance": provenance(table),
        }
        write_json(spec.out / "summary.json", summary)
    return summary
