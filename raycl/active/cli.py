"""`raycl active run` (strategies x seeds on one scenario) and `raycl active sampling-time`."""

from __future__ import annotations

import argparse

from raycl.active.config import BACKBONES, LEARNERS, ActiveTrainConfig, ContinualConfig
from raycl.cliargs import DefaultsHelp, config_flags, config_values, data_flags, out_flags, ray_flags, renamed, runner, seed_flags

SCENARIOS = {
    # name: (OOD fraction, classes removed from L0, oracle noise)
    "ood": (0.2, 0, 0.0),
    "standard": (0.0, 0, 0.0),
    "biased": (0.0, 3, 0.0),
    "noisy": (0.0, 0, 0.2),
}
DEFAULT_STRATEGIES = {
    # the first Weibull reading with a threshold is the one summary.json's checks evaluate
    "ood": ["random", "uncertainty", "weibull:threshold=val,balance=1,unknowns=1", "weibull:threshold=0.25", "weibull"],
    "standard": ["random", "uncertainty", "weibull"],
}
# digits have no superclasses; for the noisy oracle these groups of look-alike digits stand in
DIGIT_SUPERCLASSES = "0,6;1,7;2,3,5,8;4,9"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("active", help="active learning: DAL-OSR, DALBT and baseline query strategies",
                       description="Pool-based active learning (dissertation chapters 3-4).")
    asub = p.add_subparsers(dest="active_command", metavar="ACTION", required=True)

    r = asub.add_parser(
        "run", formatter_class=DefaultsHelp,
        help="run query strategies x seeds on a scenario (seeds in parallel as Ray tasks)",
        description=(
            "Train on the labeled pool, query b samples with each strategy, let the oracle label them, repeat "
            "until the label budget is spent; every strategy and seed runs as its own Ray task. Writes "
            "metrics.parquet (strategy, seed, stage, labeled %, accuracy, OOD queries, selection seconds), "
            "tb/ (TensorBoard), summary.json (mean ± sample std, ddof = 1, over seeds) and curves.png to --out. "
            "Offline default: scikit-learn digits with 20% 'shapes' out-of-distribution images in the pool."),
        epilog=("strategies: random, uncertainty, weibull[:threshold=T|val,accept=F,rank=outlier|uncertainty|random,"
                "balance=0|1,unknowns=0|1,order=highest|lowest,tail=F], coreset, "
                "mc-dropout[:passes=N], dbal[:passes=N], ensemble[:members=N], vaal[:steps=N], "
                "batchbald[:passes=N,configs=N,candidates=N], waal[:steps=N,diversity=W]. "
                "Example: raycl active run --seeds 5 --out runs/al_ood"))
    out_flags(r)
    r.add_argument("--scenario", choices=list(SCENARIOS), default="ood",
                   help="ood: 20%% out-of-distribution pool; standard; biased: 3 classes missing from L0; "
                        "noisy: 20%% of oracle labels flipped within a superclass")
    r.add_argument("--strategies", nargs="+", default=None,
                   help="strategy specs (default for ood: random uncertainty weibull:threshold=val,balance=1,unknowns=1 "
                        "weibull:threshold=0.25 weibull; otherwise random uncertainty weibull)")
    seed_flags(r, seeds=5, what="independent runs of every strategy")
    renamed(r, "--first-seed", "--seed", dest="seed", type=int)
    d = r.add_argument_group("data")
    data_flags(d, default="digits", what="in-distribution source (see `raycl data list`)")
    renamed(d, "--dataset", "--data", dest="data")
    d.add_argument("--ood", default="shapes", help="comma-separated out-of-distribution sources, e.g. svhn,kmnist")
    d.add_argument("--ood-fraction", type=float, default=None, help="share of the pool that is OOD (scenario default)")
    d.add_argument("--val-fraction", type=float, default=0.1, help="validation split held out of the train split")
    a = r.add_argument_group("active learning")
    a.add_argument("--initial", type=int, default=50, help="size of the initial labeled pool L0")
    a.add_argument("--budget", type=int, default=50, help="b: queries per stage")
    a.add_argument("--target", type=float, default=0.4, help="label budget: fraction of the in-distribution pool")
    a.add_argument("--stages", type=int, default=None, help="number of query stages (default: from --target)")
    a.add_argument("--warm-start", action=argparse.BooleanOptionalAction, default=True,
                   help="each stage goes on training the last stage's model: a third less compute on the digits, "
                        "higher accuracy for random and Weibull sampling (docs/results/active.md); --no-warm-start "
                        "trains a fresh model every stage, as the dissertation does")
    a.add_argument("--remove-classes", type=int, default=None, help="biased L0: classes left out of it")
    a.add_argument("--noise", type=float, default=None, help="noisy oracle: fraction of labels flipped in a superclass")
    a.add_argument("--superclasses", default=None,
                   help=f"class groups for the noisy oracle, e.g. '{DIGIT_SUPERCLASSES}' (default: the dataset's "
                        "coarse labels; for digits the groups shown)")
    m = r.add_argument_group("model")
    m.add_argument("--model", choices=["vnn", "dalbt"], default="vnn", help="vnn: DAL-OSR variational net; dalbt: Barlow Twins")
    m.add_argument("--variant", choices=["M1", "M2"], default="M2", help="vnn: M1 = CE + KL, M2 adds reconstruction")
    m.add_argument("--backbone", default="auto", choices=BACKBONES,
                   help="small (8x8 images), lenet (28x28), vgg16 (32x32), or auto: chosen from the image size")
    m.add_argument("--latent", type=int, default=None, help="latent size (vnn 60; dalbt 60, 512 with vgg16)")
    m.add_argument("--beta", type=float, default=0.1, help="vnn: KL weight")
    m.add_argument("--bt-weight", type=float, default=1e-3, help="dalbt: weight γ of the Barlow Twins loss")
    renamed(m, "--gamma", "--bt-weight", dest="bt_weight", type=float)
    m.add_argument("--lambd", type=float, default=0.0051, help="dalbt: off-diagonal weight λ")
    m.add_argument("--projector", type=int, default=256, help="dalbt: projector width")
    t = r.add_argument_group("training (per stage)")
    config_flags(t, ActiveTrainConfig)
    t.add_argument("--batch-size", type=int, default=None, help="default 128 (vnn), 64 (dalbt)")
    x = r.add_argument_group("execution")
    ray_flags(x, what="(strategy, seed) runs")
    renamed(x, "--gpus-per-run", "--gpus-per-worker", dest="gpus_per_worker", type=float)
    x.add_argument("--device", default=None, help="torch device (default: cuda if present, else cpu)")
    r.set_defaults(func=cmd_run)

    c = asub.add_parser(
        "continual", formatter_class=DefaultsHelp,
        help="continual active learning with DANs: classes arrive stage by stage, learnt without replay",
        description=(
            "The dissertation's proposed next step: DALBT whose encoder is DAN layers with a frozen hyper-trained "
            "phenotype learns each stage's newly labelled classes from those labels only (no replay, no retraining), "
            "against the same with a random phenotype, DALBT fine-tuned on the new labels, and DALBT retrained from "
            "scratch on every label each stage. Each learner's SGD rate and passes are tuned on the same grid "
            "(--lrs x --epochs) by validation accuracy over --tune-seeds runs; then every (learner, seed) runs as a "
            "Ray task. Writes metrics.parquet (one row per learner, "
            "seed and stage: labels, accuracy on the seen classes and on the first stage's, updates, seconds), "
            "summary.json (mean ± sample std over seeds, the tuning) and curves.png to --out."),
        epilog="Example: raycl hyper-train --seeds 3 --out runs/phen && "
               "raycl active continual --phenotype runs/phen --seeds 5 --out runs/cal")
    out_flags(c)
    c.add_argument("--phenotype", nargs="+", metavar="RUN", default=[],
                   help="`raycl hyper-train` run folder(s); a folder of --seeds N runs gives all N. Seed i of the "
                        "dan learner deploys the (i mod n)-th phenotype")
    c.add_argument("--learners", nargs="+", choices=LEARNERS, default=list(LEARNERS), help="who learns")
    seed_flags(c, seeds=5, what="independent runs of every learner")
    d = c.add_argument_group("data")
    data_flags(d, default="digits", what="the classes that arrive (see `raycl data list`)")
    d.add_argument("--val-fraction", type=float, default=0.1, help="validation split (tuning) held out of the train split")
    config_flags(c.add_argument_group("continual active learning"), ContinualConfig)
    ray_flags(c.add_argument_group("execution"), what="(learner, seed) runs")
    c.set_defaults(func=cmd_continual)

    s = asub.add_parser(
        "sampling-time", formatter_class=DefaultsHelp,
        help="time every query strategy on the same pool and model (Table 3.1)",
        description="Selection time per strategy on one pool and one trained model; prints one JSON line and "
                    "writes sampling_time.json (+ .parquet) to --out.")
    add_timing_args(s)
    out_flags(s, what="folder to write")
    s.set_defaults(func=cmd_sampling_time)


