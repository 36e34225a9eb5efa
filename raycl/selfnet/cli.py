"""`raycl selfnet continual | scaling | robustness | multiarch`."""

from __future__ import annotations

import argparse

from raycl import RayclError
from raycl.cliargs import data_flags, floats, ints, out_flags, ray_flags, renamed, seed_flags

DEFAULT_BASELINES = "sgd,l2,online_l2,ewc,online_ewc,pc,si,lwf,replay"


class _Workers(argparse.Action):
    """The old `--workers N`: N > 0 was Ray on N CPUs, 0 this process (now --num-cpus / --no-ray)."""

    def __call__(self, parser, namespace, values, option_string=None):
        import sys

        sys.stderr.write("raycl: warning: --workers is now --num-cpus N (or --no-ray for 0); the old name goes "
                         "in the next release\n")
        namespace.no_ray, namespace.num_cpus = values == 0, values or None


def _common(p: argparse.ArgumentParser, stream: str | None = "split", tasks: int = 20, tuning: bool = True,
            seeds: bool = False) -> None:
    """The flags every action takes; `stream=None`: the action picks its own streams;
    `tuning=False`: every network trains from scratch (no fine-tuning flags); `seeds`: --seeds N
    repeats the whole experiment."""
    from raycl.selfnet.names import STREAMS

    g = p.add_argument_group("data and stream")
    out_flags(g, what="run folder: metrics.parquet, summary.json, tb/, PNGs")
    data_flags(g, default="digits",
               what="image source (default: the offline digits; mnist/cifar10/cifar100 need --data-root)")
    if stream is not None:
        g.add_argument("--stream", default=stream, choices=STREAMS,
                       help="permuted | split (1 positive vs 4 negative digits) | pairs | cifar10 (one class vs "
                            "rest) | cifar100 (tasks of 10 classes)")
    g.add_argument("--tasks", type=int, default=tasks, help="number of tasks in the stream")
    seed_flags(g, seeds=1 if seeds else None,
               what="independent repeats of the whole experiment (a new stream order, initial weights and AE each), "
                    "as Ray tasks side by side into RUN/seed_S/; RUN/summary.json gives each method's final accuracy "
                    "as mean ± sample std over them")
    t = p.add_argument_group("task networks")
    t.add_argument("--epochs", type=int, default=15, help="epochs for networks trained from scratch")
    t.add_argument("--lr", type=float, default=0.02, help="SGD learning rate of networks trained from scratch")
    t.add_argument("--momentum", type=float, default=0.9, help="SGD momentum of networks trained from scratch")
    x = p.add_argument_group("execution (task networks train as Ray tasks)")
    ray_flags(x, gpus=0.25, what="task networks")
    x.add_argument("--workers", type=int, action=_Workers, help=argparse.SUPPRESS)
    renamed(x, "--ray-address", "--address", dest="address")
    if not tuning:
        return
    t.add_argument("--tune-epochs", type=int, default=10, help="epochs for networks fine-tuned from the source")
    t.add_argument("--tune-lr", type=float, default=0.01, help="SGD learning rate of fine-tuned networks")
    t.add_argument("--tune-momentum", type=float, default=0.5, help="SGD momentum of fine-tuned networks")
    t.add_argument("--anchor-lam", type=float, default=1e-3, help="λ of λ·MSE(θ*, θ) in fine-tuning (eq 2.5)")
    t.add_argument("--anchor-reduction", choices=("mean", "sum"), default="mean",
                   help="mean: the text's MSE; sum: the authors' code, Σ(θ − θ*)²")
    t.add_argument("--init-source", default="first-batch-mean", choices=("first-batch-mean", "first-task", "none"),
                   help="θ* for later networks: mean of the first buffer's networks (§2.4.2), the first task's "
                        "network, or none (every network from its own random init)")


