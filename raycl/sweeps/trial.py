"""One Tune trial = one whole population hyper-trained with one setting.

The trial reports after every outer epoch: the population's memory and generalization on
its own streams, and (every `eval_every` epochs, before training and at the end) a quick
deployment of the current φ through raycl.hyper.evaluate. Every report carries a
checkpoint (the trainer's state and the trial's rows so far), so a trial restored by
Tuner.restore or exploited by PBT goes on from there.

With the Ray backend the population's actors are created inside the trial; Tune schedules
the trial with `placement_group_capture_child_tasks`, so the SynapseWorkers (which ask for
`cpus_per_model` / `gpus_per_model` and give no scheduling strategy) land in the trial's
placement group, one bundle each. The PhenotypeServer asks for no resources (0 CPU, pinned
to the driver's node), so it needs no bundle.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path

CHECKPOINT = "checkpoint.pt"
ROWS = "rows.json"
TRAIN_METRICS = ("memory", "generalization", "task_loss", "hyper_loss", "phi_grad_norm", "seconds")


def trainer_class(backend: str):
    if backend == "ray":
        from raycl.population.trainer import RayTrainer

        return RayTrainer
    from raycl.hyper.trainer import ReferenceTrainer

    return ReferenceTrainer


def reporting(cls, on_epoch):
    """`cls` with `on_epoch(trainer)` called after each outer epoch, once the backend has
    taken its own epoch-boundary restore point (PopulationTrainer._epoch_done)."""

    class Reporting(cls):
        def _epoch_done(self, save: bool) -> None:
            super()._epoch_done(save)
            on_epoch(self)

    Reporting.__name__ = f"Reporting{cls.__name__}"
    return Reporting


class QuickDeploy:
    """Deploy the current φ on d tasks over sequences of each set (meta-train, meta-test,
    meta-eval) with raycl deploy's selection: each metric at the rate chosen for it on
    meta-train sequences."""

    def __init__(self, cfg, seeds: int = 5, lrs=None, eval_source: str = "digits", eval_root=None):
        from raycl.hyper.config import DEFAULT_LRS

        from raycl.hyper.evaluate import deployment_sets

        self.cfg, self.seeds, self.lrs = cfg, seeds, tuple(lrs or DEFAULT_LRS)
        self.sets = deployment_sets(cfg, eval_source, eval_root)

    def __call__(self, model, theta0, phi) -> dict:
        from raycl.hyper.evaluate import Contender, compare, summarize

        c = Contender("hyper-trained", model, theta0, phi)
        rows, chosen = compare([c], self.sets, self.cfg, self.cfg.d, self.seeds, self.lrs, progress=False)
        summary = summarize(rows, chosen)["hyper-trained"]
        out = {"lr": summary["lr"]}
        for s in self.sets:
            for k in ("memory", "generalization"):
                out[f"{s}/{k}"] = summary[s][k]["mean"]
        return out


def deploy_metric(column: str) -> str:
    """Table column deploy_{set}_{metric} (or deploy_lr) -> Tune metric deploy/{set}/{metric}."""
    return "deploy/" + column[len("deploy_"):].replace("_", "/", 1)


def _mean(rows: list[dict], key: str) -> float:
    v = [r[key] for r in rows if r[key] is not None and not math.isnan(r[key])]
    return sum(v) / len(v) if v else float("nan")


def _ledger(path: str | None, **event) -> None:
    """One JSON line per trial start / finish in the sweep's ledger (an audit of resumes)."""
    if not path or not Path(path).parent.exists():
        return
    line = (json.dumps({"time": time.time(), **event}) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)  # one write of a short line: appends do not interleave
    finally:
        os.close(fd)


def rows_epoch(d: Path) -> int:
    try:
        rows = json.loads((d / ROWS).read_text())
        return rows[-1]["epoch"] if rows and (d / CHECKPOINT).exists() else -1
    except (OSError, ValueError, KeyError):
        return -1


def resume_point(given, trial_dir: Path | None) -> tuple[dict | None, list[dict]]:
    """The state to go on from: Tune's checkpoint for this trial, or a newer one in the
    trial's folder that Tune had not yet recorded when its driver was killed (it snapshots
    its experiment state every few seconds, the trial checkpoints every epoch)."""
    from raycl import RayclError
    from raycl.runio import UnsafeCheckpointError, torch_load

    def load(d: Path):
        try:
            return torch_load(d / CHECKPOINT), json.loads((d / ROWS).read_text())
        except UnsafeCheckpointError:  # pickled objects: not a cut-short checkpoint, and never skipped quietly
            raise
        except (RayclError, OSError, ValueError):  # a checkpoint cut short by the kill
            return None

    found = []
    if given is not None:
        with given.as_directory() as d:
            got = load(Path(d))
        if got is not None:
            found.append(got)
    if trial_dir:
        have = max((s["epoch"] for s, _ in found), default=-1)
        for d in sorted(Path(trial_dir).glob("checkpoint_*"), key=rows_epoch, reverse=True):
            if rows_epoch(d) <= have:
                break
            got = load(d)
            if got is not None:
                found.append(got)
                break
    if not found:
        return None, []
    return max(found, key=lambda f: f[0]["epoch"])


