"""One registry of image sources. `load(name, split=..., root=...)` gives an ImageSet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from raycl import RayclError
from raycl.data import offline, real
from raycl.data.imageset import ImageSet


@dataclass(frozen=True)
class Source:
    name: str
    description: str
    offline: bool  # True: needs no root and no network
    splits: tuple[str, ...]
    loader: Callable[..., ImageSet]


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source("digits", "scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes); ships with scikit-learn",
               True, ("all", "train", "test"), lambda root, split, download, **kw: offline.load_digits(split)),
        Source("glyphs", "offline Omniglot stand-in: 400 stroke-glyph classes x 20 drawings, 28x28; "
               "background = 300 classes (meta-train), evaluation = 100 held-out classes (meta-test)",
               True, ("background", "evaluation", "all"),
               lambda root, split, download, **kw: offline.load_glyphs(split, **kw)),
        Source("shapes", "offline out-of-distribution images: shapes, textures, noise, gradients (8 classes x 200)",
               True, ("all",), lambda root, split, download, **kw: offline.load_shapes(**kw)),
        Source("mnist", "MNIST handwritten digits (IDX files)", False, ("train", "test"),
               lambda root, split, download, **kw: real.load_idx("mnist", root, split, download)),
        Source("fashion-mnist", "Fashion-MNIST clothing (IDX files)", False, ("train", "test"),
               lambda root, split, download, **kw: real.load_idx("fashion-mnist", root, split, download)),
        Source("kmnist", "Kuzushiji-MNIST (IDX files)", False, ("train", "test"),
               lambda root, split, download, **kw: real.load_idx("kmnist", root, split, download)),
        Source("svhn", "Street View House Numbers (.mat files)", False, ("train", "test", "extra"),
               lambda root, split, download, **kw: real.load_svhn(root, split, download)),
        Source("cifar10", "CIFAR-10 (pickled batches)", False, ("train", "test"),
               lambda root, split, download, **kw: real.load_cifar("cifar10", root, split, download)),
        Source("cifar100", "CIFAR-100 with its 20 coarse superclasses (pickled batches)", False, ("train", "test"),
               lambda root, split, download, **kw: real.load_cifar("cifar100", root, split, download)),
        Source("omniglot", "Omniglot characters (background / evaluation alphabets, PNG folders), 28x28 by default", False,
               ("background", "evaluation"), lambda root, split, download, **kw: real.load_omniglot(root, split, download, **kw)),
        Source("mini-imagenet", "mini-ImageNet from a local folder (ROOT/<split>/<wnid>/*.jpg or ROOT/images + ROOT/<split>.csv), 84x84 RGB", False,
               ("train", "val", "test"), lambda root, split, download, **kw: real.load_mini_imagenet(root, split, download, **kw)),
    ]
}


def load(name: str, split: str | None = None, root=None, download: bool = False, **options) -> ImageSet:
    """Load source `name`; `split` defaults to the source's first split."""
    if name not in SOURCES:
        raise RayclError(f"unknown dataset '{name}'; choose one of: {', '.join(SOURCES)}")
    src = SOURCES[name]
    split = split or src.splits[0]
    if split not in src.splits:
        raise RayclError(f"dataset '{name}' has no split '{split}'; its splits are: {', '.join(src.splits)}")
    return src.loader(root, split, download, **options)
