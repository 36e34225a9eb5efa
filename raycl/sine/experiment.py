"""`raycl sine`: meta-train a phenotype on continual sine regression, deploy it frozen on
unseen functions against random phenotypes, and write the run folder (Chapter 5)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from raycl.dan import DANNetwork, load_into, snapshot, split_parameters
from raycl.dan.checkpoint import save_phenotype
from raycl.provenance import environment, fingerprint
from raycl.runio import RunDir, save_figure, write_json, write_parquet
from raycl.stats import describe, paired, what
from raycl.sine import plots
from raycl.sine.config import SineConfig
from raycl.sine.meta import SineLearner, deploy, meta_train
from raycl.sine.names import VARIANTS
from raycl.sine.tasks import sample_function, sample_stream, whole_function_grid

ROW_KEYS = ("phase", "run", "variant", "epoch", "function", "after_task", "total_loss", "memory_loss", "task_loss")


def _row(**kw) -> dict:
    return {k: kw.get(k) for k in ROW_KEYS}


def meta_train_phenotype(
    cfg: SineConfig, epochs: int, init_seed: int, train_seed: int, ckdir: Path | None = None,
    ckpt_every: int = 0, name: str = "main", on_epoch=None,
) -> tuple[SineLearner, dict, list[dict]]:
    """Meta-train from the seeded θ0/φ0. Returns the learner (φ = φ*, θ = θ0), φ0 and one record
    per meta-epoch (whole-function, memory and mean task loss after the last sub-task).
    Checkpoints φ (with θ0) to `ckdir` every `ckpt_every` meta-epochs, each with the provenance
    of the targets meta-trained on so far; the learner's `provenance` is that of all of them."""
    from raycl.guard import DivergenceGuard

    learner = SineLearner.build(cfg, torch.Generator().manual_seed(init_seed))
    phi0 = snapshot(learner.phi)
    history: list[dict] = []
    data_hash = hashlib.sha256()  # every meta-training function's (x, y) sub-task samples, as drawn

    def trained_on() -> dict:
        """Provenance of the targets meta-trained on so far (provenance.fingerprint of the streams)."""
        return {"data": {"meta-train": data_hash.copy().hexdigest()[:16]}, "environment": environment()}

    # targets lie within [-0.8, 0.8], so predicting 0 costs at most 0.64: the guard's start
    guard = DivergenceGuard(f"meta-training MSE ({name})", "lower --lr-theta (or --lr-phi)", start=0.64)

    def hook(epoch: int, rec: dict) -> None:
        # before the checkpoint below, so a diverged φ never replaces the last good one
        guard.check(max(rec["total"][-1], rec["memory"][-1], float(np.mean(rec["task"]))), f"meta-epoch {epoch}")
        history.append({"epoch": epoch, "total": rec["total"][-1], "memory": rec["memory"][-1],
                        "task": float(np.mean(rec["task"]))})
        if ckdir is not None and ckpt_every and (epoch % ckpt_every == 0 or epoch == epochs):
            meta = dict(epoch=epoch, run=name, config=cfg.to_dict(),
                        memory_loss_last25=float(np.mean([h["memory"] for h in history[-25:]])),
                        provenance=trained_on())
            # θ is mid-function here: store the θ0 every function starts from
            save_phenotype(ckdir / "phenotype.pt", learner.model, learner.theta0, **meta)
            if epoch % ckpt_every == 0:
                save_phenotype(ckdir / f"phenotype_e{epoch:05d}.pt", learner.model, learner.theta0, **meta)
        if on_epoch is not None:
            on_epoch(epoch, history)

    learner.reset_theta()
    meta_train(learner, cfg, np.random.default_rng(train_seed), epochs, hook, data_hash=data_hash)
    learner.reset_theta()  # the checkpointed θ0 is the deployment start
    learner.provenance = trained_on()
    return learner, phi0, history


