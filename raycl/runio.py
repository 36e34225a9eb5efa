"""Run folders and result files.

- Every file is written atomically (temp file + rename) with the user's umask, so a crash
  never leaves a half-written checkpoint or table behind.
- `claim_run` guards a run folder: a new run refuses a folder that already holds one (unless
  --resume or --overwrite), a lock names the process that writes there, and a run that
  fails before writing anything leaves no folder behind.
- `results(folder)` holds a command's result files in memory and writes them only when the
  command succeeds, summaries last, so a failure never leaves half a result set.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import math
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Mapping

from raycl import RayclError


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file; mkstemp alone gives 0600


class _ResultSet:
    """Result files of one command, held until it succeeds."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.pending: dict[Path, bytes] = {}

    def holds(self, path: Path) -> bool:
        return path == self.folder or self.folder in path.parents

    def commit(self) -> None:
        summaries = [p for p in self.pending if p.name.startswith("summary")]
        for p in [p for p in self.pending if p not in summaries] + summaries:
            _write_now(p, self.pending[p])
        self.pending.clear()


_RESULTS: contextvars.ContextVar[_ResultSet | None] = contextvars.ContextVar("raycl_results", default=None)


@contextlib.contextmanager
def results(folder: str | os.PathLike):
    """Hold the result files written under `folder` (figures, tables, summaries) until the
    block succeeds, then write them all, summary*.json last. On an exception none is written.
    Checkpoints (`torch_save`) are never held: they must survive a crash."""
    outer = _RESULTS.get()
    folder = Path(folder).absolute()
    if outer is not None and outer.holds(folder):
        yield outer
        return
    rs = _ResultSet(folder)
    token = _RESULTS.set(rs)
    try:
        yield rs
    finally:
        _RESULTS.reset(token)
    rs.commit()  # only reached without an exception


def _pending(path: Path) -> bytes | None:
    rs = _RESULTS.get()
    return None if rs is None else rs.pending.get(path.absolute())


def _write_now(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), _FILE_MODE)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, now: bool = False) -> Path:
    """Write `data` to `path` atomically; inside `results(folder)` it waits for the commit
    unless `now` (checkpoints, and tables a later step reads back from another process)."""
    path = Path(path)
    rs = _RESULTS.get()
    if not now and rs is not None and rs.holds(path.absolute()):
        rs.pending[path.absolute()] = bytes(data)
        return path
    return _write_now(path, data)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_json(path: str | os.PathLike, obj: Any, now: bool = False) -> Path:
    return atomic_write_bytes(path, (json.dumps(_jsonable(obj), indent=2) + "\n").encode(), now=now)


def read_json(path: str | os.PathLike) -> Any:
    held = _pending(Path(path))
    try:
        return json.loads(held if held is not None else Path(path).read_text())
    except FileNotFoundError:
        raise RayclError(f"{path} does not exist") from None
    except json.JSONDecodeError as e:
        raise RayclError(f"{path} is not valid JSON ({e}); delete it or restore it from a backup") from None


