"""`raycl sweep overtraining` and `raycl sweep scale`: Ray Tune sweeps of whole populations."""

from __future__ import annotations

from pathlib import Path

from raycl.cliargs import data_flags, ray_flags, renamed
from raycl.hyper.config import DEFAULT_LRS, PRESETS


def _common(p) -> None:
    p.add_argument("--out", required=True, help="sweep folder: tune/ (Tune's experiment, TensorBoard logs, trial "
                   "checkpoints), sweep.parquet, PNGs, summary.json")
    p.add_argument("--resume", action="store_true",
                   help="continue the killed or unfinished sweep in --out from its trials' checkpoints (same settings; "
                        "resources such as --num-cpus may change)")
    p.add_argument("--overwrite", action="store_true", help="replace the sweep already in --out (its files are deleted)")
    p.add_argument("--preset", default=None, choices=sorted(PRESETS),
                   help="base settings each trial starts from (model, k, epochs...; default: see above)")
    p.add_argument("--epochs", type=int, default=None, help="outer epochs per trial (default: the preset's)")
    p.add_argument("--seeds", type=int, default=1, help="trials per setting, seeds 0..N-1 (default %(default)s)")
    data_flags(p, default=None, what="meta-train source (default: the preset's, glyphs)", download=False,
               root_help="root folder of a real source")
    renamed(p, "--source", "--data", dest="data")
    p.add_argument("--backend", default="ray", choices=["ray", "reference"],
                   help="ray: each trial runs the population as actors in its placement group (one bundle per "
                   "model); reference: the whole population inside the trial process (default %(default)s)")
    p.add_argument("--driver-cpus", type=float, default=0.5, help="CPUs of the trial driver's bundle (default %(default)s)")
    p.add_argument("--cpus-per-model", type=float, default=0.25,
                   help="CPUs per model's bundle, Ray backend (default %(default)s: small CPU presets)")
    p.add_argument("--gpus-per-worker", type=float, default=None,
                   help="GPUs per model's bundle (default: 1 when the cluster has GPUs, else 0)")
    renamed(p, "--gpus-per-model", "--gpus-per-worker", dest="gpus_per_worker", type=float)
    p.add_argument("--eval-every", type=int, default=5,
                   help="deploy the current φ every N epochs (also before training and at the end)")
    p.add_argument("--eval-seeds", type=int, default=5,
                   help="deployment sequences per set in each quick deployment (default %(default)s, as raycl deploy)")
    p.add_argument("--eval-lrs", type=float, nargs="+", default=list(DEFAULT_LRS),
                   help="deployment learning rates, chosen per metric on 5 meta-train sequences as raycl deploy does "
                        "(default %(default)s)")
    p.add_argument("--eval-data", default="digits", help="meta-eval source (default: offline digits)")
    p.add_argument("--eval-data-root", default=None, help="root of a real meta-eval source")
    renamed(p, "--eval-source", "--eval-data", dest="eval_data")
    renamed(p, "--eval-root", "--eval-data-root", dest="eval_data_root")
    p.add_argument("--scheduler", default="none", choices=["none", "asha", "pbt"],
                   help="asha: stop weak trials early; pbt: population-based training of the learning rates "
                   "(one setting, --samples trials)")
    p.add_argument("--metric", default="memory",
                   help="what ASHA/PBT optimise (reported every epoch; losses and MSEs are minimised): memory, generalization, or the latest "
                   "quick deployment, e.g. deploy/meta-test/memory (default %(default)s)")
    p.add_argument("--samples", type=int, default=4, help="PBT: trials in the PBT population (default %(default)s)")
    p.add_argument("--grace-period", type=int, default=1, help="ASHA: epochs before a trial may be stopped")
    p.add_argument("--max-concurrent", type=int, default=0, help="at most N trials at once (0: as resources allow)")
    ray_flags(p, gpus=None, threads=1, what=None)  # Tune needs Ray: no --no-ray
    p.add_argument("--ray-temp-dir", default=None, help="temp folder of the local Ray (keep it short: socket paths)")


