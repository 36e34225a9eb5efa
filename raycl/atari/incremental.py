"""The incremental Atari experiment (§2.4.7, Fig 2.6).

For each game in turn: train its own network with A3C (never revisited), fold it into
Self-Net (buffer 1: the AE is retrained on every recollection plus the new network until
every network's cosine reaches the threshold; only latents are kept), then let every
stored network, reconstructed from its latent, play N episodes of its game. Each original
network plays the same N episodes (same seeds) once, right after its training.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from raycl import RayclError
from raycl.atari.a3c import A3CConfig
from raycl.atari.env import GAMES, check_games, provenance
from raycl.atari.presets import PRESETS
from raycl.runio import RunDir, read_parquet, torch_load, torch_save, write_parquet
from raycl.stats import describe, fmt, what

PROGRESS = "progress.json"  # the games done and the config, rewritten after each game
SUBVECTOR = 76_863  # the Atari AE's input: 845,493 = 11 x 76,863 (the 18-action network + 2 zeros)
LATENT = 200


@dataclass
class AtariConfig:
    games: tuple[str, ...] = GAMES
    frames: int = 2_000  # per game
    workers: int = 2
    episodes: int = 3  # evaluation episodes per network and stage
    eval_max_steps: int | None = 200  # None: play whole games, as the dissertation did
    a3c: A3CConfig = field(default_factory=A3CConfig)
    subvector: int = SUBVECTOR
    latent: int = LATENT
    ae_hidden: tuple[int, ...] = ()
    ae_activation: str = "tanh"
    ae_lr: float = 5e-3
    ae_max_iters: int = 2_000
    ae_lam: float = 1e-4
    # every network's cosine at each fold (stop="min"). A fold is measured against the
    # recollections it trains on, so error compounds: 1 - cos to the original grows by about
    # (1 - threshold) per fold; 0.9996 keeps every network >= 0.997 to its original over 5 folds.
    threshold: float = 0.9996
    seed: int = 0
    checkpoint_every: int = 10_000  # frames between mid-game checkpoints

    def as_dict(self) -> dict:
        d = asdict(self)
        d["games"], d["ae_hidden"] = list(self.games), list(self.ae_hidden)
        return d


def preset(name: str, **overrides) -> AtariConfig:
    if name not in PRESETS:
        raise RayclError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}")
    values = {**PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}}
    a3c = values.pop("a3c", None) or A3CConfig()
    return AtariConfig(a3c=a3c, **values)


def validate(cfg: AtariConfig) -> None:
    bad = [g for g in cfg.games if not g]
    if not cfg.games or bad:
        raise RayclError("give at least one game with --games, e.g. --games Pong,Boxing")
    if len(set(cfg.games)) != len(cfg.games):
        raise RayclError(f"--games repeats a game: {','.join(cfg.games)}")
    for name in ("frames", "workers", "episodes", "subvector", "latent"):
        if getattr(cfg, name) < 1:
            raise RayclError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if cfg.eval_max_steps is not None and cfg.eval_max_steps < 1:
        raise RayclError("--eval-max-steps must be at least 1 (or 0 for whole games)")
    if not 0 < cfg.threshold <= 1:
        raise RayclError(f"--threshold must be in (0, 1], got {cfg.threshold}")


def run_incremental(cfg: AtariConfig, out: str | Path, address: str | None = None, num_cpus: int | None = None,
                    resume: bool = False, progress: bool = True) -> dict:
    """Train, fold and replay every game; writes the run folder; returns the summary."""
    from tqdm.auto import tqdm

    from raycl.atari.parallel import RayA3C, num_actions
    from raycl.guard import DivergenceGuard
    from raycl.runio import write_json
    from raycl.selfnet import NetMeta, SelfNet, cosine

    validate(cfg)
    check_games(cfg.games)
    prov = provenance(cfg.games)  # in every checkpoint and the summary: the games, ROMs and environment
    out = Path(out)
    run = RunDir(out)
    store_path, nets_dir, ckpt_dir = out / "store.pt", out / "nets", out / "checkpoints"
    scores_path = out / "scores.parquet"
    if not resume and (store_path.exists() or scores_path.exists()):
        raise RayclError(f"{out} already holds a run; pass --resume to continue it or choose another --out")

    selfnet, fits = None, []
    norms: dict[str, float] = {}  # one float per game: the scale a cosine-trained AE does not keep
    score_rows: list[dict] = []
    if resume and store_path.exists():
        saved = torch_load(store_path)
        if not isinstance(saved, dict) or "selfnet" not in saved or "norms" not in saved:
            raise RayclError(f"{store_path} is not an Atari Self-Net store; point --out at a run `raycl atari` wrote")
        selfnet, norms = SelfNet.from_state(saved["selfnet"]), dict(saved["norms"])
        fits = list(saved.get("folds", []))
        if scores_path.exists():
            score_rows = read_parquet(scores_path).to_dict("records")
    if selfnet is None:
        selfnet = SelfNet(cfg.subvector, cfg.latent, hidden=cfg.ae_hidden, activation=cfg.ae_activation,
                          buffer_size=1, thresholds=(cfg.threshold,), lam=cfg.ae_lam, lr=cfg.ae_lr,
                          max_iters=cfg.ae_max_iters, stop="min", seed=cfg.seed)
    stored = selfnet.keys()
    if any(k not in cfg.games for k in stored):
        raise RayclError(f"{store_path} holds games {stored} not in --games {list(cfg.games)}; use the same --games")

    ray_a3c = RayA3C(address=address, num_cpus=num_cpus)
    train_log: list[dict] = []
    if resume and (out / "train_episodes.parquet").exists():
        train_log = read_parquet(out / "train_episodes.parquet").to_dict("records")
    if resume and (out / "metrics.parquet").exists():
        run.rows = read_parquet(out / "metrics.parquet").to_dict("records")  # flush rewrites the whole table
    for stage, game in enumerate(cfg.games):
        if game in stored:
            continue
        actions = num_actions(cfg.a3c, game)
        seed = cfg.seed * 100 + stage
        # --- train (resuming a mid-game checkpoint when there is one) -------------------
        ckpt = ckpt_dir / f"{game}.pt"
        state, start = None, 0
        if resume and ckpt.exists():
            saved = torch_load(ckpt)
            state, start = saved["state"], int(saved["frames"])
        bar = tqdm(total=cfg.frames, initial=min(start, cfg.frames), desc=f"[{stage + 1}/{len(cfg.games)}] {game}",
                   unit="frame", disable=not progress, dynamic_ncols=True)
        t0, seen = time.perf_counter(), {"frames": start, "episodes": 0}
        # clipped rewards bound a return by 1/(1-γ), so a healthy rollout's loss stays far below
        # 100x (rollout length x that bound); past it, or NaN/inf, the network has diverged
        guard = DivergenceGuard(f"A3C loss ({game})", "lower --lr",
                                start=cfg.a3c.rnn_steps / max(1e-6, 1.0 - cfg.a3c.gamma))

        def on_chunk(result, total, game=game, bar=bar, t0=t0, seen=seen, stage=stage, guard=guard):
            # before the checkpoint that follows this report, so a diverged state is never saved
            guard.check(abs(result["losses"].get("loss", 0.0)), f"frame {total}")
            bar.update(max(0, min(total, cfg.frames) - bar.n))
            fps = (total - start) / max(1e-9, time.perf_counter() - t0)
            worker_fps = result["frames"] / max(1e-9, result["seconds"])
            for ret, length in zip(result["returns"], result["lengths"]):
                seen["episodes"] += 1
                run.scalar(f"{game}/episode_return", ret, total)
                run.scalar(f"{game}/episode_length", length, total)
                train_log.append({"stage": stage, "game": game, "frames": total, "episode_return": ret,
                                  "episode_length": length})
            for k, v in result["losses"].items():
                run.scalar(f"{game}/{k}", v, total)
            run.scalar(f"{game}/fps", fps, total)
            run.scalar(f"{game}/worker_fps", worker_fps, total)
            run.log(stage=stage, game=game, frames=total, fps=fps, worker_fps=worker_fps,
                    episodes=seen["episodes"], **result["losses"])
            last = train_log[-1]["episode_return"] if train_log and train_log[-1]["game"] == game else float("nan")
            bar.set_postfix(fps=f"{fps:.0f}", last_return=last, loss=f"{result['losses'].get('loss', 0):.3g}")

        def checkpoint(state, total, game=game, ckpt=ckpt):
            torch_save(ckpt, {"game": game, "frames": total, "state": state, "config": cfg.as_dict(),
                              "provenance": prov})

        flat, _, total = ray_a3c.train(game, cfg.a3c, cfg.frames, cfg.workers, seed, state=state, start_frames=start,
                                       on_chunk=on_chunk, checkpoint=checkpoint,
                                       checkpoint_every=cfg.checkpoint_every)
        bar.close()
        run.flush()
        write_parquet(out / "metrics.parquet", run.rows, now=True)  # --resume reads it back
        torch_save(nets_dir / f"{game}.pt", {"game": game, "actions": actions, "flat": flat, "frames": total,
                                             "provenance": prov})

        # --- fold into Self-Net -----------------------------------------------------------
        fit_bar = tqdm(desc=f"Self-Net fold {game}", unit="update", disable=not progress, dynamic_ncols=True)

        def fit_progress(it, metric, fit_bar=fit_bar):
            fit_bar.update(1)
            fit_bar.set_postfix(min_cosine=f"{metric:.5f}")

        fit = selfnet.add(game, flat, NetMeta(arch="baby-a3c", num_outputs=actions, length=flat.numel()),
                          progress=fit_progress)
        fit_bar.close()
        if not fit.reached:
            raise RayclError(f"Self-Net did not reach cosine {cfg.threshold} for every network in "
                             f"{cfg.ae_max_iters} updates (min {min(fit.cosines):.5f}); raise --ae-max-iters "
                             "or tune --ae-lr")
        fits.append({"stage": stage, "game": game, "iterations": fit.iterations, "seconds": fit.seconds,
                     "min_cosine": min(fit.cosines)})
        norms[game] = float(flat.norm())
        torch_save(store_path, {"selfnet": selfnet.state_dict(), "norms": norms, "folds": fits, "provenance": prov})

        # --- replay: the new original, and every stored network reconstructed -------------
        jobs, meta = [], []
        eval_seed = 10_000 + cfg.seed
        full = cfg.a3c.full_action_space
        jobs.append({"flat": flat.numpy(), "actions": actions, "game": game, "episodes": cfg.episodes,
                     "seed": eval_seed, "max_steps": cfg.eval_max_steps, "full": full})
        meta.append((game, "original", 1.0, 1.0))
        for key in selfnet.keys():
            original = torch_load(nets_dir / f"{key}.pt")
            rec = recollect(selfnet, norms, key)
            decoded_ratio = float(selfnet.recollect(key).norm()) / norms[key]
            jobs.append({"flat": rec.numpy(), "actions": original["actions"], "game": key, "episodes": cfg.episodes,
                         "seed": eval_seed, "max_steps": cfg.eval_max_steps, "full": full})
            meta.append((key, "reconstructed", cosine(original["flat"], rec), decoded_ratio))
        ebar = tqdm(total=len(jobs), desc=f"replay after {game}", unit="net", disable=not progress, dynamic_ncols=True)
        results = ray_a3c.evaluate(jobs, progress=ebar.update)
        ebar.close()
        for (key, which, cos, ratio), scores in zip(meta, results):
            for ep, s in enumerate(scores):
                score_rows.append({"stage": stage, "after": game, "game": key, "network": which, "cosine": cos,
                                   "decoded_norm_ratio": ratio, "episode": ep, "score": float(s)})
        # progress that --resume reads back: written now, even inside `results(out)`
        write_parquet(scores_path, score_rows, now=True)
        if train_log:
            write_parquet(out / "train_episodes.parquet", train_log, now=True)
        write_json(out / PROGRESS, {"done": [k for k in selfnet.keys()], "config": cfg.as_dict()}, now=True)

    table = score_table(score_rows, cfg.games)
    write_parquet(out / "table.parquet", table)
    if train_log:
        write_parquet(out / "train_episodes.parquet", train_log)
    run.flush()
    summary = {
        "config": cfg.as_dict(),
        "network_params": int(torch_load(nets_dir / f"{cfg.games[0]}.pt")["flat"].numel()),
        "subvectors_per_network": math.ceil(torch_load(nets_dir / f"{cfg.games[0]}.pt")["flat"].numel() / cfg.subvector),
        "storage": storage(selfnet, norms),
        "folds": fits,
        "final": [r for r in table if r["stage"] == max(t["stage"] for t in table)],
        "table": table,
        "min_cosine_every_stage": min(r["cosine"] for r in table),
        "provenance": prov,
    }
    run.summary(summary)
    from raycl.atari.plots import score_figure

    run.figure(score_figure(table, score_rows, cfg.games), "scores.png")
    run.close()
    return summary


def recollect(selfnet, norms: dict[str, float], key: str) -> torch.Tensor:
    """A stored network's weights: Self-Net's recollection (a direction: the AE is trained on
    cosine, which is blind to scale) rescaled to the norm stored beside its latent."""
    rec = selfnet.recollect(key)
    return rec * (norms[key] / float(rec.norm().clamp_min(1e-30)))


def storage(selfnet, norms: dict[str, float]) -> dict:
    """Self-Net's honest storage plus the one norm per network this experiment keeps."""
    s = dict(selfnet.storage())
    s["norm_floats"] = len(norms)
    s["selfnet_floats"] += len(norms)
    s["storage_ratio"] = s["independent_floats"] / s["selfnet_floats"]
    return s


