"""`raycl sine`: the Chapter 5 experiment."""

from __future__ import annotations

import argparse

from raycl.cliargs import RawDescriptionDefaults, config_flags, config_values, out_flags, ray_flags, seed_flags



def register(sub: argparse._SubParsersAction) -> None:
    from raycl.sine.config import PRESETS, SineConfig, SineRun
    from raycl.sine.names import VARIANTS

    p = sub.add_parser(
        "sine",
        help="Chapter 5: meta-learn a DAN phenotype for continual sine regression",
        formatter_class=RawDescriptionDefaults,
        description=(
            "Meta-learn a neuronal phenotype φ so that a network of DANs learns a target function\n"
            "y = a0 sin(r0 x + p0) + a1 sin(r1 x + p1) continually: 5 sub-tasks over [-5, 5], 100\n"
            "batch-1 updates each, no replay. Meta-training updates θ and φ on every sample, then φ alone\n"
            "on the memory loss over everything seen so far after each sub-task; θ returns to θ0 for\n"
            "each new function. Deployment: unseen functions, φ frozen (or plastic), only θ learns.\n"
            "Writes RUN/metrics.parquet, RUN/tb/, RUN/summary.json, RUN/fig5_2.png, RUN/fig5_5.png,\n"
            "RUN/meta_training.png and RUN/checkpoints/phenotype.pt (for `raycl activation`).\n"
            "Independent repeats: --seeds 4 runs seeds S..S+3 as Ray tasks into RUN/seed_S/ and pools them in\n"
            "RUN/summary.json, RUN/per_function.parquet and RUN/seeds.png. --compare meta-trains its\n"
            "variants as Ray tasks beside the main run.\n"
            "Deployment variants (Fig 5.5): " + ", ".join(f"{k} ({v})" for k, v in VARIANTS.items())
        ),
    )
    out_flags(p)
    p.add_argument("--preset", choices=sorted(PRESETS), default="dissertation",
                   help="dissertation: §5.6 settings, Fig 5.5 deployment; full: also Fig 5.4 and the n_channels sweep "
                        "(several meta-trainings); quick: a seconds-long smoke run")
    seed_flags(p, what="independent repeats: each meta-trains its own phenotype and deploys it on its own unseen "
                       "functions (RUN/seed_S/); RUN/summary.json pools them (spread over functions and over per-seed "
                       "means)")
    ray_flags(p, gpus=None, what="seeds / comparisons")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    run = p.add_argument_group("experiment (default: the dissertation's; --preset changes some)")
    config_flags(run, SineRun, preset=SineRun())
    alg = p.add_argument_group("algorithm (default: the dissertation's; --preset changes some)")
    config_flags(alg, SineConfig, flag_names={"n_subtasks": "--subtasks"}, preset=SineConfig())
    p.set_defaults(func=cmd_sine)


