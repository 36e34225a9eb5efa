"""What every `ray job submit` entry point in jobs/ does: make the submitted working directory
importable (the job runs from a copy of it, where raycl may not be installed), then run one
raycl command with the job's arguments, adding a default for each flag the job leaves out."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run(command: list[str], defaults: dict[str, str] | None = None) -> None:
    from raycl.cli import main

    argv = sys.argv[1:]
    for flag, value in (defaults or {}).items():
        if not any(a == flag or a.startswith(flag + "=") for a in argv):
            argv += [flag, value]
    sys.exit(main([*command, *argv]))
