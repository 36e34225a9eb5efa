"""Checks every command family runs on its inputs before any compute and before any file
or folder is made: a single output file, a data source and its root, a --resume against the
settings the run in --out was started with. Each failure is one RayclError naming the flag."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from raycl import RayclError


def output_file(path: str | os.PathLike, overwrite: bool = False, flag: str = "--out") -> Path:
    """A file a command writes in one go (a PNG): not a folder, its folder must exist and be
    writable, and an existing file is replaced only with --overwrite."""
    path = Path(path)
    if path.is_dir():
        raise RayclError(f"{flag} {path} is a folder; give the file to write, e.g. {path / 'out.png'}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        what = "is a file, not a folder" if parent.exists() else "does not exist"
        raise RayclError(f"{flag} {path}: the folder {parent} {what}; create it first or choose another {flag}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RayclError(f"{flag} {path}: cannot write in {parent} (permission denied); choose a writable place")
    if path.exists() and not overwrite:
        raise RayclError(f"{flag} {path} already exists; pass --overwrite to replace it, or choose another {flag}")
    return path


def data_source(name: str, root=None, download: bool = False, flag: str = "--data",
                root_flag: str = "--data-root") -> None:
    """The cheap part of loading a source: its name is known, and a real source has a root
    folder that exists (or --download). Loading it later gives the detailed errors."""
    from raycl.data import SOURCES

    if name not in SOURCES:
        raise RayclError(f"{flag}: unknown dataset '{name}'; choose one of: {', '.join(SOURCES)} "
                         "(see `raycl data list`)")
    if SOURCES[name].offline:
        return
    if root is None and not download:
        raise RayclError(f"{flag} {name} needs {root_flag} PATH (the folder holding it) or --download")
    if root is not None and not download and not Path(root).expanduser().is_dir():
        raise RayclError(f"{flag} {name}: {root_flag} {root} is not a folder; give the folder holding the dataset "
                         "or pass --download")


def resume_or_overwrite(args) -> None:
    if getattr(args, "resume", False) and getattr(args, "overwrite", False):
        raise RayclError("--resume continues the run in --out and --overwrite replaces it; pass one of them")


def _show(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return ",".join(str(x) for x in v) if v else "''"
    return str(v)


def same_settings(saved: Mapping[str, Any], now: Mapping[str, Any], flags: Mapping[str, str], out) -> None:
    """--resume: every setting in `flags` (key -> its flag) must equal the one the run in
    `out` was started with; the first that differs is named with both values."""
    for key, flag in flags.items():
        if key not in saved or key not in now:
            continue
        a, b = saved[key], now[key]
        if isinstance(a, (list, tuple)) or isinstance(b, (list, tuple)):
            a, b = list(a or []), list(b or [])
        if a != b:
            raise RayclError(f"--resume: {flag} {_show(b)} (the run in {out} has {_show(a)}); resume with the "
                             "run's settings, or pass --overwrite to start it over")