def placement() -> dict:
    """CPUs of this trial's placement group: reserved, and still free once the population's
    actors run (0 when every model's actor took its bundle)."""
    import ray

    pg = ray.util.get_current_placement_group()
    if pg is None:
        return {}
    key = f"CPU_group_{pg.id.hex()}"
    return {"placement_group": pg.id.hex(), "cpu_reserved": ray.cluster_resources().get(key, 0.0),
            "cpu_free": ray.available_resources().get(key, 0.0)}


def hyper_config(config: dict):
    """The trial's HyperConfig: the setting, with PBT's mutated learning rates on top."""
    from raycl.hyper.config import HyperConfig

    h = dict(config["setting"]["hyper"])
    for k in ("lr_phenotype", "lr_synapses"):
        if config.get(k) is not None:
            h[k] = float(config[k])
    h["seed"] = h["seed"] + int(config.get("seed", 0))
    return HyperConfig.from_dict(h)


def population_trial(config: dict) -> None:
    """The Tune function trainable."""
    import torch
    from ray import tune

    from raycl.runio import torch_load, torch_save, write_json

    torch.set_num_threads(int(config.get("threads", 1)))
    cfg = hyper_config(config)
    ctx = tune.get_context()
    trial_id = ctx.get_trial_id()
    run = config["run"]
    options = {}
    if run["backend"] == "ray":
        options = {"cpus_per_model": run["cpus_per_model"], "gpus_per_model": run["gpus_per_model"],
                   "threads": int(config.get("threads", 1))}

    # the trial's folder in the sweep's storage (its checkpoints); get_trial_dir() is a staging copy
    stored = sorted(Path(config["experiment"]).glob(f"{trial_id}_*")) if run.get("disk_fallback") else []
    state, rows = resume_point(tune.get_checkpoint(), stored[0] if stored else None)
    for r in rows:  # PBT: rows inherited from the trial whose checkpoint this one took
        r.setdefault("lineage", r["trial"])
        r["trial"] = trial_id
    if state is not None:
        # PBT may have changed γ: the optimizer state keeps the old one otherwise
        for g in state["server"]["opt"]["param_groups"]:
            g["lr"] = cfg.lr_phenotype
    _ledger(config.get("ledger"), trial=trial_id, event="start", setting=config["setting"]["name"],
            from_epoch=state["epoch"] if state else 0)

    evaluate = QuickDeploy(cfg, run["eval_seeds"], run["eval_lrs"], run["eval_source"], run["eval_root"])
    every = max(1, int(run["eval_every"]))
    last_eval: dict = {}
    audited: list = []
    n_params = None
    meta_train_data = None  # the fingerprint of the arrays this trial meta-trains on (raycl.provenance)

    def base_row(epoch: int) -> dict:
        return {"trial": trial_id, "lineage": trial_id, "setting": config["setting"]["name"],
                "seed": int(config.get("seed", 0)), "epoch": epoch, "params": n_params,
                "lr_phenotype": cfg.lr_phenotype, "lr_synapses": cfg.lr_synapses, "meta_train_data": meta_train_data}

    def remember(row: dict) -> None:
        """Every report carries the latest deployment (schedulers need a metric each time)."""
        last_eval.clear()
        last_eval.update({deploy_metric(k): v for k, v in row.items() if k.startswith("deploy_")},
                         **{"deploy/epoch": row["epoch"]})

    def deploy_now(trainer, row: dict) -> None:
        row.update({"deploy_" + k.replace("/", "_"): v
                    for k, v in evaluate(trainer.model, trainer.theta0, trainer.phi).items()})
        remember(row)

    def on_epoch(trainer) -> None:
        e = trainer.epoch
        if not audited:  # once per run of this trial: where its actors went
            audited.append(e)
            _ledger(config.get("ledger"), trial=trial_id, event="placement", epoch=e, backend=run["backend"],
                    **placement())
        epoch_rows = [r for r in trainer.history if r["epoch"] == e]
        row = {**base_row(e), **{k: _mean(epoch_rows, k) for k in TRAIN_METRICS}}
        if e % every == 0 or e == cfg.epochs:
            deploy_now(trainer, row)
        rows.append(row)
        metrics = {k: row[k] for k in TRAIN_METRICS}
        metrics.update(epoch=e, **last_eval)
        with tempfile.TemporaryDirectory(prefix="raycl-trial-") as d:
            torch_save(Path(d) / CHECKPOINT, trainer.checkpoint())
            write_json(Path(d) / ROWS, rows)
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(d))

    trainer = reporting(trainer_class(run["backend"]), on_epoch)(cfg, None, **options)
    n_params = sum(t.numel() for t in trainer.theta0.values()) + sum(t.numel() for t in trainer.phi0.values())
    meta_train_data = trainer.provenance["data"].get("meta-train")
    if state is not None:
        trainer.restore(state)
        deployed = [r for r in rows if "deploy_lr" in r]
        if deployed:
            remember(deployed[-1])
    else:
        # epoch 0: the random initial phenotype, the bar every setting starts from
        rows.append(base_row(0))
        deploy_now(trainer, rows[-1])
    if trainer.epoch < cfg.epochs:
        trainer.train(progress=False)
    _ledger(config.get("ledger"), trial=trial_id, event="done", setting=config["setting"]["name"],
            epochs=trainer.epoch)
