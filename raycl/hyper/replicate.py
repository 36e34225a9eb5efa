"""Independent hyper-trainings: the unit of replication for any claim about a phenotype.

`raycl hyper-train --seeds N --seed S` trains N phenotypes from seeds S..S+N-1, each from its
own θ0/φ0 and its own hyper-streams, as Ray tasks side by side (or one after another with
--no-ray), into RUN/seed_S/ (a full run folder each). RUN/seeds.json lists them; `raycl
deploy RUN` deploys every one and reports the spread across phenotypes.
"""

from __future__ import annotations

import time
from pathlib import Path

from raycl import RayclError
from raycl.hyper.config import HyperConfig
from raycl.runio import read_json, write_json

SEEDS_FILE = "seeds.json"


def seed_dir(run: Path, seed: int) -> Path:
    return Path(run) / f"seed_{seed}"


def train_one(out: str, cfg_dict: dict, resume: bool) -> dict:
    """One hyper-training (fresh, or continued from its checkpoint); runs in a Ray task."""
    from raycl.hyper.trainer import CHECKPOINT, ReferenceTrainer, load_run_checkpoint, resume_config

    t0, c0 = time.perf_counter(), time.process_time()
    cfg = HyperConfig.from_dict(cfg_dict)
    trainer = ReferenceTrainer(cfg, out)
    if resume and (Path(out) / CHECKPOINT).exists():
        ckpt = load_run_checkpoint(out)
        if ckpt["epoch"] >= cfg.epochs:
            return {"seed": cfg.seed, "epochs": ckpt["epoch"], "skipped": True}
        trainer = ReferenceTrainer(resume_config(ckpt, {"epochs": cfg.epochs}, out), out)
        trainer.restore(ckpt)
    trainer.train(progress=False)
    last = [r for r in trainer.history if r["epoch"] == trainer.epoch]
    return {"seed": cfg.seed, "epochs": trainer.epoch, "skipped": False,
            "wall_seconds": time.perf_counter() - t0, "cpu_seconds": time.process_time() - c0,
            **{k: sum(r[k] for r in last) / len(last) for k in ("hyper_loss", "memory", "generalization")}}


def train_seeds(run: Path, cfg: HyperConfig, seeds: list[int], runner, resume: bool = False) -> dict:
    handles = [runner.submit(train_one, str(seed_dir(run, s)), cfg.with_(seed=s).to_dict(), resume) for s in seeds]
    done = runner.gather(handles, desc="hyper-trainings")
    summary = {"seeds": seeds, "config": cfg.to_dict(), "runs": done}
    write_json(Path(run) / SEEDS_FILE, summary)
    return summary


def replicated_runs(run: Path) -> list[Path] | None:
    """The seed folders of a replicated run (RUN/seeds.json), or None for a single run."""
    path = Path(run) / SEEDS_FILE
    if not path.exists():
        return None
    seeds = read_json(path).get("seeds")
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
        raise RayclError(f"{path} does not list integer seeds; rerun raycl hyper-train --seeds N --out {run}")
    return [seed_dir(run, s) for s in seeds]