def compare_job(name: str, cfg: SineConfig, epochs: int, init_seed: int, train_seed: int, streams,
                ckdir: Path | None, ckpt_every: int) -> dict:
    """One meta-training of a Fig 5.4 / n_channels comparison and its deployment with φ* fixed
    (a Ray task: returns plain data)."""
    t0, c0 = time.perf_counter(), time.process_time()
    learner, _, history = meta_train_phenotype(cfg, epochs, init_seed, train_seed, ckdir, ckpt_every, name)
    recs = deploy(learner, snapshot(learner.phi), streams, lr_theta=cfg.deploy_lr_theta)
    return {"history": history, "deploy": recs, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0,
            "provenance": {"data": {**learner.provenance["data"], "deploy": fingerprint(streams)},
                           "environment": learner.provenance["environment"]}}


def seed_job(out: str | Path, cfg: SineConfig, seed: int, **kwargs) -> dict:
    """One independent repeat (a Ray task): meta-train this seed's phenotype from its own θ0/φ0,
    deploy it on this seed's unseen functions, write `out`; returns the run's summary."""
    return SineExperiment(out, cfg, seed=seed, progress=False, **kwargs)()


class SineExperiment:
    def __init__(
        self,
        out: str | Path,
        cfg: SineConfig,
        epochs: int = 300,
        deploy_functions: int = 25,
        seed: int = 0,
        variants=tuple(VARIANTS),
        compare=(),
        channels=(1, 5, 10, 20, 40),
        ckpt_every: int = 50,
        progress: bool = True,
        runner=None,
    ):
        self.run = RunDir(out)
        self.cfg, self.epochs, self.n_deploy, self.seed = cfg, int(epochs), int(deploy_functions), int(seed)
        self.variants, self.compare, self.channels = tuple(variants), tuple(compare), tuple(channels)
        self.ckpt_every, self.progress = int(ckpt_every), progress
        self.runner = runner  # runs the comparisons' meta-trainings (default: in this process)
        ss = np.random.SeedSequence(self.seed)
        self.init_seed, self.train_seed, self.deploy_seed, self.random_seed = (
            int(s.generate_state(1)[0]) for s in ss.spawn(4)
        )

    # -- pieces ---------------------------------------------------------------------------
    def _bar(self, total, desc):
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, disable=not self.progress, leave=False, dynamic_ncols=True)

    def deployment_streams(self, cfg: SineConfig):
        rng = np.random.default_rng(self.deploy_seed)
        fns = [sample_function(rng, cfg.filter) for _ in range(self.n_deploy)]
        streams = [sample_stream(fn, rng, cfg.n_subtasks, cfg.samples_per_task) for fn in fns]
        return fns, [(s, whole_function_grid(fn, cfg.grid_points)) for fn, s in zip(fns, streams)]

    def _ckdir(self, name: str) -> Path:
        return self.run.path / "checkpoints" / ("" if name == "main" else name.replace(":", "_"))

    def train_one(self, name: str, cfg: SineConfig) -> tuple[SineLearner, dict, list[dict]]:
        """Meta-train in this process from the run's seeded θ0/φ0 (progress bar), log it."""
        bar = self._bar(self.epochs, f"meta-train {name}")

        def on_epoch(epoch: int, history: list[dict]) -> None:
            bar.update(1)
            if epoch % 10 == 0:
                bar.set_postfix(memory=f"{np.mean([h['memory'] for h in history[-25:]]):.4f}")

        learner, phi0, history = meta_train_phenotype(cfg, self.epochs, self.init_seed, self.train_seed,
                                                      self._ckdir(name), self.ckpt_every, name, on_epoch)
        bar.close()
        self.log_meta(name, history)
        return learner, phi0, history

    def log_meta(self, name: str, history: list[dict]) -> None:
        for h in history:
            self.run.log(**_row(phase="meta", run=name, epoch=h["epoch"], total_loss=h["total"],
                                memory_loss=h["memory"], task_loss=h["task"]))
            self.run.scalar(f"meta/{name}/memory_loss", h["memory"], h["epoch"])
            self.run.scalar(f"meta/{name}/total_loss", h["total"], h["epoch"])
        self.run.flush()

    def deploy_variant(self, variant: str, learner: SineLearner, phi0: dict, cfg: SineConfig, streams, keep=False):
        plastic = variant.endswith("plastic")
        if variant.startswith("meta"):
            phi, target = snapshot(learner.phi), learner
        elif variant.startswith("random_unique"):
            target = self._random_unique(learner, cfg)
            phi = snapshot(target.phi)
        else:
            phi, target = phi0, learner
        phi_star = snapshot(learner.phi)
        recs = deploy(target, phi, streams, plastic=plastic, keep_predictions=keep, lr_theta=cfg.deploy_lr_theta)
        load_into(learner.phi, phi_star)
        return recs

    def _random_unique(self, learner: SineLearner, cfg: SineConfig) -> SineLearner:
        """A net2 model (one random phenotype per DAN) with the same θ0."""
        gen = torch.Generator().manual_seed(self.random_seed)
        net = DANNetwork(1, cfg.hidden, 1, cfg.n_channels, "net2", cfg.skips, "dan", cfg.phenotype_hidden,
                         cfg.phenotype_gain, generator=gen)
        theta, _ = split_parameters(net)
        load_into(theta, learner.theta0)
        return SineLearner(net, cfg.lr_theta, cfg.lr_phi, cfg.optimizer)

    def log_deploy(self, run: str, variant: str, recs: list[dict]) -> None:
        for f, rec in enumerate(recs):
            for t, total in enumerate(rec["total"]):
                self.run.log(**_row(phase="deploy", run=run, variant=variant, function=f, after_task=t,
                                    total_loss=total, memory_loss=rec["memory"][t - 1] if t else None,
                                    task_loss=rec["task"][t - 1] if t else None))
        means = np.mean([r["total"] for r in recs], axis=0)
        for t, m in enumerate(means):
            self.run.scalar(f"deploy/{run}/{variant}/total_loss", m, t)

    @staticmethod
    def deploy_stats(recs: list[dict]) -> dict:
        whole, seen = [r["total"][-1] for r in recs], [r["memory"][-1] for r in recs]
        return {
            "whole_function_mse": describe(whole),
            "seen_data_mse": describe(seen),
            "whole_function_mse_after_task": [float(v) for v in np.mean([r["total"] for r in recs], axis=0)],
            "per_function": {"whole_function_mse": [float(v) for v in whole],
                             "seen_data_mse": [float(v) for v in seen]},
        }

    # -- the whole run --------------------------------------------------------------------
    def _comparisons(self, cfg: SineConfig) -> dict[str, dict[str, SineConfig]]:
        out = {}
        if "sharing" in self.compare:
            out["sharing"] = {m: replace(cfg, sharing=m) for m in ("net0", "net1", "net2")}
        if "channels" in self.compare:
            out["channels"] = {str(c): replace(cfg, n_channels=int(c)) for c in self.channels}
        return out

    def __call__(self) -> dict:
        t_start, cpu_start = time.perf_counter(), time.process_time()
        cfg = self.cfg
        summary: dict = {
            "config": cfg.to_dict(), "epochs": self.epochs, "deploy_functions": self.n_deploy, "seed": self.seed,
            "threads": torch.get_num_threads(),
        }
        fns, streams = self.deployment_streams(cfg)
        # the comparisons' meta-trainings start first (as Ray tasks they run beside the main one);
        # the one equal to the main config reuses it
        comparisons = self._comparisons(cfg)
        main_key = {"sharing": cfg.sharing, "channels": str(cfg.n_channels)}
        runner = self.runner
        if runner is None and comparisons:
            from raycl.runner import Runner

            runner = Runner(use_ray=False, progress=self.progress)
        jobs = {
            (kind, key): runner.submit(compare_job, f"{kind}:{key}", c, self.epochs, self.init_seed, self.train_seed,
                                       streams, self._ckdir(f"{kind}:{key}"), self.ckpt_every)
            for kind, cfgs in comparisons.items() for key, c in cfgs.items() if key != main_key[kind]
        }

        learner, phi0, history = self.train_one("main", cfg)
        # meta-train: every meta-training function's sub-task (x, y) samples; deploy: the unseen
        # functions' sub-task (x, y) streams and whole-function grids
        summary["provenance"] = {"data": {**learner.provenance["data"], "deploy": fingerprint(streams)},
                                 "environment": environment()}
        curve = [h["memory"] for h in history]
        t_meta = time.perf_counter() - t_start
        summary["meta_training"] = {
            "memory_loss_first25": float(np.mean(curve[:25])), "memory_loss_last25": float(np.mean(curve[-25:])),
            "seconds": t_meta,
        }
        deployed: dict[str, list[dict]] = {}
        bar = self._bar(len(self.variants), "deploy")
        for v in self.variants:
            deployed[v] = self.deploy_variant(v, learner, phi0, cfg, streams, keep=True)
            self.log_deploy("main", v, deployed[v])
            bar.update(1)
        bar.close()
        summary["deployment"] = {v: self.deploy_stats(r) for v, r in deployed.items()}
        summary["deployment"]["variant_names"] = {v: VARIANTS[v] for v in deployed}
        if {"meta_fixed", "random_fixed"} <= set(deployed):
            summary["must_show"] = self.must_show(deployed["meta_fixed"], deployed["random_fixed"])
        self.run.flush()

        self.run.figure(plots.fit_figure(fns, deployed, cfg), "fig5_2.png")
        self.run.figure(plots.variants_figure(deployed, VARIANTS), "fig5_5.png")
        self.run.figure(plots.meta_curve_figure({"main": curve}, "meta-training memory loss"), "meta_training.png")

        if jobs:
            done = dict(zip(jobs, runner.gather(list(jobs.values()), desc="comparisons")))
            main_deploy = deployed.get("meta_fixed") or deploy(learner, snapshot(learner.phi), streams,
                                                                  lr_theta=cfg.deploy_lr_theta)
            for kind, cfgs in comparisons.items():
                results = {key: done.get((kind, key)) or {"history": history, "deploy": main_deploy,
                                                          "provenance": summary["provenance"]}
                           for key in cfgs}
                summary[f"compare_{kind}"] = self.compare_runs(kind, results, "fig5_4.png" if kind == "sharing"
                                                               else "channels.png", main_key[kind])
        summary["seconds"] = time.perf_counter() - t_start
        summary["cpu_seconds"] = time.process_time() - cpu_start  # this process only (not Ray workers)
        self.run.summary(summary)
        self.run.close()
        return summary

    @staticmethod
    def must_show(meta: list[dict], rand: list[dict]) -> dict:
        """Meta-learned vs random phenotype, both fixed: whole-function MSE after all sub-tasks,
        over this run's unseen functions."""
        return compare_phenotypes([r["total"][-1] for r in meta], [r["total"][-1] for r in rand])

    def compare_runs(self, kind: str, results: dict[str, dict], fig: str, main_key: str) -> dict:
        """Log and plot finished comparison runs ({key: compare_job's result})."""
        curves, out = {}, {}
        for key, res in results.items():
            name = f"{kind}:{key}"
            if key != main_key:  # the main run's meta-training is logged under "main"
                self.log_meta(name, res["history"])
            curves[key] = [h["memory"] for h in res["history"]]
            self.log_deploy(name, "meta_fixed", res["deploy"])
            out[key] = {"memory_loss_last25": float(np.mean(curves[key][-25:])), **self.deploy_stats(res["deploy"])}
            if "cpu_seconds" in res:
                out[key]["meta_training_cpu_seconds"] = res["cpu_seconds"]
                out[key]["seconds"] = res["seconds"]
            if "provenance" in res:
                out[key]["provenance"] = res["provenance"]
        self.run.flush()
        self.run.figure(plots.compare_figure(kind, curves, out), fig)
        return out