def add_timing_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--pool", type=int, default=10000, help="unlabeled pool size")
    s.add_argument("--labeled", type=int, default=100, help="labeled pool size")
    s.add_argument("--budget", type=int, default=100, help="b: samples selected")
    s.add_argument("--size", type=int, default=28, help="image size (28: LeNet encoder; 8: small; 32: VGG16)")
    s.add_argument("--repeats", type=int, default=2, help="timed repeats per strategy (median reported)")
    s.add_argument("--strategies", nargs="+", default=None, help="strategy specs (default: all ten)")
    s.add_argument("--train-steps", type=int, default=150, help="updates that train the timed model first")
    s.add_argument("--device", default=None, help="torch device (default: cuda if present, else cpu)")
    seed_flags(s, seeds=None)


def loop_config(args):
    import numpy as np

    from raycl.active.loop import LoopConfig
    from raycl.active.scenario import Scenario

    ood_frac, removed, noise = SCENARIOS[args.scenario]
    ood_frac = ood_frac if args.ood_fraction is None else args.ood_fraction
    scenario = Scenario(dataset=args.data, ood=tuple(n for n in args.ood.split(",") if n and n != "none"),
                        ood_fraction=ood_frac, val_fraction=args.val_fraction, data_root=args.data_root,
                        download=args.download)
    noise = noise if args.noise is None else args.noise
    superclasses = None
    if noise > 0:
        text = args.superclasses or (DIGIT_SUPERCLASSES if args.data == "digits" else None)
        superclasses = scenario.superclasses(text)
    opts = {"backbone": args.backbone}
    if args.model == "vnn":
        opts.update(variant=args.variant, beta=args.beta, latent=args.latent or 60)
    else:
        opts.update(gamma=args.bt_weight, lambd=args.lambd, projector=args.projector, latent=args.latent)
    train = ActiveTrainConfig(**config_values(args, ActiveTrainConfig),
                              batch_size=args.batch_size or (128 if args.model == "vnn" else 64))
    cfg = LoopConfig(model=args.model, model_options=opts, initial=args.initial, budget=args.budget,
                     target=args.target, stages=args.stages, warm_start=args.warm_start,
                     remove_classes=removed if args.remove_classes is None else args.remove_classes,
                     noise=noise, superclasses=None if superclasses is None else np.asarray(superclasses),
                     train=train, device=args.device)
    return scenario, cfg