def _ae(p: argparse.ArgumentParser, latent=5, buffer=5, thresholds="0.9996,0.987,0.986", max_iters=3000,
        decoder_hidden=None, stop="mean", lr="3e-3,1e-4", contractive=1e-4, store: bool = True) -> None:
    """The auto-encoder's flags; `store=False`: one fit, no buffered consolidations (multiarch)."""
    g = p.add_argument_group("auto-encoder and store (Algorithm 1)")
    g.add_argument("--latent", type=int, default=latent, help="s: latent floats per (sub-)network")
    g.add_argument("--hidden", type=ints, default=(), help="hidden layer sizes between input and latent, e.g. 32")
    g.add_argument("--activation", default="elu", choices=("tanh", "sigmoid", "elu", "relu", "linear"),
                   help="the auto-encoder's activation")
    if store:
        g.add_argument("--decoder-hidden", type=ints, default=decoder_hidden,
                       help="decoder hidden sizes between latent and output (default: --hidden mirrored), e.g. 32")
        g.add_argument("--buffer", type=int, default=buffer, help="m: networks waiting before the AE is retrained")
        g.add_argument("--stop", choices=("mean", "min"), default=stop,
                       help="threshold on the mean cosine (Algorithm 1) or on every network's (the authors' code)")
    g.add_argument("--thresholds", type=floats, default=floats(thresholds),
                   help="cosine threshold per consolidation; the last repeats" if store else
                        "cosine threshold of the shared AE (the first value is used)")
    g.add_argument("--contractive", type=float, default=contractive,
                   help="λ of the Jacobian penalty (eq 2.3; the text's value is 1e-4)")
    g.add_argument("--ae-lr", type=floats, default=floats(lr),
                   help="Adam learning rate of the AE per consolidation; the last repeats" if store else
                        "Adam learning rate of the AEs (the first value is used)")
    g.add_argument("--max-iters", type=int, default=max_iters, help="cap on AE updates per consolidation")
    g.add_argument("--no-residual", dest="residual", action="store_false",
                   help="code raw networks, not differences from the decoder's bias started at the first "
                        "networks' mean (the default; see docs/selfnet.md)")
    g.add_argument("--ae-input", type=int, default=None,
                   help="AE input size n; larger networks are split into zero-padded n-long sub-vectors")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("selfnet", help="Self-Net: task networks compressed by one contractive auto-encoder",
                       description="Self-Net (dissertation Chapter 2): every task gets its own network; "
                                   "one contractive auto-encoder stores them all as s-float latents.")
    s = p.add_subparsers(dest="selfnet_command", metavar="ACTION", required=True)

    c = s.add_parser("continual", help="Self-Net against SGD, L2, Online L2, EWC, Online EWC, P&C, SI, LwF and "
                                       "replay (Fig 2.4/2.5)",
                     description="Learn a task stream with Self-Net and with every baseline; after each stage "
                                 "evaluate all tasks seen (Self-Net through its recollections). Each baseline is "
                                 "its own job (a Ray task unless --no-ray), running while Self-Net learns.")
    _common(c, seeds=True)
    # defaults: the configuration that keeps 20 Split tasks within 3 points at latent 5 (docs/results/selfnet.md)
    _ae(c, thresholds="0.999", decoder_hidden=(32,), stop="min", lr="3e-3", contractive=1e-6)
    c.add_argument("--baselines", default=DEFAULT_BASELINES, help="comma list, or 'none'")
    c.add_argument("--baseline-lam", type=float, default=None, help="override every baseline's λ")
    c.add_argument("--heads", choices=("shared", "task-aware", "both"), default="shared",
                   help="the baselines' output heads: shared (one head for every task, task-agnostic: the chapter's "
                        "protocol), task-aware (a head per task, chosen by the task's identity at test time, as "
                        "Self-Net's per-task recollection is), or both")
    c.set_defaults(func=cmd_continual)

    sc = s.add_parser("scaling", help="compression scaling on Split tasks (Fig 2.3)",
                      description="Self-Net alone over many tasks: accuracy against compression factor k/s, "
                                  "AE updates per consolidation, and an AE trained on all networks at once.")
    _common(sc, tasks=50, seeds=True)
    _ae(sc)
    sc.set_defaults(func=cmd_scaling, baselines="none", baseline_lam=None, heads="shared")

    r = s.add_parser("robustness", help="accuracy against cosine under Gaussian weight noise (Fig 2.2)",
                     description="Add zero-mean Gaussian noise (σ relative to the weights' std) to trained task "
                                 "networks; plot accuracy against cosine similarity to the originals.")
    _common(r, tasks=3, tuning=False, seeds=True)
    r.add_argument("--sigmas", type=floats, default=floats("0.02,0.05,0.08,0.1,0.15,0.2,0.3,0.5,0.8,1.2,2,3"),
                   help="noise std per weight, relative to the weights' std")
    r.add_argument("--draws", type=int, default=4, help="noise draws per σ per network")
    r.add_argument("--threshold", type=float, default=0.997, help="cosine line to draw and summarise at")
    r.set_defaults(func=cmd_robustness)

    m = s.add_parser("multiarch", help="one AE for MNIST and CIFAR networks; sub-vectors vs whole (Fig 2.7)",
                     description="Left: an AE over 3 sub-vectors of a 61,326-parameter CIFAR network against an AE "
                                 "over the whole vector. Right: one AE holding MNIST and CIFAR networks together.")
    _common(m, stream=None, tasks=5, tuning=False, seeds=True)
    _ae(m, latent=16, thresholds="0.997", max_iters=3000, store=False)
    m.add_argument("--curve-iters", type=int, default=300, help="AE updates for the left panel's curves")
    m.set_defaults(func=cmd_multiarch)


