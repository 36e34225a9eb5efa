"""Sources that need no network: they ship inside an installed package or are drawn
deterministically from a seed."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from raycl.data.imageset import ImageSet

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
        return data
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
    """strokes (J, n, 3, 2) Bezier control points for J drawings; returns (J, size, size)."""
    s = torch.from_numpy(strokes).float()
    t = torch.linspace(0, 1, 17)[:, None]
    p0, p1, p2 = s[:, :, None, 0], s[:, :, None, 1], s[:, :, None, 2]
    curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2  # (J, n, 17, 2)
    a = curve[:, :, :-1].reshape(len(s), 1, -1, 2)
    ab = curve[:, :, 1:].reshape(len(s), 1, -1, 2) - a
    c = (torch.arange(size) + 0.5) / size
    pix = torch.stack(torch.meshgrid(c, c, indexing="xy"), -1).reshape(1, -1, 1, 2)  # (x, y)
    u = (((pix - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp_(0, 1)
    d = (pix - a - u[..., None] * ab).square().sum(-1).min(-1).values.sqrt()  # (J, P)
    soft = 0.7 / size
    w = torch.from_numpy(width).float()[:, None]
    return (1 - (d - w) / soft).clamp_(0, 1).reshape(-1, size, size).numpy()


@lru_cache(maxsize=4)
def _glyphs(size: int, seed: int) -> ImageSet:
    images = np.empty((GLYPH_CLASSES, GLYPH_INSTANCES, size, size), np.float32)
    for c in range(GLYPH_CLASSES):
        rng = np.random.default_rng([seed, c])
        strokes = rng.uniform(0.15, 0.85, size=(int(rng.integers(1, 4)), 3, 2))
        J = GLYPH_INSTANCES
        angle = rng.uniform(-0.18, 0.18, J)
        rot = np.stack([np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)], -1).reshape(J, 1, 1, 2, 2)
        scale = rng.uniform(0.9, 1.1, (J, 1, 1, 1))
        shift = rng.uniform(-0.05, 0.05, (J, 1, 1, 2))
        jittered = strokes[None] + rng.normal(0, 0.035, (J,) + strokes.shape) - 0.5
        drawn = (rot @ jittered[..., None])[..., 0] * scale + 0.5 + shift
        images[c] = _render_strokes(drawn, size, rng.uniform(0.035, 0.06, J))
    labels = np.repeat(np.arange(GLYPH_CLASSES), GLYPH_INSTANCES)
    return ImageSet(
        "glyphs",
        torch.from_numpy(images.reshape(-1, 1, size, size)),
        torch.from_numpy(labels).long(),
        [f"glyph{c:03d}" for c in range(GLYPH_CLASSES)],
    )


def load_glyphs(split: str = "background", size: int = 28, seed: int = 0) -> ImageSet:
    """'background' (300 classes, for meta-training), 'evaluation' (100 held-out classes), or 'all'."""
    data = _glyphs(size, seed)
    if split == "all":
        return data
    keep = range(GLYPH_BACKGROUND) if split == "background" else range(GLYPH_BACKGROUND, GLYPH_CLASSES)
    out = data.classes(list(keep))
    out.name = f"glyphs-{split}"
    return out


# --- shapes: out-of-distribution images that are not digits -------------------------------

SHAPE_CLASSES = ["disk", "square", "triangle", "ring", "stripes", "checker", "noise", "gradient"]


def _render_shape(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    c = (np.arange(size) + 0.5) / size
    x, y = np.meshgrid(c, c, indexing="xy")
    cx, cy = rng.uniform(0.35, 0.65, size=2)
    r = rng.uniform(0.18, 0.35)
    if kind == "disk":
        img = (np.hypot(x - cx, y - cy) < r).astype(float)
    elif kind == "square":
        img = ((abs(x - cx) < r) & (abs(y - cy) < r)).astype(float)
    elif kind == "triangle":
        img = ((y > cy - r) & (y < cy + r) & (abs(x - cx) < (y - (cy - r)) / 2)).astype(float)
    elif kind == "ring":
        d = np.hypot(x - cx, y - cy)
        img = ((d < r) & (d > r * 0.6)).astype(float)
    elif kind == "stripes":
        period = rng.uniform(0.15, 0.35)
        theta = rng.uniform(0, np.pi)
        img = (np.sin(2 * np.pi * (x * np.cos(theta) + y * np.sin(theta)) / period) > 0).astype(float)
    elif kind == "checker":
        k = int(rng.integers(2, 5))
        img = ((np.floor(x * k) + np.floor(y * k)) % 2).astype(float)
    elif kind == "noise":
        img = rng.uniform(0, 1, size=(size, size))
    else:  # gradient
        theta = rng.uniform(0, 2 * np.pi)
        img = (x - 0.5) * np.cos(theta) + (y - 0.5) * np.sin(theta) + 0.5
    return np.clip(img * rng.uniform(0.6, 1.0), 0, 1)


@lru_cache(maxsize=4)
def load_shapes(size: int = 8, per_class: int = 200, seed: int = 0) -> ImageSet:
    """Geometric shapes, textures, noise and gradients: clearly not handwritten digits."""
    images = np.empty((len(SHAPE_CLASSES) * per_class, 1, size, size), np.float32)
    for k, kind in enumerate(SHAPE_CLASSES):
        for j in range(per_class):
            images[k * per_class + j, 0] = _render_shape(kind, np.random.default_rng([seed, k, j]), size)
    labels = np.repeat(np.arange(len(SHAPE_CLASSES)), per_class)
    return ImageSet("shapes", torch.from_numpy(images), torch.from_numpy(labels).long(), list(SHAPE_CLASSES))
