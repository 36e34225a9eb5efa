"""Checks on command-line numbers, one table for every command family.

A flag means the same thing in every family, so its range lives here once: `check_ranges`
walks a built parser and wraps each numeric option's `type` so that a bad value is an
argparse error (one line, exit code 2) before any compute and before any folder exists.
"""

from __future__ import annotations

import argparse
import math
import sys

# dest -> (predicate, what the value must be)
POSITIVE = (lambda v: v > 0, "> 0")
NONNEGATIVE = (lambda v: v >= 0, ">= 0")
FRACTION = (lambda v: 0 <= v <= 1, "in [0, 1]")
OPEN_FRACTION = (lambda v: 0 < v < 1, "in (0, 1)")
COSINE = (lambda v: 0 < v <= 1, "in (0, 1]")

RULES: dict[str, tuple] = {
    **{name: POSITIVE for name in (
        # counts
        "epochs", "seeds", "population", "i", "k", "h_cl", "h_h", "d", "hyper_batch", "unroll", "threads",
        "deploy_functions", "samples_per_task", "subtasks", "n_channels", "hidden", "phenotype_hidden", "channels",
        "classes", "per_class", "budget", "tasks", "frames", "initial", "episodes", "batch_size", "latent",
        "ae_input", "ae_max_iters", "max_iters", "curve_iters", "eval_every", "eval_seeds", "stages", "pool",
        "projector", "size", "samples", "repeats", "draws", "train_steps", "tune_epochs", "grid_i", "grid_h_cl",
        "grid_h_h", "target_params", "params", "checkpoint_every", "ckpt_every", "num_cpus", "decoder_hidden",
        "buffer", "grace_period", "setting",
        # learning rates and scales
        "lr", "lr_theta", "lr_phi", "deploy_lr_theta", "lr_synapses", "lr_phenotype", "tune_lr", "ae_lr",
        "eval_lrs", "sigmas", "range_width")},
    **{name: NONNEGATIVE for name in (
        "seed", "first_seed", "max_restarts", "checkpoint_steps", "weight_decay", "anchor_lam", "baseline_lam",
        "contractive", "lambd", "gamma", "beta", "gpus_per_model", "gpus_per_run", "cpus_per_model", "driver_cpus",
        "patience", "min_steps", "workers", "labeled", "remove_classes", "max_concurrent", "eval_max_steps")},
    **{name: FRACTION for name in ("noise", "target")},
    "ood_fraction": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "tune_momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "val_fraction": OPEN_FRACTION,
    "momentum": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "threshold": COSINE,
    "thresholds": COSINE,
}


def _checked(convert, dest: str, flag: str):
    rule = RULES.get(dest)

    def check_one(v):
        if isinstance(v, float) and not math.isfinite(v):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {v}")
        if rule is not None and isinstance(v, (int, float)) and not rule[0](v):
            raise argparse.ArgumentTypeError(f"must be {rule[1]}, got {v}")

    def wrapped(text):
        value = convert(text)
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            check_one(v)
        return value

    wrapped.__name__ = getattr(convert, "__name__", "value")  # argparse names the type in its messages
    wrapped.checked = True
    return wrapped


def check_ranges(parser: argparse.ArgumentParser) -> None:
    """Wrap every numeric option of `parser` and its subcommands with its range check."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                check_ranges(sub)
        elif action.type is not None and not getattr(action.type, "checked", False) and action.type is not str:
            flag = action.option_strings[-1] if action.option_strings else action.dest
            action.type = _checked(action.type, action.dest, flag)


class _Renamed(argparse.Action):
    """An old spelling of a flag: still works for one release, says the new name."""

    def __init__(self, option_strings, dest, new: str = "", **kw):
        super().__init__(option_strings, dest, **kw)
        self.new = new

    def __call__(self, parser, namespace, values, option_string=None):
        sys.stderr.write(f"raycl: warning: {option_string} is now {self.new}; the old name goes in the next release\n")
        setattr(namespace, self.dest, values)


def renamed(group, old: str, new: str, dest: str, **kw) -> None:
    """Keep `old` as a hidden alias of the flag `new` (same dest), with a deprecation message."""
    group.add_argument(old, dest=dest, action=_Renamed, new=new, help=argparse.SUPPRESS, **kw)


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, except where there is none (no "(default: None)", nor
    "(default: False)" on a switch) or the help already says it."""

    def _get_help_string(self, action):
        if (action.default in (None, False, argparse.SUPPRESS) or action.help is None
                or "(default" in action.help or isinstance(action, argparse._HelpAction)):
            return action.help
        return super()._get_help_string(action)


class RawDescriptionDefaults(DefaultsHelp, argparse.RawDescriptionHelpFormatter):
    """DefaultsHelp, with the description's own line breaks kept."""


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the problem, then where to read about the flags.
    Every command's --help shows the defaults (DefaultsHelp)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsHelp)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def exit(self, status=0, message=None):
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)


# One vocabulary: every command family takes these flags from here, so a flag means the same
# thing everywhere. The per-family defaults are arguments; the words are not.

def out_flags(p, *, resume: bool = False, what: str = "run folder") -> None:
    """--out (required: a run never lands somewhere the user did not name), --overwrite, --resume."""
    p.add_argument("--out", required=True, help=what)
    p.add_argument("--overwrite", action="store_true", help="replace what is already in --out (its files are deleted)")
    if resume:
        p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")