def _check(args) -> None:
    """The settings that need no data: checked before anything is loaded or written."""
    from raycl.checks import data_source

    if args.tasks < 1:
        raise RayclError("--tasks must be at least 1")
    data_source(args.data, args.data_root, args.download)
    _baselines(args)
    for name in ("thresholds", "ae_lr", "sigmas"):  # comma lists: at least one value
        if name in vars(args) and not getattr(args, name):
            raise RayclError(f"--{name.replace('_', '-')} needs at least one value")


def _baselines(args) -> list[str]:
    from raycl.selfnet.baselines import BASELINES

    text = getattr(args, "baselines", "none")
    baselines = [] if text in ("none", "") else [b.strip() for b in text.split(",") if b.strip()]
    for b in baselines:
        if b not in BASELINES:
            raise RayclError(f"unknown baseline '{b}'; choose from: {', '.join(BASELINES)} (or none)")
    if len(set(baselines)) != len(baselines):
        raise RayclError(f"--baselines repeats a method: {text}")
    return baselines


def _in_run_folder(args, body, kinds=None, **kw) -> int:
    """Check the settings and load the data (streams are cached for `body`), then run `body`
    holding --out: a folder that holds a run is refused unless --overwrite, and the result
    files are written together when `body` succeeds, summary.json last."""
    from raycl.runio import claim_run, results

    _check(args)
    for kind in kinds or (args.stream,):
        _stream(args, kind)
    with claim_run(args.out, overwrite=args.overwrite, command=f"raycl selfnet {args.selfnet_command}"), \
            results(args.out):
        return body(args, **kw)


def _setup(args):
    import torch

    from raycl.runio import RunDir

    torch.set_num_threads(args.threads)
    return RunDir(args.out)


def _train_cfgs(args):
    """Networks trained from scratch and, where the action fine-tunes, networks tuned from θ*."""
    from raycl.selfnet.train import TaskNetConfig

    first = TaskNetConfig(args.epochs, 32, args.lr, args.momentum)
    if "tune_epochs" not in vars(args):
        return first, None
    anchor = dict(anchor_lam=args.anchor_lam, anchor_reduction=args.anchor_reduction)
    first = TaskNetConfig(args.epochs, 32, args.lr, args.momentum, **anchor)
    tune = TaskNetConfig(args.tune_epochs, 32, args.tune_lr, args.tune_momentum, **anchor, lr_flag="--tune-lr")
    return first, tune


def _trainer(args):
    from raycl.cliargs import runner
    from raycl.selfnet.trainers import TaskNetTrainer

    return TaskNetTrainer(runner(args, progress=False))