def write_parquet(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], now: bool = False) -> Path:
    """Write a list of flat dict rows as one Parquet table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [dict(_jsonable(r)) for r in rows]
    table = pa.Table.from_pylist(rows)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return atomic_write_bytes(path, buf.getvalue(), now=now)


def read_parquet(path: str | os.PathLike):
    import pyarrow.parquet as pq

    held = _pending(Path(path))
    return pq.read_table(io.BytesIO(held) if held is not None else path).to_pandas()


def _not_plain(obj: Any, where: str = "") -> str | None:
    """Where in `obj` something other than plain data sits (None when all of it is plain):
    what torch_load's weights-only unpickler reads back, tensors, dicts, lists, tuples,
    sets, str, bytes, int, float, bool and None."""
    import collections

    import torch

    if obj is None or type(obj) in (str, bytes, int, float, bool, torch.Tensor, torch.nn.Parameter):
        return None
    if type(obj) in (dict, collections.OrderedDict):
        for k, v in obj.items():
            bad = _not_plain(k, f"{where}[{k!r}] (key)") or _not_plain(v, f"{where}[{k!r}]")
            if bad:
                return bad
        return None
    if type(obj) in (list, tuple, set, frozenset):
        for i, v in enumerate(obj):
            bad = _not_plain(v, f"{where}[{i}]")
            if bad:
                return bad
        return None
    return f"{where or 'the object'}: {type(obj).__module__}.{type(obj).__qualname__}"


def torch_save(path: str | os.PathLike, obj: Any) -> Path:
    """Write a checkpoint of plain data only (see _not_plain), so torch_load can read it
    back without unpickling any Python object."""
    import torch

    bad = _not_plain(obj)
    if bad:  # a raycl bug: the file would not load weights-only
        raise TypeError(f"checkpoint {path} would hold a pickled object at {bad}; store plain data")
    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue(), now=True)


class UnsafeCheckpointError(RayclError):
    """A checkpoint holding pickled Python objects: refused, never loaded."""


def torch_load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    """Load a checkpoint with torch's weights-only unpickler, always: tensors, dicts, lists,
    tuples, numbers and strings come back; a pickled Python object (which could run code
    when unpickled) is refused with a RayclError, never loaded another way."""
    import re

    import torch

    path = Path(path)
    if not path.exists():
        raise RayclError(f"checkpoint {path} does not exist; check the path or start a new run")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated, foreign, or holding pickled objects
        text = str(e)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        with open(path, "rb") as f:  # a torch file (zip, or a protocol-2+ pickle), not text that parsed as one
            head = f.read(4)
        if found and (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
            raise UnsafeCheckpointError(
                f"checkpoint {path} holds a pickled Python object ({found.group(1)}), which raycl never loads: "
                "unpickling it could run code. If an older raycl wrote it (its mid-epoch checkpoints pickled "
                "objects), it cannot be loaded safely: resume from an end-of-epoch checkpoint or rerun; "
                "otherwise it is not a raycl checkpoint, so do not use it"
            ) from None
        detail = next((ln.split("WeightsUnpickler error:")[-1].strip() or "unreadable"
                       for ln in text.splitlines() if "WeightsUnpickler error" in ln), None)
        if detail == "unreadable":  # torch puts the reason on a later line
            detail = next((ln.strip() for ln in text.splitlines()[1:] if ln.strip().startswith("Unsupported")),
                          "unreadable")
        if detail is None:
            detail = f"{type(e).__name__}: {text.strip().splitlines()[0] if text.strip() else 'unreadable file'}"
        raise RayclError(
            f"checkpoint {path} is corrupt or not a raycl checkpoint ({detail}); "
            "delete it to start over, or point at an earlier checkpoint"
        ) from None


def save_figure(fig, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    from raycl.plots import pyplot

    pyplot().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


class RunDir:
    """One experiment's output folder: metrics.parquet, summary.json, tb/ (TensorBoard), PNGs."""

    def __init__(self, path: str | os.PathLike, tensorboard: bool = True):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []
        self._tb = None
        self._want_tb = tensorboard

    @property
    def tb(self):
        if self._tb is None and self._want_tb:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=str(self.path / "tb"))
        return self._tb

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.tb is not None:
            self.tb.add_scalar(tag, float(value), step)

    def log(self, **row: Any) -> None:
        self.rows.append(row)

    def flush(self, table: str = "metrics.parquet", now: bool = False) -> None:
        if self.rows:
            write_parquet(self.path / table, self.rows, now=now)
        if self._tb is not None:
            self._tb.flush()

    def summary(self, obj: Any, name: str = "summary.json", now: bool = False) -> Path:
        return write_json(self.path / name, obj, now=now)

    def figure(self, fig, name: str) -> Path:
        return save_figure(fig, self.path / name)

    def close_tensorboard(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None

    def close(self) -> None:
        self.flush()
        self.close_tensorboard()


# --- run folders: one writer, no silent replacement, nothing empty left behind ---------------

LOCK = ".raycl.lock"
_HELD: set[Path] = set()  # folders this process holds (nested claims of one folder are one claim)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(lock: Path) -> dict:
    try:
        return json.loads(lock.read_text())
    except (OSError, ValueError):
        return {}


def _take_lock(folder: Path, command: str) -> None:
    lock = folder / LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
          "command": command}
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            h = _holder(lock)
            if h.get("host") == me["host"] and isinstance(h.get("pid"), int) and not _alive(h["pid"]):
                lock.unlink(missing_ok=True)  # left by a process that died without cleaning up
                continue
            who = (f"pid {h.get('pid')} on host {h.get('host')} since {h.get('started')}" if h
                   else "a process whose lock file is unreadable")
            raise RayclError(
                f"{folder} is in use by another raycl run ({who}); wait for it to finish or choose another --out "
                f"(if that process is gone, delete {lock})") from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        return


def _has_files(folder: Path) -> bool:
    return any(p.is_file() and p.name != LOCK for p in folder.rglob("*"))


@contextlib.contextmanager
def claim_run(path: str | os.PathLike, *, resume: bool = False, overwrite: bool = False,
              command: str = "raycl", marker: str | None = None):
    """Hold the run folder `path` for the duration of the block.

    A folder that already holds files is refused unless `resume` (continue it) or `overwrite`
    (its files are removed first); `resume` needs the folder (and `marker` in it, when given).
    A second process claiming the same folder is refused, naming the first. When the block
    fails before any file was written, the folder it created is removed again."""
    folder = Path(path)
    if folder.absolute() in _HELD:
        yield folder
        return
    if folder.exists() and not folder.is_dir():
        raise RayclError(f"--out {folder} is a file, not a folder; choose a folder path")
    existed = folder.exists()
    if resume:
        if not existed or (marker is not None and not (folder / marker).exists()):
            raise RayclError(f"nothing to resume in {folder}" + (f" (no {marker})" if marker else "")
                             + "; drop --resume to start a new run there")
    elif existed and _has_files(folder) and not overwrite:
        shown = sorted(p.name for p in folder.iterdir() if p.name != LOCK)[:4]
        raise RayclError(f"{folder} already holds a run ({', '.join(shown)}, ...); pass --resume to continue it, "
                         "--overwrite to replace it, or choose another --out")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RayclError(f"cannot create the run folder {folder}: {e.strerror}; choose a writable --out") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RayclError(f"cannot write in {folder}: permission denied; choose a writable --out")
    _take_lock(folder, command)
    _HELD.add(folder.absolute())
    ok = False
    try:
        if overwrite and not resume:
            for p in folder.iterdir():
                if p.name != LOCK:
                    shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
        yield folder
        ok = True
    finally:
        _HELD.discard(folder.absolute())
        (folder / LOCK).unlink(missing_ok=True)
        if not ok and not existed and folder.exists() and not _has_files(folder):
            shutil.rmtree(folder, ignore_errors=True)
