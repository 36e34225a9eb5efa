"""The `raycl` command. Each family of experiments registers its own subcommands."""

from __future__ import annotations

import argparse
import importlib
import sys

from raycl import RayclError, __version__

# Each module defines `register(subparsers)`; a new family adds its module here.
COMMAND_MODULES = [
    "raycl.data.cli",
    "raycl.hyper.cli",
    "raycl.dan.cli",
    "raycl.sine.cli",
    "raycl.sweeps.cli",
    "raycl.selfnet.cli",
    "raycl.atari.cli",
    "raycl.active.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="raycl",
        description=(
            "raycl: Deep Artificial Neurons, Hyper-Learning, Self-Net and active learning "
            "(DAL-OSR, DALBT) on Ray. Every subcommand has its own --help."
        ),
    )
    parser.add_argument("--version", action="version", version=f"raycl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except RayclError as e:
        print(f"raycl: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("raycl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