def compare_phenotypes(meta_mse, random_mse, unit: str = "unseen functions") -> dict:
    """Meta-learned vs random φ on the same functions (paired): the must-show verdict asks
    whether the mean difference exceeds the larger of the two stds over functions. The random
    phenotype's errors are heavy-tailed (a few functions are forgotten badly), so the paired,
    rank and log-scale views are reported beside it."""
    from scipy.stats import wilcoxon

    m, r = np.asarray(meta_mse, dtype=float), np.asarray(random_mse, dtype=float)
    ms, rs, d = describe(m), describe(r), paired(r, m)
    diff = rs["mean"] - ms["mean"]
    spread = max(ms["std"], rs["std"])
    lm, lr = np.log10(np.maximum(m, 1e-12)), np.log10(np.maximum(r, 1e-12))
    lms, lrs = describe(lm), describe(lr)
    return {
        "what": "deployment MSE over the whole function [-5,5] after learning all sub-tasks, phenotype fixed",
        "meta_learned": ms,
        "random": rs,
        "difference_random_minus_meta": diff,
        "spread_used": f"per-function sample std (ddof = 1) over the {len(m)} {unit} (the larger of meta-learned's and random's)",
        "spread_max_std": spread,
        "meta_lower_by_more_than_spread": bool(diff > spread),
        **reachability(rs),
        # random - meta per function: paired t and two-sided p from raycl.stats; "standard_error" and
        # "z" (= t, the mean over its standard error) are the older names summary readers use
        "paired_difference": {**d, "standard_error": d["se"], "z": d["t"] if np.isfinite(d["t"]) else None},
        "functions_where_meta_is_better": int((m < r).sum()),
        "wilcoxon_p_meta_lower": float(wilcoxon(r, m, alternative="greater").pvalue) if len(m) > 1 else None,
        "log10_mse": {
            "meta_learned": lms, "random": lrs, "difference": lrs["mean"] - lms["mean"],
            "lower_by_more_than_spread": bool(lrs["mean"] - lms["mean"] > max(lms["std"], lrs["std"])),
        },
    }


