"""`raycl hyper-train` and `raycl deploy`."""

from __future__ import annotations

import sys
from pathlib import Path

from raycl.cliargs import config_flags, config_values, out_flags, ray_flags, renamed
from raycl.hyper.config import PRESETS, TRAIN_READOUTS, HyperConfig

READOUT_RULES = (*TRAIN_READOUTS, "ncm")

# the config fields whose flag says it in the shared vocabulary (raycl.cliargs)
FLAG_NAMES = {"source": "--data"}


def _eval_flags(p) -> None:
    """Meta-eval data: deployment's only data flags, so they are --data / --data-root here."""
    p.add_argument("--data", dest="eval_source", default=None,
                   help="meta-eval dataset (default: the offline digits; with --data-root alone, the one of mnist, "
                        "fashion-mnist, kmnist found there, as torchvision lays it out: ROOT/MNIST/raw/...)")
    p.add_argument("--data-root", dest="eval_root", default=None,
                   help="root folder of a real meta-eval dataset (its test split is used: 10 held-out classes)")
    renamed(p, "--eval-source", "--data", dest="eval_source")
    renamed(p, "--eval-root", "--data-root", dest="eval_root")


def register(sub) -> None:
    p = sub.add_parser(
        "hyper-train", help="hyper-train a phenotype with a population of DAN models (§6.3)",
        description="Hyper-train the shared phenotype φ with a population of models, each on its own "
        "hyper-stream. Writes checkpoint.pt (φ, optimizer, θ0, random states), hyper_training.parquet, "
        "TensorBoard scalars under tb/ and config.json into --out.",
    )
    p.add_argument("--preset", default="default", choices=sorted(PRESETS), help="named settings (default: %(default)s)")
    out_flags(p, resume=True)
    p.add_argument("--backend", default="reference", choices=["reference", "ray", "packed"],
                   help="reference: one process; ray: one actor per model and a parameter server; packed: the M "
                        "models stacked in one process (on the GPU when there is one), their steps vmapped together")
    p.add_argument("--seeds", type=int, default=1,
                   help="independent hyper-trainings from seeds S..S+N-1 (S = --seed), each with its own θ0/φ0 and "
                        "streams, as Ray tasks side by side into RUN/seed_S/ (1: one run in RUN)")
    p.add_argument("--max-restarts", type=int, default=3,
                   help="ray backend: times Ray restarts a dead actor before the run gives up")
    x = p.add_argument_group("where it runs (--backend ray, or --seeds N as Ray tasks)")
    ray_flags(x, gpus=1.0, what="--seeds hyper-trainings")
    renamed(x, "--gpus-per-model", "--gpus-per-worker", dest="gpus_per_worker", type=float)
    c = p.add_argument_group("settings (default: the --preset's values, shown for the default preset)")
    config_flags(c, HyperConfig, flag_names=FLAG_NAMES, preset=PRESETS["default"])
    renamed(c, "--source", "--data", dest="source")
    p.set_defaults(func=cmd_hyper_train)

    q = sub.add_parser(
        "deploy", help="deploy a hyper-trained phenotype against its baselines",
        description="Deploy: φ frozen, synapses from θ0 learn d tasks in sequence, each seen once. Compares the "
        "hyper-trained phenotype with the random initial phenotype and iid replay (500 updates), each at its own "
        "learning rate chosen on meta-train classes only. Writes deployment.parquet, summary.json and PNG curves.",
    )
    q.add_argument("run", help="a hyper-training run folder")
    q.add_argument("--d", type=int, action="append", help="deployment tasks (repeatable; default: the run's d)")
    q.add_argument("--sequences", "--seeds", dest="seeds", type=int, default=5,
                   help="deployment sequences per set and phenotype (default %(default)s; --seeds is the old name)")
    _eval_flags(q)
    q.add_argument("--criterion", default="matched", choices=["matched", "memory", "generalization", "both"],
                   help="what each contender's learning rate is chosen for, on meta-train sequences only: matched "
                        "(default) reports memory at the memory-selected rate and generalization at the "
                        "generalization-selected rate; the others use one rate for both")
    q.add_argument("--lrs", type=float, nargs="+", default=None,
                   help="learning rates each contender's rate is chosen from (default: 1e-3 3e-3 1e-2 3e-2 0.1 0.3 1)")
    q.add_argument("--cache", default=None,
                   help="folder of deployment results to reuse (a contender deployed before with the same network, "
                        "settings and data is read back; default RUN/.deployments, 'none' to deploy everything)")
    q.add_argument("--readout-rule", default=None, choices=list(READOUT_RULES),
                   help="read-out rule at deployment (default: the run's own, linear unless it trained with another): "
                        "linear; seen-softmax (softmax over the classes seen so far); reset (a new class's output row "
                        "starts at zero, ANML); ncm (nearest class mean of the last hidden layer). Results of a rule "
                        "other than linear go to deployment_RULE.* and summary_RULE.json beside the linear ones")
    ray_flags(q, gpus=None, what="deployments of a replicated run's phenotypes")
    q.add_argument("--overwrite", action="store_true", help="replace the run's earlier deployment results")
    q.set_defaults(func=cmd_deploy)
    register_report(sub)