def cmd_sine(args) -> int:
    import torch

    from raycl import RayclError
    from raycl.sine.experiment import SineExperiment
    from raycl.sine.names import VARIANTS
    from raycl.runio import claim_run, results
    from raycl.sine.config import PRESETS, SineConfig, SineRun

    # the dissertation's defaults (the dataclasses), then the preset's changes, then the flags'
    chosen = {**PRESETS[args.preset], **config_values(args, SineConfig), **config_values(args, SineRun)}
    cfg = SineConfig(**{k: v for k, v in chosen.items() if k in SineConfig.__dataclass_fields__})
    run = SineRun(**{k: v for k, v in chosen.items() if k in SineRun.__dataclass_fields__})
    variants, compare, channels, deploy_functions = list(run.variants), list(run.compare), run.channels, run.deploy_functions
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise RayclError(f"unknown variant(s) {bad}; choose from {', '.join(VARIANTS)}")
    if min(cfg.n_channels, *cfg.hidden, cfg.n_subtasks, cfg.samples_per_task) < 1:
        raise RayclError("--n-channels, --hidden, --subtasks and --samples-per-task must be positive")
    if min(cfg.lr_theta, cfg.lr_phi, 1.0 if cfg.deploy_lr_theta is None else cfg.deploy_lr_theta) <= 0:
        raise RayclError("--lr-theta, --lr-phi and --deploy-lr-theta must be positive")
    for flag, lr in (("--lr-theta", cfg.lr_theta), ("--lr-phi", cfg.lr_phi), ("--deploy-lr-theta", cfg.deploy_lr_theta)):
        if lr is not None and lr >= 1e30:  # the updates run in float32 (max 3.4e38): such a step overflows
            raise RayclError(f"{flag} {lr:g} is too large for float32 updates; give a learning rate below 1e30")
    if deploy_functions < 2:
        raise RayclError("--deploy-functions must be at least 2 (a std needs two)")
    if args.seeds < 1:
        raise RayclError("--seeds must be at least 1")
    if args.seeds > 1 and compare:
        raise RayclError("--compare runs with one seed: drop --seeds (or run the comparisons separately, "
                         "e.g. raycl sine --compare sharing --out RUN2)")
    if not variants:
        raise RayclError("--variants names no variant; choose from " + ", ".join(VARIANTS))
    if len(set(variants)) != len(variants):
        raise RayclError(f"--variants repeats a variant: {','.join(variants)}")
    if "channels" in compare and not channels:
        raise RayclError("--compare channels needs n_channels values in --channels, e.g. --channels 1,5,10")
    torch.set_num_threads(max(1, args.threads))
    kwargs = dict(epochs=run.epochs, deploy_functions=deploy_functions, variants=variants,
                  compare=compare, channels=channels, ckpt_every=run.ckpt_every)
    # everything above is checked before the run folder is touched; the results are written
    # together when the run succeeds (summary.json last), checkpoints as they come
    with claim_run(args.out, overwrite=args.overwrite, command="raycl sine"), results(args.out):
        runner = None
        if args.seeds > 1 or compare:
            from raycl.cliargs import runner as make_runner

            runner = make_runner(args, progress=not args.no_progress)
        if args.seeds > 1:
            from raycl.sine.experiment import run_seeds

            s = run_seeds(args.out, cfg, list(range(args.seed, args.seed + args.seeds)), runner, **kwargs)
        else:
            s = SineExperiment(args.out, cfg, seed=args.seed, progress=not args.no_progress, runner=runner,
                               **kwargs)()
    if args.seeds > 1:
        _print_seeds(args.out, s)
        return 0
    print(f"run folder: {args.out}  ({s['seconds']:.0f} s)")
    print(f"meta-training memory loss: first 25 epochs {s['meta_training']['memory_loss_first25']:.4f}, "
          f"last 25 {s['meta_training']['memory_loss_last25']:.4f}")
    from raycl.stats import fmt, what

    print(f"deployment whole-function MSE: {what('unseen functions', s['deploy_functions'])}")
    for v, st in s["deployment"].items():
        if v != "variant_names":
            w = st["whole_function_mse"]
            print(f"deploy {v:<22} whole-function MSE {fmt(w, digits=4)}  (n={w['n']})")
    for kind in ("sharing", "channels"):
        for key, st in s.get(f"compare_{kind}", {}).items():
            w = st["whole_function_mse"]
            print(f"compare {kind} {key:<6} memory loss (last 25) {st['memory_loss_last25']:.4f}, deploy "
                  f"whole-function MSE {fmt(w, digits=4)} (n={w['n']}, median {w['median']:.4f})")
    if "must_show" in s:
        m = s["must_show"]
        print(f"meta-learned lower than random by {m['difference_random_minus_meta']:.4f}; "
              f"more than the spread ({m['spread_used']}, {m['spread_max_std']:.4f}): "
              f"{m['meta_lower_by_more_than_spread']}")
        if not m["reachable_by_any_phenotype"]:
            print(_UNREACHABLE.format(**m["random"]))
    return 0


_UNREACHABLE = ("  (no phenotype can pass this reading: an MSE is never below 0, so the difference is at most "
                "random's mean {mean:.4f}, which is below random's own std {std:.4f})")


def _print_seeds(out, s: dict) -> None:
    from raycl.stats import fmt, what

    print(f"run folder: {out}  ({s['seconds']:.0f} s wall; {s['cpu_seconds_per_seed']['mean']:.0f} CPU-s per seed)")
    print(s["deployment"].get("what", ""))
    for v, st in s["deployment"].items():
        if v in ("variant_names", "what"):
            continue
        p, o = st["pooled_functions"], st["over_seeds"]
        per = ", ".join(f"{x:.4f}" for x in o["per_seed_mean"])
        print(f"deploy {v:<22} over functions {fmt(p, digits=4)} (n={p['n']}, median "
              f"{p['median']:.4f}); over seeds {fmt(o, digits=4)} (n={o['n']}; per seed {per})")
    if "must_show" in s:
        m = s["must_show"]
        for name, c in m["checks"].items():
            print(f"must-show, {name}: difference {c['difference']:.4f} vs spread {c['spread']:.4f} "
                  f"({c['spread_used']}): lower by more than the spread: {c['meta_lower_by_more_than_spread']}")
            if not c.get("reachable_by_any_phenotype", True):
                print("  " + _UNREACHABLE.format(**m["random"]["pooled_functions"]))
        d = m["paired_per_function"]
        pv = "-" if d.get("p") is None or d["p"] != d["p"] else f"{d['p']:.2g}"
        print(f"paired per function, random - meta-learned ({what('functions', d['n'])}): {fmt(d, digits=4)} "
              f"(s.e. {d['standard_error']:.4f}, paired t p = {pv}, median {d['median']:.4f}); "
              f"meta-learned better on {d['functions_where_meta_is_better']}/{d['n']}")