def reachability(random_stats: dict) -> dict:
    """Can any phenotype pass the per-function check against this random φ? An MSE is never
    below 0, so the difference can be at most random's mean; it beats random's std only if
    that mean exceeds the std. Heavy-tailed errors (std > mean) make the check unreachable
    whatever the meta-learned phenotype does."""
    return {"largest_possible_difference": random_stats["mean"],
            "reachable_by_any_phenotype": bool(random_stats["mean"] > random_stats["std"])}


def seeds_summary(per_seed: list[dict]) -> dict:
    """Pool independent repeats (each a run summary with its own φ*, θ0, φ0 and unseen
    functions). Every variant gets two spreads: over all pooled functions, and over the
    per-seed means. `must_show` applies the check with each spread."""
    seeds = [s["seed"] for s in per_seed]
    variants = [v for v in per_seed[0]["deployment"] if v != "variant_names"]
    deployment = {}
    for v in variants:
        per_fn = [s["deployment"][v]["per_function"]["whole_function_mse"] for s in per_seed]
        means = [float(np.mean(f)) for f in per_fn]
        deployment[v] = {"pooled_functions": describe(np.concatenate(per_fn)),
                         "over_seeds": {**describe(means), "per_seed_mean": means}}
    out = {
        "seeds": seeds,
        "deployment": {**deployment, "variant_names": {v: VARIANTS[v] for v in variants},
                       "what": "whole-function MSE after all sub-tasks; pooled_functions: "
                               + what(f"unseen functions pooled over {len(seeds)} seeds",
                                      deployment[variants[0]]["pooled_functions"]["n"] if variants else 0)
                               + "; over_seeds: " + what("per-seed means", len(seeds))},
        "per_seed": [
            {"seed": s["seed"], "meta_fixed_mean": s["deployment"].get("meta_fixed", {}).get("whole_function_mse", {})
             .get("mean"), "random_fixed_mean": s["deployment"].get("random_fixed", {}).get("whole_function_mse", {})
             .get("mean"), "memory_loss_last25": s["meta_training"]["memory_loss_last25"],
             "seconds": s["seconds"], "cpu_seconds": s["cpu_seconds"], "provenance": s.get("provenance")}
            for s in per_seed
        ],
        "cpu_seconds_per_seed": describe([s["cpu_seconds"] for s in per_seed]),
    }
    if {"meta_fixed", "random_fixed"} <= set(variants):
        meta = [s["deployment"]["meta_fixed"]["per_function"]["whole_function_mse"] for s in per_seed]
        rand = [s["deployment"]["random_fixed"]["per_function"]["whole_function_mse"] for s in per_seed]
        pooled = compare_phenotypes(np.concatenate(meta), np.concatenate(rand),
                                    f"unseen functions pooled over {len(seeds)} seeds")
        mm, rm = deployment["meta_fixed"]["over_seeds"], deployment["random_fixed"]["over_seeds"]
        seed_diff = np.asarray(rm["per_seed_mean"]) - np.asarray(mm["per_seed_mean"])
        diff = rm["mean"] - mm["mean"]
        seed_spread = max(mm["std"], rm["std"])
        fn_spread = pooled["spread_max_std"]
        out["must_show"] = {
            "what": pooled["what"] + f"; {len(seeds)} independent seeds, each with its own meta-training "
                                     "and unseen functions",
            "meta_learned": {"pooled_functions": pooled["meta_learned"], "over_seeds": mm},
            "random": {"pooled_functions": pooled["random"], "over_seeds": rm},
            "difference_random_minus_meta": diff,
            "checks": {
                "per_function_spread": {
                    "spread_used": pooled["spread_used"], "spread": fn_spread, "difference": diff,
                    "meta_lower_by_more_than_spread": bool(diff > fn_spread),
                    "largest_possible_difference": pooled["largest_possible_difference"],
                    "reachable_by_any_phenotype": pooled["reachable_by_any_phenotype"]},
                "across_seed_spread": {
                    "spread_used": f"sample std (ddof = 1) of the {len(seeds)} per-seed mean MSEs (the larger of meta-learned's "
                                   "and random's)",
                    "spread": seed_spread, "difference": diff,
                    "meta_lower_by_more_than_spread": bool(diff > seed_spread)},
            },
            "paired_per_function": {**pooled["paired_difference"],
                                    "functions_where_meta_is_better": pooled["functions_where_meta_is_better"],
                                    "wilcoxon_p_meta_lower": pooled["wilcoxon_p_meta_lower"]},
            "paired_per_seed": {**describe(seed_diff), "per_seed": [float(v) for v in seed_diff],
                                "seeds_where_meta_is_better": int((seed_diff > 0).sum())},
            "log10_mse_pooled": pooled["log10_mse"],
        }
    return out


