"""Sources that need no network: they ship inside an installed package or are drawn
deterministically from a seed."""

from __future__ import annotations

import hashlib
import inspect
import io
import logging
import os
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from raycl.data.imageset import ImageSet
from raycl.runio import atomic_write_bytes

log = logging.getLogger(__name__)

# --- scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes) ----------------------


@lru_cache(maxsize=2)
def _digits_all() -> ImageSet:
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return ImageSet("digits", images, torch.tensor(d.target, dtype=torch.long), [str(i) for i in range(10)])


def load_digits(split: str = "all") -> ImageSet:
    """split 'train' holds 2 of every 3 images (in file order), 'test' the third, 'all' both."""
    data = _digits_all()
    if split == "all":
        return replace(data)  # a copy, so a caller renaming it leaves the cached one alone
    idx = torch.arange(len(data))
    keep = idx % 3 == 2 if split == "test" else idx % 3 != 2
    return data.subset(keep.nonzero().flatten())


# --- glyphs: a many-class stand-in for Omniglot ---------------------------------------------
# Every class is a fixed set of 1-3 pen strokes (quadratic Bezier curves) drawn from the
# class's own seed; every instance redraws them with jittered control points, a small
# rotation, scale and shift, and its own pen width, as different people drawing one
# character would. Classes 0..299 are the 'background' split, 300..399 'evaluation'.

GLYPH_CLASSES = 400
GLYPH_BACKGROUND = 300
GLYPH_INSTANCES = 20