def _stream(args, kind=None):
    from raycl.selfnet.names import STREAM_ARCH
    from raycl.selfnet.streams import load_pair, make_stream

    kind = kind or args.stream
    cache = vars(args).setdefault("_streams", {})  # loaded once, before the run folder is claimed
    if kind not in cache:
        train, test = load_pair(args.data, args.data_root, args.download)
        tasks = make_stream(kind, train, test, args.tasks, args.seed)
        arch = STREAM_ARCH[kind]
        # the MNIST network keeps its 10 outputs (21,840 parameters) for binary tasks too
        num_outputs = 10 if arch == "mnist" else max(t.num_classes for t in tasks)
        cache[kind] = (tasks, arch, num_outputs)
    return cache[kind]


def _snconfig(args):
    from raycl.selfnet.experiments import SelfNetConfig

    return SelfNetConfig(args.latent, tuple(args.hidden), args.activation, args.buffer, tuple(args.thresholds),
                         args.contractive, args.ae_lr, args.max_iters, args.stop, args.ae_input, args.init_source,
                         None if args.decoder_hidden is None else tuple(args.decoder_hidden), args.residual)


def _submit_baselines(jobs, args, tasks, arch: str, num_outputs: int) -> list:
    """Every baseline in every --heads form as its own job of `jobs` (with Ray they start now)."""
    from raycl.selfnet.experiments import run_baseline

    first, _ = _train_cfgs(args)
    forms = {"shared": (False,), "task-aware": (True,), "both": (False, True)}[args.heads]
    shared = jobs.put(tasks)
    return [jobs.submit(run_baseline, b, shared, arch, num_outputs, first, args.baseline_lam, args.seed,
                        task_aware=aware) for b in _baselines(args) for aware in forms]


