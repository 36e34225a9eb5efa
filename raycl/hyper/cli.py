"""`raycl hyper-train` and `raycl deploy`."""

from __future__ import annotations

import argparse
from pathlib import Path

from raycl.hyper.config import PRESETS, HyperConfig

# settings a user may override on the command line: (flag, type, help)
OVERRIDES = [
    ("population", int, "M, models in the population"),
    ("epochs", int, "outer epochs"),
    ("i", int, "instances per task"),
    ("k", int, "synaptic steps per task"),
    ("h_cl", int, "continual-learning tasks per hyper-stream"),
    ("h_h", int, "tasks per hyper-stream in all"),
    ("d", int, "deployment tasks"),
    ("hyper_batch", int, "instances per hyper-loss batch"),
    ("hyper_loss_over", str, "stream | seen | heldout"),
    ("order", str, "sequential | iid (the IID control)"),
    ("phi_grad", str, "first-order | through-update"),
    ("unroll", int, "through-update: synaptic steps the phenotype gradient goes back through"),
    ("lr_synapses", float, "alpha, synaptic SGD learning rate in hyper-training"),
    ("lr_phenotype", float, "gamma, phenotype learning rate"),
    ("mode", str, "supervised | unsupervised"),
    ("model", str, "dan | warp (the parameter-matched WarpGrad baseline)"),
    ("n_channels", int, "DAN input channels"),
    ("sharing", str, "net0 | net1 | net2"),
    ("target_params", int, "choose hidden widths to reach this parameter count"),
    ("source", str, "meta-train source (see `raycl data list`)"),
    ("data_root", str, "root folder of a real source"),
    ("seed", int, "random seed"),
    ("checkpoint_every", int, "epochs between checkpoints"),
    ("checkpoint_steps", int, "ray backend: also checkpoint every N synaptic steps (0: epoch boundaries only)"),
]


def register(sub) -> None:
    p = sub.add_parser(
        "hyper-train", help="hyper-train a phenotype with a population of DAN models (§6.3)",
        description="Hyper-train the shared phenotype φ with a population of models, each on its own "
        "hyper-stream. Writes checkpoint.pt (φ, optimizer, θ0, random states), hyper_training.parquet, "
        "TensorBoard scalars under tb/ and config.json into --out.",
    )
    p.add_argument("--preset", default="default", choices=sorted(PRESETS), help="named settings (default: %(default)s)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--backend", default="reference", choices=["reference", "ray"],
                   help="reference: one process; ray: one actor per model and a parameter server")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1: small models)")
    p.add_argument("--gpus-per-model", type=float, default=1.0,
                   help="ray backend: GPU share of each synapse worker when the cluster has GPUs "
                   "(0.5 packs two models per card; default %(default)s)")
    p.add_argument("--max-restarts", type=int, default=3,
                   help="ray backend: times Ray restarts a dead actor before the run gives up (default %(default)s)")
    for name, typ, hlp in OVERRIDES:
        p.add_argument(f"--{name.replace('_', '-')}", dest=name, type=typ, default=None, help=hlp)
    p.set_defaults(func=cmd_hyper_train)

    q = sub.add_parser(
        "deploy", help="deploy a hyper-trained phenotype against its baselines",
        description="Deploy: φ frozen, synapses from θ0 learn d tasks in sequence, each seen once. Compares the "
        "hyper-trained phenotype with the random initial phenotype and iid replay (500 updates), each at its own "
        "learning rate chosen on meta-train classes only. Writes deployment.parquet, summary.json and PNG curves.",
    )
    q.add_argument("run", help="a hyper-training run folder")
    q.add_argument("--d", type=int, action="append", help="deployment tasks (repeatable; default: the run's d)")
    q.add_argument("--seeds", type=int, default=5, help="deployment sequences per set (default %(default)s)")
    q.add_argument("--eval-source", default="digits", help="meta-eval source (default: offline digits; mnist with --eval-root)")
    q.add_argument("--eval-root", default=None, help="root of a real meta-eval source")
    q.add_argument("--criterion", default="memory", choices=["memory", "generalization", "both"],
                   help="what the learning-rate selection on meta-train maximises")
    q.add_argument("--threads", type=int, default=1, help="torch threads")
    q.set_defaults(func=cmd_deploy)
    register_report(sub)


def _config(args) -> HyperConfig:
    from raycl.hyper.config import preset

    return preset(args.preset, **{name: getattr(args, name) for name, _, _ in OVERRIDES})


def cmd_hyper_train(args) -> int:
    import torch

    from raycl.hyper.trainer import ReferenceTrainer

    torch.set_num_threads(args.threads)
    options = {}
    if args.backend == "ray":
        from raycl.population.trainer import RayTrainer as Trainer

        options = {"gpus_per_model": args.gpus_per_model, "max_restarts": args.max_restarts, "threads": args.threads}
    else:
        Trainer = ReferenceTrainer
    if args.resume:
        overrides = {n: getattr(args, n) for n, _, _ in OVERRIDES if getattr(args, n) is not None}
        trainer = Trainer.resume(args.out, options, **overrides)
    else:
        trainer = Trainer(_config(args), args.out, **options)
    trainer.train()
    last = [r for r in trainer.history if r["epoch"] == trainer.epoch]
    mean = lambda k: sum(r[k] for r in last) / len(last)  # noqa: E731
    print(f"hyper-trained {trainer.epoch} epochs: hyper-loss {mean('hyper_loss'):.3f}, memory {mean('memory'):.3f}, "
          f"generalization {mean('generalization'):.3f} (end of epoch, on the models' own streams); run in {args.out}")
    return 0


def cmd_deploy(args) -> int:
    import torch

    from raycl.hyper.report import deploy_run

    torch.set_num_threads(args.threads)
    summary = deploy_run(Path(args.run), ds=args.d, seeds=args.seeds, eval_source=args.eval_source,
                         eval_root=args.eval_root, criterion=args.criterion)
    for d, entry in summary["by_d"].items():
        print(f"\nd = {d}\n{entry['table']}")
    print(f"\nwrote {Path(args.run) / 'summary.json'}")
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
    h.add_argument("--seeds", type=int, default=20, help="deployment sequences per set (default %(default)s)")
    h.add_argument("--eval-source", default="digits", help="meta-eval source (default: offline digits)")
    h.add_argument("--eval-root", default=None, help="root of a real meta-eval source")
    h.add_argument("--no-iid-control", action="store_true",
                   help="do not train missing IID controls (existing RUN/iid-control checkpoints are still used)")
    h.add_argument("--threads", type=int, default=1, help="torch threads")
    h.add_argument("--cache", default=None,
                   help="folder of deployment results shared between reports (default RESULTS/.deployments): a "
                        "baseline deployed before with the same network, settings and data is read back")
    h.set_defaults(func=cmd_report_hyper)


def cmd_report_hyper(args) -> int:
    import torch

    from raycl.hyper.study import report_hyper

    torch.set_num_threads(args.threads)
    out = report_hyper(Path(args.results), Path(args.out) if args.out else None, tuple(args.d or (5, 10)),
                       args.seeds, args.eval_source, args.eval_root, train_control=not args.no_iid_control,
                       cache=Path(args.cache) if args.cache else None)
    print(f"wrote {out}")
    return 0