def _render_strokes(strokes: np.ndarray, size: int, width: np.ndarray) -> np.ndarray:
    """strokes (J, n, 3, 2) Bezier control points for J drawings; returns (J, size, size).

    Each pixel's ink falls off with its distance to the nearest of 3 points per pixel of
    curve parameter (spacing under a pixel), found with one batched matrix product. In float64
    the 8-bit pixels do not depend on the machine's BLAS (float32 flips a few roundings)."""
    s = torch.from_numpy(strokes).double()
    t = torch.linspace(0, 1, 3 * size + 1, dtype=torch.float64)[:, None]
    p0, p1, p2 = s[:, :, None, 0], s[:, :, None, 1], s[:, :, None, 2]
    q = ((1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2).reshape(len(s), -1, 2)  # (J, points, 2)
    c = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    pix = torch.stack(torch.meshgrid(c, c, indexing="xy"), -1).reshape(1, -1, 2)  # (1, P, 2) as (x, y)
    # |pix - q|^2 = |pix|^2 + |q|^2 - 2 pix.q; |pix|^2 is constant per pixel, so added after the min.
    d2 = torch.baddbmm(q.square().sum(-1)[:, None, :], pix.expand(len(s), -1, -1), q.transpose(1, 2), alpha=-2)
    d = (d2.min(-1).values + pix.square().sum(-1)).clamp_min_(0).sqrt_()  # (J, P)
    soft = 0.7 / size
    w = torch.from_numpy(width)[:, None]
    return (1 - (d - w) / soft).clamp_(0, 1).reshape(-1, size, size).numpy()


def _draw_glyphs(size: int, seed: int) -> np.ndarray:
    """All glyphs as uint8 (classes, instances, size, size): 8-bit like real image files, which
    also makes the on-disk cache exact."""
    images = np.empty((GLYPH_CLASSES, GLYPH_INSTANCES, size, size), np.uint8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small products: threads only contend
    try:
        _draw_glyph_classes(images, size, seed)
    finally:
        torch.set_num_threads(threads)
    return images


def _draw_glyph_classes(images: np.ndarray, size: int, seed: int) -> None:
    from tqdm import tqdm

    for c in tqdm(range(GLYPH_CLASSES), desc="drawing glyphs", unit="class", leave=False, disable=None):
        rng = np.random.default_rng([seed, c])
        strokes = rng.uniform(0.15, 0.85, size=(int(rng.integers(1, 4)), 3, 2))
        J = GLYPH_INSTANCES
        angle = rng.uniform(-0.18, 0.18, J)
        rot = np.stack([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], -1).reshape(J, 1, 1, 2, 2)
        scale = rng.uniform(0.9, 1.1, (J, 1, 1, 1))
        shift = rng.uniform(-0.05, 0.05, (J, 1, 1, 2))
        jittered = strokes[None] + rng.normal(0, 0.035, (J,) + strokes.shape) - 0.5
        drawn = (rot @ jittered[..., None])[..., 0] * scale + 0.5 + shift
        images[c] = np.rint(_render_strokes(drawn, size, rng.uniform(0.035, 0.06, J)) * 255)


# Drawing all 8,000 glyphs takes seconds; every process (each Ray worker) would redraw them,
# so the pixels are cached on disk. The cache file is named by GLYPH_VERSION and by a hash of
# the drawing code itself, so a changed renderer never reads pixels an older one drew.
GLYPH_VERSION = 2


@lru_cache(maxsize=1)
def generator_key() -> str:
    source = "".join(inspect.getsource(f) for f in (_draw_glyphs, _render_strokes))
    return f"v{GLYPH_VERSION}-{hashlib.sha256(source.encode()).hexdigest()[:10]}"


def cache_dir() -> Path:
    """$RAYCL_CACHE, else ~/.cache/raycl."""
    return Path(os.environ.get("RAYCL_CACHE") or Path.home() / ".cache" / "raycl")


def _read_cached(path: Path, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached pixels if the file is whole and matches its own checksum, else None."""
    try:
        with np.load(path, allow_pickle=False) as f:
            x, digest = f["images"], str(f["sha256"])
        if x.dtype == np.uint8 and x.shape == shape and hashlib.sha256(x.tobytes()).hexdigest() == digest:
            return x
    except FileNotFoundError:
        return None
    except Exception:  # truncated, foreign or half-copied file
        pass
    log.warning("glyph cache %s is corrupt; drawing the glyphs again", path)
    return None


def glyph_pixels(size: int = 28, seed: int = 0) -> np.ndarray:
    """uint8 (classes, instances, size, size), from the disk cache or freshly drawn."""
    shape = (GLYPH_CLASSES, GLYPH_INSTANCES, size, size)
    path = cache_dir() / f"glyphs-{generator_key()}-{size}px-seed{seed}.npz"
    x = _read_cached(path, shape)
    if x is None:
        x = _draw_glyphs(size, seed)
        buf = io.BytesIO()
        np.savez_compressed(buf, images=x, sha256=np.array(hashlib.sha256(x.tobytes()).hexdigest()))
        try:
            atomic_write_bytes(path, buf.getvalue())
        except OSError as e:  # read-only home: still works, only slower next time
            log.warning("cannot write glyph cache %s (%s); set RAYCL_CACHE to a writable folder", path, e)
    return x


@lru_cache(maxsize=4)
def _glyphs(size: int, seed: int) -> ImageSet:
    x = torch.from_numpy(glyph_pixels(size, seed).reshape(-1, 1, size, size)).float().div_(255)
    labels = torch.arange(GLYPH_CLASSES).repeat_interleave(GLYPH_INSTANCES)
    return ImageSet("glyphs", x, labels, [f"glyph{c:03d}" for c in range(GLYPH_CLASSES)])


def load_glyphs(split: str = "background", size: int = 28, seed: int = 0) -> ImageSet:
    """'background' (300 classes, for meta-training), 'evaluation' (100 held-out classes), or 'all'."""
    data = _glyphs(size, seed)
    if split == "all":
        return replace(data)
    keep = range(GLYPH_BACKGROUND) if split == "background" else range(GLYPH_BACKGROUND, GLYPH_CLASSES)
    out = data.classes(list(keep))
    out.name = f"glyphs-{split}"
    return out


# --- shapes: out-of-distribution images that are not digits -------------------------------

SHAPE_CLASSES = ["disk", "square", "triangle", "ring", "stripes", "checker", "noise", "gradient"]


SUPERSAMPLE = 4  # shapes are drawn at 4x and area-averaged, so edges stay smooth at 8x8


def _render_shape(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    if kind == "noise":  # pixel noise is drawn at the final size so it keeps its contrast
        return rng.uniform(0, 1, size=(size, size)) * rng.uniform(0.6, 1.0)
    n = size * SUPERSAMPLE
    c = (np.arange(n) + 0.5) / n
    x, y = np.meshgrid(c, c, indexing="xy")
    cx, cy = rng.uniform(0.38, 0.62, size=2)
    r = rng.uniform(0.22, 0.34)
    if kind == "disk":
        img = (np.hypot(x - cx, y - cy) < r).astype(float)
    elif kind == "square":
        img = ((abs(x - cx) < r * 0.85) & (abs(y - cy) < r * 0.85)).astype(float)
    elif kind == "triangle":
        img = ((y > cy - r) & (y < cy + r) & (abs(x - cx) < (y - (cy - r)) * 0.6)).astype(float)
    elif kind == "ring":
        d = np.hypot(x - cx, y - cy)
        img = ((d < r + 0.06) & (d > r - 0.06)).astype(float)
    elif kind == "stripes":
        period = rng.uniform(0.25, 0.4)
        theta = rng.uniform(0, np.pi)
        img = (np.sin(2 * np.pi * (x * np.cos(theta) + y * np.sin(theta)) / period) > 0).astype(float)
    elif kind == "checker":
        k = int(rng.integers(2, 5))
        img = ((np.floor(x * k) + np.floor(y * k)) % 2).astype(float)
    else:  # gradient
        theta = rng.uniform(0, 2 * np.pi)
        img = (x - 0.5) * np.cos(theta) + (y - 0.5) * np.sin(theta) + 0.5
    img = img.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE).mean(axis=(1, 3))
    return np.clip(img * rng.uniform(0.6, 1.0), 0, 1)


@lru_cache(maxsize=4)
def _shapes(size: int, per_class: int, seed: int) -> ImageSet:
    images = np.empty((len(SHAPE_CLASSES) * per_class, 1, size, size), np.float32)
    for k, kind in enumerate(SHAPE_CLASSES):
        for j in range(per_class):
            images[k * per_class + j, 0] = _render_shape(kind, np.random.default_rng([seed, k, j]), size)
    labels = np.repeat(np.arange(len(SHAPE_CLASSES)), per_class)
    return ImageSet("shapes", torch.from_numpy(images), torch.from_numpy(labels).long(), list(SHAPE_CLASSES))


def load_shapes(size: int = 8, per_class: int = 200, seed: int = 0) -> ImageSet:
    """Geometric shapes, textures, noise and gradients: clearly not handwritten digits."""
    return replace(_shapes(size, per_class, seed))
