"""`raycl atari`: the incremental Atari experiment (A3C on Ray actors + Self-Net)."""

from __future__ import annotations

from raycl import RayclError
from raycl.cliargs import DefaultsHelp, out_flags, ray_flags, seed_flags


def register(subparsers) -> None:
    from raycl.atari.env import GAMES
    from raycl.atari.presets import PRESETS

    p = subparsers.add_parser(
        "atari",
        help="incremental Atari: A3C per game on Ray actors, each network folded into Self-Net (§2.4.7)",
        description=(
            "Train one baby-a3c network per game in turn with asynchronous A3C (worker actors push "
            "gradients to a parameter actor on Ray), fold each into Self-Net (sub-vectors of 76,863, "
            "latent 200, cosine >= threshold for every network), then replay every stored network, "
            "reconstructed, for N episodes of its game (Fig 2.6). A frame is one environment step "
            "(4 emulator frames). Writes scores.parquet, table.parquet, summary.json, scores.png, "
            "TensorBoard logs (tb/), nets/ (originals, for comparison) and store.pt (the Self-Net store)."
        ),
        formatter_class=DefaultsHelp,
    )
    p.add_argument("--preset", choices=sorted(PRESETS), default="small",
                   help="small: CPU in minutes (2,000 frames a game, capped evaluation, AE without hidden layer); "
                        "cluster: the dissertation's 40M frames a game, 20 workers, 80 whole episodes, AE 76,863-2000-200")
    p.add_argument("--frames", type=int, help="frames (environment steps) per game [preset]")
    p.add_argument("--workers", type=int, help="A3C worker actors [preset]")
    p.add_argument("--games", default=",".join(GAMES), help="comma-separated ALE game names, in training order")
    p.add_argument("--episodes", type=int, help="evaluation episodes per network and stage [preset]")
    p.add_argument("--eval-max-steps", type=int, help="cut evaluation episodes after this many frames; 0 = whole games [preset]")
    p.add_argument("--threshold", type=float, default=0.9996,
                   help="cosine every network must reach at each Self-Net fold (against the recollections "
                        "the fold trains on; error compounds over folds, so this sits above the 0.997 "
                        "wanted against the originals after 5 games)")
    p.add_argument("--ae-hidden", help="AE hidden sizes, e.g. 2000 or '' for none [preset]")
    p.add_argument("--ae-lr", type=float, help="AE Adam learning rate [preset]")
    p.add_argument("--ae-max-iters", type=int, help="AE updates allowed per fold [preset]")
    p.add_argument("--lr", type=float, default=1e-4, help="A3C shared Adam learning rate")
    p.add_argument("--pipeline", action="store_true",
                   help="workers play their next rollout while the parameter actor applies their last gradient "
                        "(their own update arrives one rollout late). On 2 cores it showed no clear gain over waiting "
                        "(bench/atari.py, docs/benchmarks.md); its effect on scores is not measured yet")
    p.add_argument("--minimal-actions", action="store_true",
                   help="each game's own action set instead of all 18 (networks then differ in size)")
    seed_flags(p, seeds=None)
    out_flags(p)
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out (skips stored games, resumes checkpoints); the settings must be "
                        "the run's (--workers, --ae-lr, --ae-max-iters may change)")
    ray_flags(p, gpus=None, threads=None, what=None)  # A3C's workers are Ray actors: no --no-ray
    p.set_defaults(func=run)


def config_from_args(args):
    from raycl.atari.a3c import A3CConfig
    from raycl.atari.incremental import preset

    hidden = None
    if args.ae_hidden is not None:
        try:
            hidden = tuple(int(h) for h in args.ae_hidden.split(",") if h.strip())
        except ValueError:
            raise RayclError(f"--ae-hidden takes comma-separated integers, got '{args.ae_hidden}'") from None
        if any(h < 1 for h in hidden):
            raise RayclError(f"--ae-hidden sizes must be > 0, got '{args.ae_hidden}'")
    eval_max = args.eval_max_steps
    cfg = preset(args.preset, frames=args.frames, workers=args.workers, episodes=args.episodes,
                 ae_hidden=hidden, ae_lr=args.ae_lr, ae_max_iters=args.ae_max_iters,
                 a3c=A3CConfig(lr=args.lr, full_action_space=not args.minimal_actions, pipeline=args.pipeline),
                 games=tuple(g.strip() for g in args.games.split(",") if g.strip()),
                 threshold=args.threshold, seed=args.seed)
    if eval_max is not None:
        cfg.eval_max_steps = eval_max or None
    return cfg