def _check_strategies(specs: list[str]) -> None:
    from raycl import RayclError
    from raycl.active.strategies import make_strategy

    for s in specs:
        make_strategy(s)
    if len(set(specs)) != len(specs):
        raise RayclError(f"--strategies repeats a strategy: {' '.join(specs)}")


def _check_run(args) -> None:
    """The settings that need no data (and the data sources' names and roots): checked before
    anything is loaded, before Ray starts and before --out is touched."""
    from raycl import RayclError
    from raycl.checks import data_source

    data_source(args.data, args.data_root, args.download, flag="--data")
    ood_frac = SCENARIOS[args.scenario][0] if args.ood_fraction is None else args.ood_fraction
    if ood_frac > 0:
        names = [n for n in args.ood.split(",") if n and n != "none"]
        if not names:
            raise RayclError(f"an OOD fraction of {ood_frac} needs --ood sources (or --ood-fraction 0)")
        for n in names:
            data_source(n, args.data_root, args.download, flag="--ood")
    if ood_frac >= 1:
        raise RayclError("--ood-fraction must be below 1: the pool needs in-distribution images")


def cmd_run(args) -> int:
    from raycl import RayclError
    from raycl.active.experiment import run_experiment
    from raycl.runio import claim_run, results

    strategies = args.strategies or DEFAULT_STRATEGIES.get(args.scenario, DEFAULT_STRATEGIES["standard"])
    _check_strategies(strategies)
    _check_run(args)
    scenario, cfg = loop_config(args)
    if cfg.noise > 0 and cfg.superclasses is None:
        raise RayclError("a noisy oracle flips labels within superclasses: use a dataset with coarse labels "
                         "(cifar100) or give --superclasses, e.g. '0,6,8,9;1,4,7;2,3,5'")
    seeds = list(range(args.seed, args.seed + args.seeds))
    scenario.build(seeds[0])  # a pool the data cannot fill fails here with one line, before Ray starts
    # metrics.parquet, summary.json and curves.png are written together when every run has
    # finished; the rows of finished runs meanwhile in metrics.partial.parquet
    with claim_run(args.out, overwrite=args.overwrite, command="raycl active run"), results(args.out):
        result = run_experiment(scenario, strategies, seeds, cfg, args.out, runner=runner(args, progress=False))
    from raycl.stats import fmt, what

    print(f"{what('seeds', len(seeds))}:")
    print(f"{'strategy':<24} {'final accuracy %':>18} {'labeled %':>14} {'OOD queries':>14} {'s per run':>12}")
    for name, s in result["strategies"].items():
        fa, lp, oq, sec = s["final_accuracy"], s["final_labeled_pct"], s["ood_queries"], s["run_seconds"]
        print(f"{name:<24} {fmt(fa, 100, 2):>18} {fmt(lp, 1, 1):>14} {fmt(oq, 1, 1):>14} {fmt(sec, 1, 0):>12}")
    if result["checks"]:
        print("checks:", ", ".join(f"{k}={v}" for k, v in result["checks"].items()))
    print(f"wrote {args.out}/metrics.parquet, summary.json, curves.png, tb/")
    return 0


