"""`raycl sine`: meta-train a phenotype on continual sine regression, deploy it frozen on
unseen functions against random phenotypes, and write the run folder (Chapter 5)."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from raycl.dan import DANNetwork, load_into, snapshot, split_parameters
from raycl.dan.checkpoint import save_phenotype
from raycl.runio import RunDir
from raycl.sine import plots
from raycl.sine.meta import SineConfig, SineLearner, deploy, meta_train
from raycl.sine.tasks import sample_function, sample_stream, whole_function_grid

# Fig 5.5's six models, in its order: (phenotype, sharing, plastic at deployment)
VARIANTS = {
    "meta_fixed": "net0: meta-learned, fixed",
    "meta_plastic": "net1: meta-learned, plastic",
    "random_fixed": "net2: random shared, fixed",
    "random_plastic": "net3: random shared, plastic",
    "random_unique_fixed": "net4: random unique, fixed",
    "random_unique_plastic": "net5: random unique, plastic",
}
ROW_KEYS = ("phase", "run", "variant", "epoch", "function", "after_task", "total_loss", "memory_loss", "task_loss")


def _row(**kw) -> dict:
    return {k: kw.get(k) for k in ROW_KEYS}


def _stats(vals) -> dict:
    a = np.asarray(vals, dtype=float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0, "n": int(len(a))}


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
    ):
        self.run = RunDir(out)
        self.cfg, self.epochs, self.n_deploy, self.seed = cfg, int(epochs), int(deploy_functions), int(seed)
        self.variants, self.compare, self.channels = tuple(variants), tuple(compare), tuple(channels)
        self.ckpt_every, self.progress = int(ckpt_every), progress
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

    def train_one(self, name: str, cfg: SineConfig) -> tuple[SineLearner, dict, list[float]]:
        """Meta-train from the run's seeded θ0/φ0; returns the learner (φ = φ*), φ0 and the
        per-epoch memory loss after the last sub-task."""
        learner = SineLearner.build(cfg, torch.Generator().manual_seed(self.init_seed))
        phi0 = snapshot(learner.phi)
        curve: list[float] = []
        ckdir = self.run.path / "checkpoints" / ("" if name == "main" else name.replace(":", "_"))
        bar = self._bar(self.epochs, f"meta-train {name}")

        def on_epoch(epoch: int, rec: dict) -> None:
            curve.append(rec["memory"][-1])
            self.run.log(**_row(phase="meta", run=name, epoch=epoch, total_loss=rec["total"][-1],
                                memory_loss=rec["memory"][-1], task_loss=float(np.mean(rec["task"]))))
            self.run.scalar(f"meta/{name}/memory_loss", rec["memory"][-1], epoch)
            self.run.scalar(f"meta/{name}/total_loss", rec["total"][-1], epoch)
            bar.update(1)
            if epoch % 10 == 0:
                bar.set_postfix(memory=f"{np.mean(curve[-25:]):.4f}")
            if self.ckpt_every and (epoch % self.ckpt_every == 0 or epoch == self.epochs):
                meta = dict(epoch=epoch, run=name, config=cfg.to_dict(), memory_loss_last25=float(np.mean(curve[-25:])))
                # θ is mid-function here: store the θ0 every function starts from
                save_phenotype(ckdir / "phenotype.pt", learner.model, learner.theta0, **meta)
                if epoch % self.ckpt_every == 0:
                    save_phenotype(ckdir / f"phenotype_e{epoch:05d}.pt", learner.model, learner.theta0, **meta)
                self.run.flush()

        learner.reset_theta()
        meta_train(learner, cfg, np.random.default_rng(self.train_seed), self.epochs, on_epoch)
        bar.close()
        learner.reset_theta()  # the checkpointed θ0 is the deployment start
        return learner, phi0, curve

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
        recs = deploy(target, phi, streams, plastic=plastic, keep_predictions=keep)
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
        return {
            "whole_function_mse": _stats([r["total"][-1] for r in recs]),
            "seen_data_mse": _stats([r["memory"][-1] for r in recs]),
            "whole_function_mse_after_task": [float(v) for v in np.mean([r["total"] for r in recs], axis=0)],
        }

    # -- the whole run --------------------------------------------------------------------
    def __call__(self) -> dict:
        t_start, cpu_start = time.perf_counter(), time.process_time()
        cfg = self.cfg
        summary: dict = {
            "config": cfg.to_dict(), "epochs": self.epochs, "deploy_functions": self.n_deploy, "seed": self.seed,
            "threads": torch.get_num_threads(),
        }
        learner, phi0, curve = self.train_one("main", cfg)
        t_meta = time.perf_counter() - t_start
        summary["meta_training"] = {
            "memory_loss_first25": float(np.mean(curve[:25])), "memory_loss_last25": float(np.mean(curve[-25:])),
            "seconds": t_meta,
        }
        fns, streams = self.deployment_streams(cfg)
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

        if "sharing" in self.compare:
            summary["compare_sharing"] = self.compare_runs(
                "sharing", {m: replace(cfg, sharing=m) for m in ("net0", "net1", "net2")},
                reuse={cfg.sharing: (learner, curve)}, streams=streams, fig="fig5_4.png",
            )
        if "channels" in self.compare:
            summary["compare_channels"] = self.compare_runs(
                "channels", {str(c): replace(cfg, n_channels=int(c)) for c in self.channels},
                reuse={str(cfg.n_channels): (learner, curve)}, streams=streams, fig="channels.png",
            )
        summary["seconds"] = time.perf_counter() - t_start
        summary["cpu_seconds"] = time.process_time() - cpu_start  # what an idle machine would take
        self.run.summary(summary)
        self.run.close()
        return summary

    @staticmethod
    def must_show(meta: list[dict], rand: list[dict]) -> dict:
        """Meta-learned vs random phenotype, both fixed: whole-function MSE after all sub-tasks.
        The verdict asks whether the mean difference exceeds the larger of the two stds over
        functions; as the random phenotype's errors are heavy-tailed (a few functions are
        forgotten badly) the paired, rank and log-scale views are reported beside it."""
        from scipy.stats import wilcoxon

        m = np.array([r["total"][-1] for r in meta])
        r = np.array([r["total"][-1] for r in rand])
        ms, rs, d = _stats(m), _stats(r), _stats(r - m)
        diff = rs["mean"] - ms["mean"]
        spread = max(ms["std"], rs["std"])
        lm, lr = np.log10(np.maximum(m, 1e-12)), np.log10(np.maximum(r, 1e-12))
        lms, lrs = _stats(lm), _stats(lr)
        se = d["std"] / np.sqrt(d["n"])
        return {
            "what": "deployment MSE over the whole function [-5,5] after learning all sub-tasks, phenotype fixed",
            "meta_learned": {**ms, "median": float(np.median(m))},
            "random": {**rs, "median": float(np.median(r))},
            "difference_random_minus_meta": diff,
            "spread_max_std": spread,
            "meta_lower_by_more_than_spread": bool(diff > spread),
            "paired_difference": {**d, "standard_error": float(se), "z": float(d["mean"] / se) if se > 0 else None},
            "functions_where_meta_is_better": int((m < r).sum()),
            "wilcoxon_p_meta_lower": float(wilcoxon(r, m, alternative="greater").pvalue) if len(m) > 1 else None,
            "log10_mse": {
                "meta_learned": lms, "random": lrs, "difference": lrs["mean"] - lms["mean"],
                "lower_by_more_than_spread": bool(lrs["mean"] - lms["mean"] > max(lms["std"], lrs["std"])),
            },
        }

    def compare_runs(self, kind: str, cfgs: dict[str, SineConfig], reuse: dict, streams, fig: str) -> dict:
        curves, out = {}, {}
        for key, c in cfgs.items():
            if key in reuse:
                learner, curve = reuse[key]
            else:
                learner, _, curve = self.train_one(f"{kind}:{key}", c)
            curves[key] = curve
            recs = deploy(learner, snapshot(learner.phi), streams)
            self.log_deploy(f"{kind}:{key}", "meta_fixed", recs)
            out[key] = {"memory_loss_last25": float(np.mean(curve[-25:])), **self.deploy_stats(recs)}
        self.run.flush()
        self.run.figure(plots.compare_figure(kind, curves, out), fig)
        return out
