"""Where a number came from: a fingerprint of the exact data arrays a run trained or deployed
on, and the software and machine it ran with. Checkpoints and summaries carry both, so a
result can be traced, and a deployment on other data than training's is noticed."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
from pathlib import Path

import numpy as np
import torch

import raycl


def feed(h, x) -> None:
    """Hash tensors (shape, dtype and bytes), dicts (sorted keys), sequences and plain values."""
    if isinstance(x, torch.Tensor):
        h.update(f"{tuple(x.shape)}{x.dtype}".encode())
        h.update(x.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(x, np.ndarray):
        h.update(f"{x.shape}{x.dtype}".encode())
        h.update(np.ascontiguousarray(x).tobytes())
    elif isinstance(x, dict):
        for k in sorted(x):
            h.update(str(k).encode())
            feed(h, x[k])
    elif isinstance(x, (list, tuple)):
        for v in x:
            feed(h, v)
    else:
        h.update(repr(x).encode())


def fingerprint(data) -> str:
    """SHA-256 (first 16 hex digits) of an ImageSet's images and labels after preprocessing,
    or of any tensors / dicts / lists of them."""
    h = hashlib.sha256()
    feed(h, [data.images, data.labels] if hasattr(data, "images") else data)
    return h.hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _git() -> dict:
    root = Path(raycl.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return {"commit": None, "dirty": None}
    try:
        run = functools.partial(subprocess.run, cwd=root, capture_output=True, text=True, timeout=10, check=True)
        commit = run(["git", "rev-parse", "HEAD"]).stdout.strip()
        dirty = bool(run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip())
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


@functools.lru_cache(maxsize=1)
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """raycl version and git commit, library versions, the CPU/GPU model and thread count."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"raycl": raycl.__version__, "git_commit": _git()["commit"], "git_dirty": _git()["dirty"],
            "python": platform.python_version(), "torch": str(torch.__version__), "numpy": str(np.__version__),
            "cpu": _cpu_model(), "cpu_count": os.cpu_count(), "gpu": gpu, "torch_threads": torch.get_num_threads()}


def record(**data) -> dict:
    """What a checkpoint or summary keeps: {"data": {name: fingerprint}, "environment": {...}}."""
    return {"data": {name: fingerprint(d) for name, d in data.items() if d is not None}, "environment": environment()}


def data_mismatch(trained: dict | None, now: dict) -> list[str]:
    """Names whose fingerprint differs between a run's record and now (missing records: none)."""
    if not trained:
        return []
    was = trained.get("data", {})
    return [n for n, fp in now.get("data", {}).items() if n in was and was[n] != fp]