def register(sub) -> None:
    p = sub.add_parser("sweep", help="Ray Tune sweeps of whole populations (over-training, scale)",
                       description="Ray Tune sweeps: each trial hyper-trains a whole population, reports memory and "
                       "generalization per outer epoch and a quick deployment every --eval-every epochs, and "
                       "checkpoints. A killed sweep resumes when run again with the same --out and --resume. "
                       "`tensorboard --logdir OUT/tune` shows every trial.")
    s = p.add_subparsers(dest="sweep_command", metavar="KIND", required=True)
    o = s.add_parser("overtraining", help="the four (i, h_CL, h_H) settings of §6.4.3, or a grid (Fig 6.5)",
                     description="Sweep (i, h_CL, h_H) with d = 3: the dissertation's (1,3,5), (5,6,10), (10,10,15), "
                     "(20,20,25) on top of --preset (default: default), or the grid --grid-i x --grid-h-cl x "
                     "--grid-h-h. Writes OUT/overtraining.png (a bar per setting, like Fig 6.5).")
    _common(o)
    o.add_argument("--setting", type=int, action="append", choices=[1, 2, 3, 4],
                   help="only the dissertation's setting N (repeatable)")
    o.add_argument("--grid-i", type=int, nargs="+", help="grid values of i")
    o.add_argument("--grid-h-cl", type=int, nargs="+", help="grid values of h_CL")
    o.add_argument("--grid-h-h", type=int, nargs="+", help="grid values of h_H")
    o.set_defaults(func=cmd_sweep, kind="overtraining")
    c = s.add_parser("scale", help="populations of models of growing size (§6.4.5, Fig 6.9)",
                     description="Sweep parameters per model at population 5: --sizes paper (25M, 75M, 200M; GPUs), "
                     "cpu (20k, 60k, 200k), tiny (2k, 5k), or --params N ... . Writes OUT/scale.png (the trend, "
                     "like Fig 6.9).")
    _common(c)
    c.add_argument("--sizes", default="cpu", choices=["paper", "cpu", "tiny"], help="named sizes (default %(default)s)")
    c.add_argument("--params", type=int, nargs="+", help="parameter counts per model instead of --sizes")
    c.add_argument("--population", type=int, default=5, help="models per population (default %(default)s, §6.4.5)")
    c.set_defaults(func=cmd_sweep, kind="scale")


def spec_from_args(args):
    from raycl import RayclError
    from raycl.hyper.config import PRESETS as P
    from raycl.sweeps.space import overtraining_settings, scale_settings
    from raycl.sweeps.tuning import SweepSpec

    overrides = {"source": args.data, "data_root": args.data_root}
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if args.kind == "overtraining":
        base = args.preset or "default"
        grid = {"i": args.grid_i, "h_cl": args.grid_h_cl, "h_h": args.grid_h_h}
        settings = overtraining_settings(base, grid if any(grid.values()) else None, **overrides)
        if args.setting:
            if any(grid.values()):
                raise RayclError("--setting picks one of the dissertation's settings; it does not combine with a grid")
            settings = [settings[n - 1] for n in sorted(set(args.setting))]
    else:
        base = args.preset or ("paper-supervised" if args.sizes == "paper" else "default")
        settings = scale_settings(base, args.sizes, args.params, args.population, **overrides)
    from raycl.sweeps.trial import TRAIN_METRICS

    sets = ("meta-train", "meta-test", "meta-eval")
    known = {*TRAIN_METRICS, *(f"deploy/{s}/{k}" for s in sets for k in ("memory", "generalization"))}
    if args.metric not in known:
        raise RayclError(f"unknown --metric '{args.metric}'; choose one of: {', '.join(sorted(known))}")
    epochs = args.epochs if args.epochs is not None else P[base].epochs
    if epochs < 1:
        raise RayclError("--epochs must be >= 1")
    _check_data_and_resources(args, settings)
    return SweepSpec(
        kind=args.kind, settings=settings, out=Path(args.out), epochs=epochs, seeds=args.seeds, backend=args.backend,
        driver_cpus=args.driver_cpus, cpus_per_model=args.cpus_per_model, gpus_per_model=args.gpus_per_worker,
        threads=args.threads, eval_every=args.eval_every, eval_seeds=args.eval_seeds, eval_lrs=tuple(args.eval_lrs),
        eval_source=args.eval_data, eval_root=args.eval_data_root, scheduler=args.scheduler, metric=args.metric,
        samples=args.samples, max_concurrent=args.max_concurrent, grace_period=args.grace_period,
    )