def _config(args) -> HyperConfig:
    from raycl.hyper.config import preset

    return preset(args.preset, **config_values(args, HyperConfig))


def cmd_hyper_train(args) -> int:
    import torch

    from raycl.checks import resume_or_overwrite
    from raycl.hyper.trainer import CHECKPOINT, ReferenceTrainer, load_run_checkpoint, meta_train_pool, resume_config
    from raycl.runio import claim_run

    torch.set_num_threads(args.threads)
    options = {}
    if args.backend == "ray":
        from raycl.population.trainer import RayTrainer as Trainer

        options = {"gpus_per_model": args.gpus_per_worker, "max_restarts": args.max_restarts, "threads": args.threads,
                   "address": args.address, "num_cpus": args.num_cpus}
    elif args.backend == "packed":
        from raycl.population.packed import PackedTrainer as Trainer
    else:
        Trainer = ReferenceTrainer
    resume_or_overwrite(args)
    if args.seeds > 1:
        return _hyper_train_seeds(args)
    # everything is checked before the run folder is touched: settings, the checkpoint, the data
    ckpt = None
    if args.resume:
        ckpt = load_run_checkpoint(args.out)
        overrides = config_values(args, HyperConfig)
        cfg = resume_config(ckpt, overrides, args.out)
    else:
        cfg = _config(args)
    if args.backend == "packed":  # refused before --overwrite deletes anything
        from raycl.population.packed import check_packable

        check_packable(cfg)
    pool = meta_train_pool(cfg)
    with claim_run(args.out, resume=args.resume, overwrite=args.overwrite, command="raycl hyper-train",
                   marker=CHECKPOINT):
        trainer = Trainer(cfg, args.out, pool, **options)
        if ckpt is not None:
            trainer.restore(ckpt)
        trainer.train()
    last = [r for r in trainer.history if r["epoch"] == trainer.epoch]
    mean = lambda k: sum(r[k] for r in last) / len(last)  # noqa: E731
    print(f"hyper-trained {trainer.epoch} epochs: hyper-loss {mean('hyper_loss'):.3f}, memory {mean('memory'):.3f}, "
          f"generalization {mean('generalization'):.3f} (end of epoch, on the models' own streams); run in {args.out}")
    return 0


