"""Run folders and result files: everything is written atomically (temp file + rename),
so a crash never leaves a half-written checkpoint or table behind."""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from raycl import RayclError


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


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


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(_jsonable(obj), indent=2) + "\n").encode())


def read_json(path: str | os.PathLike) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RayclError(f"{path} does not exist") from None
    except json.JSONDecodeError as e:
        raise RayclError(f"{path} is not valid JSON ({e}); delete it or restore it from a backup") from None


def write_parquet(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write a list of flat dict rows as one Parquet table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [dict(_jsonable(r)) for r in rows]
    table = pa.Table.from_pylist(rows)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return atomic_write_bytes(path, buf.getvalue())


def read_parquet(path: str | os.PathLike):
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas()


def torch_save(path: str | os.PathLike, obj: Any) -> Path:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def torch_load(path: str | os.PathLike, map_location: Any = "cpu") -> Any:
    import torch

    path = Path(path)
    if not path.exists():
        raise RayclError(f"checkpoint {path} does not exist; check the path or start a new run")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # truncated or foreign file
        raise RayclError(
            f"checkpoint {path} is corrupt or not a raycl checkpoint ({type(e).__name__}: {e}); "
            "delete it to start over, or point at an earlier checkpoint"
        ) from None


def save_figure(fig, path: str | os.PathLike) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
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

    def flush(self, table: str = "metrics.parquet") -> None:
        if self.rows:
            write_parquet(self.path / table, self.rows)
        if self._tb is not None:
            self._tb.flush()

    def summary(self, obj: Any, name: str = "summary.json") -> Path:
        return write_json(self.path / name, obj)

    def figure(self, fig, name: str) -> Path:
        return save_figure(fig, self.path / name)

    def close(self) -> None:
        self.flush()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