def phenotype_runs(folders: list[str]) -> list:
    """Each hyper-training run among `folders` (a folder of --seeds N runs gives its seed_S/)."""
    from pathlib import Path

    from raycl import RayclError
    from raycl.hyper.trainer import CHECKPOINT

    runs = []
    for f in map(Path, folders):
        found = [f] if (f / CHECKPOINT).is_file() else sorted(
            (p.parent for p in f.glob(f"seed_*/{CHECKPOINT}")), key=lambda p: int(p.name.split("_")[1]))
        if not found:
            raise RayclError(f"--phenotype {f} holds no {CHECKPOINT} (nor seed_*/{CHECKPOINT}); give a "
                             "`raycl hyper-train --out` folder")
        runs += found
    return runs


def cmd_continual(args) -> int:
    import pandas as pd

    from raycl import RayclError
    from raycl.active import continual
    from raycl.active.scenario import Scenario
    from raycl.active.strategies import make_strategy
    from raycl.checks import data_source
    from raycl.hyper.trainer import load_run_checkpoint
    from raycl.provenance import environment, fingerprint
    from raycl.runio import RunDir, claim_run, results
    from raycl.stats import fmt, what

    cfg = ContinualConfig(**config_values(args, ContinualConfig))
    make_strategy(cfg.strategy)
    if len(set(args.learners)) != len(args.learners):
        raise RayclError(f"--learners repeats a learner: {' '.join(args.learners)}")
    if "dan" in args.learners and not args.phenotype:
        raise RayclError("the dan learner deploys a hyper-trained phenotype: give --phenotype RUN (a `raycl "
                         "hyper-train --out` folder), or leave dan out of --learners")
    if cfg.budget < 1:
        raise RayclError("--budget must be at least 1")
    if cfg.batch_size < 2:
        raise RayclError("--batch-size must be at least 2 (the projector's batch norm)")
    data_source(args.data, args.data_root, args.download, flag="--data")
    phenotypes = []
    for run in phenotype_runs(args.phenotype):
        ckpt = load_run_checkpoint(run)
        phenotypes.append({"arch": continual.dan_architecture(ckpt), "phi": ckpt["server"]["phi"],
                           "run": str(run), "phi_fingerprint": fingerprint(ckpt["server"]["phi"]),
                           "epoch": ckpt["epoch"]})
    scenario = Scenario(dataset=args.data, ood=(), ood_fraction=0.0, val_fraction=args.val_fraction,
                        data_root=args.data_root, download=args.download)
    seeds = list(range(args.seed, args.seed + args.seeds))
    if cfg.tune_seeds < 1:
        raise RayclError("--tune-seeds must be at least 1")
    if set(seeds) & set(range(cfg.tune_seed, cfg.tune_seed + cfg.tune_seeds)):
        raise RayclError(f"--tune-seed {cfg.tune_seed} (with --tune-seeds {cfg.tune_seeds}) overlaps the reported seeds "
                         f"{seeds[0]}..{seeds[-1]}; pick tuning seeds outside them")
    with claim_run(args.out, overwrite=args.overwrite, command="raycl active continual"), results(args.out):
        run = RunDir(args.out, tensorboard=False)
        result = continual.experiment(scenario, args.learners, seeds, cfg, phenotypes, runner(args, progress=True))
        for r in result["rows"]:
            run.log(**r)
        run.flush()
        summary = continual.summarize(result["rows"])
        diffs = continual.against_dan(result["rows"])
        run.summary({"config": result["config"], "data": args.data, "seeds": seeds, "tuning": result["tuning"],
                     "phenotypes": [{k: p[k] for k in ("run", "phi_fingerprint", "epoch", "arch")} for p in phenotypes],
                     "learners": summary, "dan_minus": diffs,
                     "dan_minus_first_classes": continual.against_dan(result["rows"], "first_classes_accuracy"),
                     "environment": environment()})
        run.figure(continual.figure(result["rows"], f"{args.data}: {cfg.classes_per_stage} class(es) a stage, "
                                                    f"{cfg.budget} labels a stage, {cfg.strategy} queries"),
                   "curves.png")
        run.close()
    df = pd.DataFrame(result["rows"])
    print(f"after the last stage, {what('seeds', len(seeds))}:")
    print(f"{'learner':<11} {'lr':>6} {'epochs':>6} {'seen classes %':>15} {'first classes %':>16} {'labels':>7} "
          f"{'updates/stage':>14} {'s/stage':>8}")
    for name, stages in summary.items():
        last = stages[-1]
        per_stage = df[df["learner"] == name].groupby("seed")
        print(f"{name:<11} {result['tuning'][name]['lr']:>6g} {result['tuning'][name]['epochs']:>6} {fmt(last['accuracy'], 100, 1):>15} "
              f"{fmt(last['first_classes_accuracy'], 100, 1):>16} {last['labels']['mean']:>7.0f} "
              f"{per_stage['updates'].mean().mean():>14.0f} {per_stage['train_seconds'].mean().mean():>8.2f}")
    if diffs:
        n = next(iter(diffs.values()))["phenotypes"]
        print(f"dan minus each learner, last stage, seen classes (points; paired by seed, then {what('phenotypes', n)}):")
        print("  " + ", ".join(f"{k} {fmt(v, 100, 1, sign=True)}" for k, v in diffs.items()))
    print(f"wrote {args.out}/metrics.parquet, summary.json, curves.png")
    return 0


def cmd_sampling_time(args) -> int:
    import json

    from raycl import RayclError
    from raycl.active.timing import sampling_time
    from raycl.runio import claim_run, results, write_json, write_parquet

    if args.strategies:
        _check_strategies(args.strategies)
    if args.labeled < 2:
        raise RayclError("--labeled must be at least 2 (the timed model trains on it, with batch norm)")
    if args.budget > args.pool:
        raise RayclError(f"--budget {args.budget} is more than the --pool {args.pool} it selects from")
    with claim_run(args.out, overwrite=args.overwrite, command="raycl active sampling-time"), results(args.out):
        result = sampling_time(pool=args.pool, labeled=args.labeled, budget=args.budget, size=args.size,
                               repeats=args.repeats, strategies=args.strategies, device=args.device, seed=args.seed,
                               train_steps=args.train_steps, progress=True)
        write_json(f"{args.out}/sampling_time.json", result)
        write_parquet(f"{args.out}/sampling_time.parquet",
                      [{"strategy": k, **v} for k, v in result["strategies"].items()])
    print(json.dumps(result))
    return 0