def run_seeds(out: str | Path, cfg: SineConfig, seeds: list[int], runner, **kwargs) -> dict:
    """Independent repeats, one `seed_job` per seed (RUN/seed_S/ each), pooled into RUN/summary.json,
    RUN/per_function.parquet and RUN/seeds.png."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = Path(out)
    handles = [runner.submit(seed_job, out / f"seed_{s}", cfg, s, **kwargs) for s in seeds]
    per_seed = runner.gather(handles, desc="seeds")
    summary = {"config": cfg.to_dict(), **kwargs,
               **seeds_summary(per_seed)}
    # each seed's meta-training targets and unseen functions (computed in its task); the
    # environment each seed ran in is in its per_seed row
    summary["provenance"] = {"data": {f"seed_{s['seed']}/{n}": fp for s in per_seed
                                      for n, fp in (s.get("provenance") or {}).get("data", {}).items()},
                             "environment": environment()}
    rows = [
        {"seed": s["seed"], "variant": v, "function": f, "whole_function_mse": w, "seen_data_mse": m}
        for s in per_seed for v, st in s["deployment"].items() if v != "variant_names"
        for f, (w, m) in enumerate(zip(st["per_function"]["whole_function_mse"], st["per_function"]["seen_data_mse"]))
    ]
    write_parquet(out / "per_function.parquet", rows)
    save_figure(plots.seeds_figure(per_seed, VARIANTS), out / "seeds.png")
    summary["seconds"] = time.perf_counter() - t0
    summary["driver_cpu_seconds"] = time.process_time() - c0
    write_json(out / "summary.json", summary)
    return summary