def seed_flags(p, *, seeds: int | None = 1, what: str = "independent runs") -> None:
    """--seed S and --seeds N: N independent runs from seeds S..S+N-1."""
    p.add_argument("--seed", type=int, default=0, help="random seed (with --seeds N: the first of N consecutive seeds)")
    if seeds is not None:
        p.add_argument("--seeds", type=int, default=seeds, help=f"N {what}, from seeds S..S+N-1 (S = --seed)")


def data_flags(p, *, default: str | None, what: str = "dataset (see `raycl data list`)", download: bool = True,
               root_help: str = "root folder of a real dataset (torchvision's layout)") -> None:
    """--data NAME, --data-root ROOT, --download."""
    p.add_argument("--data", default=default, help=what)
    p.add_argument("--data-root", default=None, help=root_help)
    if download:
        p.add_argument("--download", action="store_true", help="let torchvision download the dataset into --data-root")


def ray_flags(p, *, gpus: float | None = 0.25, threads: int | None = 1, what: str | None = "runs") -> None:
    """Where independent work runs: Ray tasks (a local Ray, or the cluster at --address) or, with
    --no-ray, this process one job after another (`what=None`: Ray only, no --no-ray). GPU
    shares apply only on a cluster with GPUs."""
    if what is not None:
        p.add_argument("--no-ray", action="store_true", help=f"run the {what} in this process, one after another")
    p.add_argument("--address", default=None, help="Ray cluster address (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray (default: all)")
    if gpus is not None:
        p.add_argument("--gpus-per-worker", type=float, default=gpus,
                       help="GPU share of each Ray task or actor when the cluster has GPUs (0.5: two per card)")
    if threads is not None:
        p.add_argument("--threads", type=int, default=threads, help="torch threads per job (and Ray CPUs it takes)")


def runner(args, progress: bool = True):
    """The raycl.runner.Runner that the ray_flags of `args` describe."""
    from raycl.runner import Runner

    return Runner(use_ray=not args.no_ray, address=args.address, num_cpus=args.num_cpus,
                  threads=getattr(args, "threads", 1), gpus_per_worker=getattr(args, "gpus_per_worker", 0.0),
                  progress=progress)


def floats(text: str) -> tuple[float, ...]:
    """A comma-separated list of numbers (a flag's `type`)."""
    try:
        return tuple(float(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got '{text}'") from None


def ints(text: str) -> tuple[int, ...]:
    """A comma-separated list of integers (a flag's `type`)."""
    try:
        return tuple(int(x) for x in str(text).split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'") from None


def setting(default, help: str, choices=None, **flag):
    """A config dataclass field: its default, and the help, choices (and `type` parser, or
    `flag=False` for none) of the command-line flag config_flags makes of it."""
    import dataclasses

    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, **flag})


def config_flags(p, cls, *, names=None, flag_names: dict | None = None, preset=None) -> None:
    """One flag per field of the config dataclass `cls` (or the fields in `names`), help and
    choices from the field's metadata. With `preset` (an instance), flags default to None and
    the help shows the preset's value: the value a run gets comes from the dataclass only."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if (names is not None and f.name not in names) or f.metadata.get("flag") is False:
            continue
        flag = (flag_names or {}).get(f.name, "--" + f.name.replace("_", "-"))
        shown = getattr(preset, f.name) if preset is not None else _field_default(f)
        kind = hints[f.name]
        args = typing.get_args(kind)
        if type(None) in args:  # X | None
            kind = next(a for a in args if a is not type(None))
        kw: dict = {"dest": f.name, "help": f.metadata.get("help", f.name.replace("_", " "))}
        if f.metadata.get("choices"):
            kw["choices"] = list(f.metadata["choices"])
        else:
            kw["metavar"] = flag[2:].upper().replace("-", "_")
        if kind is bool:
            kw["help"] = f"turn off: {kw['help']}" if shown else kw["help"]
            if shown:
                p.add_argument("--no-" + flag[2:], action="store_const", const=False, default=None, **kw)
            else:
                p.add_argument(flag, action="store_const", const=True, default=None, **kw)
            continue
        if f.metadata.get("type"):  # a parser of its own, e.g. a comma-separated list
            kw["type"] = f.metadata["type"]
        elif typing.get_origin(kind) is tuple:
            kw.update(type=typing.get_args(kind)[0], nargs="+")
        elif kind in (int, float, str):
            kw["type"] = kind
        else:
            continue  # not a command-line value (e.g. a dict of extras)
        if preset is not None:
            if shown is not None:
                sep = "," if f.metadata.get("type") else " "
                shown = (sep.join(map(str, shown)) or "none") if isinstance(shown, tuple) else shown
                kw["help"] += f" (default: {shown})"
            p.add_argument(flag, default=None, **kw)
        else:
            p.add_argument(flag, default=shown, **kw)


def _field_default(f):
    import dataclasses

    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def config_values(args, cls) -> dict:
    """The fields of `cls` that the command line set (flags from config_flags with a preset)."""
    import dataclasses

    out = {}
    for f in dataclasses.fields(cls):
        v = getattr(args, f.name, None)
        if v is not None:
            out[f.name] = tuple(v) if isinstance(v, list) else v
    return out