def _run_continual(args, scaling: bool, quiet: bool = False, baselines_done: list | None = None):
    """The experiment, written into --out; `quiet` (a job of --seeds): no bars or lines, and the
    rows and summary are returned. `baselines_done`: the baselines' results, already run
    elsewhere (--seeds on Ray runs each as its own task)."""
    from tqdm import tqdm

    from raycl.selfnet.experiments import run_selfnet

    run = _setup(args)
    tasks, arch, num_outputs = _stream(args)
    first, tune = _train_cfgs(args)
    baselines = _baselines(args)
    bar = tqdm(total=len(tasks) * (1 + len(baselines) * (2 if args.heads == "both" else 1)), desc="stages",
               unit="task", disable=quiet)

    def on_stage(method, stage, rows):
        cur = [r["accuracy"] for r in rows if r["stage"] == stage and r["method"] == method]
        run.scalar(f"{method}/mean_accuracy", sum(cur) / len(cur), stage)
        bar.set_postfix_str(f"{method} {sum(cur) / len(cur):.3f}")
        bar.update(1)

    def on_ae(it, cos):
        if it % 25 == 0:
            bar.set_postfix_str(f"AE update {it}, {args.stop} cosine {cos:.5f}")

    trainer = _trainer(args)
    jobs = trainer.runner
    pending = None if baselines_done is not None else _submit_baselines(jobs, args, tasks, arch, num_outputs)
    try:
        sn = run_selfnet(tasks, arch, num_outputs, _snconfig(args), first, tune, trainer, args.seed, on_stage,
                         on_ae=on_ae)
        rows = list(sn["rows"])
        finals, diverged = {}, {}
        for res in baselines_done if pending is None else jobs.gather(pending, desc="baselines"):
            for stage in sorted({r["stage"] for r in res["rows"]}):
                on_stage(res["method"], stage, res["rows"])
            rows += res["rows"]
            if res["diverged"]:
                diverged[res["method"]] = res["diverged"]
            else:
                finals[res["method"]] = res["final"]
    finally:  # the bar's last line before any error message
        trainer.close()
        bar.close()
    for f in sn["fits"]:
        run.scalar("selfnet/ae_iterations", f["iterations"], f["stage"])
        run.scalar("selfnet/ae_mean_cosine", f["mean_cosine"], f["stage"])
    from raycl.runio import torch_save
    from raycl.selfnet.streams import provenance

    prov = provenance(tasks)  # the task datasets of the stream, as trained and tested on
    torch_save(run.path / "store.pt", {**sn["store"].state_dict(), "provenance": prov})
    summary = {
        "stream": args.stream, "data": args.data, "tasks": len(tasks), "arch": arch,
        "task_network_params": sn["storage"]["independent_floats"] // len(tasks),
        "latent": args.latent, "buffer": args.buffer, "thresholds": list(args.thresholds), "residual": args.residual,
        "selfnet": {"final_reconstructed_acc": sn["final_reconstructed"], "final_original_acc": sn["final_original"],
                    "gap_points": 100 * (sn["final_original"] - sn["final_reconstructed"]),
                    "final_mean_cosine": sn["final_mean_cosine"], "consolidations": sn["fits"],
                    "storage": sn["storage"]},
        "baselines_final_acc": finals,
        "baselines_diverged": diverged,  # left out of baselines_final_acc
        "provenance": prov,
    }
    if finals:
        summary["selfnet_above_every_baseline"] = all(sn["final_reconstructed"] > v for v in finals.values())
    summary["within_3_points"] = summary["selfnet"]["gap_points"] <= 3.0
    title = f"{args.stream} on {args.data}: {len(tasks)} tasks, latent {args.latent}, buffer {args.buffer}"
    from raycl.selfnet import plots

    if scaling:
        from raycl.selfnet.experiments import single_batch_accuracy

        sb = single_batch_accuracy(sn["originals"], tasks, arch, num_outputs, _snconfig(args), args.seed)
        summary["single_batch"] = sb
        run.figure(plots.scaling(rows, sn["fits"], sb["reconstructed_acc"], title), "scaling.png")
    run.figure(plots.continual(rows, title), "continual.png")
    run.rows = rows
    run.summary(summary)
    run.close()
    if quiet:
        return rows, {k: v for k, v in summary.items() if k != "provenance"}
    s = summary["selfnet"]
    print(f"Self-Net: reconstructed {s['final_reconstructed_acc']:.4f} vs original {s['final_original_acc']:.4f} "
          f"(gap {s['gap_points']:.2f} points), storage ratio {s['storage']['storage_ratio']:.2f}x")
    for b, v in finals.items():
        print(f"{b}: {v:.4f}")
    _warn_diverged(diverged.values())
    print(f"wrote {run.path}")
    return 0


def _warn_diverged(messages) -> None:
    import sys

    for m in messages:
        print(f"raycl: warning: {m}; its accuracy is left out of the summary", file=sys.stderr)


def continual_seed(args, seed: int, scaling: bool, *baselines_done) -> tuple[list[dict], dict]:
    """One repeat of --seeds N: Self-Net for `seed` into RUN/seed_S/, in the job's own process
    (its task networks one after another there), with the seed's baselines' results, which ran
    as jobs of their own (Ray hands them in as arguments when they are done)."""
    return _run_continual(_seed_args(args, seed), scaling, quiet=True, baselines_done=list(baselines_done))


def _seed_args(args, seed: int) -> argparse.Namespace:
    """The settings of one repeat of --seeds N: its seed, RUN/seed_S/, in this process, quiet;
    its stream is built anew (it depends on the seed)."""
    from pathlib import Path

    args = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "_streams"})
    args.seed, args.out, args.no_ray, args.quiet = seed, str(Path(args.out) / f"seed_{seed}"), True, True
    return args


