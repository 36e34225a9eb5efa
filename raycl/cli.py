"""The `raycl` command. Each family of experiments registers its own subcommands.

One error path for every command: a problem the user can fix (`RayclError`, a bad flag, a
file that cannot be written) is one line and exit code 2; anything else is an internal
failure, one line and exit code 1. `--debug` (anywhere on the line) or RAYCL_DEBUG=1 shows
the traceback instead. SIGTERM is handled like Ctrl-C, so locks and partial results are
cleaned up the same way.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

from raycl import RayclError, __version__
from raycl.cliargs import Parser, check_ranges

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


class Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an exception so that `finally` blocks run as on Ctrl-C."""


def build_parser() -> Parser:
    parser = Parser(
        prog="raycl",
        description=(
            "raycl: Deep Artificial Neurons, Hyper-Learning, Self-Net and active learning "
            "(DAL-OSR, DALBT) on Ray. Every subcommand has its own --help."
        ),
        epilog="--debug (anywhere on the line) or RAYCL_DEBUG=1 prints the traceback of an error.",
    )
    parser.add_argument("--version", action="version", version=f"raycl {__version__}")
    parser.add_argument("--insecure-local-ray", action="store_true",
                        help="let a local Ray that raycl starts run without token authentication "
                             "(only with RAY_AUTH_MODE=disabled; not recommended)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    check_ranges(parser)
    return parser


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in str(text).strip().splitlines() if part.strip())


def _root_cause(e: BaseException) -> BaseException:
    """A RayclError raised inside a Ray task arrives wrapped (RayTaskError.cause)."""
    seen = set()
    while id(e) not in seen:
        seen.add(id(e))
        cause = getattr(e, "cause", None)
        if isinstance(cause, BaseException):
            e = cause
        elif isinstance(e.__cause__, RayclError):
            e = e.__cause__
        else:
            break
    return e


def describe(e: BaseException) -> tuple[str, int]:
    """The one line and the exit code for an exception that ended a command."""
    e = _root_cause(e)
    if isinstance(e, RayclError):
        return f"raycl: error: {_one_line(e)}", 2
    if isinstance(e, OSError) and e.filename is not None:
        what = e.strerror or type(e).__name__
        fix = {"EACCES": "choose a place you may write, or fix its permissions",
               "EROFS": "choose a writable place", "ENOSPC": "free some disk space",
               "EISDIR": "give a file path, not a folder", "ENOTDIR": "a part of the path is a file, not a folder",
               "ENOENT": "check the path"}
        import errno

        hint = fix.get(errno.errorcode.get(e.errno or 0, ""), "check the path")
        return f"raycl: error: {what}: {e.filename}; {hint}", 2
    if isinstance(e, MemoryError):
        return "raycl: error: out of memory; use smaller settings or a machine with more memory", 1
    return (f"raycl: internal error: {type(e).__name__}: {_one_line(e)[:500]} "
            "(a bug in raycl: rerun with --debug for the traceback and report it)"), 1


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("RAYCL_DEBUG", "") not in ("", "0")
    if "--debug" in argv:
        argv.remove("--debug")
        debug = True
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.insecure_local_ray:
        from raycl.cluster import allow_insecure_local_ray

        allow_insecure_local_ray()
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    from raycl.host import keep_heap

    keep_heap()  # the command's own computing (in-process backends, the driver)
    previous = previous_int = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
        # Ctrl-C / kill -INT interrupt even where SIGINT was inherited ignored (a background job of a script)
        previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread (e.g. called from a test's worker thread)
        pass
    try:
        return int(args.func(args) or 0)
    except Terminated:
        print("raycl: terminated (SIGTERM); the last checkpoint is kept, continue with --resume", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print("raycl: interrupted; the last checkpoint is kept, continue with --resume", file=sys.stderr)
        return 130
    except Exception as e:
        if debug:
            raise
        line, code = describe(e)
        print(line, file=sys.stderr)
        return code
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)


if __name__ == "__main__":
    sys.exit(main())