def _hyper_train_seeds(args) -> int:
    from raycl import RayclError
    from raycl.hyper.replicate import SEEDS_FILE, train_seeds
    from raycl.hyper.trainer import meta_train_pool
    from raycl.runio import claim_run, read_json
    from raycl.runner import Runner

    if args.backend != "reference":
        raise RayclError("--seeds trains each phenotype in one Ray task; --backend ray spreads one run's population "
                         "over actors: use one of them")
    cfg = _config(args)
    if args.resume:
        saved = read_json(Path(args.out) / SEEDS_FILE) if (Path(args.out) / SEEDS_FILE).exists() else None
        if saved is None:
            raise RayclError(f"nothing to resume in {args.out} (no {SEEDS_FILE}); drop --resume to start there")
        changed = {k for k, v in cfg.to_dict().items() if k not in ("epochs", "seed") and saved["config"].get(k) != (
            list(v) if isinstance(v, tuple) else v)}
        if changed:
            raise RayclError(f"--resume continues {args.out} with its own settings, but {', '.join(sorted(changed))} "
                             "differ; pass the same preset and flags (only --epochs may change)")
    meta_train_pool(cfg)  # a missing dataset stops here, before any folder exists
    seeds = list(range(cfg.seed, cfg.seed + args.seeds))
    with claim_run(args.out, resume=args.resume, overwrite=args.overwrite, command="raycl hyper-train --seeds",
                   marker=SEEDS_FILE):
        runner = Runner(use_ray=not args.no_ray, address=args.address, num_cpus=args.num_cpus, threads=args.threads)
        summary = train_seeds(Path(args.out), cfg, seeds, runner, resume=args.resume)
    for r in summary["runs"]:
        if r["skipped"]:
            print(f"seed {r['seed']}: already trained {r['epochs']} epochs")
        else:
            print(f"seed {r['seed']}: {r['epochs']} epochs, hyper-loss {r['hyper_loss']:.3f}, memory {r['memory']:.3f}, "
                  f"generalization {r['generalization']:.3f} ({r['cpu_seconds']:.0f} CPU-s)")
    print(f"{len(seeds)} independent hyper-trainings in {args.out}/seed_*; deploy them all with raycl deploy {args.out}")
    return 0


def _run_config(run: Path) -> HyperConfig:
    """The config of a run, or of the first phenotype of a replicated run."""
    from raycl.hyper.replicate import replicated_runs
    from raycl.hyper.trainer import load_run_checkpoint

    first = (replicated_runs(run) or [run])[0]
    return HyperConfig.from_dict(load_run_checkpoint(first)["config"])


def cmd_deploy(args) -> int:
    import torch

    from raycl.hyper.report import deploy_run

    from raycl import RayclError
    from raycl.hyper.trainer import load_run_checkpoint
    from raycl.runio import claim_run, results

    torch.set_num_threads(args.threads)
    run = Path(args.run)
    from raycl.hyper.replicate import SEEDS_FILE

    if not (run / SEEDS_FILE).exists():
        load_run_checkpoint(run)  # a clear error before anything else when it is missing or unsafe
    from raycl.hyper.report import result_suffix

    rule = args.readout_rule or _run_config(run).readout_rule
    sfx = result_suffix(rule)
    if (run / f"deployment{sfx}.parquet").exists() and not args.overwrite:
        raise RayclError(f"{run} already holds a deployment (deployment{sfx}.parquet, summary{sfx}.json); pass "
                         "--overwrite to replace it")
    from raycl.hyper.evaluate import meta_eval_source
    from raycl.hyper.replicate import replicated_runs

    eval_source = meta_eval_source(args.eval_source, args.eval_root)
    folders = replicated_runs(run)
    with claim_run(run, resume=True, command="raycl deploy"), results(run):
        runner = None
        if folders and not args.no_ray:
            from raycl.runner import Runner

            runner = Runner(use_ray=True, address=args.address, num_cpus=args.num_cpus, threads=args.threads)
        summary = deploy_run(run, ds=args.d, seeds=args.seeds, eval_source=eval_source,
                             eval_root=args.eval_root, criterion=args.criterion, runner=runner, lrs=args.lrs,
                             cache=None if args.cache == "none" else Path(args.cache or run / ".deployments"),
                             rule=rule)
    for change in summary["data_changed"]:
        print(f"raycl: warning: deployed on other data than the run trained on ({change}): the data fingerprint "
              "differs (a changed dataset, renderer or preprocessing)", file=sys.stderr)
    for d, entry in summary["by_d"].items():
        print(f"\nd = {d}\n{entry['table']}")
    print(f"\nwrote {Path(args.run) / f'summary{sfx}.json'}")
    return 0