def _check_data_and_resources(args, settings) -> None:
    """What would otherwise fail inside every trial, after Ray and Tune started."""
    from raycl import RayclError
    from raycl.checks import data_source

    for s in settings:
        for name in str(s.hyper.get("source", "")).split("+"):
            data_source(name, s.hyper.get("data_root"), flag="--data")
    data_source(args.eval_data, args.eval_data_root, flag="--eval-data", root_flag="--eval-data-root")
    if args.eval_every < 1 or args.eval_seeds < 1 or not args.eval_lrs:
        raise RayclError("--eval-every, --eval-seeds and --eval-lrs must be positive")
    gpus = args.gpus_per_worker or 0
    if args.backend == "reference" and args.driver_cpus <= 0 and gpus <= 0:
        raise RayclError("--driver-cpus must be > 0 with --backend reference (the trial runs the whole population)")
    if args.backend == "ray" and args.driver_cpus <= 0:
        raise RayclError("--driver-cpus must be > 0: every trial's driver needs a CPU share")
    if args.backend == "ray" and args.cpus_per_model <= 0 and gpus <= 0:
        raise RayclError("--cpus-per-model must be > 0 (or give --gpus-per-worker): every model's bundle needs a share")
    if args.scheduler == "pbt" and len(settings) != 1:
        from raycl.sweeps.tuning import SweepSpec, _pbt_check

        _pbt_check(SweepSpec(args.kind, settings, Path(args.out), 1, scheduler="pbt"))


SPEC = "sweep.json"  # the settings a sweep was started with; --resume must give the same
# SweepSpec field -> the flags that set it
RESUME_SAME = {"kind": "the sweep kind", "settings": "--preset/--setting/--grid-*/--sizes/--params/--population/"
               "--data", "epochs": "--epochs", "seeds": "--seeds", "backend": "--backend", "scheduler": "--scheduler",
               "metric": "--metric", "samples": "--samples", "grace_period": "--grace-period",
               "eval_every": "--eval-every", "eval_seeds": "--eval-seeds", "eval_lrs": "--eval-lrs",
               "eval_source": "--eval-data", "eval_root": "--eval-data-root"}


def spec_record(spec) -> dict:
    import json

    record = {k: getattr(spec, k) for k in RESUME_SAME}
    record["settings"] = [{"name": s.name, "hyper": s.hyper} for s in spec.settings]
    return json.loads(json.dumps(record, default=str))  # as read back from the file


def check_resume(spec, out: Path) -> None:
    from raycl import RayclError
    from raycl.runio import read_json

    if not (out / SPEC).is_file():
        return  # a sweep from before raycl kept its settings: Tune restores its own
    saved, now = read_json(out / SPEC), spec_record(spec)
    for key, flag in RESUME_SAME.items():
        if key in saved and saved[key] != now[key]:
            if key == "settings":
                names = lambda r: ", ".join(x["name"] for x in r)  # noqa: E731
                raise RayclError(f"--resume: the settings differ from the sweep's in {out} ({names(now[key])} vs "
                                 f"{names(saved[key])}, or their hyper-parameters; set by {flag}); resume with the "
                                 "sweep's settings, or pass --overwrite to start over")
            raise RayclError(f"--resume: {flag} {now[key]} (the sweep in {out} has {saved[key]}); resume with the "
                             "sweep's settings, or pass --overwrite to start over")


def cmd_sweep(args) -> int:
    from raycl.checks import resume_or_overwrite
    from raycl.runio import claim_run, write_json
    from raycl.sweeps.tuning import EXPERIMENT, run_sweep

    resume_or_overwrite(args)
    spec = spec_from_args(args)
    if args.resume:
        check_resume(spec, Path(args.out))
    # Tune's folder and the settings are written as they come (a --resume reads them back);
    # the table, figures and summary.json together once the sweep ends (run_sweep)
    with claim_run(args.out, resume=args.resume, overwrite=args.overwrite, command=f"raycl sweep {args.kind}",
                   marker=EXPERIMENT):
        if not args.resume:
            write_json(Path(args.out) / SPEC, spec_record(spec), now=True)
        s = run_sweep(spec, address=args.address, num_cpus=args.num_cpus, ray_temp_dir=args.ray_temp_dir)
    print(f"{'resumed' if s['resumed'] else 'ran'} {s['trials']} trials: {s['terminated']} finished, "
          f"{s['errored']} errored, {s['unfinished']} unfinished")
    for e in s["errors"]:
        print(f"  error: {e}")
    print(f"table {s['table']}; figures {', '.join(s['figures'])}; TensorBoard: tensorboard --logdir {s['experiment']}")
    if s["unfinished"] or s["errored"]:
        print("not complete: run the same command again with --resume to go on from the trials' checkpoints")
        return 1
    return 0