def _run_seeds(args, scaling: bool) -> int:
    from raycl.cliargs import runner
    from raycl.runio import RunDir
    from raycl.selfnet import plots
    from raycl.stats import PLUS_MINUS, describe, fmt

    seeds = list(range(args.seed, args.seed + args.seeds))
    jobs = runner(args)
    pending = []
    for s in seeds:  # every (seed, baseline, head form) its own job, so a cluster runs them all at once
        one = _seed_args(args, s)
        baselines = _submit_baselines(jobs, one, *_stream(one))
        if not jobs.use_ray:  # in this process a job runs at gather: its results, not handles
            baselines = jobs.gather(baselines, desc="baselines")
        pending.append(jobs.submit(continual_seed, args, s, scaling, *baselines))
    done = jobs.gather(pending, desc="seeds")
    rows = [{**r, "seed": s} for s, (rs, _) in zip(seeds, done) for r in rs]
    finals = {"selfnet": [d["selfnet"]["final_reconstructed_acc"] for _, d in done],
              "selfnet (original networks)": [d["selfnet"]["final_original_acc"] for _, d in done]}
    for _, d in done:
        for m, v in d["baselines_final_acc"].items():
            finals.setdefault(m, []).append(v)
    summary = {
        "what": f"final accuracy over all tasks after the last one, {PLUS_MINUS} over {len(seeds)} seeds "
                "(independent repeats: stream order, initial weights, AE)",
        "seeds": seeds, "stream": args.stream, "data": args.data, "tasks": args.tasks,
        "final_accuracy": {m: describe(v) for m, v in finals.items()},  # n: the seeds where it did not diverge
        "diverged": [m for _, d in done for m in d["baselines_diverged"].values()],
        "per_seed": {str(s): d for s, (_, d) in zip(seeds, done)},
    }
    run = RunDir(args.out)
    run.rows = rows
    title = f"{args.stream} on {args.data}: {args.tasks} tasks, mean over {len(seeds)} seeds"
    run.figure(plots.continual(rows, title), "continual.png")
    if scaling:
        from raycl.selfnet.experiments import after_consolidations

        single = [d["single_batch"]["reconstructed_acc"] for _, d in done]
        consolidated = after_consolidations(rows)
        summary["single_batch_acc"] = describe(single)
        summary["by_compression_factor"] = {
            f"{cf:g}": {"accuracy": describe(list(g.accuracy)), "original_acc": describe(list(g.original_acc))}
            for cf, g in consolidated.groupby("compression_factor")}
        run.figure(plots.scaling_seeds(consolidated, single, title), "scaling.png")
    run.summary(summary)
    run.close()
    print(summary["what"])
    for m, st in summary["final_accuracy"].items():
        print(f"{m:<28} {fmt(st, 100, 1)} %  (n={st['n']})")
    for cf, st in summary.get("by_compression_factor", {}).items():
        print(f"compression factor {cf:<9} {fmt(st['accuracy'], 100, 1)} %  (originals {fmt(st['original_acc'], 100, 1)} %)")
    _warn_diverged(summary["diverged"])
    print(f"wrote {args.out}/summary.json, metrics.parquet (a seed column), continual.png; each seed in seed_S/")
    return 0


def _continual_or_seeds(args, scaling: bool) -> int:
    return (_run_seeds if args.seeds > 1 else _run_continual)(args, scaling)


def cmd_continual(args) -> int:
    return _in_run_folder(args, _continual_or_seeds, scaling=False)


def cmd_scaling(args) -> int:
    return _in_run_folder(args, _continual_or_seeds, scaling=True)


def repeat_seed(body, args, seed: int) -> dict:
    """One repeat of --seeds N for an action without baselines: `body` for `seed` into
    RUN/seed_S/, in the job's own process and without bars or lines; its summary."""
    from pathlib import Path

    from raycl.runio import read_json

    args = _seed_args(args, seed)
    body(args)
    return read_json(Path(args.out) / "summary.json")  # held until the whole run succeeds