def register_report(sub) -> None:
    p = sub.add_parser("report", help="write Markdown reports from result folders",
                       description="Reports that read run folders and write one Markdown file with tables and PNGs.")
    rsub = p.add_subparsers(dest="report_command", metavar="KIND", required=True)
    h = rsub.add_parser(
        "hyper", help="Hyper-Learning against tuned baselines, the IID control, diagnostics",
        description="For every hyper-training run under RESULTS: deploy the hyper-trained phenotype, its IID "
        "control (trained into RUN/iid-control when missing), random phenotypes at gains 1/1.5/2, a tanh MLP and "
        "iid replay, each at its own learning rate chosen on meta-train only, at each d over --seeds sequences; "
        "representation diagnostics; writes RESULTS/report.md with PNGs.",
    )
    h.add_argument("results", help="folder holding hyper-training runs (e.g. runs/)")
    h.add_argument("--out", default=None, help="Markdown file (default RESULTS/report.md)")
    h.add_argument("--d", type=int, action="append", help="deployment tasks (repeatable; default 5 and 10)")
    h.add_argument("--sequences", "--seeds", dest="seeds", type=int, default=20,
                   help="deployment sequences per set (default %(default)s; --seeds is the old name)")
    _eval_flags(h)
    h.add_argument("--lrs", type=float, nargs="+", default=None,
                   help="learning rates each contender's rate is chosen from (default: 1e-3 3e-3 1e-2 3e-2 0.1 0.3 1)")
    h.add_argument("--no-iid-control", action="store_true",
                   help="do not train missing IID controls (existing RUN/iid-control checkpoints are still used)")
    h.add_argument("--threads", type=int, default=1, help="torch threads")
    h.add_argument("--cache", default=None,
                   help="folder of deployment results shared between reports (default RESULTS/.deployments): a "
                        "baseline deployed before with the same network, settings and data is read back")
    h.set_defaults(func=cmd_report_hyper)
    lad = rsub.add_parser(
        "ladder", help="the over-training ladder (§6.4.3): gain over the tuned baselines, rung by rung",
        description="Reads the deployments of several runs (one per rung of over-training, e.g. the presets "
        "overtrain-1..4 trained with --seeds N and deployed with `raycl deploy RUN --d 3`) and writes a Markdown "
        "table and a figure of generalization against the best tuned replay-free baseline, with the spread over "
        "phenotypes.",
    )
    lad.add_argument("runs", nargs="+", help="deployed run folders, lowest rung first")
    lad.add_argument("--d", type=int, default=3, help="deployment tasks to read (default %(default)s)")
    lad.add_argument("--out", required=True, help="Markdown file to write (the figure goes beside it as .png)")
    lad.add_argument("--overwrite", action="store_true", help="replace an earlier ladder report in --out")
    lad.set_defaults(func=cmd_report_ladder)


def cmd_report_hyper(args) -> int:
    import torch

    from raycl.hyper.config import DEFAULT_LRS
    from raycl.hyper.study import report_hyper

    from raycl import RayclError
    from raycl.hyper.study import find_runs
    from raycl.runio import claim_run, results

    torch.set_num_threads(args.threads)
    root = Path(args.results)
    if not root.is_dir():
        raise RayclError(f"{root} is not a folder; give the folder that holds your hyper-training runs")
    find_runs(root)  # none: a clear error now, not after the first deployments
    from raycl.hyper.evaluate import meta_eval_source

    eval_source = meta_eval_source(args.eval_source, args.eval_root)
    out = Path(args.out) if args.out else root / "report.md"
    if out.is_dir():
        raise RayclError(f"--out {out} is a folder; give the Markdown file to write")
    # the report, its figures (in each run folder) and the missing IID controls are one result set
    with claim_run(root, resume=True, command="raycl report hyper"), results(root), results(out.parent):
        out = report_hyper(root, out, tuple(args.d or (5, 10)), args.seeds, eval_source, args.eval_root,
                           train_control=not args.no_iid_control, cache=Path(args.cache) if args.cache else None,
                           lrs=tuple(args.lrs) if args.lrs else DEFAULT_LRS)
    print(f"wrote {out}")
    return 0


def cmd_report_ladder(args) -> int:
    from raycl.checks import output_file
    from raycl.hyper.ladder import report_ladder

    out = output_file(args.out, args.overwrite)
    output_file(out.with_suffix(".png"), args.overwrite)
    print(f"wrote {report_ladder([Path(r) for r in args.runs], args.d, out)}")
    return 0