def score_table(score_rows: list[dict], games) -> list[dict]:
    """One row per (stage, game stored by then): original and reconstructed score, mean ± sample
    std (ddof = 1; NaN with one episode) over n evaluation episodes, and the cosine."""
    orig = {}
    for r in score_rows:
        if r["network"] == "original":
            orig.setdefault(r["game"], []).append(r["score"])
    groups: dict[tuple[int, str], dict] = {}
    for r in score_rows:
        if r["network"] != "reconstructed":
            continue
        g = groups.setdefault((int(r["stage"]), r["game"]), {"scores": [], "cosine": float(r["cosine"]),
                                                             "after": r["after"],
                                                             "ratio": float(r.get("decoded_norm_ratio", 1.0))})
        g["scores"].append(r["score"])
    table = []
    for (stage, game), g in sorted(groups.items(), key=lambda kv: (kv[0][0], list(games).index(kv[0][1]))):
        o, r = describe(orig[game]), describe(g["scores"])
        table.append({"stage": stage, "after": g["after"], "game": game, "original_mean": o["mean"],
                      "original_std": o["std"], "original_n": o["n"], "reconstructed_mean": r["mean"],
                      "reconstructed_std": r["std"], "reconstructed_n": r["n"], "cosine": g["cosine"],
                      "decoded_norm_ratio": g["ratio"]})
    return table


def format_table(table: list[dict]) -> str:
    n = sorted({r.get(k) for r in table for k in ("original_n", "reconstructed_n") if r.get(k) is not None})
    lines = [f"score per episode, {what('evaluation episodes', '/'.join(map(str, n)) or '?')}",
             f"{'after':<14}{'game':<14}{'original':>18}{'reconstructed':>18}{'cosine':>10}"]
    for r in table:
        o = fmt({"mean": r["original_mean"], "std": r["original_std"]})
        rc = fmt({"mean": r["reconstructed_mean"], "std": r["reconstructed_std"]})
        lines.append(f"{r['after']:<14}{r['game']:<14}{o:>18}{rc:>18}{r['cosine']:>10.5f}")
    return "\n".join(lines)