def _repeated(body, measures: dict):
    """`body` once, or with --seeds N as Ray tasks side by side, RUN/summary.json giving each of
    `measures` (name: function of one seed's summary) as mean ± sample std over the seeds that
    have it (n says how many: a seed with no noisy network above the threshold has no drop there)."""
    def run(args) -> int:
        if args.seeds <= 1:
            return body(args)
        from raycl.cliargs import runner
        from raycl.runio import RunDir
        from raycl.stats import PLUS_MINUS, describe, fmt

        seeds = list(range(args.seed, args.seed + args.seeds))
        jobs = runner(args)
        done = jobs.gather([jobs.submit(repeat_seed, body, args, s) for s in seeds], desc="seeds")
        summary = {"what": f"{PLUS_MINUS} over {len(seeds)} seeds (independent repeats, each with its own stream, networks and random draws)",
                   "seeds": seeds, **{m: describe([v for v in map(f, done) if v is not None]) for m, f in measures.items()},
                   "per_seed": {str(s): d for s, d in zip(seeds, done)}}
        out = RunDir(args.out)
        out.summary(summary)
        out.close()
        print(summary["what"])
        for m in measures:
            print(f"{m:<40} {fmt(summary[m], 1, 4)}")
        print(f"wrote {args.out}/summary.json; each seed in seed_S/")
        return 0
    return run


def _gap(d: dict, arch: str | None = None) -> float:
    """Mean accuracy points lost by the shared AE's recollections (of `arch`'s networks)."""
    rows = [r for r in d["shared_ae"]["networks"] if arch in (None, r["arch"])]
    return 100 * sum(r["original_acc"] - r["reconstructed_acc"] for r in rows) / len(rows)


def cmd_robustness(args) -> int:
    return _in_run_folder(args, _repeated(_robustness, {
        "max_drop_above_threshold_points": lambda d: d["max_drop_above_threshold_points"],
        "mean_drop_above_threshold_points": lambda d: d["mean_drop_above_threshold_points"],
        "mean_drop_below_threshold_points": lambda d: d["mean_drop_below_threshold_points"]}))


def _robustness(args) -> int:
    from tqdm import tqdm

    from raycl.selfnet.experiments import robustness
    from raycl.selfnet.trainers import TNJob
    from raycl.selfnet import plots

    run = _setup(args)
    tasks, arch, num_outputs = _stream(args)
    first, _ = _train_cfgs(args)
    trainer = _trainer(args)
    try:
        results = trainer(tasks, arch, num_outputs, [TNJob(i, first, args.seed + 1 + i) for i in range(len(tasks))])
    finally:
        trainer.close()
    rows = []
    quiet = vars(args).get("quiet", False)
    for i in tqdm(range(len(tasks)), desc="noise", unit="net", disable=quiet):
        for r in robustness([(tasks[i], *results[i])], arch, num_outputs, args.sigmas, args.draws, args.seed + i):
            r["network"] = i
            rows.append(r)
    import pandas as pd

    df = pd.DataFrame(rows)
    df["drop"] = df.original_acc - df.accuracy
    above = df[df.cosine >= args.threshold]
    below = df[df.cosine < args.threshold]
    summary = {"stream": args.stream, "data": args.data, "networks": len(tasks), "threshold": args.threshold,
               "points": len(df), "points_above_threshold": len(above),
               "max_drop_above_threshold_points": 100 * float(above["drop"].max()) if len(above) else None,
               "mean_drop_above_threshold_points": 100 * float(above["drop"].mean()) if len(above) else None,
               "mean_drop_below_threshold_points": 100 * float(below["drop"].mean()) if len(below) else None,
               "by_sigma": df.groupby("sigma")[["cosine", "accuracy"]].mean().reset_index().to_dict("records")}
    from raycl.selfnet.streams import provenance

    summary["provenance"] = provenance(tasks)
    run.rows = rows
    run.figure(plots.robustness(rows, args.threshold, f"{args.stream} on {args.data}: Gaussian noise on weights"),
               "robustness.png")
    run.summary(summary)
    run.close()
    if quiet:
        return 0
    print(f"cosine >= {args.threshold}: max accuracy drop {summary['max_drop_above_threshold_points']} points "
          f"over {len(above)} noisy networks; below it: mean drop {summary['mean_drop_below_threshold_points']}")
    print(f"wrote {run.path}")
    return 0


