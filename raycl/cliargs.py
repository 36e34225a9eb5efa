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
    """Shows each flag's default, except where there is none (no "(default: None)")."""

    def _get_help_string(self, action):
        if action.default is None or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error: the problem, then where to read about the flags."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def exit(self, status=0, message=None):
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)