# settings a resumed run must keep (the rest, e.g. --workers, may change; --games may add games
# after the run's): config key -> flag
RESUME_SAME = {"frames": "--frames", "episodes": "--episodes", "eval_max_steps": "--eval-max-steps",
               "threshold": "--threshold", "ae_hidden": "--ae-hidden", "seed": "--seed", "subvector": "subvector",
               "latent": "latent", "ae_activation": "ae_activation", "ae_lam": "ae_lam"}


def saved_config(out) -> dict | None:
    """The config the run in `out` was started with: progress.json (after a game), else the
    newest mid-game checkpoint; None when neither exists."""
    from pathlib import Path

    from raycl.atari.incremental import PROGRESS
    from raycl.runio import read_json, torch_load

    out = Path(out)
    if (out / PROGRESS).is_file():
        saved = read_json(out / PROGRESS)
        return saved.get("config") if isinstance(saved, dict) else None
    ckpts = sorted((out / "checkpoints").glob("*.pt"), key=lambda p: p.stat().st_mtime)
    if ckpts:
        saved = torch_load(ckpts[-1])
        return saved.get("config") if isinstance(saved, dict) else None
    return None


def check_resume(cfg, out) -> None:
    """--resume continues the run in `out` only with the settings it was started with."""
    from raycl.checks import same_settings

    saved = saved_config(out)
    if not isinstance(saved, dict):
        return
    now = cfg.as_dict()
    if "eval_max_steps" in now and now["eval_max_steps"] is None:
        now["eval_max_steps"] = 0
    if "eval_max_steps" in saved and saved["eval_max_steps"] is None:
        saved = {**saved, "eval_max_steps": 0}
    games = list(saved.get("games") or [])
    if list(now["games"][:len(games)]) != games:
        raise RayclError(f"--resume: --games {','.join(now['games'])} (the run in {out} has {','.join(games)}); "
                         "keep the run's games in their order (more may follow), or pass --overwrite to start over")
    same_settings(saved, now, RESUME_SAME, out)
    a, b = saved.get("a3c") or {}, now["a3c"]
    same_settings(a, b, {"lr": "--lr"}, out)
    if "full_action_space" in a and a["full_action_space"] != b["full_action_space"]:
        flag = "no --minimal-actions" if a["full_action_space"] else "--minimal-actions"
        raise RayclError(f"--resume: the run in {out} was started with {flag}; resume with the run's settings, or "
                         "pass --overwrite to start it over")


def run(args) -> int:
    from raycl.atari.env import check_games
    from raycl.atari.incremental import format_table, run_incremental, validate
    from raycl.checks import resume_or_overwrite
    from raycl.runio import claim_run, results

    # every setting, the games and a --resume's match with the run are checked before any
    # folder is touched or Ray starts
    resume_or_overwrite(args)
    cfg = config_from_args(args)
    validate(cfg)
    check_games(cfg.games)
    if args.resume:
        check_resume(cfg, args.out)
    # per-game progress (store.pt, nets/, scores.parquet, progress.json, checkpoints) is written as
    # it comes; the final table, figure and summary.json together at the end
    with claim_run(args.out, resume=args.resume, overwrite=args.overwrite, command="raycl atari"), \
            results(args.out):
        summary = run_incremental(cfg, args.out, address=args.address, num_cpus=args.num_cpus, resume=args.resume)
    print(format_table(summary["table"]))
    print(f"min cosine over every network and stage: {summary['min_cosine_every_stage']:.5f} "
          f"(threshold {cfg.threshold}); results in {args.out}")
    return 0