def cmd_multiarch(args) -> int:
    return _in_run_folder(args, _repeated(_multiarch, {
        "shared_ae_mean_gap_points": _gap,
        "shared_ae_cifar_gap_points": lambda d: _gap(d, "cifar"),
        "shared_ae_min_cosine": lambda d: min(r["cosine"] for r in d["shared_ae"]["networks"]),
        "shared_ae_updates": lambda d: d["shared_ae"]["iterations"],
        "left_sub_vectors_final_cosine": lambda d: next(v for k, v in d["curves"].items() if "sub" in k)["final_cosine"],
        "left_whole_final_cosine": lambda d: next(v for k, v in d["curves"].items() if "whole" in k)["final_cosine"]}),
        kinds=("split", "cifar10"))


def _multiarch(args) -> int:
    import torch

    from raycl.selfnet import plots
    from raycl.selfnet.ae import ContractiveAE
    from raycl.selfnet.experiments import curve, multi_arch
    from raycl.selfnet.store import NetMeta
    from raycl.selfnet.trainers import TNJob

    run = _setup(args)
    first, _ = _train_cfgs(args)
    trainer = _trainer(args)
    try:
        mtasks, march, mout = _stream(args, "split")
        ctasks, carch, cout = _stream(args, "cifar10")
        mres = trainer(mtasks, march, mout, [TNJob(i, first, args.seed + 1 + i) for i in range(len(mtasks))])
        cres = trainer(ctasks, carch, cout, [TNJob(0, first, args.seed + 100)])
    finally:
        trainer.close()
    cifar = cres[0][0]
    n = args.ae_input or 20442
    # left: 3 sub-vectors of 20,442 against the whole 61,326-vector, same latent and updates
    torch.manual_seed(args.seed)
    split_ae = ContractiveAE(n, args.latent, tuple(args.hidden), args.activation)
    whole_ae = ContractiveAE(cifar.numel(), args.latent, tuple(args.hidden), args.activation)
    h_split, t_split = curve(split_ae, [cifar], args.curve_iters, args.ae_lr[0], args.contractive)
    h_whole, t_whole = curve(whole_ae, [cifar], args.curve_iters, args.ae_lr[0], args.contractive)
    # right: one AE, MNIST and CIFAR networks together
    vectors = [f for f, _ in mres] + [cifar]
    metas = [NetMeta(march, mout, f.numel()) for f, _ in mres] + [NetMeta(carch, cout, cifar.numel())]
    res = multi_arch(vectors, metas, list(mtasks) + [ctasks[0]], n, args.latent, args.thresholds[0], args.ae_lr[0],
                     args.contractive, args.max_iters, args.activation, args.seed, args.residual)
    curves = {f"{n:,}-input AE, 3 sub-vectors": h_split, f"{cifar.numel():,}-input AE, whole network": h_whole}
    run.rows = res["rows"]
    run.figure(plots.multi_arch(curves, res["rows"], "one AE, several architectures"), "multiarch.png")
    fit = res["fit"]
    summary = {"curves": {k: {"final_cosine": v[-1], "updates": len(v) - 1} for k, v in curves.items()},
               "curve_seconds": {"split": t_split, "whole": t_whole},
               "ae_params": {"split": split_ae.num_params(), "whole": whole_ae.num_params()},
               "shared_ae": {"reached": fit.reached, "iterations": fit.iterations, "threshold": fit.threshold,
                             "residual": args.residual,
                             "networks": res["rows"], "storage": res["storage"]}}
    from raycl.selfnet.streams import provenance

    summary["provenance"] = provenance(list(mtasks) + [ctasks[0]])  # the networks' tasks (the CIFAR one's alone)
    for name, h in curves.items():
        for i, v in enumerate(h):
            run.scalar(f"curve/{'split' if 'sub' in name else 'whole'}", v, i)
    run.summary(summary)
    run.close()
    if vars(args).get("quiet"):
        return 0
    for r in res["rows"]:
        print(f"{r['arch']:>5} {r['params']:>6} params, {r['sub_vectors']} sub-vectors: original "
              f"{r['original_acc']:.3f} recollection {r['reconstructed_acc']:.3f} cosine {r['cosine']:.4f}")
    print(f"wrote {run.path}")
    return 0
